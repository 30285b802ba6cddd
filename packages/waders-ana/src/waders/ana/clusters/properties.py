"""Cluster quantities of the analysis: the shared kernels and the nearest-cluster search.

The per-cluster kernels (:class:`Groups`, :func:`cluster_quantities`,
:func:`clusters_array`, ...) live in :mod:`waders.io.clusters`, shared with the
simulation; they are re-exported here so that existing imports keep working.
:func:`closest_clusters` (a KD-tree, scipy) is analysis-only.
"""

from __future__ import annotations

import numpy as np

from waders.core.lazy import lazy_module
from waders.io.clusters import (
    PIXEL_FIELDS,
    Groups,
    axis_quantities,
    cluster_quantities,
    clusters_array,
    pixel_field_names,
    seed_quantities,
)

spatial = lazy_module("scipy.spatial")

__all__ = [
    "PIXEL_FIELDS",
    "Groups",
    "axis_quantities",
    "closest_clusters",
    "cluster_quantities",
    "clusters_array",
    "pixel_field_names",
    "seed_quantities",
]


def closest_clusters(
    pos_x: np.ndarray, pos_y: np.ndarray, seeded: np.ndarray, cluster_id: np.ndarray
) -> dict[str, np.ndarray]:
    """Nearest *other* seeded cluster of every seeded cluster (KD-tree on the PosX/PosY centres).

    A cluster is never its own neighbour, but two clusters at the same ``PosX`` or ``PosY``
    are neighbours (pysimdamicm excluded them).  Clusters without a seed, and a lone seeded
    cluster, get -1 everywhere.

    Parameters
    ----------
    pos_x, pos_y : numpy.ndarray
        Energy-weighted centres (pixels).
    seeded : numpy.ndarray of bool
        Which clusters take part.
    cluster_id : numpy.ndarray of int
        Ids reported for the neighbours.

    Returns
    -------
    dict
        ``closest_cls_dist``, ``closest_cls_dist_X``, ``closest_cls_dist_Y`` (pixels; the
        components are absolute differences) and ``closest_cls_id`` (int32).
    """
    n = len(pos_x)
    dist = np.full(n, -1.0)
    dist_x = np.full(n, -1.0)
    dist_y = np.full(n, -1.0)
    ids = np.full(n, -1, dtype=np.int32)
    members = np.flatnonzero(seeded)
    if members.size >= 2:
        points = np.column_stack([pos_x[members], pos_y[members]])
        tree = spatial.cKDTree(points, balanced_tree=False, compact_nodes=False)  # built in half the time
        _, neighbours = tree.query(points, k=2, workers=-1)  # queries are independent: threads
        own = np.arange(members.size)
        other = np.where(neighbours[:, 0] == own, neighbours[:, 1], neighbours[:, 0])
        partner = members[other]
        dx = np.abs(pos_x[partner] - pos_x[members])
        dy = np.abs(pos_y[partner] - pos_y[members])
        dist[members] = np.hypot(dx, dy)
        dist_x[members] = dx
        dist_y[members] = dy
        ids[members] = np.asarray(cluster_id)[partner]
    return {"closest_cls_dist": dist, "closest_cls_dist_X": dist_x, "closest_cls_dist_Y": dist_y, "closest_cls_id": ids}
