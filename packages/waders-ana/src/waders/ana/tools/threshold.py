"""The optimal 0e/1e pixel threshold (pysimdamicm's ``get_energy_threshold``, reference E.5).

Pixel values of a skipper image follow the dark-current model of FitDarkCurrentProcess
(reference B.4.3): ``f(x) = sum_k Poisson(k; lam) Normal(x; mu0 + k g, sigma)`` with ``mu0``
the pedestal, ``g`` the gain (ADU/e-, 1 for images in electrons), ``sigma`` the readout
noise and ``lam`` the mean number of electrons per pixel.  A pixel is called "charged"
when ``x >= t``.  With the pixels that hold at least one electron as the positive class:

* true positives  ``TP(t) = sum_{k>=1} P(k) Q((t - mu0 - k g) / sigma)``,
* false positives ``FP(t) = P(0) Q((t - mu0) / sigma)``,
* false negatives ``FN(t) = sum_{k>=1} P(k) (1 - Q((t - mu0 - k g) / sigma))``,

(``Q`` the upper tail of the standard normal) and ``F1 = 2 TP / (2 TP + FP + FN)``.  The
threshold is the ``t`` maximising F1 (dense grid between the 0e and 1e peaks, then a bounded
scalar refinement).  Precision ``TP / (TP + FP)`` and recall ``TP / (TP + FN)`` at that
threshold are reported with it.

Deliberate difference from pysimdamicm: the positive class is "at least one electron"
(pysimdamicm's script describes the 1e- component only); the two agree to O(lam) and the
waders definition keeps 2e- pixels above the threshold from counting as false positives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import ndtr
from scipy.stats import poisson

from waders.core.errors import ConfigError

__all__ = ["ThresholdResult", "f1_curve", "optimal_threshold", "threshold_scan"]

#: Grid points of the first, coarse search.
_GRID = 2001


@dataclass(frozen=True)
class ThresholdResult:
    """The optimal threshold of one set of model parameters.

    Attributes
    ----------
    threshold : float
        Threshold ``t`` (units of the pixel values: ADU, or e- when ``gain`` is 1).
    threshold_e : float
        ``(t - mu0) / gain``: the threshold in electrons above the pedestal.
    f1, precision, recall : float
        Scores at the threshold.
    mu0, sigma, gain, lam : float
        The model parameters.
    """

    threshold: float
    threshold_e: float
    f1: float
    precision: float
    recall: float
    mu0: float
    sigma: float
    gain: float
    lam: float

    def as_dict(self) -> dict[str, float]:
        """The result as a plain dictionary."""
        return asdict(self)


def _check(mu0: float, sigma: float, gain: float, lam: float) -> None:
    for name, value in (("mu0", mu0), ("sigma", sigma), ("gain", gain), ("lam", lam)):
        if not np.isfinite(value):
            raise ConfigError(f"energy threshold: {name} = {value} is not a finite number")
    if sigma <= 0 or gain <= 0 or lam <= 0:
        raise ConfigError(
            f"energy threshold: sigma, gain and lambda must be positive (got {sigma}, {gain}, {lam})",
            hint="give --dcfit MU0 SIGMA GAIN LAMBDA with SIGMA, GAIN, LAMBDA > 0",
        )


def _counts(lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Electron numbers k >= 1 carrying all but 1e-12 of the probability, and P(k)."""
    kmax = max(2, int(poisson.isf(1e-12, lam)) + 1)
    k = np.arange(1, kmax + 1)
    return k, poisson.pmf(k, lam)


def f1_curve(t: np.ndarray, mu0: float, sigma: float, gain: float, lam: float) -> dict[str, np.ndarray]:
    """F1 score, precision and recall of the cut ``x >= t`` (vectorised over ``t``).

    Parameters
    ----------
    t : ndarray
        Thresholds (units of the pixel values).
    mu0, sigma, gain, lam : float
        Pedestal, noise (same units as ``t``), gain (units per electron) and mean
        electrons per pixel.

    Returns
    -------
    dict
        ``f1``, ``precision``, ``recall``, ``tp``, ``fp``, ``fn`` (probabilities per pixel).
    """
    _check(mu0, sigma, gain, lam)
    t = np.asarray(t, dtype=np.float64)
    k, pk = _counts(lam)
    above = ndtr((mu0 + k[:, None] * gain - t[None, :]) / sigma)  # P(x >= t | k)
    tp = (pk[:, None] * above).sum(axis=0)
    fn = pk.sum() - tp
    fp = poisson.pmf(0, lam) * ndtr((mu0 - t) / sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
    return {"f1": f1, "precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn}


def optimal_threshold(
    mu0: float, sigma: float, gain: float, lam: float, xrange: tuple[float, float] | None = None
) -> ThresholdResult:
    """The threshold maximising the F1 score of the 0e/1e separation.

    Parameters
    ----------
    mu0 : float
        Pedestal (0e peak position).
    sigma : float
        Readout noise (same units).
    gain : float
        Distance between the electron peaks (units per electron; 1 for images in e-).
    lam : float
        Mean number of electrons per pixel (> 0).
    xrange : (float, float), optional
        Range searched (default: the 0e peak to 1e peak plus 5 sigma).

    Returns
    -------
    ThresholdResult
    """
    _check(mu0, sigma, gain, lam)
    lo, hi = xrange if xrange is not None else (mu0, mu0 + gain + 5 * sigma)
    if not hi > lo:
        raise ConfigError(
            f"energy threshold: empty search range {lo}..{hi}", hint="give --xrange MIN MAX with MIN < MAX"
        )
    grid = np.linspace(lo, hi, _GRID)
    best = int(np.argmax(f1_curve(grid, mu0, sigma, gain, lam)["f1"]))
    step = grid[1] - grid[0]
    a, b = max(lo, grid[best] - step), min(hi, grid[best] + step)
    refined = minimize_scalar(
        lambda x: -float(f1_curve(np.array([x]), mu0, sigma, gain, lam)["f1"][0]),
        bounds=(a, b),
        method="bounded",
        options={"xatol": 1e-6 * max(sigma, 1e-12)},
    )
    t = float(refined.x)
    scores = f1_curve(np.array([t]), mu0, sigma, gain, lam)
    return ThresholdResult(
        threshold=t,
        threshold_e=(t - mu0) / gain,
        f1=float(scores["f1"][0]),
        precision=float(scores["precision"][0]),
        recall=float(scores["recall"][0]),
        mu0=float(mu0),
        sigma=float(sigma),
        gain=float(gain),
        lam=float(lam),
    )


def threshold_scan(
    mu0: float, sigmas: np.ndarray, gain: float, lams: np.ndarray, xrange: tuple[float, float] | None = None
) -> list[ThresholdResult]:
    """Optimal thresholds over a grid of noise values and dark currents (``--scan-sigma/--scan-lam``).

    Parameters
    ----------
    mu0, gain : float
        Pedestal and gain.
    sigmas, lams : ndarray
        Noise values and mean electrons per pixel; every combination is computed.
    xrange : (float, float), optional
        Search range (default per combination, see :func:`optimal_threshold`).

    Returns
    -------
    list of ThresholdResult
        Ordered by sigma, then lambda.
    """
    return [optimal_threshold(mu0, float(s), gain, float(lam), xrange) for s in sigmas for lam in lams]
