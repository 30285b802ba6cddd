"""Writing files in the Geant4 (DAMICG4) layout: the test-data generator of waders.

The trees are those :mod:`.geant4` reads: ``CCDOut`` (``EventID`` and per-hit
counted arrays ``CCDid[Nhits]``, ``pdg``, ``posx``, ``posy``, ``posz``, ``time``,
``Edep``), ``EventOut`` (``EventID`` and per-primary arrays counted by
``Nprimaries``) and ``RunInfo`` (one entry; strings as ``char*`` branches, arrays
with their own counters ``N_<name>``).  DAMICG4 itself writes ``std::vector``
branches, which uproot cannot write; both layouts read the same.

Units are those of the Geant4 files: mm, eV, s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from waders.core.detector import Detector
from waders.core.errors import DataError
from waders.core.hits import HitCollection

from .geant4 import CCD_TREE, EVENT_TREE, HIT_BRANCHES, RUN_TREE
from .output import open_output
from .records import MAX_ITEMS, RecordsTreeWriter

__all__ = ["HIT_COUNTER", "PRIMARY_COUNTER", "write_geant4"]

#: Counter shared by the per-hit branches of CCDOut.
HIT_COUNTER = "Nhits"
#: Counter shared by the per-primary branches of EventOut.
PRIMARY_COUNTER = "Nprimaries"
#: Events per basket.
MAX_EVENTS = 10_000


def _columns(data: Any, what: str) -> dict[str, Any]:
    if isinstance(data, Mapping):
        return {str(key): value for key, value in data.items()}
    array = data if isinstance(data, ak.Array) else ak.Array(data)
    if not array.fields:
        raise DataError(f"{what} must be a record array or a mapping of branch name to array")
    return {key: array[key] for key in array.fields}


def _hit_columns(hits: HitCollection, detector: Detector) -> dict[str, Any]:
    """CCDOut columns of a hit collection, undoing the reader's depth convention."""
    events = hits.events
    columns: dict[str, Any] = {"EventID": ak.to_numpy(events.event_id).astype(np.int32)}
    for branch, name in HIT_BRANCHES.items():
        values = events[name]
        if name == "z" and detector.invert_ccd_z_values:
            values = detector.ccd_thickness - values
        columns[branch] = ak.values_astype(values, np.int32) if name in ("ccd", "pdg") else values
    return columns


def _event_id_int32(columns: dict[str, Any]) -> dict[str, Any]:
    """Rename ``event_id`` to ``EventID`` and store it as int32 (C++ ``int`` in DAMICG4)."""
    if "event_id" in columns and "EventID" not in columns:
        columns = {("EventID" if key == "event_id" else key): value for key, value in columns.items()}
    if "EventID" in columns:
        ids = np.asarray(columns["EventID"])
        if ids.dtype.kind in "iu" and (ids.size == 0 or np.abs(ids).max() < 2**31):
            columns["EventID"] = ids.astype(np.int32)
    return columns


def write_geant4(
    path: str | Path,
    events: HitCollection | Mapping[str, Any] | ak.Array,
    primaries: Mapping[str, Any] | ak.Array | None = None,
    run_info: Mapping[str, Any] | None = None,
    *,
    detector: Detector | None = None,
    max_items: int = MAX_ITEMS,
) -> Path:
    """Write a Geant4-layout ROOT file (atomically).

    Parameters
    ----------
    path : path
        Output file.
    events : HitCollection, mapping or ak.Array
        A :class:`HitCollection` (its ``z`` is converted back to the Geant4 frame,
        ``posz = ccd_thickness - z``, when ``detector.invert_ccd_z_values``; its
        primaries and run info are written unless given here), or the CCDOut
        columns by branch name, written as given: ``EventID`` (one int per event)
        and per-hit ``var * T`` arrays ``CCDid``, ``pdg``, ``posx``, ``posy``,
        ``posz`` (mm), ``time`` (s), ``Edep`` (eV).  Columns may be left out or
        added (to make files for error tests).
    primaries : mapping or ak.Array, optional
        EventOut columns: ``EventID`` (or ``event_id``) and per-primary arrays
        ``posx`` ... ``energy``; no EventOut tree if None.
    run_info : mapping, optional
        RunInfo entry: name -> number, string or list of numbers; no RunInfo tree
        if None.
    detector : Detector, optional
        Depth convention for a :class:`HitCollection` (default ``Detector()``).
    max_items : int
        Most hits per basket (events are also limited to 10 000 per basket).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        If the columns cannot be stored (e.g. per-hit arrays of different lengths).
    """
    path = Path(path)
    if isinstance(events, HitCollection):
        hit_columns = _hit_columns(events, detector if detector is not None else Detector())
        if primaries is None and events.primaries is not None:
            primaries = events.primaries
        if run_info is None and events.run_info:
            run_info = events.run_info
    else:
        hit_columns = _event_id_int32(_columns(events, "events"))
    with open_output(path) as file:
        counters = {key: HIT_COUNTER for key in hit_columns if key != "EventID"}
        writer = RecordsTreeWriter(
            file, CCD_TREE, counters=counters, title=CCD_TREE, max_entries=MAX_EVENTS, max_items=max_items
        )
        writer.extend(hit_columns)
        if primaries is not None:
            columns = _event_id_int32(_columns(primaries, "primaries"))
            counters = {key: PRIMARY_COUNTER for key in columns if key != "EventID"}
            writer = RecordsTreeWriter(
                file, EVENT_TREE, counters=counters, title=EVENT_TREE, max_entries=MAX_EVENTS, max_items=max_items
            )
            writer.extend(columns)
        if run_info is not None:
            RecordsTreeWriter(file, RUN_TREE, title=RUN_TREE).extend(
                {key: _one_entry(value) for key, value in run_info.items()}
            )
    return path


def _one_entry(value: Any) -> Any:
    """Turn a RunInfo value into a one-entry column (lists become one array)."""
    if isinstance(value, list | tuple | np.ndarray):
        return ak.Array([list(np.asarray(value).tolist())]) if len(value) else ak.Array([[]])
    return value
