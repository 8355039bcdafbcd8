"""The four prompts follow the paper (issue 11, item 6), in our own words.

Snapshot files under tests/builders/generate/snapshots/prompts/ hold each stage's text rendered for one fixed example: a
prompt edit must update them on purpose (it changes `prompt_version`, every call's cache key and the
pairs made). Write them anew with `VIDEOSAVI_UPDATE_SNAPSHOTS=1 pytest tests/builders/generate/test_prompts.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.factories import make_pairs
from videosavi.builders.generate.prompts import RETROSPECTIVE_TEMPLATES, STAGES, PromptSet
from videosavi.builders.generate.stages.answer import answer_messages
from videosavi.builders.generate.stages.critique import critique_messages
from videosavi.builders.generate.stages.describe import describe_messages
from videosavi.builders.generate.stages.questions import question_messages
from videosavi.builders.generate.stages.refine import refine_messages
from videosavi.formats.swift_rows import VIDEO_TAG, swift_rows
from videosavi.schemas import Critique, CritiqueIssue, PreferencePair
from videosavi.schemas.arrow import to_table
from videosavi.schemas.enums import ERROR_TYPES
from videosavi.training.prompt import training_prompt

SNAPSHOTS = Path(__file__).parent / "snapshots" / "prompts"
QUESTION = "What does the man do right after he closes the fridge?"
ANSWER = "He puts a bottle on the table, then leaves the kitchen."
CRITIQUE = Critique(
    issues=[CritiqueIssue(statement="He puts a bottle on the table", reason="he keeps holding it",
                          evidence="the bottle stays in his hand", severity="critical",
                          error_type="factual_inaccuracy")],
    summary="The bottle is never put down.",
)


def _text(messages: list[dict]) -> str:
    (turn,) = messages
    assert turn["role"] == "user" and turn["content"][0] == {"type": "video"}
    return turn["content"][1]["text"]


def rendered() -> dict[str, str]:
    p = PromptSet.load()
    return {
        "question": _text(question_messages(p, 32, 3, 3)),
        "answer": _text(answer_messages(p, QUESTION, 32)),
        "critique": _text(critique_messages(p, QUESTION, ANSWER, 32)),
        "refine": _text(refine_messages(p, QUESTION, ANSWER, CRITIQUE, 32)),
    }


DESCRIPTION = "A man in a grey shirt stands at an open fridge in a small kitchen, holding a green bottle."
PREVIOUS = "A man stands in a kitchen next to a fridge."


def rendered_retrospective() -> dict[str, str]:
    """The retrospective stage's prompts (ISR-DPO): iteration 1's description, a later iteration's
    revision of the previous description, and the critique that reads the current one."""
    p = PromptSet.load(retrospective=True)
    return {
        "describe": _text(describe_messages(p, 32)),
        "describe_revising": _text(describe_messages(p, 32, PREVIOUS)),
        "critique_with_description": _text(critique_messages(p, QUESTION, ANSWER, 32, description=DESCRIPTION)),
    }


@pytest.mark.parametrize("stage", [*STAGES, "describe", "describe_revising", "critique_with_description"])
def test_rendered_prompts_match_their_snapshots(stage: str) -> None:
    text = {**rendered(), **rendered_retrospective()}[stage]
    path = SNAPSHOTS / f"{stage}.txt"
    if os.environ.get("VIDEOSAVI_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{stage} prompt changed: update its snapshot on purpose"


def test_a0_answers_the_bare_question() -> None:
    # the user turn of the answer stage is the video and the question exactly as a user would ask it
    assert rendered()["answer"] == QUESTION


def test_question_prompt_asks_for_the_papers_kinds_with_examples() -> None:
    text = rendered()["question"].lower()
    for facet in ("relative to one another", "small visual details", "region of the frame", "colour, size",
                  "occlusion", "layout of the scene"):
        assert facet in text, facet
    for facet in ("order in which things happen", "causes an action", "just before or just after",
                  "how long", "transitions", "from the start to the end"):
        assert facet in text, facet
    assert text.count("examples of the kind we mean") == 2 and "3 spatial" in text and "3 temporal" in text


def test_critique_prompt_has_counterfactual_and_entity_checks_and_defines_each_error_type() -> None:
    text = rendered()["critique"]
    assert "counterfactual" in text.lower() and "entity tracking" in text.lower()
    for error_type in ERROR_TYPES:
        line = next(x for x in text.splitlines() if x.strip().startswith(f'- "{error_type}":'))
        assert len(line.split(":", 1)[1].strip()) > 20, line  # a one-line definition follows each type
    assert QUESTION in text and ANSWER in text


def test_dpo_prompt_is_the_prompt_a0_was_made_with_in_training_and_in_the_swift_config() -> None:
    pairs: list[PreferencePair] = make_pairs(n_videos=2, per_video=2)
    template = PromptSet.load().templates["answer"]
    swift = swift_rows(to_table(pairs, PreferencePair), template).to_pylist()
    for pair, row in zip(pairs, swift, strict=True):
        n = len(pair.frame_indices)
        made_with = _text(answer_messages(PromptSet.load(), pair.question, n))
        assert _text(training_prompt(pair.question, n, template)) == made_with
        assert row["messages"][0] == {"role": "user", "content": VIDEO_TAG + made_with}


def test_retrospective_blocks_only_add_to_the_prompts_they_extend() -> None:
    plain, retro = rendered(), rendered_retrospective()
    assert retro["critique_with_description"].endswith(plain["critique"])  # the critique text is unchanged
    assert DESCRIPTION in retro["critique_with_description"] and DESCRIPTION not in plain["critique"]
    assert retro["describe_revising"].startswith(retro["describe"]) and PREVIOUS in retro["describe_revising"]
    assert PREVIOUS not in retro["describe"]
    assert _text(critique_messages(PromptSet.load(), QUESTION, ANSWER, 32)) == plain["critique"]


def test_prompt_version_of_builds_without_the_retrospective_stage_is_unchanged() -> None:
    plain, retro = PromptSet.load(), PromptSet.load(retrospective=True)
    assert set(plain.templates) == set(STAGES) and not plain.retrospective
    assert set(retro.templates) == {*STAGES, *RETROSPECTIVE_TEMPLATES} and retro.retrospective
    assert retro.version != plain.version
    # the four stages alone decide the version of a plain set, however it was loaded
    assert PromptSet({s: retro.templates[s] for s in STAGES}).version == plain.version
    changed = dict(retro.templates, describe=retro.templates["describe"] + " Be brief.")
    assert PromptSet(changed).version not in (retro.version, plain.version)


@pytest.mark.parametrize("stage", ["critique", "refine"])
def test_per_call_text_comes_after_every_shared_instruction(stage: str) -> None:
    """A video's calls of one stage share everything up to their question (issue 21 item 4): two calls that
    differ in question, answer and critique render the same text up to `Question:`, the instructions and
    the reply format included, so a server's prefix cache holds the whole instruction block once per video."""
    p = PromptSet.load()
    other = Critique(issues=[CritiqueIssue(statement="It is a cup", reason="it is a bowl", evidence="frame 3",
                                           severity="minor", error_type="object_hallucination")], summary="A bowl.")
    one, two = {
        "critique": (_text(critique_messages(p, QUESTION, ANSWER, 32)),
                     _text(critique_messages(p, "How many lamps are lit?", "Two.", 32))),
        "refine": (_text(refine_messages(p, QUESTION, ANSWER, CRITIQUE, 32)),
                   _text(refine_messages(p, "How many lamps are lit?", "Two.", other, 32))),
    }[stage]
    shared = one[:next(i for i, (x, y) in enumerate(zip(one, two, strict=False)) if x != y)]
    assert shared.endswith("\n\nQuestion: ") and one.startswith(shared) and two.startswith(shared)
    assert QUESTION not in shared and ANSWER not in shared and "He puts a bottle" not in shared
    instructions = "Reply with JSON only" if stage == "critique" else "Reply with the improved answer only"
    assert instructions in shared and len(shared) > 0.8 * len(p.templates[stage].split("Question: ${question}")[0])
