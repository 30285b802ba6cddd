"""Plots of monitor elements: one image's result, and the evolution over a run.

Figures are drawn with :class:`matplotlib.figure.Figure` (no pyplot state, safe in worker
processes) and written atomically as PNG.  A reference run, when there is one, is drawn
in grey: its mean profile or histogram, or its mean +/- spread band on run plots; the
valid range of the quality test as red dashed lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .status import worst

if TYPE_CHECKING:
    from .monitor import MonitorElement

__all__ = ["plot_entry", "plot_run"]

_DPI = 80
_SIZE = (7.0, 4.0)
_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")
_STATUS_COLOUR = {"pass": "tab:green", "warn": "tab:orange", "fail": "tab:red"}


def _array(values: Any) -> np.ndarray | None:
    if values is None:
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _figure(size: tuple[float, float] = _SIZE) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=_DPI)


def _save(fig: Any, path: Path) -> Path:
    from waders.io.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _label_axis(ax: Any, me: MonitorElement, xlabel: str | None = None) -> None:
    ax.set_xlabel(xlabel or me.xlabel)
    unit = f" ({me.unit})" if me.unit and me.unit not in me.ylabel else ""
    ax.set_ylabel(f"{me.ylabel}{unit}")
    ax.grid(True, alpha=0.3)


def _range_lines(ax: Any, bounds: tuple[float | None, float | None] | None, horizontal: bool = True) -> None:
    if bounds is None:
        return
    for bound in bounds:
        if bound is not None:
            (ax.axhline if horizontal else ax.axvline)(bound, color="tab:red", ls="--", lw=0.8)


def _title(ax: Any, me: MonitorElement, label: str, quality: Mapping[str, Any] | None) -> None:
    status = (quality or {}).get("status", "none")
    colour = _STATUS_COLOUR.get(status, "black")
    suffix = f" [{status}]" if status in _STATUS_COLOUR else ""
    ax.set_title(f"{label}: {me.title or me.name}{suffix}", fontsize=9, color=colour)


def plot_entry(
    me: MonitorElement,
    entry: Mapping[str, Any],
    path: Path,
    *,
    label: str,
    reference: Mapping[str, Any] | None = None,
    image: np.ndarray | None = None,
) -> Path | None:
    """Draw one image's ME entry (see :meth:`MonitorElement.plot`)."""
    if me.kind == "image":
        return _plot_image(me, image, path, label) if image is not None else None
    x, y = _array(entry.get("x")), _array(entry.get("y"))
    if x is None or y is None:
        return None
    fig = _figure()
    ax = fig.subplots()
    amplifier = label.rsplit(" ", 1)[-1]
    if me.kind == "distribution":
        _plot_histogram(ax, x, y, reference, _array(entry.get("yfit")))
        _label_axis(ax, me, me.xlabel)
        ax.set_ylabel("pixels per bin")
        _range_lines(ax, me.valid_range(amplifier), horizontal=False)
    else:
        yerr = _array(entry.get("yerr")) if me.plot_with_yerrors else None
        if reference is not None and reference.get("y") is not None and len(reference["y"]) == len(y):
            ax.plot(reference["x"], reference["y"], color="0.6", lw=1.2, label=f"reference run {reference.get('run')}")
        ax.errorbar(x, y, yerr=yerr, fmt=".", ms=3, lw=0.6, color="k", label="this image")
        yfit = _array(entry.get("yfit"))
        if yfit is not None:
            ax.plot(x, yfit, color="tab:blue", lw=1.0, label="fit")
        _label_axis(ax, me)
        _range_lines(ax, me.valid_range(amplifier))
        if reference is not None or yfit is not None:
            ax.legend(fontsize=7)
    _title(ax, me, label, entry.get("quality"))
    return _save(fig, path)


def _plot_histogram(
    ax: Any, x: np.ndarray, y: np.ndarray, reference: Mapping[str, Any] | None, yfit: np.ndarray | None = None
) -> None:
    width = float(np.median(np.diff(x))) if x.size > 1 else 1.0
    edges = np.append(x - width / 2, x[-1] + width / 2)
    ax.stairs(np.nan_to_num(y), edges, color="k", label="this image")
    if yfit is not None and np.isfinite(yfit).any():
        ax.plot(x, yfit, color="tab:red", lw=1.0, label="fit")
        ax.legend(fontsize=7)
    ref_y = None if reference is None else reference.get("y")
    if ref_y is not None and len(ref_y) == len(y) and np.nansum(ref_y) > 0:
        scaled = np.nan_to_num(np.asarray(ref_y, dtype=np.float64)) * np.nansum(y) / np.nansum(ref_y)
        ax.stairs(scaled, edges, color="0.6", label=f"reference run {reference.get('run')} (scaled)")
        ax.legend(fontsize=7)
    if np.nanmax(y, initial=0) > 0:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)


def _plot_image(me: MonitorElement, image: np.ndarray, path: Path, label: str) -> Path:
    fig = _figure((7.0, 4.5))
    ax = fig.subplots()
    finite = image[np.isfinite(image)]
    limits = getattr(me, "colour_range", None)
    if limits is not None:
        lo, hi = limits
    elif finite.size:
        lo, hi = np.percentile(finite, (1, 99))
    else:
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    shown = ax.imshow(image, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap=me.colour_map, interpolation="none")
    fig.colorbar(shown, ax=ax, label=f"{me.ylabel} ({me.unit})" if me.unit else me.ylabel)
    ax.set_xlabel("column (readout order)")
    ax.set_ylabel("row")
    ax.set_title(f"{label}: {me.title or me.name}", fontsize=9)
    return _save(fig, path)


def plot_run(
    me: MonitorElement,
    per_amplifier: Mapping[str, Mapping[str, Any]],
    path: Path,
    *,
    label: str,
    references: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> Path | None:
    """Draw the evolution of an ME over the images of a run, one series per amplifier.

    Parameters
    ----------
    me : MonitorElement
        The ME (labels, unit, valid range, error-bar option).
    per_amplifier : mapping
        Run-level entries by amplifier (``x`` image numbers, ``y`` values, ``yerr``).
    path : Path
        Output PNG.
    label : str
        Run label for the title.
    references : mapping, optional
        Reference statistics by amplifier (mean and spread are drawn as a band).
    """
    fig = _figure((8.0, 4.0))
    ax = fig.subplots()
    drawn = False
    statuses = []
    for i, (amp, entry) in enumerate(per_amplifier.items()):
        x, y = _array(entry.get("x")), _array(entry.get("y"))
        if x is None or y is None or not np.isfinite(y).any():
            continue
        yerr = _array(entry.get("yerr")) if me.plot_with_yerrors else None
        shown = ax.errorbar(
            x, y, yerr=yerr, fmt=_MARKERS[i % len(_MARKERS)], ms=4, lw=0.6, alpha=0.8, label=f"amplifier {amp}"
        )
        ref = (references or {}).get(amp)
        if ref is not None and ref.get("mean") is not None:
            colour = shown.lines[0].get_color()
            spread = ref.get("spread") or 0.0
            ax.axhspan(ref["mean"] - spread, ref["mean"] + spread, color=colour, alpha=0.12, lw=0)
            ax.axhline(ref["mean"], color=colour, lw=0.8, ls=":")
        statuses.append((entry.get("quality") or {}).get("status", "none"))
        drawn = True
    if not drawn:
        return None
    first_amp = next(iter(per_amplifier))
    _range_lines(ax, me.valid_range(first_amp))
    _label_axis(ax, me, "image")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, ncol=min(4, len(per_amplifier)))
    _title(ax, me, label, {"status": worst(statuses)})
    return _save(fig, path)
