"""ContinuousReadout: charge collected while the CCD is being read is displaced along the columns (spec C.5).

During continuous readout the rows keep moving towards the serial register.  A charge
collected at time t therefore appears ``floor((t - t0) / pixel_read_time)`` pixels further
along the column axis (rows, y) than where it was collected: y ← y + shift·pitch_y.

It moves the carriers (``data.carriers["y"]``, each with the time of its deposit) when
Diffusion ran before, else the deposits themselves (``data.flat_hits()["y"]`` and a new
:class:`~waders.core.hits.HitCollection` in ``data.hits``; the caller's collection is not
modified).  A quotient within 1e-9 (relative) below an integer counts as that integer, so
t = k·pixel_read_time shifts by exactly k pixels.  Charge pushed beyond the CCD is counted
by PixelizeSignal.  ``data.results["ContinuousReadout"]["max_shift_pixels"]`` records the
largest shift.

Deliberate differences from pysimdamicm: the process works (pysimdamicm's version raised on
configuration, read a missing class attribute and an undefined axis name, and would have
added a shift in pixels to a coordinate in mm); the reference time ``t0`` is a parameter
(0 s by default, pysimdamicm's hard-coded value); ``ampli`` is accepted and, as in
pysimdamicm, unused.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from waders.core import Param
from waders.core.hits import HitCollection
from waders.core.kinds import Float, Int
from waders.core.lazy import lazy_module
from waders.core.pipeline import RunContext

from .base import SimProcess
from .events import SimEvents
from .pixelize import snapped_floor

ak = lazy_module("awkward")

__all__ = ["ContinuousReadout"]


class ContinuousReadout(SimProcess):
    """Displace charge along the columns by the number of pixels read since t0."""

    name: ClassVar[str] = "ContinuousReadout"
    order: ClassVar[int] = 20

    pixel_read_time = Param(0.001, Float(min=0), unit="s/pixel", doc="time to read one pixel (0: no displacement)")
    ampli = Param(4, Int(min=1), doc="number of amplifiers (accepted; unused, as in pysimdamicm)")
    t0 = Param(0.0, Float(), unit="s", doc="time at which the readout starts")

    def shift(self, time: np.ndarray) -> np.ndarray:
        """Displacement in pixels of charge collected at ``time`` (s)."""
        return snapped_floor((np.asarray(time, dtype=np.float64) - self.t0) / self.pixel_read_time)

    def run(self, data: SimEvents, context: RunContext) -> None:
        if self.pixel_read_time <= 0:
            return
        flat = data.flat_hits()
        pitch = data.detector.ccd_pixel_size_y
        shift_hit = self.shift(flat["time"]) if flat["time"].size else np.zeros(0, dtype=np.int64)
        if data.carriers is not None:
            carriers = data.carriers
            hit = carriers["hit"]
            carriers["y"] = carriers["y"] + shift_hit[hit] * pitch
            moved = shift_hit[hit]
        else:
            new_y = flat["y"] + shift_hit * pitch
            flat["y"] = new_y
            hits = data.hits
            events = ak.with_field(hits.events, ak.unflatten(new_y, hits.n_hits), "y")
            data.hits = HitCollection(events, hits.primaries, dict(hits.run_info))
            moved = shift_hit
        data.results[self.name] = {"max_shift_pixels": int(np.max(np.abs(moved))) if moved.size else 0}
