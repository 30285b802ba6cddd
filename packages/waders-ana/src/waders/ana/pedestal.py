"""PedestalSubtractionProcess: estimate the zero-charge baseline and subtract it.

Every mode of pysimdamicm is supported, plus ``method: "auto"`` (the default chain of
``waders ana``: the median on the overscan, else the prescan, and a Gaussian fit of the 0 e-
peak when only the active region is left): the region (the amplifier's overscan, or its
active area), the axis (one pedestal per row, per column, both, or one for the
image), the estimator (Gaussian fit, median or mean), outlier masking before
estimating, a sliding window of rows, and single-skip images.  All groups are
estimated together (no loop over rows).

Deliberate differences from pysimdamicm (its part F): the spread reported with
``use_mad`` is the *scaled* MAD (1.4826 MAD, a Gaussian sigma) and not the raw MAD,
because it becomes the noise of the cluster thresholds; ``axis: "none"`` works; the
Gaussian fit honours ``n_sigma_win_fit``; ``is_highDC`` reaches the fit, and a Gaussian fit on
the active region always starts from the lowest (0-electron) peak; the switch to
the active region when the overscan is too narrow applies to that image only; a
column pass keeps the outlier masking; rows without usable pixels give NaN (and a
warning) instead of silently subtracting 0.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import DataError
from waders.core.image import Amplifier
from waders.core.kinds import Choice, Float, Int

from .base import INDEX_RANGES, AnalysisProcess, file_index_selector
from .fitting.gaussian import MAD_TO_SIGMA, _quiet, fit_gaussians
from .fitting.quality import assess_many
from .medians import nanmedian_rows
from .plotting import figure, image_view, wants_plots
from .summary import SummaryPart

__all__ = ["PedestalSubtractionProcess"]

log = logging.getLogger(__name__)

#: Fewest pixels in the window of a Gaussian fit for it to be valid.
MIN_FIT_ENTRIES = 10

_METHODS = Choice(
    ["gauss_fit", "median", "mean", "auto"], aliases={"gaussian_fit": "gauss_fit", "gaus_fit": "gauss_fit"}
)
_AXES = Choice(["row", "col", "both", "none"], aliases={"full": "none", "image": "none", "global": "none"})


#: Overscan noise above this multiple of the pixel-to-pixel noise is reported as a drifting baseline.
DRIFT_RATIO = 1.5


def _used_columns(excluded: np.ndarray) -> slice:
    """The columns from the first to the last one with a pixel not ``excluded`` (all columns if none has).

    Per-row and whole-region estimates ignore the excluded (NaN) pixels: working on these columns
    only (e.g. the overscan) gives the same numbers with a fraction of the memory and time.
    """
    columns = np.flatnonzero(~excluded.all(axis=0))
    return slice(int(columns[0]), int(columns[-1]) + 1) if columns.size else slice(None)


def pixel_to_pixel_noise(values: np.ndarray) -> float:
    """Noise of single pixels from the differences of neighbours along the rows (ADU).

    ``1.4826 * MAD(x[i+1] - x[i]) / sqrt(2)`` per row, median over the rows: for white noise it is the
    pixel noise, and a baseline that varies slowly along the row cancels in the differences.

    Parameters
    ----------
    values : numpy.ndarray
        2-D pixel values (ADU), NaN where a pixel is not to be used.

    Returns
    -------
    float
        The noise (ADU), NaN when no row has two neighbouring pixels.
    """
    steps = np.diff(np.asarray(values, dtype=float), axis=1)
    with _quiet():
        centre = nanmedian_rows(steps)[:, None]
        per_row = MAD_TO_SIGMA * nanmedian_rows(np.abs(steps - centre)) / np.sqrt(2.0)
        return float(np.nanmedian(per_row)) if np.isfinite(per_row).any() else float("nan")


class PedestalSubtractionProcess(AnalysisProcess):
    """Estimate the pedestal per row, column, both or globally, and subtract it.

    Produces ``<image>_pedestal_subtracted`` and records per amplifier the pedestal and
    noise (sigma) per row (``pedestal_row``, ``sigma_row``) and/or column, their means
    ``pedestal_adu`` and ``noise_adu`` (used as the noise of cluster thresholds).
    """

    order: ClassVar[int] = 20
    per_amplifier: ClassVar[bool] = True
    summary_order: ClassVar[int] = 10
    products = (
        Product(
            "mean_compressed_pedestal_subtracted",
            "image",
            "ADU",
            "<image>_pedestal_subtracted: input minus the pedestal",
        ),
        Product("pedestal_adu", "result", "ADU", "mean pedestal"),
        Product("noise_adu", "result", "ADU", "mean noise sigma (the noise of cluster thresholds)"),
        Product("noise_adu_spread", "result", "ADU", "spread of the noise sigmas"),
        Product("region", "result", doc="where the pedestal was estimated: overscan, prescan or active"),
        Product("pedestal_row", "result", "ADU", "pedestal per row (pedestal_col per column with axis col/both)"),
        Product("sigma_row", "result", "ADU", "noise sigma per row (sigma_col per column)"),
        Product("pedestal", "figure", doc="pedestal and noise per row/column (pedestal_per_<axis>)"),
        Product("pcd", "figure", doc="pixel-charge distribution after the subtraction (with save_pcd)"),
        Product("image", "figure", doc="the pedestal-subtracted image (with save_pcd)"),
    )

    image = Param("mean_compressed", doc="input image product (ADU)")
    method = Param(
        "gauss_fit",
        _METHODS,
        doc="estimator: Gaussian fit, median or mean; auto: median on the overscan/prescan, "
        "Gaussian fit of the 0 e- peak on the active region",
    )
    use_mad = Param(True, doc="spread of median/mean: 1.4826 MAD (true) or standard deviation (false)")
    in_overscan = Param(
        True, doc="estimate on the overscan (the prescan if the overscan is too narrow; else the active region)"
    )
    axis = Param("row", _AXES, doc="one pedestal per row, per column, both (row then column), or none (global)")
    in_rawskipimage = Param(False, doc="estimate and subtract per single-skip image (row axis), then average")
    n_sigma_win_fit = Param(3.0, Float(min=0.5), doc="Gaussian fit window: median +/- n robust sigmas")
    n_sigma_to_mask = Param(-1.0, doc="mask pixels beyond n MAD (unscaled) of the region median first; <= 0: off")
    cut_left_tail = Param(True, doc="masking removes the low tail")
    cut_right_tail = Param(True, doc="masking removes the high tail")
    skip_cols = Param(
        [], INDEX_RANGES, per_amplifier=True, doc="columns excluded in active-region mode ([a, b] closed)"
    )
    skip_rows = Param([], INDEX_RANGES, per_amplifier=True, doc="rows excluded in active-region mode ([a, b] closed)")
    hist_nbins_method = Param(
        "default", Choice(["default", "freedman", "sturge", "manual"]), doc="binning of the Gaussian fit"
    )
    hist_nbins = Param(0, Int(min=0), doc="number of bins for hist_nbins_method = manual")
    rebin_rows = Param(1, Int(min=1), doc="rows per group of the row estimate (sliding forward window)")
    is_highDC = Param(
        False,
        per_amplifier=True,
        aliases=("is_highT", "highT"),
        doc="high dark current: start from the lowest peak (0 e-) and the width of its lower side",
    )
    save_pcd = Param(True, doc="with --save-plots, also draw the pixel-charge distribution")
    min_overscan_cols = Param(
        3, Int(min=1), doc="fewer overscan columns than this: use the prescan, or the active region"
    )

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        high_dc = bool(self.value_for("is_highDC", amplifier.names, False))
        if self.in_rawskipimage:
            self._single_skip_mode(image, amplifier, high_dc)
            return
        data = self.input_image(amplifier)
        where, n_sigma = self._region_choice(image, amplifier)
        in_overscan = where != "active"
        # the pedestal is the 0-electron peak: in the active region the charge of every pixel pulls the
        # median up (half the pixels hold an electron at about 1 e-/pixel), so the fit starts at the lowest peak
        method = self.method_for(where)
        high_dc = high_dc or (not in_overscan and method == "gauss_fit")
        region = self._region_mask(image, amplifier, where)
        work = data
        results: dict[str, Any] = {"in_overscan": in_overscan, "region": where}
        axes = {"row": ("row",), "col": ("col",), "both": ("row", "col"), "none": ("none",)}[self.axis]
        used = _used_columns(region)
        for axis in axes:
            mask = region if axis != "col" else self._column_region(image, amplifier, where)
            cols = used if axis != "col" else slice(None)  # per row or for all: only the columns of the region
            values = np.where(mask[:, cols], np.nan, work[:, cols])
            values = self._clip_outliers(values, n_sigma)
            estimate = self._estimate(values, axis, high_dc=high_dc, method=method)
            self._check_groups(image, amplifier, estimate["pedestal"], axis)
            if "fit_valid" in estimate:
                self._check_fits(image, amplifier, estimate, axis)
            if axis == "row":
                work = work - estimate["pedestal"][:, None]
            elif axis == "col":
                work = work - estimate["pedestal"][None, :]
            else:
                work = work - estimate["pedestal"][0]
            for key, value in estimate.items():
                results[f"{key}_{axis}"] = value
        if in_overscan and "row" in axes:
            self._check_drift(image, amplifier, np.where(region[:, used], np.nan, data[:, used]), results)
        output = f"{self.image}_pedestal_subtracted"
        amplifier.set(output, work)
        sigmas = np.concatenate([np.atleast_1d(results[f"sigma_{a}"]) for a in axes])
        pedestals = np.concatenate([np.atleast_1d(results[f"pedestal_{a}"]) for a in axes[:1]])
        with _quiet():
            results["pedestal_adu"] = float(np.nanmean(pedestals))
            results["noise_adu"] = float(np.nanmean(sigmas))
            results["noise_adu_spread"] = float(np.nanstd(sigmas))
        amplifier.record(self.name, **results)
        if wants_plots(self, context):
            self._plot(image, amplifier, context, results, axes)
        name = amplifier.name
        results["method"] = method
        image.add_header_card("PSFUNC", method, "pedestal estimator")
        image.add_header_card("PSMAD", int(self.use_mad), "spread from 1.4826 MAD")
        image.add_header_card("PSAXIS", self.axis, "pedestal axis")
        image.add_header_card("PSOVS", int(in_overscan), "pedestal from the overscan or prescan")
        image.add_header_card("PSNSIG", n_sigma, "outlier masking (MAD units)")
        image.add_header_card(f"PSSIG{name}", results["noise_adu"], "mean pedestal sigma (ADU)")
        image.add_header_card(f"PSESIG{name}", results["noise_adu_spread"], "spread of the pedestal sigmas (ADU)")

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """Pedestal and noise of every amplifier (``pedestal_adu``, ``noise_adu``, ...) and their warnings."""
        part = SummaryPart()
        for name, amp in image.amplifiers.items():
            pedestal = amp.results.get(self.name)
            if not pedestal:
                continue
            numbers = {
                "pedestal_adu": pedestal.get("pedestal_adu"),
                "noise_adu": pedestal.get("noise_adu"),
                "pedestal_region": pedestal.get("region"),
            }
            valid_keys = [key for key in pedestal if key.startswith("fit_valid_")]
            warnings = []
            if valid_keys:
                invalid = sum(
                    int(np.count_nonzero(~np.asarray(pedestal[key]) & np.isfinite(pedestal[f"pedestal_{key[10:]}"])))
                    for key in valid_keys
                )
                numbers["pedestal_fits_invalid"] = invalid
                if invalid:
                    warnings.append(f"{name}: {self.name}: {invalid} Gaussian fit(s) of the pedestal invalid")
            if pedestal.get("drift_warning"):
                warnings.append(f"{name}: {self.name}: {pedestal['drift_warning']}")
            part.amplifiers[name] = numbers
            part.warnings[name] = warnings
        return part

    def info_part(self, image: SkipperImage) -> dict[str | None, dict[str, Any]]:
        """``<A>_pedestal_{mu,sigma}_<axis>_ADU`` (per row/column) and their means, for the ROOT info tree."""
        parts: dict[str | None, dict[str, Any]] = {}
        for name, amp in image.amplifiers.items():
            pedestal = amp.results.get(self.name, {})
            columns = parts.setdefault(name, {})
            for axis in ("row", "col"):
                if f"pedestal_{axis}" in pedestal:
                    mu = np.asarray(pedestal[f"pedestal_{axis}"], dtype=np.float64)
                    sigma = np.asarray(pedestal[f"sigma_{axis}"], dtype=np.float64)
                    columns[f"{name}_pedestal_mu_{axis}_ADU"] = mu
                    columns[f"{name}_pedestal_sigma_{axis}_ADU"] = sigma
                    columns[f"{name}_pedestal_mu_{axis}_mean_ADU"] = (
                        float(np.nanmean(mu)) if np.isfinite(mu).any() else 0.0
                    )
                    columns[f"{name}_pedestal_sigma_{axis}_mean_ADU"] = (
                        float(np.nanmean(sigma)) if np.isfinite(sigma).any() else 0.0
                    )
        return parts

    def _plot(
        self, image: SkipperImage, amplifier: Amplifier, context: RunContext, results: dict[str, Any], axes: tuple
    ) -> None:
        for axis in axes:
            if axis == "none":
                continue
            label = "row" if axis == "row" else "column"
            position = np.arange(len(results[f"pedestal_{axis}"]))
            with figure(context, image, self.name, f"pedestal_per_{axis}", amplifier, nrows=2, size=(7, 6)) as (_, ax):
                ax[0].errorbar(position, results[f"pedestal_{axis}"], yerr=results.get(f"pedestal_err_{axis}"), fmt=".")
                ax[0].set_ylabel("pedestal (ADU)")
                ax[1].plot(position, results[f"sigma_{axis}"], ".")
                ax[1].set_ylabel("noise sigma (ADU)")
                ax[1].set_xlabel(label)
        if self.save_pcd:
            out = amplifier.get(f"{self.image}_pedestal_subtracted")
            rows, cols = amplifier.geometry.region("active")
            values = out[rows, cols][np.isfinite(out[rows, cols])]
            with figure(context, image, self.name, "pcd", amplifier) as (_, ax):
                noise = results["noise_adu"]
                lo, hi = -6 * noise, np.percentile(values, 99.9) if values.size else 1.0
                ax.hist(values, bins=200, range=(lo, max(hi, 6 * noise)), histtype="step")
                ax.set_yscale("log")
                ax.set_xlabel("pixel charge (ADU)")
                ax.set_ylabel("pixels per bin")
            with figure(context, image, self.name, "image", amplifier) as (_, ax):
                image_view(ax, out, label="charge (ADU)")

    # --- region -------------------------------------------------------------------------
    def _region_choice(self, image: SkipperImage, amplifier: Amplifier) -> tuple[str, float]:
        """Region of the estimate ("overscan", "prescan" or "active") and the outlier masking (MAD units)."""
        geometry = amplifier.geometry
        if not self.in_overscan:
            return "active", self.n_sigma_to_mask
        if geometry.overscan_cols >= self.min_overscan_cols:
            return "overscan", self.n_sigma_to_mask
        if geometry.prescan_cols >= self.min_overscan_cols:
            log.info(
                "%s, amplifier %s: %d overscan columns; the pedestal is estimated on the %d prescan columns",
                image.label,
                amplifier.name,
                geometry.overscan_cols,
                geometry.prescan_cols,
            )
            return "prescan", self.n_sigma_to_mask
        log.info(
            "%s, amplifier %s: %d overscan and %d prescan columns; the pedestal is estimated on the active region",
            image.label,
            amplifier.name,
            geometry.overscan_cols,
            geometry.prescan_cols,
        )
        return "active", self.n_sigma_to_mask if self.n_sigma_to_mask > 0 else 100.0

    def _region_mask(self, image: SkipperImage, amplifier: Amplifier, where: str) -> np.ndarray:
        geometry = amplifier.geometry
        mask = geometry.mask(where) | self.window_mask(image, amplifier)
        if where == "active":
            names = amplifier.names
            mask[file_index_selector(self.value_for("skip_rows", names, []), geometry, "row"), :] = True
            mask[:, file_index_selector(self.value_for("skip_cols", names, []), geometry, "col")] = True
        return mask

    def _column_region(self, image: SkipperImage, amplifier: Amplifier, where: str) -> np.ndarray:
        """Column estimates use every column over the active rows (overscan/prescan mode) or the active region."""
        if where != "active":
            return amplifier.geometry.mask("active_rows") | self.window_mask(image, amplifier)
        return self._region_mask(image, amplifier, "active")

    def _check_fits(self, image: SkipperImage, amplifier: Amplifier, estimate: dict[str, Any], axis: str) -> None:
        """Warn (one line) about Gaussian fits that are invalid by :mod:`waders.ana.fitting.quality`."""
        bad = ~estimate["fit_valid"] & np.isfinite(estimate["pedestal"])
        if bad.any():
            first = estimate["fit_status"][int(np.argmax(bad))]
            log.warning(
                "%s, amplifier %s: %s: %d of %d %s Gaussian fits invalid (e.g. %s); their pedestals are still used",
                image.label,
                amplifier.name,
                self.name,
                int(bad.sum()),
                int(np.isfinite(estimate["pedestal"]).sum()),
                "per-" + axis if axis != "none" else "global",
                first,
            )

    def _check_drift(
        self, image: SkipperImage, amplifier: Amplifier, values: np.ndarray, results: dict[str, Any]
    ) -> None:
        """Compare the overscan noise with its pixel-to-pixel noise; warn when a drifting baseline inflates it.

        A baseline that drifts along the rows (e.g. SENSEI LTA images) widens the spread of the overscan
        pixels of a row, while the difference of neighbouring pixels does not see it.  The noise of the
        cluster thresholds stays the overscan's (the drift is in the data); the summary says why it is large.
        """
        sigma_row = results.get("sigma_row")
        if sigma_row is None:
            return
        with _quiet():
            overscan_noise = float(np.nanmean(sigma_row))
        neighbour_noise = pixel_to_pixel_noise(values)
        results["noise_adu_pixel_to_pixel"] = neighbour_noise
        if np.isfinite(neighbour_noise) and neighbour_noise > 0 and overscan_noise > DRIFT_RATIO * neighbour_noise:
            message = (
                f"the {results['region']} noise ({overscan_noise:.4g} ADU) is {overscan_noise / neighbour_noise:.1f}x "
                f"the pixel-to-pixel noise ({neighbour_noise:.4g} ADU): the baseline drifts along the rows"
            )
            results["drift_warning"] = message
            log.warning("%s, amplifier %s: %s: %s", image.label, amplifier.name, self.name, message)

    def _clip_outliers(self, values: np.ndarray, n_sigma: float) -> np.ndarray:
        if n_sigma <= 0:
            return values
        with _quiet():
            centre = np.nanmedian(values)
            mad = np.nanmedian(np.abs(values - centre))
        if not np.isfinite(mad) or mad == 0:
            return values
        deviation = values - centre
        outlier = np.zeros(values.shape, dtype=bool)
        if self.cut_right_tail:
            outlier |= deviation > n_sigma * mad
        if self.cut_left_tail:
            outlier |= deviation < -n_sigma * mad
        return np.where(outlier, np.nan, values)

    # --- estimators ----------------------------------------------------------------------
    def _groups(self, values: np.ndarray, axis: str, rebin: bool = True) -> np.ndarray:
        """(groups, n) array of the values of each row / column / the whole region."""
        if axis == "none":
            return values.reshape(1, -1)
        if axis == "col":
            return values.T
        if self.rebin_rows == 1 or not rebin:
            return values
        nrows = values.shape[0]
        starts = np.arange(nrows)
        half = self.rebin_rows // 2
        starts = np.where(starts + half > nrows, max(0, nrows - half), starts)
        offsets = np.arange(self.rebin_rows)
        index = np.clip(starts[:, None] + offsets[None, :], 0, nrows - 1)
        valid = (starts[:, None] + offsets[None, :]) < nrows
        stacked = values[index]  # (rows, rebin, cols)
        stacked[~valid] = np.nan
        return stacked.reshape(nrows, -1)

    def method_for(self, where: str) -> str:
        """The estimator used on a region (``"overscan"``, ``"prescan"`` or ``"active"``).

        ``auto`` is the median on the overscan/prescan (no charge there, robust with few columns) and a
        Gaussian fit of the 0 e- peak on the active region (the median and MAD of the active region are
        pulled up and widened by the 1 e- peak when the dark current is high).
        """
        if self.method != "auto":
            return self.method
        return "gauss_fit" if where == "active" else "median"

    def _estimate(
        self, values: np.ndarray, axis: str, rebin: bool = True, high_dc: bool = False, method: str = "gauss_fit"
    ) -> dict[str, np.ndarray]:
        groups = self._groups(values, axis, rebin)
        counts = np.isfinite(groups).sum(axis=1)
        if method == "gauss_fit":
            fits = fit_gaussians(
                groups,
                window=self.n_sigma_win_fit,
                bins=self.hist_nbins_method,
                n_bins=self.hist_nbins,
                high_dark_current=high_dc,
            )
            valid, status, _ = assess_many(
                chi2=fits.chi2,
                ndf=fits.ndf,
                n_entries=fits.n_used,
                min_entries=MIN_FIT_ENTRIES,
                converged=np.isfinite(fits.mu) | (fits.n_used < MIN_FIT_ENTRIES),
                entries="pixels in the fit window",
            )
            return {
                "pedestal": fits.mu,
                "pedestal_err": fits.mu_err,
                "sigma": fits.sigma,
                "sigma_err": fits.sigma_err,
                "chi2_ndf": fits.chi2_ndf,
                "fit_valid": valid,
                "fit_status": status,
            }
        with _quiet(), np.errstate(all="ignore"):
            centre = nanmedian_rows(groups) if method == "median" else np.nanmean(groups, axis=1)
            if self.use_mad:
                spread = MAD_TO_SIGMA * nanmedian_rows(np.abs(groups - centre[:, None]))
            else:
                spread = np.nanstd(groups, axis=1)
            error = spread / np.sqrt(np.maximum(counts, 1))
        bad = counts < 2
        centre[bad] = np.nan
        spread[bad] = np.nan
        return {"pedestal": centre, "pedestal_err": error, "sigma": spread}

    def _check_groups(self, image: SkipperImage, amplifier: Amplifier, pedestal: np.ndarray, axis: str) -> None:
        bad = ~np.isfinite(pedestal)
        if axis in ("row", "col"):
            used = np.zeros(len(pedestal), dtype=bool)
            used[self.window(image, amplifier)[0 if axis == "row" else 1]] = True
            bad &= used
        if bad.all():
            raise DataError(
                f"{image.label}, amplifier {amplifier.name}: no usable pixels to estimate the pedestal per {axis}",
                hint="check in_overscan, the overscan width and the row/column ranges",
            )
        if bad.any():
            log.warning(
                "%s, amplifier %s: %d %s(s) without a pedestal estimate are left as NaN",
                image.label,
                amplifier.name,
                int(bad.sum()),
                axis,
            )

    # --- single-skip images ------------------------------------------------------------------
    def _single_skip_mode(self, image: SkipperImage, amplifier: Amplifier, high_dc: bool) -> None:
        """Estimate each row's pedestal in every single-skip image, subtract, then average the skips used."""
        if self.axis != "row":
            raise DataError(f"{self.name}: in_rawskipimage works per row only (axis: row)")
        raw = np.asarray(amplifier.get("raw"), dtype=np.float64)
        start, stop = self.skip_range(image, raw.shape[2])
        raw = raw[:, :, start:stop]
        where, n_sigma = self._region_choice(image, amplifier)
        in_overscan = where != "active"
        mask = self._region_mask(image, amplifier, where)
        nrows, ncols, nskips = raw.shape
        values = np.where(mask[:, :, None], np.nan, raw)
        values = self._clip_outliers(values, n_sigma)
        # groups: (row, skip) pairs
        groups = np.moveaxis(values, 2, 1).reshape(nrows * nskips, ncols)
        estimate = self._estimate(groups, "row", rebin=False, high_dc=high_dc, method=self.method_for(where))
        pedestal = estimate["pedestal"].reshape(nrows, nskips)
        subtracted = (raw - pedestal[:, None, :]).mean(axis=2)
        amplifier.set(f"{self.image}_pedestal_subtracted", subtracted)
        sigma = estimate["sigma"].reshape(nrows, nskips)
        with _quiet():
            amplifier.record(
                self.name,
                pedestal_row=np.nanmean(pedestal, axis=1),
                sigma_row=np.nanmean(sigma, axis=1),
                pedestal_adu=float(np.nanmean(pedestal)),
                noise_adu=float(np.nanmean(sigma)),
                in_overscan=in_overscan,
            )
