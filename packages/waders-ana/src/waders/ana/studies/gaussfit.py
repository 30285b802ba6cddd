"""GaussianFitProcess: Gaussian fit of the pixel distribution of a region (the overscan by default).

Per amplifier, the pixels of the overscan (``in_overscan``) or of the active region,
inside the id_row/id_col window and minus ``skip_rows``/``skip_cols`` (closed ranges
``[a, b]`` in file coordinates, as in pysimdamicm), are histogrammed and fitted with a
Gaussian by an extended binned Poisson likelihood (iminuit, HESSE errors); the goodness
of fit is the likelihood-ratio (Baker-Cousins) chi-square per degree of freedom.

The fit range is ``centre +/- n_sigma * width``: with ``in_trim_mean`` the centre is the
10 %-trimmed mean and the width the standard deviation of the values between the 10th and
90th percentiles, scaled to a Gaussian sigma (divided by 0.6616, the standard deviation of
a unit Gaussian truncated to its 10-90 % quantiles); otherwise the median and 1.4826 MAD.
The model is integrated over every bin, so the truncation by the range is exact.
Binning (``hist_nbins_method``): ``freedman`` (2 IQR / N^(1/3)), ``sturge``
(1 + log2 N bins), ``default`` (a quarter of the width) or ``manual`` (``hist_nbins``).

Records per amplifier ``mu_adu``, ``mu_err``, ``sigma_adu``, ``sigma_err``, ``norm``,
``chi2``, ``ndf``, ``chi2_ndf``, ``valid``, ``n_pixels``, ``n_in_range``, ``x_min``,
``x_max``, ``region``, ``hist_edges``, ``hist_counts``; header cards ``GFMU<A>``,
``GFSIG<A>``, ``GFESIG<A>``, ``GFCHI2<A>``.

Deliberate differences from pysimdamicm:

* the trimmed width is scaled to a Gaussian sigma (pysimdamicm used the raw trimmed
  standard deviation, about 0.66 sigma, so ``n_sigma`` meant about 0.66 n_sigma sigmas);
* Poisson likelihood fit of bin integrals instead of a least-squares fit of non-empty bins
  with bounds at 0.5-1.5 std; the histogram spans the fit range, not min..max of the data;
* header cards carry the amplifier name (pysimdamicm wrote GFSIG, GFESIG and GFCHI2 once,
  overwritten by the last amplifier);
* without overscan columns the active region is fitted (with a warning) instead of failing;
* ``show_outliers`` is accepted and ignored (it crashed pysimdamicm).
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import DataError
from waders.core.image import Amplifier
from waders.core.kinds import Choice, Float, Int
from waders.core.lazy import lazy_module

from ..base import INDEX_RANGES, AnalysisProcess, file_index_selector
from ..fitting.gaussian import MAD_TO_SIGMA
from ..fitting.quality import assess
from ..plotting import figure, wants_plots

special = lazy_module("scipy.special")
iminuit = lazy_module("iminuit")
iminuit_cost = lazy_module("iminuit.cost")

__all__ = ["GaussianFitProcess", "fit_gaussian_histogram"]

log = logging.getLogger(__name__)

#: Fewest pixels in the fit range for a valid fit.
MIN_ENTRIES = 10

#: Standard deviation of a unit Gaussian truncated to its 10 %-90 % quantiles (+/- 1.2816).
TRIMMED_STD_OF_UNIT_GAUSSIAN = 0.661608


def _trimmed_centre_width(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [10.0, 90.0])
    core = values[(values >= lo) & (values <= hi)]
    return float(core.mean()), float(core.std()) / TRIMMED_STD_OF_UNIT_GAUSSIAN


def _n_bins(method: str, manual: int, values: np.ndarray, lo: float, hi: float, width: float) -> int:
    n = max(values.size, 1)
    if method == "manual" and manual > 0:
        return int(manual)
    if method == "sturge":
        return 1 + math.ceil(math.log2(n))
    if method == "freedman":
        q75, q25 = np.percentile(values, [75.0, 25.0])
        step = 2.0 * (q75 - q25) / n ** (1.0 / 3.0)
        if step > 0:
            return min(max(math.ceil((hi - lo) / step), 5), 10_000)
    return max(5, math.ceil((hi - lo) / (0.25 * width)))


def _model(edges: np.ndarray, norm: float, mu: float, sigma: float) -> np.ndarray:
    return norm * special.ndtr((edges - mu) / sigma)


def fit_gaussian_histogram(counts: np.ndarray, edges: np.ndarray, mu: float, sigma: float) -> dict[str, Any]:
    """Extended binned-likelihood Gaussian fit of a histogram (iminuit, HESSE errors).

    Parameters
    ----------
    counts, edges : numpy.ndarray
        Histogram.
    mu, sigma : float
        Starting values.

    Returns
    -------
    dict
        ``mu``, ``mu_err``, ``sigma``, ``sigma_err``, ``norm``, ``chi2``, ``ndf``, and the verdict of
        :mod:`waders.ana.fitting.quality`: ``valid``, ``status``, ``p_value``.
    """
    cost = iminuit_cost.ExtendedBinnedNLL(counts, edges, _model)
    total = float(counts.sum())
    minuit = iminuit.Minuit(cost, norm=max(total, 1.0), mu=mu, sigma=sigma)
    minuit.limits["norm"] = (0.0, None)
    minuit.limits["sigma"] = (sigma * 1e-3, sigma * 1e3)
    minuit.migrad()
    minuit.hesse()
    ndf = int(counts.size) - 3
    at_limit = minuit.values["sigma"] <= sigma * 1e-3 * 1.001 or minuit.values["sigma"] >= sigma * 1e3 * 0.999
    quality = assess(
        chi2=float(minuit.fval),
        ndf=ndf,
        n_entries=total,
        min_entries=MIN_ENTRIES,
        converged=bool(minuit.valid),
        posdef=bool(minuit.fmin.has_posdef_covar) or not minuit.valid,
        at_limit={"sigma": bool(at_limit)},
    )
    return {
        "mu": float(minuit.values["mu"]),
        "mu_err": float(minuit.errors["mu"]),
        "sigma": float(minuit.values["sigma"]),
        "sigma_err": float(minuit.errors["sigma"]),
        "norm": float(minuit.values["norm"]),
        "chi2": float(minuit.fval),
        "ndf": ndf,
        "valid": quality.valid,
        "status": quality.status,
        "p_value": quality.p_value,
    }


class GaussianFitProcess(AnalysisProcess):
    """Gaussian fit (binned likelihood) of the pixel values of the overscan or the active region.

    Fit range: trimmed mean (or median) +/- ``n_sigma`` widths; ``skip_rows``/``skip_cols`` are closed
    ranges of file rows/columns.  Records ``mu_adu``, ``mu_err``, ``sigma_adu``, ``sigma_err``,
    ``chi2_ndf``, the histogram; header cards GFMU<A>, GFSIG<A>, GFESIG<A>, GFCHI2<A>.
    """

    products = (
        Product("mu_adu", "result", "ADU", "fitted centre (mu_err)"),
        Product("sigma_adu", "result", "ADU", "fitted width (sigma_err)"),
        Product("chi2_ndf", "result", doc="chi2 per degree of freedom"),
        Product("fit", "figure", doc="the histogram and the fitted Gaussian"),
    )

    order: ClassVar[int] = 62
    per_amplifier: ClassVar[bool] = True

    image = Param("mean_compressed_pedestal_subtracted", doc="input image product (ADU)")
    in_overscan = Param(True, doc="fit the overscan (else the active region)")
    skip_cols = Param([], INDEX_RANGES, per_amplifier=True, doc="file columns excluded ([a, b] closed)")
    skip_rows = Param([], INDEX_RANGES, per_amplifier=True, doc="file rows excluded ([a, b] closed)")
    in_trim_mean = Param(True, doc="fit range around the 10 %-trimmed mean and width (else median and MAD)")
    n_sigma = Param(3.0, Float(min=0.5), doc="half-width of the fit range in sigmas")
    hist_nbins_method = Param(
        "freedman", Choice(["freedman", "sturge", "default", "manual"]), doc="binning rule of the histogram"
    )
    hist_nbins = Param(0, Int(min=0), doc="number of bins for hist_nbins_method = manual")

    ignored_keys: ClassVar[dict[str, str]] = {"show_outliers": "declared but never defined in pysimdamicm"}

    def values(self, image: SkipperImage, amplifier: Amplifier) -> tuple[np.ndarray, str]:
        """Finite values of the selected pixels and the region name."""
        geometry = amplifier.geometry
        region = "overscan" if self.in_overscan else "active"
        if self.in_overscan and geometry.overscan_cols == 0:
            log.warning("%s, amplifier %s: no overscan; fitting the active region", image.label, amplifier.name)
            region = "active"
        excluded = geometry.mask(region) | self.window_mask(image, amplifier)
        names = amplifier.names
        excluded[file_index_selector(self.value_for("skip_rows", names, []), geometry, "row"), :] = True
        excluded[:, file_index_selector(self.value_for("skip_cols", names, []), geometry, "col")] = True
        data = self.input_image(amplifier)
        values = data[~excluded]
        return values[np.isfinite(values)], region

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        values, region = self.values(image, amplifier)
        if values.size < 10:
            raise DataError(
                f"{self.name}: {values.size} usable pixels in the {region} of amplifier {amplifier.name}",
                hint="check skip_rows/skip_cols and the id_row/id_col window, or set in_overscan",
            )
        if self.in_trim_mean:
            centre, width = _trimmed_centre_width(values)
        else:
            centre = float(np.median(values))
            width = MAD_TO_SIGMA * float(np.median(np.abs(values - centre)))
        if not width > 0:
            width = float(values.std()) or 1.0
        lo, hi = centre - self.n_sigma * width, centre + self.n_sigma * width
        inside = values[(values >= lo) & (values <= hi)]
        nbins = _n_bins(self.hist_nbins_method, self.hist_nbins, inside, lo, hi, width)
        counts, edges = np.histogram(inside, bins=nbins, range=(lo, hi))
        fit = fit_gaussian_histogram(counts, edges, centre, width)
        chi2_ndf = fit["chi2"] / fit["ndf"] if fit["ndf"] > 0 else float("nan")
        results = {
            "mu_adu": fit["mu"],
            "mu_err": fit["mu_err"],
            "sigma_adu": fit["sigma"],
            "sigma_err": fit["sigma_err"],
            "norm": fit["norm"],
            "chi2": fit["chi2"],
            "ndf": fit["ndf"],
            "chi2_ndf": chi2_ndf,
            "valid": fit["valid"],
            "status": fit["status"],
            "n_pixels": int(values.size),
            "n_in_range": int(inside.size),
            "x_min": lo,
            "x_max": hi,
            "region": region,
            "hist_edges": edges,
            "hist_counts": counts,
        }
        amplifier.record(self.name, **results)
        if not fit["valid"]:
            log.warning("%s, amplifier %s: %s: fit invalid: %s", image.label, amplifier.name, self.name, fit["status"])
        a = amplifier.name
        unit = "e-" if self.image.endswith("_e") else "ADU"
        image.add_header_card(f"GFMU{a}", fit["mu"], f"Gaussian fit mean of the {region} ({unit})")
        image.add_header_card(f"GFSIG{a}", fit["sigma"], f"Gaussian fit sigma of the {region} ({unit})")
        image.add_header_card(f"GFESIG{a}", fit["sigma_err"], f"error of GFSIG{a} ({unit})")
        image.add_header_card(f"GFCHI2{a}", chi2_ndf, "Gaussian fit chi2/ndf (Baker-Cousins)")
        if wants_plots(self, context):
            self._plot(image, amplifier, context, results, unit)

    def _plot(
        self, image: SkipperImage, amplifier: Amplifier, context: RunContext, results: dict[str, Any], unit: str
    ) -> None:
        edges, counts = results["hist_edges"], results["hist_counts"]
        centres = 0.5 * (edges[1:] + edges[:-1])
        expected = np.diff(_model(edges, results["norm"], results["mu_adu"], results["sigma_adu"]))
        with figure(context, image, self.name, "fit", amplifier) as (_, ax):
            ax.stairs(counts, edges, color="k", label=f"{results['region']} pixels")
            label = (
                rf"fit: $\mu$ = {results['mu_adu']:.3g} $\pm$ {results['mu_err']:.2g}, "
                rf"$\sigma$ = {results['sigma_adu']:.3g} $\pm$ {results['sigma_err']:.2g} {unit}, "
                rf"$\chi^2$/ndf = {results['chi2_ndf']:.2f}"
            )
            ax.plot(centres, expected, color="tab:red", label=label)
            ax.set_xlabel(f"pixel value ({unit})")
            ax.set_ylabel("pixels per bin")
            ax.legend()
