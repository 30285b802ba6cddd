"""The ``waders dm`` command: dark-matter recoil events in simulated images (successor of dmSKImg)."""

from __future__ import annotations

from pathlib import Path

import click

from waders.core.cli import config_options, load_cli_config

__all__ = ["default_dm_config", "dm"]

#: Images of the events: the processes that write them.
_IMAGE_PROCESSES = ("CreateFitsImage", "PasteClusterProcess")


def default_dm_config() -> dict:
    """Configuration used without --json: gauss pairs + diffusion, pixels, clusters and images."""
    return {
        "detector_response": {
            "Diffusion": {"active": 1, "model": "gauss"},
            "PixelizeSignal": {"active": 1},
            "CreateFitsImage": {"active": 1, "n_events": 100},
        },
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
    }


@click.command("dm", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("rates", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-n", "--nevts", type=int, required=True, help="Events to generate (with --each: per energy).")
@click.option("--each", is_flag=True, help="Every energy of the table NEVTS times (pysimdamicm's dmSKImg2).")
@config_options("simulation")
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Output directory.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the events and of the simulation.")
@click.option("--box", nargs=3, type=float, metavar="X Y Z", help="Volume in mm (default: the detector's).")
@click.option(
    "--blank",
    metavar="PATTERN",
    help="Paste the events into real blank images (PasteClusterProcess.blank_dir) instead of simulated ones.",
)
@click.option("--events-per-image", type=int, help="Events per image (CreateFitsImage.n_events / clusters_per_blank).")
@click.option("--no-images", is_flag=True, help="Only the clusters ROOT file, no images.")
def dm(
    rates: Path,
    nevts: int,
    each: bool,
    config_path: Path | None,
    overrides: tuple[str, ...],
    output_dir: Path,
    seed: int,
    box: tuple[float, float, float] | None,
    blank: str | None,
    events_per_image: int | None,
    no_images: bool,
) -> None:
    r"""Dark-matter recoil events from a differential rate, simulated into images.

    RATES is a CSV with columns 'energies' (eV) and 'rates' (events/eV/kg/year).  Energies
    are drawn from the rate, positions uniform in the detector; the events go through the
    simulation chain (pairs, diffusion, pixels, clusters) and into images with truth.

    \b
    Examples:
      waders dm rates.csv --nevts 10000 -o dm/
      waders dm rates.csv --nevts 500 --blank 'blanks/*.fits' --set PasteClusterProcess.extension=1
      waders dm rates.csv --nevts 200 --json psimulCCDimg_config_file.json --set CF.ccd_shape=[500,500]
    """
    from .darkmatter import read_rate_spectrum, simulate_dm
    from .driver import SimOptions

    spectrum = read_rate_spectrum(rates)
    extra = list(overrides)
    image_process = "PasteClusterProcess" if blank else "CreateFitsImage"
    if blank:
        extra += ["PasteClusterProcess.active=1", f"PasteClusterProcess.blank_dir={blank}", "CreateFitsImage.active=0"]
    if no_images:
        extra += [f"{name}.active=0" for name in _IMAGE_PROCESSES]
    elif events_per_image is not None:
        key = "clusters_per_blank" if blank else "n_events"
        extra.append(f"{image_process}.{key}={events_per_image}")
    config = load_cli_config("simulation", config_path, extra, default=default_dm_config())
    if not no_images and not any(name in config.names for name in _IMAGE_PROCESSES):
        # a configuration without images (e.g. pysimdamicm's): add simulated ones
        config = load_cli_config("simulation", config_path, ["CreateFitsImage.active=1", *extra])
    options = SimOptions(output_dir=output_dir, seed=seed, prefix="waders_dm")
    run = simulate_dm(spectrum, nevts, config, options, stem=rates.stem, box=box, repeat_each=each)
    result = run.result
    click.echo(f"{run.events['event'].size} DM events -> {run.table}")
    click.echo(f"simulated: {result.events_kept} kept, {result.clusters} clusters -> {result.output}")
    for reason, n in sorted(result.counters.items()):
        click.echo(f"  {reason}: {n}")
    for process, written in result.extra_outputs.items():
        click.echo(f"  {process}: {written}")
