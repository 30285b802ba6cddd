"""CorrectElectronicColumnTransient: fit and remove the transient of the first columns read (reference B.13).

After the start of every row readout the baseline of the video chain relaxes back to
its steady value, so the first columns *read* carry an offset decaying with the readout
column ``x``: ``T(x) = sum_i A_i exp(-mu_i x)``.  Per amplifier (stored in readout order,
so the same code serves the mirrored ``U`` amplifier):

1. the column medians ``m(x)`` of the image over the active rows (and the id_row/id_col
   window; NaN pixels ignored), with uncertainties ``1.2533 x 1.4826 MAD / sqrt(n)``;
2. with ``subtract_median``, minus the baseline ``b``, the median of the column medians of
   the columns ``x >= col_end``;
3. a least-squares fit of ``T(x)`` to ``m(x) - b`` on the columns ``col_start <= x < col_end``,
   each column paired with its own index ``x`` (starting values ``amplitude``, ``mu``);
4. with ``correct_image``, ``<image>_correct_cols`` = the image with ``T(x)`` subtracted from
   the columns ``col_start <= x < col_end`` of every row -- only when the fit is valid
   (:mod:`waders.ana.fitting.quality`); an invalid fit leaves the image unchanged, with a warning.

Recorded per amplifier: ``ect_mu``, ``ect_mu_err``, ``ect_amplitude``, ``ect_amplitude_err``
(lists of ``n_exp`` values; ``mu`` per column, amplitude in image units), ``ect_mu0``,
``ect_A0`` (the first component, pysimdamicm's names), ``ect_chi2``, ``ect_ndf``,
``ect_chi2_ndf``, ``ect_valid``, ``ect_status``, ``ect_corrected``, ``ect_baseline``, ``column_median`` and
``column_median_err`` (all columns).

Deliberate differences from pysimdamicm:

* each column is paired with its own readout index (pysimdamicm fitted the abscissae
  ``col_start .. col_end`` against the medians of columns ``0 .. col_end - 1``: off by one);
* the ``U`` amplifier works (pysimdamicm crashed on an undefined name), its columns being
  in readout order; the baseline is always the median beyond ``col_end`` in readout order;
* the fit is weighted by the uncertainty of each column median and the amplitudes may be
  negative (pysimdamicm bounded them to [0, 50]); ``mu`` stays within (0, 50];
* ``correct_image`` is honoured (pysimdamicm declared it and always corrected);
  ``fit_options`` (ROOT options) is accepted and ignored.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier
from waders.core.kinds import Float, Int, ListOf

from ..base import AnalysisProcess
from ..fitting.quality import assess
from ..plotting import figure, wants_plots
from ..summary import finite_or_zero

__all__ = ["CorrectElectronicColumnTransient", "column_medians", "transient_model"]

log = logging.getLogger(__name__)

_MAD_TO_SIGMA = 1.4826
#: Asymptotic efficiency factor of the median (std of the median = 1.2533 sigma / sqrt(n)).
_MEDIAN_ERROR = 1.2533
_MU_MAX = 50.0


def transient_model(x: np.ndarray, amplitudes: np.ndarray, mus: np.ndarray) -> np.ndarray:
    """``sum_i A_i exp(-mu_i x)`` at the columns ``x``."""
    x = np.asarray(x, dtype=np.float64)
    return (np.asarray(amplitudes)[:, None] * np.exp(-np.outer(mus, x))).sum(axis=0)


def column_medians(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of every column over the rows (NaN ignored) and its uncertainty.

    Returns
    -------
    (median, error) : arrays of the number of columns; NaN where a column has no value.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        median = np.nanmedian(values, axis=0)
        mad = np.nanmedian(np.abs(values - median), axis=0)
    count = np.isfinite(values).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = _MEDIAN_ERROR * _MAD_TO_SIGMA * mad / np.sqrt(count)
    return median, error


class CorrectElectronicColumnTransient(AnalysisProcess):
    """Fit sum_i A_i exp(-mu_i x) to the column medians of the first columns read and subtract it.

    See :mod:`waders.ana.studies.transient` for the method and the recorded keys.
    """

    products = (
        Product(
            "mean_compressed_pedestal_subtracted_correct_cols",
            "image",
            "ADU",
            "<image>_correct_cols: the transient subtracted",
            switch="correct_image",
        ),
        Product("ect_mu", "result", doc="decay constants of the exponentials (per column; ect_amplitude in ADU)"),
        Product("ect_chi2_ndf", "result", doc="chi2 per degree of freedom of the fit (ect_valid, ect_status)"),
        Product("column_median", "result", "ADU", "median of every column fitted"),
        Product("columns", "figure", doc="column medians, the fit and the residuals"),
    )

    order: ClassVar[int] = 22
    per_amplifier: ClassVar[bool] = True

    image = Param("mean_compressed_pedestal_subtracted", doc="input image product")
    col_start = Param(1, Int(min=0), doc="first column (readout order) fitted and corrected")
    col_end = Param(50, Int(min=1), doc="end of the fitted columns (exclusive); the baseline uses columns >= col_end")
    subtract_median = Param(True, doc="subtract the median of the column medians beyond col_end before fitting")
    n_exp = Param(1, Int(min=1), doc="number of exponentials")
    mu = Param([0.12], ListOf(Float(min=0)), doc="starting decay constants (per column), one per exponential")
    amplitude = Param([0.013], ListOf(Float()), doc="starting amplitudes (image units), one per exponential")
    correct_image = Param(True, doc="produce <image>_correct_cols")

    ignored_keys: ClassVar[dict[str, str]] = {"fit_options": "ROOT fit options; waders fits by weighted least squares"}

    def starting_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Starting amplitudes and decay constants (lists padded/extended to n_exp)."""
        mus = list(self.mu) or [0.12]
        amps = list(self.amplitude) or [0.013]
        while len(mus) < self.n_exp:
            mus.append(mus[-1] * 3.0 if mus[-1] > 0 else 0.1)
        while len(amps) < self.n_exp:
            amps.append(amps[-1])
        mu0 = np.clip(np.asarray(mus[: self.n_exp], dtype=np.float64), 1e-6, _MU_MAX)
        return np.asarray(amps[: self.n_exp], dtype=np.float64), mu0

    def info_part(self, image: SkipperImage) -> dict[str | None, dict[str, Any]]:
        """``ect_mu``, ``ect_amplitude`` (per exponential) and ``ect_chi`` (chi2/ndf) for the ROOT info tree.

        With several corrected amplifiers the names are prefixed ``<A>_``.
        """
        corrected = {name: amp.results[self.name] for name, amp in image.amplifiers.items() if self.name in amp.results}
        out: dict[str, Any] = {}
        for name, ect in corrected.items():
            prefix = "" if len(corrected) == 1 else f"{name}_"
            out[f"{prefix}ect_mu"] = np.asarray(ect.get("ect_mu", []), dtype=np.float64)
            out[f"{prefix}ect_amplitude"] = np.asarray(ect.get("ect_amplitude", []), dtype=np.float64)
            out[f"{prefix}ect_chi"] = finite_or_zero(ect.get("ect_chi2_ndf"))
        return {None: out}

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        values = self.input_image(amplifier)
        geometry = amplifier.geometry
        ncols = geometry.ncols
        if not self.col_start < self.col_end < ncols:
            raise ConfigError(
                f"{self.name}: columns [{self.col_start}, {self.col_end}) must lie below the {ncols} columns "
                f"of amplifier {amplifier.name} with at least one column left for the baseline",
                hint=f"set 0 <= col_start < col_end < {ncols}",
            )
        rows = self.window(image, amplifier)[0]
        active_rows = geometry.active_rows
        rows = slice(max(rows.start, active_rows.start), min(rows.stop, active_rows.stop))
        selected = values[rows].copy()
        selected[:, self.window_mask(image, amplifier)[rows].all(axis=0)] = np.nan
        median, error = column_medians(selected)
        tail = median[self.col_end :]
        baseline = float(np.nanmedian(tail)) if self.subtract_median and np.isfinite(tail).any() else 0.0
        x = np.arange(self.col_start, self.col_end)
        y, sy = median[x] - baseline, error[x]
        good = np.isfinite(y) & np.isfinite(sy) & (sy > 0)
        n_par = 2 * self.n_exp
        if good.sum() <= n_par:
            raise DataError(
                f"{self.name}: amplifier {amplifier.name} has {int(good.sum())} usable columns in "
                f"[{self.col_start}, {self.col_end}) for {n_par} parameters",
                hint="widen col_start..col_end or check the image",
            )
        fit = self._fit(x[good], y[good], sy[good])
        results: dict[str, Any] = {
            "ect_mu": fit["mu"],
            "ect_mu_err": fit["mu_err"],
            "ect_amplitude": fit["amplitude"],
            "ect_amplitude_err": fit["amplitude_err"],
            "ect_mu0": fit["mu"][0],
            "ect_A0": fit["amplitude"][0],
            "ect_chi2": fit["chi2"],
            "ect_ndf": fit["ndf"],
            "ect_chi2_ndf": fit["chi2"] / fit["ndf"] if fit["ndf"] > 0 else float("nan"),
            "ect_valid": fit["valid"],
            "ect_status": fit["status"],
            "ect_corrected": bool(self.correct_image and fit["valid"]),
            "ect_baseline": baseline,
            "col_start": self.col_start,
            "col_end": self.col_end,
            "column_median": median,
            "column_median_err": error,
        }
        amplifier.record(self.name, **results)
        if not fit["valid"]:
            log.warning(
                "%s, amplifier %s: %s: fit invalid: %s%s",
                image.label, amplifier.name, self.name, fit["status"],
                "; the image is not corrected" if self.correct_image else "",
            )  # fmt: skip
        model = transient_model(x, np.asarray(fit["amplitude"]), np.asarray(fit["mu"]))
        if self.correct_image:
            corrected = values.copy()
            if fit["valid"]:  # an invalid fit is never subtracted
                corrected[:, self.col_start : self.col_end] -= model[None, :]
            amplifier.set(f"{self.image}_correct_cols", corrected)
        if wants_plots(self, context):
            self._plot(image, amplifier, context, results, model, baseline)

    def _fit(self, x: np.ndarray, y: np.ndarray, sy: np.ndarray) -> dict[str, Any]:
        """Weighted least squares of the multi-exponential with scipy's trust-region solver."""
        from scipy.optimize import curve_fit

        amps0, mus0 = self.starting_values()
        n = self.n_exp

        def model(xx: np.ndarray, *params: float) -> np.ndarray:
            p = np.asarray(params)
            return transient_model(xx, p[:n], p[n:])

        start = np.concatenate([amps0, mus0])
        lower = np.concatenate([np.full(n, -np.inf), np.zeros(n)])
        upper = np.concatenate([np.full(n, np.inf), np.full(n, _MU_MAX)])
        valid = True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, cov = curve_fit(
                    model, x, y, p0=start, sigma=sy, absolute_sigma=True, bounds=(lower, upper), max_nfev=2000
                )
        except (RuntimeError, ValueError) as err:
            log.debug("transient fit failed: %s", err)
            params, cov, valid = start, np.full((2 * n, 2 * n), np.nan), False
        errors = np.sqrt(np.abs(np.diag(cov)))
        valid = valid and bool(np.all(np.isfinite(errors)))
        chi2 = float((((y - model(x, *params)) / sy) ** 2).sum())
        at_limit = bool(np.any(params[n:] <= lower[n:]) or np.any(params[n:] >= upper[n:]))
        quality = assess(
            chi2=chi2, ndf=int(x.size - 2 * n), n_entries=x.size, min_entries=2 * n + 1, converged=valid,
            at_limit={"decay length": at_limit},
        )  # fmt: skip
        return {
            "amplitude": [float(v) for v in params[:n]],
            "amplitude_err": [float(v) for v in errors[:n]],
            "mu": [float(v) for v in params[n:]],
            "mu_err": [float(v) for v in errors[n:]],
            "chi2": chi2,
            "ndf": int(x.size - 2 * n),
            "valid": quality.valid,
            "status": quality.status,
        }

    def _plot(
        self,
        image: SkipperImage,
        amplifier: Amplifier,
        context: RunContext,
        res: dict[str, Any],
        model: np.ndarray,
        baseline: float,
    ) -> None:
        unit = "e-" if self.image.endswith("_e") else "ADU"
        median, error = res["column_median"], res["column_median_err"]
        shown = np.arange(min(len(median), 2 * self.col_end))
        x = np.arange(self.col_start, self.col_end)
        with figure(context, image, self.name, "columns", amplifier, nrows=2, ncols=1, size=(7.0, 6.0)) as (_, axes):
            axes[0].errorbar(shown, median[shown] - baseline, error[shown], fmt=".", color="k", label="column median")
            axes[0].plot(
                x, model, color="tab:red", label=rf"fit: A = {res['ect_A0']:.3g} {unit}, $\mu$ = {res['ect_mu0']:.3g}"
            )
            axes[0].set_ylabel(f"median - baseline ({unit})")
            axes[0].legend()
            corrected = median[shown] - baseline
            corrected[self.col_start : min(self.col_end, len(shown))] -= model[: max(0, len(shown) - self.col_start)]
            axes[1].errorbar(shown, corrected, error[shown], fmt=".", color="k")
            axes[1].axhline(0.0, color="0.5", lw=0.8)
            axes[1].set_ylabel(f"after correction ({unit})")
            axes[1].set_xlabel("column (readout order)")
