"""The ``waders info`` command: what a file is, before a long run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from waders.core.config import load_config
from waders.core.errors import WadersError, failure_message

__all__ = ["info"]


@click.command("info", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (keys: format, amplifiers or trees, ...).")
@click.option(
    "-j",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Analysis configuration whose 'input' section says how to read the images.",
)
def info(paths: tuple[Path, ...], as_json: bool, config_path: Path | None) -> None:
    """Describe FITS images (amplifiers, geometry, skips, exposure) and ROOT files (trees)."""
    from .info import describe, format_description

    input_config = None
    if config_path is not None:
        input_config = load_config(config_path, kind="analysis", sequence=[]).input
    results, failures, bugs = [], [], 0
    for path in paths:  # a bad file is reported and the others are still described
        try:
            results.append(describe(path, input_config))
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as err:
            bug = not isinstance(err, WadersError | OSError)
            if bug and (click.get_current_context().find_root().obj or {}).get("debug"):
                raise  # --debug: the traceback of a bug
            bugs += bug
            failures.append(failure_message(err, path))
            click.echo(f"error: {failures[-1]}", err=True)
    if as_json:
        click.echo(json.dumps(results[0] if len(paths) == 1 and results else results, indent=2, default=str))
    else:
        for result in results:
            click.echo(format_description(result))
    if failures:
        raise click.exceptions.Exit(1 if bugs else 2)
