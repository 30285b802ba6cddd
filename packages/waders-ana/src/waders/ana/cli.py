"""The ``waders ana`` command: analysis of skipper-CCD images (the successor of panaSKImg)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import click

from waders.core.cli import config_options, executor_options, list_processes_option, load_cli_config, show_processes
from waders.core.errors import ConfigError, InputFileError, WadersError

__all__ = ["ana"]

#: panaSKImg shortcuts: option -> configuration key.
_INPUT_SHORTCUTS = {
    "skip_start": "input.image.id_skip_start",
    "skip_end": "input.image.id_skip_end",
    "row_start": "input.image.id_row_start",
    "row_end": "input.image.id_row_end",
    "col_start": "input.image.id_col_start",
    "col_end": "input.image.id_col_end",
}


def default_config() -> dict:
    """The analysis configuration used without --json (shipped with waders-ana)."""
    return json.loads(files("waders.ana").joinpath("data/default_analysis.json").read_text())


def _shortcut_overrides(values: dict, extensions: tuple[str, ...], invert: bool) -> list[str]:
    overrides = [f"{key}={values[name]}" for name, key in _INPUT_SHORTCUTS.items() if values.get(name) is not None]
    if extensions:
        parsed = [int(e) if e.isdigit() else e for e in extensions]
        overrides.append(f"input.image.extensions={json.dumps(parsed if len(parsed) > 1 else parsed[0])}")
    if invert:
        overrides.append("input.image.correct_polarity=true")
    if values.get("cal") is not None:
        overrides += [f"FitDarkCurrentProcess.calibration={values['cal']}"]
    if values.get("adu2e") is not None:
        overrides.append(f"CalibrationProcess.gain={values['adu2e']}")
    return overrides


@click.command("ana", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("inputs", nargs=-1)
@config_options("analysis", sequence=True)
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Output directory (created if needed).",
)
@click.option(
    "-e",
    "--ext",
    "extensions",
    multiple=True,
    metavar="HDU",
    help="HDU index or name to read (repeatable; default: every image HDU).",
)
@click.option(
    "--skip",
    "skip",
    multiple=True,
    metavar="TEXT",
    help="Leave out inputs whose name contains TEXT (repeatable; a .txt file lists several).",
)
@click.option("--save-img", is_flag=True, help="Write <stem>_waders.fits with the processed images.")
@click.option("--bz2", is_flag=True, help="Write the processed images bzip2-compressed (<stem>_waders.fits.bz2).")
@click.option("--save-plots", is_flag=True, help="Write PNG plots of every process under OUTPUT/plots/.")
@click.option("--plot-format", type=click.Choice(["png", "pdf"]), default="png", show_default=True)
@click.option("--skip-start", type=int, help="First skip used (input.image.id_skip_start).")
@click.option("--skip-end", type=int, help="End of the skip range, exclusive; negative = all (id_skip_end).")
@click.option("--row-start", type=int, help="First row used.")
@click.option("--row-end", type=int, help="End of the row range (exclusive; negative = all).")
@click.option("--col-start", type=int, help="First column used.")
@click.option("--col-end", type=int, help="End of the column range (exclusive; negative = all).")
@click.option(
    "--cal", type=float, help="Gain guess of the dark-current fit (ADU/e-), instead of finding it from the data."
)
@click.option("--adu2e", type=float, help="Gain of CalibrationProcess for every amplifier (ADU/e-).")
@click.option("--invert", is_flag=True, help="Invert the polarity of the images.")
@click.option("--run", type=int, help="Run number (default: RUNID header keyword, else 0).")
@click.option("--image", "image_id", type=int, help="Image number (default: last number in the file name).")
@click.option("--ccd", type=int, help="CCD number (default: _ccdN in the file name, else 1).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random streams.")
@click.option(
    "--conditions",
    "conditions_db",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Conditions database for parameters set to 'conditions' (default: $WADERS_CONDITIONS).",
)
@click.option(
    "--layout",
    type=click.Choice(["waders", "pysimdamicm"]),
    default="waders",
    show_default=True,
    help="Output files: waders' names and branches, or pysimdamicm's names (panaSKImg_clustersRec_*_ext*.root), "
    "vector<vector<T>> pixel branches (needs ROOT: pip install root) and the calibrated image in the primary HDU.",
)
@click.option(
    "--oroot",
    metavar="NAME.root",
    help="One clusters ROOT file <output>/NAME.root for all inputs, one entry per image (pysimdamicm's --oroot).",
)
@click.option(
    "--mct",
    is_flag=True,
    help="Match the clusters to the Monte-Carlo truth of simulated/pasted images (MonteCarloTruth, MCT_ID HDUs): "
    "*_MCT branches (pysimdamicm's --MCT).",
)
@click.option(
    "--mask",
    "mask_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="FITS mask (first 2-D image, nonzero = masked) of the images' shape: dist_mask_min/max branches, the "
    "distance of every cluster to the masked pixels (pysimdamicm's --mask).",
)
@list_processes_option("analysis")
@click.option(
    "--check",
    is_flag=True,
    help="Validate the configuration (against INPUTS too, when given: amplifier keys, geometry), print the sequence.",
)
@executor_options
def ana(
    inputs: tuple[str, ...],
    config_path: Path | None,
    sequence: str | None,
    overrides: tuple[str, ...],
    output_dir: Path,
    extensions: tuple[str, ...],
    skip: tuple[str, ...],
    save_img: bool,
    bz2: bool,
    save_plots: bool,
    plot_format: str,
    list_processes: str | None,
    check: bool,
    run: int | None,
    image_id: int | None,
    ccd: int | None,
    seed: int,
    conditions_db: Path | None,
    layout: str,
    mct: bool,
    mask_path: Path | None,
    oroot: str | None,
    invert: bool,
    executor: str,
    workers: int,
    scheduler: str | None,
    files_per_task: int | None,
    **shortcuts: float | int | None,
) -> None:
    """Analyse skipper-CCD images: INPUTS are FITS files or quoted glob patterns.

    \b
    Examples (in a folder where 'waders example-data .' was run):
      waders ana -o out/ image_lta_2_ave.fits
      waders ana --json img_5.json --save-img --save-plots "avg_Image_*.fz"
      waders ana -s CompressSkipperProcess,PedestalSubtractionProcess \\
          --set PedestalSubtractionProcess.method=median -o out/ image_lta_2_ave.fits
    """  # noqa: D301 (click needs a real \\b)
    from .runner import AnalysisOptions, analyse_files, check_config_against, expand_inputs, require_inputs

    if list_processes is not None:
        show_processes(list_processes, "ana")
        return
    all_overrides = _shortcut_overrides(shortcuts, extensions, invert) + list(overrides)
    default = default_config() if config_path is None else None
    config = load_cli_config("analysis", config_path, all_overrides, sequence, default=default)
    if check:
        checked = ""
        if inputs:  # the configuration must also fit every given file
            paths, unmatched = expand_inputs(inputs, skip)
            require_inputs(paths, unmatched)
            if unmatched:
                raise InputFileError(f"no file matches {', '.join(unmatched)}")
            for path in paths:
                check_config_against(config, path)
            checked = f" for {len(paths)} file(s)"
        click.echo(f"configuration is valid{checked}; sequence: " + (" -> ".join(config.names) or "(empty)"))
        return
    if not inputs:
        click.echo(click.get_current_context().get_help())
        return
    paths, unmatched = expand_inputs(inputs, skip)
    require_inputs(paths, unmatched)
    if mask_path is not None:  # a bad mask stops the run before any file is analysed
        from .clusters.distmask import read_cluster_mask

        read_cluster_mask(mask_path)
    if layout == "pysimdamicm":
        from waders.io.root.pysimdamicm import require_pyroot

        require_pyroot()  # fail at once, before any file is analysed
    try:  # a configuration that does not fit the files stops the run before any processing
        check_config_against(config, paths[0])
    except ConfigError:
        raise
    except WadersError:
        pass  # an unreadable first file is reported with the others
    options = AnalysisOptions(
        output_dir=output_dir,
        save_images=save_img,
        save_plots=save_plots,
        plot_format=plot_format,
        seed=seed,
        run=run,
        image=image_id,
        ccd=ccd,
        conditions=conditions_db,
        layout=layout,
        mct=mct,
        mask=mask_path,
        oroot=oroot,
        bz2=bz2,
    )
    for pattern in unmatched:
        click.echo(f"error: no file matches {pattern}", err=True)

    from waders.core.progress import progress_bar

    scale = {"executor": executor, "workers": workers, "scheduler": scheduler, "files_per_task": files_per_task}
    with progress_bar(total=len(paths), desc="analysing", unit="file", enabled=len(paths) > 1) as bar:

        def progress(path: Path, error: str | None) -> None:
            if error is not None:
                bar.write(f"error: {error}")
            bar.update(1)

        result = analyse_files(paths, config, options, progress=progress, **scale)
    click.echo(f"analysed {len(result.outputs)} of {len(paths)} file(s) into {output_dir}")
    for path, outputs in result.outputs.items():
        click.echo(f"  {path}: " + ", ".join(f"{k} {v}" for k, v in outputs.items()))
    if result.failures or unmatched:
        failed = len(result.failures) + len(unmatched)
        if failed > 1:  # one failure is its own one-line error
            click.echo(f"{failed} input(s) failed (see the errors above)", err=True)
        raise click.exceptions.Exit(2)
