"""Pedestal and noise monitor elements (reference D.4, 30-33) from PedestalSubtractionProcess.

They read the per-row pedestal ``pedestal_row`` and noise ``sigma_row`` (ADU) that the
analysis recorded; x are the amplifier's rows (1-based) of the rows that have an
estimate, so values and rows always line up (pysimdamicm failed or misaligned them on
images with prescan or overscan rows).  MESinglePED is the one pedestal of the
amplifier's overscan before subtraction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.core.image import Amplifier, SkipperImage
from waders.core.parameters import Param

from ..monitor import (
    MAD_TO_SIGMA,
    MEDIAN_EFF,
    AnalysisStep,
    MEResult,
    MonitorElement,
    NotApplicable,
    product,
    region_values,
)
from .charge import MAD_REL_ERR

__all__ = [
    "MEMeanPedestalSigma",
    "MEOVSPedestalMu",
    "MEOVSPedestalMuPerRow",
    "MEOVSPedestalSigma",
    "MEOVSPedestalSigmaPerRow",
    "MEPedestalMu",
    "MEPedestalSigma",
    "MESinglePED",
]

PEDESTAL = "PedestalSubtractionProcess"


def _pedestal_step() -> list[AnalysisStep]:
    from waders.ana.pedestal import PedestalSubtractionProcess

    return [AnalysisStep(PedestalSubtractionProcess)]


def _row_results(amplifier: Amplifier, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Rows (1-based), values and errors of a per-row pedestal result."""
    results = amplifier.results.get(PEDESTAL)
    if not results:
        raise NotApplicable("PedestalSubtractionProcess did not run")
    if f"{key}_row" not in results:
        raise NotApplicable("the pedestal was not estimated per row (PedestalSubtractionProcess.axis)")
    values = np.asarray(results[f"{key}_row"], dtype=np.float64)
    errors = results.get(f"{key}_err_row")
    errors = np.asarray(errors, dtype=np.float64) if errors is not None else None
    rows = np.arange(1, values.size + 1, dtype=np.float64)
    good = np.isfinite(values)
    if not good.any():
        raise NotApplicable("no row has a pedestal estimate")
    return rows[good], values[good], errors[good] if errors is not None else None, results


def _columns_used(amplifier: Amplifier, results: Mapping[str, Any]) -> int:
    geometry = amplifier.geometry
    if results.get("in_overscan", True) and geometry.overscan_cols:
        return geometry.overscan_cols
    return max(1, geometry.active_cols.stop - geometry.active_cols.start)


def _mean_and_error(values: np.ndarray, errors: np.ndarray | None) -> tuple[float, float | None]:
    mean = float(values.mean())
    if values.size < 2:
        return mean, float(errors[0]) if errors is not None else None
    error = float(values.std(ddof=1) / math.sqrt(values.size))
    if errors is not None and np.isfinite(errors).all():
        error = max(error, float(np.sqrt(np.mean(errors**2)) / math.sqrt(values.size)))
    return mean, error


class _PedestalME(MonitorElement):
    unit: ClassVar[str] = "ADU"

    def analysis_steps(self) -> list[AnalysisStep]:
        return _pedestal_step()


class MEOVSPedestalMuPerRow(_PedestalME):
    """Pedestal of every row (ADU), as PedestalSubtractionProcess estimated it."""

    order: ClassVar[int] = 30
    kind: ClassVar[str] = "profile"
    title: ClassVar[str] = "pedestal per row"
    xlabel: ClassVar[str] = "row"
    ylabel: ClassVar[str] = "pedestal"

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        rows, values, errors, results = _row_results(amplifier, "pedestal")
        if errors is None:
            sigma = np.asarray(results.get("sigma_row"), dtype=np.float64)[rows.astype(int) - 1]
            errors = MEDIAN_EFF * sigma / math.sqrt(_columns_used(amplifier, results))
        mean, error = _mean_and_error(values, errors)
        chi2 = results.get("chi2_ndf_row")
        goodness = float(np.nanmedian(chi2)) if chi2 is not None and np.isfinite(chi2).any() else None
        return MEResult(mean, error, rows, values, errors, goodness=goodness)


class MEOVSPedestalSigmaPerRow(_PedestalME):
    """Noise (pedestal sigma) of every row (ADU), as PedestalSubtractionProcess estimated it."""

    order: ClassVar[int] = 31
    kind: ClassVar[str] = "profile"
    title: ClassVar[str] = "pedestal sigma per row"
    xlabel: ClassVar[str] = "row"
    ylabel: ClassVar[str] = "pedestal sigma"

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        rows, values, errors, results = _row_results(amplifier, "sigma")
        if errors is None:
            errors = MAD_REL_ERR * values / math.sqrt(_columns_used(amplifier, results))
        mean, error = _mean_and_error(values, errors)
        return MEResult(mean, error, rows, values, errors)


class MEOVSPedestalMu(_PedestalME):
    """Mean of the row pedestals of the image (ADU); evolution over the run."""

    order: ClassVar[int] = 32
    title: ClassVar[str] = "mean pedestal"
    ylabel: ClassVar[str] = "pedestal"

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        _, values, errors, results = _row_results(amplifier, "pedestal")
        if errors is None:
            sigma = np.asarray(results.get("sigma_row"), dtype=np.float64)
            sigma = sigma[np.isfinite(sigma)]
            errors = np.full(
                values.size, MEDIAN_EFF * float(sigma.mean()) / math.sqrt(_columns_used(amplifier, results))
            )
        return MEResult(*_mean_and_error(values, errors))


class MEOVSPedestalSigma(_PedestalME):
    """Mean of the row noise sigmas of the image (ADU): the readout noise of the averaged image."""

    order: ClassVar[int] = 33
    title: ClassVar[str] = "mean pedestal sigma (noise)"
    ylabel: ClassVar[str] = "noise"

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        _, values, errors, results = _row_results(amplifier, "sigma")
        if errors is None:
            errors = MAD_REL_ERR * values / math.sqrt(_columns_used(amplifier, results))
        return MEResult(*_mean_and_error(values, errors))


class MESinglePED(MonitorElement):
    """One pedestal for the amplifier: median of its serial overscan before subtraction (ADU)."""

    order: ClassVar[int] = 34
    unit: ClassVar[str] = "ADU"
    title: ClassVar[str] = "single pedestal of the overscan"
    ylabel: ClassVar[str] = "pedestal"

    image = Param("mean_compressed", doc="image product before pedestal subtraction (ADU)")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        values, _, _ = region_values(amplifier, product(amplifier, self.image), "overscan")
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise NotApplicable("no finite overscan pixel")
        median = float(np.median(values))
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
        return MEResult(median, MEDIAN_EFF * sigma / math.sqrt(values.size))


class MEPedestalMu(MEOVSPedestalMu):
    """Legacy name (2021) of MEOVSPedestalMu: mean of the row pedestals (ADU)."""


class MEPedestalSigma(MEOVSPedestalSigma):
    """Legacy name (2021) of MEOVSPedestalSigma: mean of the row noise sigmas (ADU)."""


class MEMeanPedestalSigma(MEOVSPedestalSigma):
    """Mean of the row noise sigmas (ADU); pysimdamicm's unimplemented name, same as MEOVSPedestalSigma."""
