"""Analyse files: read, run the configured processes, write the outputs.

Per input ``<stem>`` the sinks of :mod:`waders.ana.sinks`, chosen from the products the
processes declare, write into the output directory:

* ``<stem>.summary.json`` (always; see :mod:`waders.ana.summary`);
* ``<stem>_clusters.root`` with ``clustersRec``, ``info`` and ``process_config`` when a
  process declares a ``clusters`` table (ClusterFinder);
* ``<stem>_waders.fits`` (``.fits.bz2`` with ``bz2``) with the processed images when ``save_images`` is on;
* CSV tables of the processes that declare them with a switch that is on (``save_results``);
* PNG plots under ``plots/`` when plots are requested.

A bad file does not stop a batch: it is reported and the others still run.
"""

from __future__ import annotations

import glob
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waders.core.amplifiers import check_amplifier_keys
from waders.core.config import Config
from waders.core.errors import InputFileError, WadersError, failure_message
from waders.core.image import SkipperImage
from waders.core.lazy import prefetch
from waders.core.paths import unique_stems
from waders.core.pipeline import Pipeline, RunContext
from waders.core.versions import waders_versions
from waders.io.fits import read_image

from .sinks import OROOT_PARTS, OutputJob, sink_imports, write_outputs

__all__ = [
    "AnalysisOptions",
    "BatchResult",
    "analyse_file",
    "analyse_files",
    "build_chain",
    "expand_inputs",
    "output_stem",
    "run_image",
]

log = logging.getLogger(__name__)

_SUFFIXES = (".fits.fz", ".fits.gz", ".fits.bz2", ".fits", ".fz", ".fit", ".fts")


@dataclass
class AnalysisOptions:
    """Options of an analysis run (command-line level, not process parameters)."""

    output_dir: Path = Path(".")
    save_images: bool = False
    save_plots: bool = False
    plot_format: str = "png"
    seed: int | None = 0
    run: int | None = None
    image: int | None = None
    ccd: int | None = None
    conditions: Path | None = None
    layout: str = "waders"
    mct: bool = False
    mask: Path | None = None
    oroot: str | None = None
    bz2: bool = False


@dataclass
class BatchResult:
    """Outcome of a batch: the outputs per input and the failures."""

    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every input was analysed."""
        return not self.failures


def merge_oroot(paths: Sequence[Path], options: AnalysisOptions) -> Path | None:
    """Merge the per-image clusters files of a batch into ``<output>/<oroot>`` (pysimdamicm's ``--oroot``).

    One ``clustersRec`` and ``info`` entry per image in the order of ``paths``, one
    ``process_config`` entry; converted to the pysimdamicm layout if requested.  The parts
    are removed.  Returns the merged file, or None if no image produced clusters.
    """
    if not options.oroot:
        return None
    import shutil

    from waders.io.root.merge import merge_root_files

    parts_dir = options.output_dir / OROOT_PARTS
    parts = [parts_dir / f"{output_stem(p)}_clusters.root" for p in paths]
    parts = [p for p in parts if p.is_file()]
    try:
        if not parts:
            return None
        merged = merge_root_files(parts, options.output_dir / options.oroot)
        if options.layout == "pysimdamicm":
            from waders.io.root.pysimdamicm import convert_to_pysimdamicm

            convert_to_pysimdamicm(merged)
        return merged
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)


def output_stem(path: Path) -> str:
    """File name without its FITS suffixes (``img.fits.fz`` -> ``img``)."""
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def expand_inputs(patterns: Sequence[str], skip: Sequence[str] = ()) -> tuple[list[Path], list[str]]:
    """Expand files and quoted glob patterns; drop names containing a ``skip`` substring.

    An item of ``skip`` ending in ``.txt`` is a file of further substrings, one per line.
    Returns the files (sorted, unique) and the patterns that matched nothing.
    """
    substrings: list[str] = []
    for item in skip:
        if item.endswith(".txt") and Path(item).is_file():
            substrings += [line.strip() for line in Path(item).read_text().splitlines() if line.strip()]
        else:
            substrings.append(item)
    files: list[Path] = []
    unmatched: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            unmatched.append(pattern)
        files += [Path(m) for m in matches]
    kept = [f for f in dict.fromkeys(files) if not any(s in f.name for s in substrings)]
    return kept, unmatched


def _identify(image: SkipperImage, path: Path, options: AnalysisOptions, position: int) -> None:
    """Run, image and CCD numbers: command line, then header, then file name (never random)."""
    header = image.header
    run = options.run if options.run is not None else header.get("RUNID", header.get("RUN"))
    numbers = re.findall(r"\d+", output_stem(path))
    image_id = options.image if options.image is not None else (int(numbers[-1]) if numbers else position)
    ccd_match = re.search(r"_ccd(\d+)", path.name, re.IGNORECASE)
    ccd = options.ccd if options.ccd is not None else (int(ccd_match.group(1)) if ccd_match else 1)
    try:
        run = int(run) if run is not None else 0
    except (TypeError, ValueError):
        run = 0
    image.meta.update(run=run, image=image_id, ccd=ccd)


def input_ranges(config: Config) -> dict[str, tuple[int | None, int | None]]:
    """The ``input.image`` id_skip/id_row/id_col ranges: ``{axis: (start, end)}``."""
    image = config.input.image if config.input else None
    if image is None:
        return {}
    return {
        axis: (getattr(image, f"id_{axis}_start"), getattr(image, f"id_{axis}_end")) for axis in ("skip", "row", "col")
    }


def build_chain(config: Config, *, save_plots: bool = False) -> list[Any]:
    """The processes to run: the configured steps with the input ranges bound (and ``save_plots`` set).

    Analysis processes get the ``input.image`` ranges as their defaults
    (:meth:`~waders.ana.base.AnalysisProcess.with_input_ranges`).
    """
    from .base import AnalysisProcess

    ranges = input_ranges(config)
    chain = []
    for step in config.steps:
        if isinstance(step, AnalysisProcess):
            step = step.with_input_ranges(ranges)
        chain.append(step.replace(save_plots=True) if save_plots else step)
    return chain


def _extensions(image: SkipperImage) -> list[Any]:
    """FITS extensions the amplifiers were read from (in amplifier order, without repeats)."""
    found = [getattr(geometry, "extension", None) for geometry in image.geometry.amplifiers.values()]
    return list(dict.fromkeys(e for e in found if e is not None)) or [0]


def pysimdamicm_names(path: Path, image: SkipperImage) -> tuple[str, str]:
    """Output names of pysimdamicm (spec A.8, B.14): clusters ROOT file and processed FITS.

    ``panaSKImg_clustersRec_<input name up to its first dot>_ext<extensions joined>.root`` and
    ``<input name without suffix>_EXT<first extension>_waders.fits``.
    """
    extensions = _extensions(image)
    first_dot = path.name.split(".", 1)[0]
    root_name = f"panaSKImg_clustersRec_{first_dot}_ext{''.join(str(e) for e in extensions)}.root"
    return root_name, f"{output_stem(path)}_EXT{extensions[0]}_waders.fits"


def check_image_config(config: Config, image: SkipperImage) -> None:
    """Raise when the configuration does not fit the image, before anything runs.

    Checks that every key of a per-amplifier value names an amplifier of the image and
    that the id_row/id_col ranges of every analysis process lie within every amplifier.

    Raises
    ------
    ConfigError
        Naming the configured value, what the image has and the file.
    """
    from .base import AnalysisProcess

    source = str(config.path) if config.path is not None else None
    check_amplifier_keys(config.steps, [a.geometry for a in image.amplifiers.values()], image.label, source)
    for step in build_chain(config):
        if isinstance(step, AnalysisProcess):
            for amplifier in image.amplifiers.values():
                step.window(image, amplifier)


def check_config_against(config: Config, path: Path) -> None:
    """Read ``path`` (header and geometry; raw samples stay on disk) and run :func:`check_image_config`."""
    check_image_config(config, read_image(path, config.input, lazy=True))


def chain_imports(processes: Sequence[Any]) -> tuple[str, ...]:
    """Heavy modules the chain and its writers will import: each process's ``imports`` and the sinks'."""
    names = [name for process in processes for name in type(process).imports]
    return tuple(dict.fromkeys([*names, *sink_imports(processes)]))


def run_chain(
    path: Path, config: Config, options: AnalysisOptions, *, position: int = 0
) -> tuple[SkipperImage, list[Any], RunContext]:
    """Read one file and run the configured processes on it; nothing is written.

    Returns the analysed image, the chain that ran (:func:`build_chain`) and the run context
    (its ``figures`` hold what the processes drew, with ``options.save_plots``).

    Raises
    ------
    WadersError
        For bad input.
    """
    processes = build_chain(config, save_plots=options.save_plots)
    prefetch(chain_imports(processes))  # while the image is read and its skips reduced
    truth = None
    if options.mct:
        from .clusters.truth import read_truth

        truth = read_truth(path)
    image = read_image(path, config.input)
    image.meta["stem"] = output_stem(path)
    check_image_config(config, image)
    _identify(image, path, options, position)
    context = RunContext(
        seed=options.seed,
        detector=config.detector,
        output_dir=options.output_dir,
        save_plots=options.save_plots,
        options={"plot_format": options.plot_format, "conditions": options.conditions},
    )
    Pipeline(processes).run(image, context)
    if truth is not None:
        _match_truth(image, processes, truth)
    if options.mask is not None:
        _add_mask_distances(image, processes, options.mask)
    return image, processes, context


def _match_truth(image: SkipperImage, processes: list[Any], truth: Any) -> None:
    """Match the declared ``clusters`` table to the Monte-Carlo truth (``--mct``)."""
    from waders.core.products import declared

    from .clusters.truth import match_truth

    for process, _ in declared(processes, "table", "clusters"):
        found = image.results.get(process.name, {})
        if found.get("clusters") is not None:
            found["clusters"] = match_truth(found["clusters"], *truth)
            return


def _add_mask_distances(image: SkipperImage, processes: list[Any], mask: Path) -> None:
    """Add ``dist_mask_min``/``dist_mask_max`` to the declared ``clusters`` table (``--mask``)."""
    from waders.core.products import declared

    from .clusters.distmask import add_mask_distances

    for process, _ in declared(processes, "table", "clusters"):
        found = image.results.get(process.name, {})
        if found.get("clusters") is not None:
            found["clusters"] = add_mask_distances(found["clusters"], mask, image)
            return


def run_image(path: Path, config: Config, options: AnalysisOptions, *, position: int = 0) -> SkipperImage:
    """Read one file and run the configured processes on it; return the analysed image (nothing is written).

    Raises
    ------
    WadersError
        For bad input.
    """
    return run_chain(path, config, options, position=position)[0]


def analyse_file(
    path: Path,
    config: Config,
    options: AnalysisOptions,
    *,
    position: int = 0,
    versions: dict[str, str] | None = None,
    on_result: Callable[[SkipperImage, dict[str, Any]], None] | None = None,
    image: SkipperImage | None = None,
    figures: dict[str, dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Analyse one file and write its outputs (:mod:`waders.ana.sinks`); return ``{kind: output path}``.

    ``on_result`` is called with the analysed image and the summary document (the content of
    ``<stem>.summary.json``), in memory: the DQM evaluates its monitor elements on them without
    reading the file back.
    ``image``, when given, is ``path`` already analysed by :func:`run_image` with ``config``:
    only the outputs are written (:meth:`waders.ana.AnalysisResult.write`), with the figures
    ``figures`` (``{process: {name: Figure}}``) drawn then.

    Raises
    ------
    WadersError
        For bad input (the caller reports it and goes on with the next file).
    """
    versions = versions or waders_versions()
    if image is None:
        image, processes, context = run_chain(path, config, options, position=position)
        figures = context.figures
    else:
        processes = build_chain(config, save_plots=options.save_plots)
    job = OutputJob(path, image, config, processes, options, versions, figures or {})
    return write_outputs(job, on_result)


def _analyse_batch(task: tuple[list[tuple[int, Path]], Config, AnalysisOptions]) -> list[tuple[str, Any, str | None]]:
    """Analyse a few files (one task); errors of a file do not stop the others."""
    batch, config, options = task
    versions = waders_versions()
    out = []
    for position, path in batch:
        try:
            out.append((str(path), analyse_file(path, config, options, position=position, versions=versions), None))
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as err:  # a bug must not lose the rest of a night's batch
            if not isinstance(err, WadersError | OSError):
                log.debug("%s: internal error", path, exc_info=True)
            out.append((str(path), None, failure_message(err, path)))
    return out


#: Modules a worker needs: imported once in the parent before worker processes fork.
_analyse_batch.preload = (  # type: ignore[attr-defined]
    "astropy.io.fits",
    "uproot",
    "iminuit",
    "scipy.ndimage",
    "scipy.spatial",
    "scipy.optimize",
    "waders.ana.compress",
    "waders.ana.pedestal",
    "waders.ana.darkcurrent",
    "waders.ana.calibration",
    "waders.ana.clusters",
)


def analyse_files(
    paths: Iterable[Path],
    config: Config,
    options: AnalysisOptions,
    *,
    progress: Any = None,
    executor: str = "serial",
    workers: int = 1,
    scheduler: str | None = None,
    files_per_task: int | None = None,
) -> BatchResult:
    """Analyse several files; a failing file is reported and the others still run.

    Parameters
    ----------
    paths : iterable of Path
        Inputs.
    config : Config
        Validated analysis configuration.
    options : AnalysisOptions
        Output options.
    progress : callable, optional
        Called with ``(path, error message or None)`` after each file.
    executor, workers, scheduler : str, int, str
        Where the tasks run (see :func:`waders.core.executors.run_tasks`); outputs are
        identical to a serial run.
    files_per_task : int, optional
        Inputs per task (default: about sixteen tasks per worker, so that the last tasks
        leave little idle time; a task costs milliseconds besides its files).
    """
    from waders.core.executors import run_tasks

    result = BatchResult()
    options.output_dir.mkdir(parents=True, exist_ok=True)
    indexed = list(enumerate(paths))
    per_task = files_per_task or max(1, math.ceil(len(indexed) / (16 * max(1, workers))))
    if executor == "serial":
        per_task = 1
    tasks = [(indexed[i : i + per_task], config, options) for i in range(0, len(indexed), per_task)]

    def report(outcome: Any) -> None:
        if progress is None:
            return
        if outcome.error is not None:
            for _, path in tasks[outcome.index][0]:
                progress(path, outcome.error)
            return
        for path, _, error in outcome.value:
            progress(Path(path), error)

    outcomes = run_tasks(
        _analyse_batch, tasks, executor=executor, workers=workers, scheduler=scheduler, progress=report
    )
    for outcome in outcomes:
        if outcome.error is not None:  # the whole task crashed, even after retries
            for _, path in tasks[outcome.index][0]:
                result.failures[str(path)] = outcome.error
            continue
        for path, outputs, error in outcome.value:
            if error is None:
                result.outputs[path] = outputs
            else:
                result.failures[path] = error
    merge_oroot([p for _, p in indexed if str(p) in result.outputs], options)
    return result


def require_inputs(paths: list[Path], unmatched: list[str]) -> None:
    """Raise if nothing is left to analyse, or if two inputs would write the same outputs."""
    if not paths:
        detail = f" (no file matches {', '.join(unmatched)})" if unmatched else ""
        raise InputFileError(f"no input files{detail}", hint="give FITS files or quoted glob patterns")
    refuse_colliding_stems(paths)


def refuse_colliding_stems(paths: Sequence[Path]) -> None:
    """Refuse, before anything is written, inputs whose outputs (``<stem>_*``) would overwrite each other.

    Raises
    ------
    InputFileError
        Naming two inputs with the same stem (``a/img_1.fits`` and ``b/img_1.fits.fz``).
    """
    clashes = unique_stems(paths, stem_of=output_stem)
    if clashes:
        stem, group = next(iter(clashes.items()))
        raise InputFileError(
            f"{group[0]} and {group[1]} have the same name {stem!r}: their outputs would overwrite each other",
            hint="analyse them in separate calls with different output folders (-o), or rename one",
        )
