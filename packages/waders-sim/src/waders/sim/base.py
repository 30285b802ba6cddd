"""Base class of simulation processes."""

from __future__ import annotations

from typing import Any, ClassVar

from waders.core import Process
from waders.core.pipeline import RunContext

from .events import SimEvents

__all__ = ["SimProcess"]


class SimProcess(Process):
    """A detector-response step: reads and extends a :class:`~waders.sim.events.SimEvents` chunk.

    Simulation processes run in their default ``order`` (pysimdamicm's sequence ids:
    Diffusion 10, ContinuousReadout 20, PixelizeSignal 30, DarkCurrent 40,
    ElectronicNoise 50, PixelSaturation 55, PasteClusterProcess 60, CreateFitsImage 200,
    ClusterFinder 500).
    """

    domain: ClassVar[str] = "sim"

    def run(self, data: SimEvents, context: RunContext) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{self.name} must implement run()")

    def finish(self, context: RunContext) -> dict[str, Any]:
        """Called once after the last chunk (write pending images, ...); returns outputs written."""
        return {}
