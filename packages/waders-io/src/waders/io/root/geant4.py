"""Reading Geant4 (DAMICG4) output files into :class:`~waders.core.hits.HitCollection` objects.

Layout (pysimdamicm reference C.2):

* ``CCDOut``, one entry per Geant4 event: ``EventID`` and the per-hit arrays
  ``CCDid``, ``pdg``, ``posx``, ``posy``, ``posz`` (mm, local CCD frame, z from
  the back of the sensor), ``time`` (s) and ``Edep`` (eV);
* ``EventOut`` (optional), one entry per event: ``EventID`` and per-primary
  arrays ``posx``, ``posy``, ``posz``, ``momx``, ``momy``, ``momz``, ``energy``;
* ``RunInfo`` (optional), one entry: ``NEvts``, ``NCCDs``, ``Seed``, strings such
  as ``primaryParticle`` and per-volume arrays.

Per-hit arrays may be ``std::vector`` branches (what DAMICG4 writes) or counted
arrays ``posx[nposx]`` (what uproot writes, see :mod:`.geant4_writer`); uproot
reads both as ``var * T``.

Files with millions of events are read in chunks of at most ``step_size`` events
(:func:`iter_geant4`); primaries are looked up by ``EventID`` for each chunk,
reading only the ``EventOut`` entries it needs, in windows of at most
``step_size`` entries (the ``EventOut.EventID`` column itself is held in memory:
8 bytes per event).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from waders.core.detector import Detector
from waders.core.errors import InputFileError
from waders.core.hits import HitCollection

from ._files import counter_of, list_trees, open_root, require_branches, require_tree

__all__ = [
    "CCD_TREE",
    "EVENT_TREE",
    "HIT_BRANCHES",
    "PRIMARY_BRANCHES",
    "RUN_TREE",
    "count_geant4_events",
    "iter_geant4",
    "read_geant4",
    "read_run_info",
]

log = logging.getLogger(__name__)

CCD_TREE = "CCDOut"
EVENT_TREE = "EventOut"
RUN_TREE = "RunInfo"
#: CCDOut per-hit branch -> HitCollection field.
HIT_BRANCHES: dict[str, str] = {
    "CCDid": "ccd",
    "pdg": "pdg",
    "posx": "x",
    "posy": "y",
    "posz": "z",
    "time": "time",
    "Edep": "edep",
}
#: EventOut per-primary branches read when present (names kept in ``HitCollection.primaries``).
PRIMARY_BRANCHES = ("posx", "posy", "posz", "momx", "momy", "momz", "energy")
_INTEGER_FIELDS = ("ccd", "pdg")
#: Default number of events per chunk.
STEP_SIZE = 100_000


def _is_number(kind: ak.types.Type) -> bool:
    return isinstance(kind, ak.types.NumpyType) and np.dtype(kind.primitive).kind in "iufb"


def _check_types(path: Path, tree: Any, names: list[str], per_hit: list[str]) -> None:
    """Raise :class:`InputFileError` if branches cannot be read as numbers (per hit where required)."""
    for name in names:
        try:
            kind = tree[name].array(entry_start=0, entry_stop=0, library="ak").type.content
        except Exception as err:  # uproot cannot interpret the branch
            raise InputFileError(f"{path}: cannot read branch {tree.name}.{name} ({err})") from None
        inner = kind.content if isinstance(kind, ak.types.ListType) else None
        if name in per_hit and (inner is None or not _is_number(inner)):
            raise InputFileError(
                f"{path}: branch {tree.name}.{name} has type {kind}, expected one number per hit",
                hint="write it as std::vector<double> or a counted array",
            )
        if not (_is_number(kind) or (inner is not None and _is_number(inner))):
            raise InputFileError(f"{path}: branch {tree.name}.{name} has type {kind}, expected numbers")


def _first_values(values: ak.Array) -> np.ndarray:
    """Event ids from a scalar or a replicated per-hit EventID branch (-1 for an empty event)."""
    if values.ndim > 1:
        values = ak.fill_none(ak.firsts(values), -1)
    return ak.to_numpy(values).astype(np.int64)


def read_run_info(path: str | Path) -> dict[str, Any]:
    """Read the RunInfo tree's single entry as a dict (empty if the file has no RunInfo).

    Counter branches of counted arrays are left out; branches uproot cannot
    interpret are skipped (logged at debug level).
    """
    with open_root(path) as file:
        return _run_info(file)


def _run_info(file: Any) -> dict[str, Any]:
    if RUN_TREE not in list_trees(file):
        return {}
    tree = file[RUN_TREE]
    info: dict[str, Any] = {}
    if tree.num_entries == 0:
        return info
    counters = {counter_of(branch) for branch in tree.branches}
    for branch in tree.branches:
        name = branch.name
        if name in counters:
            continue
        try:
            values = tree[name].array(entry_stop=1, library="ak")
        except Exception as err:  # an unusual class uproot cannot deserialise
            log.debug("RunInfo branch %s skipped: %s", name, err)
            continue
        info[name] = ak.to_list(values)[0]
    return info


class _Primaries:
    """EventOut entries looked up by EventID; reads windows of at most ``step_size`` entries."""

    def __init__(self, tree: Any, branches: list[str], step_size: int) -> None:
        self.tree = tree
        self.branches = branches
        self.step_size = step_size
        ids = _first_values(tree["EventID"].array(library="ak"))
        self.order = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[self.order]
        self.empty = self._normalise(tree.arrays(branches, entry_start=0, entry_stop=0, library="ak"))

    def _normalise(self, data: ak.Array) -> dict[str, ak.Array]:
        fields = {}
        for name in self.branches:
            values = data[name]
            if values.ndim == 1:  # one primary per event stored as a scalar
                values = ak.unflatten(values, np.ones(len(values), dtype=np.int64))
            fields[name] = ak.values_astype(values, np.float64)
        return fields

    def _gather(self, entries: np.ndarray) -> dict[str, ak.Array]:
        """Rows ``entries`` (sorted, unique) of EventOut, reading one window of entries at a time."""
        parts: list[dict[str, ak.Array]] = []
        windows = np.unique(entries // self.step_size)
        for window in windows:
            start = int(window) * self.step_size
            stop = min(start + self.step_size, self.tree.num_entries)
            wanted = entries[(entries >= start) & (entries < stop)] - start
            data = self.tree.arrays(self.branches, entry_start=start, entry_stop=stop, library="ak")
            parts.append(self._normalise(data[wanted]))
        return {name: ak.concatenate([part[name] for part in parts]) for name in self.branches}

    def lookup(self, event_id: np.ndarray) -> ak.Array:
        """Primaries of each event of ``event_id`` (empty lists for events not in EventOut)."""
        n_ids = len(self.sorted_ids)
        pos = np.minimum(np.searchsorted(self.sorted_ids, event_id), max(n_ids - 1, 0))
        found = self.sorted_ids[pos] == event_id if n_ids else np.zeros(len(event_id), dtype=bool)
        entries = self.order[pos[found]]
        unique, inverse = np.unique(entries, return_inverse=True)
        rows = self._gather(unique) if len(unique) else {name: self.empty[name] for name in self.branches}
        n_rows = len(unique)
        take = np.full(len(event_id), n_rows, dtype=np.int64)
        take[found] = inverse
        fields: dict[str, Any] = {"event_id": event_id}
        for name in self.branches:
            empty_row = ak.unflatten(ak.flatten(self.empty[name]), np.zeros(1, dtype=np.int64))
            fields[name] = ak.concatenate([rows[name], empty_row])[take]
        return ak.zip(fields, depth_limit=1)


class _Reader:
    """A validated Geant4 file: which trees and branches to read."""

    def __init__(self, path: str | Path, detector: Detector | None) -> None:
        self.path = Path(path)
        self.detector = detector if detector is not None else Detector()
        with open_root(self.path) as file:
            tree = require_tree(file, self.path, CCD_TREE)
            require_branches(tree, self.path, ["EventID", *HIT_BRANCHES])
            _check_types(self.path, tree, ["EventID", *HIT_BRANCHES], list(HIT_BRANCHES))
            self.num_entries = tree.num_entries
            self.primary_branches: list[str] | None = None
            if EVENT_TREE in list_trees(file):
                events = file[EVENT_TREE]
                require_branches(events, self.path, ["EventID"])
                present = set(events.keys())
                self.primary_branches = [name for name in PRIMARY_BRANCHES if name in present]
                _check_types(self.path, events, ["EventID", *self.primary_branches], [])
            self.run_info = _run_info(file)

    def collection(self, chunk: ak.Array, primaries: _Primaries | None) -> HitCollection:
        """Convert one chunk of CCDOut entries."""
        event_id = _first_values(chunk["EventID"])
        n_hits = ak.num(chunk["Edep"], axis=1)
        fields: dict[str, Any] = {"event_id": event_id}
        for branch, name in HIT_BRANCHES.items():
            values = chunk[branch]
            bad = ak.to_numpy(ak.num(values, axis=1) != n_hits)
            if bad.any():
                raise InputFileError(
                    f"{self.path}: tree {CCD_TREE} event {event_id[bad.argmax()]} has {branch} and Edep "
                    "of different lengths",
                    hint="every per-hit branch needs one value per hit",
                )
            values = ak.values_astype(values, np.int32 if name in _INTEGER_FIELDS else np.float64)
            fields[name] = values
        if self.detector.invert_ccd_z_values:
            fields["z"] = self.detector.ccd_thickness - fields["z"]
        events = ak.zip(fields, depth_limit=1)
        prim = primaries.lookup(event_id) if primaries is not None else None
        return HitCollection(events, prim, dict(self.run_info))

    def primaries(self, file: Any, step_size: int) -> _Primaries | None:
        if self.primary_branches is None:
            return None
        return _Primaries(file[EVENT_TREE], self.primary_branches, step_size)


def _step(step_size: int) -> int:
    step = int(step_size)
    if step < 1:
        raise ValueError(f"step_size must be at least 1, not {step_size!r}")
    return step


def count_geant4_events(path: str | Path) -> int:
    """Count the events (CCDOut entries) of a Geant4 file.

    Raises
    ------
    InputFileError
        If the file is missing, not a ROOT file or has no CCDOut tree.
    """
    with open_root(path) as file:
        return require_tree(file, path, CCD_TREE).num_entries


def iter_geant4(
    path: str | Path,
    *,
    step_size: int = STEP_SIZE,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    detector: Detector | None = None,
) -> Iterator[HitCollection]:
    """Read a Geant4 file in chunks of at most ``step_size`` events.

    Parameters
    ----------
    path : path
        DAMICG4 output file.
    step_size : int
        Maximum number of events per chunk (bounds the memory used).
    entry_start, entry_stop : int, optional
        Range of CCDOut entries (events) to read, as in uproot.
    detector : Detector, optional
        Detector constants (default ``Detector()``): if ``invert_ccd_z_values``,
        the depth is ``z = ccd_thickness - posz`` (mm).

    Returns
    -------
    iterator of HitCollection
        One collection per chunk, with every event of the chunk (also events
        without hits), positions in mm, time in s, energy in eV, the primaries of
        each event (if the file has EventOut; empty lists for events missing
        there) and the RunInfo entry as ``run_info``.

    Raises
    ------
    InputFileError
        Immediately, if the file is missing, not a ROOT file, or lacks the CCDOut
        tree or one of its branches.
    """
    step = _step(step_size)
    reader = _Reader(path, detector)
    return _chunks(reader, step, entry_start, entry_stop)


def _chunks(reader: _Reader, step: int, entry_start: int | None, entry_stop: int | None) -> Iterator[HitCollection]:
    with open_root(reader.path) as file:
        tree = file[CCD_TREE]
        primaries = reader.primaries(file, step)
        for chunk in tree.iterate(
            ["EventID", *HIT_BRANCHES], step_size=step, entry_start=entry_start, entry_stop=entry_stop, library="ak"
        ):
            yield reader.collection(chunk, primaries)


def read_geant4(
    path: str | Path,
    *,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    detector: Detector | None = None,
) -> HitCollection:
    """Read the events of a (small) Geant4 file at once; see :func:`iter_geant4`."""
    reader = _Reader(path, detector)
    with open_root(reader.path) as file:
        data = file[CCD_TREE].arrays(
            ["EventID", *HIT_BRANCHES], entry_start=entry_start, entry_stop=entry_stop, library="ak"
        )
        return reader.collection(data, reader.primaries(file, STEP_SIZE))
