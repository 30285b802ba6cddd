"""Pixel-charge distributions of the active region and of the overscan (reference D.4, 40-41).

Histograms are filled on fixed bins (``x_min``, ``x_max``, ``bin_width`` in e-), the same
for every image and run, so they can be summed and compared with a Kolmogorov-Smirnov
test; ``x`` are the bin centres and ``y`` the counts.  The overscan distribution uses the
pedestal-subtracted image (pysimdamicm used the raw mean image) and the active one is
computed whether or not the amplifier has an overscan (pysimdamicm skipped it).
MEOverscanPCDMu and MEOverscanPCDSigma fit a Gaussian to the overscan distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.core.errors import ConfigError
from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Float, Int
from waders.core.parameters import Param

from ..monitor import (
    MAD_TO_SIGMA,
    MEDIAN_EFF,
    MEResult,
    MonitorElement,
    NotApplicable,
    cached,
    in_electrons,
    region_values,
    tolerance,
)
from .charge import MAD_REL_ERR

__all__ = ["MEOVSPCD", "MEPCD", "MEOVSPCDMu", "MEOVSPCDSigma", "MEOverscanPCDMu", "MEOverscanPCDSigma"]

_IMAGE_E = "mean_compressed_pedestal_subtracted_e"


def _values(
    image: SkipperImage, amplifier: Amplifier, summary: Mapping[str, Any], name: str, region: str
) -> np.ndarray:
    def compute() -> np.ndarray:
        values, _, _ = region_values(amplifier, in_electrons(amplifier, name, summary), region)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise NotApplicable(f"no finite pixel in the {region} region")
        return values

    return cached(image, ("values", amplifier.name, name, region), compute)


class _PCD(MonitorElement):
    kind: ClassVar[str] = "distribution"
    unit: ClassVar[str] = "e-"
    xlabel: ClassVar[str] = "pixel charge (e-)"
    ylabel: ClassVar[str] = "pixels"
    region: ClassVar[str] = "active"

    image = Param(_IMAGE_E, doc="image product (divided by the gain unless its name ends in _e)")
    x_min = Param(-2.0, Float(), doc="lower edge of the histogram (e-)")
    x_max = Param(10.0, Float(), doc="upper edge of the histogram (e-)")
    bin_width = Param(0.02, Float(min=1e-6), doc="bin width (e-); pysimdamicm's 0.02 e-")

    ignored_keys: ClassVar[dict[str, str]] = {"do_histogram": "the distribution is always a histogram on fixed bins"}

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if self.x_max <= self.x_min:
            raise ConfigError(f"{self.name}: x_max must be above x_min")
        if (self.x_max - self.x_min) / self.bin_width > 1_000_000:
            raise ConfigError(f"{self.name}: more than a million bins", hint="increase bin_width")

    def edges(self) -> np.ndarray:
        """Bin edges (e-)."""
        n = max(1, round((self.x_max - self.x_min) / self.bin_width))
        return self.x_min + self.bin_width * np.arange(n + 1)

    def selected(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier) -> np.ndarray:
        """The pixel values (e-) the histogram is filled with."""
        return _values(image, amplifier, summary, self.image, self.region)

    def histogram(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin centres and counts."""
        edges = self.edges()
        counts, _ = np.histogram(values, bins=edges)
        return 0.5 * (edges[1:] + edges[:-1]), counts.astype(np.float64)


class MEPCD(_PCD):
    """Pixel-charge distribution of the active region (e-), pixels below the minimum + threshold.

    ``value`` is the mean charge of those pixels (e-/pixel).
    """

    order: ClassVar[int] = 41
    title: ClassVar[str] = "pixel-charge distribution of the active region"
    threshold = Param(500.0, Float(min=0), doc="pixels above the minimum + threshold (e-) are left out")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        values = self.selected(image, summary, amplifier)
        values = values[values < values.min() + self.threshold]
        x, y = self.histogram(values)
        error = float(values.std() / math.sqrt(values.size)) if values.size > 1 else None
        return MEResult(float(values.mean()), error, x, y)


class MEOVSPCD(_PCD):
    """Pixel-charge distribution of the serial overscan (e-); ``value`` is its noise, 1.4826 MAD (e-)."""

    order: ClassVar[int] = 40
    region: ClassVar[str] = "overscan"
    title: ClassVar[str] = "pixel-charge distribution of the overscan"
    x_min = Param(-2.0, Float(), doc="lower edge of the histogram (e-)")
    x_max = Param(2.0, Float(), doc="upper edge of the histogram (e-)")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        values = self.selected(image, summary, amplifier)
        x, y = self.histogram(values)
        median = float(np.median(values))
        noise = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
        return MEResult(noise, MAD_REL_ERR * noise / math.sqrt(values.size), x, y)


class _OverscanGaussian(MonitorElement):
    """Gaussian fit of the overscan distribution (e-)."""

    unit: ClassVar[str] = "e-"
    quantity: ClassVar[str] = "mu"

    image = Param(_IMAGE_E, doc="image product (divided by the gain unless its name ends in _e)")
    window = Param(3.0, Float(min=0.5), doc="fit range: median +/- window robust sigmas")
    max_pixels = Param(1_000_000, Int(min=100), doc="at most this many pixels (a regular subset beyond)")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        def fit() -> Any:
            from waders.ana.fitting.gaussian import fit_gaussians

            values = _values(image, amplifier, summary, self.image, "overscan")
            if values.size > self.max_pixels:
                values = values[:: math.ceil(values.size / self.max_pixels)]
            return fit_gaussians(values.reshape(1, -1), window=self.window), values

        fits, values = cached(image, ("ovs_gauss", amplifier.name, self.image, self.window, self.max_pixels), fit)
        value = float(getattr(fits, self.quantity)[0])
        error = float(getattr(fits, f"{self.quantity}_err")[0])
        if not math.isfinite(value):  # a degenerate distribution: robust estimates
            median = float(np.median(values))
            sigma = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
            value = median if self.quantity == "mu" else sigma
            error = (MEDIAN_EFF if self.quantity == "mu" else MAD_REL_ERR) * sigma / math.sqrt(values.size)
        chi2 = float(fits.chi2_ndf[0])
        return MEResult(value, error, goodness=chi2 if math.isfinite(chi2) else None)


class MEOverscanPCDMu(_OverscanGaussian):
    """Centre of a Gaussian fitted to the overscan pixel-charge distribution (e-)."""

    order: ClassVar[int] = 42
    title: ClassVar[str] = "overscan distribution: Gaussian centre"
    ylabel: ClassVar[str] = "centre"
    qt_abs_tolerance = tolerance(0.02, "e-")


class MEOverscanPCDSigma(_OverscanGaussian):
    """Width of a Gaussian fitted to the overscan pixel-charge distribution (e-): the noise."""

    order: ClassVar[int] = 43
    quantity: ClassVar[str] = "sigma"
    title: ClassVar[str] = "overscan distribution: Gaussian width"
    ylabel: ClassVar[str] = "sigma"


class MEOVSPCDMu(MEOverscanPCDMu):
    """Centre of a Gaussian fitted to the overscan distribution (e-); pysimdamicm's unimplemented name."""


class MEOVSPCDSigma(MEOverscanPCDSigma):
    """Width of a Gaussian fitted to the overscan distribution (e-); pysimdamicm's unimplemented name."""
