"""Charge loss between skips: ChargeLossPlot and ChargeLossSkewnessProcess (reference B.8).

A skipper pixel is measured ``N`` times; if charge leaks away (or is picked up) while
the packet is moved back and forth, the later samples of a pixel differ from the earlier
ones.  Both processes work on the raw samples ``raw[row, col, skip]`` (skips in time
order) through skip-to-skip *difference images* ``D_s = raw[:, :, s] - raw[:, :, ref]``,
where the pixel charge and the row pedestal cancel and only the noise and the charge
changes remain.  Raw samples are read by row blocks (bounded memory, lazy files work).

**ChargeLossPlot** (once per image) records, per amplifier, the mean and standard
deviation of every single-skip image and of every difference to the baseline skip over
the active region; with ``save_plots`` it draws the listed single-skip images, their
differences to the baseline and these curves (and the pixel-charge distribution of
``image`` when available); with ``save_image`` the listed single-skip images
(``raw_skip_<k>``) and differences (``raw_skip_<k>_minus_<b>``) become products, so the
processed FITS file holds them.

**ChargeLossSkewnessProcess** (per amplifier) computes for every selected skip ``s`` the
charge-loss coefficient of the external CCDTesting package, on the difference ``D_s``:
the Gaussian core of ``D_s`` (centre ``mu_s``, width ``sigma_s``), the counts
``N_above``/``N_below`` of centred values beyond ``+-k sigma_s`` (``k = kcl_threshold``), and

    k_CL = (N_above - N_below) / (N_above + N_below),
    sigma(k_CL) = 2 sqrt(N_a N_b^2 + N_b N_a^2) / (N_a + N_b)^2   (Poisson counts),

with the skewness of the values ``D_s < mu_s + kcl_n_sig sigma_s`` and its uncertainty
``sqrt(6 (n - 2) / ((n + 1) (n + 3)))``.  Symmetric noise gives ``k_CL = 0``; charge lost
after the reference skip gives a negative tail (``k_CL < 0``, negative skewness).

It also measures a **charge-loss coefficient** ``p`` for the model "at every skip, a pixel
holding ``q`` electrons loses one electron with probability ``p q``" (a loss rate per
electron per skip, like a small CTI of the skipper transfer).  Then
``E[q_k] = q_0 (1 - p)^k``, and over the pixels holding charge (pixel mean over all skips,
minus the row pedestal, above ``cl_q_min``) the ratio of the summed difference to the
summed charge is

    r_s = sum D_s / sum Q = ((1 - p)^s - (1 - p)^ref) / A(p),   A(p) = mean_{k<N} (1 - p)^k
        ~ -p (s - ref)   for p N << 1,

independently of the gain and of the charge distribution.  ``p`` is fitted to ``r_s`` of
all selected skips by generalised least squares with the empirical covariance of the
summed differences (which contains the readout noise and the binomial fluctuation of the
losses, and the correlation through the common reference skip).  The summed differences
are corrected for a common drift of the baseline between skips, measured on the empty
pixels.  Pixels are selected on their mean over *all* skips, which treats every skip
alike, so the selection does not bias any ``D_s``.

Recorded per amplifier (``ChargeLossSkewnessProcess``): per selected skip ``skips``,
``k_cl_per_skip``, ``k_cl_err_per_skip``, ``skewness_per_skip``, ``skewness_err_per_skip``,
``n_above``, ``n_below``, ``centre_adu``, ``sigma_adu``, ``mean_diff_adu``,
``charge_loss_fraction`` and ``charge_loss_fraction_err`` (``r_s``); the summary ``k_cl``,
``k_cl_err``, ``skewness``, ``skewness_err`` of the skip farthest from the reference
(``summary_skip``; the charge loss accumulates, so it is the most sensitive one); and
``charge_loss_per_e_per_skip`` (``p``), its error, ``charge_loss_chi2_ndf``,
``n_pixels_charged``, ``cl_q_min_adu``.

Deliberate differences from pysimdamicm:

* ``kcl_n_sig`` is used as given (pysimdamicm multiplied it by a unit factor 8, so its
  default 8 meant 64 sigma);
* ``skip_step`` is honoured (pysimdamicm replaced it by 1 whenever ``last / 2 > skip_step``);
  the skips are ``id_skip_start, id_skip_start + skip_step, ... < end`` plus the last skip
  ``end - 1``, without the reference skip (pysimdamicm stopped before ``last - 1``);
* the Gaussian core of ``D_s`` is the median and 1.4826 MAD refined by the mean and the
  (truncation-corrected) standard deviation within +-3 sigma, iterated, for all skips at
  once and correct for integer ADC samples (Sheppard's correction), instead of
  CCDTesting's histogram walk and least-squares fit (which fails when the positive and
  negative counts are equal); exact zero differences are kept;
* the charge-loss coefficient ``p`` is new;
* ChargeLossPlot draws with ``save_plots`` (not with the interactive display) and writes
  no separate ``_skipper_chargeloss.fits`` file: with ``save_image`` its images are
  products of the processed FITS file; ``histequ`` is ignored.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier
from waders.core.kinds import Float, Int, ListOf, Optional

from ..base import RANGE_KIND, AnalysisProcess
from ..plotting import figure, wants_plots

__all__ = ["ChargeLossPlot", "ChargeLossSkewnessProcess", "charge_loss_model", "kcl_statistics"]

log = logging.getLogger(__name__)

#: Half width of the Gaussian core of the differences (sigmas).
_CORE = 3.0
#: Largest number of pixels used to estimate the covariance of the differences between skips.
_COV_SAMPLE = 50_000
#: Largest number of differences per skip used to find the Gaussian core.
_CORE_SAMPLE = 500_000
#: MAD of a Gaussian in units of its sigma.
_MAD_TO_SIGMA = 1.4826
_DEFAULT_BLOCK_MB = 64.0


def _intersect(a: slice, b: slice) -> slice:
    return slice(max(a.start, b.start), min(a.stop, b.stop))


def _resolve_skip(value: int, nskips: int, what: str, process: str) -> int:
    skip = int(value) + nskips if value < 0 else int(value)
    if not 0 <= skip < nskips:
        raise ConfigError(
            f"{process}: {what} {value} is outside the {nskips} skips of the image",
            hint=f"use a skip in 0..{nskips - 1} (negative values count from the end)",
        )
    return skip


def _rows_per_block(ncols: int, nskips: int, itemsize: int, block_mbytes: float) -> int:
    return max(1, int(block_mbytes * (1 << 20) // max(1, ncols * nskips * max(itemsize, 8))))


def _raw_of(process: AnalysisProcess, image: SkipperImage, amplifier: Amplifier) -> Any:
    if image.geometry.averaged or not amplifier.has("raw"):
        raise DataError(
            f"{process.name} needs the raw skip samples, but amplifier {amplifier.name} has none "
            "(the input is an averaged image)",
            hint="run it on a raw multi-skip image, or remove it from the sequence",
        )
    raw = amplifier.get("raw")
    if raw.shape[2] < 2:
        raise DataError(f"{process.name} needs at least two skips per pixel (amplifier {amplifier.name} has 1)")
    return raw


# --- statistics of difference images -------------------------------------------------------------
def kcl_statistics(diffs: np.ndarray, kcl_threshold: float, n_sig: float) -> dict[str, np.ndarray]:
    """Core, k_CL and skewness of difference images, one row per skip.

    Parameters
    ----------
    diffs : ndarray, shape (n_skips, n_pixels)
        Differences ``D_s`` (ADU), one row per skip.
    kcl_threshold : float
        ``k``: tails start at ``+-k sigma`` from the centre.
    n_sig : float
        The skewness uses the values below ``centre + n_sig sigma``.

    Returns
    -------
    dict
        ``centre``, ``sigma``, ``mean``, ``n_above``, ``n_below``, ``k_cl``, ``k_cl_err``,
        ``skewness``, ``skewness_err``, ``n_skewness`` (arrays of length n_skips).
    """
    d = np.asarray(diffs)
    stride = max(1, -(-d.shape[1] // _CORE_SAMPLE))  # the core from <= 500k values: 0.1 % precision
    centre, sigma = _gaussian_core(d[:, ::stride])
    centred = d - centre[:, None].astype(d.dtype)
    n_above = (centred > (kcl_threshold * sigma)[:, None].astype(d.dtype)).sum(axis=1)
    n_below = (centred < (-kcl_threshold * sigma)[:, None].astype(d.dtype)).sum(axis=1)
    total = n_above + n_below
    with np.errstate(invalid="ignore", divide="ignore"):
        k_cl = (n_above - n_below) / total
        k_cl_err = 2.0 * np.sqrt(n_above * n_below**2 + n_below * n_above**2) / total**2
    # skewness of the values below centre + n_sig sigma (one-sided cut, as CCDTesting)
    keep = centred < (n_sig * sigma)[:, None].astype(d.dtype)
    n = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = np.where(keep, centred, 0).sum(axis=1, dtype=np.float64) / n
        c = np.where(keep, centred - m1[:, None].astype(d.dtype), 0)
        c2 = c * c
        m2 = c2.sum(axis=1, dtype=np.float64) / n
        c2 *= c
        m3 = c2.sum(axis=1, dtype=np.float64) / n
        skewness = m3 / m2**1.5
        skewness_err = np.sqrt(6.0 * (n - 2.0) / ((n + 1.0) * (n + 3.0)))
    return {
        "centre": centre,
        "sigma": sigma,
        "mean": d.mean(axis=1, dtype=np.float64),
        "n_above": n_above,
        "n_below": n_below,
        "k_cl": k_cl,
        "k_cl_err": k_cl_err,
        "skewness": skewness,
        "skewness_err": skewness_err,
        "n_skewness": n,
    }


def _truncated_variance(t: np.ndarray) -> np.ndarray:
    """Variance of a unit Gaussian truncated to +-t."""
    t = np.asarray(t, dtype=np.float64)
    erf = np.array([math.erf(v) for v in (t / math.sqrt(2.0)).ravel()]).reshape(t.shape)
    return 1.0 - 2.0 * t * np.exp(-0.5 * t**2) / math.sqrt(2.0 * math.pi) / erf


def _gaussian_core(d: np.ndarray, iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Centre and width of the Gaussian core of every row of ``d``.

    Start from the median and 1.4826 MAD, then iterate: mean and variance of the values
    within +-3 sigma, the variance corrected for the truncation at that window.  Integer
    differences (raw ADC samples) are treated as binned values: the window edge is half
    way between integers and Sheppard's 1/12 is removed before the truncation correction
    and added back, so the width is that of the integer differences themselves.
    """
    d = np.ascontiguousarray(d, dtype=np.float32)
    start = d[:, :: max(1, d.shape[1] // 50_000)]  # starting point only: the iterations refine it
    centre = np.median(start, axis=1)
    mad = np.median(np.abs(start - centre[:, None].astype(np.float32)), axis=1)
    sample = d[:, : min(d.shape[1], 10_000)]
    integer = bool(np.all(sample == np.round(sample)))
    sheppard = 1.0 / 12.0 if integer else 0.0
    sigma = np.maximum(_MAD_TO_SIGMA * mad, 0.5 if integer else 1e-12)
    sigma = np.sqrt(np.maximum(sigma**2 - sheppard, 0.25 * sigma**2))  # width of the underlying continuum
    for _ in range(iterations):
        edge = _CORE * np.sqrt(sigma**2 + sheppard)
        if integer:
            edge = np.floor(edge) + 0.5
        centred = d - centre[:, None].astype(np.float32)
        inside = np.abs(centred) < edge[:, None].astype(np.float32)
        n_core = np.maximum(inside.sum(axis=1), 1)
        kept = np.where(inside, centred, np.float32(0))
        shift = kept.sum(axis=1, dtype=np.float64) / n_core
        kept *= kept
        var = kept.sum(axis=1, dtype=np.float64) / n_core - shift**2 - sheppard
        updated = np.sqrt(np.maximum(var, 0.0) / _truncated_variance(edge / np.maximum(sigma, 1e-12)))
        sigma = np.where(updated > 0, updated, sigma)
        centre = centre + shift
    return centre, np.sqrt(sigma**2 + sheppard)


def _pixel_covariance(d: np.ndarray) -> np.ndarray:
    """Covariance between skips (rows) of the per-pixel differences, from <= 50k pixels (columns)."""
    sample = d[:, :: max(1, d.shape[1] // _COV_SAMPLE)].astype(np.float64)
    centred = sample - sample.mean(axis=1, keepdims=True)
    return centred @ centred.T / max(sample.shape[1] - 1, 1)


def charge_loss_model(p: float, skips: np.ndarray, reference: int, nskips: int) -> np.ndarray:
    """Expected ``r_s = sum D_s / sum Q`` for a loss probability ``p`` per electron per skip.

    ``E[q_k] = q_0 (1 - p)^k``; ``Q`` is the pixel mean over all ``nskips`` skips, so
    ``r_s = ((1 - p)^s - (1 - p)^ref) / mean_{k < nskips} (1 - p)^k``.
    """
    skips = np.asarray(skips, dtype=np.float64)
    if p == 0.0:
        return np.zeros_like(skips)
    base = 1.0 - p
    average = np.mean(base ** np.arange(nskips, dtype=np.float64))
    return (base**skips - base**reference) / average


def _fit_charge_loss(
    ratio: np.ndarray, covariance: np.ndarray, skips: np.ndarray, reference: int, nskips: int
) -> tuple[float, float, float]:
    """Generalised least-squares fit of ``p`` to ``r_s`` (Gauss-Newton); returns p, error, chi2/ndf."""
    weight = np.linalg.pinv(covariance)
    p = 0.0
    step = 1e-7
    jac = np.zeros_like(ratio)
    for _ in range(8):
        model = charge_loss_model(p, skips, reference, nskips)
        jac = (
            charge_loss_model(p + step, skips, reference, nskips)
            - charge_loss_model(p - step, skips, reference, nskips)
        ) / (2 * step)
        info = float(jac @ weight @ jac)
        if not info > 0:
            return float("nan"), float("nan"), float("nan")
        delta = float(jac @ weight @ (ratio - model)) / info
        p += delta
        if abs(delta) < 1e-6 * max(abs(p), 1e-12):
            break
    resid = ratio - charge_loss_model(p, skips, reference, nskips)
    ndf = len(ratio) - 1
    chi2 = float(resid @ weight @ resid)
    info = float(jac @ weight @ jac)
    return p, 1.0 / np.sqrt(info), chi2 / ndf if ndf > 0 else float("nan")


# --- ChargeLossSkewnessProcess ---------------------------------------------------------------------
class ChargeLossSkewnessProcess(AnalysisProcess):
    """Charge-loss coefficient k_CL and skewness of skip-to-skip differences, and the loss per electron per skip.

    See :mod:`waders.ana.studies.chargeloss` for the definitions and the recorded keys.
    """

    products = (
        Product("k_cl_per_skip", "result", doc="charge-loss coefficient of every selected skip (k_cl_err_per_skip)"),
        Product("skewness_per_skip", "result", doc="skewness of every skip-to-skip difference (skewness_err_per_skip)"),
        Product("sigma_adu", "result", "ADU", "width of the Gaussian core of the differences"),
        Product("kcl", "figure", doc="k_CL, skewness and the differences per skip"),
    )

    order: ClassVar[int] = 15
    per_amplifier: ClassVar[bool] = True

    image = Param("raw", doc="input: the raw samples")
    use_overscan = Param(False, doc="use the serial overscan instead of the active region")
    id_skip_reference = Param(1, Int(), doc="reference skip of the differences (negative: from the end)")
    id_skip_start = Param(0, RANGE_KIND, doc="first skip compared with the reference")
    id_skip_end = Param(-1, RANGE_KIND, doc="end of the compared skips (exclusive); null/negative = all")
    skip_step = Param(50, Int(min=1), doc="step between compared skips (the last skip is always compared)")
    kcl_threshold = Param(3.2, Float(min=0), doc="k: tails of the differences start at +-k sigma")
    kcl_n_sig = Param(8.0, Float(min=0), doc="skewness of the differences below centre + n_sig sigma")
    cl_q_min = Param(
        None,
        Optional(Float()),
        doc="pixels with a mean charge above this (ADU) enter the loss coefficient; null: 10 sigma of the pixel mean",
    )
    block_mbytes = Param(_DEFAULT_BLOCK_MB, Float(min=1), doc="memory for one block of raw samples (MB)")

    def selected_skips(self, image: SkipperImage, nskips: int) -> tuple[np.ndarray, int]:
        """Compared skips and the reference skip."""
        reference = _resolve_skip(self.id_skip_reference, nskips, "id_skip_reference", self.name)
        start, stop = self.skip_range(image, nskips)
        skips = np.unique(np.append(np.arange(start, stop, self.skip_step), stop - 1))
        skips = skips[skips != reference]
        if skips.size == 0:
            raise ConfigError(
                f"{self.name}: no skip to compare with the reference skip {reference}",
                hint="widen id_skip_start/id_skip_end or change id_skip_reference",
            )
        return skips, reference

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        raw = _raw_of(self, image, amplifier)
        ncols, nskips = raw.shape[1:]
        skips, reference = self.selected_skips(image, nskips)
        geometry = amplifier.geometry
        wrows, wcols = self.window(image, amplifier)
        rrows, rcols = geometry.region("overscan" if self.use_overscan else "active")
        rows, cols = _intersect(rrows, wrows), _intersect(rcols, wcols)
        if rows.stop <= rows.start or cols.stop <= cols.start:
            raise DataError(f"{self.name}: the selected region of amplifier {amplifier.name} is empty")
        nr, nc = rows.stop - rows.start, cols.stop - cols.start
        diffs = np.empty((skips.size, nr * nc), dtype=np.float32)
        means = np.empty((nr, ncols), dtype=np.float64)
        step = _rows_per_block(ncols, nskips, np.dtype(raw.dtype).itemsize, self.block_mbytes)
        for r0 in range(rows.start, rows.stop, step):
            r1 = min(r0 + step, rows.stop)
            block = np.asarray(raw[r0:r1])
            means[r0 - rows.start : r1 - rows.start] = block.mean(axis=2, dtype=np.float64)
            sub = block[:, cols]
            d = np.subtract(sub[:, :, skips], sub[:, :, reference : reference + 1], dtype=np.float32)
            diffs[:, (r0 - rows.start) * nc : (r1 - rows.start) * nc] = d.reshape(-1, skips.size).T
        stats = kcl_statistics(diffs, self.kcl_threshold, self.kcl_n_sig)
        results: dict[str, Any] = {
            "reference_skip": reference,
            "skips": skips,
            "region": "overscan" if self.use_overscan else "active",
            "n_pixels": nr * nc,
            "kcl_threshold": self.kcl_threshold,
            "kcl_n_sig": self.kcl_n_sig,
            "k_cl_per_skip": stats["k_cl"],
            "k_cl_err_per_skip": stats["k_cl_err"],
            "skewness_per_skip": stats["skewness"],
            "skewness_err_per_skip": stats["skewness_err"],
            "n_above": stats["n_above"],
            "n_below": stats["n_below"],
            "centre_adu": stats["centre"],
            "sigma_adu": stats["sigma"],
            "mean_diff_adu": stats["mean"],
        }
        last = int(np.argmax(np.abs(skips - reference)))
        results.update(
            summary_skip=int(skips[last]),
            k_cl=float(stats["k_cl"][last]),
            k_cl_err=float(stats["k_cl_err"][last]),
            skewness=float(stats["skewness"][last]),
            skewness_err=float(stats["skewness_err"][last]),
        )
        pedestal_cols = geometry.overscan if geometry.overscan_cols and not self.use_overscan else cols
        results.update(
            self._charge_loss(diffs, means, cols, pedestal_cols, stats["sigma"], skips, reference, nskips, amplifier)
        )
        amplifier.record(self.name, **results)
        if wants_plots(self, context):
            self._plot(image, amplifier, context, results)

    def _charge_loss(
        self,
        diffs: np.ndarray,
        means: np.ndarray,
        cols: slice,
        pedestal_cols: slice,
        sigma_diff: np.ndarray,
        skips: np.ndarray,
        reference: int,
        nskips: int,
        amplifier: Amplifier,
    ) -> dict[str, Any]:
        """Loss probability per electron per skip from the summed differences of the charged pixels."""
        nan = float("nan")
        pedestal = np.median(means[:, pedestal_cols], axis=1)
        charge = (means[:, cols] - pedestal[:, None]).ravel()
        if pedestal_cols != cols:
            noise_mean = _MAD_TO_SIGMA * float(np.median(np.abs(means[:, pedestal_cols] - pedestal[:, None])))
        else:  # single-sample noise from the difference images: sigma_D = sqrt(2) sigma
            noise_mean = float(np.median(sigma_diff)) / np.sqrt(2.0 * nskips)
        q_min = self.cl_q_min if self.cl_q_min is not None else 10.0 * noise_mean
        charged = charge > q_min
        empty = np.abs(charge) < 3.0 * noise_mean
        out: dict[str, Any] = {
            "cl_q_min_adu": float(q_min),
            "n_pixels_charged": int(charged.sum()),
            "charge_loss_per_e_per_skip": nan,
            "charge_loss_per_e_per_skip_err": nan,
            "charge_loss_chi2_ndf": nan,
            "charge_loss_fraction": np.full(skips.size, nan),
            "charge_loss_fraction_err": np.full(skips.size, nan),
        }
        n_charged, n_empty = int(charged.sum()), int(empty.sum())
        if self.use_overscan or n_charged < 10 or n_empty < 10:
            log.info("%s, amplifier %s: too few charged pixels for the loss coefficient", self.name, amplifier.name)
            return out
        total = float(charge[charged].sum())
        d_charged = diffs[:, charged]
        # baseline drift between skips: mean difference of the empty pixels (one matrix-vector product)
        drift = (diffs @ empty.astype(np.float32)).astype(np.float64) / n_empty
        ratio = (d_charged.sum(axis=1, dtype=np.float64) - n_charged * drift) / total
        # covariances of the summed differences and of the drift, from <= 50k pixels each
        cov_sum = n_charged * _pixel_covariance(d_charged)
        cov_drift = _pixel_covariance(diffs[:, np.flatnonzero(empty)[:: max(1, n_empty // _COV_SAMPLE)]]) / n_empty
        covariance = (cov_sum + n_charged**2 * cov_drift) / total**2
        p, p_err, chi2_ndf = _fit_charge_loss(ratio, covariance, skips, reference, nskips)
        out.update(
            charge_loss_per_e_per_skip=p,
            charge_loss_per_e_per_skip_err=p_err,
            charge_loss_chi2_ndf=chi2_ndf,
            charge_loss_fraction=ratio,
            charge_loss_fraction_err=np.sqrt(np.diag(covariance)),
        )
        return out

    def _plot(self, image: SkipperImage, amplifier: Amplifier, context: RunContext, res: dict[str, Any]) -> None:
        skips = res["skips"]
        with figure(context, image, self.name, "kcl", amplifier, nrows=2, ncols=2, size=(10.0, 7.0)) as (_, axes):
            ax = axes[0, 0]
            ax.errorbar(skips, res["k_cl_per_skip"], res["k_cl_err_per_skip"], fmt="o", ms=3, color="k")
            ax.axhline(0.0, color="0.5", lw=0.8)
            ax.set_ylabel(r"$k_{CL}$")
            ax = axes[0, 1]
            ax.errorbar(skips, res["skewness_per_skip"], res["skewness_err_per_skip"], fmt="o", ms=3, color="k")
            ax.axhline(0.0, color="0.5", lw=0.8)
            ax.set_ylabel("skewness of the differences")
            ax = axes[1, 0]
            ax.plot(skips, res["mean_diff_adu"], "o", ms=3, color="k", label="mean")
            ax.plot(skips, res["centre_adu"], "s", ms=3, color="tab:blue", label="Gaussian core centre")
            ax.set_ylabel(f"skip - skip {res['reference_skip']} (ADU)")
            ax.legend()
            ax = axes[1, 1]
            ratio, err = res["charge_loss_fraction"], res["charge_loss_fraction_err"]
            if np.isfinite(ratio).any():
                ax.errorbar(skips, ratio, err, fmt="o", ms=3, color="k", label="charged pixels")
                p = res["charge_loss_per_e_per_skip"]
                if np.isfinite(p):
                    nskips = int(amplifier.get("raw").shape[2])
                    x = np.arange(int(skips.min()), int(skips.max()) + 1)
                    ax.plot(
                        x,
                        charge_loss_model(p, x, res["reference_skip"], nskips),
                        color="tab:red",
                        label=f"p = {p:.3g} ± {res['charge_loss_per_e_per_skip_err']:.2g} /e-/skip",
                    )
                ax.legend()
            ax.set_ylabel("sum of differences / sum of charge")
            for ax in axes[1]:
                ax.set_xlabel("skip")


# --- ChargeLossPlot ----------------------------------------------------------------------------------
class ChargeLossPlot(AnalysisProcess):
    """Single-skip images, their differences to a baseline skip, and the mean/std of every skip.

    Records per amplifier ``skip_mean_adu``, ``skip_std_adu`` (every single-skip image over
    the active region), ``diff_mean_adu``, ``diff_std_adu`` (every skip minus the baseline),
    ``baseline_skip``, ``skip_ids`` and ``n_pixels``; draws with ``save_plots``; with
    ``save_image`` stores the listed single-skip images and differences as products.
    """

    products = (
        Product("skip_mean_adu", "result", "ADU", "mean of every single-skip image over the active region"),
        Product("skip_std_adu", "result", "ADU", "standard deviation of every single-skip image"),
        Product("diff_mean_adu", "result", "ADU", "mean of every skip minus the baseline skip"),
        Product("diff_std_adu", "result", "ADU", "standard deviation of every skip minus the baseline skip"),
        Product(
            "raw_skip",
            "image",
            "ADU",
            "raw_skip_<k> and raw_skip_<k>_minus_<b> of the listed skips",
            switch="save_image",
        ),
        Product("images", "figure", doc="the listed single-skip images and their differences"),
        Product("skips", "figure", doc="mean and spread of every skip and difference"),
    )

    order: ClassVar[int] = 14

    image = Param(
        "mean_compressed_pedestal_subtracted", doc="image whose pixel-charge distribution is drawn (if present)"
    )
    skip_id_list = Param([0, 1, 2], ListOf(Int()), doc="skips drawn (negative: from the end)")
    skip_id_baseline = Param(-1, Int(), doc="baseline skip of the differences (negative: from the end)")
    gray_palette = Param(True, doc="draw the images in gray levels")
    pcd_nbins = Param(-1, Int(), doc="bins of the pixel-charge distribution (<= 0: 1 ADU bins)")
    pcd_ylog = Param(True, doc="logarithmic counts in the pixel-charge distribution")
    pcd_charge_range = Param(
        [-100.0, 100.0], ListOf(Float(), length=2), doc="range of the pixel-charge distribution (ADU)"
    )
    block_mbytes = Param(_DEFAULT_BLOCK_MB, Float(min=1), doc="memory for one block of raw samples (MB)")

    def listed_skips(self, image: SkipperImage, nskips: int) -> tuple[list[int], int]:
        """Skips drawn (with the first skip of the input range) and the baseline skip."""
        baseline = _resolve_skip(self.skip_id_baseline, nskips, "skip_id_baseline", self.name)
        listed = [_resolve_skip(k, nskips, "skip_id_list entry", self.name) for k in self.skip_id_list]
        start = self.skip_range(image, nskips)[0]
        for extra in (start, baseline):
            if extra not in listed:
                listed.append(extra)
        return listed, baseline

    def run(self, data: SkipperImage, context: RunContext) -> None:
        for amplifier in data.amplifiers.values():
            self._amplifier(data, amplifier, context)

    def _amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        raw = _raw_of(self, image, amplifier)
        nrows, ncols, nskips = raw.shape
        listed, baseline = self.listed_skips(image, nskips)
        wrows, wcols = self.window(image, amplifier)
        arows, acols = amplifier.geometry.region("active")
        rows, cols = _intersect(arows, wrows), _intersect(acols, wcols)
        if rows.stop <= rows.start or cols.stop <= cols.start:
            raise DataError(f"{self.name}: the selected active region of amplifier {amplifier.name} is empty")
        images = np.empty((len(listed), nrows, ncols), dtype=np.float64)
        s1 = np.zeros(nskips)
        s2 = np.zeros(nskips)
        cross = np.zeros(nskips)
        shift: float | None = None
        step = _rows_per_block(ncols, nskips, np.dtype(raw.dtype).itemsize, self.block_mbytes)
        for r0 in range(0, nrows, step):
            r1 = min(r0 + step, nrows)
            block = np.asarray(raw[r0:r1])
            images[:, r0:r1] = np.moveaxis(block[:, :, listed], 2, 0)
            lo, hi = max(r0, rows.start), min(r1, rows.stop)
            if hi <= lo:
                continue
            sub = block[lo - r0 : hi - r0, cols]
            if shift is None:
                shift = float(np.median(sub[:, :, baseline]))
            g = np.subtract(sub, shift, dtype=np.float64).reshape(-1, nskips)
            weights = np.stack([np.ones(len(g)), g[:, baseline]], axis=1)
            sums = g.T @ weights  # sum and cross product with the baseline in one pass
            s1 += sums[:, 0]
            cross += sums[:, 1]
            s2 += np.einsum("ij,ij->j", g, g)
        n = (rows.stop - rows.start) * (cols.stop - cols.start)
        mean = s1 / n
        var = np.maximum(s2 / n - mean**2, 0.0)
        diff_mean = mean - mean[baseline]
        diff_var = np.maximum((s2 - 2.0 * cross + s2[baseline]) / n - diff_mean**2, 0.0)
        results = {
            "baseline_skip": baseline,
            "skip_ids": listed,
            "n_pixels": n,
            "skip_mean_adu": mean + (shift or 0.0),
            "skip_std_adu": np.sqrt(var),
            "diff_mean_adu": diff_mean,
            "diff_std_adu": np.sqrt(diff_var),
        }
        amplifier.record(self.name, **results)
        base = images[listed.index(baseline)]
        if self.save_image:
            for k, img in zip(listed, images, strict=True):
                amplifier.set(f"raw_skip_{k}", img)
                if k != baseline:
                    amplifier.set(f"raw_skip_{k}_minus_{baseline}", img - base)
        if wants_plots(self, context):
            self._plot(image, amplifier, context, listed, baseline, images, results)

    def _plot(
        self,
        image: SkipperImage,
        amplifier: Amplifier,
        context: RunContext,
        listed: list[int],
        baseline: int,
        images: np.ndarray,
        res: dict[str, Any],
    ) -> None:
        cmap = "gray" if self.gray_palette else "viridis"
        n = len(listed)
        base = images[listed.index(baseline)]
        diffs = [(k, img - base) for k, img in zip(listed, images, strict=True) if k != baseline]
        with figure(context, image, self.name, "images", amplifier, nrows=2, ncols=n, size=(2.6 * n + 1.0, 5.5)) as (
            fig,
            axes,
        ):
            axes = np.asarray(axes).reshape(2, n)
            for row, panels in enumerate(([(k, img) for k, img in zip(listed, images, strict=True)], diffs)):
                lo, hi = _robust_limits(np.stack([img for _, img in panels]))
                shown = None
                for i, (k, img) in enumerate(panels):
                    ax = axes[row, i]
                    shown = ax.imshow(
                        img, origin="lower", aspect="auto", cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest"
                    )
                    ax.set_title(f"skip {k}" if row == 0 else f"skip {k} - skip {baseline}", fontsize=9)
                    ax.grid(False)
                    ax.set_xlabel("column (readout order)")
                    ax.set_ylabel("row")
                for ax in axes[row, len(panels) :]:
                    ax.set_axis_off()
                fig.colorbar(shown, ax=list(axes[row]), label="ADU")
        skips = np.arange(len(res["skip_mean_adu"]))
        with figure(context, image, self.name, "skips", amplifier, nrows=2, ncols=2, size=(10.0, 7.0)) as (_, axes):
            axes[0, 0].plot(skips, res["skip_mean_adu"], ".", color="k")
            axes[0, 0].set_ylabel("mean of the skip image (ADU)")
            axes[0, 1].plot(skips, res["skip_std_adu"], ".", color="k")
            axes[0, 1].set_ylabel("std of the skip image (ADU)")
            error = res["diff_std_adu"] / np.sqrt(res["n_pixels"])
            axes[1, 0].errorbar(skips, res["diff_mean_adu"], error, fmt=".", color="k")
            axes[1, 0].set_ylabel(f"mean of skip - skip {baseline} (ADU)")
            for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
                ax.set_xlabel("skip")
            self._plot_pcd(axes[1, 1], amplifier)

    def _plot_pcd(self, ax: Any, amplifier: Amplifier) -> None:
        """Pixel-charge distribution of ``image`` over the active region (if the image exists)."""
        if not amplifier.has(self.image):
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"no {self.image}", ha="center", va="center", transform=ax.transAxes)
            return
        rows, cols = amplifier.geometry.region("active")
        values = np.asarray(amplifier.get(self.image), dtype=np.float64)[rows, cols].ravel()
        values = values[np.isfinite(values)]
        lo, hi = self.pcd_charge_range
        bins = self.pcd_nbins if self.pcd_nbins > 0 else max(1, round(hi - lo))
        ax.hist(values, bins=bins, range=(lo, hi), histtype="step", color="k")
        if self.pcd_ylog:
            ax.set_yscale("log")
        unit = "e-" if self.image.endswith("_e") else "ADU"
        ax.set_xlabel(f"{self.image} ({unit})")
        ax.set_ylabel("pixels")


def _robust_limits(values: np.ndarray) -> tuple[float, float]:
    """1st and 99th percentiles of the finite values (a unit range if degenerate)."""
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    return float(lo), float(hi if hi > lo else lo + 1.0)
