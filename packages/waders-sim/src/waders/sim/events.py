"""The container that flows through the simulation processes: one chunk of Geant4 events.

Everything is columnar (flat numpy arrays with an ``event`` index), so every process
works on all events of a chunk at once.  Stages, each filled by a process:

``hits``
    The Geant4 deposits (:class:`~waders.core.hits.HitCollection`), flattened by
    :meth:`SimEvents.flat_hits` into arrays ``event``, ``hit`` (index within the event),
    ``ccd``, ``pdg``, ``x``, ``y``, ``z`` (depth from the collecting surface), ``time``,
    ``edep`` (mm, eV, s).
``carriers``
    After Diffusion: one entry per electron, arrays ``event``, ``hit`` (flat hit index),
    ``x``, ``y`` (mm, after diffusion), ``sigma_xy`` (mm).  Without Diffusion,
    PixelizeSignal uses the hits themselves.
``pixels``
    After PixelizeSignal: one entry per (event, ccd, row, col) with signal, sorted by
    that key: ``event``, ``ccd``, ``row``, ``col`` (0-based pixel indices), ``edep``
    (eV), ``charge`` (e-), ``z`` (mm, mean depth), ``time`` (s, energy weighted),
    ``std_time``, ``pdg`` (most frequent), ``sigma_xy`` and 0/1 flags ``neutron``,
    ``gamma``, ``alpha``, ``ion``, ``electron``, ``silicon``.  Noise processes add
    ``noise`` (eV) to these pixels and append noise-only pixels (``edep`` 0, ``z``,
    ``time``, ``pdg`` = -1) above the reconstruction threshold.
``clusters``
    After reconstruction: awkward arrays of reconstructed (``clusters``) and true
    (``true_clusters``) clusters, one record per cluster with an ``event`` field.

Random numbers come from :attr:`SimEvents.rng` (a :class:`~waders.sim.random.CounterRNG`)
addressed by Geant4 event id, so results never depend on the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from waders.core.detector import Detector
from waders.core.hits import HIT_FIELDS, HitCollection
from waders.core.lazy import lazy_module

from .random import CounterRNG

ak = lazy_module("awkward")

__all__ = ["PIXEL_FIELDS", "SimEvents"]

#: Fields of :attr:`SimEvents.pixels` and their meaning.
PIXEL_FIELDS: dict[str, str] = {
    "event": "index of the event in the chunk",
    "ccd": "CCD id",
    "row": "row (0-based pixel index along y)",
    "col": "column (0-based pixel index along x)",
    "edep": "deposited energy in the pixel (eV)",
    "charge": "electrons collected in the pixel",
    "z": "mean depth of the charge (mm); -1 for noise-only pixels",
    "time": "energy-weighted time (s); -1 for noise-only pixels",
    "std_time": "standard deviation of the step times (s)",
    "pdg": "most frequent particle code; -1 for noise-only pixels",
    "sigma_xy": "mean diffusion sigma of the charge (mm)",
    "neutron": "1 if a neutron (2112) deposited here",
    "gamma": "1 if a photon (22) deposited here",
    "alpha": "1 if an alpha (1000020040) deposited here",
    "ion": "1 if an ion (pdg > 1e9) deposited here",
    "electron": "1 if an electron or positron deposited here",
    "silicon": "1 if a silicon recoil deposited here",
    "noise": "noise added to the pixel (eV): dark current and readout noise",
    "total_unclipped": "signal + noise before saturation (eV), with PixelSaturation",
    "saturated": "1 if the pixel was clipped at saturation",
    "paste_row": "row in the blank image where the pixel was pasted (-1: not pasted)",
    "paste_col": "column in the blank image where the pixel was pasted (-1: not pasted)",
    "paste_adu": "ADU pasted into the blank image",
    "paste_image": "index of the blank image the pixel was pasted into",
}


@dataclass
class SimEvents:
    """A chunk of events being simulated.

    Parameters
    ----------
    hits : HitCollection
        The Geant4 events of the chunk.
    rng : CounterRNG
        Counter-based random numbers (keys: Geant4 event ids).
    detector : Detector
        Detector constants (pixel size, thickness, e2eV, ...).
    """

    hits: HitCollection
    rng: CounterRNG
    detector: Detector = field(default_factory=Detector)
    carriers: dict[str, np.ndarray] | None = None
    pixels: dict[str, np.ndarray] | None = None
    clusters: ak.Array | None = None
    true_clusters: ak.Array | None = None
    killed: np.ndarray = field(default=None)  # type: ignore[assignment]
    counters: dict[str, int] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    provenance: Any = None
    _flat: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.killed is None:
            self.killed = np.zeros(len(self.hits), dtype=bool)

    @property
    def label(self) -> str:
        """Events of the chunk, for messages."""
        ids = self.event_ids
        return f"events {ids[0]}..{ids[-1]}" if len(ids) else "no events"

    @property
    def n_events(self) -> int:
        """Number of events in the chunk."""
        return len(self.hits)

    @property
    def event_ids(self) -> np.ndarray:
        """Geant4 event ids of the chunk (int64)."""
        return self.hits.event_id.astype(np.int64)

    def flat_hits(self) -> dict[str, np.ndarray]:
        """Hits as flat arrays with ``event`` (chunk index) and ``hit`` (index within the event)."""
        if self._flat is None:
            counts = self.hits.n_hits
            event = np.repeat(np.arange(len(counts)), counts)
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            flat = {"event": event, "hit": np.arange(event.size) - starts}
            for name in HIT_FIELDS:
                flat[name] = ak.to_numpy(ak.flatten(self.hits.events[name], axis=None))
            self._flat = flat
        return self._flat

    def set_pixels(self, pixels: dict[str, np.ndarray]) -> None:
        """Store pixels, sorted by (event, ccd, row, col)."""
        order = np.lexsort((pixels["col"], pixels["row"], pixels["ccd"], pixels["event"]))
        self.pixels = {k: np.asarray(v)[order] for k, v in pixels.items()}

    def kill(self, mask: np.ndarray, reason: str) -> None:
        """Mark events as dropped and count them under ``reason`` (reported, never silent)."""
        new = mask & ~self.killed
        if new.any():
            self.counters[reason] = self.counters.get(reason, 0) + int(new.sum())
        self.killed |= mask

    def count(self, reason: str, n: int) -> None:
        """Count something the user should hear about (hits outside the CCD, ...)."""
        if n:
            self.counters[reason] = self.counters.get(reason, 0) + int(n)
