"""Geant4 hit collections: energy deposits per event, as awkward arrays.

A :class:`HitCollection` holds one record per Geant4 event: the event id and the
jagged lists of its hits (CCD id, particle code, local position, time, deposited
energy).  Units are internal (mm, eV, s); ``z`` is the depth measured from the
collecting surface once the reader has applied the detector's convention.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from waders.core.lazy import lazy_module

from .errors import DataError

ak = lazy_module("awkward")

__all__ = ["HIT_FIELDS", "HitCollection"]

#: Per-hit fields of a hit collection and their meaning (internal units).
HIT_FIELDS: dict[str, str] = {
    "ccd": "CCD id of the hit",
    "pdg": "PDG code of the particle that deposited the energy",
    "x": "local x position (mm), along the serial register (columns)",
    "y": "local y position (mm), along the columns (rows)",
    "z": "depth from the collecting surface (mm)",
    "time": "global time of the hit (s)",
    "edep": "deposited energy (eV)",
}


@dataclass
class HitCollection:
    """Energy deposits of a set of Geant4 events.

    Parameters
    ----------
    events : ak.Array
        One record per event with field ``event_id`` and the jagged per-hit fields
        of :data:`HIT_FIELDS`.
    primaries : ak.Array, optional
        Primary particles per event (EventOut tree), aligned with ``events``.
    run_info : dict
        Run metadata (RunInfo tree).
    """

    events: ak.Array
    primaries: ak.Array | None = None
    run_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [name for name in ("event_id", *HIT_FIELDS) if name not in self.events.fields]
        if missing:
            raise DataError(f"hit collection lacks the fields {', '.join(missing)}")

    @classmethod
    def from_arrays(
        cls,
        event_id: np.ndarray,
        counts: np.ndarray,
        hits: Mapping[str, np.ndarray],
        **kwargs: Any,
    ) -> HitCollection:
        """Build a collection from flat per-hit arrays and the number of hits per event.

        Parameters
        ----------
        event_id : array of int
            Event ids, one per event.
        counts : array of int
            Number of hits of each event.
        hits : mapping
            Flat arrays (length ``sum(counts)``) for every field of :data:`HIT_FIELDS`.
        """
        counts = np.asarray(counts, dtype=np.int64)
        if len(counts) != len(event_id):
            raise DataError("event_id and counts must have the same length")
        columns = {}
        for name in HIT_FIELDS:
            if name not in hits:
                raise DataError(f"missing hit field '{name}'")
            flat = np.asarray(hits[name])
            if len(flat) != counts.sum():
                raise DataError(f"hit field '{name}' has {len(flat)} entries, expected {counts.sum()}")
            columns[name] = ak.unflatten(flat, counts)
        events = ak.zip({"event_id": np.asarray(event_id, dtype=np.int64), **columns}, depth_limit=1)
        return cls(events, **kwargs)

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        n_hits = int(ak.sum(ak.num(self.events.edep, axis=1))) if len(self.events) else 0
        primaries = "with" if self.primaries is not None else "without"
        return f"<HitCollection: {len(self)} events, {n_hits} hits, {primaries} primaries>"

    @property
    def event_id(self) -> np.ndarray:
        """Event ids (one per event)."""
        return ak.to_numpy(self.events.event_id)

    @property
    def n_hits(self) -> np.ndarray:
        """Number of hits of each event."""
        return ak.to_numpy(ak.num(self.events.edep, axis=1))

    def total_energy(self) -> np.ndarray:
        """Sum of deposited energy per event (eV)."""
        return ak.to_numpy(ak.sum(self.events.edep, axis=1))

    def __getitem__(self, selection: Any) -> HitCollection:
        primaries = self.primaries[selection] if self.primaries is not None else None
        return HitCollection(self.events[selection], primaries, dict(self.run_info))

    def chunks(self, size: int) -> Iterator[HitCollection]:
        """Yield consecutive sub-collections of at most ``size`` events."""
        step = max(1, int(size))
        for start in range(0, len(self), step):
            yield self[start : start + step]
