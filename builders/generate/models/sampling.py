"""Per-row seeded sampling inside a batched `generate`, so a row's text never depends on its batch.

transformers samples a whole batch from one global RNG stream, so a request's tokens change with
whatever shares its batch. We instead run `generate` greedily and let this logits processor turn each
row's logits into "logits / T + Gumbel noise" (top-p applied first): the argmax of that is an exact
sample from the row's nucleus distribution (the Gumbel-max trick), and the noise comes from a CPU
generator seeded by (request seed, step), so it is the same on every machine and in every batch.
The processor also owns everything else that is per row: the JSON grammar mask, each row's own
`max_new_tokens` (by forcing EOS), and recording why the row stopped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import LogitsProcessor

_TINY = torch.finfo(torch.float32).tiny


def step_seed(seed: int, step: int) -> int:
    """A 63-bit generator seed for one (request seed, step): stable across processes and machines."""
    digest = hashlib.sha256(f"videosavi:{seed}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def gumbel_noise(seed: int, step: int, size: int) -> torch.Tensor:
    gen = torch.Generator(device="cpu").manual_seed(step_seed(seed, step))
    u = torch.rand(size, generator=gen, dtype=torch.float32).clamp_(min=_TINY)
    return -torch.log(-torch.log(u))


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits outside the smallest set whose probability reaches `top_p` become -inf (>= 1 kept)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, stable=True)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    remove_sorted = cum - torch.softmax(sorted_logits, dim=-1) >= top_p
    remove_sorted[0] = False
    remove = torch.zeros_like(remove_sorted).scatter(0, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def sample_scores(logits: torch.Tensor, temperature: float, top_p: float, seed: int, step: int) -> torch.Tensor:
    """Scores whose argmax is this row's token: greedy at temperature 0, else a seeded sample."""
    if temperature <= 0:
        return logits
    z = top_p_filter(logits / temperature, top_p)
    return z + gumbel_noise(seed, step, z.shape[-1]).to(z.device)


@dataclass
class RowState:
    """One request's decoding state. `matcher` is an xgrammar GrammarMatcher or None."""

    temperature: float
    top_p: float
    seed: int
    max_new_tokens: int
    matcher: Any = None
    done: bool = False  # EOS seen: nothing more to do for this row
    forced_eos: bool = False  # the next token is EOS, whatever the model prefers
    finish_reason: str | None = None
    error: str | None = None


class RowControlProcessor(LogitsProcessor):
    """Applies grammar masks, per-row token limits and per-row seeded sampling (see module doc).

    Must be the last logits processor and `generate` must run with `do_sample=False`.
    """

    def __init__(self, rows: list[RowState], eos_ids: list[int], json_banned_ids: list[int] | None = None) -> None:
        self.rows = rows
        self.json_banned_ids = list(json_banned_ids or [])
        self.eos_ids = list(eos_ids)
        self.eos_set = set(eos_ids)
        self.prompt_len: int | None = None
        self._bitmask: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        step = input_ids.shape[1] - self.prompt_len
        logits = scores.float()
        masked: list[int] = []
        for i, row in enumerate(self.rows):
            if row.done:
                continue
            if step > 0:
                last = int(input_ids[i, -1])
                if last in self.eos_set:
                    row.done = True
                    row.finish_reason = row.finish_reason or "stop"
                    continue
                if row.forced_eos:
                    continue
                if row.matcher is not None and not row.matcher.accept_token(last):
                    self._fail(row, f"grammar rejected token {last} at step {step}")
                    continue
            if step >= row.max_new_tokens:
                row.forced_eos = True
                row.finish_reason = "length"
                continue
            if row.matcher is not None:
                if self._bitmask is None:
                    import xgrammar as xgr

                    self._bitmask = xgr.allocate_token_bitmask(len(self.rows), logits.shape[-1])
                row.matcher.fill_next_token_bitmask(self._bitmask, i)
                masked.append(i)
        if masked:
            import xgrammar as xgr

            cpu = logits.cpu() if logits.device.type not in ("cpu", "cuda") else logits
            assert self._bitmask is not None  # allocated with the first masked row
            xgr.apply_token_bitmask_inplace(cpu, self._bitmask.to(cpu.device), indices=masked)
            logits = cpu.to(logits.device)
            if self.json_banned_ids:
                rows_t = torch.tensor(masked, device=logits.device).unsqueeze(1)
                cols_t = torch.tensor(self.json_banned_ids, device=logits.device).unsqueeze(0)
                logits[rows_t, cols_t] = float("-inf")
        for i, row in enumerate(self.rows):
            if row.done:
                continue
            if row.forced_eos:
                logits[i] = float("-inf")
                logits[i, self.eos_ids[0]] = 0.0
                continue
            row_scores = logits[i]
            if not torch.isfinite(row_scores).any():
                self._fail(row, f"no allowed token at step {step}")
                logits[i] = float("-inf")
                logits[i, self.eos_ids[0]] = 0.0
                continue
            logits[i] = sample_scores(row_scores, row.temperature, row.top_p, row.seed, step)
        # LogitsProcessor promises a FloatTensor; torch types every float tensor as plain Tensor
        return cast(torch.FloatTensor, logits)

    @staticmethod
    def _fail(row: RowState, message: str) -> None:
        """Stop the row at once: it emits EOS next and its result becomes an error."""
        row.forced_eos = True
        row.finish_reason = "error"
        row.error = message
