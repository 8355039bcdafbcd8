"""The dataset card of one revision: huggingface_hub's `DatasetCard` from the template in templates/.

`card_context` is pure (numbers and tables from build.json and the statistics), the template holds
the prose, and `render_dataset_card` joins them with `DatasetCard.from_template`. Nothing here
reads the clock or the environment, so the same run renders the same card byte for byte and a
re-publish is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videosavi.cards.metadata import ConfigSpec, card_data, license_of
from videosavi.cards.stats import CardStats, error_table, fmt, overview_changes, trend_rows
from videosavi.curation import reasons
from videosavi.curation_config import load_curation_config
from videosavi.schemas import BuildInfo
from videosavi.schemas.arrow import field_table
from videosavi.schemas.enums import PAIR_SEVERITIES, SEVERITIES
from videosavi.schemas.published import PublishedPair

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"

CITATION = """@article{kulkarni2024videosavi,
  title={{VideoSAVi}: Self-Aligned Video Language Models without Human Supervision},
  author={Kulkarni, Yogesh and Fazli, Pooyan},
  journal={arXiv preprint arXiv:2412.00624},
  year={2024},
  url={https://arxiv.org/abs/2412.00624}
}"""

# Terms of each kind of source, in our words. Keyed by the config's source `kind`.
SOURCE_TERMS = {
    "star": "STAR questions are built on Charades videos (Allen Institute for AI), licensed for "
            "non-commercial research; obtain them from the Charades site.",
    "vidal": "VIDAL-10M lists YouTube video ids only; the videos are YouTube content under YouTube's terms "
             "and their uploaders' rights.",
    "webvid": "WebVid-10M was withdrawn by its authors after a takedown request; rows keep only its ids. "
              "Do not re-collect the videos without the rights to them.",
    "folder": "Local videos supplied by whoever built this dataset; their terms apply.",
}


# Who reads each config, for the card's configs table. The `default` config is the canonical record;
# a config not listed here is described by how `datasets` loads it.
CONFIG_READERS = {
    "default": "`datasets` (`load_dataset(repo, revision=...)`, also `streaming=True`), `videosavi.load_revision`; "
               "TRL's own data preparation (`maybe_extract_prompt`, `maybe_apply_chat_template`) and `DPOTrainer` "
               "(`prompt`, `chosen`, `rejected` are chat messages), with `videosavi.training.VideoDPOCollator` for "
               "the frames; pandas / polars / DuckDB given an `HfFileSystem` (plain text under `chosen_text`, "
               "`rejected_text`)",
    "swift": "ms-swift DPO (`swift rlhf --rlhf_type dpo`), which reads `messages`, `rejected_response` and "
             "`videos` (relative paths: `savi export --format swift` writes them absolute, clips cut)",
}


def config_rows(configs: list[ConfigSpec]) -> list[list[str]]:
    """config | files | rows | columns | read by (pure)."""
    rows = []
    for c in configs:
        readers = CONFIG_READERS.get(c.name, f"`datasets` (`load_dataset(repo, \"{c.name}\", revision=...)`)")
        columns = ", ".join(f"`{name}`" for name in c.model.model_fields)
        rows.append([f"`{c.name}`", _code(c.pattern), str(c.num_rows), columns, readers.replace("|", "\\|")])
    return rows


@dataclass(frozen=True)
class CardInputs:
    repo: str
    tag: str
    info: BuildInfo
    stats: CardStats
    configs: list[ConfigSpec]
    plots: dict[str, str]  # title -> path in the repository
    side_records: dict[str, Any] = field(default_factory=dict)  # quarantine_summary.json content
    previous: CardStats | None = None
    previous_tag: str | None = None
    history: dict[str, CardStats] = field(default_factory=dict)  # earlier iterations, oldest first


def _cell(value: object) -> str:
    """A Markdown table cell: pipes and HTML brackets escaped (`<video>` is an HTML tag), one line."""
    return str(value).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _code(value: object) -> str:
    """A code span inside a table cell (only pipes need escaping there)."""
    return "`" + str(value).replace("|", "\\|").replace("\n", " ") + "`"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _source_kind(info: BuildInfo, source: str) -> str:
    spec = (info.config.get("sources") or {}).get(source)
    return str(spec.get("kind", source)) if isinstance(spec, dict) else source


def _generation_rows(info: BuildInfo) -> list[list[str]]:
    stages = info.config.get("stages")
    if not isinstance(stages, dict):
        return []
    rows = []
    for stage, params in stages.items():
        if isinstance(params, dict) and "temperature" in params:
            rows.append([stage, str(params.get("temperature")), str(params.get("top_p")),
                         str(params.get("max_new_tokens"))])
    return rows


def _questions_per_video(info: BuildInfo) -> str:
    q = info.config.get("questions")
    if isinstance(q, dict) and "spatial" in q and "temporal" in q:
        return f"{q['spatial']} spatial and {q['temporal']} temporal"
    return "spatial and temporal"


def _curation_profile(info: BuildInfo) -> str:
    curation = info.config.get("curation")
    profile = curation.get("profile", "curated") if isinstance(curation, dict) else "curated"
    overrides = sorted(k for k in (curation or {}) if k != "profile")
    return f"{profile}" + (f" (with {', '.join(overrides)} set)" if overrides else "")


# The two selection options the `paper` and `curated` profiles differ on most, named on the card with
# what each did to this build: (config key, what it decides, reason code it counts under).
SELECTION_OPTIONS = (
    ("drop_no_issue", "critiques that found no issue", reasons.NO_ISSUE),
    ("drop_truncated", "answers cut off by the token limit", reasons.TRUNCATED_ANSWER),
)


def selection_rows(info: BuildInfo) -> list[list[str]]:
    """option | what | this build | questions left without a pair (pure)."""
    cfg = load_curation_config(info.config.get("curation") if isinstance(info.config.get("curation"), dict) else None)
    rows = []
    for key, what, code in SELECTION_OPTIONS:
        on = bool(getattr(cfg, key))
        rows.append([f"`{key}`", what, "dropped" if on else "kept",
                     str(info.counts.filtered.get(code, 0))])
    return rows


def filtered_rows(info: BuildInfo) -> list[list[str]]:
    """reason | meaning | pairs or questions removed, for every curation reason this build counted (pure)."""
    return [[f"`{code}`", _cell(reasons.REASONS.get(code, "")), str(n)]
            for code, n in sorted(info.counts.filtered.items()) if n]


def shortfall_note(info: BuildInfo) -> str | None:
    """The card's statement of a shortfall: which sources delivered fewer pairs than requested, and that
    the build was told to keep it (`--allow-shortfall`); None when every quota was met."""
    short = {s: f for s, f in info.counts.sources.items() if f.shortfall_pairs > 0}
    if not short:
        return None
    named = ", ".join(f"{s} {f.delivered_pairs} of {f.requested_pairs} pairs" for s, f in short.items())
    how = ("built with `--allow-shortfall`: the sources ran out of videos and the revision was kept as it is"
           if info.allow_shortfall else "the build did not complete its quotas")
    return f"**Shortfall:** {named} ({sum(f.shortfall_pairs for f in short.values())} pairs short; {how})."
def _critic_text(info: BuildInfo) -> str:
    critic = critic_of(info)
    if critic is None:
        return "the model itself (self-critique)"
    return f"`{critic['name_or_path']}` ({critic.get('backend', 'openai')} backend): an external critic"


def _retrospective_rows(info: BuildInfo) -> list[list[str]]:
    """The describe stage's provenance, so a reader can tell iteration 1's fresh descriptions from revised ones."""
    r = info.retrospective
    if r is None:
        return []
    return [["previous descriptions from", _code(r.previous) if r.previous else "none (first iteration)"],
            ["videos described", str(r.videos_described)],
            ["of those, revised from a previous description", str(r.videos_with_previous)]]


def critic_of(info: BuildInfo) -> dict[str, Any] | None:
    """The external critic's config (`stages.critique.model` in build.json's config), or None: the model
    critiqued its own answers."""
    stages = info.config.get("stages")
    critique = stages.get("critique") if isinstance(stages, dict) else None
    critic = critique.get("model") if isinstance(critique, dict) else None
    return critic if isinstance(critic, dict) and critic.get("name_or_path") else None


def card_context(inputs: CardInputs) -> dict[str, Any]:
    """Every value the template shows (pure)."""
    info, s, prev = inputs.info, inputs.stats.summary, inputs.previous
    tag = inputs.tag
    prev_tag = inputs.previous_tag or "previous"
    if prev_tag == tag:  # e.g. `--tag iter1` on an iteration-2 run: keep the two columns apart
        prev_tag = f"{prev_tag} (previous)"
    model = info.model
    glance = [
        ["iteration", f"{info.iteration} (`{tag}`)"],
        ["pairs / videos", f"{s.n_pairs} / {s.n_videos}"],
        ["model", f"`{model.name_or_path}` ({model.backend}{', ' + model.architecture if model.architecture else ''})"],
        ["model revision", f"`{model.revision}`"],
        ["critic", _critic_text(info)],
        ["frames per video", str(info.num_frames)],
        ["seed", str(info.seed)],
        ["builder version", f"`{info.builder_version}` (videosavi {info.videosavi_version})"],
        ["prompt version", f"`{info.prompt_version}`"],
        ["config hash", f"`{info.config_hash}`"],
        ["built at", info.created_at],
    ]
    qtypes = list(s.by_question_type)
    composition_rows = [[src, *[str(counts.get(q, 0)) for q in qtypes], str(sum(counts.values()))]
                        for src, counts in s.by_source_question_type.items()]
    composition_rows.append(["**total**", *[str(s.by_question_type.get(q, 0)) for q in qtypes], str(s.n_pairs)])
    severity_rows = [[sev, str(s.by_severity.get(sev, 0)), _pct(s.by_severity.get(sev, 0), s.n_pairs)]
                     for sev in PAIR_SEVERITIES if sev in SEVERITIES or s.by_severity.get(sev, 0)]
    error_header, error_rows = error_table(inputs.stats, tag, prev, prev_tag)
    length_rows = [
        ["mean words", fmt(s.chosen_words.mean), fmt(s.rejected_words.mean)],
        ["median words", fmt(s.chosen_words.median), fmt(s.rejected_words.median)],
        ["90th percentile", fmt(s.chosen_words.p90), fmt(s.rejected_words.p90)],
    ]
    r = s.length_ratio
    ratio_rows = [["mean ratio per pair", fmt(r.mean)], ["median ratio per pair", fmt(r.median)],
                  ["total chosen words / total rejected words", fmt(r.ratio_of_means)],
                  ["share of pairs where chosen is longer", fmt(r.share_chosen_longer, ".1%")]]
    if r.n_undefined:
        ratio_rows.append(["pairs with an empty rejected answer (no ratio)", str(r.n_undefined)])
    change_rows = overview_changes(inputs.stats, tag, prev, prev_tag) if prev is not None else []
    current = tag if tag not in inputs.history else f"{tag} (this revision)"
    trend_header, trend = (trend_rows({**inputs.history, current: inputs.stats}) if inputs.history
                           else ([], []))
    side = inputs.side_records
    quarantine_rows = [[row["stage"], row["reason"], str(row["count"])]
                       for row in side.get("quarantined", {}).get("by_stage_reason", [])]
    skipped_rows = [[reason, str(n)] for reason, n in side.get("skipped_videos", {}).get("by_reason", {}).items()]
    quota_rows = [[src, str(f.requested_pairs), str(f.delivered_pairs), str(f.videos_used),
                   str(f.reserve_videos_used), str(f.surplus_pairs), str(f.shortfall_pairs)]
                  for src, f in info.counts.sources.items()]

    return {
        "title": f"{info.name}: iteration {info.iteration}",
        "repo": inputs.repo,
        "tag": inputs.tag,
        "iteration": info.iteration,
        "n_pairs": s.n_pairs,
        "n_videos": s.n_videos,
        "num_frames": info.num_frames,
        "questions_per_video": _questions_per_video(info),
        "glance_rows": [[_cell(a), _cell(b)] for a, b in glance],
        "prompt_rows": [[f"`prompts/{name}.txt`", f"`{h}`"] for name, h in sorted(info.prompts.items())],
        "generation_rows": _generation_rows(info),
        "external_critic": (critic_of(info) or {}).get("name_or_path"),
        "retrospective": _retrospective_rows(info),
        "composition_header": ["source", *qtypes, "total"],
        "composition_rows": composition_rows,
        "quota_rows": quota_rows,
        "curation_profile": _curation_profile(info),
        "selection_rows": selection_rows(info),
        "filtered_rows": filtered_rows(info),
        "shortfall_note": shortfall_note(info),
        "severity_rows": severity_rows,
        "issues_per_pair": fmt(s.issues_per_pair.mean, ".3g"),
        "error_header": error_header,
        "error_rows": error_rows,
        "length_rows": length_rows,
        "ratio_rows": ratio_rows,
        "previous_tag": prev_tag if prev is not None else None,
        "change_rows": change_rows,
        "trend_header": trend_header,
        "trend_rows": trend,
        "plots": list(inputs.plots.items()),
        "quarantine_rows": quarantine_rows,
        "skipped_rows": skipped_rows,
        "config_rows": config_rows(inputs.configs),
        "field_rows": [[_code(n), _code(t), _cell(d)] for n, t, d in field_table(PublishedPair)],
        "config_field_rows": [(c.name, [[_code(n), _code(t), _cell(d)] for n, t, d in field_table(c.model)])
                              for c in inputs.configs if c.name != "default"],
        "source_rows": [[src, str(n), _cell(SOURCE_TERMS.get(_source_kind(info, src), SOURCE_TERMS["folder"]))]
                        for src, n in s.by_source.items()],
        "license": license_of(info),
        "citation": CITATION,
    }


def render_dataset_card(inputs: CardInputs, template: Path = TEMPLATE) -> Any:
    """The revision's `huggingface_hub.DatasetCard` (YAML header + Markdown body)."""
    from huggingface_hub import DatasetCard

    data = card_data(inputs.info, inputs.configs)
    return DatasetCard.from_template(data, template_path=str(template), **card_context(inputs))
