"""Monitor elements of the skips of raw images (reference D.4, -1, 2, 3 and 80).

They need the raw samples, so they are not applicable to averaged images.  The analysis
processes they read (RNvsNskipsPlot, ChargeLossSkewnessProcess) are added by the DQM in a
form that does nothing on an averaged image, so a run may mix raw and averaged files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.ana.studies.chargeloss import ChargeLossSkewnessProcess
from waders.ana.studies.noise import RNvsNskipsPlot
from waders.core.image import Amplifier, SkipperImage, iter_row_blocks
from waders.core.kinds import Float, Int, Optional
from waders.core.parameters import Param
from waders.core.pipeline import RunContext

from ..monitor import AnalysisStep, MEResult, MonitorElement, NotApplicable, product, region_values

__all__ = [
    "ChargeLossSkewnessIfRaw",
    "MEQmeanDiffSingleSkips",
    "MEReadoutnoiseNDCM",
    "MESTDSkipsPerCol",
    "MESkewnessCoeff",
    "RNvsNskipsPlotIfRaw",
]

log = logging.getLogger(__name__)


class _RawOnly:
    """Mix-in: run the process only when every amplifier has raw samples."""

    name: ClassVar[str]

    def run(self, data: SkipperImage, context: RunContext) -> None:
        if any(amp.raw is None for amp in data.amplifiers.values()):
            log.info("%s: %s needs raw samples; not run on this averaged image", data.label, self.name)
            return
        super().run(data, context)  # type: ignore[misc]


class RNvsNskipsPlotIfRaw(_RawOnly, RNvsNskipsPlot):
    """RNvsNskipsPlot that does nothing on averaged images (added by the DQM for MEReadoutnoiseNDCM)."""

    name: ClassVar[str] = "RNvsNskipsPlot"


class ChargeLossSkewnessIfRaw(_RawOnly, ChargeLossSkewnessProcess):
    """ChargeLossSkewnessProcess that does nothing on averaged images (added by the DQM for MESkewnessCoeff)."""

    name: ClassVar[str] = "ChargeLossSkewnessProcess"


def _raw(amplifier: Amplifier) -> Any:
    if amplifier.raw is None:
        raise NotApplicable("needs the raw samples (the input is an averaged image)")
    return amplifier.raw


class MEQmeanDiffSingleSkips(MonitorElement):
    """Mean over the active region of (skip reference - skip s), for s = 0, step, 2 step, ... (ADU).

    A drift of the charge (or of the baseline) between skips shows as a slope.  ``value`` is
    the largest difference; ``yerr`` the error of each mean.  pysimdamicm divided by the
    median of the mean image, which is meaningless when the pedestal is near zero.
    """

    order: ClassVar[int] = -1
    kind: ClassVar[str] = "profile"
    unit: ClassVar[str] = "ADU"
    needs_raw: ClassVar[bool] = True
    title: ClassVar[str] = "mean difference to the reference skip"
    xlabel: ClassVar[str] = "skip"
    ylabel: ClassVar[str] = "mean(reference - skip)"

    skip_reference = Param(200, Int(min=0), doc="reference skip (the last skip if beyond)")
    skip_step = Param(5, Int(min=1), doc="step between the compared skips")
    block_mbytes = Param(64.0, Float(min=1), doc="memory for one block of raw samples (MB)")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        raw = _raw(amplifier)
        _, ncols, nskips = raw.shape
        reference = min(self.skip_reference, nskips - 1)
        skips = np.arange(0, nskips, self.skip_step)
        rows, cols = amplifier.geometry.region("active")
        sums = np.zeros(skips.size)
        squares = np.zeros(skips.size)
        n = 0
        block = max(1, int(self.block_mbytes * (1 << 20) / max(1, ncols * nskips * 8)))
        for start, samples in iter_row_blocks(raw, block):
            lo, hi = max(start, rows.start), min(start + samples.shape[0], rows.stop)
            if hi <= lo:
                continue
            sub = np.asarray(samples[lo - start : hi - start, cols], dtype=np.float64)
            diff = (sub[:, :, reference, None] - sub[:, :, skips]).reshape(-1, skips.size)
            sums += diff.sum(axis=0)
            squares += np.einsum("ij,ij->j", diff, diff)
            n += diff.shape[0]
        if n == 0:
            raise NotApplicable("the active region is empty")
        mean = sums / n
        err = np.sqrt(np.maximum(squares / n - mean**2, 0.0) / n)
        worst = int(np.argmax(np.abs(mean)))
        return MEResult(float(mean[worst]), float(err[worst]), skips.astype(np.float64), mean, err)


class MESTDSkipsPerCol(MonitorElement):
    """Rows per active column whose skip standard deviation exceeds mean + n_std std of the active region.

    Needs the ``std_compressed`` image (CompressSkipperProcess with ``std``).  ``value`` is the
    total over the columns; columns in readout order (distance from the amplifier).
    """

    order: ClassVar[int] = 2
    kind: ClassVar[str] = "profile"
    unit: ClassVar[str] = "pixels"
    needs_raw: ClassVar[bool] = True
    title: ClassVar[str] = "pixels with a large skip spread per column"
    xlabel: ClassVar[str] = "column (readout order)"
    ylabel: ClassVar[str] = "pixels"

    image = Param("std_compressed", doc="image of the skip standard deviations (ADU)")
    n_std = Param(8.0, Float(min=0), doc="threshold: mean + n_std standard deviations of the active region")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        values, _, cols = region_values(amplifier, product(amplifier, self.image), "active")
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise NotApplicable("no finite pixel in the std image")
        threshold = float(finite.mean()) + self.n_std * float(finite.std())
        counts = (np.nan_to_num(values, nan=-np.inf) > threshold).sum(axis=0).astype(np.float64)
        total = float(counts.sum())
        x = cols.start + 1 + np.arange(counts.size, dtype=np.float64)
        return MEResult(total, math.sqrt(max(total, 1.0)), x, counts, np.sqrt(np.maximum(counts, 1.0)))


class MEReadoutnoiseNDCM(MonitorElement):
    """Readout noise versus the number of averaged skips N (ADU) and the single-skip noise sigma_1.

    Reads RNvsNskipsPlot (added to the analysis when missing, with ``n_skips_per_block``);
    ``value`` is sigma_1 of the fit sigma_1 N^-alpha, ``yfit`` the fitted curve.
    """

    order: ClassVar[int] = 3
    kind: ClassVar[str] = "profile"
    unit: ClassVar[str] = "ADU"
    needs_raw: ClassVar[bool] = True
    title: ClassVar[str] = "readout noise versus averaged skips"
    xlabel: ClassVar[str] = "averaged skips N"
    ylabel: ClassVar[str] = "readout noise"

    n_skips_per_block = Param(None, Optional(Int()), doc="RNvsNskipsPlot.n_skips_per_block; null = as configured")
    id_skip_start = Param(None, Optional(Int(min=0)), doc="RNvsNskipsPlot.id_skip_start; null = as configured")

    def analysis_steps(self) -> list[AnalysisStep]:
        return [AnalysisStep(RNvsNskipsPlotIfRaw, self.given(["n_skips_per_block", "id_skip_start"]))]

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        _raw(amplifier)
        results = amplifier.results.get("RNvsNskipsPlot")
        if not results:
            raise NotApplicable("RNvsNskipsPlot did not run")
        n = np.asarray(results["n_skips"], dtype=np.float64)
        noise = np.asarray(results["noise_adu"], dtype=np.float64)
        err = np.asarray(results["noise_err_adu"], dtype=np.float64)
        sigma_1, alpha = results.get("sigma_1_adu"), results.get("alpha")
        yfit = sigma_1 * n ** (-alpha) if sigma_1 is not None and alpha is not None else None
        return MEResult(sigma_1, results.get("sigma_1_err"), n, noise, err, yfit)


class MESkewnessCoeff(MonitorElement):
    """Charge-loss coefficient k_CL of skip-to-skip differences per compared skip (ChargeLossSkewnessProcess).

    ``value`` is k_CL of the skip farthest from the reference.  ``kcl_n_sig`` is used as given
    (pysimdamicm multiplied it by 8).
    """

    order: ClassVar[int] = 80
    kind: ClassVar[str] = "profile"
    unit: ClassVar[str] = ""
    needs_raw: ClassVar[bool] = True
    title: ClassVar[str] = "charge-loss coefficient per skip"
    xlabel: ClassVar[str] = "skip"
    ylabel: ClassVar[str] = "k_CL"

    id_skip_reference = Param(None, Optional(Int()), doc="ChargeLossSkewnessProcess.id_skip_reference")
    id_skip_start = Param(None, Optional(Int(min=0)), doc="ChargeLossSkewnessProcess.id_skip_start")
    id_skip_end = Param(None, Optional(Int()), doc="ChargeLossSkewnessProcess.id_skip_end")
    skip_step = Param(None, Optional(Int(min=1)), doc="ChargeLossSkewnessProcess.skip_step")
    kcl_threshold = Param(None, Optional(Float(min=0)), doc="ChargeLossSkewnessProcess.kcl_threshold")
    kcl_n_sig = Param(None, Optional(Float(min=0)), doc="ChargeLossSkewnessProcess.kcl_n_sig")

    _KEYS = ("id_skip_reference", "id_skip_start", "id_skip_end", "skip_step", "kcl_threshold", "kcl_n_sig")

    def analysis_steps(self) -> list[AnalysisStep]:
        return [AnalysisStep(ChargeLossSkewnessIfRaw, self.given(self._KEYS))]

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        _raw(amplifier)
        results = amplifier.results.get("ChargeLossSkewnessProcess")
        if not results:
            raise NotApplicable("ChargeLossSkewnessProcess did not run")
        return MEResult(
            results.get("k_cl"),
            results.get("k_cl_err"),
            np.asarray(results["skips"], dtype=np.float64),
            np.asarray(results["k_cl_per_skip"], dtype=np.float64),
            np.asarray(results["k_cl_err_per_skip"], dtype=np.float64),
        )
