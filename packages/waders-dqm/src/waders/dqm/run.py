"""Monitor a run: analyse its images, evaluate the monitor elements, test, store and report.

:func:`monitor_run` is what ``waders dqm run`` does, with the options of a
:class:`~waders.dqm.options.RunOptions`.  In ``OUTDIR/runNNN/``:

0. the analysis configuration is checked against the first input (amplifier keys of
   per-amplifier values, geometry, row/column ranges): a mismatch stops the command with
   one error before anything is analysed (:mod:`.configs`);
1. every input is analysed by :func:`waders.ana.runner.analyse_file` (summary and clusters
   into ``recon/``, the processed FITS into ``avgimg/``) with the analysis configuration
   plus the processes the active MEs need (added once, never re-run per ME); the analysed
   image and its summary document are handed over in memory (:mod:`.analysis`);
2. every active ME is evaluated per image and amplifier on the analysed image, tested
   (range, fit goodness, comparison with the reference run) and, when it is a problem,
   an image ME, or the image matches ``image_hr``, plotted into ``me/`` (:mod:`.image_task`);
3. the run document ``summary_runNNN.json`` gets the image (keyed by file stem: adding an
   image again replaces it, never counts it twice), the run-level evolution of every ME,
   the run-level tests and statuses, ``failed_inputs`` (stem -> file and error of the inputs
   that could not be analysed; they make the run a ``fail``, as does a run without any
   image) and ``reasons`` (why the run is not a pass, each cause once) (:mod:`.document`);
   ``mask_runNNN.fits`` is rebuilt from the per-image masks (MEDefectsMask when active, else
   the union of the cluster masks; :mod:`.masks`); the run-level plots of the MEs whose data
   changed are redrawn (:mod:`.run_plots`);
4. the document goes into the store, and :func:`waders.dqm.report.build_report` writes
   ``report/`` (:mod:`.dispatch`).

Images are independent tasks: ``executor="processes"`` (or ``"dask"``) analyses several at
once with :func:`waders.core.executors.run_tasks` (:mod:`.pool`).  One call at a time updates
a run directory (:mod:`.lock`); its log goes into ``logs/`` (:mod:`.runlog`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from waders.core.config import Config
from waders.core.errors import ConfigError, InputFileError
from waders.core.executors import executor_session
from waders.core.progress import progress_bar

from .configs import check_against_first, load_analysis, load_monitors
from .dispatch import dispatch_report
from .document import (
    build_run_level,
    merge_images,
    new_document,
    read_document,
    reference_document,
    run_directory,
    summary_path,
    write_document,
)
from .image_task import ImageTask, image_batch
from .lock import RunLock
from .masks import write_run_mask
from .monitor import MonitorElement
from .options import RunOptions
from .pool import Pool, batches
from .quality import ReferenceStats, compare, reference_stats
from .run_plots import plot_old_problems, plot_run_level, preload_plotting
from .runlog import RunLog, run_log_path

__all__ = ["RunOptions", "RunResult", "monitor_run", "run_directory"]

log = logging.getLogger(__name__)

#: Sub-folders of ``runNNN/``.
RUN_FOLDERS = ("avgimg", "recon", "logs", "me", "report")


@dataclass
class RunResult:
    """Outcome of :func:`monitor_run`.

    Attributes
    ----------
    run_dir : Path
        ``OUTDIR/runNNN``.
    document : dict
        The run summary as written.
    failures : dict
        Input path -> one-line error, for the inputs that could not be monitored.
    unmatched : list
        Patterns that matched no file.
    report : str or None
        ``"written"``, the report builder's one-line error, or None (no report asked for).
    timings : dict
        Seconds per phase.
    """

    run_dir: Path
    document: dict[str, Any]
    failures: dict[str, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    report: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every input was monitored and the report (if asked for) was built."""
        return not self.failures and not self.unmatched and self.report in (None, "written")


def _inputs(inputs: Sequence[str | Path], skip: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The input files (patterns expanded, ``skip`` left out) and the patterns that matched nothing."""
    from waders.ana.runner import expand_inputs, refuse_colliding_stems

    paths, unmatched = expand_inputs([str(i) for i in inputs], skip)
    if not paths:
        detail = f" (no file matches {', '.join(unmatched)})" if unmatched else ""
        raise InputFileError(f"no input files{detail}", hint="give FITS files or quoted glob patterns")
    refuse_colliding_stems(paths)
    return paths, unmatched


def _reference_run(options: RunOptions, previous: Mapping[str, Any] | None) -> int | None:
    """The reference run: the option, else the one of the run's earlier updates."""
    reference = options.reference_run
    if reference is None and previous is not None:
        reference = previous.get("reference_run")
    if reference is not None and int(reference) == options.run:
        raise ConfigError(f"run {options.run} cannot be its own reference", hint="use --ref with another run")
    return None if reference is None else int(reference)


def _tasks(
    paths: Sequence[Path],
    options: RunOptions,
    analysis: Config,
    monitors: list[MonitorElement],
    run_dir: Path,
    references: dict[tuple[str, str], ReferenceStats],
    previous: Mapping[str, Any] | None,
) -> list[ImageTask]:
    """One task per input (with the input's entry of an earlier update of the run)."""
    from waders.ana.runner import output_stem

    old_images = (previous or {}).get("images") or {}
    return [
        ImageTask(
            path=path,
            position=position,
            run=options.run,
            analysis=analysis,
            monitors=monitors,
            run_dir=run_dir,
            references=references,
            previous=old_images.get(output_stem(path)),
            image_plots=options.image_plots if options.plots else "none",
            full_plots=options.plots and any(fnmatch(path.name, p) or fnmatch(str(path), p) for p in options.image_hr),
            seed=options.seed,
            products=options.products,
        )
        for position, path in enumerate(paths)
    ]


def _run_images(
    tasks: list[ImageTask],
    pool: Pool,
    options: RunOptions,
    progress: Callable[[Path, str | None], None] | None,
) -> list[tuple[Path, dict[str, Any] | None, str | None]]:
    """Run the image tasks on ``pool``; return ``(path, value, error)`` per task, in input order."""
    if pool.executor != "serial":
        preload_plotting()
    groups = batches(tasks, pool, options.files_per_task)
    # the bar (on a terminal only) advances as each batch finishes, also with --executor processes
    with progress_bar(total=len(tasks), desc=f"run {options.run}", unit="image", enabled=len(tasks) > 1) as bar:
        results = pool.map(image_batch, groups, done=lambda index, _error: bar.update(len(groups[index])))
    outcomes = []
    for batch, (values, error) in zip(groups, results, strict=True):
        per_image = values if error is None else [(None, error)] * len(batch)  # a crashed batch: all failed
        for task, (value, failure) in zip(batch, per_image, strict=True):
            outcomes.append((task.path, value, failure))
            if progress is not None:
                progress(task.path, failure)
    return outcomes


def monitor_run(
    inputs: Sequence[str | Path],
    options: RunOptions,
    *,
    progress: Callable[[Path, str | None], None] | None = None,
) -> RunResult:
    """Monitor (part of) a run; see the module docstring.

    Parameters
    ----------
    inputs : sequence of str or Path
        FITS files or glob patterns.
    options : RunOptions
        The run number, output folder, configurations and the rest.
    progress : callable, optional
        Called with ``(path, error or None)`` after each input.

    Returns
    -------
    RunResult

    Raises
    ------
    WadersError
        Configuration errors, no input file, or an unknown reference run.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run = options.run
    monitors = load_monitors(options.me_config, options.me_overrides)
    by_name = {me.name: me for me in monitors}
    analysis = load_analysis(options.config, monitors)
    paths, unmatched = _inputs(inputs, options.skip)
    check_against_first(analysis, paths[0])
    run_dir = run_directory(options.output_dir, run)
    for sub in RUN_FOLDERS:
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    from .store import open_store

    result = RunResult(run_dir=run_dir, document={}, unmatched=unmatched)
    with (
        RunLock(run_dir / ".dqm.lock"),
        RunLog(run_log_path(run_dir, run)),
        open_store(options.store_uri, options.output_dir) as store,
        # one process pool or dask cluster for the images and the plots
        executor_session(options.executor, workers=options.workers, scheduler=options.scheduler),
    ):
        previous = read_document(summary_path(run_dir, run)) or store.get_run(run)
        reference_run = _reference_run(options, previous)
        reference = reference_document(store, options.output_dir, reference_run)
        references = reference_stats(reference, by_name)
        log.info(
            "DQM run %d: %d input(s), %d monitor element(s), reference run %s",
            run,
            len(paths),
            len(monitors),
            reference_run,
        )
        tasks = _tasks(paths, options, analysis, monitors, run_dir, references, previous)
        timings["setup"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        pool = Pool(options.executor, options.workers, options.scheduler)
        outcomes = _run_images(tasks, pool, options, progress)
        timings["images"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        document = new_document(run, options.tag, reference_run, previous)
        result.failures, processed = merge_images(document, outcomes)
        document["run_level"] = build_run_level(document, monitors)
        compare(document, reference, by_name)
        if options.plots:
            plot_old_problems(run_dir, document, processed, by_name, references, options.image_plots, pool)
            plot_run_level(run_dir, document, previous, by_name, references, pool)
        document["masked_fraction"] = write_run_mask(run_dir, document, by_name)
        write_document(summary_path(run_dir, run), document)
        store.put_run(document)
        timings["run"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        result.document = document
        result.report = dispatch_report(run_dir, document, store, pdf=options.pdf) if options.report else None
        timings["report"] = time.perf_counter() - t3
        result.timings = timings
        log.info(
            "DQM run %d: status %s, %d image(s) in the run, %d failed input(s); %s",
            run,
            document["status"],
            len(document["images"]),
            len(result.failures),
            ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
        )
    return result
