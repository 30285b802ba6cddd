"""The ``waders dqm`` command group: data-quality monitoring of runs."""

from __future__ import annotations

from pathlib import Path

import click

from waders.core.cli import describe_process, list_processes_text, load_cli_config
from waders.core.plugins import monitor_registry

__all__ = ["dqm"]


@click.group("dqm", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--list-monitors",
    "list_monitors",
    is_flag=False,
    flag_value="*",
    default=None,
    metavar="[NAME]",
    help="List the installed monitor elements, or show the parameters of NAME, and exit.",
)
@click.pass_context
def dqm(ctx: click.Context, list_monitors: str | None) -> None:
    """Monitor the data quality of skipper-CCD runs (the successor of dqmSKImg)."""
    if list_monitors is not None:
        registry = monitor_registry()
        if list_monitors == "*":
            text = list_processes_text(None, registry, plural="monitor elements", option="--list-monitors")
        else:
            text = describe_process(list_monitors, registry)
        click.echo(text)
        ctx.exit(0)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@dqm.command("check")
@click.argument("config_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="MONITOR.PARAM=VALUE", help="Override a parameter.")
def check(config_path: Path, overrides: tuple[str, ...]) -> None:
    """Validate a monitor-element configuration and list the active monitor elements."""
    config = load_cli_config("dqm", config_path, overrides)
    click.echo("configuration is valid; monitor elements: " + (", ".join(config.names) or "(none active)"))
