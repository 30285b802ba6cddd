"""A PNG grid of images or amplifiers (pysimdamicm's ``drawImageGrid``, reference E.5).

Every panel shows one 2-D array (an image, an amplifier, a zoom) with its own colour bar;
zooms of at most ``annotate_max`` pixels per side have every pixel value written in its
cell, as pysimdamicm's pixel-grid drawings.  The figure has a fixed size per panel and no
tight bounding box, so the PNG is exactly ``ncols x panel_width`` by ``nrows x
panel_height`` pixels: the number of panels can be checked from the file.

Deliberate differences from pysimdamicm: one PNG with all panels instead of one window per
image half (``--display`` is gone: open the PNG); the transpose, range and colour-map
options are kept (``transpose``, ``vrange``, ``cmap``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waders.core.errors import ConfigError, DataError

__all__ = ["GridInfo", "draw_image_grid", "grid_shape"]


@dataclass(frozen=True)
class GridInfo:
    """What :func:`draw_image_grid` wrote.

    Attributes
    ----------
    path : Path
        The PNG file.
    n_panels, nrows, ncols : int
        Panels and their arrangement.
    width, height : int
        Size of the PNG (pixels).
    """

    path: Path
    n_panels: int
    nrows: int
    ncols: int
    width: int
    height: int


def grid_shape(n_panels: int, ncols: int | None = None) -> tuple[int, int]:
    """Rows and columns of a grid of ``n_panels`` (default: as square as possible)."""
    if n_panels < 1:
        raise DataError("image grid: no panel to draw", hint="give at least one image or extension")
    if ncols is None:
        ncols = math.ceil(math.sqrt(n_panels))
    if ncols < 1:
        raise ConfigError(f"image grid: ncols must be >= 1, got {ncols}")
    ncols = min(ncols, n_panels)
    return math.ceil(n_panels / ncols), ncols


def draw_image_grid(
    panels: Sequence[tuple[str, np.ndarray]],
    path: str | Path,
    *,
    ncols: int | None = None,
    vrange: tuple[float, float] | None = None,
    cmap: str = "viridis",
    transpose: bool = False,
    annotate_max: int = 25,
    panel_size: tuple[float, float] = (4.0, 3.0),
    dpi: int = 100,
) -> GridInfo:
    """Draw the panels on a grid and write a PNG atomically.

    Parameters
    ----------
    panels : sequence of (str, ndarray)
        Title and 2-D array of every panel.
    path : path
        Output PNG.
    ncols : int, optional
        Panels per row (default: as square as possible).
    vrange : (float, float), optional
        Colour range of every panel (default: the 1st to 99th percentile of each).
    cmap : str
        Matplotlib colour map.
    transpose : bool
        Draw the transposed arrays (pysimdamicm's ``-T``).
    annotate_max : int
        Write pixel values in panels of at most this many pixels per side (0: never).
    panel_size : (float, float)
        Size of a panel (inches).
    dpi : int
        Resolution (pixels per inch).

    Returns
    -------
    GridInfo
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from waders.io.atomic import atomic_path

    if cmap not in colormaps:
        raise ConfigError(f"image grid: unknown colour map {cmap!r}", hint="use a matplotlib name such as viridis")
    arrays = []
    for title, data in panels:
        array = np.asarray(data, dtype=np.float64)
        if array.ndim != 2 or array.size == 0:
            raise DataError(f"image grid: panel {title!r} is not a non-empty 2-D image (shape {array.shape})")
        arrays.append((title, array.T if transpose else array))
    nrows, ncols = grid_shape(len(arrays), ncols)
    fig = Figure(figsize=(ncols * panel_size[0], nrows * panel_size[1]), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (title, array) in zip(axes.flat, arrays, strict=False):
        finite = array[np.isfinite(array)]
        if vrange is not None:
            vmin, vmax = vrange
        elif finite.size:
            vmin, vmax = np.percentile(finite, [1, 99])
        else:
            vmin, vmax = 0.0, 1.0
        if vmax <= vmin:
            vmax = vmin + 1.0
        shown = ax.imshow(
            array, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        fig.colorbar(shown, ax=ax)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("column", fontsize=7)
        ax.set_ylabel("row", fontsize=7)
        if 0 < max(array.shape) <= annotate_max:
            rows, cols = np.indices(array.shape)
            for r, c, v in zip(rows.ravel(), cols.ravel(), array.ravel(), strict=True):
                ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=5, color="w")
    for ax in axes.flat[len(arrays) :]:
        ax.set_axis_off()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    width, height = (round(float(v)) for v in fig.get_size_inches() * dpi)
    return GridInfo(path, len(arrays), nrows, ncols, width, height)
