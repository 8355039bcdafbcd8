"""Benchmark scores in a model card, as the Hub reads them: `model-index` evaluation results.

`eval_results` turns one model's `BenchResults` into huggingface_hub `EvalResult`s (one per task, the
score in percent as the paper prints it); `card_with_eval_results` puts them into a card's metadata and
an "Evaluation" section of its text (between markers, so a later report replaces its own section and
nothing else); `check_card` parses the written card back with huggingface_hub's own card classes and
requires the same results. (The Hub's remote validator needs the network; this check does not.)
"""

from __future__ import annotations

import re
from typing import Any

from videosavi.schemas.bench import BenchResults

TASK_TYPE = "video-text-to-text"
SOURCE_NAME = "LMMs-Eval, run by savi bench"
SOURCE_URL = "https://github.com/EvolvingLMMs-Lab/lmms-eval"
START = "<!-- savi-bench:start -->"
END = "<!-- savi-bench:end -->"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def eval_results(results: BenchResults) -> list[Any]:
    """One `EvalResult` per score, in the file's task order."""
    from huggingface_hub import EvalResult

    out = []
    for task, s in results.scores.items():
        dataset = s.dataset if s.dataset and _HUB_ID.match(s.dataset) else f"lmms-eval/{task}"
        out.append(EvalResult(
            task_type=TASK_TYPE, task_name="Video question answering", dataset_type=dataset,
            dataset_name=s.benchmark or task, dataset_config=task, metric_type="accuracy",
            metric_value=round(s.percent, 2),
            metric_name=f"{s.metric} (%), LMMs-Eval {s.lmms_eval_version}, {results.model.frames} frames"
                        + (f", first {s.limit} samples" if s.limit else ""),
            source_name=SOURCE_NAME, source_url=SOURCE_URL,
        ))
    return out


def _section(results: BenchResults, table_md: str) -> str:
    return (f"{START}\n## Evaluation\n\nMeasured with `savi bench` through LMMs-Eval "
            f"({results.model.frames} frames per video, wrapper `{results.model.wrapper}`, weights "
            f"`{results.model.revision}`), also in this card's `model-index` metadata.\n\n{table_md.rstrip()}\n{END}\n")


def card_with_eval_results(card_text: str | None, results: BenchResults, table_md: str,
                           model_name: str | None = None) -> str:
    """The card text with these evaluation results in its metadata and its Evaluation section (a new
    card when `card_text` is None); the rest of the card is kept as it was."""
    from huggingface_hub import ModelCard, ModelCardData

    if card_text is None:
        card = ModelCard.from_template(ModelCardData(), template_str="---\n{{ card_data }}\n---\n\n# {{ name }}\n",
                                       name=model_name or results.label)
    else:
        card = ModelCard(card_text, ignore_metadata_errors=False)
    title = re.search(r"^# (.+)$", card.text, flags=re.M)
    card.data.model_name = card.data.model_name or model_name or (title.group(1).strip() if title else results.label)
    card.data.eval_results = eval_results(results)
    body = card.text
    section = _section(results, table_md)
    if START in body and END in body:
        before, rest = body.split(START, 1)
        body = before + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        body = body.rstrip("\n") + "\n\n" + section
    card.text = body
    return str(card)


def check_card(text: str, results: BenchResults) -> list[Any]:
    """Parse `text` with huggingface_hub's ModelCard (metadata errors raise) and require that its
    evaluation results are exactly `results`'; returns them."""
    from huggingface_hub import ModelCard

    card = ModelCard(text, ignore_metadata_errors=False)
    data: Any = card.data  # a ModelCardData (huggingface_hub types it as the CardData base)
    found = data.eval_results or []
    expected = eval_results(results)
    if [vars(r) for r in found] != [vars(r) for r in expected]:
        raise ValueError(f"the card's model-index holds {len(found)} results that differ from the {len(expected)} "
                         "written")
    if not data.model_name:
        raise ValueError("the card's model-index has no model name")
    return list(found)
