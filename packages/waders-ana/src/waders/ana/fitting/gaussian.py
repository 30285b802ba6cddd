"""Many Gaussian fits at once: the pedestal of every row (or column, or skip) in one pass.

pysimdamicm fitted each row with a separate ROOT fit filled value by value.  Here all
groups are fitted together: values are standardised per group with a robust centre
and width (median, 1.4826 MAD), histogrammed on common bins in those units with one
``bincount``, and a Gaussian is fitted to every histogram by damped Newton iterations on
the Poisson likelihood, vectorised over groups (:func:`~waders.ana.fitting.minimise.minimise_batch`).
Errors come from the inverse Hessian.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .deviance import poisson_deviance
from .minimise import minimise_batch

__all__ = ["GaussianFits", "fit_gaussians", "robust_centre_width"]

MAD_TO_SIGMA = 1.482602218505602


@dataclass
class GaussianFits:
    """Results of :func:`fit_gaussians`, one entry per group (NaN where a fit was impossible).

    Attributes
    ----------
    mu, mu_err, sigma, sigma_err : ndarray
        Mean and standard deviation of the Gaussian and their errors (input units).
    amplitude : ndarray
        Number of entries under the Gaussian (integral).
    chi2_ndf : ndarray
        Baker-Cousins likelihood chi-square per degree of freedom.
    n_used : ndarray
        Values inside the fit window.
    chi2, ndf : ndarray
        Baker-Cousins chi-square and degrees of freedom (bins - 3).
    """

    mu: np.ndarray
    mu_err: np.ndarray
    sigma: np.ndarray
    sigma_err: np.ndarray
    amplitude: np.ndarray
    chi2_ndf: np.ndarray
    n_used: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray


def robust_centre_width(values: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Median and scaled MAD (1.4826 MAD) of ``values`` along ``axis``, ignoring NaN."""
    with np.errstate(all="ignore"), _quiet():
        centre = np.nanmedian(values, axis=axis, keepdims=True)
        width = MAD_TO_SIGMA * np.nanmedian(np.abs(values - centre), axis=axis, keepdims=True)
    return np.squeeze(centre, axis), np.squeeze(width, axis)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's 'All-NaN slice' warnings (empty groups are expected and give NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _n_bins(method: str, n_bins: int, window: float, n_values: np.ndarray) -> int:
    typical = max(1.0, float(np.nanmedian(n_values)) if n_values.size else 1.0)
    if method == "manual" and n_bins > 0:
        return int(n_bins)
    if method == "sturge":
        return int(1 + np.ceil(np.log2(typical)))
    if method == "freedman":  # bin width 2 IQR / N^(1/3), IQR = 1.349 sigma
        return max(5, int(np.ceil(2 * window / (2 * 1.349 / typical ** (1 / 3)))))
    return max(5, int(np.ceil(2 * window / 0.25)))  # default: quarter-sigma bins


def fit_gaussians(
    values: np.ndarray,
    *,
    window: float = 3.0,
    bins: str = "default",
    n_bins: int = 0,
    high_dark_current: bool = False,
    iterations: int = 30,
) -> GaussianFits:
    """Fit a Gaussian to the distribution of each row of ``values``.

    Parameters
    ----------
    values : ndarray, shape (groups, n)
        Values of each group; NaN entries are ignored.
    window : float
        Fit range: robust centre +/- ``window`` robust widths.
    bins : {"default", "freedman", "sturge", "manual"}
        Binning rule (in units of the robust width); ``"manual"`` uses ``n_bins``.
    n_bins : int
        Number of bins for ``"manual"``.
    high_dark_current : bool
        Start from the mode of the distribution and the width of its lower side (for
        images whose one-electron peak pulls the median up).
    iterations : int
        Maximum Newton iterations.

    Returns
    -------
    GaussianFits
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    groups = values.shape[0]
    centre, width = robust_centre_width(values, axis=1)
    with np.errstate(all="ignore"), _quiet():
        fallback = np.nanstd(values, axis=1)
    width = np.where((width > 0) & np.isfinite(width), width, fallback)
    half_range = np.full(groups, np.inf)
    if high_dark_current:
        centre, width, half_range = _lower_side_start(values, centre, width)
    width = np.where(width > 0, width, 1.0)
    z = (values - centre[:, None]) / width[:, None]
    inside = np.isfinite(z) & (np.abs(z) < window) & (np.abs(z) < (half_range / width)[:, None])
    n_used = inside.sum(axis=1)
    nb = _n_bins(bins, n_bins, window, n_used)
    edges = np.linspace(-window, window, nb + 1)
    step = edges[1] - edges[0]
    centres = 0.5 * (edges[1:] + edges[:-1])
    index = np.clip(((np.where(inside, z, 0.0) + window) / step).astype(np.int64), 0, nb - 1)
    flat = (np.arange(groups)[:, None] * nb + index)[inside]
    counts = np.bincount(flat, minlength=groups * nb).reshape(groups, nb).astype(np.float64)

    # start from the moments of the windowed values, then Newton on the Poisson likelihood
    total = counts.sum(axis=1)
    with np.errstate(all="ignore"):
        mean = (counts * centres).sum(axis=1) / total
        var = (counts * (centres - mean[:, None]) ** 2).sum(axis=1) / total
    params = np.stack([np.log(np.maximum(total, 1.0)), np.nan_to_num(mean), 0.5 * np.log(np.maximum(var, 0.05))], 1)
    fit = minimise_batch(
        lambda p, rows: _nll_derivatives(counts[rows], centres, step, p),
        params,
        max_iterations=iterations,
        tolerance=1e-9,
    )
    params, hessian = fit.params, fit.curvature
    ok = (n_used >= 5) & np.all(np.isfinite(params), axis=1)
    with np.errstate(all="ignore"):
        cov = np.full_like(hessian, np.nan)
        good = ok & (np.linalg.det(np.where(ok[:, None, None], hessian, np.eye(3))) > 0)
        cov[good] = np.linalg.inv(hessian[good])
        sigma_z = np.exp(params[:, 2])
        expected = _expected(params, centres, step)
        chi2 = poisson_deviance(counts, expected)
        ndf = np.maximum(nb - 3, 1)
    nan = np.where(ok, 1.0, np.nan)
    return GaussianFits(
        mu=(centre + width * params[:, 1]) * nan,
        mu_err=width * np.sqrt(cov[:, 1, 1]) * nan,
        sigma=width * sigma_z * nan,
        sigma_err=width * sigma_z * np.sqrt(cov[:, 2, 2]) * nan,
        amplitude=np.exp(params[:, 0]) * nan,
        chi2_ndf=chi2 / ndf * nan,
        n_used=n_used,
        chi2=chi2 * nan,
        ndf=np.broadcast_to(ndf, chi2.shape).astype(np.int64),
    )


def _lower_side_start(
    values: np.ndarray, centre: np.ndarray, width: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start at the lowest significant peak (the 0-electron peak) of each group.

    A coarse histogram (quarter robust widths, smoothed) is searched for its first local
    maximum holding at least 20 % of the highest bin: with a high dark current the
    0-electron peak is lower than the 1-electron one and the median sits between them.
    The next peak, if any, limits the fit range to half the distance between them.

    Returns
    -------
    (centre, width, half_range)
        Refined peak position, its robust width, and the largest half-width of the fit
        range (inf when there is no second peak).
    """
    groups = values.shape[0]
    nb, step = 48, 0.25
    scale = np.where(width > 0, width, 1.0)
    z = (values - centre[:, None]) / scale[:, None]
    inside = np.isfinite(z) & (np.abs(z) < 6)
    index = np.clip(((np.where(inside, z, 0.0) + 6) / step).astype(np.int64), 0, nb - 1)
    flat = (np.arange(groups)[:, None] * nb + index)[inside]
    counts = np.bincount(flat, minlength=groups * nb).reshape(groups, nb).astype(np.float64)
    padded = np.pad(counts, ((0, 0), (1, 1)))
    smooth = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]
    left = np.pad(smooth, ((0, 0), (1, 0)), constant_values=-1)[:, :-1]
    right = np.pad(smooth, ((0, 0), (0, 1)), constant_values=-1)[:, 1:]
    peaks = (smooth >= left) & (smooth > right) & (smooth >= 0.2 * smooth.max(axis=1, keepdims=True))
    first = np.where(peaks.any(axis=1), np.argmax(peaks, axis=1), np.argmax(smooth, axis=1))
    later = peaks & (np.arange(nb)[None, :] > first[:, None] + 1)
    second = np.where(later.any(axis=1), np.argmax(later, axis=1), -1)
    bin_width = step * scale
    mode = centre + scale * (-6 + step * (first + 0.5))
    half_range = np.where(second >= 0, 0.5 * (second - first) * bin_width, np.inf)
    with np.errstate(all="ignore"), _quiet():
        core = np.where(np.abs(values - mode[:, None]) <= bin_width[:, None], values, np.nan)
        mode = np.where(np.isfinite(np.nanmedian(core, axis=1)), np.nanmedian(core, axis=1), mode)
        limit = np.minimum(half_range, 3 * bin_width)[:, None]
        near = np.where(np.abs(values - mode[:, None]) <= limit, np.abs(values - mode[:, None]), np.nan)
        near_width = MAD_TO_SIGMA * np.nanmedian(near, axis=1)
    return mode, np.where(np.isfinite(near_width) & (near_width > 0), near_width, width), half_range


def _expected(params: np.ndarray, centres: np.ndarray, step: float) -> np.ndarray:
    log_amp, mu, log_sigma = params[:, :1], params[:, 1:2], np.clip(params[:, 2:3], -30, 30)
    sigma = np.exp(log_sigma)
    return np.exp(log_amp - 0.5 * ((centres - mu) / sigma) ** 2) * step / (np.sqrt(2 * np.pi) * sigma)


def _nll_derivatives(
    counts: np.ndarray, centres: np.ndarray, step: float, params: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Negative Poisson log-likelihood, its gradient and Hessian for (ln A, mu, ln sigma)."""
    expected = _expected(params, centres, step)
    sigma = np.exp(np.clip(params[:, 2:3], -30, 30))
    u = (centres - params[:, 1:2]) / sigma
    # d ln(expected) / d(params)
    d = np.stack([np.ones_like(u), u / sigma, u**2 - 1], axis=-1)  # (G, B, 3)
    # second derivatives of ln(expected)
    dd = np.zeros((*u.shape, 3, 3))
    dd[..., 1, 1] = -1 / sigma**2
    dd[..., 1, 2] = dd[..., 2, 1] = -2 * u / sigma
    dd[..., 2, 2] = -2 * u**2
    with np.errstate(all="ignore"):
        nll = (expected - counts * np.log(np.maximum(expected, 1e-300))).sum(axis=1)
    resid = (expected - counts)[..., None]
    gradient = (resid * d).sum(axis=1)
    hessian = (expected[..., None, None] * d[..., :, None] * d[..., None, :] + resid[..., None] * dd).sum(axis=1)
    return nll, gradient, hessian
