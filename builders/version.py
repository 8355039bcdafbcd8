"""The builder version recorded in every row and in build.json.

Bump the component whose logic changed: a different version means different data may come out of
the same inputs, and `pair_id`s change with it.
"""

from __future__ import annotations

SAMPLER_VERSION = "2"  # seeded stratified sampling over available videos; 2: the rank order is the reserve
FRAMES_VERSION = "1"  # uniform indices within the clip span
STAGES_VERSION = "3"  # question -> answer -> critique -> refine, pair rules; 2: bare-question a0, exact quotas;
#                      3: rows carry `prompt`, the messages a0 was generated from

BUILDER_VERSION = f"videosavi-builder/s{SAMPLER_VERSION}.f{FRAMES_VERSION}.g{STAGES_VERSION}"
