"""Human evaluation: the export is exact, reproducible, blind and injection-safe; scoring of
hand-filled sheets equals numbers worked out by hand here (pair correctness, Wilson interval,
Cohen's and Fleiss' kappa), and bad rows are listed, never dropped silently."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from tests.helpers.factories import make_pair, make_pairs, write_run_dir
from videosavi.cli import app
from videosavi.curation.stats import pairs_frame
from videosavi.errors import HumanEvalError
from videosavi.workflows.humaneval import (
    ExportResult,
    cohen_kappa,
    export_humaneval,
    fleiss_kappa,
    largest_remainder,
    score_sheets,
    wilson_interval,
)
from videosavi.workflows.humaneval.columns import KEY_COLUMNS, KEY_WRITE_COLUMNS, SHEET_COLUMNS
from videosavi.workflows.humaneval.csv_io import FORMULA_TRIGGERS, neutralize_cell, read_csv
from videosavi.workflows.humaneval.sampling import parse_per_type

# --- allocation -------------------------------------------------------------------------------------


def test_largest_remainder_hand_cases() -> None:
    # 10 over three equal weights: 3.33 each -> floors 3, 3, 3; one unit left, ties broken by name
    assert largest_remainder(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    # 7 over 5:8 -> exact 35/13 = 2.69 and 56/13 = 4.31 -> floors 2, 4; the larger remainder (.69) gets the unit
    assert largest_remainder(7, {"spatial": 5, "temporal": 8}) == {"spatial": 3, "temporal": 4}
    # the paper's 516 videos with 255 spatial and 261 temporal in the data
    assert largest_remainder(516, {"spatial": 255, "temporal": 261}) == {"spatial": 255, "temporal": 261}


def test_largest_remainder_always_sums_to_n() -> None:
    rng = random.Random(1)
    for _ in range(200):
        weights = {f"t{i}": rng.randint(0, 50) for i in range(rng.randint(1, 4))}
        if not sum(weights.values()):
            continue
        n = rng.randint(0, 600)
        parts = largest_remainder(n, weights)
        assert sum(parts.values()) == n
        total = sum(weights.values())
        for k, w in weights.items():  # each part within 1 of its exact share
            assert abs(parts[k] - n * w / total) < 1


# --- export -----------------------------------------------------------------------------------------


def dataset(n_videos: int = 30, temporal_from: int = 12) -> pl.DataFrame:
    """3 spatial + 3 temporal per video, except videos before `temporal_from` have no temporal pairs."""
    df = pairs_frame(make_pairs(n_videos=n_videos))
    first = {f"vid{v:04d}" for v in range(temporal_from)}
    return df.filter(~((pl.col("question_type") == "temporal") & pl.col("video_id").is_in(first)))


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def export(df: pl.DataFrame, tmp_path: Path, name: str = "x", **kw: Any) -> ExportResult:
    return export_humaneval(df, tmp_path / f"{name}-eval.csv", tmp_path / f"{name}-key.csv", **kw)


def test_export_is_stratified_exactly_one_pair_per_video(tmp_path: Path) -> None:
    df = dataset()  # 30 videos x 3 spatial = 90 spatial; 18 videos x 3 temporal = 54 temporal
    assert df.group_by("question_type").len().sort("question_type").rows() == [("spatial", 90), ("temporal", 54)]
    res = export(df, tmp_path, n=20, seed=3)
    # exact shares 20 * 90/144 = 12.5 and 20 * 54/144 = 7.5; the tie goes to the larger type
    assert res.quotas == {"spatial": 13, "temporal": 7}
    key = read_rows(res.key)
    assert len(key) == 20 and len(read_rows(res.sheet)) == 20
    assert sum(r["question_type"] == "spatial" for r in key) == 13
    assert len({r["video_uid"] for r in key}) == 20
    by_id = {r["pair_id"]: r for r in df.to_dicts()}
    for r in key:  # the key's type is the pair's real type
        assert by_id[r["pair_id"]]["question_type"] == r["question_type"]
        assert by_id[r["pair_id"]]["video_uid"] == r["video_uid"]


def test_per_type_gives_equal_counts_even_when_types_compete_for_videos(tmp_path: Path) -> None:
    res = export(dataset(), tmp_path, n=20, per_type=True)
    assert res.quotas == {"spatial": 10, "temporal": 10}
    # 10 spatial-only, 10 temporal-only and 10 two-type videos: 15 + 15 fits only if every
    # single-type video gets its type, which a plain random draw rarely does; the export must find it
    only_temporal = {f"vid{v:04d}" for v in range(10, 20)}
    split = dataset(temporal_from=10).filter(
        ~((pl.col("question_type") == "spatial") & pl.col("video_id").is_in(only_temporal))
    )
    res = export(split, tmp_path, n=30, per_type=True, seed=5)
    key = read_rows(res.key)
    assert res.quotas == {"spatial": 15, "temporal": 15}
    assert len({r["video_uid"] for r in key}) == 30
    assert sum(r["question_type"] == "temporal" for r in key) == 15


def test_explicit_counts_per_type_as_in_the_paper(tmp_path: Path) -> None:
    df = dataset()  # 30 videos with spatial pairs, 18 of them with temporal pairs too
    res = export(df, tmp_path, "a", per_type={"temporal": 11, "spatial": 9}, seed=4)
    assert res.quotas == {"spatial": 9, "temporal": 11} and res.n_items == 20
    key = read_rows(res.key)
    assert sum(r["question_type"] == "temporal" for r in key) == 11
    assert len({r["video_uid"] for r in key}) == 20
    # the command-line spelling gives the same draw; --n may repeat the sum, not contradict it
    same = export(df, tmp_path, "b", per_type="temporal=11,spatial=9", n=20, seed=4)
    assert same.key.read_bytes() == res.key.read_bytes()
    with pytest.raises(HumanEvalError, match="--n 19 differs from the --per-type counts, which add up to 20"):
        export(df, tmp_path, per_type={"temporal": 11, "spatial": 9}, n=19)
    with pytest.raises(HumanEvalError, match="temporal: 19 wanted"):
        export(df, tmp_path, per_type={"temporal": 19, "spatial": 1})
    assert parse_per_type("temporal=261, spatial=255") == {"temporal": 261, "spatial": 255}
    assert parse_per_type("equal") == "equal"
    for bad, message in (("temporal=x", "expected proportional, equal, or counts"),
                         ("causal=3", "'causal' is not a question type"),
                         ("temporal=2,temporal=3", "given twice"), ("temporal=0", "add up to zero")):
        with pytest.raises(HumanEvalError, match=message):
            parse_per_type(bad)


def test_too_few_videos_is_said_clearly(tmp_path: Path) -> None:
    df = dataset()
    with pytest.raises(HumanEvalError, match=r"--n 516 asks for more items than the dataset has videos \(30\)"):
        export(df, tmp_path, n=516)
    assert not (tmp_path / "x-eval.csv").exists()
    res = export(df, tmp_path, n=516, allow_fewer=True)
    assert res.n_items == 30 and "at most 30" in res.notes[0]
    few_temporal = dataset(temporal_from=25)  # 5 videos with temporal pairs
    with pytest.raises(HumanEvalError, match="temporal: 10 wanted"):
        export(few_temporal, tmp_path, n=20, per_type=True)
    res = export(few_temporal, tmp_path, n=20, per_type=True, allow_fewer=True)
    assert res.quotas == {"spatial": 10, "temporal": 5} and res.notes


def test_export_is_reproducible_and_independent_of_row_order(tmp_path: Path) -> None:
    df = dataset()
    a = export(df, tmp_path, "a", n=12, seed=7)
    b = export(df.sample(fraction=1.0, shuffle=True, seed=1), tmp_path, "b", n=12, seed=7)
    c = export(df, tmp_path, "c", n=12, seed=8)
    assert a.sheet.read_bytes() == b.sheet.read_bytes()
    assert a.key.read_bytes() == b.key.read_bytes()
    assert a.key.read_bytes() != c.key.read_bytes()


def test_sheet_is_blind_and_the_key_maps_back(tmp_path: Path) -> None:
    df = dataset()
    res = export(df, tmp_path, n=24, seed=2)
    sheet, key = read_rows(res.sheet), read_rows(res.key)
    assert list(sheet[0]) == list(SHEET_COLUMNS) and list(key[0]) == list(KEY_WRITE_COLUMNS)
    assert "question_type" not in sheet[0] and "pair_id" not in sheet[0]
    text = res.sheet.read_text(encoding="utf-8")
    by_id = {r["pair_id"]: r for r in df.to_dicts()}
    for pair_id in by_id:
        assert pair_id not in text
    assert "spatial" not in text and "temporal" not in text
    positions = set()
    for s_row, k_row in zip(sheet, key, strict=True):
        assert s_row["item_id"] == k_row["item_id"]
        pair = by_id[k_row["pair_id"]]
        other = "B" if k_row["chosen_is"] == "A" else "A"
        assert s_row[f"answer_{k_row['chosen_is']}"] == pair["chosen"]
        assert s_row[f"answer_{other}"] == pair["rejected"]
        assert s_row["question"] == pair["question"]
        assert s_row["video"] == f"{pair['source']}/{pair['video_path']}"
        assert s_row["frame_times_s"] == "; ".join(f"{t:.2f}" for t in pair["frame_timestamps"])
        assert all(s_row[c] == "" for c in SHEET_COLUMNS[8:])  # judgements left for the rater
        positions.add(k_row["chosen_is"])
    assert positions == {"A", "B"}  # both orders occur (24 coin flips)


def test_clip_span_is_shown(tmp_path: Path) -> None:
    pairs = [make_pair(video_id=f"clip{i}", clip_start=1.5, clip_end=9.25) for i in range(3)]
    res = export(pairs_frame(pairs), tmp_path, n=3)
    rows = read_rows(res.sheet)
    assert {(r["clip_start_s"], r["clip_end_s"]) for r in rows} == {("1.50", "9.25")}


INJECTIONS = [
    '=HYPERLINK("http://example.com","click")',
    "+SUM(1,2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A2)",
    "\t=1+1 after a tab",
    "\r=1+1 after a carriage return",
    "＝1+1 full-width",
]
BENIGN = 'Le café, "quoted"\nsecond line 東京'


@pytest.mark.parametrize("bom", [False, True])
def test_injection_neutralised_and_round_trips(tmp_path: Path, bom: bool) -> None:
    pairs = []
    for i, evil in enumerate([*INJECTIONS, BENIGN]):
        pairs.append(make_pair(video_id=f"v{i}", question=f"{evil} question {i}", rejected=f"{evil} wrong {i}",
                               chosen=f"{evil} right answer {i}"))
    originals = {p.pair_id: p for p in pairs}
    res = export(pairs_frame(pairs), tmp_path, n=len(pairs), bom=bom)
    raw = res.sheet.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bom

    via_csv = read_rows(res.sheet)
    via_polars = pl.read_csv(res.sheet, infer_schema=False).fill_null("").rows(named=True)
    assert via_polars == via_csv
    key = {r["item_id"]: r for r in read_rows(res.key)}
    for row in via_csv:
        for cell in row.values():
            assert not cell.startswith(FORMULA_TRIGGERS)
        pair = originals[key[row["item_id"]]["pair_id"]]
        chosen_col = f"answer_{key[row['item_id']]['chosen_is']}"
        assert row["question"] == neutralize_cell(pair.question)
        assert row[chosen_col] == neutralize_cell(pair.chosen)
        if pair.question.startswith(BENIGN):
            assert row["question"] == pair.question  # untouched, commas/quotes/newline intact
        else:
            assert row["question"] == "'" + pair.question


# --- agreement and intervals ------------------------------------------------------------------------


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-4)  # the textbook 0/10 upper bound
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson_interval(0, 0) is None


def test_cohen_kappa_by_hand() -> None:
    a = ["y", "y", "y", "n", "y", "y"]
    b = ["y", "y", "y", "y", "n", "y"]
    # agreement 4/6; each rater says y 5 times, n once: p_e = (5*5 + 1*1) / 36 = 26/36
    assert cohen_kappa(a, b) == pytest.approx((4 / 6 - 26 / 36) / (1 - 26 / 36))  # = -0.2
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(["y"] * 4, ["y"] * 4) is None  # chance agreement 1: undefined


def test_fleiss_kappa_by_hand() -> None:
    ratings = [["y", "y", "y"], ["y", "y", "n"], ["n", "n", "n"], ["y", "n", "n"]]
    # P_i = (sum n_ij^2 - 3) / (3*2): 1, (4+1-3)/6 = 1/3, 1, 1/3 -> P_bar = 2/3
    # p_y = 6/12, p_n = 6/12 -> P_e = 1/2;  kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    assert fleiss_kappa(ratings) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        fleiss_kappa([["y", "n"], ["y"]])


# --- scoring hand-filled sheets ---------------------------------------------------------------------

KEY = [  # item, pair, chosen_is, type
    ("item-001", "p1", "A", "spatial"),
    ("item-002", "p2", "B", "spatial"),
    ("item-003", "p3", "A", "spatial"),
    ("item-004", "p4", "B", "temporal"),
    ("item-005", "p5", "A", "temporal"),
    ("item-006", "p6", "B", "temporal"),
]
# answerable, verdict on answer A, verdict on answer B, better answer (the blind pick)
RATER1 = [
    ("yes", "accurate", "clear errors", "A"),  # 1 chosen A accurate, rejected B wrong: correct; picks chosen
    ("yes", "clear errors", "accurate", "A"),  # 2 chosen B accurate, rejected A wrong: correct, though the pick is A
    ("yes", "accurate", "accurate", "B"),  # 3 rejected B has no clear errors: not correct; picks rejected
    ("no", "", "", ""),  # 4 unanswerable: not correct, other columns may stay empty
    ("yes", "neither", "clear errors", "A"),  # 5 chosen A not accurate: not correct; picks chosen
    ("yes", "clear errors", "neither", "B"),  # 6 chosen B not accurate: not correct; picks chosen
]
RATER2 = [
    ("Y", "Accurate", "ERRORS", "a"),  # 1 correct (spellings are case-insensitive)
    ("yes", "wrong", "correct", "B"),  # 2 chosen B correct, rejected A wrong: correct
    ("yes", "clear_errors", "accurate", "B"),  # 3 chosen A wrong: not correct; picks rejected
    ("y", "clear-errors", "accurate", "b"),  # 4 correct
    ("N", "", "", ""),  # 5 not answerable
    ("True", "clear errors", "accurate", "B"),  # 6 correct
]
RATER3 = [("yes", *(("accurate", "clear errors") if k[2] == "A" else ("clear errors", "accurate")), k[2])
          for k in KEY]  # everything correct, always picks the chosen answer


def write_key(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(KEY_COLUMNS)
        for item, pair, chosen, qtype in KEY:
            w.writerow([item, pair, chosen, qtype, f"star/{pair}"])
    return path


def write_sheet(path: Path, judgements: list[tuple[str, ...]], delimiter: str = ",", bom: bool = False,
                extra_rows: list[list[str]] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(SHEET_COLUMNS)
        for (item, *_), j in zip(KEY, judgements, strict=True):
            w.writerow([item, "star/x.mp4", "", "", "0.00", "Q?", "one", "two", *j, ""])
        for row in extra_rows or []:
            w.writerow(row)
    return path


def test_score_one_rater_by_hand(tmp_path: Path) -> None:
    report = score_sheets([write_sheet(tmp_path / "r1.csv", RATER1)], write_key(tmp_path / "key.csv"))
    r = report.raters[0]
    # the paper's three criteria: items 1 and 2; item 2 counts although the rater picked the rejected answer
    assert (r.overall.yes, r.overall.n) == (2, 6)
    assert (r.by_type["spatial"].yes, r.by_type["spatial"].n) == (2, 3)
    assert (r.by_type["temporal"].yes, r.by_type["temporal"].n) == (0, 3)
    assert r.overall.rate == pytest.approx(2 / 6)
    lo, hi = wilson_interval(2, 6)
    assert (r.overall.ci_low, r.overall.ci_high) == (lo, hi)
    # each criterion: answerable 5/6; over the 5 answerable items chosen accurate (1, 2, 3), rejected wrong (1, 2, 5, 6)
    assert {c: (v.yes, v.n) for c, v in r.criteria.items()} == {
        "question_answerable": (5, 6), "chosen_accurate": (3, 5), "rejected_clear_errors": (4, 5)}
    # the blind pick, apart: answerable items 1, 5, 6 pick the chosen answer, 2 and 3 do not
    assert (r.prefers_chosen.yes, r.prefers_chosen.n) == (3, 5)
    assert (r.prefers_chosen_by_type["spatial"].yes, r.prefers_chosen_by_type["spatial"].n) == (1, 3)
    assert (r.prefers_chosen_by_type["temporal"].yes, r.prefers_chosen_by_type["temporal"].n) == (2, 2)
    assert r.prefers_chosen.ci_low == wilson_interval(3, 5)[0]
    assert report.problems == [] and report.agreement == []


def test_score_two_raters_cohen_by_hand(tmp_path: Path) -> None:
    key = write_key(tmp_path / "key.csv")
    report = score_sheets([write_sheet(tmp_path / "r1.csv", RATER1), write_sheet(tmp_path / "r2.csv", RATER2)], key)
    r2 = report.raters[1]
    assert r2.rater == "r2.csv"
    assert (r2.overall.yes, r2.by_type["spatial"].yes, r2.by_type["temporal"].yes) == (4, 2, 2)
    assert (r2.prefers_chosen.yes, r2.prefers_chosen.n) == (4, 5)  # item 3 picks the rejected answer
    # majority of two: items 1 and 2 have both raters saying correct; items 4 and 6 are 1-1 ties
    assert (report.majority.overall.yes, report.majority.overall.n) == (2, 6)
    assert report.majority_ties == 2
    kappa = {a.judgement: a for a in report.agreement}
    assert {a.method for a in report.agreement} == {"cohen"}
    # answerable: r1 y y y n y y, r2 y y y y n y -> p_o 4/6, p_e (5*5 + 1*1)/36
    assert kappa["question_answerable"].kappa == pytest.approx((4 / 6 - 26 / 36) / (1 - 26 / 36))
    # pair correct: r1 T T F F F F, r2 T T F T F T -> p_o 4/6, p_e (2*4 + 4*2)/36
    assert kappa["pair_correct"].kappa == pytest.approx((4 / 6 - 16 / 36) / (1 - 16 / 36))
    # prefers chosen, items both judged (1, 2, 3, 6): r1 T F F T, r2 T T F T -> p_o 3/4, p_e (2*3 + 2*1)/16
    assert kappa["prefers_chosen"].n_items == 4
    assert kappa["prefers_chosen"].kappa == pytest.approx((3 / 4 - 8 / 16) / (1 - 8 / 16))


def test_score_three_raters_fleiss_by_hand(tmp_path: Path) -> None:
    key = write_key(tmp_path / "key.csv")
    sheets = [write_sheet(tmp_path / f"r{i}.csv", j) for i, j in enumerate((RATER1, RATER2, RATER3), 1)]
    report = score_sheets(sheets, key)
    answerable = next(a for a in report.agreement if a.judgement == "question_answerable")
    assert answerable.method == "fleiss" and answerable.n_items == 6
    # items 1 2 3 6: y y y -> P_i = 1; item 4 (n y y) and item 5 (y n y): P_i = (4 + 1 - 3)/6 = 1/3
    p_bar = (4 * 1 + 2 * (1 / 3)) / 6
    p_yes = (4 * 3 + 2 * 2) / 18  # 16 of 18 ratings say yes
    p_e = p_yes**2 + (1 - p_yes) ** 2
    assert answerable.kappa == pytest.approx((p_bar - p_e) / (1 - p_e))  # = -0.125
    # majority of three: items 1 and 2 (all three), 4 and 6 (r2, r3) -> 4 of 6; no ties
    assert (report.majority.overall.yes, report.majority_ties) == (4, 0)


def test_bad_rows_are_listed_not_dropped(tmp_path: Path) -> None:
    key = write_key(tmp_path / "key.csv")
    judgements = [
        ("maybe", "accurate", "clear errors", "A"),  # line 2: invalid answerable
        ("yes", "sort of", "clear errors", ""),  # line 3: invalid verdict, missing better answer
        ("yes", "accurate", "clear errors", "C"),  # line 4: invalid better answer
        ("yes", "clear errors", "accurate", "B"),  # line 5: fine, item 4's chosen answer is B: correct
        ("yes", "accurate", "clear errors", "A"),  # line 6: fine, item 5's chosen answer is A: correct
        ("", "", "", ""),  # line 7: everything missing
    ]
    extra = [
        ["item-999", "", "", "", "", "", "", "", "yes", "accurate", "clear errors", "A", ""],  # line 8: unknown
        ["item-005", "", "", "", "", "", "", "", "no", "", "", "", ""],  # line 9: item 5 twice
    ]
    report = score_sheets([write_sheet(tmp_path / "r.csv", judgements, extra_rows=extra)], key)
    problems = {(p.line, p.item_id): p.problems for p in report.problems}
    assert set(problems) == {(2, "item-001"), (3, "item-002"), (4, "item-003"), (7, "item-006"),
                             (8, "item-999"), (9, "item-005")}
    assert "expected yes/no" in problems[(2, "item-001")][0]
    assert problems[(3, "item-002")][0].startswith("answer_A_verdict: expected accurate, clear errors or neither")
    assert problems[(3, "item-002")][1] == "better_answer: missing"
    assert "expected A or B" in problems[(4, "item-003")][0]
    assert len(problems[(7, "item-006")]) == 4
    assert "not in the key" in problems[(8, "item-999")][0]
    assert "twice" in problems[(9, "item-005")][0]
    r = report.raters[0]
    assert (r.overall.yes, r.overall.n) == (2, 2)  # only lines 5 and 6 are scored
    assert r.by_type["temporal"].n == 2 and r.by_type["spatial"].n == 0


def test_missing_items_and_excel_style_sheet(tmp_path: Path) -> None:
    key = write_key(tmp_path / "key.csv")
    # Excel in some locales saves with ';' and a BOM: read the same as a plain CSV
    plain = score_sheets([write_sheet(tmp_path / "a.csv", RATER2)], key)
    excel = score_sheets([write_sheet(tmp_path / "b.csv", RATER2, delimiter=";", bom=True)], key)
    assert excel.raters[0] == plain.raters[0].model_copy(update={"rater": "b.csv"})
    short = tmp_path / "short.csv"
    with short.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SHEET_COLUMNS)
        w.writerow(["item-001", "", "", "", "", "", "", "", "yes", "accurate", "clear errors", "A", ""])
    report = score_sheets([short], key)
    missing = [p for p in report.problems if p.line is None]
    assert [p.item_id for p in missing] == ["item-002", "item-003", "item-004", "item-005", "item-006"]


def test_bad_key_or_sheet_structure_is_an_error(tmp_path: Path) -> None:
    key = write_key(tmp_path / "key.csv")
    no_cols = tmp_path / "nocols.csv"
    no_cols.write_text("item_id,comment\nitem-001,hi\n")
    with pytest.raises(HumanEvalError, match="lacks the column"):
        score_sheets([no_cols], key)
    bad_key = tmp_path / "badkey.csv"
    bad_key.write_text("item_id,pair_id,chosen_is,question_type,video_uid\nitem-001,p1,C,spatial,x\n")
    with pytest.raises(HumanEvalError, match="chosen_is must be A or B"):
        score_sheets([write_sheet(tmp_path / "r.csv", RATER1)], bad_key)
    with pytest.raises(HumanEvalError, match="does not exist"):
        score_sheets([tmp_path / "absent.csv"], key)
    old = tmp_path / "old.csv"  # a sheet exported before the per-answer verdicts
    old.write_text("item_id,question_answerable,better_answer,better_is_accurate,worse_has_clear_errors,comment\n"
                   "item-001,yes,A,yes,yes,\n")
    with pytest.raises(HumanEvalError, match=r"old rater sheet.*export a new sheet"):
        score_sheets([old], key)


# --- the CLI, end to end ----------------------------------------------------------------------------


def test_cli_export_then_score(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", make_pairs(n_videos=8))
    out, key = tmp_path / "eval.csv", tmp_path / "key.csv"
    runner = CliRunner()
    res = runner.invoke(app, ["humaneval", "export", "--run-dir", str(run.path), "--n", "6", "--seed", "1",
                              "--out", str(out), "--key", str(key), "--bom"])
    assert res.exit_code == 0, res.output
    assert "wrote 6 items (3 spatial, 3 temporal)" in res.output
    counted = runner.invoke(app, ["humaneval", "export", "--run-dir", str(run.path), "--per-type",
                                  "temporal=3,spatial=2", "--out", str(tmp_path / "c.csv"),
                                  "--key", str(tmp_path / "ck.csv")])
    assert counted.exit_code == 0, counted.output
    assert "wrote 5 items (2 spatial, 3 temporal)" in counted.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    # a rater who always agrees with the data: fill the blind sheet from the key
    answers = {r["item_id"]: r["chosen_is"] for r in read_rows(key)}
    rows = read_rows(out)
    for r in rows:
        chosen = answers[r["item_id"]]
        other = "B" if chosen == "A" else "A"
        r.update({"question_answerable": "yes", f"answer_{chosen}_verdict": "accurate",
                  f"answer_{other}_verdict": "clear errors", "better_answer": other})  # correct; the pick disagrees
    filled = tmp_path / "rater.csv"
    with filled.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = runner.invoke(app, ["humaneval", "score", str(filled), "--key", str(key), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["raters"][0]["overall"]["yes"] == 6 and data["problems"] == []
    assert (data["raters"][0]["prefers_chosen"]["yes"], data["raters"][0]["prefers_chosen"]["n"]) == (0, 6)
    res = runner.invoke(app, ["humaneval", "score", str(filled), "--key", str(key)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "pair correctness" in res.output
    assert "blind pick" in res.output and "not part of correctness" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "either --run-dir"),
        (["--dataset", "org/x"], "needs --revision"),
        (["--run-dir", "RUN", "--n", "99"], "more items than the dataset has videos"),
        (["--run-dir", "RUN", "--key", "OUT"], "must be different files"),
    ],
)
def test_cli_export_errors(tmp_path: Path, args: list[str], message: str) -> None:
    run = write_run_dir(tmp_path / "run", make_pairs(n_videos=2))
    out = str(tmp_path / "eval.csv")
    args = [a.replace("RUN", str(run.path)).replace("OUT", out) for a in args]
    base = ["--out", out] + ([] if "--key" in args else ["--key", str(tmp_path / "key.csv")])
    res = CliRunner().invoke(app, ["humaneval", "export", *base, *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_cli_export_from_a_published_revision(tmp_path: Path) -> None:
    from videosavi.hub.publish import publish_run

    store = tmp_path / "store"
    run = write_run_dir(tmp_path / "run", make_pairs(n_videos=5))
    publish_run(run.path, "org/eval", backend="store", store=store)
    out, key = tmp_path / "eval.csv", tmp_path / "key.csv"
    res = CliRunner().invoke(app, ["humaneval", "export", "--dataset", "org/eval", "--revision", "iter1",
                                   "--store", str(store), "--n", "4", "--out", str(out), "--key", str(key)])
    assert res.exit_code == 0, res.output
    # the same draw as from the run directory itself: the published rows are the built rows
    direct = export_humaneval(pairs_frame(run.path), tmp_path / "d.csv", tmp_path / "dk.csv", n=4)
    assert key.read_bytes() == direct.key.read_bytes()
    assert out.read_bytes() == direct.sheet.read_bytes()


@pytest.mark.parametrize("cell", [" =1+1", "   +cmd|' /C calc'!A0", "\u00a0-2+3", "\n@SUM(A1)", " \u3000＝1+1"])
def test_a_formula_after_leading_blanks_is_neutralised_too(cell: str) -> None:
    assert neutralize_cell(cell) == "'" + cell
    assert neutralize_cell(f"x {cell}") == f"x {cell}"  # a trigger inside the text is harmless


# --- rater sheets: what our own export writes, our scorer reads (issue 23, item 6) -------------------------


def test_longest_answers_and_comments_round_trip(tmp_path: Path) -> None:
    """The schema bounds no answer's length, so the reader's limit is the file's: a million-character
    answer and a 200,000-character comment (the csv module stops at 131,072 by default) are read back."""
    long_chosen = "The cup moves left, then right. " * 31_250  # 1,000,000 characters
    pairs = [make_pair(video_id=f"v{i}", chosen=long_chosen + str(i), rejected="=1+1 " + "x" * 150_000)
             for i in range(3)]
    res = export(pairs_frame(pairs), tmp_path, n=3)
    rows = [r.values for r in read_csv(res.sheet, SHEET_COLUMNS)]
    assert max(len(r[c]) for r in rows for c in ("answer_A", "answer_B")) >= 1_000_000
    comment = "c" * 200_000
    with res.sheet.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(SHEET_COLUMNS)
        key = {r.values["item_id"]: r.values["chosen_is"] for r in read_csv(res.key, ())}
        for r in rows:
            chosen = key[r["item_id"]]
            verdicts = ("accurate", "clear errors") if chosen == "A" else ("clear errors", "accurate")
            w.writerow([*(r[c] for c in SHEET_COLUMNS[:8]), "yes", *verdicts, chosen, comment])
    csv.field_size_limit(131_072)  # the csv module's default: the scorer must raise it itself
    report = score_sheets([res.sheet], res.key)
    assert not report.problems
    assert (report.raters[0].overall.yes, report.raters[0].overall.n) == (3, 3)


def test_duplicate_columns_are_refused(tmp_path: Path) -> None:
    key = write_key(tmp_path / "key.csv")
    sheet = tmp_path / "dup.csv"
    with sheet.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*SHEET_COLUMNS, "answer_A_verdict"])
        w.writerow(["item-001", "", "", "", "", "", "", "", "yes", "accurate", "clear errors", "A", "", "wrong"])
    with pytest.raises(HumanEvalError, match=r"dup.csv has the column\(s\) answer_A_verdict more than once"):
        score_sheets([sheet], key)


def test_a_sheet_scored_with_another_exports_key_is_refused(tmp_path: Path) -> None:
    df = dataset()
    a = export(df, tmp_path, "a", n=6, seed=1)
    b = export(df, tmp_path, "b", n=6, seed=2)  # the same item ids, other pairs
    with pytest.raises(HumanEvalError, match=r"a-eval.csv and the key do not match \(6 of its 6 items show other"):
        score_sheets([a.sheet], b.key)
    # one edited row of the right sheet is listed, the rest is scored
    rows = read_rows(a.sheet)
    rows[0]["question"] = "Something else entirely?"
    with a.sheet.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(SHEET_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    report = score_sheets([a.sheet], a.key)
    assert [p.problems for p in report.problems if p.line == 2] == [
        ["the video, clip, question or answers differ from those the key was exported with"]]
