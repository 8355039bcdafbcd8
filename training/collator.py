"""`VideoDPOCollator`: preference rows in, one DPO batch (chosen half, then rejected half) out.

TRL 1.16's `DPOTrainer` prepares images but not video. This collator does what its vision collator
does (chat template, left-padded prompts, right-padded completions, completion mask, flush-left),
but decodes each row's stored frames itself and hands them to the processor as `videos=`, with the
same processor options the builder's transformers backend uses (`do_sample_frames=False`: the frames
are already the sampled ones; channels-last). Qwen-VL's `mm_token_type_ids` and Gemma-style
`token_type_ids` are extended over the completion. For processors without video support the frames
go in as images, one image block per frame.

It is public (`from videosavi.training import VideoDPOCollator`) so stock TRL can train on a
published revision with nothing else of videosavi: rows straight from `load_dataset(repo,
revision=...)` find their video through `video_roots` (`source` -> folder), and the prompt is the row's
conversational `prompt` when it has one, else the answer-stage prompt built from its `question`
(docs/training.md has the whole example). `savi train` uses the same class on rows it has already
checked (`video_file` set, sha256 verified).

Decoding happens here, per batch, in the data-loader workers: memory stays flat whatever the size
of the revision (see `data.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, Literal

from videosavi.errors import ModelError, TrainingDataError
from videosavi.training.prompt import (
    assistant_turn,
    chat_messages,
    frames_as_images,
    is_conversation,
    training_prompt,
)
from videosavi.training.video_frames import decode_row_frames, row_video_file

FramesMode = Literal["video", "images"]


def has_video_support(processor: Any) -> bool:
    return getattr(processor, "video_processor", None) is not None


def pick_frames_mode(processor: Any, requested: str = "auto") -> FramesMode:
    """"video" when the processor has a video processor, else "images"; an impossible request is an error."""
    if requested == "auto":
        return "video" if has_video_support(processor) else "images"
    if requested == "video" and not has_video_support(processor):
        raise ModelError(f"{type(processor).__name__} has no video processor; use --frames-as images (or auto)")
    if requested == "video":
        return "video"
    if requested == "images":
        return "images"
    raise ModelError(f"unknown frames mode {requested!r}; use auto, video or images")


@dataclass
class VideoDPOCollator:
    """Preference rows -> model inputs + `completion_mask` for TRL's `DPOTrainer` (`data_collator=`).

    A row needs `chosen` and `rejected` (text, or assistant messages), `frame_indices`, its video
    (`video_file`, or `source` + `video_path` resolved under `video_roots`), and its prompt (a
    conversational `prompt` column, else `question`, rendered with `answer_template`: the revision's
    `prompts/answer.txt`, default the bundled one). `mode`: "video" (processor `videos=`), "images"
    (one image per frame) or "auto" (video when the processor has a video processor). `resize`:
    (H, W) as the build's `frames.resize`. `load_frames(file, indices, resize)` decodes.
    `phrase_masks=True` (what `savi train --loss rrpo` turns on) adds, aligned with `input_ids`, one
    0/1 row per differing phrase of each pair (from its `diff_spans`) and which pairs had none.
    """

    processor: Any
    _: KW_ONLY
    video_roots: Mapping[str, str | Path] | None = None
    mode: FramesMode | Literal["auto"] = "auto"
    resize: tuple[int, int] | None = None
    answer_template: str | None = None
    load_frames: Callable[..., Any] = field(default=decode_row_frames)
    return_tensors: str = "pt"
    phrase_masks: bool = False  # RRPO: also `phrase_mask` (2B, P, L) and `phrase_fallback` (B,); see phrase_masks.py

    def __post_init__(self) -> None:
        self.mode = pick_frames_mode(self.processor, self.mode)
        if self.resize is not None:
            self.resize = (int(self.resize[0]), int(self.resize[1]))

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        return self.torch_call(examples)

    def frames(self, example: dict[str, Any]) -> Any:
        return self.load_frames(row_video_file(example, self.video_roots), list(example["frame_indices"]),
                                self.resize)

    def prompt(self, example: dict[str, Any], num_frames: int) -> list[dict]:
        """The row's own conversational prompt when it has one, else the answer-stage prompt of its question."""
        given = example.get("prompt")
        if is_conversation(given):
            messages = chat_messages(given, needs_video=True)
        elif "question" in example:
            messages = training_prompt(example["question"], num_frames, self.answer_template)
        else:
            raise TrainingDataError(f"pair {example.get('pair_id', '?')} has neither a conversational `prompt` "
                                    "nor a `question` to build one from")
        return frames_as_images(messages, num_frames) if self.mode == "images" else messages

    @staticmethod
    def completion(value: Any) -> list[dict]:
        """`chosen`/`rejected` as assistant messages (published rows hold plain text)."""
        return chat_messages(value) if is_conversation(value) else assistant_turn(str(value))

    def media_kwargs(self, clips: list[Any]) -> dict[str, Any]:
        """Processor arguments carrying the frames of the prompts (chosen half + rejected half)."""
        if self.mode == "video":
            return {"videos": clips * 2, "do_sample_frames": False, "input_data_format": "channels_last"}
        from PIL import Image

        images = [[Image.fromarray(frame) for frame in clip] for clip in clips]
        return {"images": images * 2}

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch
        from trl.data_utils import apply_chat_template
        from trl.trainer.utils import flush_left, pad

        clips = [self.frames(ex) for ex in examples]
        texts = [
            apply_chat_template({"prompt": self.prompt(ex, len(clip)), "chosen": self.completion(ex["chosen"]),
                                 "rejected": self.completion(ex["rejected"])}, self.processor)
            for ex, clip in zip(examples, clips, strict=True)
        ]
        common: dict[str, Any] = {"padding": True, "return_tensors": self.return_tensors, "add_special_tokens": False}
        prompts = self.processor(text=[t["prompt"] for t in texts] * 2, padding_side="left",
                                 **self.media_kwargs(clips), **common)
        chosen = self.processor(text=[t["chosen"] for t in texts], padding_side="right", **common)
        rejected = self.processor(text=[t["rejected"] for t in texts], padding_side="right", **common)

        tok = self.processor.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        completion_ids = torch.cat(tuple(pad([chosen["input_ids"], rejected["input_ids"]], padding_value=pad_id)))
        completion_attn = torch.cat(tuple(pad([chosen["attention_mask"], rejected["attention_mask"]], padding_value=0)))
        prompt_attn = prompts["attention_mask"]
        seqs: dict[str, Any] = {
            "attention_mask": torch.cat((prompt_attn, completion_attn), dim=1),
            "input_ids": torch.cat((prompts["input_ids"], completion_ids), dim=1),
            "completion_mask": torch.cat((torch.zeros_like(prompt_attn), completion_attn), dim=1),
        }
        for key in ("mm_token_type_ids", "token_type_ids"):
            if key in prompts:  # media markers live in the prompt only; completions are text
                seqs[key] = torch.cat((prompts[key], torch.zeros_like(completion_ids)), dim=1)
        phrases: list[str] = []
        fallback = None
        if self.phrase_masks:
            from videosavi.training.phrase_masks import batch_phrase_masks

            mask, fallback = batch_phrase_masks(tok, examples, texts, completion_ids, completion_attn)
            for p in range(mask.shape[1]):  # flush_left takes 2-D tensors: one per phrase
                phrases.append(f"phrase_mask_{p}")
                seqs[phrases[-1]] = torch.cat((torch.zeros_like(prompt_attn), mask[:, p]), dim=1)
        names = list(seqs)  # attention_mask first: flush_left shifts every tensor by that mask's padding
        flushed = dict(zip(names, flush_left(*(seqs[n] for n in names)), strict=True))
        out = dict(prompts)  # keeps pixel_values(_videos), *_grid_thw, ...
        out.update((n, t) for n, t in flushed.items() if n not in phrases)
        if self.phrase_masks:
            out["phrase_mask"] = torch.stack([flushed[n] for n in phrases], dim=1)
            out["phrase_fallback"] = fallback
        return out


def check_batchable(collator: VideoDPOCollator, rows: list[dict[str, Any]], batch_size: int) -> None:
    """Refuse, before any step, batches this processor cannot form.

    Videos shorter than the build's frame count keep fewer indices. Qwen-VL flattens a batch's videos
    into one patch sequence and takes any mix; InternVL and LLaVA-OneVision stack them and need equal
    frame counts. One trial collation of two rows with different counts tells which kind we have.
    """
    if batch_size < 2:
        return
    by_count: dict[int, dict[str, Any]] = {}
    for row in rows:
        by_count.setdefault(len(row["frame_indices"]), row)
    if len(by_count) < 2:
        return
    counts = sorted(by_count)
    try:
        collator([by_count[counts[0]], by_count[counts[-1]]])
    except (ValueError, RuntimeError) as exc:
        raise TrainingDataError(
            f"pairs have different frame counts ({', '.join(map(str, counts))}) and "
            f"{type(collator.processor).__name__} cannot batch videos of different lengths; use "
            f"--per-device-batch-size 1 (with --grad-accum for the same effective batch). Detail: {str(exc)[:200]}"
        ) from exc
