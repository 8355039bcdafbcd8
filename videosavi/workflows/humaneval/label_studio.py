"""Label Studio, for teams that already run it: the tasks and labeling config that
`savi humaneval export --format label-studio` writes, and the reading of Label Studio's JSON export.

The labeling config asks exactly what our CSV sheet asks (the same field names, the same choices),
so an annotation's results map one to one onto a sheet row and `savi humaneval score` scores both
the same way. Each task's data carries the sheet's cells (item id, `source/path`, clip span,
question, answers) plus `video_url`, the address Label Studio plays: by default its own local-files
route (`/data/local-files/?d=SOURCE/PATH`, served from `LOCAL_FILES_DOCUMENT_ROOT`), or any prefix
such as a web server's. The key is never part of a task. Annotations are grouped by the annotator
(`completed_by`) into one rater each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from videosavi.errors import HumanEvalError
from videosavi.workflows.humaneval.columns import (
    AB,
    ANSWERABLE,
    BETTER,
    COMMENT,
    ITEM_ID,
    JUDGEMENTS,
    VERDICT_A,
    VERDICT_B,
    VERDICT_CHOICES,
    YES_NO,
)
from videosavi.workflows.humaneval.csv_io import CsvRow, write_text_atomic
from videosavi.workflows.humaneval.items import SheetItem

LOCAL_FILES_PREFIX = "/data/local-files/?d="
FIELDS: tuple[str, ...] = (*JUDGEMENTS, COMMENT)


def _choices(name: str, to: str, values: Sequence[str], hint: str, hotkeys: str, when_answerable: bool) -> str:
    visible = (f' visibleWhen="choice-selected" whenTagName="{ANSWERABLE}" whenChoiceValue="yes"'
               if when_answerable else "")
    options = "".join(f'\n      <Choice value={quoteattr(v)} hotkey="{k}"/>'
                      for v, k in zip(values, hotkeys, strict=True))
    return (f'  <View{visible}>\n    <Header value={quoteattr(hint)} size="5"/>\n'
            f'    <Choices name="{name}" toName="{to}" choice="single-radio" showInline="true">{options}\n'
            f'    </Choices>\n  </View>\n')


def label_config() -> str:
    """The labeling config (XML): the clip, the question, answers A and B, and the sheet's five fields."""
    return (
        "<View>\n"
        '  <Header value="Watch the clip: $clip"/>\n'
        '  <Video name="video" value="$video_url"/>\n'
        '  <Header value="Question" size="4"/>\n'
        '  <Text name="question" value="$question"/>\n'
        '  <Header value="Answer A" size="4"/>\n'
        '  <Text name="answer_A" value="$answer_A"/>\n'
        '  <Header value="Answer B" size="4"/>\n'
        '  <Text name="answer_B" value="$answer_B"/>\n'
        + _choices(ANSWERABLE, "question", YES_NO, "Can the question be answered from the video?", "yn", False)
        + _choices(VERDICT_A, "answer_A", VERDICT_CHOICES, "Answer A on its own", "123", True)
        + _choices(VERDICT_B, "answer_B", VERDICT_CHOICES, "Answer B on its own", "456", True)
        + _choices(BETTER, "question", AB, "Which answer is better?", "ab", True)
        + '  <Header value="Comment (optional)" size="5"/>\n'
        f'  <TextArea name="{COMMENT}" toName="question" rows="2" editable="true" maxSubmissions="1"/>\n'
        "</View>\n"
    )


def clip_text(item: SheetItem) -> str:
    start, end = item.clip
    if start is None and end is None:
        return "the whole video"
    return f"{item.clip_start_s or '0'} s to {item.clip_end_s or 'the end'}" + (" s" if item.clip_end_s else "")


def video_url(video: str, prefix: str = LOCAL_FILES_PREFIX) -> str:
    """The address Label Studio plays for a sheet's `source/path`."""
    return prefix + quote(video, safe="/")


def task(item: SheetItem, prefix: str = LOCAL_FILES_PREFIX) -> dict[str, Any]:
    """One task: the sheet's cells as data (what the fingerprint needs), the playable URL and the clip text."""
    data: dict[str, Any] = dict(zip(("item_id", "video", "clip_start_s", "clip_end_s", "frame_times_s", "question",
                                     "answer_A", "answer_B"), item.cells(), strict=True))
    data["video_url"] = video_url(item.video, prefix)
    data["clip"] = clip_text(item)
    return {"data": data}


def write_label_studio(out: Path, items: Sequence[SheetItem], prefix: str = LOCAL_FILES_PREFIX) -> tuple[Path, Path]:
    """`out` (tasks JSON, to import) and the labeling config beside it (`<stem>.label-config.xml`)."""
    out = Path(out)
    config_path = out.with_name(out.stem + ".label-config.xml")
    write_text_atomic(config_path, label_config())
    write_text_atomic(out, json.dumps([task(i, prefix) for i in items], ensure_ascii=False, indent=1) + "\n")
    return out, config_path


# --- reading an export ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaterRows:
    """One annotator's annotations as sheet rows (`line` is the task's position in the export, 1-based)."""

    label: str
    rows: list[CsvRow]


def looks_like_json(path: Path) -> bool:
    """A Label Studio export (JSON) rather than a CSV sheet: by suffix, else by its first character."""
    if Path(path).suffix.lower() == ".json":
        return True
    try:
        with Path(path).open("rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return False
    return head[:1] in (b"[", b"{")


def _annotator(annotation: dict[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or who.get("username") or who.get("id") or "?")
    return "?" if who is None else f"user {who}"


def _result_value(result: dict[str, Any]) -> str:
    value = result.get("value") or {}
    if "choices" in value:
        return "; ".join(str(c) for c in value["choices"] or [])
    if "text" in value:
        text = value["text"]
        return "\n".join(str(t) for t in text) if isinstance(text, list) else str(text)
    return ""


def read_label_studio(path: Path) -> list[RaterRows]:
    """Label Studio's JSON export (Export -> JSON) as one list of rows per annotator.

    An export of another project (tasks without our item ids, or annotations without our fields) is
    one line, `HumanEvalError`; cancelled (skipped) annotations are left out, as an unrated item.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise HumanEvalError(f"{path} does not exist") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise HumanEvalError(f"{path} is not a JSON file ({exc}): export the project as JSON in Label Studio") from None
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
        raise HumanEvalError(f"{path} is not a Label Studio JSON export (expected a list of tasks)")
    if data and all("annotations" not in t and "data" not in t for t in data):
        raise HumanEvalError(f"{path} looks like a JSON-MIN or other flat export: export the project as JSON "
                             "(the full format, with annotations) instead")
    if data and not any(isinstance(t.get("data"), dict) and str(t["data"].get(ITEM_ID) or "").strip() for t in data):
        raise HumanEvalError(f"{path} is a Label Studio export of another project: its tasks have no {ITEM_ID} "
                             "(import the tasks of `savi humaneval export --format label-studio`)")
    by_rater: dict[str, list[CsvRow]] = {}
    ours = False
    for position, t in enumerate(data, start=1):
        cells = {k: "" if v is None else str(v) for k, v in (t.get("data") or {}).items() if k != "video_url"}
        for annotation in t.get("annotations") or []:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            values = dict(cells)
            for field in FIELDS:
                values[field] = ""
            for result in annotation.get("result") or []:
                if isinstance(result, dict) and result.get("from_name") in FIELDS:
                    values[result["from_name"]] = _result_value(result)
                    ours = True
            by_rater.setdefault(_annotator(annotation), []).append(CsvRow(line=position, values=values))
    if by_rater and not ours:
        raise HumanEvalError(f"{path} is a Label Studio export of another project: no annotation uses the fields "
                             f"of our labeling config ({', '.join(FIELDS)})")
    if not by_rater:
        raise HumanEvalError(f"{path} has no annotations yet (submitted, not skipped): nothing to score")
    return [RaterRows(f"{path.name}:{who}", rows) for who, rows in sorted(by_rater.items())]
