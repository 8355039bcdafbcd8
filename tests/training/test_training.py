"""DPO + LoRA from a published revision: real videos, a real local store, the tiny Qwen2-VL on CPU.

One short training run (2 steps) is shared by the tests that inspect its outputs; the failure paths
(missing videos, changed files, unmapped sources) stop before any model is loaded, so they are fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.factories import make_pair, make_pairs, write_run_dir
from tests.helpers.videos import read_barcode
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.sources.synthetic_video import write_video
from videosavi.cli import app
from videosavi.compat import ensure_torchvision_importable
from videosavi.errors import ConfigError, TrainingDataError
from videosavi.hashing import sha256_file
from videosavi.hub.load import resolve_revision
from videosavi.hub.publish import publish_run
from videosavi.training.args import TrainArgs, TrainResult
from videosavi.training.collator import VideoDPOCollator, check_batchable, pick_frames_mode
from videosavi.training.data import ROW_COLUMNS, SHA_MISMATCH, prepare_training_data
from videosavi.training.lora_targets import find_lora_targets
from videosavi.training.model_io import load_policy, resolve_model_source
from videosavi.training.prompt import training_prompt
from videosavi.training.revision import open_revision
from videosavi.training.video_frames import decode_row_frames
from videosavi.training.video_roots import parse_video_roots, resolve_roots, roots_from_config
from videosavi.workflows.loop import LoopStep, run_loop

ensure_torchvision_importable()

REPO = "org/videosavi-train"
NUM_FRAMES = 16
FPS = 8
INDICES = [0, 5, 10, 15]
W, H = 96, 64  # wide enough for the frame-index barcode of synthetic videos
SOURCES = ("star", "vidal", "webvid")


@dataclass
class Published:
    root: Path
    roots: dict[str, Path]
    store: Path
    sha: str
    files: list[Path]  # one per video, in make_pairs order


def _publish(base: Path, n_videos: int = 3, per_video: int = 2) -> Published:
    """Real mp4 files + pairs pointing at them (path, sha256, frame indices) + one tagged commit."""
    roots = {s: base / "videos" / s for s in SOURCES}
    pairs, files = [], []
    for p in make_pairs(n_videos=n_videos, per_video=per_video, sources=SOURCES):
        path = roots[p.source] / p.video_path
        if not path.exists():
            write_video(path, num_frames=NUM_FRAMES, fps=FPS, width=W, height=H, seed=len(files) + 1)
            files.append(path)
        fields = p.model_dump(exclude={"pair_id", "video_uid", "severity", "chosen_words", "rejected_words",
                                       "diff_spans", "created_at"})
        fields.update(video_sha256=sha256_file(path), video_num_frames=NUM_FRAMES, frame_indices=INDICES,
                      frame_timestamps=[i / FPS for i in INDICES])
        pairs.append(make_pair(**fields))
    run = write_run_dir(base / "run", pairs)
    store = base / "store"
    res = publish_run(run.path, REPO, store=store)
    return Published(root=base, roots=roots, store=store, sha=res.commit_sha, files=files)


def _args(pub: Published, output: Path, **over: Any) -> TrainArgs:
    fields: dict[str, Any] = dict(
        dataset=REPO, revision="iter1", model="tiny-qwen2-vl", output=output, video_roots=pub.roots,
        store=pub.store, max_steps=2, per_device_batch_size=2, grad_accum=1, lr=1e-3, warmup_ratio=0.0,
        dataloader_workers=0,
    )
    fields.update(over)
    return TrainArgs(**fields)


def _logits(model: Any, batch: dict[str, Any]) -> torch.Tensor:
    model.eval()
    inputs = {k: v for k, v in batch.items() if k != "completion_mask"}
    with torch.no_grad():
        return model(**inputs).logits.float()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> Published:
    return _publish(tmp_path_factory.mktemp("published"))


@pytest.fixture(scope="module")
def probe_rows(published: Published) -> list[dict[str, Any]]:
    rev = open_revision(REPO, "iter1", store=published.store)
    return prepare_training_data(rev.dataset, published.roots).rows[:2]


@dataclass
class Trained:
    result: TrainResult
    processor: Any
    batch: dict[str, Any]
    logits: torch.Tensor  # trained PEFT model, before merging
    lora_b: float


def lora_b_norm(model: Any) -> float:
    """Sum of |LoRA B|: zero at initialisation, so > 0 proves the adapter learned something."""
    return float(sum(p.detach().abs().sum().item() for n, p in model.named_parameters() if "lora_B" in n))


@pytest.fixture(scope="module")
def trained(published: Published, probe_rows: list[dict[str, Any]],
            tmp_path_factory: pytest.TempPathFactory) -> Trained:
    base_dir = resolve_model_source("tiny-qwen2-vl")
    _, processor = load_policy(base_dir)
    batch = VideoDPOCollator(processor)(probe_rows)
    seen: dict[str, Any] = {}

    def capture(model: Any) -> None:
        seen["lora_b"] = lora_b_norm(model)
        seen["logits"] = _logits(model, batch)

    result = _train(_args(published, tmp_path_factory.mktemp("out") / "model"), capture)
    return Trained(result=result, processor=processor, batch=batch, logits=seen["logits"], lora_b=seen["lora_b"])


def _train(args: TrainArgs, before_merge: Any = None) -> TrainResult:
    from videosavi.training.train import train_dpo

    return train_dpo(args, before_merge=before_merge)


# --- the training run ---------------------------------------------------------------------------------------


def test_two_steps_run_with_finite_losses_and_lora_learns(trained: Trained) -> None:
    res = trained.result
    assert res.steps == 2
    losses = [row["loss"] for row in res.history]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    for name in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert name in res.final_metrics and math.isfinite(res.final_metrics[name])
    assert trained.lora_b > 0  # LoRA B starts at zero: non-zero means the optimiser moved it
    from safetensors.torch import load_file

    weights = load_file(res.adapter_dir / "adapter_model.safetensors")
    b = [t for n, t in weights.items() if "lora_B" in n]
    assert b and any(t.abs().sum() > 0 for t in b)
    # LoRA sits on the language model only, never on the vision tower
    assert all("language_model" in n for n in weights)
    assert "visual" not in "".join(weights)


def test_adapter_reloads_to_identical_logits(trained: Trained) -> None:
    from peft import PeftModel

    base, _ = load_policy(resolve_model_source("tiny-qwen2-vl"))
    model = PeftModel.from_pretrained(base, str(trained.result.adapter_dir))
    torch.testing.assert_close(_logits(model, trained.batch), trained.logits)  # computed floats: a tolerance


def test_merged_model_loads_through_auto_classes_and_differs_from_base(trained: Trained) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    merged_dir = trained.result.merged_dir
    assert merged_dir is not None
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir)
    processor = AutoProcessor.from_pretrained(merged_dir)
    assert type(processor).__name__ == type(trained.processor).__name__
    batch = trained.batch
    merged_logits = _logits(merged, batch)
    assert torch.allclose(merged_logits, trained.logits, atol=1e-4)
    base = AutoModelForImageTextToText.from_pretrained(resolve_model_source("tiny-qwen2-vl"))
    assert (merged_logits - _logits(base, batch)).abs().max() > 1e-4
    assert not list(merged_dir.glob("adapter_*"))  # a plain checkpoint, no PEFT needed to use it


def test_card_and_train_json_name_the_exact_data(trained: Trained, published: Published) -> None:
    from huggingface_hub import ModelCard

    res = trained.result
    card = ModelCard.load(res.merged_dir / "README.md")
    assert card.data.datasets == [REPO]
    assert card.data.library_name == "transformers"
    text = card.text
    for needle in (REPO, "iter1", published.sha, "rewards/margins", "rewards/accuracies", "lora_alpha"):
        assert needle in text
    assert ModelCard.load(res.adapter_dir / "README.md").data.library_name == "peft"
    record = json.loads(res.train_json.read_text())
    assert record["dataset"] == {**record["dataset"], "repo": REPO, "revision": "iter1", "sha": published.sha}
    assert record["counts"]["kept_rows"] == record["counts"]["total_rows"] == 6
    assert [h["step"] for h in record["history"]] == [1, 2]
    assert record["args"]["lora_r"] == 8 and record["args"]["beta"] == 0.1
    assert record["args"]["loss"] == "sigmoid"  # the paper's objective is the default
    assert record["objective"] == {"loss": "sigmoid", "title": "DPO (sigmoid loss)", "beta": 0.1}
    assert record["history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy == reference at step 1
    assert record["precision"] == {"use_cpu": True, "bf16": False, "gradient_checkpointing": False}
    # LoRA on every linear of the language model (ms-swift's all-linear), recorded with its count
    lora = record["lora"]
    adapted = _adapted_modules(res.adapter_dir)
    assert lora["mode"] == "all-linear" and lora["count"] == len(adapted)
    assert sorted(lora["leaf_names"]) == sorted({n.rsplit(".", 1)[-1] for n in adapted})
    assert {"q_proj", "o_proj", "gate_proj", "down_proj"} <= set(lora["leaf_names"])
    assert f"all-linear: {lora['count']} modules" in text and "every linear layer of the language model" in text


def _adapted_modules(adapter_dir: Path) -> list[str]:
    """Module names that carry LoRA weights in a saved adapter, in file order."""
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    return sorted({k.split(".lora_A")[0].removeprefix("base_model.model.") for k in keys if ".lora_A" in k})


def test_attention_only_lora_from_the_cli_is_recorded(published: Published, tmp_path: Path) -> None:
    out = tmp_path / "attn"
    result = CliRunner().invoke(app, [
        "train", "-d", REPO, "-r", "iter1", "-m", "tiny-qwen2-vl", "-o", str(out), "--store", str(published.store),
        *[f"--video-root={s}={d}" for s, d in published.roots.items()], "--max-steps", "1",
        "--per-device-batch-size", "2", "--grad-accum", "1", "--warmup-ratio", "0", "--dataloader-workers", "0",
        "--no-merge", "--no-progress",
        "--lora-targets", "attention",
    ])
    assert result.exit_code == 0, result.output
    lora = json.loads((out / "train.json").read_text())["lora"]
    adapted = _adapted_modules(out / "adapter")
    expected = find_lora_targets(load_policy(resolve_model_source("tiny-qwen2-vl"))[0], "attention")
    assert lora["mode"] == "attention" and lora["count"] == len(adapted) == expected.count
    assert set(adapted) == set(expected.names)
    assert set(lora["leaf_names"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert "LoRA" in result.output and "attention:" in result.output


def test_lora_regex_matching_nothing_stops_before_the_videos_are_checked(published: Published,
                                                                         tmp_path: Path) -> None:
    nowhere = {s: tmp_path / "no-videos" / s for s in SOURCES}  # would fail the data checks
    with pytest.raises(ConfigError, match=r"--lora-targets '\.\*nothing' matches no linear layer"):
        _train(_args(published, tmp_path / "out", video_roots=nowhere, lora_targets=r".*nothing"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="neither all-linear, attention nor a valid regex"):
        _train(_args(published, tmp_path / "out", lora_targets="(oops"))


def test_dpo_dynamics_plot_is_written_and_linked_from_both_cards(trained: Trained) -> None:
    from PIL import Image

    res = trained.result
    plot = res.output / "plots" / "dpo_dynamics.png"
    with Image.open(plot) as img:
        assert img.format == "PNG" and img.width > 500
    for folder in (res.adapter_dir, res.merged_dir):
        assert folder is not None
        assert (folder / "plots" / "dpo_dynamics.png").read_bytes() == plot.read_bytes()
        assert "![DPO training dynamics](plots/dpo_dynamics.png)" in (folder / "README.md").read_text()


def test_finished_output_is_not_overwritten_by_accident(trained: Trained, published: Published) -> None:
    with pytest.raises(ConfigError, match="already holds a finished training run"):
        _train(_args(published, trained.result.output))


# --- the video really reaches the model ------------------------------------------------------------------


def test_different_frames_change_the_logits(published: Published, probe_rows: list[dict[str, Any]]) -> None:
    model, processor = load_policy(resolve_model_source("tiny-qwen2-vl"))
    row = probe_rows[0]
    other = next(f for f in published.files if str(f) != row["video_file"])
    same = _logits(model, VideoDPOCollator(processor)([row]))
    again = _logits(model, VideoDPOCollator(processor)([dict(row)]))
    swapped = _logits(model, VideoDPOCollator(processor)([{**row, "video_file": str(other)}]))
    torch.testing.assert_close(same, again)  # computed floats: a tolerance, far below the difference below
    assert (same - swapped).abs().max() > 1e-4


def test_collator_marks_only_completions_and_decodes_stored_indices(probe_rows: list[dict[str, Any]]) -> None:
    _, processor = load_policy(resolve_model_source("tiny-qwen2-vl"))
    calls: list[tuple[str, list[int], Any]] = []

    def spy(path: str, indices: list[int], resize: Any) -> Any:
        calls.append((path, indices, resize))
        return decode_row_frames(path, indices, resize)

    batch = VideoDPOCollator(processor, load_frames=spy)(probe_rows)
    assert [c[1] for c in calls] == [INDICES, INDICES]
    frames = decode_row_frames(probe_rows[0]["video_file"], INDICES, None)
    assert [read_barcode(f) for f in frames] == INDICES  # the stored frames, not a fresh sampling
    ids, mask = batch["input_ids"], batch["completion_mask"]
    assert ids.shape[0] == 4  # chosen half + rejected half
    video_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert ((ids == video_id) & (mask == 1)).sum() == 0  # video tokens are prompt, never completion
    assert (ids == video_id).any(dim=1).all()
    assert batch["mm_token_type_ids"].shape == ids.shape
    assert ((batch["mm_token_type_ids"] > 0) == (ids == video_id)).all()
    chosen_text = processor.tokenizer.decode(ids[0][mask[0] == 1])
    assert probe_rows[0]["chosen"].split()[0] in chosen_text


def test_images_fallback_feeds_each_frame_as_an_image(probe_rows: list[dict[str, Any]]) -> None:
    model, processor = load_policy(resolve_model_source("tiny-qwen2-vl"))
    assert pick_frames_mode(processor) == "video"
    batch = VideoDPOCollator(processor, mode="images")(probe_rows[:1])
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    video_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert "pixel_values" in batch and "pixel_values_videos" not in batch
    assert int(batch["image_grid_thw"].shape[0]) == 2 * len(INDICES)  # one grid per frame, x2 halves
    assert not (batch["input_ids"] == video_id).any() and (batch["input_ids"] == image_id).any()
    assert torch.isfinite(_logits(model, batch)).all()


def test_mixed_frame_counts_are_refused_only_where_the_processor_stacks_videos(
        probe_rows: list[dict[str, Any]]) -> None:
    rows = [probe_rows[0], {**probe_rows[1], "frame_indices": [0, 7, 14]}]
    _, qwen = load_policy(resolve_model_source("tiny-qwen2-vl"))
    check_batchable(VideoDPOCollator(qwen), rows, batch_size=2)  # Qwen-VL flattens: any mix works
    _, internvl = load_policy(resolve_model_source("tiny-internvl"))
    check_batchable(VideoDPOCollator(internvl), rows, batch_size=1)
    with pytest.raises(TrainingDataError, match=r"different frame counts \(3, 4\).*--per-device-batch-size 1"):
        check_batchable(VideoDPOCollator(internvl), rows, batch_size=2)


def test_training_prompt_is_the_builders_answer_turn() -> None:
    msgs = training_prompt("Where is the cup?", 32)
    assert msgs[0]["role"] == "user"
    assert msgs[0]["content"][0] == {"type": "video"}
    # a0 is the model's answer to the bare question: the user turn is the video and the question, nothing else
    assert msgs[0]["content"][1] == {"type": "text", "text": "Where is the cup?"} and len(msgs) == 1
    custom = training_prompt("Q?", 4, "Frames: ${num_frames}. ${question}")
    assert custom[0]["content"][1]["text"] == "Frames: 4. Q?"


# --- bad input stops before any step ----------------------------------------------------------------------


@pytest.fixture()
def damaged(tmp_path: Path, videosavi_cache: str) -> Published:
    return _publish(tmp_path, n_videos=3, per_video=2)


def test_missing_videos_above_threshold_stop_before_the_model_is_loaded(damaged: Published, tmp_path: Path) -> None:
    damaged.files[0].unlink()  # 2 of 6 pairs lose their video: 33% > 5%
    out = tmp_path / "out"
    # A model that cannot load: reaching it would raise ModelError, so TrainingDataError proves the order.
    with pytest.raises(TrainingDataError, match=r"2 of 6 pairs .*missing_file: 2"):
        _train(_args(damaged, out, model=str(tmp_path / "no-such-model")))
    assert not out.exists()


def test_missing_videos_below_threshold_are_skipped_and_counted(damaged: Published) -> None:
    damaged.files[0].unlink()
    rev = open_revision(REPO, "iter1", store=damaged.store)
    data = prepare_training_data(rev.dataset, damaged.roots, max_missing_share=0.5)
    c = data.counts
    assert (c.total_rows, c.kept_rows, c.skipped_rows) == (6, 4, {"missing_file": 2})
    assert (c.total_videos, c.kept_videos, c.skipped_videos) == (3, 2, {"missing_file": 1})
    assert all(r["video_file"] != str(damaged.files[0]) for r in data.rows)
    assert c.examples[0]["file"] == str(damaged.files[0])


def test_changed_video_is_a_hash_mismatch_unless_allowed(damaged: Published) -> None:
    write_video(damaged.files[1], num_frames=NUM_FRAMES, fps=FPS, width=W, height=H, seed=99)
    rev = open_revision(REPO, "iter1", store=damaged.store)
    strict = prepare_training_data(rev.dataset, damaged.roots, max_missing_share=0.5)
    assert strict.counts.skipped_rows == {SHA_MISMATCH: 2}
    with pytest.raises(TrainingDataError, match="--allow-sha-mismatch"):
        prepare_training_data(rev.dataset, damaged.roots)
    allowed = prepare_training_data(rev.dataset, damaged.roots, allow_sha_mismatch=True)
    assert allowed.counts.kept_rows == 6 and allowed.counts.sha_mismatch_used == 1
    # a shorter replacement cannot serve the stored indices: the trial decode catches it
    write_video(damaged.files[1], num_frames=6, fps=FPS, width=W, height=H, seed=99)
    short = prepare_training_data(rev.dataset, damaged.roots, allow_sha_mismatch=True, max_missing_share=0.5)
    assert short.counts.kept_rows == 4 and list(short.counts.skipped_rows.values()) == [2]


def test_row_verdicts_and_the_share_rule() -> None:
    from videosavi.schemas import PreferencePair
    from videosavi.training.data import BAD_PATH, DataCounts, enforce_share, hash_verdicts, resolve_files

    assert set(ROW_COLUMNS) <= set(PreferencePair.model_fields)  # training reads record fields only
    rows = [{"source": "star", "video_path": p, "video_sha256": "a" * 64, "frame_indices": [0]}
            for p in ("ok.mp4", "../escape.mp4", "changed.mp4", "ok.mp4")]
    files = resolve_files(rows, {"star": Path("/videos")})
    assert files[1] == BAD_PATH
    digests = {Path("/videos/ok.mp4"): ("a" * 64, None), Path("/videos/changed.mp4"): ("b" * 64, None)}
    reasons, to_decode, mismatched = hash_verdicts(rows, files, digests, allow_sha_mismatch=False,
                                                   verify_decode=False)
    assert reasons == [None, BAD_PATH, SHA_MISMATCH, None] and to_decode == [] and not mismatched
    reasons, to_decode, mismatched = hash_verdicts(rows, files, digests, allow_sha_mismatch=True, verify_decode=True)
    assert reasons == [None, BAD_PATH, None, None] and to_decode == [0, 2, 3]
    assert mismatched == {Path("/videos/changed.mp4")}
    enforce_share(DataCounts(total_rows=20, kept_rows=19, skipped_rows={"missing_file": 1}), 0.05)  # 5% is allowed
    with pytest.raises(TrainingDataError):
        enforce_share(DataCounts(total_rows=20, kept_rows=18, skipped_rows={"missing_file": 2}), 0.05)
    with pytest.raises(TrainingDataError):  # nothing left is never fine
        enforce_share(DataCounts(total_rows=2, kept_rows=0, skipped_rows={"missing_file": 2}), 1.0)


def test_source_without_a_root_is_named(published: Published) -> None:
    rev = open_revision(REPO, "iter1", store=published.store)
    roots = {k: v for k, v in published.roots.items() if k != "vidal"}
    with pytest.raises(TrainingDataError, match=r"vidal \(2 rows\).*--video-root"):
        prepare_training_data(rev.dataset, roots)


def test_empty_revision_is_a_clear_error(tmp_path: Path, videosavi_cache: str) -> None:
    """`savi publish` refuses a 0-pair run (issue 23); one committed to the store anyway is refused by training."""
    from videosavi.errors import PublishError
    from videosavi.hub.revision_files import assemble_revision
    from videosavi.hub.store import GitStore
    from videosavi.hub.validate import validate_run_dir

    run = write_run_dir(tmp_path / "run", [])
    with pytest.raises(PublishError, match="0 pairs"):
        publish_run(run.path, "org/empty", store=tmp_path / "store")
    assemble_revision(validate_run_dir(run.path), tmp_path / "files", repo="org/empty", tag="iter1")
    GitStore(tmp_path / "store").publish("org/empty", "iter1", tmp_path / "files", force=False, message="empty",
                                         tag_message="iter1")
    with pytest.raises(TrainingDataError, match="org/empty@iter1"):
        open_revision("org/empty", "iter1", store=tmp_path / "store")


def test_cli_reports_the_threshold_as_one_line(damaged: Published, tmp_path: Path) -> None:
    damaged.files[2].unlink()
    roots = [f"--video-root={s}={d}" for s, d in damaged.roots.items()]
    res = CliRunner().invoke(app, ["train", "--dataset", REPO, "--revision", "iter1", "--model", "tiny-qwen2-vl",
                                   "--out", str(tmp_path / "o"), "--store", str(damaged.store), "--no-progress",
                                   *roots])
    assert res.exit_code == 2, res.output
    assert "cannot be used" in res.output and "Traceback" not in res.output
    missing = CliRunner().invoke(app, ["train", "-d", REPO, "-r", "iter9", "-m", "tiny-qwen2-vl", "-o",
                                       str(tmp_path / "o"), "--store", str(damaged.store), *roots])
    assert missing.exit_code == 2 and "iter9" in missing.output


# --- video roots ------------------------------------------------------------------------------------------


def test_video_roots_from_flags_and_from_a_build_config(tmp_path: Path) -> None:
    assert parse_video_roots(["star=/data/a", "vidal = rel"]) == {"star": Path("/data/a"),
                                                                  "vidal": Path("rel").resolve()}
    for bad in (["star"], ["=x"], ["Star=/x"], ["star=/a", "star=/b"]):
        with pytest.raises(ConfigError):
            parse_video_roots(bad)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("sources:\n  star: {kind: star, manifest: m.json, root: star/videos, quota: 1}\n"
                   "  mine: {kind: folder, root: clips, quota: 1}\n")
    assert roots_from_config(cfg, tmp_path / "data") == {"star": tmp_path / "data/star/videos",
                                                         "mine": tmp_path / "data/clips"}
    with pytest.raises(ConfigError, match="not both"):
        resolve_roots(["star=/x"], cfg, None)
    with pytest.raises(ConfigError, match="say where the videos are"):
        resolve_roots()


# --- the loop ---------------------------------------------------------------------------------------------


def test_loop_builds_each_iteration_with_the_previous_trained_model(tmp_path: Path) -> None:
    """Orchestration only: the steps are recording callables that write the files a real step leaves."""
    calls: list[tuple[str, int, str]] = []

    def build(i: int, model: str, out: Path) -> Path:
        calls.append(("build", i, model))
        out.mkdir(parents=True)
        return out

    def publish(run_dir: Path) -> tuple[str, str]:
        return run_dir.name, f"{len(calls):040d}"

    def train(i: int, revision: str, model: str, output: Path) -> Path:
        calls.append(("train", i, revision))
        (output / "merged").mkdir(parents=True)
        (output / "train.json").write_text(json.dumps({"dataset": {"revision": revision, "sha": "s"}}))
        return output / "merged"

    steps = run_loop(3, "tiny-qwen2-vl", tmp_path, build=build, publish=publish, train=train)
    assert [s.model for s in steps] == ["tiny-qwen2-vl", str(tmp_path / "iter1-model/merged"),
                                        str(tmp_path / "iter2-model/merged")]
    assert [c for c in calls if c[0] == "train"] == [("train", 1, "iter1"), ("train", 2, "iter2"),
                                                     ("train", 3, "iter3")]
    calls.clear()
    again = run_loop(4, "tiny-qwen2-vl", tmp_path, build=build, publish=publish, train=train)
    assert [s.skipped for s in again] == [True, True, True, False]
    assert calls == [("build", 4, str(tmp_path / "iter3-model/merged")), ("train", 4, "iter4")]
    assert isinstance(again[-1], LoopStep)
    with pytest.raises(ConfigError):
        run_loop(2, "m", tmp_path / "fresh", start=2, build=build, publish=publish, train=train)


def test_resolved_sha_is_what_training_read(published: Published) -> None:
    assert resolve_revision(REPO, "iter1", store=published.store) == published.sha
    assert open_revision(REPO, published.sha, store=published.store).sha == published.sha


def test_revision_read_through_a_hub_endpoint_matches_the_store(published: Published, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rows, sha, build settings and answer template whether read from the store or a server."""
    import huggingface_hub.constants

    from videosavi.hub.serve import HubServer

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # a loopback server only
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    local = open_revision(REPO, "iter1", store=published.store)
    with HubServer(published.store, port=0, log_path=tmp_path / "access.log") as srv:
        remote = open_revision(REPO, "iter1", endpoint=srv.endpoint, cache_dir=tmp_path / "cache")
    assert remote.sha == local.sha == published.sha
    assert remote.dataset["pair_id"] == local.dataset["pair_id"]
    assert remote.build_info == local.build_info and remote.build_info["iteration"] == 1
    assert remote.answer_template == local.answer_template == PromptSet.load().templates["answer"]


@pytest.mark.slow
def test_merged_model_drives_the_next_build(trained: Trained, tmp_path: Path) -> None:
    """`savi-build --iteration 2 --model OUTPUT/merged`: the rows record the trained model (~30 s)."""
    import pyarrow.parquet as pq

    from videosavi.builders.generate.models.weights import local_revision
    from videosavi.builders.run.runner import BuildOptions, display_model_name, run_build
    from videosavi.builders.sources.demo_data import write_demo_data

    merged = trained.result.merged_dir
    assert merged is not None
    write_demo_data(tmp_path / "data")
    res = run_build(BuildOptions(iteration=2, config="demo", data_root=tmp_path / "data", out=tmp_path / "iter2",
                                 model=str(merged), limit_videos=1))
    assert res.info.model.backend == "transformers"
    assert res.info.model.revision == local_revision(merged) != local_revision(resolve_model_source("tiny-qwen2-vl"))
    table = pq.read_table(res.run_dir / "data")
    assert table.num_rows > 0
    assert set(table.column("model").to_pylist()) == {display_model_name(str(merged))}
    assert set(table.column("model_revision").to_pylist()) == {local_revision(merged)}
    assert set(table.column("iteration").to_pylist()) == {2}
    # build.json is published: it names the local model as the rows do, never by this machine's path
    assert res.info.model.name_or_path == display_model_name(str(merged))
    assert str(merged.parent) not in (res.run_dir / "build.json").read_text(encoding="utf-8")


def test_model_card_subsamples_long_histories_and_links_hub_base_models() -> None:
    from videosavi.cards.model_card import MAX_HISTORY_ROWS, ModelCardInputs, card_context, render_model_card
    from videosavi.training.metrics import PAPER_METRICS

    history = [{"step": i, "loss": 0.7 - i / 1000, "rewards/margins": i / 100} for i in range(1, 51)]
    inputs = ModelCardInputs(
        base_model="Qwen/Qwen2-VL-7B-Instruct", base_model_revision="abc", dataset_repo=REPO, dataset_revision="iter2",
        dataset_sha="f" * 40, hyperparameters={"beta": 0.1}, counts={"total_rows": 50, "kept_rows": 49,
        "skipped_rows": {"missing_file": 1}, "kept_videos": 9, "total_videos": 10}, steps=50,
        final_metrics={"loss": 0.65, "rewards/margins": 0.5}, metric_names=PAPER_METRICS, history=history, iteration=2)
    ctx = card_context(inputs, "merged")
    steps = [row[0] for row in ctx["history"]]
    assert len(steps) == MAX_HISTORY_ROWS and steps[0] == "1" and steps[-1] == "50"
    assert ctx["history_header"] == ["step", "loss", "rewards/margins"]
    card = render_model_card(inputs, "merged")
    assert card.data.base_model == "Qwen/Qwen2-VL-7B-Instruct"
    assert "missing_file: 1" in card.text and "iteration 3" in card.text
