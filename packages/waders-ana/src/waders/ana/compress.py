"""CompressSkipperProcess: reduce the skips of every pixel to one value per statistic."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.kinds import Float, ListOf, Optional, Str
from waders.io.reduce import DEFAULT_BLOCK_BYTES, reduce_skips, skip_reduction

from .base import AnalysisProcess
from .saturation import flag_saturation
from .summary import SummaryPart

__all__ = ["CompressSkipperProcess"]

log = logging.getLogger(__name__)


class CompressSkipperProcess(AnalysisProcess):
    """Reduce the skips of each pixel (mean, std, median or any numpy reduction).

    Produces ``<func>_compressed`` for every function (``mean_compressed``,
    ``std_compressed``, ...), reading raw samples by row blocks so that images larger
    than memory are compressed with bounded memory.  Pixels outside the id_row/id_col
    window are NaN (outputs are never cropped).  With ``saturation`` and both mean and
    std, ``saturated_pixels`` flags saturated pixels (:mod:`waders.ana.saturation`): with
    ``saturation_adu`` null those at the image maximum with zero spread over the skips
    (pysimdamicm's rule, any ADC range), else those whose mean is at or above
    ``saturation_adu``, which also flags averaged images.
    ``xtalk`` flags pixels whose skip spread is an outlier in every amplifier at once
    (crosstalk or transients seen by all amplifiers read together).
    """

    order: ClassVar[int] = 10
    products = (
        Product(
            "mean_compressed",
            "image",
            "ADU",
            "<func>_compressed for every func_to_compress (mean: average of the skips)",
        ),
        Product("std_compressed", "image", "ADU", "standard deviation of the skips of each pixel"),
        Product(
            "saturated_pixels", "image", doc="1 where the pixel is saturated (needs mean and std)", switch="saturation"
        ),
        Product("xtalk", "image", doc="1 where the skip spread is an outlier in every amplifier", switch="xtalk"),
        Product("n_skips_used", "result", doc="skips reduced (skip_start .. skip_stop)"),
    )
    image = Param("raw", doc="input: the raw samples")
    func_to_compress = Param(["mean", "std"], ListOf(Str(), separator=";"), doc="numpy reductions over skips")
    saturation = Param(True, doc="flag saturated pixels (needs mean and std)")
    saturation_adu = Param(
        None,
        Optional(Float()),
        unit="ADU",
        doc="saturation level of the ADC: pixels whose mean is at or above it are saturated; null: pixels at the "
        "image maximum with zero spread over the skips (pysimdamicm)",
    )
    xtalk = Param(False, doc="flag pixels whose skip std is an outlier in all amplifiers (needs std)")
    n_sig_xtalk = Param(5.0, Float(min=0), doc="outlier threshold of the xtalk flag (trimmed sigmas)")
    block_mbytes = Param(DEFAULT_BLOCK_BYTES / (1 << 20), Float(min=1), doc="memory for one block of raw samples (MB)")

    ignored_keys: ClassVar[dict[str, str]] = {"histequ": "unused in pysimdamicm too"}

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        for name in self.func_to_compress:
            skip_reduction(name)  # unknown reductions fail when the configuration is loaded

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """Nothing: the compressed images are image products."""
        return SummaryPart()

    def run(self, data: SkipperImage, context: RunContext) -> None:
        if data.geometry.averaged or data.geometry.nskips <= 1:
            log.info("%s: averaged image, nothing to compress", data.label)
            if self.saturation and self.saturation_adu is not None:
                flag_saturation(data, self.saturation_adu)
            return
        nskips = data.geometry.nskips
        start, stop = self.skip_range(data, nskips)
        reduced = reduce_skips(
            data,
            self.func_to_compress,
            skips=(start, stop),
            block_bytes=int(self.block_mbytes * (1 << 20)),
        )
        for name, amp in data.amplifiers.items():
            outside = self.window_mask(data, amp)
            for func, array in reduced[name].items():
                array[outside] = np.nan
                amp.set(f"{func}_compressed", array)
            amp.record(self.name, skip_start=start, skip_stop=stop, n_skips_used=stop - start)
        data.add_header_card("NSKIPS", nskips, "skips in the raw image")
        data.add_header_card("NSTART", start + 1, "first skip used (1-based)")
        data.add_header_card("NEND", stop, "last skip used (1-based)")
        data.add_header_card("NUSED", stop - start, "skips averaged")
        functions = set(self.func_to_compress)
        by_level = self.saturation_adu is not None and "mean" in functions
        if self.saturation and ({"mean", "std"} <= functions or by_level):
            flag_saturation(data, self.saturation_adu)
        if self.xtalk:
            self._flag_crosstalk(data)

    def _flag_crosstalk(self, data: SkipperImage) -> None:
        """Pixels (same readout position) whose skip std is an outlier in every amplifier."""
        if "std" not in self.func_to_compress:
            from waders.core.errors import ConfigError

            raise ConfigError(f"{self.name}: xtalk needs 'std' in func_to_compress")
        shapes = {a.geometry.shape for a in data.amplifiers.values()}
        if len(data.amplifiers) < 2 or len(shapes) != 1:
            log.warning("%s: xtalk flag needs two or more amplifiers of equal shape; skipped", data.label)
            return
        flags = []
        for amp in data.amplifiers.values():
            std = amp.get("std_compressed")
            rows, cols = amp.geometry.region("active")
            active = std[rows, cols]
            lo, hi = np.nanpercentile(active, [5, 95])
            core = active[(active >= lo) & (active <= hi)]
            outlier = np.zeros(std.shape, dtype=bool)
            outlier[rows, cols] = np.abs(active - core.mean()) > self.n_sig_xtalk * core.std()
            flags.append(outlier)
        common = np.logical_and.reduce(flags)
        for amp in data.amplifiers.values():
            amp.set("xtalk", common.astype(np.uint8))
            amp.record(self.name, n_xtalk=int(common.sum()))
