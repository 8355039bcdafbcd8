"""What flows through the pipeline: a decoded video, its result (pairs, quarantine, counts), and the
build's context. Apart from the pipeline and the stages, which both use them, so neither imports the
other for its types."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from videosavi.builders.generate.prompts import PromptSet
from videosavi.config import BuildConfig
from videosavi.schemas import PreferencePair, QuarantineRecord, VideoRef

if TYPE_CHECKING:
    from videosavi.builders.decode.frames import DecodedFrames
    from videosavi.curation import CurationConfig


@dataclass
class DecodedVideo:
    seq: int
    video: VideoRef
    decoded: DecodedFrames

    @property
    def sha256(self) -> str | None:
        """The hash of the bytes the frames were decoded from (`source_decode`); rows and call keys use
        it, never a hash taken earlier from a file that may have been replaced since."""
        return self.decoded.sha256 or self.video.sha256


@dataclass
class VideoResult:
    seq: int
    video: VideoRef
    status: str  # "done" | "pending" (transient call errors: retried by the next run)
    pairs: list[PreferencePair] = field(default_factory=list)
    quarantine: list[QuarantineRecord] = field(default_factory=list)
    no_pair_reasons: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    questions: int = 0
    video_meta: dict[str, Any] = field(default_factory=dict)  # duration, fps, num_frames as decoded
    description: str | None = None  # retrospective builds: this iteration's description of the video
    failed_stage: str | None = None  # a pending video: the stage whose model call failed first ...
    call_error: str | None = None  # ... and that call's error (the server's reply, or why there was none)
    revised_previous: bool = False  # ... written as a revision of the previous iteration's

    def summary(self) -> dict[str, Any]:
        out = {
            "questions": self.questions,
            "pairs": len(self.pairs),
            "no_pair_reasons": dict(self.no_pair_reasons),
            "filtered": dict(self.filtered),
            "video": self.video_meta,
        }
        if self.description is not None:
            out["described"] = {"revised_previous": self.revised_previous}
        return out


def decoded_meta(decoded: DecodedFrames) -> dict[str, Any]:
    """The `VideoRef` fields only decoding learns (sampling reads no video headers: a hostile file must
    meet FFmpeg in a decoder worker, never in the build process)."""
    return {"duration": round(float(decoded.duration), 6), "fps": round(float(decoded.fps), 6),
            "num_frames": int(decoded.sample.num_frames)}


@dataclass
class PipelineContext:
    cfg: BuildConfig
    curation: CurationConfig
    prompts: PromptSet
    iteration: int
    model_name: str
    model_revision: str
    builder_version: str
    generation_json: str
    previous_descriptions: Mapping[str, str] = field(default_factory=dict)  # video_uid -> iteration t-1's
