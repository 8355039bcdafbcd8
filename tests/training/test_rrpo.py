"""RRPO and the other objectives of `savi train --loss`: the loss on hand-computed numbers, phrases
paired and placed on tokens, the collator's masks, and two real training steps per objective.

The training runs reuse test_training's published tiny revision (real videos, a real local store,
the tiny Qwen2-VL on CPU).
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.factories import make_pair
from tests.training.test_training import REPO, Published, _args, _publish
from videosavi.cli import app
from videosavi.compat import ensure_torchvision_importable
from videosavi.errors import TrainingDataError
from videosavi.schemas.diff import diff_spans
from videosavi.training.collator import VideoDPOCollator
from videosavi.training.data import ROW_COLUMNS, prepare_training_data
from videosavi.training.losses import TRL_LOSSES
from videosavi.training.model_io import load_policy, resolve_model_source
from videosavi.training.phrases import pair_phrases, token_membership
from videosavi.training.rrpo import label_logps, rrpo_terms, token_kl

ensure_torchvision_importable()


# --- the loss on numbers a reader can check by hand ----------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_rrpo_loss_is_the_formula_on_hand_computed_log_probabilities() -> None:
    # One pair, 4 completion tokens per side. Phrase 0 replaces rejected tokens 1-2 by chosen token 1;
    # phrase 1 is an insertion: chosen token 3, no rejected partner.
    policy = torch.tensor([[-1.0, -2.0, -0.5, -1.5],    # chosen
                           [-0.7, -3.0, -1.0, -0.2]])   # rejected
    ref = torch.tensor([[-1.2, -1.0, -0.5, -2.0],
                        [-0.7, -2.5, -1.5, -0.3]])
    mask = torch.zeros(2, 2, 4)
    mask[0, 0, 1] = 1
    mask[1, 0, 1] = mask[1, 0, 2] = 1
    mask[0, 1, 3] = 1
    # Two-token vocabulary on the chosen side: reference and policy probability of token 0 at each position.
    p_ref, p_pol = [0.6, 0.5, 0.9, 0.3], [0.5, 0.5, 0.8, 0.4]
    ref_lp = torch.tensor([[[math.log(p), math.log(1 - p)] for p in p_ref]])
    pol_lp = torch.tensor([[[math.log(q), math.log(1 - q)] for q in p_pol]])
    kl_tokens = token_kl(ref_lp, pol_lp)
    beta, alpha = 0.5, 0.1
    terms = rrpo_terms(policy, ref, mask, kl_tokens, torch.ones(1, 4), beta=beta, alpha=alpha)

    chosen_0 = beta * (-2.0 - -1.0)                               # -0.5
    chosen_1 = beta * (-1.5 - -2.0)                               # 0.25
    rejected_0 = beta * ((-3.0 - -2.5) + (-1.0 - -1.5))           # 0.0
    u = (chosen_0 - rejected_0) + (chosen_1 - 0.0)                # -0.25
    kl = sum(p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q)) for p, q in zip(p_ref, p_pol, strict=True))
    assert terms.margins.item() == pytest.approx(u)
    assert terms.kl.item() == pytest.approx(kl)
    assert terms.loss.item() == pytest.approx(-math.log(_sigmoid(u)) + alpha * kl)
    assert terms.chosen_rewards.item() == pytest.approx(chosen_0 + chosen_1)
    assert terms.rejected_rewards.item() == pytest.approx(rejected_0)
    assert terms.phrase_present.tolist() == [[True, True]]
    # tokens outside every phrase (chosen 0 and 2, rejected 0 and 3) do not move the margin
    shifted = policy.clone()
    shifted[0, 0] += 5.0
    shifted[1, 3] -= 5.0
    assert rrpo_terms(shifted, ref, mask, kl_tokens, torch.ones(1, 4), beta=beta, alpha=alpha).margins.item() == \
        pytest.approx(u)


def test_kl_of_identical_distributions_is_zero_and_label_logps_pick_the_label() -> None:
    lp = torch.log_softmax(torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    assert torch.allclose(token_kl(lp, lp), torch.zeros(2, 3), atol=1e-6)
    labels = torch.tensor([[4, 0, 2], [1, 1, 3]])
    picked = label_logps(lp, labels)
    assert picked[0, 0].item() == lp[0, 0, 4].item() and picked[1, 2].item() == lp[1, 2, 3].item()


# --- phrases: pairing and tokens ---------------------------------------------------------------------------------


PAIRS = [
    ("The video shows a group of people playing volleyball on a sandy beach.",
     "The video features a group of people playing soccer on a sandy field."),
    ("a b c d", "a c d e"),                       # a deletion and a later insertion: two phrases, not one
    ("cat sat on the mat", "the dog sat on a mat today"),
    ("He opens the door, then sits.", "He sits, then opens the door."),
    ("Zoë drinks café au lait 🎉 slowly", "Zoë sips café noir 🎉 slowly and smiles"),
]


@pytest.mark.parametrize(("rejected", "chosen"), PAIRS)
def test_phrase_pairs_are_difflibs_change_runs(rejected: str, chosen: str) -> None:
    a, b = rejected.split(), chosen.split()
    expected = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            expected.append((" ".join(a[i1:i2]), " ".join(b[j1:j2])))
    found = [
        (" ".join(rejected[s:e] for s, e in p.rejected), " ".join(chosen[s:e] for s, e in p.chosen))
        for p in pair_phrases(rejected, chosen, diff_spans(rejected, chosen))
    ]
    assert found == expected


@pytest.fixture(scope="module")
def processor(videosavi_cache: str) -> Any:
    return load_policy(resolve_model_source("tiny-qwen2-vl"))[1]


def _members(tok: Any, text: str, span: tuple[int, int]) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    member = token_membership(enc["offset_mapping"], [span])
    return [i for i, m in zip(enc["input_ids"], member, strict=True) if m], [
        tuple(o) for o, m in zip(enc["offset_mapping"], member, strict=True) if m]


@pytest.mark.parametrize(("text", "piece"), [
    ("Zoë sits on a café chair 🎉 now", "ë"),        # one character, two byte-level tokens
    ("Zoë sits on a café chair 🎉 now", "🎉"),       # four bytes
    ("The man wears a red hat.", "ea"),              # splits a token on both ends
    ("The man wears a red hat.", "red"),             # a word whose token carries the space before it
    ("naïve café", "ïve caf"),                       # across a space, multi-byte inside
])
def test_span_to_tokens_takes_every_token_it_touches_and_nothing_else(processor: Any, text: str, piece: str) -> None:
    tok = processor.tokenizer
    start = text.index(piece)
    span = (start, start + len(piece))
    ids, offsets = _members(tok, text, span)
    assert ids, "a non-empty span always reaches a token"
    decoded = tok.decode(ids)
    assert piece in decoded  # every character of the span is covered, multi-byte ones whole
    assert all(a < span[1] and span[0] < b for a, b in offsets)  # no token lies outside the span
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    positions = [k for k, o in enumerate(enc["offset_mapping"]) if tuple(o) in offsets]
    assert positions == list(range(positions[0], positions[-1] + 1))  # one contiguous run
    # the tokens just outside the run do not overlap the span
    for k in (positions[0] - 1, positions[-1] + 1):
        if 0 <= k < len(enc["offset_mapping"]):
            a, b = enc["offset_mapping"][k]
            assert not (a < span[1] and span[0] < b)


def _row(rejected: str, chosen: str, **over: Any) -> dict[str, Any]:
    pair = make_pair(rejected=rejected, chosen=chosen)
    row = {"pair_id": pair.pair_id, "question": pair.question, "chosen": chosen, "rejected": rejected,
           "video_file": "unused.mp4", "frame_indices": [0, 1, 2, 3], "images": [],
           "diff_spans": [s.model_dump() for s in pair.diff_spans]}
    row.update(over)
    return row


def _collator(processor: Any) -> VideoDPOCollator:
    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)  # the masks do not depend on pixels
    return VideoDPOCollator(processor, phrase_masks=True, load_frames=lambda *_: frames)


def test_collator_masks_mark_exactly_the_phrase_tokens_after_flush_left(processor: Any) -> None:
    rows = [_row("a red car drives past the café", "a blue car drives past the café 🎉"),
            _row("The man sits.", "The tall man stands up slowly.")]
    batch = _collator(processor)(rows)
    tok = processor.tokenizer
    mask, ids, completion = batch["phrase_mask"], batch["input_ids"], batch["completion_mask"]
    assert mask.shape[0] == 4 and mask.shape[2] == ids.shape[1]
    assert not batch["phrase_fallback"].any()
    assert (mask.bool() & ~completion.bool().unsqueeze(1)).sum() == 0  # only completion tokens

    def text(row: int, phrase: int) -> str:
        return tok.decode(ids[row][mask[row, phrase].bool()]).strip()

    # pair 0: "red" -> "blue", then "🎉" inserted (its rejected partner is empty)
    assert [text(0, 0), text(2, 0)] == ["blue", "red"]
    assert [text(0, 1), text(2, 1)] == ["🎉", ""]
    # pair 1: "tall" inserted, "sits." -> "stands up slowly."
    assert [text(1, 0), text(3, 0)] == ["tall", ""]
    assert [text(1, 1), text(3, 1)] == ["stands up slowly.", "sits."]


def test_pair_without_spans_falls_back_to_the_whole_response(processor: Any) -> None:
    rows = [_row("a red car", "a blue car"), _row("the dog runs", "the dog runs fast", diff_spans=[])]
    batch = _collator(processor)(rows)
    assert batch["phrase_fallback"].tolist() == [False, True]
    completion = batch["completion_mask"]
    assert torch.equal(batch["phrase_mask"][1, 0], completion[1])
    assert torch.equal(batch["phrase_mask"][3, 0], completion[3])
    assert batch["phrase_mask"][[1, 3], 1:].sum() == 0


def test_collator_refuses_spans_that_no_longer_match_the_text(processor: Any) -> None:
    row = _row("a red car", "a blue car")
    row["chosen"] = "a green car"  # edited after the spans were derived
    with pytest.raises(TrainingDataError, match=row["pair_id"]):
        _collator(processor)([row])


def test_hand_edited_spans_are_refused_at_load_with_the_row_named() -> None:
    from datasets import Dataset

    good = make_pair(rejected="The cup is red.", chosen="The cup is blue.")
    bad = make_pair(rejected="The lamp is off.", chosen="The lamp is on.", question="Is the lamp on?")
    rows = []
    for pair in (good, bad):
        row = pair.model_dump(mode="json")
        rows.append({k: row[k] for k in (*ROW_COLUMNS, "diff_spans")})
    rows[1]["diff_spans"][0]["start"] += 1  # hand-edited offsets
    dataset = Dataset.from_list(rows)
    with pytest.raises(TrainingDataError, match=f"pair {bad.pair_id}: diff span"):
        prepare_training_data(dataset, {}, phrases=True)


# --- the objectives from TRL -------------------------------------------------------------------------------------


def test_every_offered_trl_loss_is_one_trl_accepts() -> None:
    from trl import DPOConfig

    help_text = DPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    for name in TRL_LOSSES:
        assert f"'{name}'" in help_text


@pytest.mark.parametrize(("args", "message"), [
    (["--loss", "nope"], "--loss 'nope' is not one of"),
    (["--loss", "sigmoid", "--alpha", "0.1"], "--alpha weighs RRPO's KL term"),
    (["--loss", "rrpo", "--alpha", "-1"], "--alpha must be >= 0"),
    (["--loss", "exo_pair"], "needs --label-smoothing > 0"),
    (["--loss", "ipo", "--label-smoothing", "0.1"], "not by ipo"),
])
def test_bad_objectives_are_refused_as_one_line_before_anything_loads(tmp_path: Path, args: list[str],
                                                                       message: str) -> None:
    res = CliRunner().invoke(app, ["train", "-d", REPO, "-r", "iter1", "-m", "tiny-qwen2-vl", "-o",
                                   str(tmp_path / "out"), "--video-root", f"star={tmp_path}", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


# --- two real steps per objective --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> Published:
    return _publish(tmp_path_factory.mktemp("published-rrpo"))


def _train(pub: Published, output: Path, **over: Any) -> Any:
    from videosavi.training.train import train_dpo

    return train_dpo(_args(pub, output, **over))


def test_rrpo_two_steps_log_its_terms_and_start_at_log_2(published: Published, tmp_path: Path) -> None:
    res = _train(published, tmp_path / "rrpo", loss="rrpo", rrpo_alpha=0.05)
    assert res.steps == 2
    first, second = res.history
    # Step 1 runs before any update and LoRA's B starts at zero: policy == reference, so every phrase
    # log-ratio and the KL are 0 and the loss is -log sigmoid(0) = log 2.
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert first["kl/chosen"] == pytest.approx(0.0, abs=1e-5)
    assert math.isfinite(second["loss"]) and second["loss"] != pytest.approx(first["loss"], abs=1e-7)
    assert second["kl/chosen"] > 0  # the policy has moved away from the reference
    for name in ("rewards/margins", "rewards/accuracies", "rewards/phrase_chosen", "rewards/phrase_rejected",
                 "rewards/phrase_margins", "rrpo/phrases", "rrpo/whole_response"):
        assert name in second and math.isfinite(second[name]), name
    assert second["rrpo/phrases"] >= 1 and second["rrpo/whole_response"] == 0.0
    record = json.loads(res.train_json.read_text())
    assert record["args"]["loss"] == "rrpo" and record["args"]["rrpo_alpha"] == 0.05
    assert record["objective"] == {**record["objective"], "loss": "rrpo", "alpha": 0.05, "pairs_without_phrases": 0}
    card = (res.merged_dir / "README.md").read_text()
    assert "RRPO" in card and "kl/chosen" in card and "rrpo_alpha" in card


def test_a_trl_loss_passes_through_from_the_cli(published: Published, tmp_path: Path) -> None:
    out = tmp_path / "ipo"
    res = CliRunner().invoke(app, [
        "train", "-d", REPO, "-r", "iter1", "-m", "tiny-qwen2-vl", "-o", str(out), "--store", str(published.store),
        *[a for s, root in published.roots.items() for a in ("--video-root", f"{s}={root}")],
        "--loss", "ipo", "--max-steps", "2", "--per-device-batch-size", "2", "--grad-accum", "1", "--lr", "1e-3",
        "--warmup-ratio", "0", "--dataloader-workers", "0", "--no-progress", "--no-merge",
    ])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "train.json").read_text())
    assert record["args"]["loss"] == "ipo" and record["objective"]["loss"] == "ipo"
    first = record["history"][0]["loss"]
    # before the first update the log-ratios are 0 and IPO's loss is (0 - 1/(2 beta))^2
    assert first == pytest.approx((1 / (2 * 0.1)) ** 2, rel=1e-5)
    assert "IPO" in (out / "adapter" / "README.md").read_text()


def _trainer(kind: str, rows: list[dict[str, Any]], output: Path, **extra: Any) -> Any:
    """A DPO or RRPO trainer on the tiny model with LoRA B set to fixed non-zero values (a moved policy)."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    from videosavi.training.lora_targets import find_lora_targets
    from videosavi.training.model_io import lora_config
    from videosavi.training.rrpo_trainer import RRPOTrainer

    model, processor = load_policy(resolve_model_source("tiny-qwen2-vl"))
    set_seed(0)
    cls = RRPOTrainer if kind == "rrpo" else DPOTrainer
    trainer = cls(
        model=model, processing_class=processor,
        args=DPOConfig(output_dir=str(output), beta=0.1, use_cpu=True, report_to=[], max_length=None,
                       remove_unused_columns=False, per_device_train_batch_size=len(rows)),
        train_dataset=Dataset.from_list(rows),
        peft_config=lora_config(8, 8, 0.0, list(find_lora_targets(model, "all-linear").names)),
        data_collator=VideoDPOCollator(processor, phrase_masks=kind == "rrpo"), **extra,
    )
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in sorted(trainer.model.named_parameters()):
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05)
    return trainer


def test_rrpo_without_phrases_is_trls_dpo_margin_and_kl_adds_on_top(published: Published, tmp_path: Path) -> None:
    from videosavi.training.revision import open_revision

    rev = open_revision(REPO, "iter1", store=published.store)
    rows = prepare_training_data(rev.dataset, published.roots, phrases=True).rows[:2]
    whole = [{**r, "diff_spans": []} for r in rows]  # every pair falls back to the whole response
    dpo = _trainer("dpo", whole, tmp_path / "dpo")
    batch = dpo.data_collator(whole)
    dpo.model.eval()
    with torch.no_grad():
        dpo_loss = dpo._compute_loss(dpo.model, {k: v for k, v in batch.items()
                                                 if k not in ("phrase_mask", "phrase_fallback")}, False)
        plain = _trainer("rrpo", whole, tmp_path / "r0", rrpo_alpha=0.0)
        plain.model.eval()
        rrpo_plain = plain._compute_loss(plain.model, plain.data_collator(whole), False)
        kl = _trainer("rrpo", whole, tmp_path / "r1", rrpo_alpha=1.0)
        kl.model.eval()
        rrpo_kl = kl._compute_loss(kl.model, kl.data_collator(whole), False)
    assert dpo_loss.item() != pytest.approx(math.log(2), abs=1e-4)  # the policy really differs from the reference
    assert rrpo_plain.item() == pytest.approx(dpo_loss.item(), rel=1e-4, abs=1e-6)
    kl_logged = kl._metrics["eval"]["kl/chosen"][-1]
    assert kl_logged > 0
    assert rrpo_kl.item() == pytest.approx(rrpo_plain.item() + kl_logged, rel=1e-4)
    assert kl._metrics["eval"]["rrpo/whole_response"][-1] == 1.0
    # with its phrases, the same pairs get another margin: only the differing tokens count
    phrased = _trainer("rrpo", rows, tmp_path / "r2", rrpo_alpha=0.0)
    phrased.model.eval()
    with torch.no_grad():
        rrpo_phrased = phrased._compute_loss(phrased.model, phrased.data_collator(rows), False)
    assert rrpo_phrased.item() != pytest.approx(rrpo_plain.item(), abs=1e-6)
