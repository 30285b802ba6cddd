"""The ``waders dqm`` command group: data-quality monitoring of runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from waders.core.cli import describe_process, executor_options, list_processes_text, load_cli_config
from waders.core.plugins import monitor_registry

__all__ = ["dqm"]

log = logging.getLogger(__name__)


def _register_monitors() -> None:
    """Make the shipped monitor elements known even before their entry points are installed."""
    from .monitors import register_builtin

    register_builtin(monitor_registry())


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
        _register_monitors()  # here and in the subcommands, not for every --help (numpy; issue 18)
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
    from .monitor import active_monitors

    _register_monitors()
    config = load_cli_config("dqm", config_path, overrides)
    active_monitors(config.steps)
    click.echo("configuration is valid; monitor elements: " + (", ".join(config.names) or "(none active)"))


def _run_options(func):  # type: ignore[no-untyped-def]
    """The options 'dqm run' and 'dqm watch' share, declared once."""
    options = [
        click.option(
            "--run", "run_number", type=int, required=True, envvar="DQM_RUN", help="Run number (or $DQM_RUN)."
        ),
        click.option(
            "-o",
            "--output",
            "output_dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=Path("."),
            show_default=True,
            help="DQM output directory (the run goes into OUTPUT/runNNN).",
        ),
        click.option(
            "--me-json",
            "me_config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Monitor-element configuration (pysimdamicm's dqmSKImg file works; default: waders' set).",
        ),
        click.option("--ref", "reference_run", type=int, default=None, help="Reference run to compare with."),
        click.option("--tag", default=None, help="Run tag stored with the run."),
        click.option(
            "--image-plots",
            type=click.Choice(["none", "problems", "all"]),
            default="problems",
            show_default=True,
            help="Per-image plots: none, those of failing/warning MEs and image MEs, or all.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dqm.command("run", context_settings={"max_content_width": 100})
@click.argument("inputs", nargs=-1)
@_run_options
@click.option(
    "-j",
    "--json",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Analysis configuration (default: the default analysis of waders ana).",
)
@click.option("--set", "overrides", multiple=True, metavar="ME.PARAM=VALUE", help="Override an ME parameter.")
@click.option(
    "--image-hr",
    "image_hr",
    multiple=True,
    metavar="PATTERN",
    help="Images (file-name glob) plotted in full: every monitor element (repeatable).",
)
@click.option(
    "--store",
    "store_uri",
    default=None,
    metavar="URI",
    help="Store: a file, sqlite:///PATH or mongodb://HOST/DB (default OUTPUT/dqm.sqlite).",
)
@click.option("--pdf", is_flag=True, help="Also a PDF report (when the report builder supports it).")
@click.option(
    "--publish",
    "publish_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="WEBDIR",
    help="After the run, publish the reports of OUTPUT into WEBDIR (atomically; the run index is updated).",
)
@click.option(
    "--skip",
    "skip",
    multiple=True,
    metavar="TEXT",
    help="Leave out inputs whose name contains TEXT (a .txt file lists several).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the analysis' random streams.")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when the run's verdict is FAIL (also when an input could not be analysed); WARN exits 0.",
)
@executor_options
def run_command(
    inputs: tuple[str, ...],
    run_number: int,
    config_path: Path | None,
    me_config_path: Path | None,
    overrides: tuple[str, ...],
    image_hr: tuple[str, ...],
    image_plots: str,
    reference_run: int | None,
    output_dir: Path,
    store_uri: str | None,
    tag: str | None,
    pdf: bool,
    skip: tuple[str, ...],
    seed: int,
    strict: bool = False,
    publish_dir: Path | None = None,
    executor: str = "serial",
    workers: int = 1,
    scheduler: str | None = None,
    files_per_task: int | None = None,
) -> None:
    """Monitor run N: INPUTS are FITS files or quoted glob patterns (added to the run).

    Analyses every image, evaluates the monitor elements, compares them with the reference
    run, and writes OUTPUT/runNNN/ (summary_runNNN.json, mask_runNNN.fits, me/, report/).
    Images can be added one by one: an image added again replaces its earlier entry.
    The verdict is pass, warn or fail, with the reasons; a run in which no image (or not
    every image) could be analysed is a fail.  Exit codes: 0 done; 1 with --strict when
    the verdict is fail; 2 bad configuration or input (or, without --strict, an input
    that could not be analysed).

    \b
    Examples:
      waders dqm run --run 12 -o dqm/ "data/run12/*.fits"
      waders dqm run --run 13 --ref 12 --me-json dqmSKImg_configuration.json -o dqm/ img_7.fits
      waders dqm run --run 14 -o dqm/ --publish /var/www/dqm "data/run14/*.fits"
    """  # noqa: D301 (click needs a real \\b)
    from .run import RunOptions, monitor_run

    _register_monitors()
    if not inputs:
        click.echo(click.get_current_context().get_help())
        return

    def progress(path: Path, error: str | None) -> None:
        if error is not None:
            click.echo(f"error: {error}", err=True)
        else:
            log.info("%s: monitored", path)

    options = RunOptions(
        run=run_number,
        output_dir=output_dir,
        config=config_path,
        me_config=me_config_path,
        store_uri=store_uri,
        reference_run=reference_run,
        tag=tag,
        pdf=pdf,
        image_hr=image_hr,
        image_plots=image_plots,
        skip=skip,
        me_overrides=overrides,
        seed=seed,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        files_per_task=files_per_task,
    )
    result = monitor_run(inputs, options, progress=progress)
    for pattern in result.unmatched:
        click.echo(f"error: no file matches {pattern}", err=True)
    document = result.document
    reference = document.get("reference_run")
    versus = f" vs run {reference}" if reference is not None else ""
    run = int(document["run"])
    summary = result.run_dir / f"summary_run{run:03d}.json"
    click.echo(
        f"run {run}: {document['status']}{versus}; {len(document['images'])} image(s) in the run; summary {summary}"
    )
    for reason in document.get("reasons") or []:
        click.echo(f"  {reason}")
    if result.report not in (None, "written"):
        click.echo(f"error: {result.report}", err=True)
    if publish_dir is not None:
        from .report.web import publish_runs

        published = publish_runs(output_dir, publish_dir)
        this = next((p for p in published if p.run == run), None)
        action = this.action if this is not None else "not found"
        click.echo(f"run {run}: {action} in {publish_dir}; index {publish_dir / 'index.html'}")
    failed = len(result.failures) + len(result.unmatched)
    if failed > 1:  # one failure is its own one-line error
        click.echo(f"{failed} input(s) failed (see the errors above)", err=True)
    if strict and document["status"] == "fail":
        raise click.exceptions.Exit(1)
    if not result.ok:
        raise click.exceptions.Exit(2)


@dqm.command("watch", context_settings={"max_content_width": 100})
@click.argument("indir", type=click.Path(path_type=Path, file_okay=False))
@_run_options
@click.option(
    "--publish",
    "publish_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    metavar="WEBDIR",
    help="Publish the reports into WEBDIR after each update.",
)
@click.option("--pattern", default="*.fits*", show_default=True, help="File-name glob of the images.")
@click.option("--interval", type=click.FloatRange(0), default=10.0, show_default=True, help="Seconds between looks.")
@click.option(
    "--settle",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds a file must be untouched before it is taken (a file being written waits).",
)
@click.option("--cycles", type=click.IntRange(1), default=None, help="Stop after this many looks (default: Ctrl-C).")
def watch_command(
    indir: Path,
    run_number: int,
    output_dir: Path,
    publish_dir: Path | None,
    pattern: str,
    interval: float,
    settle: float,
    cycles: int | None,
    me_config_path: Path | None,
    reference_run: int | None,
    tag: str | None,
    image_plots: str,
) -> None:
    """Monitor run N as its images arrive in INDIR, and publish after each update (Ctrl-C stops).

    \b
    Example:
      waders dqm watch /data/run14 --run 14 --ref 12 -o dqm/ --publish /var/www/dqm
    """  # noqa: D301 (click needs a real \b)
    from .options import RunOptions
    from .watch import watch

    _register_monitors()
    options = RunOptions(
        run=run_number,
        output_dir=output_dir,
        me_config=me_config_path,
        reference_run=reference_run,
        tag=tag,
        image_plots=image_plots,
    )

    def update(result: Any, files: list[Path]) -> None:
        document = result.document
        click.echo(
            f"run {run_number}: +{len(files)} file(s), {len(document['images'])} image(s) in the run, "
            f"{document['status']}" + (f"; published in {publish_dir}" if publish_dir is not None else "")
        )
        for path, error in result.failures.items():
            click.echo(f"error: {path}: {error}", err=True)

    click.echo(f"watching {indir} for {pattern} (run {run_number}); Ctrl-C to stop")
    try:
        watch(
            indir,
            options,
            publish=publish_dir,
            pattern=pattern,
            interval=interval,
            settle=settle,
            cycles=cycles,
            on_update=update,
        )
    except KeyboardInterrupt:
        click.echo("stopped")


def _add_report_commands() -> None:
    """Add ``publish``/``serve`` (:mod:`waders.dqm.report.commands`) to the group."""
    from .report.commands import publish, serve

    for command in (publish, serve):
        dqm.add_command(command)


_add_report_commands()
