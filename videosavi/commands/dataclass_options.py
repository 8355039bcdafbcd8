"""Typer options generated from a dataclass's fields, so an option's flag, type, default and help are
written once, on the field (`field(metadata={"help": ...})`, TRL's style).

`with_dataclass_options(TrainingOptions, command="loop")` adds one option per field to a command and
hands the command a `GivenOptions`: the values, and which of them the user typed. A command applies
those over its base (a config's `training:` section, or the defaults), so a flag left out never
overrides what the config says.

Field metadata read here: `help` (required; a dict gives one text per command), `flag` (when not
`--field-name`), `short` (its short flag, from the vocabulary: `-o`), `metavar`, `min`/`max` (bounds of a
number), `cli_type` (the type the command line reads, for a field whose Python type is wider, such as a
path given as text), `parse` (a function from the text given to the field's value, for types the command
line cannot spell, such as `resize: tuple[int, int]` given as `448x448`), and `commands` (the commands
that have the option, when not all of them).

Several dataclasses can give one command its options (`savi loop`: training, build and location
options): stack the decorators, each with its own `param`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Optional, TypeVar, Union

import typer

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
_CTX = "_dataclass_options_ctx"  # one Context parameter however many decorators are stacked (typer fills one)


@dataclass(frozen=True)
class GivenOptions(Generic[T]):
    """Every field's value from the command line, and the names of those the user gave."""

    values: dict[str, Any]
    explicit: frozenset[str]

    def over(self, base: T) -> T:
        """`base` with the options the user gave put over it."""
        given = {k: v for k, v in self.values.items() if k in self.explicit}
        return dataclasses.replace(base, **given)  # type: ignore[type-var]  # T is always a dataclass instance here


def option_flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def command_fields(cls: type, command: str) -> list[dataclasses.Field]:
    """The fields `command` has as options (all, except those whose `commands` leave it out)."""
    return [f for f in dataclasses.fields(cls) if command in f.metadata.get("commands", (command,))]


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def field_help(f: dataclasses.Field, command: str) -> str:
    """The field's help text in `command`."""
    text = f.metadata["help"]
    return str(text[command] if isinstance(text, dict) else text)


def _parameter(f: dataclasses.Field, tp: Any, panel: str, command: str) -> inspect.Parameter:
    flag = option_flag(f)
    help_text = field_help(f, command)
    extra: dict[str, Any] = {"rich_help_panel": panel}
    for key in ("metavar", "min", "max"):
        if key in f.metadata:
            extra[key] = f.metadata[key]
    tp = f.metadata.get("cli_type", tp)
    default: Any
    if "parse" in f.metadata:
        tp = Optional[str]
        default = None if f.default is None else str(f.default)
    else:
        default = f.default
    decls = [flag, *([f.metadata["short"]] if "short" in f.metadata else [])]
    if (tp is bool and f.default is True) or (_is_optional(tp) and bool in typing.get_args(tp)):
        decls = [f"{flag}/--no-{flag[2:]}"]
    option = typer.Option(*decls, help=help_text, **extra)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[tp, option])


def with_dataclass_options(cls: type, *, command: str, param: str, panel: str = "Options",
                           make: Callable[[GivenOptions[Any]], Any] | None = None) -> Callable[[F], F]:
    """Add an option per field of `cls` (those `command` has) to a Typer command function; the function
    takes them as one argument, `param`: a `GivenOptions`, or what `make` makes of it."""
    fields = command_fields(cls, command)
    hints = typing.get_type_hints(cls)

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        own_hints = typing.get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=own_hints.get(p.name, p.annotation))
               for p in sig.parameters.values() if p.name != param]
        added = [_parameter(f, hints[f.name], panel, command) for f in fields]
        stacked = any(p.name == _CTX for p in own)  # a decorator below already takes the Context: share it
        own = [p for p in own if p.name != _CTX]
        ctx = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        params = [*own, *added, ctx]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            click_ctx = kwargs[_CTX] if stacked else kwargs.pop(_CTX)
            values: dict[str, Any] = {}
            for f in fields:
                value = kwargs.pop(f.name)
                if "parse" in f.metadata and value is not None:
                    try:
                        value = f.metadata["parse"](value)
                    except ValueError as exc:
                        raise typer.BadParameter(str(exc), param_hint=option_flag(f)) from None
                values[f.name] = value
            explicit = frozenset(n for n in values if _given(click_ctx, n))
            given: GivenOptions[Any] = GivenOptions(values, explicit)
            return fn(*args, **kwargs, **{param: make(given) if make is not None else given})

        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]  # read by typer
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]  # typer calls it with the generated options

    return decorate


def _given(ctx: Any, name: str) -> bool:
    """Whether the user typed the option (on the command line, or through an environment variable)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def dataclass_flags(cls: type, command: str) -> list[str]:
    """The long flags `with_dataclass_options` gives `command` (what its --help must list)."""
    return [option_flag(f) for f in command_fields(cls, command)]


__all__ = ["GivenOptions", "command_fields", "dataclass_flags", "field_help", "option_flag",
           "with_dataclass_options"]
