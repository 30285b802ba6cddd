"""The ``waders ana`` command: analysis of skipper-CCD images."""

from __future__ import annotations

from pathlib import Path

import click

from waders.core.cli import config_options, describe_process, list_processes_text, load_cli_config

__all__ = ["ana"]


@click.command("ana", context_settings={"help_option_names": ["-h", "--help"]})
@config_options("analysis", sequence=True)
@click.option(
    "--list-processes",
    "list_processes",
    is_flag=False,
    flag_value="*",
    default=None,
    metavar="[NAME]",
    help="List the installed analysis processes, or show the parameters of NAME, and exit.",
)
@click.option("--check", is_flag=True, help="Validate the configuration, print the sequence and exit.")
def ana(
    config_path: Path | None,
    sequence: str | None,
    overrides: tuple[str, ...],
    list_processes: str | None,
    check: bool,
) -> None:
    """Analyse skipper-CCD images (the successor of pysimdamicm's panaSKImg)."""
    if list_processes is not None:
        text = list_processes_text("ana") if list_processes == "*" else describe_process(list_processes)
        click.echo(text)
        return
    if not check:
        click.echo(click.get_current_context().get_help())
        return
    config = load_cli_config("analysis", config_path, overrides, sequence, default={"process": {}})
    click.echo("configuration is valid; sequence: " + (" -> ".join(config.names) or "(empty)"))
