"""RNvsNskipsPlot: readout noise versus the number N of averaged skips, and its power law.

For white readout noise the noise of the average of N skips is ``sigma_1 / sqrt(N)``;
noise correlated between the samples of a pixel (slow drifts, 1/f noise, a per-pixel
offset common to its skips) makes it fall more slowly.  The process reads the raw
samples of every amplifier **once**, by row blocks: the sums of the skips up to every
N are cumulative sums along the skip axis (``numpy.add.reduceat`` between consecutive
N, then ``cumsum``), so no image is compressed again per N.

The noise at N is measured on pixels that hold no charge (the amplifier's serial
overscan, or its active region when it has no overscan) as 1.4826 MAD, or on the whole
image of a blank (``is_blank``) as the standard deviation.  Pedestals differ from row
to row, which is not readout noise: each row's mean over the region's columns is
subtracted first and the spread corrected by ``sqrt(n / (n - 1))`` for the ``n``
columns of a row (exact for Gaussian noise).

The fit ``sigma_N = sigma_1 * N**-alpha`` is a generalised least-squares fit of
``ln sigma_N`` with the covariance that white noise gives the nested averages (the
estimates at N and M > N share data: the averages are correlated by sqrt(N / M), the
standard deviations by N / M, the MADs as given by :func:`mad_correlation_series`), so
``alpha_err`` is a real one-sigma error under the white-noise hypothesis; ``correlated_noise`` is True
when alpha is more than 3 errors below 0.5.

Records per amplifier: ``n_skips`` (N), ``noise_adu``, ``noise_err_adu``, ``sigma_1_adu``,
``sigma_1_err``, ``alpha``, ``alpha_err``, ``alpha_pull`` ((0.5 - alpha) / alpha_err),
``chi2_ndf``, ``correlated_noise``, ``region``, ``n_pixels``, ``skip_start``, ``skip_stop``.

Deliberate differences from pysimdamicm:

* one pass over the raw samples with cumulative sums; ``mean_compressed`` and the
  NSTART/NEND/... header cards are never overwritten (pysimdamicm re-ran
  CompressSkipperProcess for every N and left the last one behind);
* ``n_skips_per_block > 0`` gives N = 1, 1 + n, 1 + 2n, ... and always the whole skip
  range; the last point is the end of the configured skip range (pysimdamicm used the
  number of skips of the file);
* ``n_skips_per_block < 0`` spaces |n| values of N logarithmically between 1 and the
  number of skips used (pysimdamicm spaced the *end index* of the range, which bunches
  the small N when the range does not start at skip 0);
* the spread is taken about each row's mean (pedestal drifts between rows are not
  noise; pysimdamicm included them) and ``is_blank`` uses the whole amplifier image of
  the window;
* without overscan columns the active region is used instead of failing; regions of more
  than ``max_pixels`` pixels (an active region, a blank image) use a regular subset of
  columns and rows;
* the default ``n_skips_per_block`` is -20 (20 log-spaced N; pysimdamicm: -100 in the
  class, 10 in its default configuration);
* the power law is fitted, with errors (pysimdamicm only drew two 1/sqrt(N) curves).
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.image import RAW, Amplifier
from waders.core.kinds import Float, Int

from ..base import AnalysisProcess
from ..fitting.gaussian import MAD_TO_SIGMA
from ..plotting import figure, wants_plots

__all__ = ["RNvsNskipsPlot", "fit_power_law", "mad_correlation", "mad_correlation_series", "skip_counts"]

log = logging.getLogger(__name__)

#: Relative error of 1.4826 MAD of n Gaussian values is MAD_REL_ERR / sqrt(n) (efficiency 36.75 %).
MAD_REL_ERR = 1.1664
#: Significance (in errors) below 0.5 from which the noise is flagged as correlated.
CORRELATED_PULL = 3.0


def skip_counts(per_block: int, total: int) -> np.ndarray:
    """Numbers N of averaged skips at which the noise is measured.

    Parameters
    ----------
    per_block : int
        ``> 0``: N = 1, 1 + n, 1 + 2n, ... below ``total``, then ``total``;
        ``< 0``: |n| values spaced logarithmically from 1 to ``total`` (duplicates removed).
    total : int
        Skips in the configured range.

    Returns
    -------
    numpy.ndarray
        Sorted unique integers in ``[1, total]``, ending with ``total``.
    """
    if per_block == 0:
        raise ConfigError("RNvsNskipsPlot.n_skips_per_block must not be 0", hint="use e.g. 10 (blocks) or -20 (log)")
    if per_block > 0:
        counts = np.arange(1, total + 1, per_block)
    else:
        counts = np.rint(np.geomspace(1, total, max(abs(per_block), 2))).astype(np.int64)
    return np.unique(np.append(counts, total)).astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mad_correlation_table() -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(0.0, 1.0, 2001)
    return grid, mad_correlation_series(grid)


def mad_correlation(rho: np.ndarray) -> np.ndarray:
    """:func:`mad_correlation_series` interpolated from a table (any number of points, fast)."""
    grid, table = _mad_correlation_table()
    return np.interp(np.clip(rho, 0.0, 1.0), grid, table)


def mad_correlation_series(rho: np.ndarray, terms: int = 4000) -> np.ndarray:
    """Correlation of the MAD estimates of two samples of unit Gaussians correlated by ``rho``.

    Asymptotically the MAD varies like the fraction of values with ``|x| < q`` (q = 0.6745), so
    the correlation is that of the indicators ``|x| < q`` and ``|y| < q``; with the Mehler
    expansion of the bivariate normal density it is
    ``16 phi(q)**2 * sum_{k even >= 2} rho**k He_{k-1}(q)**2 / k!`` (``rho**2`` would be the
    correlation of two variance estimates).

    Parameters
    ----------
    rho : numpy.ndarray
        Correlations in [0, 1).
    terms : int
        Terms of the series (it converges slowly as rho approaches 1).
    """
    q = 0.6744897501960817
    phi = math.exp(-0.5 * q * q) / math.sqrt(2 * math.pi)
    h = np.zeros(terms)  # He_n(q) / sqrt(n!) by the stable recurrence
    h[0], h[1] = 1.0, q
    for n in range(1, terms - 1):
        h[n + 1] = (q * h[n] - math.sqrt(n) * h[n - 1]) / math.sqrt(n + 1)
    k = np.arange(2, terms, 2)
    rho = np.clip(np.asarray(rho, dtype=np.float64), 0.0, 1.0)
    return 16 * phi**2 * np.sum(rho[..., None] ** k * (h[k - 1] ** 2 / k), axis=-1)


def fit_power_law(
    n_skips: np.ndarray, noise: np.ndarray, rel_err: np.ndarray, estimator: str = "std"
) -> dict[str, float]:
    """Fit ``noise = sigma_1 * N**-alpha`` by generalised least squares in log space.

    For white noise the averages of N_i and N_j > N_i nested skips are correlated by
    ``rho = sqrt(N_i / N_j)``; the covariance of ``ln noise`` is ``rel_err_i * rel_err_j`` times
    ``rho**2`` for standard deviations and :func:`mad_correlation` for 1.4826 MAD.

    Parameters
    ----------
    n_skips : numpy.ndarray
        Numbers of averaged skips (distinct, >= 1).
    noise : numpy.ndarray
        Measured noise (ADU).
    rel_err : numpy.ndarray
        Relative errors of ``noise``.
    estimator : {"std", "mad"}
        How the noise was measured (sets the correlation between the points).

    Returns
    -------
    dict
        ``sigma_1_adu``, ``sigma_1_err``, ``alpha``, ``alpha_err``, ``chi2_ndf`` (NaN when
        fewer than two usable points).
    """
    nan = float("nan")
    out = {"sigma_1_adu": nan, "sigma_1_err": nan, "alpha": nan, "alpha_err": nan, "chi2_ndf": nan}
    good = np.isfinite(noise) & (noise > 0) & np.isfinite(rel_err) & (rel_err > 0)
    if good.sum() < 2:
        return out
    n = n_skips[good].astype(np.float64)
    y = np.log(noise[good])
    err = rel_err[good]
    ratio = np.minimum.outer(n, n) / np.maximum.outer(n, n)
    correlation = mad_correlation(np.sqrt(ratio)) if estimator == "mad" else ratio
    np.fill_diagonal(correlation, 1.0)
    covariance = np.outer(err, err) * correlation
    design = np.column_stack([np.ones_like(n), -np.log(n)])
    try:
        factor = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        return out
    white_design = np.linalg.solve(factor, design)
    white_y = np.linalg.solve(factor, y)
    coeffs, *_ = np.linalg.lstsq(white_design, white_y, rcond=None)
    params_cov = np.linalg.inv(white_design.T @ white_design)
    ndf = len(n) - 2
    chi2 = float(np.sum((white_y - white_design @ coeffs) ** 2))
    sigma_1 = float(np.exp(coeffs[0]))
    out.update(
        sigma_1_adu=sigma_1,
        sigma_1_err=sigma_1 * math.sqrt(max(params_cov[0, 0], 0.0)),
        alpha=float(coeffs[1]),
        alpha_err=math.sqrt(max(params_cov[1, 1], 0.0)),
        chi2_ndf=chi2 / ndf if ndf > 0 else nan,
    )
    return out


def _overlap(a: slice, b: slice) -> slice:
    return slice(max(a.start, b.start), min(a.stop, b.stop))


class RNvsNskipsPlot(AnalysisProcess):
    """Readout noise versus the number of averaged skips, with a fit sigma_1 * N**-alpha (one pass over raw).

    Noise at N: 1.4826 MAD of the overscan (active region without overscan), or the standard deviation of
    the whole image with ``is_blank``, about each row's mean.  Records ``n_skips``, ``noise_adu``,
    ``noise_err_adu``, ``sigma_1_adu``, ``sigma_1_err``, ``alpha``, ``alpha_err``, ``alpha_pull``,
    ``chi2_ndf`` and ``correlated_noise`` (alpha more than 3 errors below 0.5).
    """

    products = (
        Product("noise_adu", "result", "ADU", "noise at every number of averaged skips (n_skips, noise_err_adu)"),
        Product("sigma_1_adu", "result", "ADU", "single-skip noise of the fit sigma_1 * N**-alpha (sigma_1_err)"),
        Product("alpha", "result", doc="exponent of the fit (0.5 for uncorrelated noise; alpha_err)"),
        Product("correlated_noise", "result", doc="alpha more than 3 errors below 0.5"),
        Product("noise_vs_nskips", "figure", doc="noise versus the number of averaged skips and the fit"),
    )

    order: ClassVar[int] = 60
    per_amplifier: ClassVar[bool] = True

    image = Param("raw", doc="input: the raw samples (the only accepted value)")
    n_skips_per_block = Param(
        -20, Int(), doc="> 0: N = 1, 1+n, 1+2n, ... ; < 0: |n| log-spaced N from 1 to all skips used"
    )
    is_blank = Param(False, doc="blank image: noise = std of the whole image (else 1.4826 MAD of the overscan)")
    row_baseline = Param(True, doc="measure the spread about each row's mean (pedestal drifts are not noise)")
    max_pixels = Param(
        200_000, Int(min=100), doc="largest number of pixels used (a regular subset of columns and rows beyond it)"
    )
    block_mbytes = Param(64.0, Float(min=1), doc="memory for one block of raw samples (MB)")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._check()

    def _check(self) -> None:
        if self.image != RAW:
            raise ConfigError(f"{self.name}.image must be 'raw' (got {self.image!r})", hint="remove the image key")
        if self.n_skips_per_block == 0:
            skip_counts(0, 1)

    # --- selection -----------------------------------------------------------------------------
    def region(self, image: SkipperImage, amplifier: Amplifier) -> tuple[str, slice, slice]:
        """Name, rows and columns of the pixels whose spread is the noise (window applied)."""
        geometry = amplifier.geometry
        if self.is_blank:
            name = "full"
        elif geometry.overscan_cols > 0:
            name = "overscan"
        else:
            name = "active"
            log.info(
                "%s, amplifier %s: no overscan; the noise is measured on the active region", image.label, amplifier.name
            )
        rows, cols = geometry.region(name)
        win_rows, win_cols = self.window(image, amplifier)
        rows, cols = _overlap(rows, win_rows), _overlap(cols, win_cols)
        if rows.stop <= rows.start or cols.stop <= cols.start:
            raise ConfigError(
                f"{self.name}: the {name} region of amplifier {amplifier.name} is outside the id_row/id_col window",
                hint="widen the window or set is_blank",
            )
        return name, rows, cols

    def _subset(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices used: every pixel, or a regular subset of at most max_pixels."""
        row_index = np.arange(rows.start, rows.stop)
        col_index = np.arange(cols.start, cols.stop)
        if row_index.size * col_index.size > self.max_pixels:
            col_step = max(1, math.ceil(col_index.size * row_index.size / self.max_pixels))
            col_step = min(col_step, max(1, col_index.size // 2))
            col_index = col_index[::col_step]
            row_step = max(1, math.ceil(row_index.size * col_index.size / self.max_pixels))
            row_index = row_index[::row_step]
        return row_index, col_index

    # --- measurement ---------------------------------------------------------------------------
    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        self._check()
        if not amplifier.has(RAW):
            raise DataError(
                f"{self.name} needs the raw samples; amplifier {amplifier.name} of {image.label} has none",
                hint="run it on a raw (multi-skip) image or remove it from the sequence",
            )
        raw = amplifier.get(RAW)
        start, stop = self.skip_range(image, raw.shape[2])
        counts = skip_counts(self.n_skips_per_block, stop - start)
        region, rows, cols = self.region(image, amplifier)
        row_index, col_index = self._subset(rows, cols)
        noise, rel_err, n_pixels = self.measure(raw, row_index, col_index, start, counts)
        fit = fit_power_law(counts, noise, rel_err, "std" if self.is_blank else "mad")
        pull = (0.5 - fit["alpha"]) / fit["alpha_err"] if fit["alpha_err"] > 0 else float("nan")
        results: dict[str, Any] = {
            "n_skips": counts,
            "noise_adu": noise,
            "noise_err_adu": noise * rel_err,
            **fit,
            "alpha_pull": pull,
            "correlated_noise": bool(np.isfinite(pull) and pull > CORRELATED_PULL),
            "region": region,
            "n_pixels": n_pixels,
            "skip_start": start,
            "skip_stop": stop,
        }
        amplifier.record(self.name, **results)
        if not np.isfinite(fit["alpha"]):
            log.warning("%s, amplifier %s: too few N values to fit the noise power law", image.label, amplifier.name)
        if wants_plots(self, context):
            self._plot(image, amplifier, context, results)

    def measure(
        self, raw: Any, row_index: np.ndarray, col_index: np.ndarray, start: int, counts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Noise (ADU) and its relative error at every N, in one pass over the raw rows.

        Returns
        -------
        (noise, rel_err, n_pixels)
        """
        total = int(counts[-1])
        boundaries = np.concatenate([[0], counts[:-1]])
        n_cols = col_index.size
        baseline = self.row_baseline and n_cols >= 2
        if self.row_baseline and not baseline:
            log.warning("%s: one column in the region; the spread is taken without a row baseline", self.name)
        bytes_per_row = raw.shape[1] * raw.shape[2] * max(np.dtype(raw.dtype).itemsize, 4)
        block_rows = max(1, int(self.block_mbytes * (1 << 20) // bytes_per_row))
        lo, hi = int(row_index[0]), int(row_index[-1]) + 1
        wanted = np.zeros(hi - lo, dtype=bool)
        wanted[row_index - lo] = True
        sum_sq = np.zeros(counts.size)
        sum_1 = np.zeros(counts.size)
        reference: np.ndarray | None = None
        residuals: list[np.ndarray] = []
        for first in range(lo, hi, block_rows):
            last = min(first + block_rows, hi)
            take = np.flatnonzero(wanted[first - lo : last - lo])
            if take.size == 0:
                continue
            block = np.asarray(raw[first:last])[np.ix_(take, col_index)][:, :, start : start + total]
            sums = np.add.reduceat(block, boundaries, axis=2, dtype=np.float64)
            means = np.cumsum(sums, axis=2) / counts
            if baseline:
                means -= means.mean(axis=1, keepdims=True)
            if self.is_blank:
                if not baseline:  # one global mean: accumulate about a reference to avoid cancellation
                    reference = means.reshape(-1, counts.size).mean(axis=0) if reference is None else reference
                    means -= reference
                    sum_1 += means.sum(axis=(0, 1))
                sum_sq += np.einsum("rcn,rcn->n", means, means)
            else:
                residuals.append(means.reshape(-1, counts.size).astype(np.float32))
        n_pixels = int(row_index.size * n_cols)
        correction = math.sqrt(n_cols / (n_cols - 1)) if baseline else 1.0
        if self.is_blank:
            dof = row_index.size * (n_cols - 1) if baseline else n_pixels - 1
            noise = np.sqrt(np.maximum(sum_sq - sum_1**2 / max(n_pixels, 1), 0.0) / max(dof, 1))
            rel_err = np.full(counts.size, 1.0 / math.sqrt(2.0 * max(dof, 1)))
            return noise, rel_err, n_pixels
        values = np.concatenate(residuals, axis=0)
        centre = np.median(values, axis=0)
        mad = np.median(np.abs(values - centre), axis=0)
        noise = MAD_TO_SIGMA * mad.astype(np.float64) * correction
        rel_err = np.full(counts.size, MAD_REL_ERR / math.sqrt(max(n_pixels, 1)))
        return noise, rel_err, n_pixels

    # --- plot ----------------------------------------------------------------------------------
    def _plot(self, image: SkipperImage, amplifier: Amplifier, context: RunContext, results: dict[str, Any]) -> None:
        n = np.asarray(results["n_skips"], dtype=np.float64)
        noise, err = results["noise_adu"], results["noise_err_adu"]
        grid = np.geomspace(n[0], n[-1], 100)
        with figure(context, image, self.name, "noise_vs_nskips", amplifier) as (_, ax):
            ax.errorbar(n, noise, err, fmt="o", ms=3, color="k", label=f"measured ({results['region']})")
            if np.isfinite(noise[0]):
                ax.plot(grid, noise[0] / np.sqrt(grid / n[0]), "--", color="tab:gray", label=r"$\propto 1/\sqrt{N}$")
            if np.isfinite(results["alpha"]):
                label = (
                    rf"fit $\sigma_1 N^{{-\alpha}}$: $\sigma_1$ = {results['sigma_1_adu']:.3g} ADU, "
                    rf"$\alpha$ = {results['alpha']:.3f} $\pm$ {results['alpha_err']:.3f}"
                )
                ax.plot(grid, results["sigma_1_adu"] * grid ** -results["alpha"], color="tab:blue", label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("number of averaged skips N")
            ax.set_ylabel("noise (ADU)")
            ax.legend()
