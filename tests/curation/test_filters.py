"""Curation filters on crafted records: each filter drops what it should, with its reason code, and
nothing else; every filter can be switched off; the balance policies do what they say."""

from __future__ import annotations

import pytest

from tests.helpers.factories import make_issue, make_pair
from videosavi.config import load_config
from videosavi.curation import (
    CurationConfig,
    CurationResult,
    critique_has_issue,
    curate_pairs,
    curate_video,
    dedupe_questions,
    is_truncated,
    load_curation_config,
    reasons,
    same_answer,
)
from videosavi.curation.filters import question_similarity
from videosavi.errors import ConfigError
from videosavi.schemas import Critique, CritiqueIssue, PreferencePair, Question

ALL_ON = CurationConfig(balance="keep")


def q(text: str, qtype: str = "spatial") -> Question:
    return Question(question_type=qtype, question=text)


def video_pairs(n_spatial: int = 3, n_temporal: int = 3, **overrides: object) -> list[PreferencePair]:
    """Pairs of one video that pass every content filter."""
    pairs = []
    for i in range(n_spatial + n_temporal):
        qtype = "spatial" if i < n_spatial else "temporal"
        pairs.append(make_pair(
            question_type=qtype, question=f"Where is the red cup in scene {i}?",
            rejected=f"The red cup sits on the floor near door {i}.",
            chosen=f"The red cup sits on the table beside lamp {i}.", **overrides,
        ))
    return pairs


def reasons_of(result: CurationResult) -> list[str]:
    return [r for _, r in result.dropped]


# --- predicates the runner uses before a pair exists ------------------------------------------------

def test_same_answer_uses_the_shared_normaliser() -> None:
    assert same_answer("The cup is red.", "  the CUP   is red ")
    assert same_answer("ｔｈｅ cup", "the cup")  # full-width letters fold (NFKC)
    assert not same_answer("The cup is red.", "The cup is blue.")


def test_critique_has_issue() -> None:
    real = CritiqueIssue(**make_issue())
    placeholder = CritiqueIssue(**{**make_issue(), "statement": "None."})
    assert not critique_has_issue(Critique(issues=[], summary="All good."))
    assert not critique_has_issue(Critique(issues=[placeholder], summary="Nothing wrong."))
    assert critique_has_issue(Critique(issues=[placeholder, real], summary="One problem."))
    assert critique_has_issue(make_pair())
    assert not critique_has_issue([{"statement": "No issues"}])


@pytest.mark.parametrize(
    ("text", "finish", "expected"),
    [
        ("The man opens the", "length", True),
        ("The man opens the door.", "length", True),  # the backend knows best
        ("The man opens the", "stop", False),
        ("The man opens the door.", None, False),
        ("The man opens the door and", None, True),
        ("The man opens the door,", None, True),
        ("The man walks to the", None, True),
        ("Yes", None, False),
    ],
)
def test_is_truncated(text: str, finish: str | None, expected: bool) -> None:
    assert is_truncated(text, finish) is expected


# --- questions --------------------------------------------------------------------------------------

def test_exact_and_near_duplicate_questions_dropped_first_kept() -> None:
    questions = [
        q("What is the man holding in his hand?"),
        q("what is the man holding in his HAND"),  # exact after normalisation
        q("What is the man holding in his left hand?"),  # one extra word: near duplicate
        q("What happens after the man opens the door?", "temporal"),
        q("Is the cup left of the lamp?"),
        q("Is the lamp left of the cup?"),  # same words, different question: kept
    ]
    kept, dropped = dedupe_questions(questions, ALL_ON)
    assert kept == [questions[0], questions[3], questions[4], questions[5]]
    assert dropped == [(questions[1], reasons.DUPLICATE_QUESTION), (questions[2], reasons.NEAR_DUPLICATE_QUESTION)]


def test_question_similarity_threshold_is_configurable() -> None:
    a, b = "Is the cup left of the lamp?", "Is the lamp left of the cup?"
    sim = question_similarity(a, b)
    assert 0 < sim < 0.9
    kept, dropped = dedupe_questions([q(a), q(b)], CurationConfig(question_similarity=sim))
    assert [x.question for x in kept] == [a] and dropped[0][1] == reasons.NEAR_DUPLICATE_QUESTION
    kept, dropped = dedupe_questions([q(a), q(a)], CurationConfig(drop_duplicate_questions=False))
    assert len(kept) == 2 and not dropped


# --- pair filters -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"chosen": "I cannot determine where the cup is from these frames."}, reasons.REFUSAL),
        ({"rejected": "As an AI, I can’t see videos."}, reasons.REFUSAL),
        ({"rejected": "It is not possible to determine that."}, reasons.REFUSAL),
        ({"rejected": "..."}, reasons.EMPTY_ANSWER),
        ({"question": "What is the person holding?", "rejected": "The person is holding something."},
         reasons.RESTATES_QUESTION),
        ({"issues": [{**make_issue(), "statement": "none"}]}, reasons.NO_ISSUE),
        ({"rejected": "The cup is on the floor.", "chosen": " ".join(["The cup is on the table"] * 3) + "."},
         reasons.LENGTH_RATIO_HIGH),
        ({"rejected": "The red cup is on the wooden table next to the tall lamp by the window.",
          "chosen": "The cup is on the floor."}, reasons.LENGTH_RATIO_LOW),
    ],
)
def test_each_pair_filter_drops_with_its_reason(overrides: dict, reason: str) -> None:
    good = make_pair()
    bad = make_pair(**overrides)
    res = curate_video([good, bad], ALL_ON)
    assert res.kept == [good]
    assert res.dropped == [(bad, reason)]
    assert reason in reasons.REASONS


@pytest.mark.parametrize(
    ("overrides", "switch"),
    [
        ({"chosen": "I cannot determine where the cup is."}, "drop_refusals"),
        ({"rejected": "..."}, "drop_empty"),
        ({"question": "What is the person holding?", "rejected": "The person is holding something."},
         "drop_restated"),
        ({"issues": [{**make_issue(), "statement": "none"}]}, "drop_no_issue"),
        ({"rejected": "The cup is on the floor.", "chosen": " ".join(["The cup is on the table"] * 3) + "."},
         "drop_length_ratio"),
    ],
)
def test_each_filter_can_be_switched_off(overrides: dict, switch: str) -> None:
    bad = make_pair(**overrides)
    assert curate_video([bad], ALL_ON).kept == []
    assert curate_video([bad], CurationConfig(balance="keep", **{switch: False})).kept == [bad]
    assert curate_video([bad], CurationConfig(enabled=False)).kept == [bad]


def test_same_answer_filter_catches_rows_built_without_validation() -> None:
    pair = make_pair()
    # model_copy skips validation, like rows read from elsewhere without it
    unvalidated = pair.model_copy(update={"chosen": pair.rejected.upper()})
    assert curate_video([unvalidated], ALL_ON).dropped == [(unvalidated, reasons.SAME_ANSWER)]
    assert curate_video([unvalidated], CurationConfig(balance="keep", drop_same_answer=False)).kept == [unvalidated]


def test_answers_that_add_content_are_not_restatements() -> None:
    kept = [
        make_pair(question="What is the person holding?", rejected="The person is holding a red cup."),
        make_pair(question="Is the cup left of the lamp?", rejected="No.", chosen="Yes, it is left of the lamp."),
        make_pair(question="Is the cup left or right of the lamp?", rejected="The cup is right of the lamp.",
                  chosen="The cup is left of the lamp."),  # choice question: repeating an option answers it
    ]
    assert curate_video(kept, ALL_ON).kept == kept


def test_refusal_phrases_are_configurable_and_matched_as_words() -> None:
    pair = make_pair(chosen="The cup is on the table, no idea about the lamp.")
    assert curate_video([pair], ALL_ON).kept == [pair]
    cfg = CurationConfig(balance="keep", refusal_phrases=["no idea"])
    assert curate_video([pair], cfg).dropped == [(pair, reasons.REFUSAL)]
    # "i cannot" must not fire inside other words or without the "I"
    ok = make_pair(chosen="The man cannot reach the cup on the table.")
    assert curate_video([ok], ALL_ON).kept == [ok]


def test_length_band_exempts_short_answers_and_is_configurable() -> None:
    short = make_pair(rejected="No.", chosen="No, the cup is on the table left of the lamp.")  # 11 / 1
    assert short.chosen_words / short.rejected_words == 11
    assert curate_video([short], ALL_ON).kept == [short]
    mid = make_pair(rejected="The cup is on the floor.", chosen="The cup is on the table left of the lamp.")
    ratio = mid.chosen_words / mid.rejected_words  # 10 / 6
    assert curate_video([mid], ALL_ON).kept == [mid]
    tight = CurationConfig(balance="keep", length_ratio_min=0.9, length_ratio_max=ratio - 0.01)
    assert curate_video([mid], tight).dropped == [(mid, reasons.LENGTH_RATIO_HIGH)]


def test_one_reason_per_dropped_pair_in_filter_order() -> None:
    # both a refusal and a restatement: counted once, under the earlier filter (refusal)
    pair = make_pair(question="What is the person holding?", rejected="I cannot tell what the person is holding.")
    res = curate_video([pair], ALL_ON)
    assert reasons_of(res) == [reasons.REFUSAL]
    assert res.counts() == {reasons.REFUSAL: 1}


# --- balance ----------------------------------------------------------------------------------------

def _with_two_refused_temporal() -> list[PreferencePair]:
    pairs = video_pairs(3, 3)
    refused = [make_pair(question_type="temporal", question=p.question, rejected="I am unable to tell.",
                         chosen=p.chosen) for p in pairs[4:]]
    return pairs[:4] + refused  # 3 spatial + 1 good temporal + 2 refused temporal


def test_balance_keep() -> None:
    pairs = _with_two_refused_temporal()
    res = curate_video(pairs, CurationConfig(balance="keep"))
    assert res.kept == pairs[:4]
    assert res.counts() == {reasons.REFUSAL: 2}


def test_balance_trim_to_equal_counts_keeps_earlier_pairs() -> None:
    pairs = _with_two_refused_temporal()
    res = curate_video(pairs, CurationConfig(balance="trim"))
    assert res.kept == [pairs[0], pairs[3]]
    assert res.counts() == {reasons.REFUSAL: 2, reasons.BALANCE_TRIM: 2}
    assert len(res.kept) + len(res.dropped) == len(pairs)


def test_balance_trim_caps_at_per_type() -> None:
    pairs = video_pairs(4, 3)
    res = curate_video(pairs, CurationConfig(balance="trim", balance_per_type=2))
    assert [p.question_type for p in res.kept] == ["spatial", "spatial", "temporal", "temporal"]
    assert res.counts() == {reasons.BALANCE_TRIM: 3}


def test_balance_drop_video() -> None:
    pairs = _with_two_refused_temporal()
    res = curate_video(pairs, CurationConfig(balance="drop_video"))
    assert res.kept == []
    assert res.counts() == {reasons.REFUSAL: 2, reasons.BALANCE_DROP_VIDEO: 4}
    full = video_pairs(3, 3)
    assert curate_video(full, CurationConfig(balance="drop_video", balance_per_type=3)).kept == full
    # balanced but short of the expected 3 + 3: dropped
    short = video_pairs(2, 2)
    assert curate_video(short, CurationConfig(balance="drop_video", balance_per_type=3)).kept == []


def test_curate_pairs_groups_by_video() -> None:
    a = video_pairs(2, 1)
    b = [make_pair(video_id="other", question_type=t, question=f"Which way does the dog run {i}?")
         for i, t in enumerate(["spatial", "temporal"])]
    res = curate_pairs(a + b, CurationConfig(balance="trim"))
    assert res.kept == [a[0], a[2], *b]
    assert res.counts() == {reasons.BALANCE_TRIM: 1}


# --- config -----------------------------------------------------------------------------------------

def test_config_from_build_config_yaml_section() -> None:
    cfg = load_config("demo", overrides={"curation": {"drop_refusals": False, "balance": "drop_video"}})
    cur = load_curation_config(cfg.curation)
    assert cur.drop_refusals is False and cur.balance == "drop_video"
    assert cur.drop_truncated is False  # the demo config keeps the tiny model's cut-off answers
    assert load_curation_config({}) == CurationConfig()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"balance": "sometimes"}, "balance"),
        ({"length_ratio_min": 3, "length_ratio_max": 2}, "length_ratio_min"),
        ({"drop_refusal": False}, "drop_refusal"),  # a typo of drop_refusals is not silently ignored
        ({"question_similarity": 1.5}, "question_similarity"),
    ],
)
def test_bad_config_is_a_clear_error(raw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_curation_config(raw)


def test_master_switch_turns_everything_off() -> None:
    off = CurationConfig(enabled=False)
    assert not off.drop_truncated and off.balance == "keep"
    qs = [q("What is on the table?"), q("What is on the table?")]
    assert dedupe_questions(qs, off) == (qs, [])


# --- profiles -----------------------------------------------------------------------------------------


def test_paper_profile_keeps_all_but_unusable_pairs() -> None:
    paper = load_curation_config({"profile": "paper"})
    assert (paper.drop_same_answer, paper.drop_empty) == (True, True)
    assert not (paper.drop_duplicate_questions or paper.drop_refusals or paper.drop_restated
                or paper.drop_no_issue or paper.drop_length_ratio or paper.drop_truncated)
    curated = load_curation_config({"profile": "curated"})
    assert curated.drop_no_issue and curated.drop_truncated  # the two named options of `curated`
    assert paper.balance == "keep"
    content = [make_pair(chosen="I cannot determine where the cup is."),
               make_pair(question="What is the person holding?", rejected="The person is holding something."),
               make_pair(issues=[{**make_issue(), "statement": "none"}]),
               make_pair(question="What moves first?", issues=[]),  # a critique that found nothing
               make_pair(rejected="The cup is on the floor.", chosen=" ".join(["The cup is on the table"] * 3) + ".")]
    assert curate_video(content, paper).kept == content  # curated drops every one of these
    assert curate_video(content, load_curation_config({"profile": "curated"})).kept == []
    assert curate_video([make_pair(rejected="...")], paper).kept == []  # an empty answer is unusable


def test_keys_beside_a_profile_win_and_an_unknown_profile_is_refused() -> None:
    assert load_curation_config({"profile": "paper", "drop_refusals": True}).drop_refusals is True
    assert load_curation_config({}).profile == "curated"
    with pytest.raises(ConfigError, match="profile"):
        load_curation_config({"profile": "lenient"})


def test_the_papers_config_uses_the_paper_profile() -> None:
    assert load_curation_config(load_config("videosavi").curation).profile == "paper"
