"""`RRPOTrainer`: TRL's `DPOTrainer` with RRPO's loss in place of its `_compute_loss`.

Everything else is the DPO trainer's: model and PEFT wrapping, the reference (with a LoRA policy and
no `ref_model`, the policy with its adapter switched off, exactly as `DPOTrainer._compute_loss` does
it through TRL's `use_adapter`), optimisation, logging (`self._metrics`, averaged by `log`), saving.

Only the forward differs. DPO needs the log-probability of each completion token, which TRL's fused
LM head gives without building logits. RRPO's KL term needs the whole next-token distribution of
policy and reference on the chosen tokens, so both forwards here return logits -- but only for the
last `logits_to_keep` positions, the ones that predict completion tokens (after `flush_left` the
completions of all rows lie in that tail), not for the thousands of video tokens before them.

The batch carries `phrase_mask`/`phrase_fallback` from `VideoDPOCollator(phrase_masks=True)`.
Logged per step, beside DPO's `rewards/*` (here sums of the phrase rewards) and `logps/*`:
`kl/chosen`, `rewards/phrase_chosen`, `rewards/phrase_rejected`, `rewards/phrase_margins` (means
over the pairs' phrases), `rrpo/phrases` (per pair) and `rrpo/whole_response` (the share of pairs
that fell back to the whole-response margin).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, cast

import torch
from accelerate.utils import is_peft_model
from trl import DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from videosavi.training.rrpo import label_logps, rrpo_terms, token_kl

if TYPE_CHECKING:
    from transformers import PreTrainedModel

NON_MODEL_KEYS = frozenset({"completion_mask", "ref_chosen_logps", "ref_rejected_logps", "phrase_mask",
                            "phrase_fallback"})


def scored_tail(completion_mask: Any) -> int:
    """Index of the first completion token over all rows (they are flushed left, so every completion
    lies at or after it); the logits to keep are those from one position earlier to the end."""
    first = completion_mask.int().argmax(dim=1)
    return max(1, int(first.min().item()))  # a completion never starts at 0: a prompt precedes it


class RRPOTrainer(DPOTrainer):
    """`DPOTrainer(..., rrpo_alpha=...)` optimising RRPO (training/rrpo.py)."""

    def __init__(self, *args: Any, rrpo_alpha: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rrpo_alpha = rrpo_alpha

    def _policy(self) -> torch.nn.Module:
        """The model being trained (Trainer types it optional; it is set from construction on)."""
        assert self.model is not None
        return self.model

    def _reference_context(self) -> Any:
        """How `DPOTrainer._compute_loss` gets its reference: adapter off (or the `ref` adapter)."""
        if is_peft_model(self.model) and self.ref_model is None:
            unwrapped = self.accelerator.unwrap_model(self.model)
            return use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        return contextlib.nullcontext()

    def _reference_logits(self, model_kwargs: dict[str, Any], keep: int) -> Any:
        policy = self._policy()
        model = policy if self.ref_model is None else self.ref_model
        # TRL annotates the bare PreTrainedModel and a dict; it is handed the (PEFT) policy and the
        # arguments' kwargs, exactly as DPOTrainer's own reference pass does
        checkpointing = cast("dict[str, Any] | None", self.args.gradient_checkpointing_kwargs)
        with torch.no_grad(), disable_gradient_checkpointing(cast("PreTrainedModel", policy), checkpointing), \
                self._reference_context():
            return model(**model_kwargs, logits_to_keep=keep).logits

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        mode = "train" if self._policy().training else "eval"
        model_kwargs = {k: v for k, v in inputs.items() if k not in NON_MODEL_KEYS}
        model_kwargs["use_cache"] = False
        completion_mask, input_ids = inputs["completion_mask"], inputs["input_ids"]
        start = scored_tail(completion_mask)
        keep = input_ids.shape[1] - start + 1  # position start-1 predicts token start
        outputs = model(**model_kwargs, logits_to_keep=keep)
        policy_lp = outputs.logits[:, :-1].float().log_softmax(-1)
        ref_lp = self._reference_logits(model_kwargs, keep)[:, :-1].float().log_softmax(-1)

        labels, scored = input_ids[:, start:], completion_mask[:, start:]
        policy_logps, ref_logps = label_logps(policy_lp, labels), label_logps(ref_lp, labels)
        n = input_ids.shape[0] // 2
        chosen_kl = token_kl(ref_lp[:n], policy_lp[:n])
        phrase_mask = inputs["phrase_mask"][..., start:] * scored.unsqueeze(1)
        terms = rrpo_terms(policy_logps, ref_logps, phrase_mask, chosen_kl, scored[:n], beta=self.beta,
                           alpha=self.rrpo_alpha)
        loss = terms.loss.mean()
        self._log_rrpo(mode, terms, policy_logps * scored, inputs["phrase_fallback"], inputs["attention_mask"])
        return (loss, outputs) if return_outputs else loss

    def _mean(self, value: Any) -> float:
        return self.accelerator.gather_for_metrics(value.detach().float()).mean().item()

    def _log_rrpo(self, mode: str, terms: Any, logps: Any, fallback: Any, attention_mask: Any) -> None:
        metrics = self._metrics[mode]
        if mode == "train":
            tokens = self.accelerator.gather_for_metrics(attention_mask.sum()).sum().item()
            self._total_train_tokens += tokens // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]
        chosen_logps, rejected_logps = logps.sum(-1).chunk(2, dim=0)
        present = terms.phrase_present
        count = present.sum().clamp(min=1)
        metrics["rewards/chosen"].append(self._mean(terms.chosen_rewards))
        metrics["rewards/rejected"].append(self._mean(terms.rejected_rewards))
        metrics["rewards/margins"].append(self._mean(terms.margins))
        metrics["rewards/accuracies"].append(self._mean((terms.margins > 0).float()))
        metrics["rewards/phrase_chosen"].append(self._mean((terms.phrase_chosen * present).sum() / count))
        metrics["rewards/phrase_rejected"].append(self._mean((terms.phrase_rejected * present).sum() / count))
        metrics["rewards/phrase_margins"].append(
            self._mean(((terms.phrase_chosen - terms.phrase_rejected) * present).sum() / count))
        metrics["kl/chosen"].append(self._mean(terms.kl))
        metrics["rrpo/phrases"].append(self._mean(present.sum(-1).float()))
        metrics["rrpo/whole_response"].append(self._mean(fallback.float()))
        metrics["logps/chosen"].append(self._mean(chosen_logps))
        metrics["logps/rejected"].append(self._mean(rejected_logps))
