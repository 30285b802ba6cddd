"""Locating the electron peaks of a pixel-charge distribution (no fit): the 0 e- peak and the gain.

Shared by FitCalibrationConstant (:mod:`waders.ana.gain`) and the data-driven seeds of the
dark-current fits (:mod:`waders.ana.fitting.seeds`).

* :func:`mode_and_lower_width` -- the zero-electron peak: the mode of the distribution
  (stepping down by one gain while a lower peak is still prominent, for high dark
  currents where the 1 e- peak is the highest) and the spread of its lower side
  (half-normal: 1.4826 times the median distance below the mode), so that the charge
  of the pixels does not inflate it;
* :func:`first_peak_distance` -- the distance to the nearest significant peak above the
  zero-electron peak (the gain when that is the 1 e- peak);
* :func:`locate_peaks` -- both, then the 1 .. n-1 e- peaks one after the other.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MIN_PEAK_PIXELS", "first_peak_distance", "locate_peaks", "mode_and_lower_width"]

_MAD_TO_SIGMA = 1.482602218505602
#: Fewest pixels near a peak for it to be fitted.
MIN_PEAK_PIXELS = 5


def _smooth(counts: np.ndarray, half_width: int) -> np.ndarray:
    """Running mean over 2 * half_width + 1 bins (fewer at the edges, so the edges are not pulled down)."""
    cumulative = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    index = np.arange(len(counts))
    lo, hi = np.maximum(index - half_width, 0), np.minimum(index + half_width + 1, len(counts))
    return (cumulative[hi] - cumulative[lo]) / (hi - lo)


def mode_and_lower_width(values: np.ndarray, centre: float, width: float, gain: float | None) -> tuple[float, float]:
    """Mode of the zero-electron peak and the spread of the values below it (half-normal).

    With a gain guess, the mode steps down by one gain while a peak at least a tenth as
    high is found there (high dark current: the one-electron peak can be the highest).
    """
    reach = 8 * width + (3 * gain if gain else 0.0)
    edges = np.linspace(centre - reach, centre + 8 * width, 641 + (int(3 * gain / width * 40) if gain else 0))
    counts, _ = np.histogram(values, edges)
    smooth = _smooth(counts, 2)
    centres = 0.5 * (edges[1:] + edges[:-1])
    i0 = int(np.argmax(smooth))
    while gain:
        near = np.abs(centres - (centres[i0] - gain)) < 0.25 * gain
        if not near.any() or centres[i0] - gain < centres[0]:
            break
        j = int(np.flatnonzero(near)[np.argmax(smooth[near])])
        if smooth[j] < 0.1 * smooth[i0]:
            break
        i0 = j
    mode = float(centres[i0])
    # half width at half maximum on the lower side gives a first sigma; the mode is refined as the
    # mean within +/- 2 of those sigmas (a fixed point at the centre of a symmetric peak), and sigma
    # as the half-normal median of the values within 3 of those sigmas below it
    lower_half = np.flatnonzero(smooth[: i0 + 1] < 0.5 * smooth[i0])
    bin_width = float(edges[1] - edges[0])
    hwhm = (i0 - lower_half[-1]) * bin_width if lower_half.size else 8 * width
    rough = max(hwhm / 1.1774, bin_width)
    near = values[np.abs(values - mode) < 3 * rough]
    for _ in range(4):
        inside = near[np.abs(near - mode) < 2 * rough]
        if inside.size < 10:
            break
        mode = float(inside.mean())
    below = values[(values < mode) & (values > mode - 3 * rough)]
    sigma = _MAD_TO_SIGMA * float(np.median(mode - below)) if below.size >= 5 else width
    return mode, sigma if sigma > 0 else width


def locate_peaks(
    values: np.ndarray, n_peaks: int, calibration: float | None
) -> tuple[np.ndarray, float, float, str, str]:
    """Approximate positions of the 0 .. n_peaks-1 electron peaks.

    Parameters
    ----------
    values : ndarray
        Pixel charges (ADU), finite.
    n_peaks : int
        Number of peaks.
    calibration : float or None
        Gain guess (ADU/e-); None: from the first significant peak above the zero-electron peak.

    Returns
    -------
    positions : ndarray
        Position guesses of the peaks 0 .. n_peaks (ADU; the last one bounds the fit range).
    sigma : float
        Width of the zero-electron peak (ADU).
    gain : float
        Gain guess (ADU/e-).
    source : str
        ``"calibration"`` or ``"peak finding"``.
    status : str
        ``"ok"`` or why the peaks could not be located.
    """
    median = float(np.median(values))
    spread = _MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    if not spread > 0:
        spread = float(np.std(values)) or 1.0
    mu0, sigma = mode_and_lower_width(values, median, spread, calibration)
    if calibration is not None:
        gain, source = float(calibration), "calibration"
    else:
        gain, source = first_peak_distance(values, mu0, sigma), "peak finding"
        if not math.isfinite(gain):
            return np.array([mu0]), sigma, gain, source, "no single-electron peak found"
        mu0, sigma = mode_and_lower_width(values, median, spread, gain)  # the mode may be a higher peak
    positions = [mu0]
    estimate = gain
    step = max(sigma / 4, gain / 200)
    for k in range(1, n_peaks + 1):
        predicted = positions[-1] + estimate
        half = max(0.3 * estimate, 2 * sigma)
        near = values[np.abs(values - predicted) < half]
        if near.size < MIN_PEAK_PIXELS:
            positions.append(predicted)
            continue
        edges = np.arange(predicted - half, predicted + half + step, step)
        counts, _ = np.histogram(near, edges)
        smooth = _smooth(counts, 2)
        top = int(np.argmax(smooth))
        drop = 3 * math.sqrt(max(smooth[top], 1.0) / 5)
        if min(smooth[top] - smooth[0], smooth[top] - smooth[-1]) < drop:  # no peak inside (e.g. a tail)
            positions.append(predicted)
            continue
        positions.append(float(0.5 * (edges[top] + edges[top + 1])))
        estimate = (positions[-1] - mu0) / k
    return np.array(positions), sigma, estimate, source, "ok"


def first_peak_distance(values: np.ndarray, mu0: float, sigma: float) -> float:
    """Distance from the zero-electron peak to the nearest significant peak above it (NaN if none).

    A peak is a local maximum of a histogram with half-sigma bins (from 1.5 sigma above the
    zero-electron peak) whose height exceeds both the lowest point between it and the
    zero-electron peak and the lowest point in the four sigmas after it by four standard
    deviations of the (smoothed) counts.
    """
    top = min(float(values.max()), mu0 + 300 * sigma)
    low = mu0 + 1.5 * sigma
    if top <= low + 4 * sigma:
        return float("nan")
    edges = np.arange(low, top + 0.5 * sigma, 0.5 * sigma)
    counts, _ = np.histogram(values, edges)
    smooth = _smooth(counts, 1)
    reach = 8
    padded = np.r_[smooth, np.full(reach, smooth[-1])]
    right = np.lib.stride_tricks.sliding_window_view(padded, reach + 1).min(axis=1)[: len(smooth)]
    left = np.minimum.accumulate(smooth)
    inner = np.arange(1, len(smooth) - 1)
    local = (smooth[inner] > smooth[inner - 1]) & (smooth[inner] >= smooth[inner + 1])
    prominence = smooth[inner] - np.maximum(left[inner], right[inner])
    threshold = 4 * np.sqrt(np.maximum(smooth[inner], 1.0) / 3) + 1
    candidates = inner[local & (prominence >= threshold)]
    if candidates.size == 0:
        return float("nan")
    return float(0.5 * (edges[candidates[0]] + edges[candidates[0] + 1]) - mu0)
