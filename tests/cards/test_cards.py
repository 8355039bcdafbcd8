"""The dataset card: YAML that huggingface_hub and datasets parse, numbers that match the rows,
deterministic plots, and the side-record summary."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import pytest
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard
from PIL import Image

from tests.helpers.factories import make_pairs, write_run_dir
from videosavi.cards.dataset_card import CONFIG_READERS
from videosavi.cards.metadata import size_category
from videosavi.cards.stats import card_stats
from videosavi.config import BuildConfig, load_config
from videosavi.errors import PublishError
from videosavi.formats.swift_rows import SwiftDpoRow
from videosavi.hub.revision_files import EXAMPLE_CHARS, assemble_revision, side_records_summary
from videosavi.hub.validate import validate_run_dir
from videosavi.schemas import ERROR_TYPES, PreferencePair, QuarantineRecord, VideoSkip
from videosavi.schemas.arrow import arrow_schema, features
from videosavi.schemas.published import PublishedPair

REPO = "org/videosavi"


def _table_rows(readme: str, header: str, after: str = "") -> list[list[str]]:
    """Rows of the first Markdown table whose header line starts with `header` (after the text `after`)."""
    lines = readme[readme.index(after):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


@pytest.fixture()
def staged(tmp_path: Path) -> dict:
    pairs1 = make_pairs(n_videos=3, iteration=1, seed=11)
    pairs2 = make_pairs(n_videos=5, iteration=2, seed=12)
    config = {"name": "videosavi-test", "license": "cc-by-4.0",
              "questions": {"spatial": 3, "temporal": 3},
              "sources": {"star": {"kind": "star"}, "vidal": {"kind": "vidal"}, "webvid": {"kind": "webvid"}}}
    run2 = write_run_dir(tmp_path / "iter2", pairs2, iteration=2, config=config)
    previous = card_stats(validate_run_dir(write_run_dir(tmp_path / "iter1", pairs1, iteration=1).path).table)
    out = tmp_path / "staging"
    assemble_revision(validate_run_dir(run2.path), out, repo=REPO, tag="iter2", previous=previous,
                      previous_tag="iter1")
    return {"dir": out, "pairs": pairs2, "previous_pairs": pairs1, "readme": (out / "README.md").read_text()}


def test_yaml_header_parses_and_declares_configs_and_derived_features(staged: dict) -> None:
    card = DatasetCard.load(staged["dir"] / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0"
    assert data["task_categories"] == ["video-text-to-text"]
    # what a DPO user searches for: the method, the modality/task, and that the data are model-made
    assert set(data["tags"]) >= {"dpo", "preference", "rlhf", "trl", "video-text-to-text", "synthetic",
                                 "self-alignment"}
    assert data["annotations_creators"] == data["language_creators"] == ["machine-generated"]
    assert "license_name" not in data and "license_link" not in data  # only with license: other
    assert data["size_categories"] == [size_category(len(staged["pairs"]))]
    configs = {c["config_name"]: c for c in data["configs"]}
    assert configs["default"]["data_files"] == [{"split": "train", "path": "data/train-*.parquet"}]
    assert configs["default"].get("default") is True
    assert configs["swift"]["data_files"] == [{"split": "train", "path": "swift/train-*.parquet"}]
    assert set(configs) == {"default", "swift"}  # the default config is TRL's form: no separate `trl` config
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert infos["default"].features == features(PublishedPair)
    assert infos["swift"].features == features(SwiftDpoRow)
    assert infos["default"].splits["train"].num_examples == len(staged["pairs"])
    # every declared data pattern matches files that were staged
    for c in configs.values():
        assert list(staged["dir"].glob(c["data_files"][0]["path"]))


def test_license_defaults_to_the_config_default(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "r", make_pairs(n_videos=1), iteration=1)
    assemble_revision(validate_run_dir(run.path), tmp_path / "s", repo=REPO, tag="iter1")
    card = DatasetCard.load(tmp_path / "s" / "README.md")
    assert card.data.license == BuildConfig.model_fields["license"].default
    assert "## Change against" not in card.text  # no previous iteration, no comparison


def test_error_table_matches_the_rows_and_compares_with_the_previous_iteration(staged: dict) -> None:
    current = Counter((i.error_type, i.severity) for p in staged["pairs"] for i in p.issues)
    previous = Counter(i.error_type for p in staged["previous_pairs"] for i in p.issues)
    rows = {r[0]: r for r in _table_rows(staged["readme"], "| error type |")}
    assert len(rows) == len(ERROR_TYPES) + 1
    for etype in ERROR_TYPES:
        _, crit, minor, total, prev, change = rows[etype.replace("_", " ")]
        assert (int(crit), int(minor)) == (current[(etype, "critical")], current[(etype, "minor")])
        assert int(total) == int(crit) + int(minor)
        assert int(prev) == previous[etype]
        if previous[etype]:
            assert change == f"{(int(total) - previous[etype]) / previous[etype] * 100:+.1f}%"
    total_row = rows["**total**"]
    assert int(total_row[3]) == sum(current.values()) and int(total_row[4]) == sum(previous.values())


def test_composition_lengths_and_change_sections(staged: dict) -> None:
    pairs = staged["pairs"]
    comp = {r[0]: r[1:] for r in _table_rows(staged["readme"], "| source | spatial |")}
    for source in {p.source for p in pairs}:
        n_sp = sum(1 for p in pairs if p.source == source and p.question_type == "spatial")
        n_te = sum(1 for p in pairs if p.source == source and p.question_type == "temporal")
        assert comp[source] == [str(n_sp), str(n_te), str(n_sp + n_te)]
    assert comp["**total**"][-1] == str(len(pairs))
    share = dict(_table_rows(staged["readme"], "| chosen / rejected words |"))
    longer = sum(p.chosen_words > p.rejected_words for p in pairs) / len(pairs)
    assert share["share of pairs where chosen is longer"] == f"{longer:.1%}"
    change = {r[0]: r[1:] for r in _table_rows(staged["readme"], "|  | iter1 | iter2 | change |")}
    assert change["pairs"][:2] == [str(len(staged["previous_pairs"])), str(len(pairs))]
    assert "## Change against `iter1`" in staged["readme"]


def test_body_states_provenance_fields_terms_loading_and_citation(staged: dict) -> None:
    readme = staged["readme"]
    fields = {r[0].strip("`") for r in _table_rows(readme, "| field |")}
    assert {f.name for f in arrow_schema(PublishedPair)} <= fields
    assert {f.name for f in arrow_schema(PreferencePair)} | {"chosen_text", "rejected_text"} == fields
    swift_fields = {r[0].strip("`") for r in _table_rows(readme, "| field |", after="`swift` config:")}
    assert swift_fields == {"messages", "rejected_response", "videos"}
    assert "`trl` config:" not in readme and "maybe_extract_prompt(pairs[0])" in readme
    assert "&lt;video&gt;" in readme  # `<video>` outside code spans is escaped, not an HTML tag
    assert 'load_dataset("org/videosavi", revision="iter2", split="train")' in readme
    assert 'videosavi.load_revision("org/videosavi", "iter2")' in readme
    assert "3 spatial and 3 temporal questions" in readme
    assert "arXiv:2412.00624" in readme and "kulkarni2024videosavi" in readme
    terms = {r[0]: r[2] for r in _table_rows(readme, "| source | pairs | terms |")}
    assert "withdrawn" in terms["webvid"] and "YouTube" in terms["vidal"] and "Charades" in terms["star"]
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert (staged["dir"] / link).is_file()


def test_plots_are_pngs_and_render_identically_twice(staged: dict, tmp_path: Path) -> None:
    pngs = sorted((staged["dir"] / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["answer_lengths.png", "composition.png", "error_types.png", "trend.png"]
    for p in pngs:
        with Image.open(io.BytesIO(p.read_bytes())) as img:
            assert img.format == "PNG" and img.width > 300 and img.height > 100
        assert b"matplotlib" not in p.read_bytes()  # no version stamp: re-renders stay byte-identical
    from videosavi.cards.plots import render_plots

    stats = card_stats(validate_run_dir(staged["dir"].parent / "iter2").table)
    render_plots(stats, tmp_path / "a", label="iter2")
    render_plots(stats, tmp_path / "b", label="iter2")
    for name in ("answer_lengths.png", "composition.png", "error_types.png"):
        assert (tmp_path / "a/plots" / name).read_bytes() == (tmp_path / "b/plots" / name).read_bytes()


def test_size_categories_are_exactly_the_hubs_buckets() -> None:
    import json

    import datasets

    allowed = json.loads((Path(datasets.__file__).parent / "utils/resources/size_categories.json").read_text())
    expected = {0: "n<1K", 999: "n<1K", 1000: "1K<n<10K", 24_000: "10K<n<100K", 99_999: "10K<n<100K",
                100_000: "100K<n<1M", 2_000_000: "1M<n<10M", 10**8: "100M<n<1B", 10**9: "1B<n<10B",
                10**10: "10B<n<100B", 10**11: "100B<n<1T", 10**12 - 1: "100B<n<1T", 10**12: "n>1T"}
    assert {n: size_category(n) for n in expected} == expected
    produced = {size_category(10**k) for k in range(14)} | {size_category(10**k - 1) for k in range(1, 14)}
    assert produced == set(allowed) - {"unknown"}  # every bucket reachable, none invented


def _card_with_license(tmp_path: Path, **license_fields: str) -> dict:
    config = {"name": "videosavi-test", **license_fields}
    run = write_run_dir(tmp_path / "r", make_pairs(n_videos=1), iteration=1, config=config)
    assemble_revision(validate_run_dir(run.path), tmp_path / "s", repo=REPO, tag="iter1")
    return DatasetCard.load(tmp_path / "s" / "README.md").data.to_dict()


def test_a_custom_license_carries_its_name_and_link(tmp_path: Path) -> None:
    data = _card_with_license(tmp_path, license="other", license_name="videosavi-source-terms",
                              license_link="README.md#sources-and-terms")
    assert (data["license"], data["license_name"], data["license_link"]) == (
        "other", "videosavi-source-terms", "README.md#sources-and-terms")
    paper = load_config("videosavi")  # the paper's config uses a custom license
    assert paper.license == "other" and paper.license_name and paper.license_link


@pytest.mark.parametrize(("fields", "message"), [
    ({"license": "other"}, "needs license_name"),
    ({"license": "other", "license_name": "Custom Terms", "license_link": "LICENSE.md"}, "must be a slug"),
    ({"license": "other", "license_name": "custom", "license_link": "not a link"}, "must be an http"),
    ({"license": "mit", "license_name": "custom", "license_link": "LICENSE.md"}, "only read with license 'other'"),
])
def test_a_custom_license_without_a_valid_name_and_link_is_refused(tmp_path: Path, fields: dict,
                                                                   message: str) -> None:
    with pytest.raises(PublishError, match=message):
        _card_with_license(tmp_path, **fields)
    with pytest.raises(ValueError, match=message):
        BuildConfig.model_validate({"sources": {}, **fields})


def test_configs_table_says_which_library_reads_which_config(staged: dict) -> None:
    rows = {r[0].strip("`"): r for r in _table_rows(staged["readme"], "| config | files |")}
    assert set(rows) == {"default", "swift"}
    for name, model, pattern in (("default", PublishedPair, "data/train-*.parquet"),
                                 ("swift", SwiftDpoRow, "swift/train-*.parquet")):
        _, files, n_rows, columns, readers = rows[name]
        assert files == f"`{pattern}`" and n_rows == str(len(staged["pairs"]))
        assert [c.strip("`") for c in columns.split(", ")] == list(model.model_fields)
        assert readers == CONFIG_READERS[name].replace("|", "\\|")
    assert "`DPOTrainer`" in rows["default"][4] and "VideoDPOCollator" in rows["default"][4]
    assert "ms-swift" in rows["swift"][4] and "savi export" in rows["swift"][4]
    assert "maybe_extract_prompt" in rows["default"][4] and "HfFileSystem" in rows["default"][4]


def test_self_critique_section_does_not_claim_table_2_and_trend_matches_the_rows(staged: dict) -> None:
    from videosavi.cards.stats import fmt
    from videosavi.curation import pairs_frame, summarize

    readme = staged["readme"]
    assert "## Issues the self-critique found in these pairs" in readme
    assert "shaped like Table 2" not in readme and "`savi eval judge`" in readme
    rows = {r[0]: r[1:] for r in _table_rows(readme, "|  | iter1 | iter2 |", after="## Length ratio and severity")}
    s1, s2 = (summarize(pairs_frame(staged[k])) for k in ("previous_pairs", "pairs"))
    assert rows["length ratio (median)"] == [fmt(s1.length_ratio.median), fmt(s2.length_ratio.median)]
    assert rows["critical pairs (share)"] == [fmt(s.by_severity["critical"] / s.n_pairs) for s in (s1, s2)]
    assert "![Length ratio and severity across iterations](plots/trend.png)" in readme


def test_trend_plot_has_one_point_per_revision(tmp_path: Path) -> None:
    from videosavi.cards.plots import TREND_PANELS, save_figure, trend_figure
    from videosavi.curation import compare

    history = {f"iter{i}": card_stats(make_pairs(n_videos=2 + i, iteration=i, seed=20 + i)) for i in (1, 2, 3)}
    fig = trend_figure(history)
    expected = {r["metric"]: [r[k] for k in history]
                for r in compare({k: s.summary for k, s in history.items()}, by="trend").to_dicts()}
    lines = {line.get_label(): line for ax in fig.axes for line in ax.lines if not line.get_label().startswith("_")}
    assert set(lines) == {m for _, metrics in TREND_PANELS for m in metrics}
    for metric, line in lines.items():
        assert list(line.get_xdata()) == [0, 1, 2]
        assert list(line.get_ydata()) == pytest.approx(expected[metric])
    path = save_figure(fig, tmp_path / "trend.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 300


def test_side_records_summary_counts_and_keeps_examples_short() -> None:
    quarantine = [QuarantineRecord(video_uid=f"star/v{i}", stage="critique" if i % 3 else "question", attempts=3,
                                   reason="invalid_json", raw_text="{" * (EXAMPLE_CHARS + 50)) for i in range(7)]
    skipped = [VideoSkip(video_uid="star/x", source="star", video_path="x.mp4", reason="decode_error"),
               VideoSkip(video_uid="star/y", source="star", video_path="y.mp4", reason="decode_error")]
    summary = side_records_summary(quarantine, skipped)
    q = summary["quarantined"]
    assert q["total"] == 7 and q["by_stage"] == {"critique": 4, "question": 3}
    assert q["by_stage_reason"] == [{"stage": "critique", "reason": "invalid_json", "count": 4},
                                    {"stage": "question", "reason": "invalid_json", "count": 3}]
    assert len(q["examples"]) == 4  # two per (stage, reason)
    assert all(len(e["raw_text"]) <= EXAMPLE_CHARS + 3 for e in q["examples"])
    assert summary["skipped_videos"] == {"total": 2, "by_reason": {"decode_error": 2}}
