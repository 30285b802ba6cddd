"""Image monitor elements (reference D.4, 70-73): pictures of every amplifier, plotted per image.

Large amplifiers are reduced by block means to at most ``max_pixels`` pixels for the
picture.  MECCDEqualizedImage is ``log10(q - min + 1)`` without pysimdamicm's random
jitter, so the same image always gives the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Int
from waders.core.parameters import Param

from ..monitor import MEResult, MonitorElement, product

__all__ = ["MECCDCalImage", "MECCDEqualizedImage", "MECCDMeanImage", "MECCDStdImage"]


def block_mean(data: np.ndarray, max_pixels: int) -> np.ndarray:
    """Reduce ``data`` by block means until it has at most ``max_pixels`` pixels."""
    factor = max(1, math.ceil(math.sqrt(data.size / max_pixels)))
    if factor == 1:
        return data
    rows, cols = (data.shape[0] // factor) * factor, (data.shape[1] // factor) * factor
    blocks = data[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
    with np.errstate(all="ignore"):
        return np.nanmean(blocks, axis=(1, 3)) if np.isnan(blocks).any() else blocks.mean(axis=(1, 3))


class _ImageME(MonitorElement):
    kind: ClassVar[str] = "image"
    unit: ClassVar[str] = "ADU"
    xlabel: ClassVar[str] = "column (readout order)"

    image = Param("mean_compressed_pedestal_subtracted", doc="image product drawn")
    max_pixels = Param(500_000, Int(min=1000), doc="largest picture (block means beyond)")

    def picture(self, data: np.ndarray) -> np.ndarray:
        """What is drawn, from the product."""
        return data

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        data = product(amplifier, self.image)
        return MEResult(image=block_mean(self.picture(data), self.max_pixels))


class MECCDEqualizedImage(_ImageME):
    """The pedestal-subtracted image on a logarithmic scale: log10(q - min + 1) (q in ADU)."""

    order: ClassVar[int] = 70
    unit: ClassVar[str] = ""
    colour_map: ClassVar[str] = "jet"
    title: ClassVar[str] = "equalised image"
    ylabel: ClassVar[str] = "log10(q - min + 1)"

    def picture(self, data: np.ndarray) -> np.ndarray:
        finite = data[np.isfinite(data)]
        low = float(finite.min()) if finite.size else 0.0
        return np.log10(data - low + 1.0)


class MECCDMeanImage(_ImageME):
    """The pedestal-subtracted image (ADU)."""

    order: ClassVar[int] = 71
    colour_map: ClassVar[str] = "YlOrRd_r"
    title: ClassVar[str] = "pedestal-subtracted image"
    ylabel: ClassVar[str] = "charge"


class MECCDStdImage(_ImageME):
    """The standard deviation of the skips of every pixel (ADU); needs a raw image compressed with std."""

    order: ClassVar[int] = 72
    colour_map: ClassVar[str] = "YlOrRd_r"
    title: ClassVar[str] = "skip standard deviation image"
    ylabel: ClassVar[str] = "std of the skips"
    image = Param("std_compressed", doc="image product drawn")


class MECCDCalImage(_ImageME):
    """The calibrated image (e-), colour range -0.5 .. 4.5 e-."""

    order: ClassVar[int] = 73
    unit: ClassVar[str] = "e-"
    colour_range: ClassVar[tuple[float, float] | None] = (-0.5, 4.5)
    title: ClassVar[str] = "calibrated image"
    ylabel: ClassVar[str] = "charge"
    image = Param("mean_compressed_pedestal_subtracted_e", doc="image product drawn")
