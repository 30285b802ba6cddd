"""Grouping of candidate pixels into clusters (pysimdamicm's methods 0 and 1).

* Method 0: 8-connected component labelling of the candidate map
  (:func:`scipy.ndimage.label` with a 3 x 3 structure).
* Method 1: single linkage: two candidates belong to the same cluster if a chain of
  candidates joins them with steps of Euclidean length at most ``sqrt(2) * N``
  (``N = max_nearest_neighbor``).  ``N = 1`` is exactly 8-connectivity; ``N = 2``
  links pixels up to one empty pixel apart (the 5 x 5 neighbourhood).  The radius
  graph comes from a KD-tree (:meth:`scipy.spatial.cKDTree.query_pairs`) and its
  components from :func:`scipy.sparse.csgraph.connected_components`: memory grows
  with the number of linked pairs, never with the square of the number of candidates
  (pysimdamicm built the full distance matrix).

Clusters are numbered ``0 .. n-1`` in the order of their first pixel in row-major order
(pysimdamicm's discovery order) for both methods.
"""

from __future__ import annotations

import math

import numpy as np

from waders.core.errors import ConfigError
from waders.core.lazy import lazy_module

ndimage = lazy_module("scipy.ndimage")
spatial = lazy_module("scipy.spatial")

__all__ = ["EIGHT_CONNECTED", "keep_seeded", "label_candidates", "linking_radius"]

#: Structure of 8-connected labelling.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def linking_radius(max_nearest_neighbor: int) -> float:
    """Linking radius of method 1 in pixels: ``sqrt(2) * N + 1e-7`` (the margin makes the rule inclusive)."""
    return math.sqrt(2.0) * max_nearest_neighbor + 1e-7


def _first_appearance_order(labels: np.ndarray, n: int) -> np.ndarray:
    """Renumber labels ``0..n-1`` by the position of their first element."""
    first = np.full(n, labels.size, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(labels.size))
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n)
    return rank[labels]


def label_candidates(
    candidates: np.ndarray, method: int = 0, max_nearest_neighbor: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Group the candidate pixels of a 2-D map into clusters.

    Parameters
    ----------
    candidates : numpy.ndarray of bool, shape (rows, cols)
        True for candidate pixels.
    method : {0, 1}
        0: 8-connected components; 1: single linkage within ``sqrt(2) * max_nearest_neighbor``.
    max_nearest_neighbor : int
        N of method 1 (ignored by method 0).

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        Coordinates of the candidate pixels, in row-major order.
    labels : numpy.ndarray of int64
        Cluster index of every candidate, ``0 .. n-1`` in order of first appearance.
    n : int
        Number of clusters.
    """
    candidates = np.asarray(candidates, dtype=bool)
    if candidates.ndim != 2:
        raise ValueError("the candidate map must be 2-D")
    rows, cols = np.nonzero(candidates)
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy(), 0
    if method == 0:
        image, n = ndimage.label(candidates, structure=EIGHT_CONNECTED)
        labels = image[rows, cols].astype(np.int64) - 1  # ndimage numbers labels in raster order
        return rows, cols, labels, int(n)
    if method != 1:
        raise ConfigError(f"ClusterFinder: unknown clustering method {method} (use 0 or 1)")
    if max_nearest_neighbor < 1:
        raise ConfigError(f"ClusterFinder: max_nearest_neighbor must be >= 1, got {max_nearest_neighbor}")
    points = np.column_stack([rows, cols]).astype(np.float64)
    pairs = spatial.cKDTree(points).query_pairs(linking_radius(max_nearest_neighbor), output_type="ndarray")
    m = rows.size
    from scipy.sparse import coo_matrix  # method 1 only: scipy.sparse takes a noticeable time to import
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    n, labels = connected_components(graph, directed=False)
    return rows, cols, _first_appearance_order(labels.astype(np.int64), int(n)), int(n)


def keep_seeded(labels: np.ndarray, n: int, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Keep only the clusters that contain at least one seed pixel.

    Parameters
    ----------
    labels : numpy.ndarray of int
        Cluster index of every pixel (``0 .. n-1``).
    n : int
        Number of clusters.
    seeds : numpy.ndarray of bool
        Seed flag of every pixel.

    Returns
    -------
    keep : numpy.ndarray of bool
        Pixels of the kept clusters.
    labels : numpy.ndarray of int64
        New cluster index of the kept pixels (``0 .. kept-1``, order preserved).
    kept : int
        Number of kept clusters.
    """
    seeded = np.bincount(labels, weights=seeds.astype(np.float64), minlength=n) > 0
    new_index = np.cumsum(seeded) - 1
    keep = seeded[labels]
    return keep, new_index[labels[keep]].astype(np.int64), int(seeded.sum())
