"""Plots of waders-ana: one style, titled with the input and amplifier, axes with units.

Processes draw only when asked (``save_plots``, set for all by ``waders ana
--save-plots``) and keep their figures in the run context (:func:`keep_figure`); they write
no file.  The figure sink of :mod:`waders.ana.sinks` writes them under ``<output_dir>/plots/``
(:func:`plot_path`), :func:`waders.ana.analyse` returns them.  Images use a robust colour
scale (percentiles), so a few bright pixels do not hide the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.image import Amplifier, SkipperImage
from waders.core.paths import safe_name
from waders.core.pipeline import RunContext

__all__ = [
    "figure",
    "figure_name",
    "figure_title",
    "image_stem",
    "image_view",
    "keep_figure",
    "new_figure",
    "plot_path",
    "save_figure",
    "wants_plots",
]

STYLE = {
    "figure.figsize": (7.0, 4.5),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "savefig.bbox": "tight",
}


def wants_plots(process: Any, context: RunContext | None) -> bool:
    """True if a process should draw: its ``save_plots`` is set (and it runs in a context)."""
    return bool(getattr(process, "save_plots", False) and context is not None)


def figure_name(what: str, amplifier: Amplifier | None = None) -> str:
    """Name of a figure within its process: ``<what>[_<amp>]`` (``<amp>`` alone when ``what`` is empty)."""
    parts = [safe_name(what)] if what else []
    if amplifier is not None:
        parts.append(safe_name(amplifier.name))
    return "_".join(parts) or "figure"


def keep_figure(context: RunContext, process: str, what: str, amplifier: Amplifier | None, fig: Any) -> None:
    """Put a drawn figure into the run context (``context.figures[process][figure_name(what, amplifier)]``)."""
    context.add_figure(process, figure_name(what, amplifier), fig)


def image_stem(image: SkipperImage) -> str:
    """File-name stem of an image's outputs (``meta["stem"]``, else the source name up to its first dot)."""
    return str(image.meta.get("stem") or (image.source.name.split(".")[0] if image.source else "image"))


def plot_path(directory: Path, stem: str, process: str, name: str, fmt: str = "png") -> Path:
    """``<directory>/plots/<stem>_<process>_<name>.<format>`` (the directory is created)."""
    plots = Path(directory) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    return plots / f"{safe_name(stem)}_{safe_name(process)}_{name}.{fmt}"


def new_figure(
    title: str, *, ncols: int = 1, nrows: int = 1, size: tuple[float, float] | None = None
) -> tuple[Any, Any]:
    """A :class:`matplotlib.figure.Figure` in the waders style and its axes, titled ``title``.

    The figure is not registered with pyplot: nothing is shown or kept open unless the
    caller does so (a notebook displays a returned figure inline).
    """
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size or STYLE["figure.figsize"], dpi=STYLE["figure.dpi"])
        axes = fig.subplots(nrows, ncols, squeeze=True)
        fig.suptitle(title, fontsize=10)
    return fig, axes


def figure_title(image: SkipperImage, process: str, amplifier: Amplifier | None = None) -> str:
    """``<image>, amplifier <A>: <process>``, the title of every waders-ana plot."""
    amp = f", amplifier {amplifier.name}" if amplifier is not None else ""
    return f"{image.label}{amp}: {process}"


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` atomically to ``path`` (format from the suffix, tight bounding box)."""
    from waders.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), bbox_inches="tight")
    return path


@contextlib.contextmanager
def figure(
    context: RunContext,
    image: SkipperImage,
    process: str,
    what: str,
    amplifier: Amplifier | None = None,
    *,
    ncols: int = 1,
    nrows: int = 1,
    size: tuple[float, float] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Create a figure (:func:`new_figure`), yield ``(fig, axes)``, then keep it in the run context."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig, axes = new_figure(figure_title(image, process, amplifier), ncols=ncols, nrows=nrows, size=size)
        yield fig, axes
    keep_figure(context, process, what, amplifier, fig)


def image_view(ax: Any, data: np.ndarray, *, label: str, percentiles: tuple[float, float] = (1, 99)) -> Any:
    """Draw an image with a robust colour scale and a labelled colour bar."""
    finite = data[np.isfinite(data)]
    lo, hi = np.percentile(finite, percentiles) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    shown = ax.imshow(data, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="viridis", interpolation="nearest")
    ax.set_xlabel("column (readout order)")
    ax.set_ylabel("row")
    ax.grid(False)
    ax.figure.colorbar(shown, ax=ax, label=label)
    return shown
