"""Dark-current fit monitor elements (reference D.4, 50-64) from waders-ana's fits.

MEFitDC and MEFitDCMu0/Sigma/Lambda/Calibration report the FitDarkCurrentProcess of the
analysis; the per-row and per-column MEs report FitDarkCurrentPerRow/PerCol.  The fit
parameters given to MEFitDC (MEFitDCPerRow, MEFitDCPerCol) configure that analysis process
-- the DQM adds it to the analysis when missing -- so every image is fitted once, and the
calibration of the analysis uses all the fitted gains at once (pysimdamicm fitted again
inside the ME and re-calibrated the image with a single amplifier's gain, leaving the other
amplifier in ADU).  A parameter left null keeps the analysis configuration's value.

Values in electrons come with errors propagated with the covariance of the parameter and
the gain; lambda is in e-/pixel/image (per unbinned pixel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.core.errors import DataError
from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import JSON, Bool, Float, Int, Optional
from waders.core.parameters import Param

from ..monitor import AnalysisStep, MEResult, MonitorElement, NotApplicable, histogram_chi2, tolerance

__all__ = [
    "MEFitCalibrationPerCol",
    "MEFitCalibrationPerRow",
    "MEFitDC",
    "MEFitDCCalibration",
    "MEFitDCLambda",
    "MEFitDCLambdaPerRow",
    "MEFitDCMu0",
    "MEFitDCMu0PerRow",
    "MEFitDCPerCol",
    "MEFitDCPerRow",
    "MEFitDCSigma",
    "MEFitDCSigmaPerRow",
    "MEFitMu0PerCol",
    "MEFitMu0PerRow",
    "MEFitSigmaPerCol",
    "MEFitSigmaPerRow",
]

_FLOAT = Optional(Float())
_INT = Optional(Int(min=0))
_BOOL = Optional(Bool())
_ANY = JSON()

#: Parameters passed on to the analysis fit: name -> (kind, per amplifier, doc).
_FIT_PARAMS: dict[str, tuple[Any, bool, str]] = {
    "mask_clusters": (_BOOL, False, "exclude the cluster mask (BuildClusterMask must run before the fit)"),
    "rows_to_mask": (_ANY, True, "rows excluded; [a, b] = rows a..b-1"),
    "cols_to_mask": (_ANY, True, "columns excluded (readout order); [a, b] = a..b-1"),
    "do_calibration": (_BOOL, False, "fit the gain (else fixed to calibration)"),
    "calibration": (_FLOAT, True, "gain guess or fixed gain (ADU/e-)"),
    "binning_size": (_FLOAT, True, "bin width (ADU)"),
    "n_peaks": (_INT, True, "electron peaks of the model"),
    "mu_min": (_FLOAT, True, "lower bound of mu0 (ADU)"),
    "mu_max": (_FLOAT, True, "upper bound of mu0 (ADU)"),
    "sigma_min": (_FLOAT, True, "lower bound of sigma (ADU)"),
    "sigma_max": (_FLOAT, True, "upper bound of sigma (ADU)"),
    "dc_min": (_FLOAT, True, "lower bound of lambda*gain (ADU)"),
    "dc_max": (_FLOAT, True, "upper bound of lambda*gain (ADU)"),
    "gain_min": (_FLOAT, True, "lower bound of the gain (ADU/e-)"),
    "gain_max": (_FLOAT, True, "upper bound of the gain (ADU/e-)"),
    "x_min": (_FLOAT, True, "start of the fit range (ADU)"),
    "x_max": (_FLOAT, True, "end of the fit range (ADU)"),
    "image": (Optional(JSON()), False, "input image of the fit"),
    "in_overscan": (_BOOL, False, "fit the overscan instead of the active region"),
}
_SLICE_PARAMS = {
    "row": {
        "row_start": (_INT, False, "first row of the first slice"),
        "row_end": (Optional(Int()), False, "end of the slices (exclusive); <= 0: last row"),
        "row_step": (Optional(Int(min=1)), False, "rows per slice"),
    },
    "col": {
        "col_start": (_INT, False, "first column of the first slice"),
        "col_end": (Optional(Int()), False, "end of the slices (exclusive); <= 0: last column"),
        "col_step": (Optional(Int(min=1)), False, "columns per slice"),
    },
}


def _declare(namespace: dict[str, Any], params: Mapping[str, tuple[Any, bool, str]], process: str) -> None:
    for name, (kind, per_amp, doc) in params.items():
        namespace[name] = Param(None, kind, per_amplifier=per_amp, doc=f"{process}.{name}: {doc}; null = as configured")


def _fit_results(amplifier: Amplifier, process: str) -> dict[str, Any]:
    results = amplifier.results.get(process)
    if not results:
        raise NotApplicable(f"{process} did not run")
    return results


def _fit_histogram(results: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin centres, counts and fitted counts (NaN outside the fit range) of the fitted histogram."""
    edges = np.asarray(results["pcd_edges"], dtype=np.float64)
    counts = np.asarray(results["pcd_counts"], dtype=np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    yfit = np.full(centres.size, np.nan)
    fit_edges = np.asarray(results.get("pcd_fit_edges", []), dtype=np.float64)
    expected = np.asarray(results.get("pcd_expected", []), dtype=np.float64)
    if fit_edges.size > 1 and expected.size == fit_edges.size - 1:
        fit_centres = 0.5 * (fit_edges[1:] + fit_edges[:-1])
        index = np.searchsorted(centres, fit_centres)
        inside = (index < centres.size) & np.isclose(centres[np.minimum(index, centres.size - 1)], fit_centres)
        yfit[index[inside]] = expected[inside]
    return centres, counts, yfit


# --- whole-amplifier fit -------------------------------------------------------------------------
class _WholeFit(MonitorElement):
    process_name: ClassVar[str] = "FitDarkCurrentProcess"

    def fit_goodness(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """``goodness`` (the fit's chi2/ndf), ``chi2`` and ``ndf`` (:func:`histogram_chi2`) of the fit."""
        goodness = results.get("chi2_ndf")
        out: dict[str, Any] = {
            "goodness": float(goodness) if goodness is not None and math.isfinite(goodness) else None
        }
        n_fit_bins = len(results.get("pcd_expected", []))
        ndf = results.get("ndf")
        if "pcd_edges" in results and n_fit_bins and ndf is not None:
            _, counts, yfit = _fit_histogram(results)
            tested = histogram_chi2(
                counts,
                yfit,
                n_fit_bins - int(ndf),
                accuracy=self.qt_fit_model_accuracy,
                min_expected=self.qt_fit_min_expected,
            )
            if tested is not None:
                out["chi2"], out["ndf"] = tested
        return out

    def analysis_steps(self) -> list[AnalysisStep]:
        from waders.ana.darkcurrent import FitDarkCurrentProcess

        return [AnalysisStep(FitDarkCurrentProcess, self.given(list(_FIT_PARAMS)))]

    def valid_fit(self, amplifier: Amplifier) -> dict[str, Any]:
        """The fit results, or a DataError when the fit did not converge."""
        results = _fit_results(amplifier, self.process_name)
        if not results.get("valid", False):
            raise DataError(f"the dark-current fit did not converge ({results.get('status', 'unknown status')})")
        return results


class MEFitDC(_WholeFit):
    """The pixel-charge distribution fitted by FitDarkCurrentProcess (counts per ADU bin) and the fit.

    Its parameters configure the analysis' FitDarkCurrentProcess.  ``goodness`` is the
    Baker-Cousins chi2/ndf of the fit; there is no ``value`` (MEFitDCMu0/Sigma/Lambda/Calibration
    follow the fitted quantities over a run).
    """

    order: ClassVar[int] = 60
    kind: ClassVar[str] = "distribution"
    unit: ClassVar[str] = ""
    title: ClassVar[str] = "dark-current fit of the pixel-charge distribution"
    xlabel: ClassVar[str] = "pixel charge (ADU)"
    ylabel: ClassVar[str] = "pixels"

    _declare(vars(), _FIT_PARAMS, "FitDarkCurrentProcess")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        results = _fit_results(amplifier, self.process_name)
        centres, counts, yfit = _fit_histogram(results)
        if not results.get("valid", False):
            raise DataError(f"the dark-current fit did not converge ({results.get('status', 'unknown status')})")
        return MEResult(None, None, centres, counts, None, yfit, **self.fit_goodness(results))


class _FitQuantity(_WholeFit):
    key: ClassVar[str] = ""
    error_key: ClassVar[str] = ""

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        results = self.valid_fit(amplifier)
        return MEResult(results.get(self.key), results.get(self.error_key), **self.fit_goodness(results))


class MEFitDCMu0(_FitQuantity):
    """Zero-electron peak mu0 of the dark-current fit (e-); test: fit chi2 and range."""

    order: ClassVar[int] = 61
    unit: ClassVar[str] = "e-"
    key, error_key = "mu0_e", "mu0_e_err"
    title: ClassVar[str] = "dark-current fit: mu0"
    ylabel: ClassVar[str] = "mu0"
    qt_abs_tolerance = tolerance(0.02, "e-")


class MEFitDCSigma(_FitQuantity):
    """Noise sigma of the dark-current fit (e-)."""

    order: ClassVar[int] = 62
    unit: ClassVar[str] = "e-"
    key, error_key = "sigma_e", "sigma_e_err"
    title: ClassVar[str] = "dark-current fit: noise sigma"
    ylabel: ClassVar[str] = "sigma"


class MEFitDCLambda(_FitQuantity):
    """Dark current lambda of the fit (e-/pixel/image, per unbinned pixel)."""

    order: ClassVar[int] = 63
    unit: ClassVar[str] = "e-/pixel"
    key, error_key = "lambda_e_per_pixel", "lambda_err"
    title: ClassVar[str] = "dark-current fit: dark current"
    ylabel: ClassVar[str] = "lambda"


class MEFitDCCalibration(_FitQuantity):
    """Gain of the dark-current fit (ADU/e-)."""

    order: ClassVar[int] = 64
    unit: ClassVar[str] = "ADU/e-"
    key, error_key = "gain_adu_per_e", "gain_err"
    title: ClassVar[str] = "dark-current fit: gain"
    ylabel: ClassVar[str] = "gain"


# --- slices ------------------------------------------------------------------------------------------
class _SliceME(MonitorElement):
    kind: ClassVar[str] = "profile"
    axis: ClassVar[str] = "row"
    key: ClassVar[str] = "lambda_e_per_pixel"
    error_key: ClassVar[str] = "lambda_err"
    trend: ClassVar[str] = "lambda"
    configures: ClassVar[bool] = False

    @classmethod
    def process_class(cls) -> Any:
        from waders.ana.darkcurrent import FitDarkCurrentPerCol, FitDarkCurrentPerRow

        return FitDarkCurrentPerRow if cls.axis == "row" else FitDarkCurrentPerCol

    def analysis_steps(self) -> list[AnalysisStep]:
        params = self.given([*_FIT_PARAMS, *_SLICE_PARAMS[self.axis]]) if self.configures else {}
        return [AnalysisStep(self.process_class(), params)]

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        results = _fit_results(amplifier, self.process_class().name)
        valid = np.asarray(results["valid"], dtype=bool)
        if not valid.any():
            raise DataError(f"no {self.axis} slice fit converged")
        start = np.asarray(results["slice_start"], dtype=np.float64)
        stop = np.asarray(results["slice_stop"], dtype=np.float64)
        x = 0.5 * (start + stop - 1) + 1  # centre of the slice, 1-based
        y = np.where(valid, np.asarray(results[self.key], dtype=np.float64), np.nan)
        yerr = np.where(valid, np.asarray(results[self.error_key], dtype=np.float64), np.nan)
        good = valid & np.isfinite(y) & np.isfinite(yerr) & (yerr > 0)
        if good.any():
            weights = 1.0 / yerr[good] ** 2
            value = float(np.sum(weights * y[good]) / weights.sum())
            error = float(1.0 / math.sqrt(weights.sum()))
        else:
            value, error = float(np.nanmean(y)), None
        slope = results.get(f"{self.trend}_slope")
        intercept = results.get(f"{self.trend}_intercept")
        yfit = None
        if self.trend and slope is not None and intercept is not None and math.isfinite(slope):
            yfit = intercept + slope * 0.5 * (start + stop)
        return MEResult(value, error, x, y, yerr, yfit)


def _slice_me(axis: str, quantity: str) -> dict[str, Any]:
    keys = {
        "lambda": ("lambda_e_per_pixel", "lambda_err", "lambda", "e-/pixel", "dark current"),
        "sigma": ("sigma_e", "sigma_e_err", "", "e-", "noise sigma"),
        "gain": ("gain_adu_per_e", "gain_err", "gain", "ADU/e-", "gain"),
        "mu0": ("mu0_e", "mu0_e_err", "", "e-", "mu0"),
    }[quantity]
    where = "row" if axis == "row" else "column (readout order)"
    return {
        "axis": axis,
        "key": keys[0],
        "error_key": keys[1],
        "trend": keys[2],
        "unit": keys[3],
        "ylabel": keys[4],
        "xlabel": f"{where} (slice centre)",
        "title": f"dark-current fits per {axis} slice: {keys[4]}",
    }


class MEFitDCPerRow(_SliceME):
    """Dark current of the fit of every slice of rows (e-/pixel/image); configures FitDarkCurrentPerRow."""

    order: ClassVar[int] = 50
    configures: ClassVar[bool] = True
    vars().update(_slice_me("row", "lambda"))
    _declare(vars(), {**_FIT_PARAMS, **_SLICE_PARAMS["row"]}, "FitDarkCurrentPerRow")


class MEFitSigmaPerRow(_SliceME):
    """Noise sigma of the fit of every slice of rows (e-)."""

    order: ClassVar[int] = 51
    vars().update(_slice_me("row", "sigma"))


class MEFitCalibrationPerRow(_SliceME):
    """Gain of the fit of every slice of rows (ADU/e-; the calibration when the gain is fixed)."""

    order: ClassVar[int] = 52
    vars().update(_slice_me("row", "gain"))


class MEFitMu0PerRow(_SliceME):
    """Zero-electron peak mu0 of the fit of every slice of rows (e-)."""

    order: ClassVar[int] = 53
    vars().update(_slice_me("row", "mu0"))


class MEFitDCPerCol(_SliceME):
    """Dark current of the fit of every slice of columns (e-/pixel/image); configures FitDarkCurrentPerCol."""

    order: ClassVar[int] = 54
    configures: ClassVar[bool] = True
    vars().update(_slice_me("col", "lambda"))
    _declare(vars(), {**_FIT_PARAMS, **_SLICE_PARAMS["col"]}, "FitDarkCurrentPerCol")


class MEFitSigmaPerCol(_SliceME):
    """Noise sigma of the fit of every slice of columns (e-)."""

    order: ClassVar[int] = 55
    vars().update(_slice_me("col", "sigma"))


class MEFitCalibrationPerCol(_SliceME):
    """Gain of the fit of every slice of columns (ADU/e-)."""

    order: ClassVar[int] = 56
    vars().update(_slice_me("col", "gain"))


class MEFitMu0PerCol(_SliceME):
    """Zero-electron peak mu0 of the fit of every slice of columns (e-)."""

    order: ClassVar[int] = 57
    vars().update(_slice_me("col", "mu0"))


# --- legacy names (2021 presentation) -------------------------------------------------------------
class MEFitDCLambdaPerRow(MEFitDCPerRow):
    """Legacy name of MEFitDCPerRow: dark current per slice of rows (e-/pixel/image)."""


class MEFitDCSigmaPerRow(MEFitSigmaPerRow):
    """Legacy name of MEFitSigmaPerRow: noise sigma per slice of rows (e-)."""


class MEFitDCMu0PerRow(MEFitMu0PerRow):
    """Legacy name of MEFitMu0PerRow: mu0 per slice of rows (e-)."""
