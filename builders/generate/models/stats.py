"""Counters of the work a backend did, so the cost of a build can be counted rather than timed.

At the paper's setting a video's prompt prefix (system turn, user-turn start and ~4,096 video tokens)
is shared by all 19 calls about that video; an in-process backend that re-encodes it per call runs the
vision tower 19 times per video and prefills the prefix 19 times. These counters make that visible:
`vision_encodes_per_video` (ideal 1) and `prefill_vs_min` (prefill tokens computed over the minimum,
which is each distinct prefix once plus every call's own tokens; ideal 1). They count, they never time,
so they are the same on any machine and can be asserted in tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BackendStats:
    requests: int = 0  # generation requests answered (errors included)
    video_requests: int = 0  # of which carried frames
    vision_encodes: int = 0  # videos passed through the vision tower (one per video per pass)
    prefill_tokens: int = 0  # prompt tokens the language model computed, padding excluded
    prefill_pad_tokens: int = 0  # padding positions computed alongside them
    prefill_min_tokens: int = 0  # each distinct video prefix once + every call's own tokens
    prompt_tokens: int = 0  # every call's whole prompt (prefix + own tokens): what a server would be sent
    decode_tokens: int = 0  # tokens generated (up to and including each row's EOS)
    prefix_hits: int = 0  # calls whose video prefix came from the cache
    prefix_misses: int = 0  # prefixes computed (first sight, or recomputed after eviction)
    prefix_evictions: int = 0  # prefixes dropped to stay within the memory bound
    prefix_uncacheable: int = 0  # prefixes larger than the whole bound: used once, not kept
    prefix_cache_bytes: int = 0  # bytes the kept prefixes hold now
    prefix_cache_peak_bytes: int = 0
    media_encodes: int = 0  # HTTP backends: videos encoded to data URLs
    media_hits: int = 0  # HTTP backends: requests that reused an encoded video
    server_prompt_tokens: int = 0  # HTTP backends: prompt tokens the server reports (`usage.prompt_tokens`)
    server_cached_tokens: int = 0  # ... of which it took from its prefix cache (`prompt_tokens_details`)
    server_completion_tokens: int = 0  # ... and tokens it generated
    repeat_video_calls: int = 0  # HTTP backends: answered calls about a video this backend had sent before
    repeat_video_calls_cached: int = 0  # ... whose reply reports cached prompt tokens (a prefix-cache hit)
    _seen_prefixes: set[Any] = field(default_factory=set, repr=False)

    def note_call(self, prefix_key: Any, prefix_tokens: int, own_tokens: int) -> None:
        """Add one call's share of the minimum: its own tokens, plus its prefix the first time it is seen."""
        self.prefill_min_tokens += own_tokens
        self.prompt_tokens += prefix_tokens + own_tokens
        if prefix_key not in self._seen_prefixes:
            self._seen_prefixes.add(prefix_key)
            self.prefill_min_tokens += prefix_tokens

    @property
    def videos(self) -> int:
        """Distinct video prefixes seen."""
        return len(self._seen_prefixes)

    @property
    def vision_encodes_per_video(self) -> float:
        return self.vision_encodes / self.videos if self.videos else 0.0

    @property
    def prefill_vs_min(self) -> float:
        return self.prefill_tokens / self.prefill_min_tokens if self.prefill_min_tokens else 0.0

    @property
    def server_cached_share(self) -> float:
        """Share of the prompt tokens sent that the server did not compute again."""
        return self.server_cached_tokens / self.server_prompt_tokens if self.server_prompt_tokens else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out["videos"] = self.videos
        out["vision_encodes_per_video"] = round(self.vision_encodes_per_video, 4)
        out["prefill_vs_min"] = round(self.prefill_vs_min, 4)
        out["server_cached_share"] = round(self.server_cached_share, 4)
        return out
