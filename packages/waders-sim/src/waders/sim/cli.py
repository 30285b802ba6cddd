"""The ``waders sim`` command: detector-response simulation of Geant4 events."""

from __future__ import annotations

from pathlib import Path

import click

from waders.core.cli import config_options, describe_process, list_processes_text, load_cli_config

__all__ = ["sim"]


@click.command("sim", context_settings={"help_option_names": ["-h", "--help"]})
@config_options("simulation")
@click.option(
    "--list-processes",
    "list_processes",
    is_flag=False,
    flag_value="*",
    default=None,
    metavar="[NAME]",
    help="List the installed simulation processes, or show the parameters of NAME, and exit.",
)
@click.option("--check", is_flag=True, help="Validate the configuration, print the process chain and exit.")
def sim(config_path: Path | None, overrides: tuple[str, ...], list_processes: str | None, check: bool) -> None:
    """Simulate the detector response to Geant4 events (the successor of psimulCCDimg)."""
    if list_processes is not None:
        text = list_processes_text("sim") if list_processes == "*" else describe_process(list_processes)
        click.echo(text)
        return
    if not check:
        click.echo(click.get_current_context().get_help())
        return
    config = load_cli_config("simulation", config_path, overrides, default={"detector_response": {}})
    click.echo("configuration is valid; processes: " + (" -> ".join(config.names) or "(none active)"))
