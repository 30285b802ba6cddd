"""The ``waders dqm publish`` and ``waders dqm serve`` commands."""

from __future__ import annotations

from pathlib import Path

import click

from .web import make_server, publish_runs

__all__ = ["publish", "serve"]


@click.command("publish", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Web directory to publish into (created if needed).",
)
@click.option(
    "--from",
    "source",
    default=".",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="DQM output directory holding runNNN/ (or one run directory).",
)
def publish(target: Path, source: Path) -> None:
    """Copy the run reports and the plots they show into a web directory, with an index of runs."""
    results = publish_runs(source, target)
    for result in results:
        detail = f" ({result.files} files)" if result.files else ""
        hint = ": build it first" if result.action == "no report" else ""
        click.echo(f"run {result.run:03d}: {result.action}{detail}{hint}")
    published = sum(1 for r in results if r.action == "published")
    click.echo(f"published {published} of {len(results)} run(s) into {target}; index: {target / 'index.html'}")


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all interfaces).")
def serve(directory: Path, port: int, host: str) -> None:
    """Serve a published DQM web directory over HTTP (Ctrl-C stops)."""
    server = make_server(directory, host, port)
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    click.echo(f"serving {directory} at http://{shown}:{bound_port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()
