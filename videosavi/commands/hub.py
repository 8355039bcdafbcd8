"""`savi hub serve` (the local store over the Hub's read-only API, answered from git, on
loopback) and `savi hub resolve`."""

from __future__ import annotations

from typing import Annotated

import typer

from videosavi.commands._common import friendly_errors
from videosavi.commands.options import (
    Dataset,
    Revision,
    VocabCommand,
    location_options,
)
from videosavi.hub_location import HubLocation

hub_app = typer.Typer(name="hub", help="Serve the local dataset store; resolve revisions.", no_args_is_help=True)


@hub_app.command("serve", cls=VocabCommand)
@friendly_errors
@location_options("serve")
def serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 8090,
    *,
    location: HubLocation,
) -> None:
    """Serve the store read-only on 127.0.0.1 over the Hub's API until Ctrl-C."""
    import signal

    from rich.console import Console

    from videosavi.hub.serve import HubServer

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Stop the server on Ctrl-C and on `kill` alike, even where the shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console(stderr=True)
    server = HubServer(location.store, port=port)
    with console.status(f"starting the hub server on 127.0.0.1:{port}"):
        server.start()
    try:
        console.print(f"serving {server.store} read-only at {server.endpoint} (Ctrl-C to stop); in another shell:")
        typer.echo(f"export HF_ENDPOINT={server.endpoint}")
        code = server.wait()
        if code:
            raise typer.Exit(code)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@hub_app.command("resolve", cls=VocabCommand)
@friendly_errors
@location_options("read")
def resolve(
    dataset: Dataset,
    revision: Revision,
    *,
    location: HubLocation,
) -> None:
    """Print the commit sha a revision names; exit 2 if it does not exist (--store: read with git, no server)."""
    from videosavi.hub.load import resolve_revision

    read_store, read_endpoint = location.read()
    typer.echo(resolve_revision(dataset, revision, store=read_store, endpoint=read_endpoint))


def register(app: typer.Typer) -> None:
    """Add the `savi hub` group to the app."""
    app.add_typer(hub_app, name="hub")
