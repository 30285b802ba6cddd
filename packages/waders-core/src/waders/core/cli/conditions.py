"""``waders conditions``: deploy, look up, list and trace calibration constants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..conditions import ENV, ConditionsDB, Constant, Validity, constants_from_summary
from ..errors import ConfigError, InputFileError

__all__ = ["conditions"]

_DB_OPTION = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"Conditions database (default: ${ENV}, else ./conditions.sqlite).",
)


def _row(c: dict[str, Any]) -> str:
    value = f"{c['value']:g}" if c["value"] is not None else f"array {tuple(c['array']['shape'])}"
    error = f" +- {c['error']:g}" if c.get("error") is not None else ""
    unit = f" {c['unit']}" if c.get("unit") else ""
    validity = Validity(**c["validity"]).describe()
    ident = f"#{c['id']} " if c.get("id") is not None else ""
    return f"{ident}{c['detector']}/{c['amplifier']} {c['ctype']} = {value}{error}{unit}  [{validity}]"


def _load_array(path: Path) -> Any:
    import numpy as np

    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return npz[npz.files[0]]
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    try:
        from astropy.io import fits
    except ImportError:
        raise InputFileError(f"{path}: reading FITS arrays needs astropy (pip install waders-io)") from None
    try:
        return np.asarray(fits.getdata(path))
    except (OSError, ValueError) as err:
        raise InputFileError(f"{path}: not a readable FITS, NPY or NPZ array ({err})") from None


@click.group("conditions", context_settings={"help_option_names": ["-h", "--help"]})
def conditions() -> None:
    """Calibration constants with validity ranges (gain, noise, dark current, maps, masks)."""


@conditions.command("deploy")
@_DB_OPTION
@click.option("--type", "ctype", help="Constant type: gain, noise, dark_current, pedestal_map, bad_pixel_mask, ...")
@click.option("--detector", required=True, help="Detector (CCD id).")
@click.option("--amplifier", default="*", show_default=True, help="Amplifier ('*' = all).")
@click.option("--value", type=float, help="Scalar value.")
@click.option("--error", type=float, help="Its uncertainty.")
@click.option("--unit", help="Unit of the value (e.g. ADU/e).")
@click.option("--file", "array_file", type=click.Path(path_type=Path), help="Array constant: FITS, NPY or NPZ.")
@click.option(
    "--from-summary", type=click.Path(path_type=Path), help="Propose gain, noise, dark current from a summary."
)
@click.option("--runs", help="Valid runs: A:B (both included), A: (open), :B or A.")
@click.option("--from-time", help="Valid from this UTC time (ISO).")
@click.option("--to-time", help="Valid until this UTC time (ISO, excluded).")
@click.option("--comment", help="Why this constant exists.")
@click.option("--author", help="Who deploys it (default: $USER).")
@click.option("--dry-run", is_flag=True, help="Show what would be deployed and overridden; write nothing.")
def deploy(
    db_path: Path | None,
    ctype: str | None,
    detector: str,
    amplifier: str,
    value: float | None,
    error: float | None,
    unit: str | None,
    array_file: Path | None,
    from_summary: Path | None,
    runs: str | None,
    from_time: str | None,
    to_time: str | None,
    comment: str | None,
    author: str | None,
    dry_run: bool,
) -> None:
    """Add constants; older entries stay in the history (newest wins where validities overlap)."""
    validity = Validity.parse_runs(runs, time_min=from_time, time_max=to_time)
    if from_summary is not None:
        constants = constants_from_summary(from_summary, detector, validity)
    else:
        if ctype is None or (value is None and array_file is None):
            raise ConfigError("deploy needs --type and --value or --file (or --from-summary)")
        array = _load_array(array_file) if array_file is not None else None
        constants = [
            Constant(detector, amplifier, ctype, value, error, unit, array, validity, author,
                     str(array_file) if array_file else "command line", comment=comment)
        ]  # fmt: skip
    for c in constants:
        c.author = c.author or author
    plan = ConditionsDB(db_path).deploy(constants, dry_run=dry_run)
    verb = "would deploy" if dry_run else "deployed"
    for item in plan:
        overrides = item["overrides"]
        note = f"; overrides #{', #'.join(map(str, overrides))} where they overlap" if overrides else ""
        click.echo(f"{verb} {_row(item['constant'])}{note}")


@conditions.command("get")
@_DB_OPTION
@click.option("--type", "ctype", required=True)
@click.option("--detector", required=True)
@click.option("--amplifier", default="*", show_default=True)
@click.option("--run", type=int, help="Run number of the data.")
@click.option("--time", "when", help="UTC time of the data (ISO).")
@click.option("--json", "as_json", is_flag=True)
def get(
    db_path: Path | None, ctype: str, detector: str, amplifier: str, run: int | None, when: str | None, as_json: bool
) -> None:
    """Show the constant valid for a run and/or time."""
    constant = ConditionsDB(db_path).get(ctype, detector, amplifier, run=run, when=when)
    click.echo(json.dumps(constant.to_dict(), default=str) if as_json else _row(constant.to_dict()))


@conditions.command("list")
@_DB_OPTION
@click.option("--type", "ctype")
@click.option("--detector")
def list_(db_path: Path | None, ctype: str | None, detector: str | None) -> None:
    """List every entry."""
    for constant in ConditionsDB(db_path).list(ctype, detector):
        click.echo(_row(constant.to_dict()))


@conditions.command("history")
@_DB_OPTION
@click.option("--type", "ctype", required=True)
@click.option("--detector", required=True)
@click.option("--amplifier")
def history(db_path: Path | None, ctype: str, detector: str, amplifier: str | None) -> None:
    """Every deployment of a constant, oldest first, with who deployed it and why."""
    for constant in ConditionsDB(db_path).history(ctype, detector, amplifier):
        c = constant.to_dict()
        click.echo(
            f"{_row(c)}  deployed {c['created']} by {c['author'] or '?'} from {c['source'] or '?'}"
            + (f": {c['comment']}" if c.get("comment") else "")
        )
