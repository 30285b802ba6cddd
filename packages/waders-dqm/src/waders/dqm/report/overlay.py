"""Reference-run overlays: each ME of the run drawn over the same ME of its reference run.

Scalar MEs (one value per image) are drawn against the image number with the reference
mean ± standard deviation as a band; curve MEs (x/y arrays per image) are drawn as one
line per image over the reference run's lines in grey.  The PNGs go to ``report/`` as
``overlay_<ME>_<amp>.png`` and are re-drawn only when the data change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.errors import WadersError
from waders.core.paths import safe_name

from .common import PlotCache, data_hash
from .view import MEView, RunView, run_dir_name

__all__ = ["load_reference", "make_overlays", "safe_name"]

log = logging.getLogger(__name__)


def load_reference(view: RunView, store: Any, run_dir: Path) -> Mapping[str, Any] | None:
    """The document of the run's reference run, or None.

    It comes from the store (``store.get_run``) if one is given, else from
    ``<outdir>/runRRR/summary_runRRR.json`` next to the run directory.
    """
    ref = view.reference_run
    if ref is None:
        return None
    if store is not None:
        try:
            document = store.get_run(ref)
        except (LookupError, WadersError) as err:
            log.warning("reference run %d is not in the store (%s): no reference overlay", ref, err)
            return None
        if not isinstance(document, Mapping):
            log.warning("reference run %d is not in the store: no reference overlay", ref)
            return None
        return document
    path = Path(run_dir).parent / run_dir_name(ref) / f"summary_{run_dir_name(ref)}.json"
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("reference run %d: cannot read %s: no reference overlay", ref, path)
        return None
    return document if isinstance(document, Mapping) else None


def _scalars(me: MEView) -> tuple[list[float], list[float], list[float]]:
    xs, ys, es = [], [], []
    for position, (row, entry) in enumerate(me.rows):
        value = entry.get("value")
        if value is None:
            continue
        xs.append(float(row.number if row.number is not None else position))
        ys.append(float(value))
        error = entry.get("error")
        es.append(float(error) if isinstance(error, int | float) else 0.0)
    return xs, ys, es


def _curves(me: MEView) -> list[tuple[int | None, list[Any], list[Any]]]:
    out = []
    for row, entry in me.rows:
        y = entry.get("y")
        if not isinstance(y, list) or not y:
            continue
        x = entry.get("x")
        if not isinstance(x, list) or len(x) != len(y):
            x = list(range(len(y)))
        out.append((row.number, x, y))
    return out


def _labels(me: MEView) -> tuple[str, str]:
    for _, entry in me.rows:
        if entry.get("xlabel") or entry.get("ylabel"):
            return str(entry.get("xlabel") or ""), str(entry.get("ylabel") or "")
    return "", ""


def _as_float(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _draw_scalars(fig: Any, me: MEView, ref: MEView, run: int, ref_run: int) -> None:
    ax = fig.add_subplot()
    rx, ry, re_ = _scalars(ref)
    x, y, e = _scalars(me)
    mean, std = float(np.mean(ry)), float(np.std(ry))
    ax.axhspan(mean - std, mean + std, color="0.85", label=f"reference run {ref_run}: mean ± std")
    ax.axhline(mean, color="0.5", lw=1)
    ax.errorbar(rx, ry, yerr=re_, fmt="s", ms=4, color="0.55", alpha=0.8, label=f"reference run {ref_run}")
    ax.errorbar(x, y, yerr=e, fmt="o", ms=5, color="C0", label=f"run {run}")
    ax.set_xlabel("image number")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"{me.name} [{me.unit}]" if me.unit else me.name)
    ax.set_title(f"{me.name}, amplifier {me.amplifier}: run {run} vs reference run {ref_run}")
    ax.legend(loc="best")


def _draw_curves(fig: Any, me: MEView, ref: MEView, run: int, ref_run: int) -> None:
    ax = fig.add_subplot()
    for i, (_, x, y) in enumerate(_curves(ref)):
        ax.plot(
            _as_float(x),
            _as_float(y),
            color="0.6",
            lw=1,
            alpha=0.7,
            label=f"reference run {ref_run}" if i == 0 else None,
        )
    import matplotlib

    curves = _curves(me)
    cmap = matplotlib.colormaps["viridis"]
    for i, (number, x, y) in enumerate(curves):
        colour = cmap(0.9 * i / max(len(curves) - 1, 1))
        label = f"run {run}, image {number}" if i in (0, len(curves) - 1) else None
        ax.plot(_as_float(x), _as_float(y), color=colour, lw=1.2, label=label)
    xlabel, ylabel = _labels(me)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or (f"{me.name} [{me.unit}]" if me.unit else me.name))
    ax.set_title(f"{me.name}, amplifier {me.amplifier}: run {run} vs reference run {ref_run}")
    ax.legend(loc="best")


def make_overlays(view: RunView, reference: Mapping[str, Any] | None, cache: PlotCache) -> dict[tuple[str, str], Path]:
    """Draw the reference overlay of every ME that the run and its reference run both have.

    Parameters
    ----------
    view : RunView
        The run.
    reference : Mapping or None
        The reference run's document (no overlays when None).
    cache : PlotCache
        The report directory's plot cache.

    Returns
    -------
    dict
        (ME name, amplifier) → path of the overlay PNG.
    """
    if reference is None:
        return {}
    try:
        ref_view = RunView(reference)
    except WadersError as err:
        log.warning("the reference run document is unusable (%s): no reference overlay", err)
        return {}
    ref_mes = {(me.name, me.amplifier): me for me in ref_view.mes}
    out: dict[tuple[str, str], Path] = {}
    for me in view.mes:
        ref = ref_mes.get((me.name, me.amplifier))
        if ref is None:
            continue
        name = f"overlay_{safe_name(me.name)}_{safe_name(me.amplifier)}.png"
        if me.has_values and ref.has_values:
            key = data_hash(
                "scalars", view.run, ref_view.run, me.name, me.amplifier, me.unit, _scalars(me), _scalars(ref)
            )
            out[(me.name, me.amplifier)] = cache.render(
                name, key, lambda fig, me=me, ref=ref: _draw_scalars(fig, me, ref, view.run, ref_view.run)
            )
        elif me.has_curves and ref.has_curves:
            key = data_hash(
                "curves", view.run, ref_view.run, me.name, me.amplifier, _labels(me), _curves(me), _curves(ref)
            )
            out[(me.name, me.amplifier)] = cache.render(
                name, key, lambda fig, me=me, ref=ref: _draw_curves(fig, me, ref, view.run, ref_view.run)
            )
    return out
