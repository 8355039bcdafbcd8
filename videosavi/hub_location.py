"""Where revisions are read from and published to, parsed once: `HubLocation` (a local git store, a Hub
API endpoint, or the Hugging Face Hub itself).

Every command that reads or publishes a revision takes its `--store`, `--endpoint` and `--hub` flags from
this class's fields (commands/dataclass_options.py generates them, with the help text of the command's
role), and gets one `HubLocation` whose rules are checked here: which flags exclude each other, and where
a command reads when none is given. A new kind of location is a field here and a line in `read`.

Roles (`role`): `read` (a revision is read: the three exclude each other; none: `HF_ENDPOINT`, else the
Hub), `read_store` (the same, but none reads the local store: `savi eval make-set --protocol paper`),
`build` (`savi build`, `savi loop`: publish to the store or the Hub and read from there, or read an
`--endpoint`; none: the local store), `publish` (`savi publish`: the store or the Hub), `check`
(`savi doctor`: one place to check), `serve` (`savi hub serve`: a store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from videosavi.errors import ConfigError

HUB_ENDPOINT = "https://huggingface.co"

Role = Literal["read", "read_store", "build", "publish", "check", "serve"]
# where each role reads when no flag says: the Hub's API (HF_ENDPOINT, else the Hub), or the local store
_READ_DEFAULT: dict[str, str] = {"read": "hub", "read_store": "store", "build": "store", "publish": "store",
                                 "check": "store", "serve": "store"}


def _flag(default: Any, help: str | dict[str, str], roles: tuple[str, ...], **extra: Any) -> Any:
    """A location flag: its help (one text, or one per role) and the roles whose commands have it."""
    return field(default=default, metadata={"help": help, "commands": roles, **extra})


_ALL: tuple[str, ...] = ("read", "read_store", "build", "publish", "check", "serve")
_READ_HUB = f"Read from the Hugging Face Hub itself ({HUB_ENDPOINT}), whatever HF_ENDPOINT says."
_PUBLISH_HUB = ("Publish to (and read from) the Hugging Face Hub instead of the local store (token: HF_TOKEN or hf "
                "login).")


@dataclass(frozen=True)
class HubLocation:
    """One command's location flags, checked (`ConfigError` names the flags that exclude each other)."""

    store: Path | None = _flag(
        None, "Local git store of datasets (default $VIDEOSAVI_STORE or the user cache).", _ALL)
    endpoint: str | None = _flag(
        None, "Hub API endpoint to read from, e.g. a `savi hub serve` URL (default HF_ENDPOINT or the Hub).",
        ("read", "read_store", "build", "check"), metavar="URL")
    hub: bool = _flag(False, {
        "read": _READ_HUB, "read_store": _READ_HUB, "build": _PUBLISH_HUB, "publish": _PUBLISH_HUB,
        "check": "Check the Hugging Face Hub login (whoami) instead of a store.",
    }, ("read", "read_store", "build", "publish", "check"))
    role: Role = field(default="read", metadata={"help": "what the command does there", "commands": ()})

    def __post_init__(self) -> None:
        given = self.given()
        if self.role in ("build", "publish"):
            if self.hub and len(given) > 1:
                raise ConfigError(f"{' and '.join(given)} exclude each other: --hub publishes to and reads from the "
                                  "Hub")
        elif len(given) > 1:
            what = "check one place to publish to" if self.role == "check" else "read from one place"
            raise ConfigError(f"{' and '.join(given)} exclude each other: {what}")

    def given(self) -> list[str]:
        """The flags given, as the user spelled them."""
        return [flag for flag, on in (("--store", self.store is not None), ("--endpoint", bool(self.endpoint)),
                                      ("--hub", self.hub)) if on]

    @property
    def kind(self) -> Literal["store", "endpoint", "hub"]:
        """Where reads go: the Hub, an endpoint, or a store (the local one by default, where the role reads there)."""
        if self.hub:
            return "hub"
        if self.endpoint:
            return "endpoint"
        return "store" if self.store is not None or _READ_DEFAULT[self.role] == "store" else "hub"

    def read(self) -> tuple[Path | None, str | None]:
        """(store, endpoint) to read a revision from, as the loaders take them: a store path read with git, or
        a Hub API (None: HF_ENDPOINT, else the Hub)."""
        if self.hub:  # reading: the Hub itself; publishing and reading back: where HfApi publishes (HF_ENDPOINT)
            return None, HUB_ENDPOINT if self.role in ("read", "read_store", "check") else None
        if self.endpoint:
            return None, self.endpoint
        if self.store is not None:
            return self.store, None
        if _READ_DEFAULT[self.role] == "store":
            from videosavi.paths import default_store

            return default_store(), None
        return None, None

    @property
    def backend(self) -> Literal["store", "hub"]:
        """Where a revision is published: the Hub with `--hub`, else the store (`store`, or the default)."""
        return "hub" if self.hub else "store"


def location_help(name: str, role: Role) -> str:
    """One flag's help text in `role` (for a command that shows a location flag on its own)."""
    from dataclasses import fields

    text = next(f.metadata["help"] for f in fields(HubLocation) if f.name == name)
    return str(text[role] if isinstance(text, dict) else text)
