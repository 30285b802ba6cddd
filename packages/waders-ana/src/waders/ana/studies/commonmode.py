"""CommonModeSubtraction: remove the noise shared by amplifiers read at the same time.

Amplifiers of one CCD (or of one readout board) are sampled simultaneously: the pixel
at (row, readout column) of every amplifier is read at the same time, so electronic
pick-up common to them adds the same offset -- per pixel time, or per row -- to all of
them, which shows as a positive correlation between amplifiers.

**Model.** Over noise-only pixels (``region``, |value - pedestal| below a charge threshold,
outside ``mask_clusters`` when asked), the pixel of amplifier ``a`` at pixel time ``t`` is
``x_a(t) = h_a c(t) + n_a(t)`` after removing the amplifier's own pedestal (its median):
a common factor ``c`` (unit variance) with coupling ``h_a`` (ADU; ``|h_a|`` is the
common-mode RMS in that amplifier) plus independent noise of variance ``s_a**2``.  The
covariance matrix of the amplifiers is ``diag(s**2) + h h^T``; ``h`` is fitted to its
off-diagonal part (one-factor model: iterated least squares; with two amplifiers only
``h_1 h_2`` is estimable and the coupling is split equally, |h_1| = |h_2|).

**What is estimable.** Pixel by pixel, the common part cannot be separated from the
pixels' own noise: any estimate of ``c(t)`` built from the amplifiers carries their
noise, and subtracting it either leaves some common mode or adds noise and makes the
residuals of different amplifiers *anti*-correlated.  Subtracting the common mean of
``n`` amplifiers, or the median/mean of the *others* (``k = n - 1``), leaves correlations
near ``-1/(n-1)`` and ``-1/k`` (-1 for two amplifiers) and a noise penalty (the variance
of the others' mean or median, e.g. +50 % of the variance for three amplifiers).

**Estimators** (``estimator``, ``mode = "pixel"``):

* ``"decorrelate"`` (default): subtract ``h_a * s(t)`` with ``s = k * sum_b (h_b / s_b**2)
  x_b(t)`` over the usable amplifiers at ``t``, ``k = y / W``, ``W = sum_b h_b**2 / s_b**2``,
  ``y = 1 - 1/sqrt(1 + W)``.  This is the unique subtraction of this form after which the
  amplifiers are *uncorrelated* and each keeps exactly its own noise variance ``s_a**2``:
  the residuals are statistically equivalent to common-mode-free noise (no noise
  penalty, no induced correlation), although pixel by pixel they differ from ``n_a``.
  A pixel that is not usable itself (charge, cluster mask) gets the least-squares
  (minimum-variance) estimate from the others, ``s = sum_b (h_b / s_b**2) x_b / (1 + W)``,
  which leaves ``h_a**2 / (1 + W)`` of extra variance.  Works from two amplifiers.
* ``"median"`` / ``"mean"``: subtract the median (mean) of the *other* usable amplifiers at
  ``t`` (equal coupling assumed).  Expected noise: ``s_a**2 + v_k * mean(s_b**2)`` with
  ``v_k`` the variance of the median (mean: ``1/k``) of ``k`` unit Gaussians, plus the
  coupling mismatch; correlation after about ``-1/k``.

``mode = "row"``: the common mode is one offset per row, estimated as the median
(``estimator = "median"``) or mean of the usable pixels of all amplifiers in the row and
subtracted from the whole row of every amplifier; its noise penalty is about
``s**2 / (n * columns)`` (times pi/2 for the median) and the induced correlation is of the
same order: negligible.  A per-row pedestal subtraction (PedestalSubtractionProcess on the
overscan, axis "row") already removes a per-row common mode.

Produces ``<image>_cm`` per amplifier (pixels outside the id_row/id_col window and NaN
pixels are left as they are).  Records per image ``amplifiers`` (order of the matrices),
``correlation_before``/``correlation_after`` (Pearson, nested lists, on the noise-only
pixel times of the region), ``common_mode_rms_adu`` (sqrt of the mean h_a**2), ``mode``,
``estimator``, ``n_pixels_used``; per amplifier ``pedestal_adu``, ``threshold_adu``,
``noise_before_adu``, ``noise_after_adu``, ``own_noise_adu`` (s_a), ``coupling_adu`` (h_a),
``common_mode_rms_adu`` (|h_a|), ``expected_noise_after_adu``, ``noise_penalty_adu2``,
``subtracted_rms_adu`` and ``usable_fraction``.

New in waders (pysimdamicm has no common-mode subtraction).
"""

from __future__ import annotations

import logging
import math
from typing import ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import DataError
from waders.core.image import Amplifier
from waders.core.kinds import Choice, Float, Optional

from ..base import AnalysisProcess
from ..fitting.gaussian import MAD_TO_SIGMA, _quiet
from ..plotting import figure, wants_plots

__all__ = ["CommonModeSubtraction", "one_factor"]

log = logging.getLogger(__name__)

CLUSTER_MASK = "mask_clusters"
#: Variance of the median of k unit Gaussians (k = 1..8; Monte Carlo, 2e6 draws).
_MEDIAN_VARIANCE = (1.0, 0.5, 0.448, 0.298, 0.286, 0.215, 0.210, 0.169)


def _median_variance(k: int) -> float:
    return _MEDIAN_VARIANCE[k - 1] if k <= len(_MEDIAN_VARIANCE) else math.pi / (2.0 * k)


def one_factor(covariance: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Couplings ``h`` of the one-factor model ``cov = diag(s**2) + h h^T`` fitted to the off-diagonal part.

    Parameters
    ----------
    covariance : numpy.ndarray, shape (n, n)
        Covariance matrix of the amplifiers (n >= 2).
    iterations : int
        Iterations of the alternating least-squares update.

    Returns
    -------
    numpy.ndarray
        ``h`` (same unit as the square root of the covariance); zeros when the amplifiers are
        not positively correlated.  ``h_a**2`` is kept below the variance of amplifier a.
    """
    cov = np.asarray(covariance, dtype=np.float64)
    n = cov.shape[0]
    off = cov - np.diag(np.diag(cov))
    if n == 2:
        c = off[0, 1]
        h = math.sqrt(abs(c)) * np.array([1.0, 1.0 if c >= 0 else -1.0])
    else:
        values, vectors = np.linalg.eigh(off)
        if values[-1] <= 0:
            return np.zeros(n)
        h = vectors[:, -1] * math.sqrt(values[-1])
        for _ in range(iterations):
            norm = float(h @ h) - h**2
            new = np.where(norm > 0, off @ h / np.where(norm > 0, norm, 1.0), 0.0)
            new = 0.5 * (h + new)  # damped: the plain update oscillates (h -> c / h for equal couplings)
            if np.allclose(new, h, rtol=1e-10, atol=1e-14):
                h = new
                break
            h = new
    if h.sum() < 0:
        h = -h
    limit = np.sqrt(np.maximum(np.diag(cov), 0.0) * (1.0 - 1e-6))
    return np.clip(h, -limit, limit)


class CommonModeSubtraction(AnalysisProcess):
    """Subtract the noise common to amplifiers read simultaneously (per pixel time or per row).

    Default: per pixel time, the decorrelating subtraction of a one-factor model fitted to the covariance
    of noise-only pixels (no noise penalty, no induced correlation); ``estimator`` median/mean of the
    other amplifiers (penalty and -1/k correlation), ``mode`` row (one offset per row).  Output
    ``<image>_cm``; records ``correlation_before``/``correlation_after`` (order ``amplifiers``),
    ``common_mode_rms_adu`` and per amplifier the noise before, after and expected.
    """

    products = (
        Product(
            "mean_compressed_pedestal_subtracted_cm", "image", "ADU", "<image>_cm: the input minus the common mode"
        ),
        Product("noise_before_adu", "result", "ADU", "noise before the subtraction"),
        Product("noise_after_adu", "result", "ADU", "noise after the subtraction (expected_noise_after_adu: expected)"),
        Product("common_mode_rms_adu", "result", "ADU", "rms of the common mode"),
        Product("correlation_before", "result", per_amplifier=False, doc="correlation matrix of the amplifiers' noise"),
        Product("correlation_after", "result", per_amplifier=False, doc="correlation matrix after the subtraction"),
        Product("correlation", "figure", per_amplifier=False, doc="correlation matrices before and after"),
    )

    order: ClassVar[int] = 25

    image = Param("mean_compressed_pedestal_subtracted", doc="input image product (ADU)")
    mode = Param("pixel", Choice(["pixel", "row"]), doc="common mode per pixel time or per row")
    estimator = Param(
        "decorrelate",
        Choice(["decorrelate", "median", "mean"]),
        doc="pixel mode: decorrelating subtraction, or median/mean of the other amplifiers; row mode: mean or median",
    )
    region = Param(
        "full",
        Choice(["full", "active", "overscan", "prescan", "active_rows"]),
        doc="region of the pedestals, covariances and correlations (noise-only pixels of it)",
    )
    charge_threshold = Param(
        None,
        Optional(Float(min=0)),
        per_amplifier=True,
        doc="pixels with |value - pedestal| above this are not noise (image units); null: n_sigma_threshold x noise",
    )
    n_sigma_threshold = Param(4.0, Float(min=0.5), doc="charge threshold in robust noise sigmas (1.4826 MAD)")
    mask_clusters = Param(False, doc="also exclude the cluster mask of BuildClusterMask (must run earlier)")

    def run(self, data: SkipperImage, context: RunContext) -> None:
        amplifiers = list(data.amplifiers.values())
        names = [amp.name for amp in amplifiers]
        if len(amplifiers) < 2:
            raise DataError(
                f"{self.name} needs at least two amplifiers read simultaneously; {data.label} has {len(amplifiers)}",
                hint="remove CommonModeSubtraction from the sequence of single-amplifier images",
            )
        shapes = {amp.geometry.shape for amp in amplifiers}
        if len(shapes) != 1:
            raise DataError(f"{self.name}: the amplifiers of {data.label} have different shapes {sorted(shapes)}")
        values = np.stack([self.input_image(amp) for amp in amplifiers])
        outside = self.window_mask(data, amplifiers[0])
        in_region = ~outside & np.logical_and.reduce([~amp.geometry.mask(self.region) for amp in amplifiers])
        pedestal, noise = self._pedestal_noise(values, in_region, names)
        deviation = values - pedestal[:, None, None]
        thresholds = self._thresholds(amplifiers, noise)
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(deviation) & (np.abs(deviation) <= thresholds[:, None, None]) & ~outside
        if self.mask_clusters:
            usable &= ~self._cluster_masks(amplifiers)
        stat = usable.all(axis=0) & in_region
        n_used = int(stat.sum())
        if n_used < 10 * len(amplifiers):
            raise DataError(
                f"{self.name}: only {n_used} noise-only pixel times in the {self.region} region of {data.label}",
                hint="use region 'full', raise the charge threshold or widen the window",
            )
        covariance = np.cov(deviation[:, stat])
        coupling = one_factor(covariance)
        own = np.diag(covariance) - coupling**2
        subtracted, expected = self._subtract(deviation, usable, coupling, own)
        subtracted[:, outside] = 0.0
        output = values - subtracted
        after = output[:, stat] - pedestal[:, None]
        correlation_before = np.corrcoef(deviation[:, stat])
        correlation_after = np.corrcoef(after)
        for i, amp in enumerate(amplifiers):
            amp.set(f"{self.image}_cm", output[i])
            amp.record(
                self.name,
                pedestal_adu=float(pedestal[i]),
                threshold_adu=float(thresholds[i]),
                noise_before_adu=float(math.sqrt(covariance[i, i])),
                noise_after_adu=float(after[i].std(ddof=1)),
                own_noise_adu=float(math.sqrt(max(own[i], 0.0))),
                coupling_adu=float(coupling[i]),
                common_mode_rms_adu=float(abs(coupling[i])),
                expected_noise_after_adu=float(math.sqrt(max(expected[i], 0.0))),
                noise_penalty_adu2=float(expected[i] - own[i]),
                subtracted_rms_adu=float(subtracted[i][stat].std()),
                usable_fraction=float(usable[i][~outside].mean()),
            )
        data.record(
            self.name,
            amplifiers=names,
            correlation_before=correlation_before.tolist(),
            correlation_after=correlation_after.tolist(),
            common_mode_rms_adu=float(math.sqrt(np.mean(coupling**2))),
            mode=self.mode,
            estimator=self.estimator,
            n_pixels_used=n_used,
        )
        if wants_plots(self, context):
            self._plot(data, context, names, correlation_before, correlation_after)

    # --- inputs ------------------------------------------------------------------------------
    def _pedestal_noise(self, values: np.ndarray, in_region: np.ndarray, names: list[str]) -> tuple[np.ndarray, ...]:
        pedestal = np.empty(len(values))
        noise = np.empty(len(values))
        for i, image in enumerate(values):
            pixels = image[in_region]
            pixels = pixels[np.isfinite(pixels)]
            if pixels.size < 10:
                raise DataError(f"{self.name}: amplifier {names[i]} has no usable pixels in the {self.region} region")
            pedestal[i] = np.median(pixels)
            noise[i] = MAD_TO_SIGMA * np.median(np.abs(pixels - pedestal[i]))
        return pedestal, noise

    def _thresholds(self, amplifiers: list[Amplifier], noise: np.ndarray) -> np.ndarray:
        out = np.empty(len(amplifiers))
        for i, amp in enumerate(amplifiers):
            given = self.value_for("charge_threshold", amp.names, None)
            out[i] = float(given) if given is not None else self.n_sigma_threshold * noise[i]
        return out

    def _cluster_masks(self, amplifiers: list[Amplifier]) -> np.ndarray:
        masks = []
        for amp in amplifiers:
            if not amp.has(CLUSTER_MASK):
                raise DataError(
                    f"{self.name}: mask_clusters is set but amplifier {amp.name} has no cluster mask",
                    hint="run ClusterFinder and BuildClusterMask first, or set mask_clusters to false",
                )
            masks.append(np.asarray(amp.get(CLUSTER_MASK), dtype=bool))
        return np.stack(masks)

    # --- estimators ----------------------------------------------------------------------------
    def _subtract(
        self, deviation: np.ndarray, usable: np.ndarray, coupling: np.ndarray, own: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """What to subtract from every amplifier (n, rows, cols) and the expected variance after (n,)."""
        n = len(deviation)
        clean = np.where(usable, deviation, 0.0)
        own = np.maximum(own, np.finfo(np.float64).tiny)
        if self.mode == "row":
            return self._subtract_rows(deviation, usable), self._row_expected(usable, own)
        if self.estimator == "decorrelate":
            weight = coupling / own
            total = np.tensordot(weight, clean, axes=1)
            info = np.tensordot(weight * coupling, usable.astype(np.float64), axes=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                k_dec = np.where(info > 0, (1.0 - 1.0 / np.sqrt(1.0 + info)) / info, 0.0)
            k_lsq = 1.0 / (1.0 + info)
            factor = np.where(usable, k_dec[None], k_lsq[None]) * total[None]
            return coupling[:, None, None] * factor, own.copy()
        masked = np.where(usable, deviation, np.nan)
        subtract = np.empty_like(deviation)
        expected = np.empty(n)
        k = n - 1
        for a in range(n):
            others = np.delete(masked, a, axis=0)
            with _quiet(), np.errstate(invalid="ignore"):
                if k <= 2 or self.estimator == "mean":
                    estimate = np.nanmean(others, axis=0)
                else:
                    estimate = np.nanmedian(others, axis=0)
            subtract[a] = np.nan_to_num(estimate, nan=0.0)
            spread = 1.0 / k if self.estimator == "mean" else _median_variance(k)
            mismatch = (coupling[a] - np.delete(coupling, a).mean()) ** 2
            expected[a] = own[a] + spread * np.delete(own, a).mean() + mismatch
        return subtract, expected

    def _subtract_rows(self, deviation: np.ndarray, usable: np.ndarray) -> np.ndarray:
        n, rows, cols = deviation.shape
        masked = np.where(usable, deviation, np.nan).transpose(1, 0, 2).reshape(rows, n * cols)
        with _quiet(), np.errstate(invalid="ignore"):
            estimate = np.nanmedian(masked, axis=1) if self.estimator == "median" else np.nanmean(masked, axis=1)
        estimate = np.nan_to_num(estimate, nan=0.0)
        return np.broadcast_to(estimate[None, :, None], deviation.shape).copy()

    def _row_expected(self, usable: np.ndarray, own: np.ndarray) -> np.ndarray:
        per_row = usable.sum(axis=(0, 2))
        typical = float(np.median(per_row[per_row > 0])) if (per_row > 0).any() else 1.0
        factor = math.pi / 2 if self.estimator == "median" else 1.0
        return own + factor * own.mean() / typical

    # --- plot --------------------------------------------------------------------------------
    def _plot(
        self, image: SkipperImage, context: RunContext, names: list[str], before: np.ndarray, after: np.ndarray
    ) -> None:
        with figure(context, image, self.name, "correlation", None, ncols=2, size=(9.0, 4.0)) as (fig, axes):
            for ax, matrix, title in ((axes[0], before, "before"), (axes[1], after, "after")):
                shown = ax.imshow(matrix, vmin=-1, vmax=1, cmap="coolwarm", interpolation="nearest")
                ax.set_xticks(range(len(names)), names)
                ax.set_yticks(range(len(names)), names)
                ax.grid(False)
                ax.set_title(f"correlation {title} ({self.mode}, {self.estimator})", fontsize=9)
                for (i, j), value in np.ndenumerate(matrix):
                    ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8)
            fig.colorbar(shown, ax=axes, label="Pearson correlation")
