"""The ``waders sim`` command: detector-response simulation of Geant4 events (successor of psimulCCDimg)."""

from __future__ import annotations

from pathlib import Path

import click

from waders.core.cli import config_options, executor_options, list_processes_option, load_cli_config, show_processes
from waders.core.errors import ConfigError

__all__ = ["sim"]


def _event_range(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    start, sep, stop = text.partition(":")
    hint = "write A:B (entries A to B-1, A < B), A: or :B"
    try:
        first, last = (int(start) if start else None), (int(stop) if sep and stop else None)
    except ValueError:
        raise ConfigError(f"bad --events {text!r}", hint=hint) from None
    if (first is not None and first < 0) or (last is not None and last < 0):
        raise ConfigError(f"bad --events {text!r}: entries are counted from 0", hint=hint)
    if first is not None and last is not None and last <= first:
        raise ConfigError(f"--events {text!r} selects no event", hint=hint)
    return first, last


def _check_inputs(g4files: tuple[Path, ...], output_dir: Path, prefix: str) -> None:
    """Refuse, before anything is written, inputs whose outputs would overwrite each other."""
    from waders.core.errors import InputFileError
    from waders.core.paths import unique_stems

    clashes = unique_stems(g4files, stem_of=lambda p: p.stem)
    if clashes:
        stem, group = next(iter(clashes.items()))
        raise InputFileError(
            f"{' and '.join(str(p) for p in group)} would both be written to {output_dir / f'{prefix}_{stem}.root'}",
            hint="simulate them in separate calls with different -o folders, or rename one",
        )


def _to_pysimdamicm(output: Path, g4file: Path, config: object) -> Path:
    """Re-write a simulation output in pysimdamicm's layout and name: ``<prefix>_<version>_<g4 file name>``."""
    from waders.core.versions import waders_versions
    from waders.io.root.pysimdamicm import convert_to_pysimdamicm

    sections = getattr(config, "sections", {})
    prefix = sections["out_root"].prefix_root_name if "out_root" in sections else "waders_sim"
    version = waders_versions().get("waders-sim", "unknown")
    target = convert_to_pysimdamicm(output, output.parent / f"{prefix}_{version}_{g4file.name}")
    if target != output:
        output.unlink()
    return target


@click.command("sim", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("config_arg", required=False, metavar="[CONFIG]", type=click.Path(path_type=Path, dir_okay=False))
@config_options("simulation")
@click.option(
    "--g4file",
    "g4files",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE.root",
    help="Geant4 (DAMICG4) output file (repeatable).",
)
@click.option(
    "-o",
    "--output",
    "--g4out",
    "output_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Output directory.",
)
@click.option("--events", "events", metavar="A:B", help="Simulate Geant4 entries A to B-1 only.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option(
    "--chunk-size", type=click.IntRange(min=1), default=20_000, show_default=True, help="Events read at a time."
)
@click.option("--image", is_flag=True, help="Also write FITS images of the events (activates CreateFitsImage).")
@click.option(
    "--layout",
    type=click.Choice(["waders", "pysimdamicm"]),
    default="waders",
    show_default=True,
    help="Output file: waders' name and branches, or pysimdamicm's name (<prefix>_<version>_<g4 file name>) and "
    "vector<vector<T>> branches (needs ROOT: pip install root).",
)
@list_processes_option("simulation")
@click.option("--check", is_flag=True, help="Validate the configuration, print the process chain and exit.")
@executor_options
def sim(
    config_arg: Path | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
    g4files: tuple[Path, ...],
    output_dir: Path,
    events: str | None,
    seed: int,
    chunk_size: int,
    image: bool,
    layout: str,
    list_processes: str | None,
    check: bool,
    executor: str,
    workers: int,
    scheduler: str | None,
    files_per_task: int | None,
) -> None:
    """Simulate the detector response to Geant4 events.

    With --executor processes or dask each file is split into event ranges simulated on
    the workers and merged: the output is identical to a serial run (--files-per-task is
    then the number of events per task).

    \b
    Examples (in a folder where 'waders example-data .' was run):
      waders sim --json psimulCCDimg_config_file.json --g4file demo_g4.root -o out/
      waders sim psimulCCDimg_config_file.json --g4file demo_g4.root --events 0:100 --seed 7 --set Diffusion.active=1
    """  # noqa: D301 (click needs a real \\b)
    from waders.core.progress import progress_bar

    from .driver import SimOptions, simulate_file

    if list_processes is not None:
        show_processes(list_processes, "sim")
        return
    path = config_path or config_arg
    all_overrides = list(overrides) + (["CreateFitsImage.active=1"] if image else [])
    config = load_cli_config(
        "simulation", path, all_overrides, default={"detector_response": {}} if path is None else None
    )
    if check:
        from .checks import check_chain

        check_chain(config)
        click.echo("configuration is valid; processes: " + (" -> ".join(config.names) or "(none active)"))
        return
    if not g4files:
        click.echo(click.get_current_context().get_help())
        return
    from waders.io.root import count_geant4_events

    start, stop = _event_range(events)
    if layout == "pysimdamicm":
        from waders.io.root.pysimdamicm import require_pyroot

        require_pyroot()  # fail at once, before anything is simulated
    options = SimOptions(output_dir=output_dir, seed=seed, chunk_size=chunk_size, entry_start=start, entry_stop=stop)
    out_root = config.sections.get("out_root")
    _check_inputs(g4files, output_dir, out_root.prefix_root_name if out_root is not None else "waders_sim")
    totals = {g4file: count_geant4_events(g4file) for g4file in g4files}
    for g4file, total in totals.items():
        if start is not None and start >= total:
            raise ConfigError(
                f"{g4file}: --events {events} selects no event: the file has {total} entries (0 to {total - 1})",
                hint="choose a range inside the file; nothing was written",
            )
    from waders.core.executors import executor_session

    with executor_session(executor, workers=workers, scheduler=scheduler):  # one cluster for all the files
        for g4file in g4files:
            total = totals[g4file]
            if stop is not None and stop > total:
                click.echo(
                    f"warning: {g4file} has {total} events (entries 0:{total}); --events {events} simulates "
                    f"{total - (start or 0)} of them",
                    err=True,
                )
            selected = min(stop if stop is not None else total, total) - (start or 0)
            with progress_bar(total=max(0, selected), desc=g4file.name, unit="event") as bar:
                if executor != "serial":
                    from .parallel import simulate_file_parallel

                    result = simulate_file_parallel(
                        g4file, config, options, executor=executor, workers=workers, scheduler=scheduler,
                        events_per_task=files_per_task, progress=bar.update,
                    )  # fmt: skip
                else:
                    result = simulate_file(g4file, config, options, progress=bar.update)
            if layout == "pysimdamicm":
                result.output = _to_pysimdamicm(result.output, g4file, config)
            click.echo(
                f"{g4file}: {result.events_read} events read, {result.events_kept} simulated, "
                f"{result.clusters} clusters -> {result.output}"
            )
            for reason, n in sorted(result.counters.items()):
                click.echo(f"  {reason}: {n}")
            for process, written in result.extra_outputs.items():
                click.echo(f"  {process}: {written}")
