"""Source readers on small files in each real manifest format (STAR, VIDAL-10M, WebVid, a folder)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from videosavi.builders.sources import PROBLEM, candidate_schema, collect, read_source
from videosavi.builders.sources import vidal as vidal_module
from videosavi.builders.sources.base import pattern_fields
from videosavi.builders.sources.sampler import sample_source
from videosavi.config import SourceConfig
from videosavi.errors import ConfigError, ManifestError


def src(kind: str, manifest: str | None = None, root: str = "videos", **kw: object) -> SourceConfig:
    return SourceConfig(kind=kind, root=root, manifest=manifest, quota=kw.pop("quota", 1), **kw)  # type: ignore[arg-type]


def rows(tmp: Path, name: str, cfg: SourceConfig) -> pl.DataFrame:
    frame = read_source(name, cfg, tmp)
    assert isinstance(frame, pl.LazyFrame)
    df = collect(frame, name)
    assert df.schema == candidate_schema()
    return df


def touch(path: Path, data: bytes = b"not decoded by the sampler") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --- STAR -------------------------------------------------------------------------------------------
STAR_ROWS = [
    {"question_id": "Interaction_T1_1", "question": "Which object was tidied up by the person?", "video_id": "6H78U",
     "start": 11.1, "end": 19.6, "answer": "The closet/cabinet.",
     "choices": [{"choice_id": 0, "choice": "The closet/cabinet."}],
     "situations": {"000199": {"rel_pairs": [["o000", "o001"]], "bbox": [[1.0, 2.0, 3.0, 4.0]]}}},
    {"question_id": "Interaction_T1_2", "question": "Another question", "video_id": "6H78U",
     "start": 11.1, "end": 19.6, "situations": {}},  # same clip, another question
    {"question_id": "Sequence_T1_3", "video_id": "6H78U", "start": 2.0, "end": 5.5},  # second clip of 6H78U
    {"question_id": "Sequence_T1_4", "video_id": "YSE1G", "start": 0.3, "end": 8.0},
    {"question_id": "Bad_1", "video_id": "ZZZZZ", "start": "soon", "end": 8.0},
    {"question_id": "Bad_2", "video_id": "QQQQQ", "start": 9.0, "end": 8.0},
    {"question_id": "Bad_3", "video_id": "", "start": 1.0, "end": 2.0},
]


def write_star(tmp: Path, data: object = STAR_ROWS) -> SourceConfig:
    (tmp / "star").mkdir(parents=True, exist_ok=True)
    (tmp / "star" / "STAR_train.json").write_text(json.dumps(data), encoding="utf-8")
    return src("star", "star/STAR_train.json", root="star/videos")


def test_star_gives_one_candidate_per_distinct_clip_in_first_seen_order(tmp_path: Path) -> None:
    df = rows(tmp_path, "star", write_star(tmp_path))
    ok = df.filter(pl.col(PROBLEM).is_null())
    assert ok.select("video_id", "clip_start", "clip_end").rows() == [
        ("6H78U", 11.1, 19.6), ("6H78U", 2.0, 5.5), ("YSE1G", 0.3, 8.0)]
    assert ok["video_path"].to_list() == ["6H78U.mp4", "6H78U.mp4", "YSE1G.mp4"]
    assert set(ok["source"]) == {"star"} and ok["caption"].null_count() == 3
    problems = dict(df.filter(pl.col(PROBLEM).is_not_null()).select("video_id", PROBLEM).rows())
    assert problems == {"ZZZZZ": "start is not a number", "QQQQQ": "end is not after start", "": "empty video id"}


def test_star_pattern_is_configurable(tmp_path: Path) -> None:
    cfg = write_star(tmp_path)
    cfg = cfg.model_copy(update={"pattern": "clips/{video_id}.webm"})
    assert rows(tmp_path, "star", cfg)["video_path"][0] == "clips/6H78U.webm"


@pytest.mark.parametrize("content, message", [
    ('{"video_id": "6H78U"}', "expected a JSON list"),
    ('[{"video_id": "6H78U", "start": 1, "end": 2}', "not valid STAR JSON"),
    ('[{"question_id": "q1"}]', "no row has a 'video_id'"),
])
def test_malformed_star_manifest_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    cfg = write_star(tmp_path)
    (tmp_path / "star" / "STAR_train.json").write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError, match=message) as exc:
        rows(tmp_path, "star", cfg)
    assert "STAR_train.json" in str(exc.value)


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="STAR manifest not found"):
        read_source("star", src("star", "star/STAR_train.json"), tmp_path)


# --- VIDAL-10M --------------------------------------------------------------------------------------
VIDAL = {
    "-0Qv9RP6Hxg": {"folder": "coco_vat_7", "mplug": "a man cooks", "polish_mplug": "A man is cooking pasta.",
                    "ofa": ["a man in a kitchen"], "raw": "Pasta night #cooking"},
    "abcDEF_1234": {"folder": "coco_vat_9", "mplug": "", "raw": "raw title \u00e9\u00e8 \"quoted\" \\ slash"},
    "noFolder000": {"mplug": "dog"},
    "listEntry00": ["not", "an", "object"],
}


def write_vidal(tmp: Path, data: object = VIDAL, text: str | None = None) -> SourceConfig:
    (tmp / "vidal").mkdir(parents=True, exist_ok=True)
    (tmp / "vidal" / "VIDAL_annotations.json").write_text(
        text if text is not None else json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return src("vidal", "vidal/VIDAL_annotations.json", root="vidal/videos")


def test_vidal_reads_the_object_keyed_by_youtube_id(tmp_path: Path) -> None:
    df = rows(tmp_path, "vidal", write_vidal(tmp_path))
    by_id = {r["video_id"]: r for r in df.iter_rows(named=True)}
    assert list(by_id) == list(VIDAL)  # file order
    assert by_id["-0Qv9RP6Hxg"]["video_path"] == "coco_vat_7/-0Qv9RP6Hxg.mp4"
    assert by_id["-0Qv9RP6Hxg"]["caption"] == "A man is cooking pasta."  # polish_mplug first
    assert by_id["abcDEF_1234"]["caption"] == VIDAL["abcDEF_1234"]["raw"]  # empty mplug skipped
    assert by_id["-0Qv9RP6Hxg"][PROBLEM] is None and by_id["abcDEF_1234"][PROBLEM] is None
    assert "folder" in by_id["noFolder000"][PROBLEM]
    assert "not an object" in by_id["listEntry00"][PROBLEM]


def test_vidal_streaming_parser_matches_json_load_at_any_chunk_size(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = {f"id{i:03d}\u00e9": {"folder": f"f{i % 3}", "polish_mplug": f"caption {i} \u4e2d\u6587 {{}}[]\\\"",
                                 "ofa": [1.5e3, None, True, {"x": [i]}]} for i in range(40)}
    cfg = write_vidal(tmp_path, data)
    expected = [(k, f"{v['folder']}/{k}.mp4", v["polish_mplug"]) for k, v in data.items()]
    for chunk in (3, 17, 1 << 20):
        monkeypatch.setattr(vidal_module, "_CHUNK", chunk)
        df = rows(tmp_path, "vidal", cfg)
        assert df.select("video_id", "video_path", "caption").rows() == expected, chunk


@pytest.mark.parametrize("text, message", [
    ('{"a": {"folder": "x"} "b": {}}', "malformed JSON"),
    ('{"a": {"folder": "x"},}', "malformed JSON"),
    ('{"a": {"folder": "x"}', "malformed JSON"),
    ('[{"folder": "x"}]', "not a VIDAL manifest"),
])
def test_malformed_vidal_manifest_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    cfg = write_vidal(tmp_path, text=text)
    with pytest.raises(ManifestError, match=message) as exc:
        rows(tmp_path, "vidal", cfg)
    assert "VIDAL_annotations.json" in str(exc.value)


def test_empty_vidal_object_has_no_candidates(tmp_path: Path) -> None:
    assert rows(tmp_path, "vidal", write_vidal(tmp_path, text="{ }")).height == 0


# --- WebVid -----------------------------------------------------------------------------------------
HEADER = "videoid,contentUrl,duration,page_dir,name\n"


def write_webvid(tmp: Path) -> SourceConfig:
    d = tmp / "webvid"
    d.mkdir(parents=True, exist_ok=True)
    (d / "results_2M_train_2.csv").write_text(
        HEADER + '31353427,https://example.com/b.mp4,PT00H00M13S,001051_001100,"Sunset, with ""quotes"""\n'
        "1066692565,https://example.com/a.mp4,PT00H00M11S,006001_006050,duplicate of file 1\n", encoding="utf-8")
    (d / "results_2M_train_1.csv").write_text(
        HEADER + "1066692565,https://example.com/a.mp4,PT00H00M11S,006001_006050,Aerial shot of a forest\n"
        "0042,https://example.com/c.mp4,PT00H00M05S,,Missing page dir\n", encoding="utf-8")
    (d / "other.csv").write_text("not,a,manifest\n", encoding="utf-8")  # not matched by the glob
    return src("webvid", "webvid/results_*.csv", root="webvid/videos")


def test_webvid_scans_all_matching_csvs_lazily_in_sorted_order(tmp_path: Path) -> None:
    cfg = write_webvid(tmp_path)
    frame = read_source("webvid", cfg, tmp_path)
    assert "csv" in frame.explain().lower()  # a lazy scan, not rows loaded up front
    df = rows(tmp_path, "webvid", cfg)
    assert df.select("video_id", "video_path", "caption").rows() == [
        ("1066692565", "006001_006050/1066692565.mp4", "Aerial shot of a forest"),  # file _1 first; dup dropped
        ("0042", None, "Missing page dir"),
        ("31353427", "001051_001100/31353427.mp4", 'Sunset, with "quotes"'),
    ]
    assert "page_dir" in df[PROBLEM][1] and df[PROBLEM][0] is None


def test_webvid_without_a_needed_column_names_the_file(tmp_path: Path) -> None:
    cfg = write_webvid(tmp_path)
    (tmp_path / "webvid" / "results_2M_train_3.csv").write_text("videoid,name\n1,x\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"results_2M_train_3\.csv.*page_dir"):
        read_source("webvid", cfg, tmp_path)
    with pytest.raises(ManifestError, match="no WebVid manifest matches"):
        read_source("webvid", src("webvid", "webvid/nothing_*.csv"), tmp_path)


# --- folder -----------------------------------------------------------------------------------------
def test_folder_lists_video_files_recursively_and_sorted(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    for rel in ["b.mp4", "a/Z.MKV", "a/c.webm", "notes.txt", ".hidden.mp4", ".cache/x.mp4", "a/b/deep.mov"]:
        touch(root / rel)
    df = rows(tmp_path, "mine", src("folder", root="mine"))
    assert df["video_path"].to_list() == ["b.mp4", "a/Z.MKV", "a/c.webm", "a/b/deep.mov"]
    assert df["video_id"].to_list() == df["video_path"].to_list()
    assert rows(tmp_path, "mine", src("folder", root="mine", extensions=[".mkv"]))["video_path"].to_list() == [
        "a/Z.MKV"]
    with pytest.raises(ConfigError, match="folder source"):
        read_source("mine", src("folder", root="mine", pattern="{x}.mp4"), tmp_path)
    with pytest.raises(ManifestError, match="video folder not found"):
        read_source("mine", src("folder", root="nowhere"), tmp_path)


@pytest.mark.parametrize("pattern", ["{}.mp4", "{0}.mp4", "{video_id:>8}.mp4", "{video_id!r}", "static.mp4",
                                     "{video_id"])
def test_bad_file_patterns_are_config_errors(pattern: str) -> None:
    with pytest.raises(ConfigError):
        pattern_fields(pattern)


# --- availability: a listed video without its file ----------------------------------------------------
def test_a_listed_video_whose_file_is_missing_is_unavailable_not_fatal(tmp_path: Path) -> None:
    cases = {
        "star": (write_star(tmp_path), ["star/videos/YSE1G.mp4"]),
        "vidal": (write_vidal(tmp_path), ["vidal/videos/coco_vat_9/abcDEF_1234.mp4"]),
        "webvid": (write_webvid(tmp_path), ["webvid/videos/001051_001100/31353427.mp4"]),
    }
    for name, (cfg, present) in cases.items():
        for rel in present:
            touch(tmp_path / rel)
        videos, summary, _ = sample_source(name, cfg.model_copy(update={"quota": 10}), tmp_path, seed=1)
        available = [v.video_path for v in videos if v.available]
        assert available == [Path(p).relative_to(cfg.root).as_posix() for p in present], name
        missing = [v for v in videos if not v.available]
        assert missing and all(v.unavailable_reason == "missing_file" for v in missing), name
        assert summary.shortfall == 10 - len(present)
