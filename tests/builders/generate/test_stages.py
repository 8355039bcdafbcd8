"""Stage prompts render and version by content; replies parse or fail with a precise reason."""

from __future__ import annotations

import json

import pytest

from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.generate.call_keys import call_key, call_seed
from videosavi.builders.generate.prompts import STAGES, PromptSet
from videosavi.builders.generate.stages.answer import answer_messages
from videosavi.builders.generate.stages.critique import critique_schema, parse_critique
from videosavi.builders.generate.stages.parsing import ParseError, extract_json
from videosavi.builders.generate.stages.questions import parse_questions, question_messages
from videosavi.builders.generate.stages.refine import format_issues, refine_messages

CRITIQUE = {
    "issues": [{"statement": "the cup is blue", "reason": "it is red", "evidence": "frames 2-5 show a red cup",
                "severity": "critical", "error_type": "factual_inaccuracy"}],
    "summary": "Fix the cup colour.",
}


def test_prompt_version_changes_with_content(tmp_path) -> None:
    bundled = PromptSet.load()
    for stage in STAGES:
        (tmp_path / f"{stage}.txt").write_text(bundled.templates[stage], encoding="utf-8")
    same = PromptSet.load(tmp_path)
    assert same.version == bundled.version
    (tmp_path / "critique.txt").write_text(bundled.templates["critique"] + "\nBe brief.", encoding="utf-8")
    changed = PromptSet.load(tmp_path)
    assert changed.version != bundled.version
    assert changed.hashes["question"] == bundled.hashes["question"]
    assert changed.hashes["critique"] != bundled.hashes["critique"]


def test_templates_render_all_placeholders() -> None:
    prompts = PromptSet.load()
    msgs = question_messages(prompts, 32, 3, 3)
    text = msgs[0]["content"][1]["text"]
    assert "3 SPATIAL" in text and "3 TEMPORAL" in text and "${" not in text
    assert msgs[0]["content"][0] == {"type": "video"}
    ans = answer_messages(prompts, "What is left of the lamp? ${question}", 8)[0]["content"][1]["text"]
    assert "What is left of the lamp? ${question}" in ans  # model text is never re-interpreted
    from videosavi.schemas import Critique

    crit = Critique.model_validate(CRITIQUE)
    ref = refine_messages(prompts, "Q?", "A blue cup.", crit, 8)[0]["content"][1]["text"]
    assert "the cup is blue" in ref and "Fix the cup colour." in ref and "${" not in ref
    assert format_issues(crit).startswith("1. [critical, factual_inaccuracy]")


def test_extract_json_variants() -> None:
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure!\n```json\n{"a": 2}\n```') == {"a": 2}
    assert extract_json('Here you go: {"a": 3} done') == {"a": 3}
    with pytest.raises(ParseError) as e:
        extract_json("no braces at all")
    assert e.value.reason == "no_json"
    with pytest.raises(ParseError) as e:
        extract_json('{"a": ')
    assert e.value.reason == "invalid_json"


def test_control_characters_inside_strings_are_read_not_quarantined() -> None:
    """A grammar may let a model write a raw tab or 0x1a inside a string (vLLM's default did): the reply is
    unambiguous, so it parses as if escaped; what is not JSON, or not the schema, is still refused."""
    raw = '{"issues": [], "summary": "the cup\tis\x1ared\nreally"}'
    assert parse_critique(raw).summary == "the cup\tis\x1ared\nreally"
    with pytest.raises(ParseError) as e:
        parse_critique('{"issues": [], "summary": "open string')
    assert e.value.reason == "invalid_json"
    with pytest.raises(ParseError) as e:
        parse_critique('{"issues": [{"statement": "x"}], "summary": "\x01"}')
    assert e.value.reason == "schema_mismatch"


def test_the_grammar_sent_to_vllm_is_in_process_decodings_without_control_characters() -> None:
    """`json_schema_ebnf`: the compact, strict grammar xgrammar compiles in-process, as EBNF text a server takes
    per request, with raw control characters banned from strings (in-process bans those tokens)."""
    import xgrammar as xgr

    from videosavi.builders.generate.models.grammar import json_schema_ebnf

    compiled = xgr.GrammarCompiler(xgr.TokenizerInfo([])).compile_grammar(json_schema_ebnf(critique_schema()))

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
        return matcher.accept_string(text) and matcher.is_terminated()

    compact = json.dumps({"issues": [{"statement": "a cup", "reason": "a bowl", "evidence": "frame 2",
                                      "severity": "minor", "error_type": "object_hallucination"}], "summary": "Bowl."})
    assert accepts(compact)
    assert not accepts(compact.replace(", ", " ,\n "))  # padding whitespace
    assert not accepts(compact.replace("a bowl", "a\tbowl")) and not accepts(compact.replace("Bowl.", "Bo\x1awl."))
    assert not accepts(compact.replace('"minor"', '"tiny"'))  # the schema's enums hold


def test_parse_questions_counts_and_types() -> None:
    reply = json.dumps({"spatial": ["Where is the red cup?", "What is behind the sofa?"],
                        "temporal": ["What happens after the door opens?", "Who leaves first?!"]})
    qs = parse_questions(reply, 2, 2)
    assert [q.question_type for q in qs] == ["spatial", "spatial", "temporal", "temporal"]
    with pytest.raises(ParseError) as e:
        parse_questions(reply, 3, 3)
    assert e.value.reason == "schema_mismatch"


def test_parse_critique_rejects_unknown_error_type() -> None:
    assert parse_critique(json.dumps(CRITIQUE)).issues[0].severity == "critical"
    bad = json.loads(json.dumps(CRITIQUE))
    bad["issues"][0]["error_type"] = "style"
    with pytest.raises(ParseError) as e:
        parse_critique(json.dumps(bad))
    assert e.value.reason == "schema_mismatch" and "error_type" in e.value.detail
    assert critique_schema()["properties"]["issues"]["items"]["properties"]["severity"]["enum"] == ["critical", "minor"]


def test_call_keys_and_seeds_are_stable_and_distinct() -> None:
    base = dict(model="m", revision="r", prompt_hash="p", video_sha256="v" * 64, frame_indices=[0, 5],
                messages=[{"role": "user", "content": "x"}], params={"temperature": 0.7}, json_schema=None, seed=1)
    assert call_key(**base) == call_key(**dict(base))
    for field, value in [("revision", "r2"), ("frame_indices", [0, 6]), ("seed", 2), ("json_schema", {"a": 1}),
                         ("params", {"temperature": 0.8}), ("prompt_hash", "q")]:
        assert call_key(**{**base, field: value}) != call_key(**base), field
    s = call_seed(7, 1, "star/a", "answer", 0, 1)
    assert s == call_seed(7, 1, "star/a", "answer", 0, 1) and 0 <= s < 2**31
    assert len({call_seed(7, 1, "star/a", "answer", slot, att) for slot in range(6) for att in range(1, 4)}) == 18


def test_call_cache_persists_across_connections(tmp_path) -> None:
    path = tmp_path / "cache.sqlite"
    with CallCache(path) as cache:
        cache.put_many([("k1", "answer", "star/a", "text one", "stop"), ("k2", "answer", "star/a", "two", "length")])
        cache.log_errors([("k3", "answer", "star/a", "HTTP 500")])
        cache.mark_video(0, "star/a", "done", {"questions": 6}, [{"stage": "critique", "raw_text": "{"}])
    with CallCache(path) as cache:
        got = cache.get_many(["k1", "k2", "k3", "missing"])
        assert set(got) == {"k1", "k2"} and got["k2"].finish_reason == "length"
        assert cache.finished_videos() == {0: ("star/a", "done", {"questions": 6})}
        assert cache.quarantined() == [{"stage": "critique", "raw_text": "{"}]


# -- the stage runner's retry rules ------------------------------------------------------------------


class ScriptedBackend:
    """Answers each request by a rule on (seed, how often that seed was seen): the runner's retry policy
    is the unit under test here, not a model, so the replies are chosen to drive each branch."""

    def __init__(self, rule) -> None:  # rule(seed, nth_time_seen) -> GenerationResult
        self.rule = rule
        self.seen: list[int] = []

    def generate(self, requests):
        out = []
        for r in requests:
            out.append(self.rule(r.seed, self.seen.count(r.seed)))
            self.seen.append(r.seed)
        return out


def _runner(backend, tmp_path, max_attempts: int = 3):
    from videosavi.builders.generate.stage_runner import CallContext, StageRunner

    ctx = CallContext(model="m", revision="r", prompt_hashes={"answer": "p"}, base_seed=7, iteration=1,
                      max_attempts=max_attempts)
    return StageRunner(backend=backend, cache=CallCache(tmp_path / "cache.sqlite"), ctx=ctx, batch_size=4)


def _task(slot: int = 0):
    from videosavi.builders.generate.stage_runner import StageTask

    def parse(text: str, finish: str, last: bool) -> str:
        if text == "bad":
            raise ParseError("malformed", "scripted bad reply")
        return text

    return StageTask(task_id=slot, stage="answer", video_uid="star/a", video_sha256="v" * 64, frame_indices=[0, 1],
                     frames=None, messages=[{"role": "user", "content": "q"}], params={"temperature": 0.7,
                     "top_p": 1.0, "max_new_tokens": 8}, json_schema=None, slot=slot, parse=parse)


def test_transport_errors_retry_the_same_seed_so_the_data_do_not_depend_on_them(tmp_path) -> None:
    from videosavi.builders.generate.models.base import GenerationResult, error_result

    def rule(seed: int, seen: int):
        return error_result("HTTP 500") if seen < 2 else GenerationResult(f"reply for {seed}", "stop")

    backend = ScriptedBackend(rule)
    out = _runner(backend, tmp_path).run([_task()])[0]
    first_seed = call_seed(7, 1, "star/a", "answer", 0, 1)
    assert out.ok and out.value == f"reply for {first_seed}"  # what an undisturbed run gets
    assert backend.seen == [first_seed] * 3


def test_malformed_replies_get_fresh_seeds_then_quarantine(tmp_path) -> None:
    from videosavi.builders.generate.models.base import GenerationResult

    backend = ScriptedBackend(lambda seed, seen: GenerationResult("bad", "stop"))
    runner = _runner(backend, tmp_path)
    out = runner.run([_task()])[0]
    assert not out.ok and not out.transient and out.reason == "malformed" and out.text == "bad"
    assert backend.seen == [call_seed(7, 1, "star/a", "answer", 0, a) for a in (1, 2, 3)]
    assert runner.counts["answer"].quarantined == 1 and runner.counts["answer"].retries == 2


def test_persistent_transport_errors_leave_the_call_pending_not_quarantined(tmp_path) -> None:
    from videosavi.builders.generate.models.base import GenerationResult, error_result

    # a malformed first reply, then the server goes down: the call must stay retryable
    def rule(seed: int, seen: int):
        return GenerationResult("bad", "stop") if not backend.seen else error_result("timed out")

    backend = ScriptedBackend(rule)
    runner = _runner(backend, tmp_path)
    out = runner.run([_task()])[0]
    assert out.transient and out.reason == "call_error" and "timed out" in out.detail
    assert runner.counts["answer"].quarantined == 0
    assert len(backend.seen) == 4  # 1 malformed + 3 transport failures on the second seed
    assert len(set(backend.seen[1:])) == 1 and backend.seen[1] != backend.seen[0]


def test_replies_are_cached_and_not_asked_again(tmp_path) -> None:
    from videosavi.builders.generate.models.base import GenerationResult

    backend = ScriptedBackend(lambda seed, seen: GenerationResult(f"ok {seed}", "stop"))
    first = _runner(backend, tmp_path).run([_task(0), _task(1)])
    again = _runner(backend, tmp_path).run([_task(0), _task(1)])
    assert len(backend.seen) == 2 and {k: v.value for k, v in first.items()} == {k: v.value for k, v in again.items()}
