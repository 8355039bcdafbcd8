"""RRPO's objective on per-token log-probabilities: pure tensor functions, no model, no trainer.

RRPO (Sarkar & Etemad, "Self-alignment of Large Video Language Models with Refined Regularized
Preference Optimization") rewards each differing phrase separately instead of the whole answer:

    r(x, y_i)  = beta * sum over the tokens j of phrase i of log pi_theta(t_j) / pi_ref(t_j)
    u          = sum_i [ r(x, y_i+) - r(x, y_i-) ]          (phrase i of chosen vs its rejected partner)
    loss       = -log sigmoid(u) + alpha * sum over the chosen tokens t of KL(pi_ref(.|t) || pi_theta(.|t))

The KL term is a penalty that keeps the policy's whole next-token distribution near the reference
on the preferred answer (the poster's rendering of its sign is garbled; the authors' code adds it to
the loss, as here). Pairs come as the trainer's batch: the first half of every tensor's rows are the
chosen completions, the second half the rejected ones, row i pairing with row i + B. Phrase k of a
pair is row i's mask k on the chosen side and row i + B's mask k on the rejected side; a missing
side (an insertion or deletion) is an all-zero mask, whose log-ratio is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RRPOTerms:
    """Per pair (B,) unless said otherwise; rewards are beta-scaled log-ratios, as DPO's."""

    loss: Any
    margins: Any  # u
    chosen_rewards: Any  # beta * sum of the chosen phrases' log-ratios
    rejected_rewards: Any
    phrase_chosen: Any  # (B, P) beta * log-ratio of each chosen phrase
    phrase_rejected: Any  # (B, P)
    phrase_present: Any  # (B, P) bool: phrase k exists on either side
    kl: Any  # token-wise KL(ref || policy) summed over the chosen completion


def label_logps(log_probs: Any, labels: Any) -> Any:
    """log p(label) at each position from full log-probabilities (N, L, V) -> (N, L)."""
    return log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def token_kl(ref_log_probs: Any, policy_log_probs: Any) -> Any:
    """KL(ref || policy) of the next-token distributions at each position: (N, L, V) -> (N, L)."""
    return (ref_log_probs.exp() * (ref_log_probs - policy_log_probs)).sum(-1)


def rrpo_terms(policy_logps: Any, ref_logps: Any, phrase_mask: Any, chosen_kl: Any, chosen_mask: Any, *,
               beta: float, alpha: float) -> RRPOTerms:
    """The RRPO loss and its parts.

    `policy_logps`, `ref_logps`: (2B, L) log-probabilities of the completion tokens (chosen rows, then
    rejected rows). `phrase_mask`: (2B, P, L), 1 where token l belongs to phrase p. `chosen_kl`: (B, L)
    per-position KL(ref || policy) on the chosen rows, `chosen_mask`: (B, L) its completion tokens.
    """
    import torch.nn.functional as F

    mask = phrase_mask.to(policy_logps.dtype)
    logratios = policy_logps - ref_logps
    phrase_logratios = (mask * logratios.unsqueeze(1)).sum(-1)  # (2B, P)
    chosen_lr, rejected_lr = phrase_logratios.chunk(2, dim=0)
    phrase_chosen, phrase_rejected = beta * chosen_lr, beta * rejected_lr
    margins = (phrase_chosen - phrase_rejected).sum(-1)
    kl = (chosen_kl * chosen_mask.to(chosen_kl.dtype)).sum(-1)
    present_chosen, present_rejected = (phrase_mask.sum(-1) > 0).chunk(2, dim=0)
    return RRPOTerms(
        loss=-F.logsigmoid(margins) + alpha * kl,
        margins=margins,
        chosen_rewards=phrase_chosen.sum(-1),
        rejected_rewards=phrase_rejected.sum(-1),
        phrase_chosen=phrase_chosen,
        phrase_rejected=phrase_rejected,
        phrase_present=present_chosen | present_rejected,
        kl=kl,
    )
