"""Writers of ``waders ana``: every output file is written by a sink chosen from declarations.

Processes compute and record; they write no file.  What gets written follows from the
products the processes of the chain declare (:mod:`waders.core.products`) and the options:

==================  =====================================================================
sink                writes
==================  =====================================================================
clusters            ``<stem>_clusters.root`` (``clustersRec``, ``info``, ``process_config``)
                    when a process declares a ``clusters`` table
images              ``<stem>_waders.fits`` (``.fits.bz2`` with ``bz2``) with the image
                    products, with ``save_images`` or a process's ``save_image``
tables              ``<stem>_<process>_<A>.csv`` for every table declared with a ``switch``
                    parameter that is on (one file per amplifier for per-amplifier tables)
summary             ``<stem>.summary.json``, always (:mod:`waders.ana.summary`)
figures             ``plots/<stem>_<process>_<name>.<format>`` for the figures the processes
                    drew into the run context, when they declare figures
==================  =====================================================================

A lab's own process gets its outputs written by declaring them: a ``clusters`` table recorded
as ``image.record(name, clusters=array)`` goes to the ROOT file, a figure kept with
:func:`waders.ana.plotting.keep_figure` to ``plots/``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from waders.core.config import Config
from waders.core.image import SkipperImage
from waders.core.paths import safe_name
from waders.core.products import Product, declared
from waders.io.atomic import atomic_path

from .constants import analysis_constants
from .schema import SUMMARY_FORMAT
from .summary import info_columns, process_config_columns, summarise

if TYPE_CHECKING:
    from .runner import AnalysisOptions

__all__ = [
    "OROOT_PARTS",
    "SINKS",
    "OutputJob",
    "clusters_table",
    "flat_figures",
    "save_figures",
    "switched_tables",
    "write_clusters",
    "write_figures",
    "write_images",
    "write_outputs",
    "write_run",
    "write_summary",
    "write_tables",
]

log = logging.getLogger(__name__)

#: Directory (inside the output directory) of the per-image parts of an ``--oroot`` file.
OROOT_PARTS = ".waders-oroot-parts"


@dataclass
class OutputJob:
    """Everything the sinks need to write the outputs of one analysed image.

    Attributes
    ----------
    path : Path
        The analysed input file.
    image : SkipperImage
        The analysed image (its ``meta["stem"]`` names the outputs).
    config : Config
        The configuration that ran.
    processes : list of Process
        The chain that ran (its declarations choose the sinks).
    options : AnalysisOptions
        Output directory and switches (``save_images``, ``save_plots``, ``layout``, ...).
    versions : dict
        Package versions written into the outputs.
    figures : dict
        ``{process name: {figure name: Figure}}`` drawn during the run.
    """

    path: Path
    image: SkipperImage
    config: Config
    processes: list[Any]
    options: AnalysisOptions
    versions: dict[str, str]
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """File-name stem of the outputs."""
        return str(self.image.meta["stem"])


def clusters_table(image: SkipperImage, processes: Sequence[Any]) -> Any:
    """The ``clusters`` table of the first process declaring one, or None (not declared or not made)."""
    for process, _ in declared(processes, "table", "clusters"):
        table = image.results.get(process.name, {}).get("clusters")
        if table is not None:
            return table
    return None


# --- clusters -----------------------------------------------------------------------------------
#: What the clusters sink imports (prefetched while the first image is read).
CLUSTERS_IMPORTS = ("awkward", "uproot", "waders.io.root")


def sink_imports(processes: Sequence[Any]) -> tuple[str, ...]:
    """Heavy modules the sinks will import for the outputs of ``processes`` (:data:`CLUSTERS_IMPORTS`)."""
    return CLUSTERS_IMPORTS if declared(processes, "table", "clusters") else ()


def write_clusters(job: OutputJob) -> dict[str, str]:
    """``<stem>_clusters.root`` when a process declares a ``clusters`` table (the ``--oroot`` part with it)."""
    if not declared(job.processes, "table", "clusters"):
        return {}
    from .runner import pysimdamicm_names

    out, options = job.options.output_dir, job.options
    if options.oroot:  # one file for all inputs: this image's part, merged by merge_oroot
        _clusters_file(out / OROOT_PARTS / f"{job.stem}_clusters.root", job, "waders")
        return {"clusters": str(out / options.oroot)}
    name = pysimdamicm_names(job.path, job.image)[0] if options.layout == "pysimdamicm" else f"{job.stem}_clusters.root"
    _clusters_file(out / name, job, options.layout)
    return {"clusters": str(out / name)}


def _clusters_file(path: Path, job: OutputJob, layout: str) -> None:
    import awkward as ak

    from waders.io.root import open_output, write_clusters_tree, write_records_tree
    from waders.io.root.titles import CLUSTERS_REC_TITLE

    image = job.image
    clusters = clusters_table(image, job.processes)
    if clusters is None:
        clusters = ak.Array([])
    fields = list(clusters.fields) if len(clusters.fields) else []
    pixel_fields = [f for f in fields if f.startswith("pixels_") or f == "seed_nsig_pixels"]
    # per-cluster lists (EvalCTIProcess's vcti_pix, vcti_rate, ...) are grouped by their prefix
    list_fields = [f for f in fields if f not in pixel_fields and clusters[f].ndim == 2]
    scalar_fields = [f for f in fields if f not in pixel_fields and f not in list_fields]
    per_cluster = clusters[scalar_fields] if scalar_fields else clusters
    pixels = ak.zip({f: clusters[f] for f in pixel_fields}) if pixel_fields else None
    counts = np.array([len(clusters)])
    groups: dict[str, list[str]] = {}
    for name in list_fields:
        groups.setdefault(name.split("_", 1)[0], []).append(name)
    lists = {g: ak.unflatten(ak.zip({f: clusters[f] for f in names}), counts) for g, names in groups.items()}
    with open_output(path) as out:
        write_clusters_tree(
            out,
            "clustersRec",
            np.array([image.meta.get("run", 0)], dtype=np.int32),
            ak.unflatten(per_cluster, counts),
            ak.unflatten(pixels, counts) if pixels is not None else None,
            lists=lists or None,
            title=CLUSTERS_REC_TITLE,
        )
        info = info_columns(image, job.processes)
        write_records_tree(out, "info", {k: _one_entry(v) for k, v in info.items()})
        config_columns = process_config_columns(job.config, job.versions, job.config.detector.e2eV)
        constants = analysis_constants(image, job.config.detector)  # ADC2e, ADC2eV, img_exp_time
        write_records_tree(out, "process_config", {**config_columns, **constants})
    if layout == "pysimdamicm":
        from waders.io.root.pysimdamicm import convert_to_pysimdamicm

        convert_to_pysimdamicm(path)


def _one_entry(value: Any) -> Any:
    import awkward as ak

    if isinstance(value, np.ndarray):
        return ak.Array([value])
    return value


# --- images -------------------------------------------------------------------------------------
def write_images(job: OutputJob) -> dict[str, str]:
    """``<stem>_waders.fits`` with the image products, with ``save_images`` or a process's ``save_image``."""
    from waders.io.fits import write_processed

    from .runner import pysimdamicm_names

    config, options = job.config, job.options
    wanted = options.save_images or any(getattr(p, "save_image", False) for p in job.processes)
    if not wanted or (config.input is not None and not config.input.image.save_images):
        return {}
    name = pysimdamicm_names(job.path, job.image)[1] if options.layout == "pysimdamicm" else f"{job.stem}_waders.fits"
    target = options.output_dir / f"{name}{'.bz2' if options.bz2 else ''}"
    return {"images": str(write_processed(target, job.image, layout=options.layout))}


# --- tables -------------------------------------------------------------------------------------
def write_tables(job: OutputJob) -> dict[str, str]:
    """CSV files of the tables declared with a ``switch`` parameter that is on.

    Per-amplifier tables give ``<stem>_<process>_<A>.csv`` (``<stem>_<process>_<table>_<A>.csv``
    when the process switches several tables), image tables ``<stem>_<process>_<table>.csv``.
    The columns are the declared ``columns`` of the process's results (or of the result named
    like the table, when it is a mapping of columns).  Nothing is listed in the summary.
    """
    for path in switched_tables(job.image, job.processes, job.options.output_dir, job.stem):
        log.info("wrote %s", path)
    return {}


def switched_tables(image: SkipperImage, processes: Sequence[Any], directory: Path, stem: str) -> list[Path]:
    """Write the CSV files of :func:`write_tables` into ``directory``; return their paths."""
    written: list[Path] = []
    for process in processes:
        switched = [d for d in getattr(process, "products", ()) if d.kind == "table" and d.switch]
        for product in switched:
            if not getattr(process, product.switch, False):
                continue
            alone = len(switched) == 1
            holders = (
                [(amp.name, amp.results.get(process.name)) for amp in image.amplifiers.values()]
                if product.per_amplifier
                else [(None, image.results.get(process.name))]
            )
            for amp_name, results in holders:
                if not results:
                    continue
                parts = [safe_name(stem), process.name]
                if not alone or amp_name is None:
                    parts.append(safe_name(product.name))
                if amp_name is not None:
                    parts.append(safe_name(amp_name))
                path = directory / ("_".join(parts) + ".csv")
                _write_csv(path, _table_columns(results, product))
                written.append(path)
    return written


def _table_columns(results: dict[str, Any], product: Product) -> dict[str, Any]:
    own = results.get(product.name)
    source = own if isinstance(own, dict) else results
    names = product.columns or tuple(source)
    return {name: source[name] for name in names if name in source}


def _write_csv(path: Path, columns: dict[str, Any]) -> None:
    table = np.column_stack([np.asarray(v, dtype=np.float64) for v in columns.values()])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, table, delimiter=",", header=",".join(columns), comments="", fmt="%.8g")


# --- summary ------------------------------------------------------------------------------------
def summary_document(job: OutputJob, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    """The summary document of ``job`` (``outputs``: the files written with it, when any)."""
    summary = summarise(job.image, job.config, input_path=str(job.path), versions=job.versions, processes=job.processes)
    summary = {"format": SUMMARY_FORMAT, **summary}
    if outputs is not None:
        summary["outputs"] = dict(outputs)
    return summary


def write_summary(job: OutputJob, outputs: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Write ``<stem>.summary.json`` listing ``outputs``; return its path and the document."""
    summary = summary_document(job, outputs)
    path = job.options.output_dir / f"{job.stem}.summary.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, allow_nan=False))
    return str(path), summary


# --- figures ------------------------------------------------------------------------------------
def flat_figures(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"<process>_<name>": Figure}`` from ``{process: {name: Figure}}`` (the plot file names without stem)."""
    return {f"{safe_name(process)}_{name}": fig for process, named in figures.items() for name, fig in named.items()}


def save_figures(figures: dict[str, dict[str, Any]], directory: Path, stem: str, fmt: str = "png") -> list[Path]:
    """Write ``{process: {name: Figure}}`` as ``<directory>/plots/<stem>_<process>_<name>.<fmt>``; return the paths."""
    from .plotting import plot_path, save_figure

    return [
        save_figure(fig, plot_path(directory, stem, process, name, fmt))
        for process, named in figures.items()
        for name, fig in named.items()
    ]


def write_figures(job: OutputJob) -> dict[str, str]:
    """``plots/<stem>_<process>_<name>.<format>`` for the figures of processes that declare figures.

    A figure of a process that declares none is not written (a warning says so).
    """
    declaring = {p.name for p, _ in declared(job.processes, "figure")}
    for process, named in job.figures.items():
        if process not in declaring:
            log.warning("%s drew %d figure(s) but declares no figure product: not written", process, len(named))
    wanted = {process: named for process, named in job.figures.items() if process in declaring}
    save_figures(wanted, job.options.output_dir, job.stem, job.options.plot_format)
    if job.options.save_plots:
        return {"plots": str(job.options.output_dir / "plots")}
    return {}


def write_run(
    image: SkipperImage, processes: Sequence[Any], context: Any, directory: Path, *, fmt: str = "png"
) -> list[Path]:
    """Write what a :class:`~waders.core.pipeline.Pipeline` run outside ``waders ana`` made into files.

    The switched tables (:func:`write_tables`) and every figure of ``context.figures``
    (``plots/``), named with the image's stem (``image`` for an image without a source).
    """
    from .plotting import image_stem

    stem = image_stem(image)
    return [*switched_tables(image, processes, directory, stem), *save_figures(context.figures, directory, stem, fmt)]


#: The sinks writing before the summary (the summary lists their files), in order.
SINKS: tuple[Callable[[OutputJob], dict[str, str]], ...] = (write_clusters, write_images, write_tables)


def write_outputs(
    job: OutputJob, on_result: Callable[[SkipperImage, dict[str, Any]], None] | None = None
) -> dict[str, str]:
    """Run the sinks for one analysed image; return ``{kind: path}``.

    The files of :data:`SINKS` first, then the summary (listing them), then the figures;
    ``on_result`` gets the image and the summary document.
    """
    outputs: dict[str, str] = {}
    for sink in SINKS:
        outputs.update(sink(job))
    outputs["summary"], summary = write_summary(job, outputs)
    outputs.update(write_figures(job))
    if on_result is not None:
        on_result(job.image, summary)
    return outputs
