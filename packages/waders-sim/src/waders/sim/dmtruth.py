"""Truth of ``waders dm`` events in the clusters trees: ``Edep_MCT``, ``posx_MCT``, ``posy_MCT``, ``posz_MCT``.

pysimdamicm's ``dmSKImg`` wrote, for every reconstructed cluster, the generated deposit of
its event (spec B.10, C.15): ``Edep_MCT`` (keV), ``posx_MCT``, ``posy_MCT``, ``posz_MCT``
(mm), one list per cluster (``vector<vector<double>>``).  :func:`simulate_dm
<waders.sim.darkmatter.simulate_dm>` hands the generated events to the simulation
(``SimOptions.truth``) and every cluster of ``clustersRec``/``clustersTrue`` gets the
deposits of its Geant4 event: one list per cluster (one element, the single deposit of a
DM event), counted by ``N_MCT`` in the default layout.  ``posx_MCT``/``posy_MCT`` are the
CCD coordinates of the deposit (x along the columns, y along the rows, mm) and ``posz_MCT``
its depth as in ``<stem>_dm_events.csv`` (mm from the collecting surface), the frame of the
simulation processes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from waders.core.errors import DataError
from waders.core.lazy import lazy_module

ak = lazy_module("awkward")

__all__ = ["TRUTH_GROUP", "truth_lists"]

#: Name of the list group (count branch ``N_MCT``).
TRUTH_GROUP = "MCT"

#: Branch -> (column of the generated events, factor): energies in keV, positions in mm.
_BRANCHES = {"Edep_MCT": ("energy", 1e-3), "posx_MCT": ("x", 1.0), "posy_MCT": ("y", 1.0), "posz_MCT": ("z", 1.0)}


def truth_lists(events: Mapping[str, np.ndarray], cluster_events: ak.Array) -> dict[str, ak.Array]:
    """The truth list group of the clusters of some tree entries.

    Parameters
    ----------
    events : mapping of ndarray
        Generated events (:func:`~waders.sim.darkmatter.generate_dm_events`): ``event``,
        ``energy`` (eV), ``x``, ``y``, ``z`` (mm), one deposit per event.
    cluster_events : ak.Array
        Geant4 event id of every cluster, ``entries * var``.

    Returns
    -------
    dict
        ``{"MCT": entries * var * var * {Edep_MCT, posx_MCT, posy_MCT, posz_MCT}}``.

    Raises
    ------
    DataError
        If a cluster belongs to an event that was not generated.
    """
    ids = np.asarray(events["event"], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    flat = ak.to_numpy(ak.flatten(cluster_events)).astype(np.int64)
    position = np.searchsorted(ids[order], flat)
    position = np.minimum(position, max(ids.size - 1, 0))
    if ids.size == 0 or not np.array_equal(ids[order][position], flat):
        raise DataError("dm truth: clusters of events that were not generated")
    index = order[position]
    ones = np.ones(flat.size, dtype=np.int64)  # one deposit per DM event
    fields = {
        name: ak.unflatten(np.asarray(events[column], dtype=np.float64)[index] * factor, ones)
        for name, (column, factor) in _BRANCHES.items()
    }
    return {TRUTH_GROUP: ak.unflatten(ak.zip(fields, depth_limit=2), ak.num(cluster_events))}
