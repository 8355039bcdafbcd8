"""The preference objectives `savi train --loss` offers: TRL's DPO loss types, passed through, and RRPO.

TRL 1.16's `DPOConfig.loss_type` accepts the names in `TRL_LOSSES` (a test checks them against the
installed TRL's own help text, so an upgrade that drops one is noticed). `sigmoid` is plain DPO, the
VideoSAVi paper's objective and the default. `rrpo` is ours (training/rrpo.py): RRPO's phrase-level
reward margin plus a token-wise KL penalty, run by a `DPOTrainer` subclass.

Plain data, no torch: the CLI checks a request before anything heavy is imported.
"""

from __future__ import annotations

from videosavi.errors import ConfigError
from videosavi.training_options import DEFAULT_LOSS, RRPO_DEFAULT_ALPHA

__all__ = ["DEFAULT_LOSS", "LOSSES", "RRPO", "RRPO_DEFAULT_ALPHA", "TRL_LOSSES", "check_loss", "loss_title"]

TRL_LOSSES: tuple[str, ...] = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
    "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
)
RRPO = "rrpo"
LOSSES: tuple[str, ...] = (*TRL_LOSSES, RRPO)

_NAMES = {
    "sigmoid": "DPO (sigmoid loss)",
    "sigmoid_norm": "DPO (sigmoid loss on length-normalised log-ratios)",
    "hinge": "SLiC (hinge loss)",
    "ipo": "IPO",
    "exo_pair": "EXO (pairwise)",
    "nca_pair": "NCA (pairwise)",
    "robust": "robust DPO (label-noise corrected)",
    "bco_pair": "BCO (pairwise)",
    "sppo_hard": "SPPO (hard labels)",
    "aot": "AOT (paired)",
    "aot_unpaired": "AOT (unpaired)",
    "apo_zero": "APO-zero",
    "apo_down": "APO-down",
    "discopop": "DiscoPOP",
    "sft": "SFT on the chosen answers (TRL's DPO trainer, loss `sft`)",
    RRPO: "RRPO (phrase-level reward margin + token-wise KL)",
}


def loss_title(loss: str) -> str:
    """A reader's name for the objective (the model card's `method`)."""
    return _NAMES.get(loss, loss)


def check_loss(loss: str, *, label_smoothing: float = 0.0, alpha: float | None = None) -> None:
    """Refuse, with the option's name, a combination TRL would refuse deep inside the trainer."""
    if loss not in LOSSES:
        raise ConfigError(f"--loss {loss!r} is not one of: {', '.join(LOSSES)}")
    if alpha is not None and loss != RRPO:
        raise ConfigError(f"--alpha weighs RRPO's KL term; it has no meaning with --loss {loss}")
    if alpha is not None and alpha < 0:
        raise ConfigError(f"--alpha must be >= 0, got {alpha}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ConfigError(f"--label-smoothing must lie in [0, 0.5), got {label_smoothing}")
    if loss == "exo_pair" and label_smoothing == 0.0:
        raise ConfigError("--loss exo_pair needs --label-smoothing > 0 (the EXO paper uses 1e-3)")
    if label_smoothing and loss not in ("robust", "exo_pair", "aot", "aot_unpaired"):
        raise ConfigError(f"--label-smoothing is read by the robust, exo_pair and aot losses, not by {loss}")
