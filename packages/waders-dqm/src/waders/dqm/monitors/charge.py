"""Pixel charge per row and per column of the active region and of the overscan (reference D.4, 4-21).

All values are in electrons: the ``image`` product divided by the amplifier's gain unless
its name ends in ``_e``.  Rows are the amplifier's rows (1-based) over the active rows,
for the overscan too (pysimdamicm listed active rows against the values of all rows,
misaligned when the image has prescan or overscan rows); columns are 1-based in readout
order.  Statistics are computed for all rows (columns) at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Float, Int
from waders.core.parameters import Param

from ..monitor import (
    MAD_TO_SIGMA,
    MEDIAN_EFF,
    MEResult,
    MonitorElement,
    NotApplicable,
    cached,
    in_electrons,
    line_fit,
    region_values,
    row_median_mad,
    tolerance,
)

__all__ = [
    "MEDCintercept",
    "MEDCslope",
    "MEImageMADperCol",
    "MEImageMedianperCol",
    "MEInterceptFromMeanPCPerRow",
    "MEMADPixelChargePerCol",
    "MEMADPixelChargePerRow",
    "MEMeanDCperRow",
    "MEMeanPixelChargePerRow",
    "MEMedianPixelChargePerCol",
    "MEMedianPixelChargePerRow",
    "MENpixQ1ePerCol",
    "MEOVSMADPixelChargePerRow",
    "MEOVSMedianPixelChargePerRow",
    "MEOverscanMADperRow",
    "MEOverscanMedianperRow",
    "MESTDPixelChargePerRow",
    "MESensorMADperRow",
    "MESensorMedianperRow",
    "MESlopeFromMeanPCPerRow",
]

#: Relative error of the (scaled) MAD of n Gaussian values: MAD_REL_ERR / sqrt(n).
MAD_REL_ERR = 1.1664
_IMAGE_E = "mean_compressed_pedestal_subtracted_e"


def _image_param() -> Param:
    return Param(_IMAGE_E, doc="image product (divided by the gain unless its name ends in _e)")


def _stats(
    image: SkipperImage,
    amplifier: Amplifier,
    summary: Mapping[str, Any],
    name: str,
    region: str,
    axis: int,
) -> dict[str, np.ndarray]:
    """Median, MAD and counts of ``region`` along ``axis`` (1: per row, 0: per column), cached."""

    def compute() -> dict[str, np.ndarray]:
        data = in_electrons(amplifier, name, summary)
        values, rows, cols = region_values(amplifier, data, region)
        median, mad, n = row_median_mad(values, axis=axis)
        first = rows.start if axis == 1 else cols.start
        return {"values": values, "median": median, "mad": mad, "n": n, "x": first + 1 + np.arange(median.size)}

    return cached(image, ("stats", amplifier.name, name, region, axis), compute)


def _mean(y: np.ndarray) -> tuple[float | None, float | None]:
    finite = y[np.isfinite(y)]
    if finite.size == 0:
        return None, None
    error = float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else None
    return float(finite.mean()), error


class _ChargeME(MonitorElement):
    unit: ClassVar[str] = "e-"
    kind: ClassVar[str] = "profile"
    image = _image_param()


# --- per row of the active region ------------------------------------------------------------------
class _MeanPerRow(_ChargeME):
    xlabel: ClassVar[str] = "row"
    n_mad = Param(5.0, Float(min=0), doc="pixels above the row median + n_mad MAD (unscaled) are left out")

    def row_means(self, image: SkipperImage, amplifier: Amplifier, summary: Mapping[str, Any]) -> dict[str, Any]:
        """Per active row: mean, std and number of the pixels below median + n_mad MAD; the line fit."""

        def compute() -> dict[str, Any]:
            stats = _stats(image, amplifier, summary, self.image, "active", 1)
            values = stats["values"]
            keep = np.isfinite(values) & (values < (stats["median"] + self.n_mad * stats["mad"])[:, None])
            n = keep.sum(axis=1)
            total = np.where(keep, values, 0.0)
            with np.errstate(all="ignore"):
                mean = total.sum(axis=1) / n
                var = (np.where(keep, (values - mean[:, None]) ** 2, 0.0)).sum(axis=1) / (n - 1)
                std = np.sqrt(var)
                err = std / np.sqrt(n)
            x = stats["x"].astype(np.float64)
            fit = line_fit(x, mean, err)
            n_all = int(n.sum())
            overall = float(total.sum() / n_all) if n_all else float("nan")
            overall_std = float(np.sqrt(np.where(keep, (values - overall) ** 2, 0.0).sum() / max(n_all - 1, 1)))
            overall_err = overall_std / math.sqrt(n_all) if n_all else float("nan")
            finite = mean[np.isfinite(mean)]
            if finite.size > 1:  # the rows scatter more than their pixels say when their pedestals do
                overall_err = max(overall_err, float(finite.std(ddof=1)) / math.sqrt(finite.size))
            return {
                "x": x,
                "mean": mean,
                "err": err,
                "std": std,
                "n": n,
                "fit": fit,
                "overall": overall,
                "overall_err": overall_err,
            }

        return cached(image, ("row_means", amplifier.name, self.image, self.n_mad), compute)


class MEMeanPixelChargePerRow(_MeanPerRow):
    """Mean charge per active row of the pixels below the row median + n_mad MAD (e-/pixel), with a line fit.

    ``value`` is the mean over all kept pixels; ``yerr`` the error of each row's mean (pysimdamicm
    used the pixel spread, which MESTDPixelChargePerRow reports).
    """

    order: ClassVar[int] = 4
    title: ClassVar[str] = "mean pixel charge per row"
    ylabel: ClassVar[str] = "mean charge"
    qt_abs_tolerance = tolerance(0.01, "e-")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        rows = self.row_means(image, amplifier, summary)
        fit = rows["fit"]
        yfit = fit[2] + fit[0] * rows["x"] if fit is not None else None
        return MEResult(rows["overall"], rows["overall_err"], rows["x"], rows["mean"], rows["err"], yfit)


class MESTDPixelChargePerRow(_MeanPerRow):
    """Standard deviation per active row of the pixels kept by MEMeanPixelChargePerRow (e-): the noise."""

    order: ClassVar[int] = 5
    title: ClassVar[str] = "pixel charge spread per row"
    ylabel: ClassVar[str] = "std of the charge"

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        rows = self.row_means(image, amplifier, summary)
        with np.errstate(all="ignore"):
            err = rows["std"] / np.sqrt(2.0 * (rows["n"] - 1))
        value, error = _mean(rows["std"])
        return MEResult(value, error, rows["x"], rows["std"], err)


class MESlopeFromMeanPCPerRow(_MeanPerRow):
    """Slope of the straight line through MEMeanPixelChargePerRow (e-/pixel per row)."""

    order: ClassVar[int] = 6
    kind: ClassVar[str] = "scalar"
    unit: ClassVar[str] = "e-/pixel/row"
    title: ClassVar[str] = "slope of the mean charge per row"
    ylabel: ClassVar[str] = "slope"
    qt_abs_tolerance = tolerance(1e-4, "e-/pixel/row")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        fit = self.row_means(image, amplifier, summary)["fit"]
        if fit is None:
            raise NotApplicable("fewer than three rows with a mean")
        return MEResult(fit[0], fit[1], goodness=None)


class MEInterceptFromMeanPCPerRow(_MeanPerRow):
    """Intercept (at row 0) of the straight line through MEMeanPixelChargePerRow (e-/pixel)."""

    order: ClassVar[int] = 7
    kind: ClassVar[str] = "scalar"
    unit: ClassVar[str] = "e-"
    title: ClassVar[str] = "intercept of the mean charge per row"
    ylabel: ClassVar[str] = "intercept"
    qt_abs_tolerance = tolerance(0.01, "e-")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        fit = self.row_means(image, amplifier, summary)["fit"]
        if fit is None:
            raise NotApplicable("fewer than three rows with a mean")
        return MEResult(fit[2], fit[3])


# --- medians and MADs -------------------------------------------------------------------------------------
class _MedianME(_ChargeME):
    region: ClassVar[str] = "active"
    axis: ClassVar[int] = 1
    statistic: ClassVar[str] = "median"
    qt_abs_tolerance = tolerance(0.01, "e-")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        stats = _stats(image, amplifier, summary, self.image, self.region, self.axis)
        n = np.maximum(stats["n"], 1)
        if self.statistic == "median":
            y = stats["median"]
            yerr = MEDIAN_EFF * MAD_TO_SIGMA * stats["mad"] / np.sqrt(n)
        else:
            y = stats["mad"]
            yerr = MAD_REL_ERR * stats["mad"] / np.sqrt(n)
        yerr = np.where(stats["n"] > 1, yerr, np.nan)
        value, error = _mean(y)
        return MEResult(value, error, stats["x"].astype(np.float64), y, yerr)


class MEMedianPixelChargePerRow(_MedianME):
    """Median charge of every active row (e-)."""

    order: ClassVar[int] = 8
    title: ClassVar[str] = "median pixel charge per row"
    xlabel: ClassVar[str] = "row"
    ylabel: ClassVar[str] = "median charge"


class MEMADPixelChargePerRow(_MedianME):
    """Median absolute deviation (unscaled) of the charge of every active row (e-)."""

    order: ClassVar[int] = 9
    statistic: ClassVar[str] = "mad"
    title: ClassVar[str] = "MAD of the pixel charge per row"
    xlabel: ClassVar[str] = "row"
    ylabel: ClassVar[str] = "MAD of the charge"


class MEMedianPixelChargePerCol(_MedianME):
    """Median charge of every active column over the active rows (e-); columns in readout order."""

    order: ClassVar[int] = 10
    axis: ClassVar[int] = 0
    title: ClassVar[str] = "median pixel charge per column"
    xlabel: ClassVar[str] = "column (readout order)"
    ylabel: ClassVar[str] = "median charge"


class MEMADPixelChargePerCol(_MedianME):
    """Median absolute deviation (unscaled) of the charge of every active column (e-)."""

    order: ClassVar[int] = 11
    axis: ClassVar[int] = 0
    statistic: ClassVar[str] = "mad"
    title: ClassVar[str] = "MAD of the pixel charge per column"
    xlabel: ClassVar[str] = "column (readout order)"
    ylabel: ClassVar[str] = "MAD of the charge"


class MEOVSMedianPixelChargePerRow(_MedianME):
    """Median charge of the serial overscan of every active row (e-); not applicable without overscan."""

    order: ClassVar[int] = 20
    region: ClassVar[str] = "overscan"
    title: ClassVar[str] = "median overscan charge per row"
    xlabel: ClassVar[str] = "row"
    ylabel: ClassVar[str] = "median overscan charge"


class MEOVSMADPixelChargePerRow(_MedianME):
    """Median absolute deviation (unscaled) of the serial overscan of every active row (e-)."""

    order: ClassVar[int] = 21
    region: ClassVar[str] = "overscan"
    statistic: ClassVar[str] = "mad"
    title: ClassVar[str] = "MAD of the overscan charge per row"
    xlabel: ClassVar[str] = "row"
    ylabel: ClassVar[str] = "MAD of the overscan charge"


# --- pixels with charge per column ---------------------------------------------------------------------
class MENpixQ1ePerCol(_ChargeME):
    """Number of active pixels per column holding more than ``ne`` electrons (round(q) > ne).

    With ``mask_clusters`` every pixel above ``q_high`` e- masks the box of ``box_rows`` x
    ``box_cols`` pixels that starts at it (rows and columns read after it) before counting.
    ``value`` is the total over the columns.
    """

    order: ClassVar[int] = 12
    unit: ClassVar[str] = "pixels"
    title: ClassVar[str] = "pixels with charge per column"
    xlabel: ClassVar[str] = "column (readout order)"
    ylabel: ClassVar[str] = "pixels above ne"

    ne = Param(1.0, Float(min=0), doc="count pixels with round(q) > ne (e-)")
    mask_clusters = Param(False, doc="mask boxes starting at pixels above q_high first")
    q_high = Param(20.5, Float(min=0), doc="charge (e-) of the pixels whose box is masked")
    box_rows = Param(5, Int(min=1), doc="rows of the masked box (pysimdamicm's DROWS)")
    box_cols = Param(5, Int(min=1), doc="columns of the masked box (pysimdamicm's DCOLS)")

    ignored_keys: ClassVar[dict[str, str]] = {
        "Qhigh_pix": "use q_high",
        "DROWS": "use box_rows",
        "DCOLS": "use box_cols",
    }

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        data = in_electrons(amplifier, self.image, summary)
        values, _, cols = region_values(amplifier, data, "active")
        charged = np.isfinite(values) & (np.rint(np.nan_to_num(values)) > self.ne)
        if self.mask_clusters:
            charged &= ~_boxes(np.nan_to_num(values) > self.q_high, self.box_rows, self.box_cols)
        counts = charged.sum(axis=0).astype(np.float64)
        total = float(counts.sum())
        x = cols.start + 1 + np.arange(counts.size, dtype=np.float64)
        return MEResult(total, math.sqrt(max(total, 1.0)), x, counts, np.sqrt(np.maximum(counts, 1.0)))


def _boxes(seeds: np.ndarray, nrows: int, ncols: int) -> np.ndarray:
    """True on the ``nrows`` x ``ncols`` box starting at every seed (cumulative sums, no loop)."""
    marks = np.zeros((seeds.shape[0] + nrows + 1, seeds.shape[1] + ncols + 1), dtype=np.int64)
    r, c = np.nonzero(seeds)
    np.add.at(marks, (r, c), 1)
    np.add.at(marks, (r + nrows, c), -1)
    np.add.at(marks, (r, c + ncols), -1)
    np.add.at(marks, (r + nrows, c + ncols), 1)
    covered = marks.cumsum(axis=0).cumsum(axis=1)
    return covered[: seeds.shape[0], : seeds.shape[1]] > 0


# --- legacy names (2021 presentation) -------------------------------------------------------------
class MEMeanDCperRow(MEMeanPixelChargePerRow):
    """Legacy name of MEMeanPixelChargePerRow: mean charge per active row (e-/pixel)."""


class MEDCslope(MESlopeFromMeanPCPerRow):
    """Legacy name of MESlopeFromMeanPCPerRow: slope of the mean charge per row (e-/pixel per row)."""


class MEDCintercept(MEInterceptFromMeanPCPerRow):
    """Legacy name of MEInterceptFromMeanPCPerRow: intercept of the mean charge per row (e-/pixel)."""


class MESensorMedianperRow(MEMedianPixelChargePerRow):
    """Legacy name of MEMedianPixelChargePerRow: median charge per active row (e-)."""


class MESensorMADperRow(MEMADPixelChargePerRow):
    """Legacy name of MEMADPixelChargePerRow: MAD of the charge per active row (e-)."""


class MEImageMedianperCol(MEMedianPixelChargePerCol):
    """Legacy name of MEMedianPixelChargePerCol: median charge per active column (e-)."""


class MEImageMADperCol(MEMADPixelChargePerCol):
    """Legacy name of MEMADPixelChargePerCol: MAD of the charge per active column (e-)."""


class MEOverscanMedianperRow(MEOVSMedianPixelChargePerRow):
    """Legacy name of MEOVSMedianPixelChargePerRow: median overscan charge per row (e-)."""


class MEOverscanMADperRow(MEOVSMADPixelChargePerRow):
    """Legacy name of MEOVSMADPixelChargePerRow: MAD of the overscan charge per row (e-)."""
