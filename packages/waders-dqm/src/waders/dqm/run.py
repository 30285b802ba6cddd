"""Monitor a run: analyse its images, evaluate the monitor elements, test, store and report.

:func:`monitor_run` is what ``waders dqm run`` does.  In ``OUTDIR/runNNN/``:

0. the analysis configuration is checked against the first input (amplifier keys of
   per-amplifier values, geometry, row/column ranges): a mismatch stops the command with
   one error before anything is analysed;
1. every input is analysed by :func:`waders.ana.runner.analyse_file` (summary and clusters
   into ``recon/``, the processed FITS into ``avgimg/``) with the analysis configuration
   plus the processes the active MEs need (added once, never re-run per ME);
2. every active ME is evaluated per image and amplifier on the analysed image, tested
   (range, fit goodness, comparison with the reference run) and, when it is a problem,
   an image ME, or the image matches ``--image-hr``, plotted into ``me/``;
3. the run document ``summary_runNNN.json`` gets the image (keyed by file stem: adding an
   image again replaces it, never counts it twice), the run-level evolution of every ME,
   the run-level tests and statuses, ``failed_inputs`` (stem -> file and error of the inputs
   that could not be analysed; they make the run a ``fail``, as does a run without any
   image) and ``reasons`` (why the run is not a pass, each cause once); ``mask_runNNN.fits``
   is rebuilt from the per-image masks (MEDefectsMask when active, else the union of the cluster masks); the run-level
   plots of the MEs whose data changed are redrawn;
4. the document goes into the store, and ``waders.dqm.report.build_report`` (when that
   module is installed) writes ``report/``.

Images are independent tasks: ``executor="processes"`` (or ``"dask"``) analyses several at
once with :func:`waders.core.executors.run_tasks`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from waders.core.config import Config, load_config
from waders.core.errors import ConfigError, InputFileError, WadersError, failure_message
from waders.core.geometry import AmplifierGeometry
from waders.core.image import SkipperImage
from waders.core.paths import safe_name
from waders.core.process import Process
from waders.core.progress import progress_bar
from waders.io.atomic import atomic_path

from .monitor import MonitorElement, NotApplicable, active_monitors, empty_entry
from .quality import ReferenceStats, compare, image_entry_quality, reference_stats, worst

__all__ = ["DEFAULT_MONITORS", "RunResult", "analysis_for", "monitor_run", "run_directory"]

log = logging.getLogger(__name__)

#: The monitor elements ``waders dqm run`` evaluates without ``--me-json``.
DEFAULT_MONITORS: dict[str, Any] = {
    "description": "Default monitor elements of waders dqm run: noise, pedestal, dark current, gain, defects.",
    "monitoring_elements": {
        name: {"active": 1}
        for name in (
            "MEQmeanDiffSingleSkips",
            "MEReadoutnoiseNDCM",
            "MEMeanPixelChargePerRow",
            "MESTDPixelChargePerRow",
            "MESlopeFromMeanPCPerRow",
            "MEMedianPixelChargePerCol",
            "MENpixQ1ePerCol",
            "MEOVSPedestalSigmaPerRow",
            "MEOVSPedestalMu",
            "MEOVSPedestalSigma",
            "MEOVSPCD",
            "MEPCD",
            "MEFitDC",
            "MEFitDCMu0",
            "MEFitDCSigma",
            "MEFitDCLambda",
            "MEFitDCCalibration",
            "MEDefectsMask",
        )
    },
}
#: Image products written into ``avgimg/<stem>_waders.fits`` (those present).
DEFAULT_PRODUCTS = ("mean_compressed_pedestal_subtracted_e", "mask_clusters")
IMAGE_PLOTS = ("none", "problems", "all")
_DEFECTS = ("MEDefectsMask", "MEMaskedPixels")


def run_directory(output_dir: str | Path, run: int) -> Path:
    """``OUTDIR/runNNN`` (three digits at least)."""
    return Path(output_dir) / f"run{int(run):03d}"


def summary_path(run_dir: Path, run: int) -> Path:
    """``runNNN/summary_runNNN.json``."""
    return run_dir / f"summary_run{int(run):03d}.json"


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
        ``"written"``, ``"unavailable"`` (no report module) or the report builder's error.
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
        """True when every input was monitored and the report (if any) was built."""
        return not self.failures and not self.unmatched and self.report in (None, "written", "unavailable")


# --- configurations ----------------------------------------------------------------------------------
def _load(
    source: Config | Mapping[str, Any] | str | Path | None,
    kind: str,
    default: Mapping[str, Any],
    overrides: Sequence[str] = (),
) -> Config:
    if isinstance(source, Config):
        if source.kind != kind:
            raise ConfigError(f"expected a {kind} configuration, got a {source.kind} one")
        return source
    return load_config(default if source is None else source, kind=kind, overrides=overrides)


def load_monitors(
    me_config: Config | Mapping[str, Any] | str | Path | None, overrides: Sequence[str] = ()
) -> list[MonitorElement]:
    """The active MEs of a DQM configuration (default: :data:`DEFAULT_MONITORS`), in evaluation order."""
    from .monitors import register_builtin

    register_builtin()
    config = _load(me_config, "dqm", DEFAULT_MONITORS, overrides)
    monitors = active_monitors(config.steps)
    if not monitors:
        raise ConfigError("no active monitor element", hint='set "active": 1 for some monitoring_elements')
    return monitors


def _default_analysis() -> dict[str, Any]:
    from waders.ana.cli import default_config

    return default_config()


def analysis_for(config: Config, monitors: Sequence[MonitorElement]) -> Config:
    """The analysis configuration plus what the MEs need.

    A process an ME reads is appended to the sequence when missing (with the ME's
    parameters); a configured one gets the parameters the MEs set.  ``mask_clusters`` set
    by an ME is dropped, with a warning, when no BuildClusterMask runs before the fit.
    """
    steps: list[Process] = list(config.steps)
    configured = dict(config.configured)
    requested: dict[str, tuple[type[Process], dict[str, Any], dict[str, Any], list[str]]] = {}
    for me in monitors:
        for step in me.analysis_steps():
            name = step.process.name
            cls, params, defaults, owners = requested.setdefault(name, (step.process, {}, {}, []))
            for key, value in step.params.items():
                if key in params and params[key] != value:
                    log.warning(
                        "%s.%s is set by %s and %s; %s's value is used", name, key, owners[-1], me.name, me.name
                    )
                params[key] = value
            defaults.update(step.defaults)
            owners.append(me.name)
    names = [type(s).name for s in steps]
    for name, (cls, params, defaults, owners) in requested.items():
        position = names.index(name) if name in names else None
        if params.get("mask_clusters"):
            before = names[:position] if position is not None else names
            if "BuildClusterMask" not in before:
                log.warning(
                    "%s: mask_clusters is ignored: the analysis builds no cluster mask before %s", owners[0], name
                )
                params = {k: v for k, v in params.items() if k != "mask_clusters"}
        if position is not None:
            if params:
                steps[position] = steps[position].replace(**params)
                log.info("analysis: %s parameters %s set by %s", name, ", ".join(sorted(params)), ", ".join(owners))
        else:
            steps.append(cls(**{**defaults, **params}))
            names.append(name)
            log.info("analysis: %s added for %s", name, ", ".join(owners))
        configured[name] = steps[names.index(name)]
    return dataclasses.replace(config, steps=steps, configured=configured)


# --- one image (a task; runs in a worker process with executor="processes") -----------------------------
class _KeepImage(Process):
    """Keeps a reference to the analysed image (the last step of the DQM's analysis)."""

    name: ClassVar[str] = "DQMKeepImage"
    domain: ClassVar[str] = "ana"

    def run(self, data: Any, context: Any) -> None:
        self.image = data


@dataclass
class _CaptureConfig(Config):
    """The analysis configuration with :class:`_KeepImage` as a hidden last step."""

    @property
    def names(self) -> list[str]:
        return [type(step).name for step in self.steps if not isinstance(step, _KeepImage)]


@dataclass
class _ImageTask:
    path: Path
    position: int
    run: int
    analysis: Config
    monitors: list[MonitorElement]
    run_dir: Path
    references: dict[tuple[str, str], ReferenceStats]
    previous: dict[str, Any] | None
    image_plots: str
    full_plots: bool
    seed: int
    products: tuple[str, ...]


def _analyse(task: _ImageTask) -> tuple[SkipperImage, dict[str, Any]]:
    from waders.ana.runner import AnalysisOptions, analyse_file

    options = AnalysisOptions(output_dir=task.run_dir / "recon", seed=task.seed, run=task.run)
    kept: list[tuple[SkipperImage, dict[str, Any]]] = []
    analyse_file(task.path, task.analysis, options, position=task.position, on_result=lambda i, s: kept.append((i, s)))
    return kept[0]


def _evaluate(
    me: MonitorElement, image: SkipperImage, summary: dict[str, Any], amplifier: Any
) -> tuple[dict[str, Any], Any]:
    try:
        result = me.evaluate(image, summary, amplifier)
    except NotApplicable as err:
        return empty_entry(me, "none", f"not applicable: {err.one_line()}"), None
    except ConfigError:
        raise
    except WadersError as err:
        return empty_entry(me, "fail", err.one_line()), None
    except Exception as err:  # a bug in one ME must not lose the image
        log.debug("%s: %s failed", image.label, me.name, exc_info=True)
        text = " ".join(str(err).split())
        return empty_entry(me, "fail", f"internal error {type(err).__name__}: {text}"), None
    return result.to_entry(me), result


def _same_data(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> bool:
    if not previous:
        return False
    keys = ("value", "error", "x", "y", "yerr", "yfit")
    return all(entry.get(k) == previous.get(k) for k in keys) and (entry.get("quality") or {}).get("status") == (
        previous.get("quality") or {}
    ).get("status")


def _wants_plot(me: MonitorElement, status: str, policy: str, full: bool) -> bool:
    if policy == "none" or not me.wants_image_plot():
        return False
    if me.kind == "image" or full or policy == "all":
        return True
    return status in ("warn", "fail")


def _image_task(task: _ImageTask) -> dict[str, Any]:
    """Analyse one image, evaluate and test its MEs, draw its plots; return its summary entry."""
    started = time.perf_counter()
    image, summary = _analyse(task)
    analysed = time.perf_counter()
    stem = image.meta["stem"]
    ccd = image.meta.get("ccd")
    previous = (task.previous or {}).get("me") or {}
    me_entries: dict[str, dict[str, Any]] = {}
    masks: dict[str, np.ndarray] = {}
    for me in task.monitors:
        targets = list(image.amplifiers.values()) if me.per_amplifier else [None]
        per_amp: dict[str, Any] = {}
        for amplifier in targets:
            key = amplifier.name if amplifier is not None else "image"
            entry, result = _evaluate(me, image, summary, amplifier)
            entry["quality"] = image_entry_quality(me, entry, key, ccd, task.references.get((me.name, key)))
            if result is not None and me.name in _DEFECTS and "candidates" in result.extra:
                masks[f"defects/{key}"] = result.extra["candidates"]
            if _wants_plot(me, entry["quality"]["status"], task.image_plots, task.full_plots):
                relative = f"me/{safe_name(stem)}_{safe_name(me.name)}_{safe_name(key)}.png"
                old = previous.get(me.name, {}).get(key)
                if (
                    me.kind != "image"
                    and _same_data(entry, old)
                    and old.get("plot")
                    and (task.run_dir / old["plot"]).exists()
                ):
                    entry["plot"] = old["plot"]
                else:
                    ref = task.references.get((me.name, key))
                    drawn = me.plot(
                        entry,
                        task.run_dir / relative,
                        label=f"{stem}, amplifier {key}",
                        reference=ref.to_plot() if ref is not None else None,
                        image=result.image if result is not None else None,
                    )
                    entry["plot"] = relative if drawn is not None else None
            per_amp[key] = entry
        me_entries[me.name] = per_amp
    for name, amp in image.amplifiers.items():
        if amp.has("mask_clusters"):
            masks[f"clusters/{name}"] = np.asarray(amp.get("mask_clusters"), dtype=bool)
    _save_masks(task.run_dir / "recon" / f"{stem}.dqm_masks.npz", masks, image)
    _save_products(task.run_dir / "avgimg" / f"{stem}_waders.fits", image, task.products)
    statuses = [e["quality"]["status"] for per_amp in me_entries.values() for e in per_amp.values()]
    start = image.meta.get("exposure_start")
    entry = {
        "file": str(task.path),
        "image": image.meta.get("image"),
        "ccd": ccd,
        "start": str(start) if start else None,
        "summary": f"recon/{stem}.summary.json",
        "status": "pass" if worst(statuses) == "none" else worst(statuses),
        "me": me_entries,
    }
    done = time.perf_counter()
    return {
        "stem": stem,
        "entry": entry,
        "amplifiers": list(image.amplifiers),
        "seconds": {"analysis": analysed - started, "monitors": done - analysed},
    }


def _image_batch(batch: list[_ImageTask]) -> list[tuple[Any, str | None]]:
    """Several images in one task; a failing image does not stop the others."""
    out: list[tuple[Any, str | None]] = []
    for task in batch:
        try:
            out.append((_image_task(task), None))
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as err:  # a bug must not lose the rest of the run
            if not isinstance(err, WadersError | OSError):
                log.debug("%s: internal error", task.path, exc_info=True)
            out.append((None, failure_message(err, task.path)))
    return out


def _save_masks(path: Path, masks: Mapping[str, np.ndarray], image: SkipperImage) -> None:
    arrays = {key: np.packbits(mask, axis=None) for key, mask in masks.items()}
    geometry = json.dumps(image.geometry.describe()["amplifiers"])
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, geometry=np.array(geometry), **arrays)


def _load_masks(path: Path) -> tuple[dict[str, AmplifierGeometry], dict[str, np.ndarray]]:
    with np.load(path) as data:
        described = json.loads(str(data["geometry"]))
        geometries = {
            g["name"]: AmplifierGeometry(
                g["name"],
                g["nrows"],
                g["ncols"],
                prescan_cols=g["prescan_cols"],
                overscan_cols=g["overscan_cols"],
                prescan_rows=g["prescan_rows"],
                overscan_rows=g["overscan_rows"],
                mirrored=g["mirrored"],
            )
            for g in described
        }
        masks = {}
        for key in data.files:
            if key == "geometry":
                continue
            amp = key.split("/", 1)[1]
            shape = geometries[amp].shape
            masks[key] = np.unpackbits(data[key], count=shape[0] * shape[1]).reshape(shape).astype(bool)
    return geometries, masks


def _save_products(path: Path, image: SkipperImage, products: Sequence[str]) -> None:
    from waders.io.fits import write_processed

    present = [p for p in products if all(a.has(p) for a in image.amplifiers.values())]
    if present:
        from astropy.io.fits.verify import VerifyWarning

        with warnings.catch_warnings():  # long comments of HIERARCH cards (amplifier names > 1 letter) are cut
            warnings.simplefilter("ignore", VerifyWarning)
            write_processed(path, image, present, extra_cards={"DQMRUN": (image.meta.get("run"), "DQM run")})


# --- the run -----------------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_document(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(
            f"{path}: cannot read the run summary ({err})", hint="delete it to start the run again"
        ) from None


def _reference(store: Any, output_dir: Path, run: int | None) -> dict[str, Any] | None:
    if run is None:
        return None
    document = store.get_run(run)
    if document is None:
        document = _read_document(summary_path(run_directory(output_dir, run), run))
    if document is None:
        raise ConfigError(
            f"reference run {run} is not in the DQM store {store.uri}", hint="monitor it first, or use another --ref"
        )
    return document


def _expand(inputs: Sequence[str | Path], skip: Sequence[str]) -> tuple[list[Path], list[str]]:
    from waders.ana.runner import expand_inputs

    return expand_inputs([str(i) for i in inputs], skip)


@dataclass
class _Executor:
    """Where tasks run (see :func:`waders.core.executors.run_tasks`)."""

    executor: str = "serial"
    workers: int = 1
    scheduler: str | None = None

    def map(
        self, func: Callable[[Any], Any], items: Sequence[Any], done: Callable[[int, str | None], None] | None = None
    ) -> list[tuple[Any, str | None]]:
        """``func(item)`` for every item: ``(value, None)`` or ``(None, one-line error)``, in item order."""
        try:
            from waders.core.executors import run_tasks
        except ImportError:  # an older waders-core: serial
            run_tasks = None
        if run_tasks is None or len(items) == 0:
            out = []
            for index, item in enumerate(items):
                try:
                    value, error = func(item), None
                except WadersError as err:
                    value, error = None, err.one_line()
                if done is not None:
                    done(index, error)
                out.append((value, error))
            return out

        def report(outcome: Any) -> None:
            if done is not None:
                done(outcome.index, outcome.error)

        outcomes = run_tasks(
            func, items, executor=self.executor, workers=self.workers, scheduler=self.scheduler, progress=report
        )
        return [(o.value, o.error) for o in outcomes]


def _order(images: Mapping[str, Any]) -> list[str]:
    def key(stem: str) -> tuple[Any, ...]:
        number = images[stem].get("image")
        return (number is None, number if number is not None else 0, stem)

    return sorted(images, key=key)


def build_run_level(document: dict[str, Any], monitors: Sequence[MonitorElement]) -> dict[str, Any]:
    """Evolution of every ME value over the images of the run (x: image numbers)."""
    images = document.get("images") or {}
    stems = _order(images)
    by_name = {me.name: me for me in monitors}
    names = [me.name for me in monitors]
    for stem in stems:
        names += [n for n in images[stem].get("me", {}) if n not in names]
    run_level: dict[str, Any] = {}
    for name in names:
        per_amp: dict[str, Any] = {}
        keys: list[str] = []
        for stem in stems:
            keys += [k for k in images[stem].get("me", {}).get(name, {}) if k not in keys]
        for key in keys:
            xs, ys, errors, unit = [], [], [], ""
            for position, stem in enumerate(stems):
                entry = images[stem].get("me", {}).get(name, {}).get(key)
                if not entry or entry.get("value") is None:
                    continue
                number = images[stem].get("image")
                xs.append(number if number is not None else position)
                ys.append(entry["value"])
                errors.append(entry.get("error"))
                unit = entry.get("unit", unit)
            if ys:
                me = by_name.get(name)
                per_amp[key] = {
                    "x": xs,
                    "y": ys,
                    "yerr": errors if any(e is not None for e in errors) else None,
                    "unit": me.unit if me is not None else unit,
                    "plot": None,
                    "quality": {"status": "none", "test": None, "detail": ""},
                }
        if per_amp:
            run_level[name] = per_amp
    return run_level


def _monitor_for(name: str, monitors: Mapping[str, MonitorElement]) -> MonitorElement | None:
    if name in monitors:
        return monitors[name]
    from .monitors import builtin_monitors

    cls = builtin_monitors().get(name)
    return cls() if cls is not None else None


def _preload_plotting() -> None:
    """Import matplotlib before worker processes fork (they then need not import it each)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.figure


def _draw_run_plot(task: tuple[MonitorElement, dict[str, Any], Path, str, dict[str, Any]]) -> bool:
    from .plots import plot_run

    me, per_amp, path, label, references = task
    return plot_run(me, per_amp, path, label=label, references=references) is not None


def _draw_image_plot(task: tuple[MonitorElement, dict[str, Any], Path, str, dict[str, Any] | None]) -> bool:
    me, entry, path, label, reference = task
    return me.plot(entry, path, label=label, reference=reference) is not None


def _plot_run_level(
    run_dir: Path,
    document: dict[str, Any],
    previous: Mapping[str, Any] | None,
    monitors: Mapping[str, MonitorElement],
    references: Mapping[tuple[str, str], ReferenceStats],
    pool: _Executor,
) -> None:
    """Draw ``me/run_<ME>.png`` for the MEs whose run-level data (or reference) changed."""
    old_level = (previous or {}).get("run_level") or {}
    same_reference = (previous or {}).get("reference_run") == document.get("reference_run")
    tasks, names = [], []
    for name, per_amp in document["run_level"].items():
        relative = f"me/run_{safe_name(name)}.png"
        old = old_level.get(name)
        unchanged = (
            same_reference
            and old is not None
            and set(old) == set(per_amp)
            and all(
                old[a].get("x") == e["x"]
                and old[a].get("y") == e["y"]
                and old[a].get("yerr") == e["yerr"]
                and (old[a].get("quality") or {}).get("status") == e["quality"]["status"]
                and old[a].get("plot") == relative
                for a, e in per_amp.items()
            )
            and (run_dir / relative).exists()
        )
        if unchanged:
            for entry in per_amp.values():
                entry["plot"] = relative
            continue
        me = _monitor_for(name, monitors)
        if me is None:
            continue
        refs = {a: references[(name, a)].to_plot() for a in per_amp if (name, a) in references}
        tasks.append((me, per_amp, run_dir / relative, f"run {document['run']}", refs))
        names.append(name)
    for name, (drawn, error) in zip(names, pool.map(_draw_run_plot, tasks), strict=True):
        if error is not None:
            log.warning("run plot of %s: %s", name, error)
        for entry in document["run_level"][name].values():
            entry["plot"] = f"me/run_{safe_name(name)}.png" if drawn else None


def _plot_old_problems(
    run_dir: Path,
    document: dict[str, Any],
    processed: set[str],
    monitors: Mapping[str, MonitorElement],
    references: Mapping[tuple[str, str], ReferenceStats],
    policy: str,
    pool: _Executor,
) -> None:
    """Plots of images added earlier whose entries became problems (e.g. with a new reference run)."""
    tasks, entries = [], []
    for stem, image in document["images"].items():
        if stem in processed:
            continue
        for name, per_amp in image.get("me", {}).items():
            me = _monitor_for(name, monitors)
            if me is None or me.kind == "image":
                continue
            for key, entry in per_amp.items():
                if entry.get("plot") or not _wants_plot(me, entry["quality"]["status"], policy, False):
                    continue
                ref = references.get((name, key))
                relative = f"me/{safe_name(stem)}_{safe_name(name)}_{safe_name(key)}.png"
                label = f"{stem}, amplifier {key}"
                tasks.append((me, entry, run_dir / relative, label, ref.to_plot() if ref else None))
                entries.append((entry, relative))
    for (entry, relative), (drawn, _) in zip(entries, pool.map(_draw_image_plot, tasks), strict=True):
        entry["plot"] = relative if drawn else None


def _write_run_mask(
    run_dir: Path, document: dict[str, Any], monitors: Mapping[str, MonitorElement]
) -> dict[str, float]:
    """Rebuild ``mask_runNNN.fits`` from the per-image masks; return the masked fraction per amplifier."""
    from astropy.io import fits

    defects_me = next((monitors[n] for n in _DEFECTS if n in monitors), None)
    kind = "defects" if defects_me is not None else "clusters"
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    geometries: dict[str, AmplifierGeometry] = {}
    for stem in _order(document["images"]):
        path = run_dir / "recon" / f"{stem}.dqm_masks.npz"
        if not path.exists():
            continue
        found, masks = _load_masks(path)
        for key, mask in masks.items():
            what, amp = key.split("/", 1)
            if what != kind:
                continue
            if amp in sums and sums[amp].shape != mask.shape:
                log.warning(
                    "%s: amplifier %s has another size than in the other images; left out of the mask", stem, amp
                )
                continue
            geometries.setdefault(amp, found[amp])
            rows, cols = found[amp].region("active")
            in_active = np.zeros(mask.shape, dtype=bool)
            in_active[rows, cols] = mask[rows, cols]
            sums[amp] = sums.get(amp, 0) + in_active
            counts[amp] = counts.get(amp, 0) + 1
    if not sums:
        return {}
    run = int(document["run"])
    header = fits.Header()
    header["RUN"] = (run, "run number")
    header["NFILES"] = (max(counts.values()), "images in the mask")
    header["MASKTYPE"] = (kind, "defects (MEDefectsMask) or clusters")
    if defects_me is not None:
        header["FPIX"] = (defects_me.hot_pixel_fraction, "hot pixel: fraction of images above")
        header["FPPROW"] = (defects_me.hot_rows_fraction, "hot row: fraction of hot columns above")
        header["FPPCOL"] = (defects_me.hot_cols_fraction, "hot column: fraction of hot rows above")
    hdul = fits.HDUList([fits.PrimaryHDU(header=header)])
    fractions = {}
    for amp, total in sums.items():
        geometry = geometries[amp]
        frequency = total / counts[amp]
        mask = defects_me.run_mask(frequency, geometry) if defects_me is not None else frequency > 0
        rows, cols = geometry.region("active")
        fractions[amp] = float(mask[rows, cols].mean())
        for label, data, dtype in (("MASK", mask, np.uint8), ("FREQ", frequency, np.float32)):
            hdu = fits.ImageHDU(geometry.to_file_layout(data).astype(dtype), name=f"{label}_{amp}"[:68])
            hdu.header["AMP"] = (amp, "amplifier")
            hdu.header["NIMAGES"] = (counts[amp], "images")
            hdul.append(hdu)
    with atomic_path(run_dir / f"mask_run{run:03d}.fits") as tmp:
        hdul.writeto(tmp)
    return fractions


def _report(run_dir: Path, document: dict[str, Any], store: Any, pdf: bool) -> str:
    try:
        module = importlib.import_module("waders.dqm.report")
    except ModuleNotFoundError as err:
        if err.name not in ("waders.dqm.report",):
            raise
        log.info("no report builder installed (waders.dqm.report); report/ not written")
        return "unavailable"
    build = getattr(module, "build_report", None)
    if build is None:
        log.warning("waders.dqm.report has no build_report(); report/ not written")
        return "unavailable"
    kwargs = {"pdf": pdf} if "pdf" in inspect.signature(build).parameters else {}
    try:
        build(run_dir, document, store, **kwargs)
    except WadersError as err:
        return f"report: {err.one_line()}"
    except Exception as err:  # the run summary is written: a broken report must not hide it
        log.debug("report failed", exc_info=True)
        return f"report: internal error {type(err).__name__}: {' '.join(str(err).split())}"
    return "written"


class _RunLock:
    """Serialise updates of one run directory between processes (``runNNN/.dqm.lock``, advisory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    def __enter__(self) -> _RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        self.handle = open(self.path, "a")  # held until __exit__
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


class _RunLog:
    """Copy the waders log records of a run into ``logs/dqm_runNNN.log`` (INFO and above)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _RunLog:
        self.logger = logging.getLogger("waders")
        self.handler = logging.FileHandler(self.path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self.level = self.logger.level
        self.others = [(h, h.level) for h in self.logger.handlers]
        if self.level == logging.NOTSET or self.level > logging.INFO:
            shown = self.level if self.level != logging.NOTSET else logging.WARNING
            for handler, level in self.others:
                handler.setLevel(max(level, shown))
            self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        self.logger.setLevel(self.level)
        for handler, level in self.others:
            handler.setLevel(level)


def _check_against_first(analysis: Config, path: Path) -> None:
    """Stop before any processing when the configuration does not fit the run's files (checked on the first)."""
    from waders.ana.runner import check_config_against

    try:
        check_config_against(analysis, path)
    except ConfigError:
        raise
    except WadersError:
        pass  # an unreadable file is reported with the others, as a failed input


#: Largest run number: the store keeps run numbers as 64-bit integers.
MAX_RUN = 2**63 - 1


def monitor_run(
    inputs: Sequence[str | Path],
    run: int,
    config: Config | Mapping[str, Any] | str | Path | None = None,
    me_config: Config | Mapping[str, Any] | str | Path | None = None,
    output_dir: str | Path = ".",
    store_uri: str | Path | None = None,
    reference_run: int | None = None,
    *,
    tag: str | None = None,
    pdf: bool = False,
    image_hr: Sequence[str] = (),
    image_plots: str = "problems",
    skip: Sequence[str] = (),
    me_overrides: Sequence[str] = (),
    products: Sequence[str] = DEFAULT_PRODUCTS,
    plots: bool = True,
    report: bool = True,
    seed: int = 0,
    executor: str = "serial",
    workers: int = 1,
    scheduler: str | None = None,
    files_per_task: int | None = None,
    progress: Callable[[Path, str | None], None] | None = None,
) -> RunResult:
    """Monitor (part of) a run; see the module docstring.

    Parameters
    ----------
    inputs : sequence of str or Path
        FITS files or glob patterns.
    run : int
        Run number.
    config : Config, mapping or path, optional
        Analysis configuration (default: waders ana's default analysis).
    me_config : Config, mapping or path, optional
        Monitor-element configuration (pysimdamicm's ``dqmSKImg`` layout accepted; default
        :data:`DEFAULT_MONITORS`).
    output_dir : path
        DQM output root; the run goes into ``output_dir/runNNN``.
    store_uri : str or Path, optional
        Store (default ``output_dir/dqm.sqlite``; ``mongodb://...`` for MongoDB).
    reference_run : int, optional
        Run to compare with (default: the run's previous reference, if any).
    tag : str, optional
        Run tag (kept from earlier updates when not given).
    pdf : bool
        Passed to the report builder (a PDF report too, when it supports it).
    image_hr : sequence of str
        File-name patterns of images plotted in full (every ME).
    image_plots : {"none", "problems", "all"}
        Per-image plots: none, those of failing or warning MEs (and image MEs), or all.
    skip : sequence of str
        Leave out inputs whose name contains one of these (a ``.txt`` file lists more).
    me_overrides : sequence of str
        ``ME.PARAM=VALUE`` overrides of the ME configuration.
    products : sequence of str
        Image products written into ``avgimg/<stem>_waders.fits``.
    plots : bool
        Draw plots at all (False: ``plot`` is null everywhere, for quick checks).
    report : bool
        Build the report (when the report module is installed).
    seed : int
        Seed of the analysis' random streams.
    executor, workers, scheduler
        Where the images are analysed (see :func:`waders.core.executors.run_tasks`).
    files_per_task : int, optional
        Images per task (default: about four tasks per worker; one when serial).
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
    if image_plots not in IMAGE_PLOTS:
        raise ConfigError(f"image_plots must be one of {', '.join(IMAGE_PLOTS)}, got {image_plots!r}")
    run = int(run)
    if run < 0:
        raise ConfigError(f"run number must not be negative, got {run}")
    for label, number in (("run", run), ("reference run", reference_run)):
        if number is not None and not 0 <= int(number) <= MAX_RUN:
            raise ConfigError(f"{label} number {number} is out of range", hint=f"use 0 to {MAX_RUN}")
    monitors = load_monitors(me_config, me_overrides)
    by_name = {me.name: me for me in monitors}
    analysis = analysis_for(_load(config, "analysis", _default_analysis()), monitors)
    paths, unmatched = _expand(inputs, skip)
    if not paths:
        detail = f" (no file matches {', '.join(unmatched)})" if unmatched else ""
        raise InputFileError(f"no input files{detail}", hint="give FITS files or quoted glob patterns")
    from waders.ana.runner import refuse_colliding_stems

    refuse_colliding_stems(paths)
    _check_against_first(analysis, paths[0])
    output_dir = Path(output_dir)
    run_dir = run_directory(output_dir, run)
    for sub in ("avgimg", "recon", "logs", "me", "report"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    from .store import open_store

    result = RunResult(run_dir=run_dir, document={}, unmatched=unmatched)
    with (
        _RunLock(run_dir / ".dqm.lock"),
        _RunLog(run_dir / "logs" / f"dqm_run{run:03d}.log"),
        open_store(store_uri, output_dir) as store,
    ):
        previous = _read_document(summary_path(run_dir, run)) or store.get_run(run)
        if reference_run is None and previous is not None:
            reference_run = previous.get("reference_run")
        if reference_run is not None and int(reference_run) == run:
            raise ConfigError(f"run {run} cannot be its own reference", hint="use --ref with another run")
        reference = _reference(store, output_dir, reference_run)
        references = reference_stats(reference, by_name)
        log.info(
            "DQM run %d: %d input(s), %d monitor element(s), reference run %s",
            run,
            len(paths),
            len(monitors),
            reference_run,
        )
        old_images = (previous or {}).get("images") or {}
        tasks = []
        from waders.ana.runner import output_stem

        for position, path in enumerate(paths):
            tasks.append(
                _ImageTask(
                    path=path,
                    position=position,
                    run=run,
                    analysis=analysis,
                    monitors=monitors,
                    run_dir=run_dir,
                    references=references,
                    previous=old_images.get(output_stem(path)),
                    image_plots=image_plots if plots else "none",
                    full_plots=plots and any(fnmatch(path.name, p) or fnmatch(str(path), p) for p in image_hr),
                    seed=seed,
                    products=tuple(products),
                )
            )
        timings["setup"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        pool = _Executor(executor, workers, scheduler)
        if executor != "serial":
            _preload_plotting()
        per_task = (
            1 if executor == "serial" else files_per_task or max(1, math.ceil(len(tasks) / (4 * max(1, workers))))
        )
        batches = [tasks[i : i + per_task] for i in range(0, len(tasks), per_task)]
        outcomes = []
        # the bar (on a terminal only) advances as each batch finishes, also with --executor processes
        with progress_bar(total=len(tasks), desc=f"run {run}", unit="image", enabled=len(tasks) > 1) as bar:
            results = pool.map(_image_batch, batches, done=lambda index, _error: bar.update(len(batches[index])))
        for batch, (values, error) in zip(batches, results, strict=True):
            for task, outcome in zip(batch, values if error is None else [(None, error)] * len(batch), strict=True):
                outcomes.append(outcome)
                if progress is not None:
                    progress(task.path, outcome[1])
        timings["images"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        document: dict[str, Any] = {
            "run": run,
            "tag": tag if tag is not None else (previous or {}).get("tag", ""),
            "updated": _now(),
            "reference_run": int(reference_run) if reference_run is not None else None,
            "status": "pass",
            "amplifiers": list((previous or {}).get("amplifiers") or []),
            "images": dict(old_images),
            "failed_inputs": dict((previous or {}).get("failed_inputs") or {}),
            "run_level": {},
            "masked_fraction": {},
        }
        processed: set[str] = set()
        for task, (value, error) in zip(tasks, outcomes, strict=True):
            if error is not None:
                result.failures[str(task.path)] = error
                document["failed_inputs"][output_stem(task.path)] = {"file": str(task.path), "error": error}
                document["images"].pop(output_stem(task.path), None)  # its earlier entry is no longer the file
                log.info("failed: %s", error)  # into the run log; the caller reports it on stderr
                continue
            stem = value["stem"]
            document["failed_inputs"].pop(stem, None)
            if stem in processed:
                log.warning(
                    "%s: another input of this call has the same stem %s; the last one is kept", task.path, stem
                )
            processed.add(stem)
            document["images"][stem] = value["entry"]
            document["amplifiers"] += [a for a in value["amplifiers"] if a not in document["amplifiers"]]
        document["images"] = {stem: document["images"][stem] for stem in _order(document["images"])}
        document["run_level"] = build_run_level(document, monitors)
        compare(document, reference, by_name)
        if plots:
            _plot_old_problems(run_dir, document, processed, by_name, references, image_plots, pool)
            _plot_run_level(run_dir, document, previous, by_name, references, pool)
        document["masked_fraction"] = _write_run_mask(run_dir, document, by_name)
        with atomic_path(summary_path(run_dir, run)) as tmp:
            tmp.write_text(json.dumps(document, separators=(",", ":"), allow_nan=False))
        store.put_run(document)
        timings["run"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        result.document = document
        result.report = _report(run_dir, document, store, pdf) if report else None
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
