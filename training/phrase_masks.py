"""Per-token phrase masks of a collated batch, for RRPO (`VideoDPOCollator(phrase_masks=True)`).

The collator tokenizes each rendered completion (answer + the chat template's end of turn) with the
processor; here the same string is tokenized again with `return_offsets_mapping` (a fast tokenizer
is required), the ids are checked to be the very ones the processor produced, and each aligned
phrase pair (training/phrases.py) becomes one 0/1 row over those tokens on each side.

A pair with no phrase that reaches a token on either side (no stored spans, or spans on characters
no token covers) falls back to one phrase spanning each whole completion: its RRPO margin is then
exactly DPO's whole-response margin, and `phrase_fallback` marks it so the trainer can count it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from videosavi.errors import ModelError, TrainingDataError
from videosavi.training.phrases import check_row_spans, locate_answer, pair_phrases, token_membership

SIDES = ("chosen", "rejected")


def _offsets(tokenizer: Any, rendered: str, expected_ids: Sequence[int]) -> list[tuple[int, int]]:
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{type(tokenizer).__name__} is not a fast tokenizer: RRPO needs its offset mapping to "
                         "place the differing phrases on tokens")
    enc = tokenizer(rendered, return_offsets_mapping=True, add_special_tokens=False)
    if list(enc["input_ids"]) != list(expected_ids):
        raise ModelError("the tokenizer alone splits a completion differently from the processor, so phrase "
                         f"offsets cannot be placed on the scored tokens: {rendered[:80]!r}")
    return [(int(a), int(b)) for a, b in enc["offset_mapping"]]


def row_phrase_masks(tokenizer: Any, row: Mapping[str, Any], rendered: Mapping[str, str],
                     ids: Mapping[str, Sequence[int]]) -> dict[str, list[list[bool]]]:
    """{side: one token-membership list per aligned phrase} for one pair (phrases in order); empty
    lists when no phrase reaches a token (the caller falls back to the whole response)."""
    for side in SIDES:
        if not isinstance(row[side], str):
            raise TrainingDataError(f"pair {row.get('pair_id', '?')}: RRPO needs plain-text chosen/rejected answers "
                                    "(their diff_spans are character offsets into them)")
    check_row_spans(row)
    phrases = pair_phrases(row["rejected"], row["chosen"], row.get("diff_spans") or [])
    out: dict[str, list[list[bool]]] = {}
    for side in SIDES:
        offsets = _offsets(tokenizer, rendered[side], ids[side])
        try:
            shift = locate_answer(rendered[side], row[side])
        except ValueError as exc:
            raise TrainingDataError(f"pair {row.get('pair_id', '?')}: {exc}") from exc
        out[side] = [token_membership(offsets, getattr(p, side), shift) for p in phrases]
    if not any(any(m) for side in SIDES for m in out[side]):
        return {side: [] for side in SIDES}
    return out


def batch_phrase_masks(tokenizer: Any, rows: Sequence[Mapping[str, Any]], rendered: Sequence[Mapping[str, str]],
                       completion_ids: Any, completion_attn: Any) -> tuple[Any, Any]:
    """(mask (2B, P, Lc), fallback (B,)) over the padded completion block of a batch (chosen rows, then
    rejected rows, as `completion_ids`/`completion_attn` are laid out)."""
    import torch

    n = len(rows)
    per_row = []
    for i, row in enumerate(rows):
        ids = {side: completion_ids[i + k * n][completion_attn[i + k * n].bool()].tolist()
               for k, side in enumerate(SIDES)}
        per_row.append(row_phrase_masks(tokenizer, row, rendered[i], ids))
    fallback = torch.tensor([not m["chosen"] for m in per_row], dtype=torch.bool)
    phrases = max([1, *(len(m["chosen"]) for m in per_row)])
    mask = torch.zeros((2 * n, phrases, completion_ids.shape[1]), dtype=torch.long)
    for i, m in enumerate(per_row):
        for k, side in enumerate(SIDES):
            row_index = i + k * n
            if fallback[i]:
                mask[row_index, 0] = completion_attn[row_index].long()
                continue
            for p, member in enumerate(m[side]):
                mask[row_index, p, : len(member)] = torch.tensor(member, dtype=torch.long)
    return mask, fallback
