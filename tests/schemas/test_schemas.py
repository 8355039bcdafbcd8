"""Record-level rules live in the schemas; the derived Arrow schema round-trips records unchanged."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from tests.helpers.factories import make_issue, make_pair, make_pairs
from videosavi.schemas import Critique, FrameSample, PreferencePair, VideoRef, question_set_model
from videosavi.schemas.arrow import arrow_schema, features, field_table, from_table, to_table
from videosavi.schemas.json_schema import json_schema, response_format

UNSAFE = ["/abs/video.mp4", "../up.mp4", "a/../../b.mp4", "C:/x.mp4", "a\\b.mp4", "", "a//b.mp4"]


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_paths_rejected(path: str) -> None:
    with pytest.raises(ValidationError):
        VideoRef(source="star", video_id="x", video_path=path)
    with pytest.raises(ValidationError):
        make_pair(video_path=path)


def test_safe_relative_path_normalised() -> None:
    ref = VideoRef(source="webvid", video_id="1", video_path="./page/1.mp4")
    assert ref.video_path == "page/1.mp4"


@pytest.mark.parametrize("field", ["question", "rejected", "chosen", "critique"])
def test_empty_texts_rejected(field: str) -> None:
    with pytest.raises(ValidationError):
        make_pair(**{field: "   "})


def test_chosen_equal_rejected_after_normalisation() -> None:
    with pytest.raises(ValidationError, match="same answer"):
        make_pair(rejected="The cup is red.", chosen="  the CUP is   red ")


def test_severity_must_match_issues() -> None:
    with pytest.raises(ValidationError, match="severity"):
        make_pair(issues=[make_issue("minor")], severity="critical")
    with pytest.raises(ValidationError, match="severity"):
        make_pair(issues=[make_issue("minor"), make_issue("critical")], severity="minor")
    assert make_pair(issues=[make_issue("minor"), make_issue("critical")]).severity == "critical"


def test_a_pair_without_issues_has_severity_none_and_nothing_else() -> None:
    """A critique that found nothing still yields a pair under the `paper` profile: its severity says so."""
    pair = make_pair(issues=[])
    assert (pair.issues, pair.severity) == ([], "none")
    for wrong in ("minor", "critical"):
        with pytest.raises(ValidationError, match="severity"):
            make_pair(issues=[], severity=wrong)
    with pytest.raises(ValidationError, match="severity"):
        make_pair(issues=[make_issue("minor")], severity="none")


def test_unknown_error_type_rejected() -> None:
    with pytest.raises(ValidationError):
        make_pair(issues=[make_issue(error_type="style")])


@pytest.mark.parametrize(
    ("indices", "timestamps", "total"),
    [([0, 5, 5], [0, 1, 2], 10), ([3, 2], [0, 1], 10), ([0, 10], [0, 1], 10), ([-1, 2], [0, 1], 10), ([0, 1], [0], 10)],
)
def test_frame_indices_rules(indices: list[int], timestamps: list[float], total: int) -> None:
    with pytest.raises(ValidationError):
        FrameSample(frame_indices=indices, frame_timestamps=timestamps, num_frames=total)
    with pytest.raises(ValidationError):
        make_pair(frame_indices=indices, frame_timestamps=timestamps, video_num_frames=total)


def test_derived_fields_checked_on_load() -> None:
    pair = make_pair()
    data = pair.model_dump()
    data["chosen_words"] += 1
    with pytest.raises(ValidationError, match="words"):
        PreferencePair.model_validate(data)
    data = pair.model_dump()
    data["pair_id"] = "f" * 20
    with pytest.raises(ValidationError, match="pair_id"):
        PreferencePair.model_validate(data)


def test_clip_span_in_uid() -> None:
    pair = make_pair(clip_start=1.5, clip_end=7.25)
    assert pair.video_uid == "star/6H78U#t=1.50,7.25"
    with pytest.raises(ValidationError):
        make_pair(clip_start=5.0, clip_end=2.0)


def test_arrow_round_trip_through_parquet(tmp_path) -> None:
    pairs = [*make_pairs(n_videos=3), make_pair(clip_start=0.5, clip_end=3.0, question="Unicode: où est le café ☕?")]
    table = to_table(pairs, PreferencePair)
    assert table.schema == arrow_schema(PreferencePair)
    pq.write_table(table, tmp_path / "x.parquet")
    back = from_table(pq.read_table(tmp_path / "x.parquet"), PreferencePair)
    assert back == pairs


def test_features_match_arrow_schema() -> None:
    feats = features(PreferencePair)
    assert set(feats) == set(arrow_schema(PreferencePair).names)
    assert pa.types.is_list(arrow_schema(PreferencePair).field("issues").type)
    names = [n for n, _, _ in field_table(PreferencePair)]
    assert names == list(PreferencePair.model_fields)


def test_video_ref_round_trip_includes_uid() -> None:
    refs = [VideoRef(source="star", video_id="A", video_path="A.mp4", clip_start=1.0, clip_end=2.0)]
    table = to_table(refs, VideoRef)
    assert table.column("video_uid").to_pylist() == ["star/A#t=1.00,2.00"]
    assert from_table(table, VideoRef) == refs


def test_json_schema_bounded_and_self_contained() -> None:
    schema = json_schema(Critique)
    text = str(schema)
    assert "$ref" not in text and "$defs" not in text
    issue = schema["properties"]["issues"]["items"]
    assert issue["properties"]["statement"]["maxLength"] == 400
    assert set(issue["properties"]["error_type"]["enum"]) >= {"temporal_ordering", "detail_omission"}
    assert schema["properties"]["issues"]["maxItems"] >= 1
    assert schema["additionalProperties"] is False
    qs = json_schema(question_set_model(2, 4))
    assert qs["properties"]["spatial"]["minItems"] == qs["properties"]["spatial"]["maxItems"] == 2
    assert qs["properties"]["temporal"]["maxItems"] == 4
    assert response_format(Critique)["json_schema"]["strict"] is True
