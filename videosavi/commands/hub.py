"""`savi hub serve` (the local store over the Hub's API: olah behind a Hub-shaped front, read-only,
loopback) and `savi hub resolve`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from videosavi.commands._common import friendly_errors

hub_app = typer.Typer(name="hub", help="Serve the local dataset store; resolve revisions.", no_args_is_help=True)


@hub_app.command("serve")
@friendly_errors
def serve(
    store: Optional[Path] = typer.Option(None, "--store",
                                         help="Store root; must exist (default $VIDEOSAVI_STORE or the cache)."),
    port: int = typer.Option(8090, "--port", min=1, max=65535, help="Port on 127.0.0.1."),
) -> None:
    """Serve the store read-only on 127.0.0.1 over the Hub's API until Ctrl-C."""
    import signal

    from rich.console import Console

    from videosavi.hub.serve import HubServer

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Stop the server (and olah) on Ctrl-C and on `kill` alike, even where the shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console(stderr=True)
    server = HubServer(store, port=port)
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


@hub_app.command("resolve")
@friendly_errors
def resolve(
    repo: str = typer.Argument(..., help="Dataset repository id, org/name."),
    revision: str = typer.Argument(..., help="Tag (iterN), branch or full commit sha."),
    store: Optional[Path] = typer.Option(None, "--store", help="Read this store with git (no server needed)."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="Hub API URL (default HF_ENDPOINT or the Hub)."),
) -> None:
    """Print the commit sha a revision names; exit 2 if it does not exist."""
    from videosavi.hub.load import resolve_revision

    typer.echo(resolve_revision(repo, revision, store=store, endpoint=endpoint))


def register(app: typer.Typer) -> None:
    """Add the `savi hub` group to the app."""
    app.add_typer(hub_app, name="hub")
