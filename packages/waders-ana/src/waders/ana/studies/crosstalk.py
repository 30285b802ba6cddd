"""CrossTalkProcess: crosstalk between amplifiers read simultaneously (reference B.12).

Amplifiers read at the same time (the two amplifiers of a CCD, the channels of a
module) see each other's signals: when the source amplifier ``src`` reads a pixel
holding ``S``, the destination ``dst`` reads ``alpha[dst, src] S`` more at the same
sample.  Images are stored in readout order, so simultaneous pixels share the same
(row, readout column) index in every amplifier.  The process has three parts:

1. **Outlier flag** (pysimdamicm's CrossTalkProcess, ``flag``): per amplifier, the skip
   spread ``std_compressed`` of the active region is compared with its percentile-trimmed
   mean ``m`` and standard deviation ``s`` (values between the ``percentile`` bounds);
   pixels with ``|std - m| > n_sig s`` in **every** amplifier at the same readout position
   are flagged in the product ``xtalk`` (uint8, the same in every amplifier).
2. **Crosstalk matrix** (pysimdamicm's crosstalk module, ``alpha_matrix``): for every
   ordered pair, the seeds are the source pixels of the active region (and id_row/id_col
   window) with ``qrange[0] < S < qrange[1]`` (in e- for an ``..._e`` image, else in ADU),
   optionally only the brightest pixel of every cluster of ClusterFinder
   (``only_cluster_seeds``).  The ratios ``r = img_dst[i + lag_r, j + lag_c] / S`` are
   clipped at ``n_mad`` x 1.4826 MAD around their median and ``alpha`` is the median of the
   kept ratios; its uncertainty is the half width of the central 68 % interval of
   ``n_boot`` bootstrap medians (one vectorised draw per chunk, seeded from
   ``context.rng``).  The null test repeats this with the destination read at as many
   uniformly random positions (same charges ``S``): ``alpha_null`` is compatible with zero
   unless the destination image has an offset or a charge-correlated background.
3. **Correction** (``correct``): ``<image>_xtcorr = img_dst - sum_src (alpha - alpha_null)[dst, src]
   img_src`` (the source image shifted by the lag), as pysimdamicm's module.

Recorded per image (``image.record``): ``amplifiers`` (the order of the matrix rows and
columns), ``alpha``, ``alpha_err``, ``alpha_null``, ``alpha_null_err``, ``alpha_net``
(``alpha - alpha_null``, used by the correction), ``n_seeds`` (nested lists
``[dst][src]``, diagonal null), ``lag``, ``qrange``, ``image_unit``, ``n_xtalk`` (flagged
pixels); per amplifier ``std_trimmed_mean``, ``std_trimmed_std``, ``n_std_outliers``.

Deliberate differences from pysimdamicm:

* the flag uses ``std_compressed`` of the image when it exists (raw inputs); for averaged
  inputs it reads the ``std_pattern`` companion variance file (``<name with pattern[0]
  replaced by pattern[1]>``, :mod:`.companion`) and uses ``sqrt(variance)`` (pysimdamicm used
  the variance as a standard deviation, and failed for non-ACM inputs); the source is
  recorded as ``std_source`` (``"std_compressed"`` or the companion file name);
* the flag map is stored per amplifier in readout order (pysimdamicm expanded it by
  repeating rows, wrong for row-concatenated extensions); the diagnostic Gaussian fit of
  the std values is not done;
* the matrix is computed inside the analysis chain for any number of amplifiers of equal
  shape (pysimdamicm: a separate command for exactly four channel files, reading the
  ``QMAX`` map); the seed charge is read from the analysed image;
* the robust clipping always returns the same structure, and the null test uses the seeds
  of the charge window (pysimdamicm's ignored it); the bootstrap is chunked so memory stays
  bounded; the energy dependence of alpha (S bins) is not computed.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier
from waders.core.kinds import Float, Int, ListOf, Str

from ..base import AnalysisProcess
from ..plotting import figure, image_view, wants_plots
from .companion import companion_path, companion_std

__all__ = ["CrossTalkProcess", "robust_median_ratio", "std_outliers"]

log = logging.getLogger(__name__)

_MAD_TO_SIGMA = 1.4826
#: Largest number of resampled values held at once by the bootstrap.
_BOOT_VALUES = 4_000_000


def std_outliers(std: np.ndarray, percentile: tuple[float, float], n_sig: float) -> tuple[np.ndarray, float, float]:
    """Pixels whose skip spread is an outlier: ``|std - m| > n_sig s`` (trimmed m, s).

    Parameters
    ----------
    std : ndarray
        Skip spread of the pixels (ADU), NaN where unknown.
    percentile : (float, float)
        Percentiles bounding the values used for the trimmed mean and std.
    n_sig : float
        Threshold in trimmed standard deviations.

    Returns
    -------
    (outlier mask, trimmed mean, trimmed std)
    """
    finite = std[np.isfinite(std)]
    if finite.size == 0:
        return np.zeros(std.shape, dtype=bool), float("nan"), float("nan")
    lo, hi = np.percentile(finite, percentile)
    core = finite[(finite >= lo) & (finite <= hi)]
    mean, sigma = float(core.mean()), float(core.std())
    with np.errstate(invalid="ignore"):
        return np.abs(std - mean) > n_sig * sigma, mean, sigma


def _clip(ratios: np.ndarray, n_mad: float) -> np.ndarray:
    """Keep ratios within n_mad x 1.4826 MAD of the median (all of them if MAD = 0 or <= 5 values)."""
    if ratios.size <= 5:
        return ratios
    median = np.median(ratios)
    mad = np.median(np.abs(ratios - median))
    if mad == 0:
        return ratios
    return ratios[np.abs(ratios - median) <= n_mad * _MAD_TO_SIGMA * mad]


def robust_median_ratio(
    ratios: np.ndarray, n_mad: float, n_boot: int, rng: np.random.Generator
) -> tuple[float, float, int]:
    """Median of MAD-clipped ratios and the bootstrap uncertainty of that median.

    Parameters
    ----------
    ratios : ndarray
        Ratios destination / source charge.
    n_mad : float
        Clipping threshold (x 1.4826 MAD).
    n_boot : int
        Bootstrap resamples; the error is half the 16-84 % interval of their medians.
    rng : numpy.random.Generator
        Random stream of the bootstrap.

    Returns
    -------
    (median, error, number of ratios kept)
    """
    kept = _clip(ratios[np.isfinite(ratios)], n_mad)
    n = kept.size
    if n == 0:
        return float("nan"), float("nan"), 0
    median = float(np.median(kept))
    if n < 2 or n_boot < 2:
        return median, float("nan"), n
    chunk = max(1, _BOOT_VALUES // n)
    medians = np.empty(n_boot)
    for first in range(0, n_boot, chunk):
        size = min(chunk, n_boot - first)
        medians[first : first + size] = np.median(kept[rng.integers(0, n, size=(size, n))], axis=1)
    lo, hi = np.percentile(medians, [16.0, 84.0])
    return median, float(0.5 * (hi - lo)), n


def _shift(image: np.ndarray, lag: tuple[int, int]) -> np.ndarray:
    """``out[i + lag_r, j + lag_c] = image[i, j]`` with zeros where nothing lands."""
    out = np.zeros_like(image)
    dr, dc = lag
    nr, nc = image.shape
    if abs(dr) >= nr or abs(dc) >= nc:
        return out
    src = image[max(0, -dr) : nr - max(0, dr), max(0, -dc) : nc - max(0, dc)]
    out[max(0, dr) : max(0, dr) + src.shape[0], max(0, dc) : max(0, dc) + src.shape[1]] = src
    return out


class CrossTalkProcess(AnalysisProcess):
    """Crosstalk between simultaneously read amplifiers: outlier flag, alpha matrix and corrected images.

    See :mod:`waders.ana.studies.crosstalk` for the method and the recorded keys.
    """

    products = (
        Product(
            "mean_compressed_pedestal_subtracted_e_xtcorr",
            "image",
            doc="<image>_xtcorr: the crosstalk subtracted",
            switch="correct",
        ),
        Product("xtalk", "image", doc="1 where the skip spread is an outlier in every amplifier"),
        Product(
            "alpha",
            "result",
            per_amplifier=False,
            doc="crosstalk matrix alpha[dst, src] (alpha_err, alpha_null, alpha_net)",
        ),
        Product("std_trimmed_mean", "result", "ADU", "trimmed mean of the skip spread"),
        Product("alpha_matrix", "figure", per_amplifier=False, doc="the crosstalk matrix"),
        Product("scatter", "figure", per_amplifier=False, doc="destination versus source charge per pair"),
    )

    order: ClassVar[int] = 30

    image = Param("mean_compressed_pedestal_subtracted_e", doc="image of the alpha matrix (e- if '_e', else ADU)")
    flag = Param(True, doc="flag pixels whose skip std is an outlier in all amplifiers (needs std_compressed)")
    percentile = Param([5.0, 95.0], ListOf(Float(min=0, max=100), length=2), doc="trimming percentiles of the std")
    n_sig = Param(5.0, Float(min=0), doc="outlier threshold of the flag (trimmed sigmas)")
    std_pattern = Param(
        ["avg_skips_contrun", "var_skips_contrun"],
        ListOf(Str()),
        doc="[average, variance] parts of the names of averaged images and their companion variance files "
        "(used when std_compressed is missing)",
    )
    alpha_matrix = Param(True, doc="measure the crosstalk matrix alpha[dst, src]")
    qrange = Param([400.0, 5000.0], ListOf(Float(), length=2), doc="charge window of the seed pixels (image units)")
    only_cluster_seeds = Param(False, doc="seeds are the brightest pixels of ClusterFinder's clusters only")
    lag = Param([0, 0], ListOf(Int(), length=2), doc="(rows, columns) from the seed to the crosstalk pixel")
    n_mad = Param(5.0, Float(min=0), doc="clip ratios beyond n_mad x 1.4826 MAD of their median")
    n_boot = Param(1000, Int(min=0), doc="bootstrap resamples of the median (0: no uncertainty)")
    null_test = Param(True, doc="repeat the measurement at random positions (alpha_null)")
    correct = Param(True, doc="produce <image>_xtcorr with the crosstalk subtracted")

    @property
    def unit(self) -> str:
        """Unit of the analysed image."""
        return "e-" if self.image.endswith("_e") else "ADU"

    def run(self, data: SkipperImage, context: RunContext) -> None:
        amps = list(data.amplifiers.values())
        shapes = {a.geometry.shape for a in amps}
        if len(amps) < 2 or len(shapes) != 1:
            raise DataError(
                f"{self.name} needs two or more amplifiers of equal shape read simultaneously "
                f"({data.label} has {len(amps)} of shapes {sorted(shapes)})",
                hint="remove CrossTalkProcess from the sequence for this image",
            )
        if self.qrange[0] >= self.qrange[1]:
            raise ConfigError(f"{self.name}.qrange must be increasing, got {self.qrange}")
        record: dict[str, Any] = {"amplifiers": [a.name for a in amps]}
        if self.flag:
            record.update(self._flag(data, amps))
        if self.alpha_matrix:
            record.update(self._matrix(data, amps, context))
        data.record(self.name, **record)

    # --- 1. outlier flag ---------------------------------------------------------------------------
    def _flag(self, image: SkipperImage, amps: list[Amplifier]) -> dict[str, Any]:
        flags = []
        companion: dict[str, np.ndarray] | None = None
        source = "std_compressed"
        for amp in amps:
            if amp.has("std_compressed"):
                std = np.asarray(amp.get("std_compressed"), dtype=np.float64)
            else:
                if companion is None:
                    companion = self._companion(image, amp)
                    source = companion_path(image.source, self.std_pattern).name  # type: ignore[arg-type]
                std = companion[amp.name]
            rows, cols = amp.geometry.region("active")
            outlier = np.zeros(std.shape, dtype=bool)
            active, mean, sigma = std_outliers(std[rows, cols], tuple(self.percentile), self.n_sig)
            outlier[rows, cols] = active
            amp.record(self.name, std_trimmed_mean=mean, std_trimmed_std=sigma, n_std_outliers=int(active.sum()))
            flags.append(outlier)
        common = np.logical_and.reduce(flags)
        for amp in amps:
            amp.set("xtalk", common.astype(np.uint8))
        return {"n_xtalk": int(common.sum()), "std_source": source}

    def _companion(self, image: SkipperImage, amp: Amplifier) -> dict[str, np.ndarray]:
        """Skip std of every amplifier from the std_pattern companion file (clear error if there is none)."""
        try:
            return companion_std(image, self.std_pattern)
        except DataError as err:
            raise DataError(
                f"{self.name}: amplifier {amp.name} has no std_compressed for the crosstalk flag and {err.message}",
                hint="run CompressSkipperProcess with 'std' in func_to_compress, provide the std_pattern "
                "companion file, or set flag: false",
            ) from None

    # --- 2. alpha matrix -------------------------------------------------------------------------------
    def _seeds(self, image: SkipperImage, amp: Amplifier, index: int, values: np.ndarray) -> tuple[np.ndarray, ...]:
        """Rows, columns and charges of the seeds of a source amplifier (inside the image after the lag)."""
        nrows, ncols = values.shape
        allowed = ~(amp.geometry.mask("active") | self.window_mask(image, amp))
        dr, dc = self.lag
        shifted_inside = np.zeros_like(allowed)
        shifted_inside[max(0, -dr) : nrows - max(0, dr), max(0, -dc) : ncols - max(0, dc)] = True
        allowed &= shifted_inside
        lo, hi = self.qrange
        if self.only_cluster_seeds:
            rows, cols = self._cluster_seed_positions(image, amp, index)
            keep = allowed[rows, cols]
            rows, cols = rows[keep], cols[keep]
            charge = values[rows, cols]
            inside = (charge > lo) & (charge < hi)
            return rows[inside], cols[inside], charge[inside], allowed
        with np.errstate(invalid="ignore"):
            bright = allowed & (values > lo) & (values < hi)
        rows, cols = np.nonzero(bright)
        return rows, cols, values[rows, cols], allowed

    def _cluster_seed_positions(self, image: SkipperImage, amp: Amplifier, index: int) -> tuple[np.ndarray, np.ndarray]:
        finder = image.results.get("ClusterFinder", {})
        if "clusters" not in finder:
            raise DataError(
                f"{self.name}: only_cluster_seeds is set but there are no clusters",
                hint="run ClusterFinder earlier in the sequence, or set only_cluster_seeds to false",
            )
        import awkward as ak

        clusters = finder["clusters"]
        mine = clusters[ak.to_numpy(clusters["amplifier"]) == index]
        file_rows = ak.to_numpy(mine["QmaxY"]).astype(np.int64) - 1
        file_cols = ak.to_numpy(mine["QmaxX"]).astype(np.int64) - 1
        geometry = amp.geometry
        rows = file_rows - geometry.row_offset
        cols = file_cols - geometry.col_offset
        if geometry.mirrored:
            cols = geometry.ncols - 1 - cols
        inside = (rows >= 0) & (rows < geometry.nrows) & (cols >= 0) & (cols < geometry.ncols)
        return rows[inside], cols[inside]

    def _matrix(self, image: SkipperImage, amps: list[Amplifier], context: RunContext) -> dict[str, Any]:
        n = len(amps)
        missing = [a.name for a in amps if not a.has(self.image)]
        if missing:
            raise DataError(
                f"{self.name}: image '{self.image}' of the alpha matrix is not available for amplifier(s) "
                f"{', '.join(missing)}",
                hint="run the process that makes it (e.g. CalibrationProcess) earlier, set 'image', "
                "or set alpha_matrix: false",
            )
        values = [np.asarray(a.get(self.image), dtype=np.float64) for a in amps]
        alpha, alpha_err = np.full((n, n), np.nan), np.full((n, n), np.nan)
        null, null_err = np.full((n, n), np.nan), np.full((n, n), np.nan)
        n_seeds = np.zeros((n, n), dtype=np.int64)
        dr, dc = self.lag
        scatter: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for src, amp in enumerate(amps):
            rows, cols, charge, allowed = self._seeds(image, amp, src, values[src])
            allowed_rows, allowed_cols = np.nonzero(allowed)
            for dst in range(n):
                if dst == src:
                    continue
                n_seeds[dst, src] = charge.size
                if charge.size == 0:
                    continue
                target = values[dst][rows + dr, cols + dc]
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratios = target / charge
                rng = context.rng(self.name, "bootstrap", amps[dst].name, amp.name)
                alpha[dst, src], alpha_err[dst, src], _ = robust_median_ratio(ratios, self.n_mad, self.n_boot, rng)
                scatter[(dst, src)] = (charge, target)
                if self.null_test and allowed_rows.size:
                    rng = context.rng(self.name, "null", amps[dst].name, amp.name)
                    pick = rng.integers(0, allowed_rows.size, size=charge.size)
                    random_target = values[dst][allowed_rows[pick] + dr, allowed_cols[pick] + dc]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        null_ratios = random_target / charge
                    null[dst, src], null_err[dst, src], _ = robust_median_ratio(
                        null_ratios, self.n_mad, self.n_boot, rng
                    )
        net = alpha - np.where(np.isfinite(null), null, 0.0)
        if self.correct:
            self._correct(amps, values, net)
        if any(charge_count == 0 for charge_count in n_seeds[~np.eye(n, dtype=bool)]):
            log.warning("%s: %s: some amplifiers have no seed in qrange %s", image.label, self.name, self.qrange)
        result = {
            "alpha": _nested(alpha),
            "alpha_err": _nested(alpha_err),
            "alpha_null": _nested(null),
            "alpha_null_err": _nested(null_err),
            "alpha_net": _nested(net),
            "n_seeds": [[None if i == j else int(n_seeds[i, j]) for j in range(n)] for i in range(n)],
            "lag": list(self.lag),
            "qrange": list(self.qrange),
            "image_unit": self.unit,
        }
        if wants_plots(self, context):
            self._plot(image, context, amps, alpha, alpha_err, n_seeds, scatter)
        return result

    # --- 3. correction -------------------------------------------------------------------------------
    def _correct(self, amps: list[Amplifier], values: list[np.ndarray], net: np.ndarray) -> None:
        lag = (int(self.lag[0]), int(self.lag[1]))
        sources = [_shift(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0), lag) for v in values]
        for dst, amp in enumerate(amps):
            corrected = values[dst].copy()
            for src in range(len(amps)):
                coefficient = net[dst, src]
                if src != dst and np.isfinite(coefficient):
                    corrected -= coefficient * sources[src]
            amp.set(f"{self.image}_xtcorr", corrected)

    # --- plots -----------------------------------------------------------------------------------------
    def _plot(
        self,
        image: SkipperImage,
        context: RunContext,
        amps: list[Amplifier],
        alpha: np.ndarray,
        alpha_err: np.ndarray,
        n_seeds: np.ndarray,
        scatter: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    ) -> None:
        names = [a.name for a in amps]
        n = len(amps)
        with figure(context, image, self.name, "alpha_matrix") as (_, ax):
            image_view(ax, alpha * 1e4, label=r"$\alpha$ [dst, src] $\times 10^{4}$", percentiles=(0, 100))
            ax.set_xticks(range(n), names)
            ax.set_yticks(range(n), names)
            ax.set_xlabel("source amplifier")
            ax.set_ylabel("destination amplifier")
            for i in range(n):
                for j in range(n):
                    if i != j:
                        text = f"{alpha[i, j] * 1e4:.3g}\n±{alpha_err[i, j] * 1e4:.2g}\nn={n_seeds[i, j]}"
                        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w")
        size = (3.0 * n, 2.6 * n)
        with figure(context, image, self.name, "scatter", nrows=n, ncols=n, size=size) as (_, axes):
            axes = np.asarray(axes).reshape(n, n)
            for i in range(n):
                for j in range(n):
                    ax = axes[i, j]
                    if (i, j) not in scatter:
                        ax.set_axis_off()
                        continue
                    charge, target = scatter[(i, j)]
                    ax.plot(charge, target, ".", ms=2, color="k")
                    if np.isfinite(alpha[i, j]):
                        x = np.array([charge.min(), charge.max()])
                        ax.plot(x, alpha[i, j] * x, color="tab:red", lw=1)
                    ax.set_title(f"{names[i]} <- {names[j]}", fontsize=8)
                    ax.set_xlabel(f"source ({self.unit})", fontsize=8)
                    ax.set_ylabel(f"destination ({self.unit})", fontsize=8)


def _nested(matrix: np.ndarray) -> list[list[float | None]]:
    """Matrix as nested lists with NaN as None (JSON null)."""
    return [[float(v) if np.isfinite(v) else None for v in row] for row in matrix]
