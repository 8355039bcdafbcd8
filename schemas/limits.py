"""Bounds on generated text. They go into the JSON Schema, so a constrained decoder cannot ramble
past them, and into validation, so an unconstrained backend's output is held to the same rules."""

from __future__ import annotations

QUESTION_MAX_CHARS = 300
ISSUE_FIELD_MAX_CHARS = 400
SUMMARY_MAX_CHARS = 800
MAX_ISSUES = 6
