"""METempShift and the pysimdamicm monitor-element names that do not exist.

METempShift reports a temperature read from a header keyword of every image (the
keyword must be configured: waders never invents slow-control values, unlike pysimdamicm,
whose documents held random temperatures and pressures).  The other classes only let
pysimdamicm's DQM file load: their sections are accepted while inactive, and activating
one is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Optional, Str
from waders.core.parameters import Param

from ..monitor import MEResult, MonitorElement, NotApplicable, UnavailableMonitor

__all__ = [
    "MEBaselineShift",
    "MEHorizontalClusters",
    "MENoisyImages",
    "MEPoorQualityData",
    "MESigmaCutoffNoise",
    "METempShift",
]


class METempShift(MonitorElement):
    """Temperature of every image from a header keyword (``keyword``), to follow its drift over a run."""

    order: ClassVar[int] = 110
    per_amplifier: ClassVar[bool] = True
    unit: ClassVar[str] = "K"
    title: ClassVar[str] = "temperature"
    ylabel: ClassVar[str] = "temperature"

    keyword = Param(None, Optional(Str()), doc="header keyword holding the temperature (e.g. 'TEMPA'); required")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        if not self.keyword:
            raise NotApplicable("no temperature keyword configured (METempShift.keyword)")
        header = {**image.header, **(amplifier.header if amplifier is not None else {})}
        if self.keyword not in header:
            raise NotApplicable(f"header keyword {self.keyword} is missing")
        try:
            return MEResult(float(header[self.keyword]))
        except (TypeError, ValueError):
            raise NotApplicable(f"header keyword {self.keyword} is not a number: {header[self.keyword]!r}") from None


class MEBaselineShift(UnavailableMonitor):
    """Not available: baseline shifts (never implemented in pysimdamicm)."""


class MEHorizontalClusters(UnavailableMonitor):
    """Not available: horizontal clusters (never implemented in pysimdamicm)."""


class MENoisyImages(UnavailableMonitor):
    """Not available: noisy images (never implemented in pysimdamicm); use MEOVSPedestalSigma with qt_valid_range."""

    reason: ClassVar[str] = (
        "it was never implemented in pysimdamicm; use MEOVSPedestalSigma with qt_valid_range instead"
    )


class MESigmaCutoffNoise(UnavailableMonitor):
    """Not available: noise sigma cut-off (never implemented in pysimdamicm)."""


class MEPoorQualityData(UnavailableMonitor):
    """Not available: poor-quality data (never implemented in pysimdamicm); the run status says it."""

    reason: ClassVar[str] = "it was never implemented in pysimdamicm; the status of the run summary says it"
