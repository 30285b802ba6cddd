"""FitCalibrationConstant: the gain as the slope of the electron-peak positions (linearity study).

The 0, 1, ..., n_peaks-1 electron peaks of an amplifier's pixel-charge distribution are
located (the gain guess is the configured ``calibration`` or, without one, the distance
from the zero-electron peak to the first significant peak found to its right), then
their positions and widths are fitted *independently* -- one Gaussian of free amplitude,
position and width per peak, all in one binned Poisson likelihood fit (iminuit), so
that the tails of neighbouring peaks are accounted for -- and a straight line is fitted
to position versus electron number with the full covariance of the positions:
gain = slope (ADU/e-), with its error; the residuals measure the linearity.

Deliberate differences from pysimdamicm (reference B.5, F.1.15):

* the first two peaks found are ordered by *position* (pysimdamicm ranked them by
  prominence and could take non-adjacent peaks, giving twice the gain or a negative one);
* every peak is fitted with its neighbours (pysimdamicm took the mean and standard
  deviation of the pixels in a window, biased by the neighbouring peaks' tails);
* the straight line uses the covariance of the fitted positions and reports the
  intercept error (pysimdamicm forced it to 0);
* results are recorded per amplifier (pysimdamicm wrote one global ``ADC2e``);
* the default image is ``mean_compressed_pedestal_subtracted`` and the default number of
  peaks 3 (pysimdamicm's class defaults: ``mean_compressed`` and 100; its configurations
  use these values);
* a fit that fails is recorded with ``valid = False`` and a status (no exception).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier
from waders.core.kinds import Float, Int, Optional
from waders.core.lazy import lazy_module

from .base import AnalysisProcess
from .darkcurrent import CLUSTER_MASK
from .fitting.peaks import MIN_PEAK_PIXELS, locate_peaks
from .fitting.quality import assess
from .plotting import keep_figure, wants_plots
from .summary import Fallback, SummaryPart, study_part

special = lazy_module("scipy.special")

__all__ = ["FitCalibrationConstant", "PeakFits", "fit_peaks", "locate_peaks"]

log = logging.getLogger(__name__)


@dataclass
class PeakFits:
    """Fitted electron peaks and the straight line through them.

    Attributes
    ----------
    electrons : ndarray of int
        Electron number of every peak (0 .. n_peaks-1).
    positions, position_errs, widths, width_errs, counts : ndarray
        Fitted position (ADU), width (ADU) and number of pixels of every peak (NaN when not fitted).
    gain, gain_err, intercept, intercept_err : float
        Straight line position = intercept + gain * electrons (ADU/e-, ADU).
    residuals, pulls : ndarray
        Position minus line (ADU), and that divided by the position error.
    chi2_ndf : float
        Chi-square per degree of freedom of the straight line (NaN for two peaks).
    initial_gain : float
        Gain used to locate the peaks, and where it came from (``gain_source``).
    valid, status : bool, str
        Whether the fit succeeded, and ``"ok"`` or the reason.
    """

    electrons: np.ndarray
    positions: np.ndarray
    position_errs: np.ndarray
    widths: np.ndarray
    width_errs: np.ndarray
    counts: np.ndarray
    gain: float = float("nan")
    gain_err: float = float("nan")
    intercept: float = float("nan")
    intercept_err: float = float("nan")
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pulls: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chi2_ndf: float = float("nan")
    initial_gain: float = float("nan")
    gain_source: str = ""
    valid: bool = False
    status: str = "not fitted"
    noise: float = float("nan")
    peak_fit_chi2_ndf: float = float("nan")


def _peak_model(n_fit: int, next_position: float, next_width: float) -> Any:
    """Cumulative model: free Gaussians, plus the next peak (fixed position and width) whose tail enters."""

    def model(x: np.ndarray, *par: float) -> np.ndarray:
        p = np.asarray(par)
        amplitude, mean, width = p[:n_fit], p[n_fit : 2 * n_fit], p[2 * n_fit : 3 * n_fit]
        x = np.asarray(x)
        return special.ndtr((x[:, None] - mean) / width) @ amplitude + p[-1] * special.ndtr(
            (x - next_position) / next_width
        )

    return model


def fit_peaks(
    values: np.ndarray, n_peaks: int, calibration: float | None = None, n_sigma_win_fit: float = 3.0
) -> PeakFits:
    """Locate and fit the electron peaks, then fit the gain as the slope of their positions.

    Parameters
    ----------
    values : ndarray
        Pixel charges (ADU); NaN are ignored.
    n_peaks : int
        Number of peaks (at least 2).
    calibration : float, optional
        Gain guess (ADU/e-); found from the data if omitted.
    n_sigma_win_fit : float
        The fit range extends this many noise sigmas below the zero-electron peak and
        above the last peak (at most half a gain above it).

    Returns
    -------
    PeakFits
        Never raises for data without peaks: ``valid`` is False and ``status`` says why.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    electrons = np.arange(n_peaks)
    nan = np.full(n_peaks, np.nan)
    result = PeakFits(electrons, nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy())
    if values.size < 10 * n_peaks:
        result.status = f"too few pixels ({values.size})"
        return result
    guesses, sigma, gain, source, status = locate_peaks(values, n_peaks, calibration)
    result.initial_gain, result.gain_source = gain, source
    if status != "ok":
        result.status = status
        return result
    if not (gain > 2 * sigma):
        result.status = f"peaks not resolved (gain guess {gain:.3g} ADU, noise {sigma:.3g} ADU)"
        return result
    half = max(sigma, 0.1 * gain)
    populated = np.array([np.count_nonzero(np.abs(values - p) < half) for p in guesses])
    # pixels of the zero-electron peak's tail expected in each window: a peak must stand out of them
    zero = populated[0] / max(2 * special.ndtr(half / sigma) - 1, 1e-12)
    tail = zero * (
        special.ndtr((guesses + half - guesses[0]) / sigma) - special.ndtr((guesses - half - guesses[0]) / sigma)
    )
    tail[0] = 0.0
    significant = (populated >= MIN_PEAK_PIXELS) & (populated - tail > 5 * np.sqrt(tail + 1))
    enough = significant[:n_peaks]
    fitted = np.arange(n_peaks if enough.all() else int(np.argmin(enough)))  # consecutive peaks from 0 e-
    if fitted.size < 2:
        result.status = "fewer than two populated peaks"
        return result
    lo = guesses[0] - n_sigma_win_fit * sigma
    hi = guesses[fitted[-1]] + min(n_sigma_win_fit * sigma, 0.5 * gain)
    step = sigma / 5
    n_bins = int(min(max((hi - lo) / step, 10), 20_000))
    edges = np.linspace(lo, hi, n_bins + 1)
    counts, _ = np.histogram(values, edges)
    try:
        next_peak = fitted[-1] + 1  # its tail enters the range: modelled when it is populated
        minuit = _minimise(
            edges, counts, guesses[fitted], sigma, gain, populated[fitted], guesses[next_peak], significant[next_peak]
        )
    except (RuntimeError, ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
        result.status = f"fit failed: {err}"
        return result
    m = fitted.size
    par = np.array(minuit.values)
    covariance = (
        np.array(minuit.covariance) if minuit.covariance is not None else np.full((3 * m + 1, 3 * m + 1), np.nan)
    )
    err = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    result.counts[fitted], result.positions[fitted], result.widths[fitted] = par[:m], par[m : 2 * m], par[2 * m : 3 * m]
    result.position_errs[fitted], result.width_errs[fitted] = err[m : 2 * m], err[2 * m : 3 * m]
    result.noise = float(par[2 * m])
    _line(result, fitted, covariance[m : 2 * m, m : 2 * m])
    at_limit = [str(i) for i in fitted if _at_limit(minuit, m + i)]
    determined = math.isfinite(result.gain_err) and result.gain_err < 0.1 * abs(result.gain)
    n_free = 3 * m + (1 if significant[next_peak] else 0)
    quality = assess(
        chi2=float(minuit.fval),
        ndf=len(counts) - n_free,
        n_entries=float(counts.sum()),
        min_entries=MIN_PEAK_PIXELS * m,
        converged=bool(minuit.fmin.is_valid),
        posdef=bool(minuit.fmin.has_posdef_covar) or not minuit.fmin.is_valid,
        at_limit={f"position of peak {i}": True for i in at_limit},
        other={"gain undetermined (error above 10 %)": not determined},
    )
    notes = list(quality.reasons)
    if fitted.size < n_peaks:  # the line through the populated peaks still measures the gain
        notes.append(f"peaks {', '.join(map(str, np.setdiff1d(electrons, fitted)))} not populated")
    result.peak_fit_chi2_ndf = float(minuit.fval) / max(len(counts) - n_free, 1)
    result.valid = quality.valid
    result.status = "; ".join(notes) or "ok"
    return result


def _minimise(
    edges: np.ndarray,
    counts: np.ndarray,
    guesses: np.ndarray,
    sigma: float,
    gain: float,
    populated: np.ndarray,
    next_position: float,
    with_next: bool,
) -> Any:
    from iminuit import Minuit
    from iminuit.cost import ExtendedBinnedNLL

    m = len(guesses)
    names = [f"n{i}" for i in range(m)] + [f"mu{i}" for i in range(m)] + [f"sigma{i}" for i in range(m)] + ["n_next"]
    model = _peak_model(m, next_position, sigma)
    model._parameters = dict.fromkeys(names)  # parameter names for iminuit's describe()
    start = np.r_[populated * 1.5, guesses, np.full(m, sigma), max(populated[-1] * 0.1, 1.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported through the status
        minuit = Minuit(ExtendedBinnedNLL(counts, edges, model), *start, name=names)
        for i in range(m):
            minuit.limits[f"n{i}"] = (0.0, None)
            minuit.limits[f"mu{i}"] = (guesses[i] - 0.5 * gain, guesses[i] + 0.5 * gain)
            minuit.limits[f"sigma{i}"] = (0.1 * sigma, 5.0 * sigma)
            minuit.errors[f"mu{i}"] = 0.1 * sigma
            minuit.errors[f"sigma{i}"] = 0.05 * sigma
        minuit.limits["n_next"] = (0.0, None)
        if not with_next:
            minuit.values["n_next"] = 0.0
            minuit.fixed["n_next"] = True
        minuit.migrad(iterate=5)
        if not minuit.fmin.is_valid:
            minuit.strategy = 2
            minuit.migrad(iterate=5)
        if minuit.fmin.is_valid:
            minuit.hesse()
    return minuit


def _at_limit(minuit: Any, index: int) -> bool:
    lo, hi = minuit.limits[index]
    value, error = minuit.values[index], minuit.errors[index]
    return bool(value - lo < 0.01 * error or hi - value < 0.01 * error)


def _line(result: PeakFits, fitted: np.ndarray, covariance: np.ndarray) -> None:
    """Generalised least-squares straight line through the fitted positions."""
    x = result.electrons[fitted].astype(np.float64)
    y = result.positions[fitted]
    design = np.column_stack([np.ones_like(x), x])
    with np.errstate(all="ignore"):
        weight = np.linalg.pinv(covariance) if np.all(np.isfinite(covariance)) else np.diag(1 / np.diag(covariance))
        line_cov = np.linalg.pinv(design.T @ weight @ design)
        coeffs = line_cov @ design.T @ weight @ y
    residuals = y - design @ coeffs
    result.intercept, result.gain = float(coeffs[0]), float(coeffs[1])
    result.intercept_err = float(math.sqrt(max(line_cov[0, 0], 0.0)))
    result.gain_err = float(math.sqrt(max(line_cov[1, 1], 0.0)))
    result.residuals = np.full(len(result.electrons), np.nan)
    result.residuals[fitted] = residuals
    result.pulls = result.residuals / result.position_errs
    ndf = len(x) - 2
    result.chi2_ndf = float(residuals @ weight @ residuals / ndf) if ndf > 0 else float("nan")


class FitCalibrationConstant(AnalysisProcess):
    """Fit the positions of the 0, 1, ... electron peaks; the gain is the slope of position vs electrons.

    Records per amplifier ``gain_adu_per_e``, ``gain_err``, the intercept, and per peak the
    positions, widths, pixel counts and residuals from the straight line (linearity).
    """

    order: ClassVar[int] = 45
    per_amplifier: ClassVar[bool] = True
    summary_order: ClassVar[int] = 40
    products = (
        Product("gain_adu_per_e", "result", "ADU/e-", "slope of the peak positions (gain_err its error)"),
        Product("peak_positions_adu", "result", "ADU", "fitted position of every electron peak"),
        Product("residuals_adu", "result", "ADU", "peak positions minus the straight line (linearity)"),
        Product("valid", "result", doc="whether the peak fits are usable (status: why not)"),
        Product("peaks", "figure", doc="peak positions, residuals, widths and the PCD in electrons"),
    )

    image = Param("mean_compressed_pedestal_subtracted", doc="input image product (ADU)")
    n_peaks = Param(3, Int(min=2), per_amplifier=True, doc="number of electron peaks fitted (0 .. n-1)")
    calibration = Param(
        None, Optional(Float(positive=True)), per_amplifier=True, doc="gain guess (ADU/e-); null: found from the peaks"
    )
    n_sigma_win_fit = Param(3.0, Float(min=0.5), doc="fit range: noise sigmas below the 0 e- and above the last peak")
    pcd_bin_width = Param(0.05, Float(positive=True), doc="bin width of the PCD plot (e-)")
    mask_clusters = Param(False, doc="exclude the cluster mask of BuildClusterMask (must run earlier)")

    ignored_keys: ClassVar[dict[str, str]] = {
        "use_pcd": "explicit PCD array of pysimdamicm's Python API; call waders.ana.gain.fit_peaks instead",
    }

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """Its results under ``studies``; the gain and its error per amplifier unless a dark-current fit gives them."""
        part = study_part(self, image)
        for name, amp in image.amplifiers.items():
            fit = amp.results.get(self.name)
            if fit:
                part.amplifiers[name] = {
                    "gain_adu_per_e": Fallback(fit.get("gain_adu_per_e")),
                    "gain_err": Fallback(fit.get("gain_err")),
                }
        return part

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        data = self.input_image(amplifier)
        excluded = amplifier.geometry.mask("active") | self.window_mask(image, amplifier)
        if self.mask_clusters:
            if not amplifier.has(CLUSTER_MASK):
                raise DataError(
                    f"{self.name}: mask_clusters is set but amplifier {amplifier.name} has no cluster mask",
                    hint="run ClusterFinder and BuildClusterMask first, or set mask_clusters to false",
                )
            excluded |= np.asarray(amplifier.get(CLUSTER_MASK), dtype=bool)
        values = data[~excluded & np.isfinite(data)]
        names = amplifier.names
        try:
            calibration = self.value_for("calibration", names)
            n_peaks = int(self.value_for("n_peaks", names))
        except ConfigError as err:
            raise ConfigError(err.message, hint=err.hint) from None
        if calibration is not None and calibration <= 0:
            raise ConfigError(f"{self.name}.calibration must be positive for amplifier {amplifier.name}")
        fits = fit_peaks(values, n_peaks, calibration, self.n_sigma_win_fit)
        amplifier.record(
            self.name,
            gain_adu_per_e=fits.gain,
            gain_err=fits.gain_err,
            intercept_adu=fits.intercept,
            intercept_err=fits.intercept_err,
            peak_electrons=fits.electrons,
            peak_positions_adu=fits.positions,
            peak_position_errs=fits.position_errs,
            peak_widths_adu=fits.widths,
            peak_width_errs=fits.width_errs,
            peak_counts=fits.counts,
            residuals_adu=fits.residuals,
            residual_pulls=fits.pulls,
            linearity_chi2_ndf=fits.chi2_ndf,
            peak_fit_chi2_ndf=fits.peak_fit_chi2_ndf,
            sigma_e=fits.noise / fits.gain if fits.gain else float("nan"),
            initial_gain=fits.initial_gain,
            gain_source=fits.gain_source,
            valid=fits.valid,
            status=fits.status,
            n_pixels=int(values.size),
        )
        if not fits.valid:
            log.warning("%s, amplifier %s: %s: fit invalid: %s", image.label, amplifier.name, self.name, fits.status)
        if wants_plots(self, context):
            self._plot(image, amplifier, context, fits, values)

    def _plot(
        self, image: SkipperImage, amplifier: Amplifier, context: RunContext, fits: PeakFits, values: np.ndarray
    ) -> None:
        from matplotlib.figure import Figure

        k, ok = fits.electrons, np.isfinite(fits.positions)
        fig = Figure(figsize=(10.0, 7.0))
        (ax_pos, ax_res), (ax_width, ax_pcd) = fig.subplots(2, 2)
        ax_pos.errorbar(k[ok], fits.positions[ok], fits.position_errs[ok], fmt="o", color="k", ms=4)
        if math.isfinite(fits.gain):
            ax_pos.plot(k, fits.intercept + fits.gain * k, color="tab:red", label=f"gain {fits.gain:.4g} ADU/e-")
            ax_pos.legend(fontsize=8)
        ax_pos.set(xlabel="electrons", ylabel="peak position (ADU)")
        ax_res.errorbar(k[ok], fits.residuals[ok], fits.position_errs[ok], fmt="o", color="k", ms=4)
        ax_res.axhline(0, color="tab:red", lw=1)
        ax_res.set(xlabel="electrons", ylabel="position - line (ADU)")
        ax_width.errorbar(k[ok], fits.widths[ok], fits.width_errs[ok], fmt="o", color="k", ms=4)
        ax_width.set(xlabel="electrons", ylabel="peak width (ADU)")
        if math.isfinite(fits.gain) and fits.gain > 0:
            charge = (values - fits.intercept) / fits.gain
            edges = np.arange(-1.0, len(k) + self.pcd_bin_width, self.pcd_bin_width)
            ax_pcd.stairs(np.histogram(charge, edges)[0], edges, color="k")
            ax_pcd.set_yscale("log")
        ax_pcd.set(xlabel="charge (e-)", ylabel=f"pixels / {self.pcd_bin_width:g} e-")
        fig.suptitle(f"{image.label}, amplifier {amplifier.name}: {self.name} ({fits.status})", fontsize=10)
        keep_figure(context, self.name, "", amplifier, fig)
