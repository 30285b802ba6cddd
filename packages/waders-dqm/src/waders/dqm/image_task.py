"""One image of a run (a task, also in a worker process): analyse it, evaluate and test its MEs, draw its plots."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.config import Config
from waders.core.errors import ConfigError, WadersError, failure_message
from waders.core.image import SkipperImage

from .analysis import analyse_image
from .masks import DEFECTS, masks_path, save_masks
from .monitor import MonitorElement, NotApplicable, empty_entry
from .quality import ReferenceStats, image_entry_quality
from .run_plots import image_plot_path, same_data, wants_plot
from .status import worst

__all__ = ["ImageTask", "evaluate_monitors", "image_batch", "image_task"]

log = logging.getLogger(__name__)


@dataclass
class ImageTask:
    """Everything one image task needs (picklable: sent to worker processes).

    Attributes
    ----------
    path : Path
        The FITS file.
    position : int
        Its index among the call's inputs (its random stream).
    run : int
        Run number.
    analysis : Config
        The analysis configuration with the processes the MEs need.
    monitors : list of MonitorElement
        The active MEs.
    run_dir : Path
        ``OUTDIR/runNNN``.
    references : dict
        (ME, amplifier) -> statistics of the reference run.
    previous : dict, optional
        The image's entry from an earlier update of the run (its unchanged plots are kept).
    image_plots : {"none", "problems", "all"}
        Plot policy.
    full_plots : bool
        Plot every ME of this image (``--image-hr``).
    seed : int
        Seed of the analysis' random streams.
    products : tuple of str
        Image products written into ``avgimg/<stem>_waders.fits``.
    """

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


def _save_products(path: Path, image: SkipperImage, products: Sequence[str]) -> None:
    from waders.io.fits import write_processed

    present = [p for p in products if all(a.has(p) for a in image.amplifiers.values())]
    if present:
        from astropy.io.fits.verify import VerifyWarning

        with warnings.catch_warnings():  # long comments of HIERARCH cards (amplifier names > 1 letter) are cut
            warnings.simplefilter("ignore", VerifyWarning)
            write_processed(path, image, present, extra_cards={"DQMRUN": (image.meta.get("run"), "DQM run")})


def _plot(task: ImageTask, me: MonitorElement, entry: dict[str, Any], result: Any, stem: str, key: str) -> str | None:
    """The plot of one ME entry (relative path), kept from the earlier update when its data did not change."""
    relative = image_plot_path(stem, me.name, key)
    old = ((task.previous or {}).get("me") or {}).get(me.name, {}).get(key)
    if me.kind != "image" and same_data(entry, old) and old.get("plot") and (task.run_dir / old["plot"]).exists():
        return old["plot"]
    ref = task.references.get((me.name, key))
    drawn = me.plot(
        entry,
        task.run_dir / relative,
        label=f"{stem}, amplifier {key}",
        reference=ref.to_plot() if ref is not None else None,
        image=result.image if result is not None else None,
    )
    return relative if drawn is not None else None


def evaluate_monitors(
    task: ImageTask, image: SkipperImage, summary: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Evaluate, test and plot every ME on the analysed image and its summary document.

    Return the ME entries (ME -> amplifier or ``"image"`` -> entry) and the masks
    (``defects/<amp>``, ``clusters/<amp>``).
    """
    stem = image.meta["stem"]
    ccd = image.meta.get("ccd")
    me_entries: dict[str, dict[str, Any]] = {}
    masks: dict[str, np.ndarray] = {}
    for me in task.monitors:
        targets = list(image.amplifiers.values()) if me.per_amplifier else [None]
        per_amp: dict[str, Any] = {}
        for amplifier in targets:
            key = amplifier.name if amplifier is not None else "image"
            entry, result = _evaluate(me, image, summary, amplifier)
            entry["quality"] = image_entry_quality(me, entry, key, ccd, task.references.get((me.name, key)))
            if result is not None and me.name in DEFECTS and "candidates" in result.extra:
                masks[f"defects/{key}"] = result.extra["candidates"]
            if wants_plot(me, entry["quality"]["status"], task.image_plots, task.full_plots):
                entry["plot"] = _plot(task, me, entry, result, stem, key)
            per_amp[key] = entry
        me_entries[me.name] = per_amp
    for name, amp in image.amplifiers.items():
        if amp.has("mask_clusters"):
            masks[f"clusters/{name}"] = np.asarray(amp.get("mask_clusters"), dtype=bool)
    return me_entries, masks


def image_task(task: ImageTask) -> dict[str, Any]:
    """Analyse one image, evaluate and test its MEs, draw its plots; return its summary entry.

    Returns
    -------
    dict
        ``stem``, ``entry`` (the image's entry of the run document), ``amplifiers`` and
        ``seconds`` (analysis and monitor elements, s).
    """
    started = time.perf_counter()
    image, summary = analyse_image(
        task.path,
        task.analysis,
        output_dir=task.run_dir / "recon",
        run=task.run,
        seed=task.seed,
        position=task.position,
    )
    analysed = time.perf_counter()
    stem = image.meta["stem"]
    me_entries, masks = evaluate_monitors(task, image, summary)
    save_masks(masks_path(task.run_dir, stem), masks, image)
    _save_products(task.run_dir / "avgimg" / f"{stem}_waders.fits", image, task.products)
    statuses = [e["quality"]["status"] for per_amp in me_entries.values() for e in per_amp.values()]
    start = image.meta.get("exposure_start")
    entry = {
        "file": str(task.path),
        "image": image.meta.get("image"),
        "ccd": image.meta.get("ccd"),
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


def image_batch(batch: list[ImageTask]) -> list[tuple[Any, str | None]]:
    """Several images in one task; a failing image does not stop the others."""
    out: list[tuple[Any, str | None]] = []
    for task in batch:
        try:
            out.append((image_task(task), None))
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as err:  # a bug must not lose the rest of the run
            if not isinstance(err, WadersError | OSError):
                log.debug("%s: internal error", task.path, exc_info=True)
            out.append((None, failure_message(err, task.path)))
    return out
