"""Hot columns, rows and pixels: excess charge at fixed positions (pysimdamicm's ``find_hot_regions``).

A pixel "fires" when its charge ``q`` (e-) lies in the window ``qmin <= q < qmax``.  For a
stack of ``N`` images of the same shape (a single image is a stack of one):

**Columns (or rows).** ``n_c`` = fired pixels of column ``c`` summed over the stack and
``m_c`` = pixels of the column that are not masked.  The continuum density ``d(c)`` is a
polynomial of degree ``degree`` fitted to ``n_c / m_c`` with weights ``m_c / d``
(Poisson), iterated with the columns already flagged left out; the expected count is
``mu_c = d(c) m_c`` and the significance ``z_c = (n_c - mu_c) / sqrt(mu_c)``.  A column is
hot when ``z_c > nsigma``.  pysimdamicm fitted the column histogram with ROOT's ``pol2``
(``--fitfunc``) once; waders refits without the hot columns so that they do not pull the
continuum up.

**Pixels** (``N >= 2``).  ``k_p`` = images in which pixel ``p`` fired.  Outside the hot
columns and rows the firing probability ``f`` is the same for every pixel, estimated by
the mean firing fraction of the unflagged pixels; a pixel is hot when the binomial tail
``P(K >= k_p | N, f)`` is below the one-sided normal tail of ``nsigma``.  Single images
cannot separate a hot pixel from a particle: pixel search needs two images or more.

Masked pixels (``mask`` True = excluded, as everywhere in waders) count neither as fired
nor as available.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binom, norm

from waders.core.errors import ConfigError, DataError

__all__ = ["HotRegions", "LineExcess", "find_hot_regions", "hot_lines", "hot_pixels"]

_MAX_ITER = 20


@dataclass
class LineExcess:
    """Excess of fired pixels per column (``axis='col'``) or per row (``axis='row'``).

    Attributes
    ----------
    axis : str
        ``"col"`` or ``"row"``.
    counts : ndarray of int
        Fired pixels per line (summed over the stack).
    available : ndarray of int
        Unmasked pixels per line (summed over the stack).
    expected : ndarray
        Continuum expectation per line.
    significance : ndarray
        ``(counts - expected) / sqrt(expected)`` (NaN where nothing is available).
    hot : ndarray of int
        Indices of the hot lines (0-based).
    coefficients : ndarray
        Polynomial coefficients of the continuum density (highest degree first).
    """

    axis: str
    counts: np.ndarray
    available: np.ndarray
    expected: np.ndarray
    significance: np.ndarray
    hot: np.ndarray
    coefficients: np.ndarray


@dataclass
class HotRegions:
    """Everything :func:`find_hot_regions` found.

    Attributes
    ----------
    columns, rows : LineExcess
        Column and row excesses.
    pixels : ndarray of int, shape (n, 2)
        (row, column) of the hot pixels, 0-based.
    pixel_fraction : float
        Firing probability of an ordinary pixel (NaN with fewer than two images).
    n_images : int
        Images in the stack.
    qrange : (float, float)
        Charge window (e-).
    """

    columns: LineExcess
    rows: LineExcess
    pixels: np.ndarray
    pixel_fraction: float
    n_images: int
    qrange: tuple[float, float]
    notes: list[str] = field(default_factory=list)


def _stack(images: np.ndarray) -> np.ndarray:
    stack = np.asarray(images, dtype=np.float64)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.shape[1] < 2 or stack.shape[2] < 2:
        raise DataError(f"hot regions need 2-D images of at least 2x2 pixels (got shape {np.shape(images)})")
    return stack


def _fired(stack: np.ndarray, mask: np.ndarray | None, qrange: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = qrange
    if not hi > lo:
        raise ConfigError(
            f"hot regions: empty charge window {lo}..{hi}", hint="give --qrange QMIN QMAX with QMIN < QMAX"
        )
    valid = np.isfinite(stack)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != stack.shape[1:]:
            raise DataError(
                f"the mask has shape {mask.shape} but the images {stack.shape[1:]}",
                hint="give a mask of the same shape as the images",
            )
        valid &= ~mask[None]
    with np.errstate(invalid="ignore"):
        fired = valid & (stack >= lo) & (stack < hi)
    return fired, valid


def hot_lines(fired: np.ndarray, valid: np.ndarray, axis: str, nsigma: float, degree: int = 2) -> LineExcess:
    """Lines (columns or rows) with more fired pixels than the fitted continuum.

    Parameters
    ----------
    fired, valid : ndarray of bool, shape (N, rows, cols)
        Fired pixels and unmasked pixels of the stack.
    axis : {"col", "row"}
        Count per column or per row.
    nsigma : float
        Significance threshold.
    degree : int
        Degree of the continuum polynomial.

    Returns
    -------
    LineExcess
    """
    if axis not in ("col", "row"):
        raise ConfigError(f"hot regions: axis must be 'col' or 'row', got {axis!r}")
    sum_axes = (0, 1) if axis == "col" else (0, 2)
    counts = fired.sum(axis=sum_axes).astype(np.int64)
    available = valid.sum(axis=sum_axes).astype(np.int64)
    x = np.arange(counts.size, dtype=np.float64)
    scale = max(1.0, float(counts.size - 1))
    use = available > 0
    hot = np.zeros(counts.size, dtype=bool)
    coefficients = np.zeros(degree + 1)
    expected = np.zeros(counts.size)
    for _ in range(_MAX_ITER):
        fit = use & ~hot
        if fit.sum() <= degree:
            raise DataError(f"hot regions: too few {axis}s outside the hot ones to fit the continuum")
        density = counts[fit] / available[fit]
        mean_density = max(float(counts[fit].sum() / available[fit].sum()), 1e-12)
        weights = np.sqrt(available[fit] / mean_density)
        coefficients = np.polyfit(x[fit] / scale, density, degree, w=weights)
        expected = np.clip(np.polyval(coefficients, x / scale), 1e-12, None) * available
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(use, (counts - expected) / np.sqrt(expected), np.nan)
        new = use & (z > nsigma)
        if np.array_equal(new, hot):
            break
        hot = new
    return LineExcess(axis, counts, available, expected, z, np.flatnonzero(hot), coefficients)


def hot_pixels(
    fired: np.ndarray, valid: np.ndarray, nsigma: float, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Pixels that fire in more images than an ordinary pixel would (binomial test).

    Parameters
    ----------
    fired, valid : ndarray of bool, shape (N, rows, cols)
        Fired and unmasked pixels of the stack (N >= 2).
    nsigma : float
        One-sided significance of the binomial tail.
    exclude : ndarray of bool, shape (rows, cols), optional
        Pixels left out of the estimate of the ordinary firing probability (hot lines).

    Returns
    -------
    (ndarray of shape (n, 2), float)
        (row, column) of the hot pixels and the ordinary firing probability.
    """
    k = fired.sum(axis=0)
    n = valid.sum(axis=0)
    reference = n > 0 if exclude is None else (n > 0) & ~exclude
    if not reference.any():
        return np.zeros((0, 2), dtype=np.int64), float("nan")
    fraction = float(k[reference].sum() / n[reference].sum())
    fraction = min(max(fraction, 1e-12), 1 - 1e-12)
    tail = binom.sf(k - 1, n, fraction)
    hot = (n > 0) & (k > 0) & (tail < norm.sf(nsigma))
    if exclude is not None:
        hot &= ~exclude  # pixels of hot lines are reported with their line
    return np.argwhere(hot), fraction


def find_hot_regions(
    images: np.ndarray,
    *,
    qrange: tuple[float, float] = (0.77, 3.77),
    nsigma: float = 5.0,
    mask: np.ndarray | None = None,
    degree: int = 2,
) -> HotRegions:
    """Hot columns, rows and pixels of an image or a stack of images in electrons.

    Parameters
    ----------
    images : ndarray, shape (rows, cols) or (N, rows, cols)
        Pedestal-subtracted, calibrated images (e-).
    qrange : (float, float)
        Charge window of a fired pixel (e-), ``[qmin, qmax)``.
    nsigma : float
        Significance threshold of lines and pixels.
    mask : ndarray of bool, optional
        True = excluded pixel.
    degree : int
        Degree of the continuum polynomial of the lines.

    Returns
    -------
    HotRegions
    """
    if nsigma <= 0:
        raise ConfigError(f"hot regions: nsigma must be positive, got {nsigma}")
    stack = _stack(images)
    fired, valid = _fired(stack, mask, qrange)
    columns = hot_lines(fired, valid, "col", nsigma, degree)
    rows = hot_lines(fired, valid, "row", nsigma, degree)
    notes: list[str] = []
    if stack.shape[0] >= 2:
        lines = np.zeros(stack.shape[1:], dtype=bool)
        lines[:, columns.hot] = True
        lines[rows.hot, :] = True
        pixels, fraction = hot_pixels(fired, valid, nsigma, exclude=lines)
    else:
        pixels, fraction = np.zeros((0, 2), dtype=np.int64), float("nan")
        notes.append("one image: hot pixels need two images or more")
    return HotRegions(columns, rows, pixels, fraction, int(stack.shape[0]), (float(qrange[0]), float(qrange[1])), notes)
