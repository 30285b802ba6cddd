"""Pixel-charge-distribution (PCD) fits: noise peaks weighted by Poisson dark current.

The charge ``x`` (ADU) of a pixel holding ``k`` electrons is Gaussian around
``mu0 + k * gain`` with the readout noise ``sigma``; ``k`` is Poisson distributed with
mean ``lam`` (the dark current, electrons per binned pixel per image).  The density of
the pixel charges is therefore::

    f(x) = norm * sum_{k=0}^{K-1} Poisson(k; lam) * Gauss(x; mu0 + k * gain, sigma)

with unit-area Gaussians (per ADU), so ``norm`` is the number of pixels the model
describes and the expected content of a bin is ``norm`` times the integral of the sum
over the bin (computed exactly from the Gaussian CDF, not from the bin centre).
Parameters, in this order (:data:`PARAMETERS`): ``norm`` (pixels), ``mu0`` (ADU),
``sigma`` (ADU), ``lam`` (e-/pixel) and ``gain`` (ADU/e-).

Two fitters maximise the same binned Poisson likelihood:

* :func:`fit_pcd` / :func:`fit_pcd_histogram` fit one distribution with iminuit
  (``ExtendedBinnedNLL``, MIGRAD then HESSE and MINOS);
* :func:`fit_pcd_batch` fits many distributions at once (one per row or column slice):
  all histograms come from one ``bincount`` (:func:`slice_histograms`) and a
  Levenberg-Marquardt iteration on the Poisson likelihood runs on all of them together
  (numpy only; the same approach as :mod:`waders.ana.fitting.gaussian`), with errors from
  the inverse of the expected Hessian (Fisher information).

Both report the Baker-Cousins likelihood chi-square per degree of freedom and a
validity flag with a status string; a fit that does not converge never raises.

Starting values are computed from the histogram (:func:`starting_values`): ``mu0`` is
the mode of the zero-electron peak (searched inside the ``mu`` limits), ``sigma`` the
width of the lower side of that peak (1.4826 times the median distance below the mode),
``gain`` the configured calibration or, when it is fitted, the distance from the
zero-electron peak to the mode of the one-electron peak (searched between 0.5 and 1.5
times the calibration, used when that peak is significant), and ``lam`` from the
fraction ``f`` of pixels above ``mu0 + gain/2``, corrected for the noise tail of the
zero-electron peak: ``lam = -ln(1 - f)``.

Deliberate differences from pysimdamicm's FitDarkCurrentProcess (reference B.4, F.1.13):

* ``lam`` is in electrons per pixel (pysimdamicm fitted ``lam * gain`` in ADU) and the
  Gaussians are normalised in ADU, so ``norm`` is a number of pixels;
* starting values are estimated from the data (pysimdamicm passed them shifted: ``lam``
  started at the calibration and the gain at 0);
* the fit range ends half a gain above the last modelled peak (``mu0 + (K - 1/2) gain``)
  when ``x_max`` is beyond it (``clip_range``), so pixels with more charge than the ``K``
  modelled peaks do not distort the likelihood;
* one fit (MIGRAD repeated until valid, at most five times) instead of two chained fits,
  and a fixed gain has an error of 0 while a fitted gain keeps its error (pysimdamicm
  zeroed the error of the *fitted* gain);
* a fit is flagged invalid (``valid=False`` with a reason in ``status``) when it did not
  converge, when its covariance is not positive definite, when ``mu0``, ``sigma``, the
  fitted gain or the upper bound of ``lam`` is at a limit, when the gain is fitted but
  there is no single-electron peak to measure it, or when its goodness of fit is bad
  (the rule of :mod:`waders.ana.fitting.quality`, shared by every fit of waders-ana).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from waders.core.errors import ConfigError
from waders.core.lazy import lazy_module

from .deviance import poisson_deviance
from .minimise import minimise_batch, restrict
from .quality import assess_many

special = lazy_module("scipy.special")

__all__ = [
    "PARAMETERS",
    "PCDBatchFits",
    "PCDFit",
    "PCDSettings",
    "fit_pcd",
    "fit_pcd_batch",
    "fit_pcd_histogram",
    "pcd_edges",
    "pcd_expected",
    "pcd_histogram",
    "slice_histograms",
    "starting_values",
    "unfitted",
]

#: Names of the model parameters, in the order of all parameter arrays.
PARAMETERS: tuple[str, ...] = ("norm", "mu0", "sigma", "lam", "gain")
NORM, MU0, SIGMA, LAM, GAIN = range(5)
#: Fewest pixels in the fit range for a fit to be attempted.
MIN_ENTRIES = 10
#: Fewest expected pixels with one electron or more for a fitted gain to be meaningful.
MIN_SINGLE_ELECTRON = 10.0
#: Most bins of a PCD histogram.
MAX_BINS = 100_000
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MAD_TO_SIGMA = 1.482602218505602


@dataclass(frozen=True)
class PCDSettings:
    """Model, range and limits of a PCD fit (values in the image unit, ADU unless calibrated).

    Parameters
    ----------
    n_peaks : int
        Number ``K`` of Poisson terms (electron peaks 0 .. K-1).
    calibration : float
        Gain guess, or the fixed gain when ``fit_gain`` is False (ADU/e-).
    fit_gain : bool
        Whether the gain is a free parameter.
    x_min, x_max : float or None
        Histogram range (ADU); None or NaN: ``-calibration`` and ``n_peaks * calibration``.
    binning_size : float
        Bin width (ADU); <= 0: ``int(2 sqrt(N))`` bins for N pixels in the range.
    mu_limits, sigma_limits, lambda_limits, gain_limits : (float, float)
        Bounds of ``mu0`` (ADU), ``sigma`` (ADU), ``lam`` (e-/pixel) and ``gain`` (ADU/e-).
    minos : bool
        Compute MINOS errors (single fits).
    clip_range : bool
        End the fit half a gain above the last modelled peak when ``x_max`` is beyond it.
    """

    n_peaks: int = 5
    calibration: float = 10.0
    fit_gain: bool = True
    x_min: float | None = -10.0
    x_max: float | None = 50.0
    binning_size: float = 0.5
    mu_limits: tuple[float, float] = (-1.0, 1.0)
    sigma_limits: tuple[float, float] = (0.001, 100.0)
    lambda_limits: tuple[float, float] = (0.0, 1.0)
    gain_limits: tuple[float, float] = (1.0, 100.0)
    minos: bool = True
    clip_range: bool = True

    def __post_init__(self) -> None:
        if self.n_peaks < 1:
            raise ConfigError(f"n_peaks must be at least 1, got {self.n_peaks}")
        if not (self.calibration > 0 and math.isfinite(self.calibration)):
            raise ConfigError(f"calibration must be a positive gain (ADU/e-), got {self.calibration}")
        for label, (lo, hi) in (
            ("mu", self.mu_limits),
            ("sigma", self.sigma_limits),
            ("dc", self.lambda_limits),
            ("gain", self.gain_limits),
        ):
            if not lo < hi:
                raise ConfigError(f"{label}_min ({lo:g}) must be below {label}_max ({hi:g})")
        lo, hi = self.fit_range()
        if not lo < hi:
            raise ConfigError(f"x_min ({lo:g}) must be below x_max ({hi:g})")

    def fit_range(self) -> tuple[float, float]:
        """Resolved histogram range (x_min, x_max) in ADU."""
        lo = self.x_min if self.x_min is not None and math.isfinite(self.x_min) else -self.calibration
        hi = self.x_max if self.x_max is not None and math.isfinite(self.x_max) else self.n_peaks * self.calibration
        return float(lo), float(hi)

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the five parameters (the gain limits even when fixed)."""
        scale = max(1.0, self.calibration)
        lower = np.array(
            [
                0.0,
                self.mu_limits[0],
                max(self.sigma_limits[0], 1e-6 * scale),
                max(self.lambda_limits[0], 0.0),
                max(self.gain_limits[0], 1e-6 * scale),
            ]
        )
        upper = np.array([np.inf, self.mu_limits[1], self.sigma_limits[1], self.lambda_limits[1], self.gain_limits[1]])
        return lower, upper

    @property
    def n_free(self) -> int:
        """Number of free parameters."""
        return 5 if self.fit_gain else 4


# --- histograms ---------------------------------------------------------------------------------
def pcd_edges(x_min: float, x_max: float, binning_size: float, n_values: float) -> np.ndarray:
    """Bin edges over [x_min, x_max]: ``int((x_max - x_min) / binning_size)`` equal bins.

    Parameters
    ----------
    x_min, x_max : float
        Range (ADU).
    binning_size : float
        Bin width (ADU); <= 0 gives ``int(2 sqrt(n_values))`` bins (pysimdamicm's rule).
    n_values : float
        Number of values histogrammed (for the automatic binning).
    """
    width = x_max - x_min
    if binning_size > 0:
        n_bins = int(width / binning_size)
    else:
        n_bins = int(2.0 * math.sqrt(max(n_values, 1.0)))
    if n_bins > MAX_BINS:
        raise ConfigError(
            f"binning_size {binning_size:g} gives {n_bins} bins over [{x_min:g}, {x_max:g}] (at most {MAX_BINS})"
        )
    return np.linspace(x_min, x_max, max(n_bins, 1) + 1)


def _bin_index(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin of each value strictly inside (edges[0], edges[-1]) and the selector of those values."""
    inside = (values > edges[0]) & (values < edges[-1])
    n_bins = len(edges) - 1
    width = (edges[-1] - edges[0]) / n_bins
    index = ((values[inside] - edges[0]) / width).astype(np.int64)
    return np.clip(index, 0, n_bins - 1), inside


def pcd_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the equal bins ``edges`` (values outside or NaN are dropped)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    index, _ = _bin_index(values, edges)
    return np.bincount(index, minlength=len(edges) - 1).astype(np.float64)


def slice_histograms(values: np.ndarray, slices: np.ndarray, n_slices: int, edges: np.ndarray) -> np.ndarray:
    """One histogram per slice with a single ``bincount``.

    Parameters
    ----------
    values : ndarray
        Pixel charges (ADU), any shape.
    slices : ndarray of int
        Slice index of every value (same shape), in 0 .. n_slices-1.
    n_slices : int
        Number of slices.
    edges : ndarray
        Common equal-width bin edges.

    Returns
    -------
    ndarray, shape (n_slices, n_bins)
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    slices = np.asarray(slices, dtype=np.int64).ravel()
    n_bins = len(edges) - 1
    index, inside = _bin_index(values, edges)
    flat = slices[inside] * n_bins + index
    return np.bincount(flat, minlength=n_slices * n_bins).reshape(n_slices, n_bins).astype(np.float64)


# --- model --------------------------------------------------------------------------------------
def _poisson_weights(lam: np.ndarray, n_peaks: int) -> tuple[np.ndarray, np.ndarray]:
    """Poisson(k; lam) for k < n_peaks and its derivative in lam, shapes (..., n_peaks)."""
    lam = np.asarray(lam, dtype=np.float64)
    ratios = lam[..., None] / np.arange(1, n_peaks)
    w = np.exp(-lam)[..., None] * np.concatenate([np.ones((*lam.shape, 1)), np.cumprod(ratios, axis=-1)], axis=-1)
    previous = np.concatenate([np.zeros((*lam.shape, 1)), w[..., :-1]], axis=-1)
    return w, previous - w


def pcd_expected(edges: np.ndarray, params: np.ndarray, n_peaks: int) -> np.ndarray:
    """Expected pixels per bin for parameters ``params`` (shape (..., 5)); returns shape (..., n_bins)."""
    params = np.asarray(params, dtype=np.float64)
    k = np.arange(n_peaks)
    centres = params[..., MU0, None] + k * params[..., GAIN, None]
    z = (np.asarray(edges)[None, :] - centres[..., None]) / params[..., SIGMA, None, None]
    w, _ = _poisson_weights(params[..., LAM], n_peaks)
    delta = np.diff(special.ndtr(z), axis=-1)
    return params[..., NORM, None] * np.einsum("...k,...kb->...b", w, delta)


def pcd_density(x: np.ndarray, params: np.ndarray, n_peaks: int) -> np.ndarray:
    """Model density (pixels per ADU) at charges ``x`` for one parameter vector."""
    x = np.asarray(x, dtype=np.float64)
    w, _ = _poisson_weights(np.asarray(params[LAM]), n_peaks)
    centres = params[MU0] + np.arange(n_peaks) * params[GAIN]
    z = (x[..., None] - centres) / params[SIGMA]
    return params[NORM] * (np.exp(-0.5 * z * z) * _INV_SQRT_2PI / params[SIGMA]) @ w


def _cdf_model(n_peaks: int) -> Any:
    """Scaled cumulative model for iminuit's ExtendedBinnedNLL (parameter names from the signature)."""
    k = np.arange(n_peaks)

    def model(x: np.ndarray, norm: float, mu0: float, sigma: float, lam: float, gain: float) -> np.ndarray:
        w, _ = _poisson_weights(np.asarray(lam), n_peaks)
        z = (np.asarray(x)[:, None] - (mu0 + k * gain)) / sigma
        return norm * (special.ndtr(z) @ w)

    return model


# --- starting values ----------------------------------------------------------------------------
def _weighted_median(x: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(x)
    cumulative = np.cumsum(weights[order])
    if cumulative[-1] <= 0:
        return float("nan")
    return float(x[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def _smooth(counts: np.ndarray, half_width: int) -> np.ndarray:
    if half_width <= 0:
        return counts.astype(np.float64)
    padded = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    n = len(counts)
    lo = np.clip(np.arange(n) - half_width, 0, n)
    hi = np.clip(np.arange(n) + half_width + 1, 0, n)
    return (padded[hi] - padded[lo]) / (hi - lo)


def _inset(value: float, lo: float, hi: float) -> float:
    """Clip a starting value strictly inside [lo, hi] (a start on a bound stalls the minimiser)."""
    span = (hi - lo) if math.isfinite(hi) else max(abs(lo), 1.0)
    margin = 1e-4 * span
    return float(min(max(value, lo + margin), hi - margin))


def starting_values(edges: np.ndarray, counts: np.ndarray, settings: PCDSettings) -> np.ndarray:
    """Estimate (norm, mu0, sigma, lam, gain) from a PCD histogram (see the module docstring).

    Parameters
    ----------
    edges : ndarray
        Equal-width bin edges (ADU).
    counts : ndarray
        Pixels per bin.
    settings : PCDSettings
        Number of peaks, calibration and limits (every estimate is clipped inside them).

    Returns
    -------
    ndarray, shape (5,)
    """
    counts = np.asarray(counts, dtype=np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = float(edges[1] - edges[0])
    total = float(counts.sum())
    lower, upper = settings.limits()
    calibration = settings.calibration
    median = _weighted_median(centres, counts)
    rough = max(_MAD_TO_SIGMA * _weighted_median(np.abs(centres - median), counts), width)
    smooth = _smooth(counts, round(0.3 * min(rough, 0.3 * calibration) / width))

    # mu0: mode inside the mu limits; step down by a gain while a lower peak is still prominent
    region = (centres >= lower[MU0]) & (centres <= upper[MU0])
    i0 = int(np.argmax(np.where(region, smooth, -1.0))) if region.any() else int(np.argmax(smooth))
    if upper[MU0] - lower[MU0] > 0.5 * calibration:
        step = max(1, round(calibration / width))
        quarter = max(1, round(0.25 * calibration / width))
        for _ in range(settings.n_peaks):
            j = i0 - step
            lo_j, hi_j = max(0, j - quarter), j + quarter + 1
            if j < 0 or centres[j] < lower[MU0] - 0.25 * calibration or hi_j <= lo_j:
                break
            candidate = lo_j + int(np.argmax(smooth[lo_j:hi_j]))
            if smooth[candidate] < 0.1 * smooth[i0]:
                break
            i0 = candidate
    mu0 = float(centres[i0])

    # sigma: spread of the lower side of the zero-electron peak (half-normal median = 0.6745 sigma)
    below = centres < mu0
    sigma = rough
    if counts[below].sum() >= 5:
        sigma = _MAD_TO_SIGMA * _weighted_median(mu0 - centres[below], counts[below])
    sigma = _inset(max(sigma, 0.5 * width, 1e-3 * calibration), lower[SIGMA], upper[SIGMA])

    # gain: calibration, or the distance to a significant one-electron peak
    gain = calibration
    if settings.fit_gain:
        window = (centres > mu0 + max(0.5 * calibration, 4 * sigma)) & (centres < mu0 + 1.5 * calibration)
        if window.any():
            peak = float(centres[np.argmax(np.where(window, smooth, -1.0))])
            half = max(sigma, width)
            on_peak = counts[np.abs(centres - peak) <= half].sum()
            valley = counts[np.abs(centres - 0.5 * (mu0 + peak)) <= half].sum()
            if on_peak >= 10 and on_peak - valley > 3 * math.sqrt(valley + 1):
                gain = peak - mu0
        gain = _inset(gain, lower[GAIN], upper[GAIN])

    # lam: fraction above mu0 + gain/2, minus the noise tail of the zero-electron peak
    above = counts[centres > mu0 + 0.5 * gain].sum() / max(total, 1.0)
    tail = float(special.ndtr(-0.5 * gain / sigma))
    occupied = min(max((above - tail) / max(1.0 - tail, 1e-12), 1e-6), 0.95)
    lam = _inset(-math.log1p(-occupied), lower[LAM], upper[LAM])

    params = np.array([1.0, mu0, sigma, lam, gain])
    covered = float(pcd_expected(edges[[0, -1]], params, settings.n_peaks)[0])
    params[NORM] = max(total, 1.0) / max(covered, 1e-12)
    params[MU0] = _inset(mu0, lower[MU0], upper[MU0])
    return params


def _fit_window(edges: np.ndarray, start: np.ndarray, settings: PCDSettings) -> int:
    """Number of leading bins used by the fit (the range ends half a gain above the last peak)."""
    n_bins = len(edges) - 1
    if not settings.clip_range:
        return n_bins
    end = start[MU0] + (settings.n_peaks - 0.5) * start[GAIN]
    keep = int(np.searchsorted(edges[1:], end, side="right"))
    return int(min(n_bins, max(keep, settings.n_free + 2)))


# --- results ------------------------------------------------------------------------------------
class _ParameterAccess:
    """Named access to ``params``/``errors`` arrays of shape (..., 5)."""

    params: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray

    def _get(self, index: int) -> Any:
        value = self.params[..., index]
        return float(value) if np.ndim(value) == 0 else value

    def _err(self, index: int) -> Any:
        value = self.errors[..., index]
        return float(value) if np.ndim(value) == 0 else value

    norm = property(lambda self: self._get(NORM), doc="pixels described by the model")
    mu0 = property(lambda self: self._get(MU0), doc="zero-electron peak position (ADU)")
    sigma = property(lambda self: self._get(SIGMA), doc="readout noise (ADU)")
    lam = property(lambda self: self._get(LAM), doc="dark current (e- per binned pixel)")
    gain = property(lambda self: self._get(GAIN), doc="gain (ADU/e-)")
    norm_err = property(lambda self: self._err(NORM))
    mu0_err = property(lambda self: self._err(MU0))
    sigma_err = property(lambda self: self._err(SIGMA))
    lam_err = property(lambda self: self._err(LAM))
    gain_err = property(lambda self: self._err(GAIN))

    def in_electrons(self, name: str) -> tuple[Any, Any]:
        """``name / gain`` and its error, with the covariance of the two (e.g. ``sigma`` in e-)."""
        i = PARAMETERS.index(name)
        a, g = self.params[..., i], self.params[..., GAIN]
        cov = self.covariance
        with np.errstate(all="ignore"):
            variance = cov[..., i, i] / g**2 + a**2 * cov[..., GAIN, GAIN] / g**4 - 2 * a * cov[..., i, GAIN] / g**3
            value, error = a / g, np.sqrt(np.maximum(variance, 0.0))
        if np.ndim(value) == 0:
            return float(value), float(error)
        return value, error


@dataclass
class PCDFit(_ParameterAccess):
    """Result of one PCD fit (:func:`fit_pcd`).

    Attributes
    ----------
    params, errors : ndarray, shape (5,)
        Values and symmetric errors of :data:`PARAMETERS` (MINOS where it succeeded,
        else HESSE; a fixed gain has error 0; NaN when the fit failed).
    covariance : ndarray, shape (5, 5)
        HESSE covariance (zero rows for a fixed gain).
    minos : dict
        Parameter name -> (lower, upper) MINOS errors, for the parameters where MINOS succeeded.
    edges, counts : ndarray
        Bins and contents of the fit range.
    hist_edges, hist_counts : ndarray
        The whole histogram over [x_min, x_max].
    start : ndarray
        Starting values.
    chi2, ndf, chi2_ndf : float
        Baker-Cousins chi-square, degrees of freedom (bins - free parameters) and their ratio.
    valid : bool
        Converged, positive-definite covariance, no parameter at a limit that invalidates it.
    status : str
        ``"ok"`` or the reasons, separated by ``"; "``.
    edm, nfcn : float, int
        Estimated distance to minimum and number of function calls.
    n_entries : int
        Pixels in the fit range.
    """

    params: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    settings: PCDSettings
    start: np.ndarray
    hist_edges: np.ndarray
    hist_counts: np.ndarray
    minos: dict[str, tuple[float, float]] = field(default_factory=dict)
    chi2: float = float("nan")
    ndf: int = 0
    chi2_ndf: float = float("nan")
    valid: bool = False
    status: str = "not fitted"
    edm: float = float("nan")
    nfcn: int = 0
    n_entries: int = 0

    @property
    def n_peaks(self) -> int:
        """Number of Poisson terms."""
        return self.settings.n_peaks

    def expected(self) -> np.ndarray:
        """Fitted pixels per bin of the fit range."""
        return pcd_expected(self.edges, self.params, self.n_peaks)

    def density(self, x: np.ndarray) -> np.ndarray:
        """Fitted density (pixels per ADU) at ``x``."""
        return pcd_density(x, self.params, self.n_peaks)


@dataclass
class PCDBatchFits(_ParameterAccess):
    """Results of :func:`fit_pcd_batch`, one row per slice (NaN where a slice was not fitted).

    Attributes
    ----------
    params, errors : ndarray, shape (S, 5)
        Values and errors of :data:`PARAMETERS` (errors from the inverse Fisher matrix).
    covariance : ndarray, shape (S, 5, 5)
    edges : ndarray
        Bins of the fit range (common to all slices).
    counts : ndarray, shape (S, n_bins)
        Histograms over the fit range.
    chi2, ndf, chi2_ndf : ndarray
        Baker-Cousins chi-square, degrees of freedom and ratio per slice.
    valid : ndarray of bool
    status : list of str
    converged : ndarray of bool
    edm : ndarray
        Estimated distance to minimum.
    iterations : ndarray of int
    n_entries : ndarray of int
        Pixels in the fit range per slice.
    """

    params: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    settings: PCDSettings
    chi2: np.ndarray
    ndf: np.ndarray
    chi2_ndf: np.ndarray
    valid: np.ndarray
    status: list[str]
    converged: np.ndarray
    edm: np.ndarray
    iterations: np.ndarray
    n_entries: np.ndarray

    def __len__(self) -> int:
        return len(self.params)

    def expected(self) -> np.ndarray:
        """Fitted pixels per bin, shape (S, n_bins)."""
        return pcd_expected(self.edges, self.params, self.settings.n_peaks)


# --- validity -----------------------------------------------------------------------------------
def _assess(
    params: np.ndarray,
    errors: np.ndarray,
    settings: PCDSettings,
    *,
    converged: np.ndarray,
    posdef: np.ndarray,
    n_entries: np.ndarray,
    chi2: np.ndarray,
    ndf: np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """Validity flags and status strings for fits of shape (S, 5) (:mod:`waders.ana.fitting.quality`)."""
    lower, upper = settings.limits()
    with np.errstate(invalid="ignore"):
        slack = 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(upper), upper, lower))) + 0.01 * np.nan_to_num(
            errors
        )
        at_lower = params - lower <= slack
        at_upper = upper - params <= slack
        single = params[:, NORM] * -np.expm1(-params[:, LAM])
    few = n_entries < MIN_ENTRIES
    at_limit = {
        "mu0": at_lower[:, MU0] | at_upper[:, MU0],
        "sigma": at_lower[:, SIGMA] | at_upper[:, SIGMA],
    }
    other = {"lambda at its upper limit": at_upper[:, LAM]}
    if settings.fit_gain:
        at_limit["gain"] = at_lower[:, GAIN] | at_upper[:, GAIN]
        other["no single-electron peak: gain undetermined"] = ~(single >= MIN_SINGLE_ELECTRON)
    valid, status, _ = assess_many(
        chi2=chi2,
        ndf=ndf,
        n_entries=n_entries,
        min_entries=MIN_ENTRIES,
        converged=converged | few,
        posdef=posdef | ~converged | few,
        at_limit=at_limit,
        other=other,
        entries="pixels in the fit range",
    )
    valid &= np.all(np.isfinite(params), axis=1)
    if not settings.fit_gain:  # a dark current at zero with a fixed gain is a result, not a failure
        note = at_lower[:, LAM] & ~few
        status = [
            (s if s != "ok" else "") + ("; " if s != "ok" else "") + "lambda at its lower limit" if n else s
            for s, n in zip(status, note, strict=True)
        ]
    return valid, status


# --- single fit with iminuit --------------------------------------------------------------------
def fit_pcd(values: np.ndarray, settings: PCDSettings) -> PCDFit:
    """Histogram pixel charges over the configured range and fit them with iminuit.

    Parameters
    ----------
    values : ndarray
        Pixel charges (ADU); NaN and values outside (x_min, x_max) are ignored.
    settings : PCDSettings

    Returns
    -------
    PCDFit
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    x_min, x_max = settings.fit_range()
    n_in_range = int(np.count_nonzero((values > x_min) & (values < x_max)))
    edges = pcd_edges(x_min, x_max, settings.binning_size, n_in_range)
    return fit_pcd_histogram(edges, pcd_histogram(values, edges), settings)


def _failed(edges: np.ndarray, counts: np.ndarray, settings: PCDSettings, status: str, **extra: Any) -> PCDFit:
    nan = np.full(5, np.nan)
    return PCDFit(
        params=nan,
        errors=nan.copy(),
        covariance=np.full((5, 5), np.nan),
        edges=edges,
        counts=counts,
        settings=settings,
        start=extra.pop("start", nan.copy()),
        hist_edges=extra.pop("hist_edges", edges),
        hist_counts=extra.pop("hist_counts", counts),
        status=status,
        n_entries=int(counts.sum()),
        **extra,
    )


def unfitted(values: np.ndarray, mu0: float, sigma: float, n_peaks: int, status: str) -> PCDFit:
    """An invalid result without a fit (e.g. no single-electron resolution), with the histogram of ``values``.

    The histogram spans ``mu0 - 6 sigma`` .. ``mu0 + 20 sigma`` in bins of ``sigma / 5``.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    width = sigma if math.isfinite(sigma) and sigma > 0 else 1.0
    centre = mu0 if math.isfinite(mu0) else 0.0
    settings = PCDSettings(
        n_peaks=n_peaks,
        calibration=width,
        x_min=centre - 6 * width,
        x_max=centre + 20 * width,
        binning_size=width / 5,
        mu_limits=(centre - width, centre + width),
    )
    edges = pcd_edges(centre - 6 * width, centre + 20 * width, width / 5, values.size)
    return _failed(edges, pcd_histogram(values, edges), settings, status)


def fit_pcd_histogram(
    edges: np.ndarray, counts: np.ndarray, settings: PCDSettings, start: Sequence[float] | None = None
) -> PCDFit:
    """Fit a PCD histogram by binned Poisson maximum likelihood (iminuit, MIGRAD + HESSE + MINOS).

    Parameters
    ----------
    edges : ndarray
        Equal-width bin edges (ADU).
    counts : ndarray
        Pixels per bin.
    settings : PCDSettings
    start : sequence of 5 floats, optional
        Starting values; estimated with :func:`starting_values` if omitted.

    Returns
    -------
    PCDFit
        Never raises for a fit that fails: ``valid`` is False and ``status`` says why.
    """
    from iminuit import Minuit
    from iminuit.cost import ExtendedBinnedNLL

    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    total = int(counts.sum())
    if total < MIN_ENTRIES:
        return _failed(edges, counts, settings, f"too few pixels in the fit range ({total})")
    initial = starting_values(edges, counts, settings) if start is None else np.asarray(start, dtype=np.float64)
    n_fit = _fit_window(edges, initial, settings)
    fit_edges, fit_counts = edges[: n_fit + 1], counts[:n_fit]
    common = {"start": initial, "hist_edges": edges, "hist_counts": counts}
    if n_fit <= settings.n_free:
        return _failed(fit_edges, fit_counts, settings, f"too few bins in the fit range ({n_fit})", **common)
    lower, upper = settings.limits()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # iminuit warnings and overflow in far tails: reported through status
            cost = ExtendedBinnedNLL(fit_counts, fit_edges, _cdf_model(settings.n_peaks))
            minuit = Minuit(cost, *initial, name=PARAMETERS)
            for i, name in enumerate(PARAMETERS):
                minuit.limits[name] = (lower[i], upper[i] if math.isfinite(upper[i]) else None)
            minuit.errors = [
                math.sqrt(total) + 1.0,
                0.1 * initial[SIGMA],
                0.05 * initial[SIGMA],
                max(0.1 * initial[LAM], 1e-5),
                0.01 * initial[GAIN],
            ]
            minuit.fixed["gain"] = not settings.fit_gain
            minuit.migrad(iterate=5)
            if minuit.fmin.is_valid:
                minuit.hesse()
            minos = _minos(minuit, settings) if settings.minos and minuit.fmin.is_valid else {}
    except (RuntimeError, ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
        return _failed(fit_edges, fit_counts, settings, f"fit failed: {err}", **common)
    return _single_result(minuit, minos, fit_edges, fit_counts, settings, common)


def _minos(minuit: Any, settings: PCDSettings) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name in PARAMETERS[1:] if settings.fit_gain else PARAMETERS[1:4]:
        try:
            minuit.minos(name)
        except RuntimeError:
            continue
        error = minuit.merrors[name]
        if error.is_valid:
            out[name] = (float(error.lower), float(error.upper))
    return out


def _single_result(
    minuit: Any,
    minos: dict[str, tuple[float, float]],
    edges: np.ndarray,
    counts: np.ndarray,
    settings: PCDSettings,
    common: dict[str, Any],
) -> PCDFit:
    params = np.array(minuit.values, dtype=np.float64)
    fmin = minuit.fmin
    covariance = np.full((5, 5), np.nan)
    posdef = False
    if minuit.covariance is not None and fmin.has_covariance:
        covariance = np.array(minuit.covariance, dtype=np.float64)
        posdef = bool(fmin.has_posdef_covar and not fmin.hesse_failed)
    errors = np.sqrt(np.maximum(np.diag(covariance), 0.0)) if posdef else np.array(minuit.errors, dtype=np.float64)
    for name, (low, high) in minos.items():
        errors[PARAMETERS.index(name)] = 0.5 * (high - low)
    if not settings.fit_gain:
        errors[GAIN] = 0.0
        covariance[GAIN, :] = covariance[:, GAIN] = 0.0
    expected = pcd_expected(edges, params, settings.n_peaks)
    chi2 = float(poisson_deviance(counts, expected))
    ndf = max(len(counts) - settings.n_free, 0)
    n_entries = int(counts.sum())
    valid, status = _assess(
        params[None],
        errors[None],
        settings,
        converged=np.array([fmin.is_valid]),
        posdef=np.array([posdef]),
        n_entries=np.array([n_entries]),
        chi2=np.array([chi2]),
        ndf=np.array([ndf]),
    )
    text = status[0]
    missing = [n for n in (PARAMETERS[1:] if settings.fit_gain else PARAMETERS[1:4]) if n not in minos]
    if settings.minos and fmin.is_valid and missing:
        note = "MINOS failed for " + ", ".join(missing) + " (HESSE errors)"
        text = note if text == "ok" else f"{text}; {note}"
    if fmin.has_reached_call_limit:
        text = f"{text}; call limit reached"
    return PCDFit(
        params=params,
        errors=errors,
        covariance=covariance,
        edges=edges,
        counts=counts,
        settings=settings,
        minos=minos,
        chi2=chi2,
        ndf=ndf,
        chi2_ndf=chi2 / ndf if ndf > 0 else float("nan"),
        valid=bool(valid[0]),
        status=text,
        edm=float(fmin.edm),
        nfcn=int(fmin.nfcn),
        n_entries=n_entries,
        **common,
    )


# --- batched fits (Levenberg-Marquardt on the Poisson likelihood) -------------------------------
def _derivatives(
    counts: np.ndarray, edges: np.ndarray, params: np.ndarray, n_peaks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Half-deviance, its gradient, the Fisher matrix and the expected counts for fits (S, 5)."""
    norm, mu0, sigma, lam, gain = (params[:, i] for i in range(5))
    k = np.arange(n_peaks)
    z = (edges[None, None, :] - (mu0[:, None] + k * gain[:, None])[:, :, None]) / sigma[:, None, None]
    pdf = np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    delta = np.diff(special.ndtr(z), axis=2)  # (S, K, B)
    d_mean = -np.diff(pdf, axis=2) / sigma[:, None, None]  # d delta / d centre
    d_sigma = -np.diff(z * pdf, axis=2) / sigma[:, None, None]  # d delta / d sigma
    w, dw = _poisson_weights(lam, n_peaks)
    shape = np.einsum("sk,skb->sb", w, delta)
    jac = np.empty((*shape.shape, 5))
    jac[..., NORM] = shape
    jac[..., MU0] = norm[:, None] * np.einsum("sk,skb->sb", w, d_mean)
    jac[..., SIGMA] = norm[:, None] * np.einsum("sk,skb->sb", w, d_sigma)
    jac[..., LAM] = norm[:, None] * np.einsum("sk,skb->sb", dw, delta)
    jac[..., GAIN] = norm[:, None] * np.einsum("sk,skb->sb", w * k, d_mean)
    expected = np.maximum(norm[:, None] * shape, 1e-300)
    deviance = 0.5 * poisson_deviance(counts, expected)  # the negative log-likelihood ratio
    gradient = np.einsum("sb,sbi->si", 1.0 - counts / expected, jac)
    scaled = jac / np.sqrt(expected)[..., None]
    fisher = np.matmul(scaled.transpose(0, 2, 1), scaled)
    return deviance, gradient, fisher, expected


def _levenberg_marquardt(
    counts: np.ndarray,
    edges: np.ndarray,
    params: np.ndarray,
    settings: PCDSettings,
    max_iterations: int,
    tolerance: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minimise the Poisson deviance of every row of ``counts``; returns params, Fisher, EDM, iterations."""
    lower, upper = settings.limits()
    n_peaks = settings.n_peaks

    def derivatives(p: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _derivatives(counts[rows], edges, p, n_peaks)[:3]

    fit = minimise_batch(
        derivatives,
        params,
        lower=lower,
        upper=upper,
        fixed=np.array([False, False, False, False, not settings.fit_gain]),
        max_iterations=max_iterations,
        tolerance=tolerance,
    )
    return fit.params, fit.curvature, fit.edm, fit.iterations


def _covariance(fisher: np.ndarray, settings: PCDSettings) -> tuple[np.ndarray, np.ndarray]:
    """Inverse Fisher matrices over the free parameters and whether they are positive definite."""
    free = np.array([True, True, True, True, settings.fit_gain])
    matrix, _ = restrict(fisher, np.zeros(fisher.shape[:2]), np.broadcast_to(free, fisher.shape[:2]))
    with np.errstate(all="ignore"):
        finite = np.all(np.isfinite(matrix), axis=(1, 2))
        safe = np.where(finite[:, None, None], matrix, np.eye(5))
        eigen = np.linalg.eigvalsh(safe)
        posdef = finite & (eigen[:, 0] > 1e-12 * np.maximum(eigen[:, -1], 1e-300))
        covariance = np.linalg.pinv(np.where(posdef[:, None, None], safe, np.eye(5)))
    covariance[~posdef] = np.nan
    covariance[:, ~free, :] = 0.0
    covariance[:, :, ~free] = 0.0
    return covariance, posdef


def fit_pcd_batch(
    edges: np.ndarray,
    counts: np.ndarray,
    settings: PCDSettings,
    *,
    start: np.ndarray | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    chunk: int = 256,
) -> PCDBatchFits:
    """Fit many PCD histograms at once (one per slice) by vectorised Levenberg-Marquardt.

    The summed histogram is fitted first (from :func:`starting_values`); every slice then
    starts from that result, with its own normalisation and a dark current scaled by its
    fraction of pixels above ``mu0 + gain/2``.

    Parameters
    ----------
    edges : ndarray
        Common equal-width bin edges (ADU).
    counts : ndarray, shape (S, n_bins)
        Histograms (see :func:`slice_histograms`).
    settings : PCDSettings
    start : ndarray, optional
        Starting values, shape (5,) or (S, 5).
    max_iterations : int
        Iteration limit per slice.
    tolerance : float
        Convergence: estimated distance to minimum (in units of the log-likelihood).
    chunk : int
        Slices fitted together (bounds the memory of the model arrays).

    Returns
    -------
    PCDBatchFits
    """
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    n_slices = len(counts)
    summed = counts.sum(axis=0)
    if start is None and summed.sum() >= MIN_ENTRIES:
        global_start = starting_values(edges, summed, settings)
    elif start is None:
        global_start = np.array([1.0, 0.0, 1.0, 0.1, settings.calibration])
    else:
        global_start = np.asarray(start, dtype=np.float64)
    n_fit = _fit_window(edges, global_start.reshape(-1, 5)[0], settings)
    edges, counts = edges[: n_fit + 1], counts[:, :n_fit]
    n_entries = counts.sum(axis=1)
    if start is None:
        params = _slice_starts(edges, counts, settings, global_start, max_iterations, tolerance)
    else:
        params = np.broadcast_to(global_start, (n_slices, 5)).copy()
    fit = n_entries >= MIN_ENTRIES
    fisher = np.full((n_slices, 5, 5), np.nan)
    edm = np.full(n_slices, np.nan)
    iterations = np.zeros(n_slices, dtype=np.int64)
    index = np.flatnonzero(fit)
    for first in range(0, index.size, chunk):
        part = index[first : first + chunk]
        params[part], fisher[part], edm[part], iterations[part] = _levenberg_marquardt(
            counts[part], edges, params[part], settings, max_iterations, tolerance
        )
    params[~fit] = np.nan
    converged = fit & (edm < 10 * tolerance)
    covariance, posdef = _covariance(np.where(fit[:, None, None], fisher, np.eye(5)), settings)
    covariance[~fit] = np.nan
    errors = np.sqrt(np.maximum(np.diagonal(covariance, axis1=1, axis2=2), 0.0))
    errors[~posdef] = np.nan
    if not settings.fit_gain:
        errors[fit & posdef, GAIN] = 0.0
    with np.errstate(all="ignore"):
        expected = pcd_expected(edges, params, settings.n_peaks)
        chi2 = poisson_deviance(counts, expected)
    ndf = np.full(n_slices, max(n_fit - settings.n_free, 0))
    valid, status = _assess(
        params, errors, settings, converged=converged, posdef=posdef, n_entries=n_entries, chi2=chi2, ndf=ndf
    )
    with np.errstate(all="ignore"):
        chi2_ndf = np.where(ndf > 0, chi2 / np.maximum(ndf, 1), np.nan)
    return PCDBatchFits(
        params=params,
        errors=errors,
        covariance=covariance,
        edges=edges,
        counts=counts,
        settings=settings,
        chi2=np.where(fit, chi2, np.nan),
        ndf=ndf,
        chi2_ndf=np.where(fit, chi2_ndf, np.nan),
        valid=valid,
        status=status,
        converged=converged,
        edm=edm,
        iterations=iterations,
        n_entries=n_entries.astype(np.int64),
    )


def _slice_starts(
    edges: np.ndarray,
    counts: np.ndarray,
    settings: PCDSettings,
    global_start: np.ndarray,
    max_iterations: int,
    tolerance: float,
) -> np.ndarray:
    """Starting values per slice from a fit of the summed histogram."""
    summed = counts.sum(axis=0)
    lower, upper = settings.limits()
    if summed.sum() >= MIN_ENTRIES:
        refined, *_ = _levenberg_marquardt(summed[None], edges, global_start[None], settings, max_iterations, tolerance)
        overall = refined[0] if np.all(np.isfinite(refined)) else global_start
    else:
        overall = global_start
    centres = 0.5 * (edges[1:] + edges[:-1])
    above = centres > overall[MU0] + 0.5 * overall[GAIN]
    n_entries = counts.sum(axis=1)
    with np.errstate(all="ignore"):
        fraction = counts[:, above].sum(axis=1) / n_entries
        reference = summed[above].sum() / summed.sum()
        scale = np.where(np.isfinite(fraction) & (reference > 0), fraction / reference, 1.0)
    params = np.broadcast_to(overall, (len(counts), 5)).copy()
    params[:, NORM] = np.maximum(n_entries, 1.0) * overall[NORM] / max(summed.sum(), 1.0)
    lam_lo = lower[LAM] + 1e-4 * (upper[LAM] - lower[LAM])
    params[:, LAM] = np.clip(overall[LAM] * np.maximum(scale, 1e-3), lam_lo, upper[LAM])
    return params
