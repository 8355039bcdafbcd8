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


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, bom: bool = False) -> int:
    """Write header + rows (every cell neutralised), atomically; returns the number of rows."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([neutralize_cell(h) for h in header])
    n = 0
    for row in rows:
        writer.writerow([neutralize_cell(c) for c in row])
        n += 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8-sig" if bom else "utf-8", newline="")
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise HumanEvalError(f"{path} is empty") from None
    return header, reader


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
    for cells in reader:
        if any(c.strip() for c in cells):
            padded = cells + [""] * (len(header) - len(cells))
            rows.append(CsvRow(line=line, values=dict(zip(header, padded, strict=False))))
        line = reader.line_num + 1
    return rows
