"""Seeds of the pixel-charge-distribution fits from the data: 0 e- peak, noise, gain, dark current.

With ``calibration: "auto"`` the dark-current fits do not assume a gain: the pixel
charges themselves give

* ``mu0`` and ``sigma``: the zero-electron peak (mode) and the spread of its lower side
  (:func:`waders.ana.fitting.peaks.mode_and_lower_width`, unaffected by the charge above);
* ``gain``: the distance from the zero-electron peak to the nearest significant peak
  above it, refined by the 1 e- and 2 e- peak positions
  (:func:`waders.ana.fitting.peaks.locate_peaks`);
* ``lam``: from the pixels around the 0 e- and 1 e- peaks: ``lam = N1 / N0`` (Poisson
  ratio of the peak areas, each counted within half a gain of its peak);

and the fit range, bin width and parameter limits follow from them
(:func:`settings_from_seeds`), whatever the gain (1 or 1000 ADU/e-).  When no peak above
the zero-electron one stands out at four standard deviations (small images, low dark
current), a configured gain guess can seed the fit instead (:func:`with_gain_guess`), if it
is at least three noise sigmas.  Otherwise -- no single-electron resolution -- the seeds
say so (``resolved`` False, ``reason``) and the fit is not attempted: its gain would be
meaningless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .pcd import PCDSettings
from .peaks import locate_peaks

__all__ = ["MIN_RESOLUTION", "PCDSeeds", "seed_pcd", "settings_from_seeds", "with_gain_guess"]

#: Fewest noise sigmas between the 0 e- and 1 e- peaks for single-electron resolution.
MIN_RESOLUTION = 3.0
#: Fewest pixels to look for peaks in.
MIN_PIXELS = 100


@dataclass(frozen=True)
class PCDSeeds:
    """Data-driven starting values of a PCD fit.

    Attributes
    ----------
    mu0, sigma : float
        Zero-electron peak position and noise (input units, ADU).
    gain : float
        Distance between the electron peaks (ADU/e-; NaN when not resolved).
    lam : float
        Dark current (e-/pixel; NaN when not resolved).
    resolved : bool
        Whether single-electron peaks were found.
    reason : str
        Why not (empty when resolved).
    source : str
        ``"data"`` (the peaks found) or ``"gain guess"`` (:func:`with_gain_guess`).
    """

    mu0: float
    sigma: float
    gain: float
    lam: float
    resolved: bool
    reason: str = ""
    source: str = "data"


def seed_pcd(values: np.ndarray) -> PCDSeeds:
    """Find the 0 e- and 1 e- peaks of pixel charges and derive the seeds (see the module docstring).

    Parameters
    ----------
    values : ndarray
        Pixel charges (ADU); NaN are ignored.

    Returns
    -------
    PCDSeeds
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    nan = float("nan")
    if values.size < MIN_PIXELS:
        return PCDSeeds(nan, nan, nan, nan, False, f"too few pixels to find the electron peaks ({values.size})")
    positions, sigma, gain, _, status = locate_peaks(values, 3, None)
    mu0 = float(positions[0])
    if status != "ok" or not math.isfinite(gain):
        return PCDSeeds(mu0, sigma, nan, nan, False, f"no single-electron peak found (noise {sigma:.3g} ADU)")
    if not gain > MIN_RESOLUTION * sigma:
        reason = f"peaks not resolved (spacing {gain:.3g} ADU, noise {sigma:.3g} ADU)"
        return PCDSeeds(mu0, sigma, nan, nan, False, reason)
    return PCDSeeds(mu0, float(sigma), float(gain), _ratio_of_peaks(values, mu0, gain), True)


def _ratio_of_peaks(values: np.ndarray, mu0: float, gain: float) -> float:
    """Dark current from the ratio N1 / N0 of the pixels within half a gain of the 1 e- and 0 e- peaks."""
    n0 = np.count_nonzero(np.abs(values - mu0) < 0.5 * gain)
    n1 = np.count_nonzero(np.abs(values - mu0 - gain) < 0.5 * gain)
    return float(n1 / n0) if n0 else float("nan")


def with_gain_guess(seeds: PCDSeeds, values: np.ndarray, gain: float | None) -> PCDSeeds:
    """Seeds from a gain guess when no 1 e- peak stood out of the data (e.g. few pixels, low dark current).

    The guess is used only when it is at least ``MIN_RESOLUTION`` noise sigmas: the fit then
    measures the gain (its starting values look for the 1 e- peak near the guess) and the
    fit-quality rule judges it; otherwise the seeds stay unresolved.
    """
    if seeds.resolved or gain is None or not math.isfinite(seeds.sigma) or not gain > MIN_RESOLUTION * seeds.sigma:
        return seeds
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    lam = _ratio_of_peaks(values, seeds.mu0, gain)
    return PCDSeeds(seeds.mu0, seeds.sigma, float(gain), lam if math.isfinite(lam) else 0.1, True, "", "gain guess")


def settings_from_seeds(
    seeds: PCDSeeds, *, n_peaks: int, fit_gain: bool = True, minos: bool = True, binned_per_slice: bool = False
) -> PCDSettings:
    """Fit range, binning and limits of a PCD fit from its seeds.

    * range: ``mu0 - 5 sigma`` .. half a gain above the peak of ``max(n_peaks - 2, 1)``
      electrons, so that the last modelled peak (``n_peaks - 1``) describes the tail that
      enters the range (``n_peaks`` = 2 or 3: the 0 e- and 1 e- peaks, as in pysimdamicm's usual
      configurations; real pixel-charge distributions are not exactly Poisson at higher
      charges, where the dark current varies across pixels);
    * bins: ``sigma / 20`` wide (``2 sqrt(N)`` bins per slice for slice fits), as in tuned
      configurations of real images (e.g. 0.01 ADU for 0.21 ADU of noise);
    * ``mu0`` within half a gain of its seed, ``sigma`` within 0.1 .. 5 times its seed,
      the gain within 0.5 .. 2 times its seed, ``lam`` from 0 to ``max(1, 5 lam)``
      (``n_peaks`` at most): a fit ending at one of these limits is invalid.

    Parameters
    ----------
    seeds : PCDSeeds
        Resolved seeds (:func:`seed_pcd`).
    n_peaks : int
        Number of Poisson terms of the model.
    fit_gain, minos : bool
        As in :class:`~waders.ana.fitting.pcd.PCDSettings`.
    binned_per_slice : bool
        Automatic binning (for the slice fits, whose histograms hold few pixels).
    """
    mu0, sigma, gain = seeds.mu0, seeds.sigma, seeds.gain
    lam_max = min(max(1.0, 5.0 * seeds.lam), float(n_peaks))
    return PCDSettings(
        n_peaks=n_peaks,
        calibration=gain,
        fit_gain=fit_gain,
        x_min=mu0 - 5.0 * sigma,
        x_max=mu0 + (max(n_peaks - 2, 1) + 0.5) * gain,
        binning_size=-1.0 if binned_per_slice else sigma / 20.0,
        mu_limits=(mu0 - 0.5 * gain, mu0 + 0.5 * gain),
        sigma_limits=(0.1 * sigma, 5.0 * sigma),
        lambda_limits=(0.0, lam_max),
        gain_limits=(0.5 * gain, 2.0 * gain),
        minos=minos,
    )
