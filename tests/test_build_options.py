"""Build options and hub locations are each defined once (issue 25): `BuildOptions`' fields are `savi build`'s
and `savi-build`'s flags, `savi loop`'s build flags and `videosavi.run_build`'s keywords; `HubLocation` is
every command's `--store/--endpoint/--hub`, checked and defaulted in one place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

import videosavi
from tests.helpers.cli_tree import commands, flags, is_option
from videosavi.build_options import BuildOptions, api_fields
from videosavi.cli import app, build_app
from videosavi.commands.dataclass_options import option_flag
from videosavi.errors import ConfigError
from videosavi.hub_location import HUB_ENDPOINT, HubLocation
from videosavi.paths import default_store


def _flags(command: object) -> set[str]:
    return {f for p in command.params if is_option(p) for f in flags(p)}  # type: ignore[attr-defined]


def _command(path: str) -> object:
    return dict(commands())[path]


def test_every_build_option_is_a_flag_where_its_field_says() -> None:
    import typer.main

    fields = dataclasses.fields(BuildOptions)
    build_flags = _flags(_command("savi build"))
    standalone = _flags(typer.main.get_command(build_app))
    loop_flags = _flags(_command("savi loop"))
    for f in fields:
        where = f.metadata["commands"]
        if f.name in ("config", "data_root"):  # the vocabulary's words, not generated
            continue
        assert (option_flag(f) in build_flags) == ("build" in where), f.name
        assert (option_flag(f) in standalone) == ("build" in where), f.name
        assert option_flag(f) in loop_flags or "loop" not in where, f.name  # (loop's --out, --model are its own)
        if "short" in f.metadata:
            assert f.metadata["short"] in build_flags
    assert {"--config", "--data-root", "--store", "--endpoint", "--hub"} <= build_flags & loop_flags


def test_run_build_takes_the_build_options_as_keywords(tmp_path: Path) -> None:
    names = {f.name for f in api_fields()}
    assert {"iteration", "out", "limit_videos", "allow_shortfall", "previous"} <= names
    assert not {"config", "overrides", "previous_descriptions"} & names  # given first, or filled by the CLI
    for name in names:
        assert f"    {name}: " in (videosavi.run_build.__doc__ or "")
    cfg = videosavi.load_config("demo")
    with pytest.raises(TypeError, match="no_such_option"):  # not a build option: the local executor refuses it
        videosavi.run_build(cfg, out=tmp_path / "x", no_such_option=1)
    assert not (tmp_path / "x").exists()


def test_a_flag_given_overrides_the_base_and_a_flag_left_out_does_not() -> None:
    from videosavi.commands.dataclass_options import GivenOptions

    base = BuildOptions(config="demo", limit_videos=3)
    given = GivenOptions({"limit_videos": None, "allow_shortfall": True}, frozenset({"allow_shortfall"}))
    opts = given.over(base)
    assert (opts.limit_videos, opts.allow_shortfall, opts.config) == (3, True, "demo")


@pytest.mark.parametrize(("role", "kwargs", "message"), [
    ("read", {"store": Path("s"), "hub": True}, "--store and --hub exclude each other: read from one place"),
    ("read", {"store": Path("s"), "endpoint": "http://h"}, "--store and --endpoint exclude each other"),
    ("build", {"store": Path("s"), "hub": True}, "--store and --hub exclude each other: --hub publishes to"),
    ("build", {"endpoint": "http://h", "hub": True}, "--endpoint and --hub exclude each other"),
    ("publish", {"store": Path("s"), "hub": True}, "--store and --hub exclude each other"),
    ("check", {"endpoint": "http://h", "hub": True}, "exclude each other: check one place to publish to"),
])
def test_the_flags_that_exclude_each_other(role: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HubLocation(role=role, **kwargs)  # type: ignore[arg-type]


def test_where_each_role_reads_and_publishes() -> None:
    assert HubLocation(role="read").read() == (None, None)  # HF_ENDPOINT, else the Hub
    assert HubLocation(role="read", hub=True).read() == (None, HUB_ENDPOINT)  # the Hub itself
    assert HubLocation(role="read_store").read() == (default_store(), None)
    assert HubLocation(role="build").read() == (default_store(), None)
    # a build publishes to the store and may read an --endpoint; with --hub it reads back where it publishes
    both = HubLocation(role="build", store=Path("s"), endpoint="http://h")
    assert both.read() == (None, "http://h") and both.backend == "store" and both.store == Path("s")
    assert HubLocation(role="build", hub=True).read() == (None, None) and HubLocation(role="build", hub=True).backend \
        == "hub"
    assert HubLocation(store=Path("s")).kind == "store" and HubLocation().kind == "hub"


def test_every_command_refuses_two_places_in_one_line(tmp_path: Path) -> None:
    cli = CliRunner()
    for args in (["stats", "--dataset", "o/n", "--revision", "iter1"], ["hub", "resolve", "-d", "o/n", "-r", "iter1"],
                 ["build", "--config", "demo", "--out", str(tmp_path / "run")],
                 ["publish", str(tmp_path), "--dataset", "o/n"], ["doctor"]):
        res = cli.invoke(app, [*args, "--store", str(tmp_path / "store"), "--hub"])
        assert res.exit_code == 2 and "--store and --hub exclude each other" in res.output, (args, res.output)
    assert not (tmp_path / "run").exists() and not (tmp_path / "store").exists()
