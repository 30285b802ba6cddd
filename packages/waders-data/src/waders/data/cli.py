"""``waders example-data DIR``: write the example inputs the documentation uses."""

from __future__ import annotations

from pathlib import Path

import click

from waders.core.errors import InputFileError

from .examples import write_examples

__all__ = ["example_data"]


@click.command("example-data", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory", type=click.Path(path_type=Path), default=Path("."), required=False)
@click.option("--force", is_flag=True, help="Replace files of the same name that differ from the examples.")
def example_data(directory: Path, force: bool) -> None:
    """Write the example inputs into DIRECTORY (default: the current folder).

    Real images (DAMIC-M fpack, SENSEI LTA), pysimdamicm's configuration files and a small
    Geant4 file, under the names the README and the guide use: every documented command
    runs as printed in that folder.  A file that exists and differs is never replaced
    without --force.

    \b
    Example:
      waders example-data . && waders info avg_Image_5_Low_Temp_109_20250807_170213_15.fz
    """  # noqa: D301 (click needs a real \\b)
    try:
        plan = write_examples(directory, force=force)
    except FileExistsError as err:
        raise InputFileError(str(err), hint="pass --force to replace it, or choose another folder") from None
    except OSError as err:
        raise InputFileError(f"cannot write the examples into {directory}: {err.strerror or err}") from None
    width = max(len(example.name) for example, _ in plan)
    for example, action in plan:
        click.echo(f"{action:<9} {example.name:<{width}}  {example.what}")
    click.echo(f"{len(plan)} example files in {directory}")
