"""The model card of a DPO- (or RRPO-) trained model: huggingface_hub's `ModelCard` from the template below.

It names exactly what the model was trained on (dataset repo, revision and the commit sha it
resolved to), the hyper-parameters, how many pairs were used or skipped, and the DPO curves the
paper tracks, so a later iteration's dataset card (which records the model) can be traced back to
the data that produced the model. `card_context` is pure; `render_model_card` joins it with the
template. The same card goes into the merged folder (library `transformers`) and the adapter folder
(library `peft`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MAX_HISTORY_ROWS = 20
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

A video language model aligned with **{{ objective }} + LoRA** on self-generated preference pairs
(VideoSAVi-style: the model questioned, answered, critiqued and rewrote its own answers; the rewritten
answer is preferred over the first one). Trained with `savi train` from videosavi, an open
reproduction of [VideoSAVi](https://arxiv.org/abs/2412.00624).

{% if kind == "adapter" %}This folder is the **LoRA adapter**; load it on top of the base model with PEFT.
{% else %}This folder is the **merged model** (the adapter folded into the base weights): load it like any
checkpoint, or pass it to the next iteration's build.
{% endif %}
## Lineage

| | |
|---|---|
| base model | `{{ base_model }}` (revision `{{ base_model_revision }}`) |
| dataset | `{{ dataset_repo }}` |
| dataset revision | `{{ dataset_revision }}` |
| dataset commit | `{{ dataset_sha }}` |
{% if iteration %}| built in iteration | {{ iteration }} (this model generates iteration {{ iteration + 1 }}) |
{% endif %}| frames fed as | {{ frames_mode }} (the stored frame indices of each pair, re-decoded) |

Load exactly this data with `videosavi.load_revision("{{ dataset_repo }}", "{{ dataset_sha }}")` or
`datasets.load_dataset("{{ dataset_repo }}", revision="{{ dataset_sha }}")`.

## Training data

| | |
|---|---|
| pairs in the revision{% if max_pairs %} (first {{ max_pairs }} used){% endif %} | {{ counts.total_rows }} |
| pairs trained on | {{ counts.kept_rows }} |
| pairs skipped | {{ counts.total_rows - counts.kept_rows }}{% if skipped %} ({{ skipped }}){% endif %} |
| videos used | {{ counts.kept_videos }} of {{ counts.total_videos }} |

## Hyper-parameters

| name | value |
|---|---|
{% for name, value in hyperparameters %}| {{ name }} | {{ value }} |
{% endfor %}
## Training metrics

Final logged values (step {{ steps }}):

| metric | value |
|---|---|
{% for name, value in final %}| {{ name }} | {{ value }} |
{% endfor %}
{% if history %}
Per logged step{% if history_subsampled %} (evenly subsampled to {{ history|length }} rows){% endif %}:

| {{ history_header|join(" | ") }} |
|{% for _ in history_header %}---|{% endfor %}
{% for row in history %}| {{ row|join(" | ") }} |
{% endfor %}{% endif %}
`rewards/*` are beta-scaled log-probability ratios against the base (reference) model;
`rewards/accuracies` is the share of pairs whose preferred answer out-scores the rejected one.
{% if loss == "rrpo" %}
RRPO scores only the phrases that differ between the two answers: `rewards/chosen` and
`rewards/rejected` sum the rewards of the pair's differing phrases, `rewards/phrase_*` are means per
phrase, `kl/chosen` is the token-wise KL(reference || policy) summed over the preferred answer (weighted
by `rrpo_alpha` in the loss), `rrpo/phrases` counts phrases per pair and `rrpo/whole_response` is the share
of pairs without a differing phrase, trained on the whole-response margin instead.
{% endif %}{% if plots %}
## Training dynamics

Chosen and rejected rewards, their margin, the preference accuracy and the loss per logged step, raw
and Gaussian-smoothed (as in the VideoSAVi paper's Appendix A.4).
{% for title, path in plots %}
![{{ title }}]({{ path }})
{% endfor %}{% endif %}
## Use

```python
from transformers import AutoModelForImageTextToText, AutoProcessor
{% if kind == "adapter" %}from peft import PeftModel

base = AutoModelForImageTextToText.from_pretrained("{{ base_model }}")
model = PeftModel.from_pretrained(base, "PATH/TO/adapter")
processor = AutoProcessor.from_pretrained("{{ base_model }}")
{% else %}
model = AutoModelForImageTextToText.from_pretrained("PATH/TO/merged")
processor = AutoProcessor.from_pretrained("PATH/TO/merged")
{% endif %}```
{% if kind != "adapter" %}
Next iteration: `savi-build --iteration {{ (iteration or 1) + 1 }} --model PATH/TO/merged ...`
{% endif %}
## Limits

The preference pairs are self-generated; the model's own blind spots can survive (or be reinforced)
in them. Check the dataset card of the revision above for its statistics and known issues.
"""


@dataclass(frozen=True)
class ModelCardInputs:
    base_model: str
    base_model_revision: str
    dataset_repo: str
    dataset_revision: str
    dataset_sha: str
    hyperparameters: dict[str, Any]
    counts: dict[str, Any]  # DataCounts.to_dict()
    steps: int
    final_metrics: dict[str, float]
    metric_names: tuple[str, ...]  # which metrics to show, in order (training.metrics.metric_names)
    history: list[dict[str, float]] = field(default_factory=list)
    iteration: int | None = None
    frames_mode: str = "video"
    max_pairs: int | None = None
    license: str | None = None
    plots: dict[str, str] = field(default_factory=dict)  # title -> path relative to the card's folder
    loss: str = "sigmoid"  # training.losses name: a TRL DPO loss type, or rrpo


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _subsample(rows: list[dict[str, float]], limit: int) -> list[dict[str, float]]:
    """At most `limit` rows, evenly spaced, always keeping the first and the last."""
    if len(rows) <= limit:
        return rows
    picks = sorted({round(i * (len(rows) - 1) / (limit - 1)) for i in range(limit)})
    return [rows[i] for i in picks]


def _short(loss: str) -> str:
    """DPO for TRL's DPO-family losses, RRPO for ours: the title's word for the method."""
    return "RRPO" if loss == "rrpo" else "DPO"


def _objective(loss: str) -> str:
    return "DPO" if loss == "sigmoid" else ("RRPO" if loss == "rrpo" else f"DPO-family training (TRL loss `{loss}`)")


def is_hub_id(name: str) -> bool:
    """Only a hub id belongs in the card's `base_model` metadata (the Hub links it); a local folder
    or a tiny in-code model is named in the text instead."""
    return bool(_HUB_ID.match(name)) and not Path(name).exists()


def card_context(inputs: ModelCardInputs, kind: Literal["merged", "adapter"]) -> dict[str, Any]:
    """Everything the template shows, as display-ready values (pure)."""
    rows = _subsample(inputs.history, MAX_HISTORY_ROWS)
    header = ["step", *[m for m in inputs.metric_names if any(m in r for r in rows)]]
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted((inputs.counts.get("skipped_rows") or {}).items()))
    title_base = Path(inputs.base_model).name if Path(inputs.base_model).exists() else inputs.base_model
    return {
        "title": f"{title_base} + {_short(inputs.loss)} on {inputs.dataset_repo}@{inputs.dataset_revision}",
        "objective": _objective(inputs.loss),
        "loss": inputs.loss,
        "kind": kind,
        "base_model": inputs.base_model,
        "base_model_revision": inputs.base_model_revision,
        "dataset_repo": inputs.dataset_repo,
        "dataset_revision": inputs.dataset_revision,
        "dataset_sha": inputs.dataset_sha,
        "iteration": inputs.iteration,
        "frames_mode": inputs.frames_mode,
        "counts": inputs.counts,
        "skipped": skipped,
        "max_pairs": inputs.max_pairs,
        "hyperparameters": [(k, _fmt(v)) for k, v in inputs.hyperparameters.items()],
        "steps": inputs.steps,
        "final": [(m, _fmt(inputs.final_metrics[m])) for m in inputs.metric_names if m in inputs.final_metrics],
        "history": [[_fmt(int(r["step"]))] + [_fmt(r[m]) if m in r else "" for m in header[1:]] for r in rows],
        "history_header": header,
        "history_subsampled": len(rows) < len(inputs.history),
        "plots": list(inputs.plots.items()),
    }


def render_model_card(inputs: ModelCardInputs, kind: Literal["merged", "adapter"] = "merged") -> Any:
    """A `huggingface_hub.ModelCard`; `card.save(path)` writes README.md."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        base_model=inputs.base_model if is_hub_id(inputs.base_model) else None,
        datasets=[inputs.dataset_repo],
        library_name="peft" if kind == "adapter" else "transformers",
        pipeline_tag="image-text-to-text",
        license=inputs.license,
        tags=["videosavi", "dpo", *(["rrpo"] if inputs.loss == "rrpo" else []), "lora", "trl", "video-llm",
              "self-alignment"],
    )
    return ModelCard.from_template(data, template_str=TEMPLATE, **card_context(inputs, kind))
