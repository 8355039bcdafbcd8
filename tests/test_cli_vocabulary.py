"""One CLI vocabulary (issues 16, 25): the command tree checked against `VOCABULARY`, one meaning per flag,
every training option on `savi train` and `savi loop`, list options that take space-separated values, and
every `savi ...` command line of README.md and docs/*.md parsed by the real commands (click's
`make_context`: every option and value checked, nothing run)."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.helpers.cli_tree import commands, flags, is_option, options_table, visible
from videosavi.cli import app
from videosavi.commands.dataclass_options import dataclass_flags, with_dataclass_options
from videosavi.commands.options import SHORT_FLAGS, VOCABULARY, VocabCommand, VocabGroup
from videosavi.training_options import TrainingOptions, training_fields

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TREE = dict(commands())
# Spellings that were removed (docs/cli.md, "Release note"): no command has them, no doc line uses them.
REMOVED = ("--repo", "--output", "--workdir", "--push", "--judge-model", "--force", "--workers")


# --- the command tree -----------------------------------------------------------------------------------


def test_every_short_flag_has_one_meaning_across_all_commands() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for cmd in TREE.values():
        for p in cmd.params:
            if is_option(p):
                longs = [f for f in flags(p) if f.startswith("--")]
                for short in (f for f in flags(p) if not f.startswith("--")):
                    meanings[short].add(longs[0])
    assert meanings, "no options found"
    two = {s: m for s, m in meanings.items() if len(m) > 1}
    assert not two, f"short flags with two meanings: {two}"
    assert {s: next(iter(m)) for s, m in meanings.items()} == {s: SHORT_FLAGS[s] for s in meanings}


def test_every_command_speaks_the_vocabulary() -> None:
    problems = []
    for path, cmd in TREE.items():
        for p in cmd.params:
            names = flags(p)
            if not is_option(p):
                if visible(p) and p.name in ("out", "dataset", "repo", "revision", "model", "config"):
                    problems.append(f"{path}: {p.name} is positional")
                continue
            for word, (short, _) in VOCABULARY.items():
                if word in names:
                    expected = {short} if short else set()
                    got = {f for f in names if not f.startswith("--")}
                    if got != expected:
                        problems.append(f"{path}: {word} has short flags {got or 'none'}, not {expected or 'none'}")
            problems += [f"{path}: has the removed spelling {f}" for f in names if f in REMOVED]
    assert not problems, "\n".join(problems)


def test_commands_that_write_a_result_take_it_as_out() -> None:
    writers = {"savi build", "savi merge-shards", "savi demo-data", "savi sample", "savi train", "savi loop",
               "savi export", "savi demo", "savi model convert", "savi eval make-set", "savi eval answer",
               "savi eval judge", "savi humaneval export"}
    for path in writers:
        assert any("--out" in flags(p) and "-o" in flags(p) for p in TREE[path].params if is_option(p)), path


def test_loop_and_train_list_every_training_option() -> None:
    runner = CliRunner()
    for command in ("train", "loop"):
        res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        expected = dataclass_flags(TrainingOptions, command)
        assert [f for f in expected if f not in res.output] == [], command
        params = {f for p in TREE[f"savi {command}"].params for f in flags(p)}
        assert set(expected) <= params
    every = {f.name for f in training_fields()}
    on_loop = {f.name for f in training_fields() if "--" + f.name.replace("_", "-") in dataclass_flags(
        TrainingOptions, "loop") or f.metadata.get("flag") in dataclass_flags(TrainingOptions, "loop")}
    # only what the loop cannot honour is missing, and the field says why
    assert every - on_loop == {f.name for f in training_fields() if "why_not" in f.metadata} == {"merge"}
    assert all(f.metadata.get("help") for f in training_fields())


def test_docs_cli_table_is_the_command_tree() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text.split("<!-- options-table:start -->\n")[1].split("<!-- options-table:end -->")[0]
    assert table == options_table(), "docs/cli.md is stale: regenerate its table with python -m tests.helpers.cli_tree"


# --- list options, earlier spellings ----------------------------------------------------------------------


def _params(*args: str) -> dict[str, Any]:
    """The parameters a command line gives its command (parsed, validated, not run)."""
    cmd: Any = typer.main.get_command(app)
    rest = list(args)
    while getattr(cmd, "commands", None):
        cmd = cmd.commands[rest.pop(0)]
    return cmd.make_context("savi", rest).params


def test_list_options_take_space_separated_values() -> None:
    p = _params("stats", "-d", "org/x", "-r", "iter1", "--compare", "iter2", "iter3", "iter4", "--json")
    assert p["compare_with"] == ["iter2", "iter3", "iter4"] and p["as_json"] is True
    assert _params("stats", "-d", "org/x", "-r", "iter1", "--compare", "iter2", "--compare", "iter3")[
        "compare_with"] == ["iter2", "iter3"]
    p = _params("train", "-d", "o/x", "-r", "iter1", "-m", "tiny-qwen2-vl", "-o", "out",
                "--video-root", "star=/a", "vidal=/b", "--video-root=webvid=/c", "--lora-r", "4")
    assert p["video_root"] == ["star=/a", "vidal=/b", "webvid=/c"] and p["lora_r"] == 4
    p = _params("eval", "judge", "--answers", "a1", "a2", "a3", "-m", "gpt-4o", "-o", "t")
    assert [str(a) for a in p["answers"]] == ["a1", "a2", "a3"]


def test_each_clashing_word_has_one_meaning() -> None:
    """`--overwrite` is the one word for "replace what this command wrote"; `--batch-size` is requests given to
    a model at once (training's batch is `--per-device-batch-size`); threads and processes have their own
    words (`--threads`, `--dataloader-workers`)."""
    by_flag: dict[str, set[str]] = defaultdict(set)
    for path, cmd in TREE.items():
        for p in cmd.params:
            for f in flags(p):
                by_flag[f].add(path)
    assert by_flag["--batch-size"] == {"savi eval answer", "savi eval judge", "savi bench"}
    assert by_flag["--per-device-batch-size"] == by_flag["--dataloader-workers"] == {"savi train", "savi loop"}
    assert by_flag["--threads"] == {"savi export"}
    assert {"savi build", "savi-build", "savi sample", "savi publish", "savi model convert", "savi eval make-set",
            "savi eval answer", "savi eval judge", "savi bench", "savi train", "savi loop", "savi export",
            "savi humaneval export"} <= by_flag["--overwrite"]
    batch_helps = {p.help for cmd in TREE.values() for p in cmd.params if "--batch-size" in flags(p)}
    assert len(batch_helps) == 1, batch_helps  # written once


@pytest.mark.parametrize(("args", "says"), [
    (["publish", "runs/iter1", "--repo", "org/x"], "No such option: --repo"),
    (["build", "--push", "org/x"], "No such option: --push"),
    (["train", "-d", "o/x", "-r", "iter1", "-m", "m", "--output", "o"], "No such option: --output"),
    (["loop", "-m", "m", "-d", "o/x", "--workdir", "w"], "No such option: --workdir"),
    (["sample", "-o", "s", "--force"], "No such option: --force"),
    (["export", "-d", "o/x", "-r", "iter1", "-f", "swift", "-o", "e", "--workers", "2"], "No such option: --workers"),
    (["train", "-d", "o/x", "-r", "iter1", "-m", "m", "-o", "o", "--batch-size", "2"], "No such option: --batch-size"),
    (["hub", "resolve", "org/x", "iter2"], "Missing option '--dataset'"),
])
def test_removed_spellings_are_refused_not_rewritten(args: list[str], says: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 2 and says in res.output, res.output
    assert "deprecated" not in res.output and list(tmp_path.iterdir()) == []


def test_merge_shards_needs_out(tmp_path: Path) -> None:
    """The old `savi merge-shards OUT SHARD...` form is gone: without --out nothing is merged or written."""
    shard = tmp_path / "shard"
    shard.mkdir()
    (shard / "build.json").write_text("{}", encoding="utf-8")
    res = CliRunner().invoke(app, ["merge-shards", str(tmp_path / "other"), str(shard)])
    assert res.exit_code == 2 and "--out" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard"] and sorted(p.name for p in shard.iterdir()) == [
        "build.json"]


def test_a_build_without_config_says_which_it_uses(demo_root: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["sample", "--data-root", str(demo_root), "--out", str(tmp_path / "s"),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "no --config given: using the bundled demo config" in res.stderr and "demo.yaml" in res.stderr


# --- options generated from a dataclass ----------------------------------------------------------------


def test_generated_options_apply_only_what_was_given_over_the_base() -> None:
    toy = typer.Typer()
    seen: dict[str, Any] = {}

    @with_dataclass_options(TrainingOptions, command="train", param="training")
    def run(name: str = typer.Option("x", "--name"), *, training: Any) -> None:
        seen.update(name=name, opts=training.over(TrainingOptions(lora_r=16, loss="ipo")),
                    explicit=training.explicit)

    toy.command()(run)
    res = CliRunner().invoke(toy, ["--name", "y", "--lora-alpha", "4", "--resize", "224x320", "--no-bf16",
                                   "--alpha", "0.5"])
    assert res.exit_code == 0, res.output
    opts = seen["opts"]
    assert seen["name"] == "y" and seen["explicit"] == {"lora_alpha", "resize", "bf16", "rrpo_alpha"}
    assert (opts.lora_r, opts.loss, opts.lora_alpha, opts.resize, opts.bf16, opts.rrpo_alpha) == (
        16, "ipo", 4, (224, 320), False, 0.5)
    bad = CliRunner().invoke(toy, ["--resize", "big"])
    assert bad.exit_code == 2 and "HEIGHTxWIDTH" in bad.output


def test_training_flags_override_the_config_section(tmp_path: Path) -> None:
    """`savi train --config` starts from the config's `training:` section; a flag given wins."""
    import yaml

    from videosavi.commands.dataclass_options import GivenOptions
    from videosavi.commands.train import training_options
    from videosavi.config import load_config

    raw = load_config("demo").model_dump(mode="json")
    raw["training"] = {"lora_r": 16, "loss": "ipo", "resize": [224, 224]}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    given = GivenOptions({"lora_r": 4, "beta": 0.1}, frozenset({"lora_r"}))
    opts = training_options(given, str(cfg))
    assert (opts.lora_r, opts.loss, opts.resize, opts.beta) == (4, "ipo", (224, 224), 0.1)
    raw["training"] = {"lora_rank": 16}
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    from videosavi.errors import ConfigError

    with pytest.raises(ConfigError, match="lora_rank"):
        load_config(cfg)


# --- every command line of README.md and docs/*.md ---------------------------------------------------


@dataclass(frozen=True)
class DocLine:
    where: str
    text: str
    partial: bool  # an inline mention, or a line with `...`: its flags are checked, not its completeness

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


def doc_lines() -> list[DocLine]:
    """Every `savi`/`savi-build` command line in a code block (continuations joined, comments dropped),
    and every inline code span that starts with one."""
    found = []
    for path in DOC_FILES:
        in_code, pending = False, None
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{n}"
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                s = line.strip().removeprefix("$ ")
                if pending is not None:
                    pending = (pending[0], pending[1] + " " + s.removesuffix("\\"))
                elif re.match(r"(savi|savi-build)(\s|$)", s):
                    pending = (where, s.removesuffix("\\"))
                if pending is not None and not s.endswith("\\"):
                    text = pending[1]
                    found.append(DocLine(pending[0], text, "..." in shlex.split(text, comments=True)))
                    pending = None
                continue
            for m in re.finditer(r"`((?:savi|savi-build)(?:\s[^`]*)?)`", line):
                found.append(DocLine(where, m.group(1), True))
    return found


def _resolve(tokens: list[str]) -> tuple[str, Any, list[str]]:
    root = TREE["savi-build"] if tokens[0] == "savi-build" else typer.main.get_command(app)
    path, cmd, rest = [tokens[0]], root, tokens[1:]
    while getattr(cmd, "commands", None) and rest:
        if rest[0] in cmd.commands:
            path.append(rest[0])
            cmd = cmd.commands[rest.pop(0)]
            continue
        if getattr(cmd, "invoke_without_command", False):  # `savi bench --model ...`: the group is the command
            break
        group_option = next((p for p in cmd.params if rest[0].split("=")[0] in flags(p)), None)
        if group_option is None:  # `savi --log-level info build ...`: the group's own options come first
            break
        takes_value = not (getattr(group_option, "is_flag", False) or "=" in rest[0])
        del rest[:2 if takes_value and len(rest) > 1 else 1]
    return " ".join(path), cmd, rest


DOC_LINES = doc_lines()


def test_the_docs_have_command_lines() -> None:
    assert len([d for d in DOC_LINES if not d.partial]) > 40 and len(DOC_LINES) > 150


@pytest.mark.parametrize("line", DOC_LINES, ids=str)
def test_a_documented_command_line_parses(line: DocLine) -> None:
    tokens = shlex.split(line.text, comments=True)
    path, cmd, args = _resolve(tokens)
    runs = getattr(cmd, "invoke_without_command", False)
    if getattr(cmd, "commands", None) and not runs:  # a group named in prose (`savi eval`), or `savi --help`
        assert args in ([], ["--help"]), f"{line}: {path} has no command {args[0]}"
        return
    assert isinstance(cmd, (VocabCommand, VocabGroup)), f"{path} is not registered with the vocabulary"
    known = {f for p in cmd.params for f in flags(p)} | {"--help"}
    for token in args:
        flag = token.split("=")[0]
        if flag.startswith("-") and flag != "-":
            assert flag in known, f"{line}: {path} has no option {flag}"
            assert flag not in REMOVED, f"{line}: removed spelling"
    if line.partial or not args or args == ["--help"]:
        return
    cmd.make_context(path, list(args))


# --- savi loop end to end ----------------------------------------------------------------------------------


def test_loop_trains_with_the_config_section_and_the_flags_given(small_config: Path, demo_root: Path,
                                                                 tmp_path: Path) -> None:
    """One iteration of `savi loop` on the small demo config: build, publish to a store, train one step;
    the config's `training:` section is used and a flag given on the command line wins over it."""
    import json

    import yaml

    raw = yaml.safe_load(small_config.read_text(encoding="utf-8"))
    raw["training"] = {"max_steps": 1, "per_device_batch_size": 2, "grad_accum": 1, "lr": 1e-3, "warmup_ratio": 0.0,
                       "dataloader_workers": 0, "lora_r": 4, "lora_alpha": 4, "seed": 1}
    cfg = tmp_path / "loop.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    out = tmp_path / "loop"
    res = CliRunner().invoke(app, ["loop", "-m", "tiny-qwen2-vl", "-d", "org/loop", "--iterations", "1",
                                   "-c", str(cfg), "--data-root", str(demo_root), "-o", str(out),
                                   "--store", str(tmp_path / "store"), "--limit-videos", "2", "--seed", "3",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "iteration 1: published iter1" in res.output
    args = json.loads((out / "iter1-model" / "train.json").read_text(encoding="utf-8"))["args"]
    assert (args["max_steps"], args["lora_r"], args["seed"], args["revision"]) == (1, 4, 3, "iter1")
    assert (out / "iter1-model" / "merged").is_dir()
