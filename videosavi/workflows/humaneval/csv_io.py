"""CSV files that open cleanly in LibreOffice, Excel and Google Sheets, and are safe to open there.

Model text is untrusted: a cell starting with `=`, `+`, `-`, `@`, tab or carriage return (or their
full-width forms, which some spreadsheet apps also evaluate), after any leading blanks, is neutralised
by a leading single quote, as OWASP recommends for CSV injection. Quoting is the csv module's (RFC 4180), so commas,
quotes and newlines inside answers survive; the optional BOM makes Excel read UTF-8.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi.errors import HumanEvalError

FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralize_cell(value: object) -> str:
    """The cell as text, with a leading `'` if a spreadsheet could take it for a formula: one that starts
    with a trigger, or whose first non-blank character is one (`" =1+1"`: some apps trim leading
    blanks before they parse a cell)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) or text.lstrip().startswith(FORMULA_TRIGGERS) else text


def unneutralize_cell(text: str) -> str:
    """The value `neutralize_cell` was given, for a cell it wrote: the leading `'` it added comes off, so a
    sheet read and written again (the rater page saves it after every answer) never gains a second one."""
    return text[1:] if text.startswith("'") and neutralize_cell(text[1:]) == text else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> tuple[str, int]:
    """The file's text (every cell neutralised, RFC 4180 quoting, CRLF) and the number of rows."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([neutralize_cell(h) for h in header])
    n = 0
    for row in rows:
        writer.writerow([neutralize_cell(c) for c in row])
        n += 1
    return buf.getvalue(), n


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, bom: bool = False) -> int:
    """Write header + rows (every cell neutralised), atomically; returns the number of rows."""
    text, n = csv_text(header, rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8-sig" if bom else "utf-8", newline="")
    os.replace(tmp, path)
    return n


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line of the row's first line in the file (header is line 1)
    values: dict[str, str]


def _open(path: Path) -> tuple[list[str], Any]:
    """(header, reader over the remaining rows); a BOM is skipped, `;`/tab separators are detected."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise HumanEvalError(f"{path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise HumanEvalError(f"{path} is not UTF-8 text: save it as 'CSV UTF-8' and try again") from exc
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    allow_fields_up_to(len(text))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise HumanEvalError(f"{path} is empty") from None
    except csv.Error as exc:
        raise HumanEvalError(f"{path} is not a readable CSV file: {exc}") from None
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise HumanEvalError(f"{path} has the column(s) {', '.join(repeated)} more than once: keep one of each "
                             "(which one holds the rater's judgement cannot be told)")
    return header, reader


def allow_fields_up_to(chars: int) -> None:
    """Raise the csv module's field limit (131,072 characters by default, process-wide) to `chars`.

    A cell cannot be longer than its file, and our export writes answers of any length the schema
    allows (it bounds none), so the file's own length is the limit that reads everything we write
    while still bounding a malformed file. The limit is only ever raised, never lowered."""
    if chars > csv.field_size_limit():
        csv.field_size_limit(min(chars, sys.maxsize))


def read_header(path: Path) -> list[str]:
    """The column names of a CSV file, read as `read_csv` reads them."""
    return _open(path)[0]


def read_csv(path: Path, required: Sequence[str]) -> list[CsvRow]:
    """Rows as dicts; a BOM is skipped, and `;` or tab separators (some locales' Excel) are detected.

    Raises `HumanEvalError` naming the file and the missing columns if `required` are not all there.
    """
    header, reader = _open(path)
    missing = [c for c in required if c not in header]
    if missing:
        raise HumanEvalError(f"{path} lacks the column(s) {', '.join(missing)} (found: {', '.join(header)})")
    rows = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                padded = cells + [""] * (len(header) - len(cells))
                rows.append(CsvRow(line=line, values=dict(zip(header, padded, strict=False))))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise HumanEvalError(f"{path} line {line}: not readable as CSV ({exc})") from None
    return rows


def write_text_atomic(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Replace `path` with `text` in one step, flushed to disk first: a reader (or a crash, or a power
    cut) sees the old file or the new one, never half of one. The rater page saves this way after
    every answer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding=encoding, newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
