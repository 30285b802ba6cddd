"""MEDefectsMask: hot pixels, rows and columns of a run (reference D.4, 100), and the run mask.

Per image and amplifier, a pixel of the active region is a *candidate* when its charge
(ADU, pedestal subtracted) exceeds its row's overscan median + ``n_mad`` MAD (unscaled) and
is at most ``q_max_adu`` (larger charges are particles, not defects); without overscan the
row's active pixels give the median and MAD.  Over a run, a pixel is hot when it is a
candidate in more than ``hot_pixel_fraction`` of the images; a row is masked when its hot
pixels exceed ``hot_rows_fraction`` of the row's active **columns**, a column when they
exceed ``hot_cols_fraction`` of the active **rows** (pysimdamicm swapped the two).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.core.geometry import AmplifierGeometry
from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Float
from waders.core.parameters import Param

from ..monitor import MEResult, MonitorElement, NotApplicable, product, row_median_mad

__all__ = ["MEDefectsMask", "MEMaskedPixels"]


class MEDefectsMask(MonitorElement):
    """Hot-pixel candidates per image (count) and, over the run, the mask of hot pixels, rows and columns.

    The run mask is written to ``mask_runNNN.fits``; ``value`` is the number of candidates.
    """

    order: ClassVar[int] = 100
    unit: ClassVar[str] = "pixels"
    title: ClassVar[str] = "hot-pixel candidates"
    ylabel: ClassVar[str] = "candidates"

    image = Param("mean_compressed_pedestal_subtracted", doc="image product (ADU)")
    n_mad = Param(3.0, Float(min=0), doc="candidate above the row's overscan median + n_mad MAD (unscaled)")
    q_max_adu = Param(100.0, Float(), doc="candidates are at most this charge (ADU)")
    hot_pixel_fraction = Param(0.4, Float(min=0, max=1), doc="hot: candidate in more than this fraction of images")
    hot_rows_fraction = Param(0.2, Float(min=0, max=1), doc="mask a row whose hot pixels exceed this fraction")
    hot_cols_fraction = Param(0.2, Float(min=0, max=1), doc="mask a column whose hot pixels exceed this fraction")

    def candidates(self, amplifier: Amplifier) -> np.ndarray:
        """Boolean map (amplifier shape, readout order) of the candidates of one image."""
        data = product(amplifier, self.image)
        geometry = amplifier.geometry
        rows, cols = geometry.region("active")
        if geometry.overscan_cols:
            reference = data[rows, geometry.overscan]
        else:
            reference = data[rows, cols]
        median, mad, _ = row_median_mad(reference, axis=1)
        active = data[rows, cols]
        with np.errstate(invalid="ignore"):
            flagged = (active > (median + self.n_mad * mad)[:, None]) & (active <= self.q_max_adu)
        out = np.zeros(geometry.shape, dtype=bool)
        out[rows, cols] = flagged
        return out

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        if not amplifier.geometry.region("active")[1].stop:
            raise NotApplicable("no active region")
        flagged = self.candidates(amplifier)
        count = float(flagged.sum())
        return MEResult(count, math.sqrt(max(count, 1.0)), extra={"candidates": flagged})

    def run_mask(self, frequency: np.ndarray, geometry: AmplifierGeometry) -> np.ndarray:
        """Mask (True = masked) from the fraction of images in which each pixel was a candidate."""
        hot = frequency > self.hot_pixel_fraction
        rows, cols = geometry.region("active")
        n_rows = max(1, rows.stop - rows.start)
        n_cols = max(1, cols.stop - cols.start)
        mask = hot.copy()
        hot_rows = hot[:, cols].sum(axis=1) > self.hot_rows_fraction * n_cols
        hot_cols = hot[rows, :].sum(axis=0) > self.hot_cols_fraction * n_rows
        mask[hot_rows, cols] = True
        mask[rows, hot_cols] = True
        return mask


class MEMaskedPixels(MEDefectsMask):
    """Legacy name (2021) of MEDefectsMask: hot-pixel candidates and the run mask."""
