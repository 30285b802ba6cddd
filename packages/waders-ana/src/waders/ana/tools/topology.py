"""Cluster topology: per-cluster shape quantities, a shape class and stacked energy maps.

The successor of pysimdamicm's ``cluster_topology`` (reference E.5), which drew 2-D
energy-topology maps of the seeded clusters of ``clustersRec`` files.  Everything is
computed at once for all clusters from flat pixel arrays (``counts`` pixels per cluster,
pixel columns ``x``, rows ``y`` and energies ``E``):

* ``npix``, ``energy`` (sum of ``E``), extents ``nx``/``ny`` (columns/rows spanned);
* energy-weighted centroid ``mean_x``/``mean_y`` and spreads ``sigma_x``/``sigma_y``;
* the eigenvalues of the energy-weighted covariance: ``sigma_major``/``sigma_minor`` and
  ``elongation = sigma_major / sigma_minor`` (infinite for a straight line, 1 for a disc);
  ``angle`` of the major axis (degrees from the x axis, in (-90, 90]);
* ``shape``: ``point`` (one pixel), ``horizontal`` (one row, ``nx >= min_length``),
  ``vertical`` (one column, ``ny >= min_length``), ``track`` (``elongation >= track_elongation``
  and ``max(nx, ny) >= min_length``) and ``blob`` for the rest.

:func:`topology_map` stacks the energy of the clusters on a ``(2 pady + 1) x (2 padx + 1)``
window centred on each cluster's brightest pixel (what pysimdamicm drew per cluster, here
summed and normalised to the number of clusters).
"""

from __future__ import annotations

import numpy as np

from waders.core.errors import ConfigError, DataError

__all__ = ["SHAPES", "cluster_shapes", "topology_map"]

#: Shape classes, in the order of their integer code.
SHAPES = ("point", "horizontal", "vertical", "track", "blob")


def _groups(counts: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    if (counts < 0).any():
        raise DataError("cluster topology: negative pixel counts")
    total = int(counts.sum())
    for a in arrays:
        if np.shape(a) != (total,):
            raise DataError(f"cluster topology: {total} pixels expected from the counts, got an array of {np.shape(a)}")
    return np.repeat(np.arange(counts.size), counts)


def cluster_shapes(
    counts: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    energy: np.ndarray,
    *,
    min_length: int = 3,
    track_elongation: float = 3.0,
) -> dict[str, np.ndarray]:
    """Shape quantities and class of every cluster.

    Parameters
    ----------
    counts : ndarray of int
        Pixels of every cluster.
    x, y : ndarray
        Column and row of every pixel (any origin; pixels).
    energy : ndarray
        Energy of every pixel (any unit; weights must be non-negative, negatives count as 0).
    min_length : int
        Smallest extent (pixels) of a line or a track.
    track_elongation : float
        Smallest ``sigma_major / sigma_minor`` of a track.

    Returns
    -------
    dict of ndarray
        One value per cluster: ``npix``, ``energy``, ``nx``, ``ny``, ``mean_x``, ``mean_y``,
        ``sigma_x``, ``sigma_y``, ``sigma_major``, ``sigma_minor``, ``elongation``, ``angle``,
        ``shape_code`` (index into :data:`SHAPES`) and ``shape`` (names).
    """
    if min_length < 2 or track_elongation <= 1:
        raise ConfigError("cluster topology: min_length must be >= 2 and track_elongation > 1")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64)
    owner = _groups(counts, x, y, e)
    n = int(np.size(counts))
    npix = np.bincount(owner, minlength=n)
    total = np.bincount(owner, weights=e, minlength=n)
    w = np.clip(e, 0.0, None)
    wsum = np.bincount(owner, weights=w, minlength=n)
    # clusters without positive energy: geometric (unweighted) moments
    flat = wsum[owner] <= 0
    w = np.where(flat, 1.0, w)
    wsum = np.bincount(owner, weights=w, minlength=n)
    safe = np.where(wsum > 0, wsum, 1.0)
    mx = np.bincount(owner, weights=w * x, minlength=n) / safe
    my = np.bincount(owner, weights=w * y, minlength=n) / safe
    dx, dy = x - mx[owner], y - my[owner]
    cxx = np.bincount(owner, weights=w * dx * dx, minlength=n) / safe
    cyy = np.bincount(owner, weights=w * dy * dy, minlength=n) / safe
    cxy = np.bincount(owner, weights=w * dx * dy, minlength=n) / safe
    half_trace = 0.5 * (cxx + cyy)
    root = np.sqrt(np.maximum(0.25 * (cxx - cyy) ** 2 + cxy**2, 0.0))
    major = np.sqrt(np.maximum(half_trace + root, 0.0))
    minor = np.sqrt(np.maximum(half_trace - root, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        elongation = np.where(major > 0, major / minor, 1.0)
    angle = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy))
    angle = np.where(angle <= -90, angle + 180, angle)
    big = np.iinfo(np.int64).max
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    xmin = np.full(n, big)
    np.minimum.at(xmin, owner, xi)
    xmax = np.full(n, -big)
    np.maximum.at(xmax, owner, xi)
    ymin = np.full(n, big)
    np.minimum.at(ymin, owner, yi)
    ymax = np.full(n, -big)
    np.maximum.at(ymax, owner, yi)
    nx = np.where(npix > 0, xmax - xmin + 1, 0)
    ny = np.where(npix > 0, ymax - ymin + 1, 0)
    code = np.full(n, SHAPES.index("blob"), dtype=np.int8)
    code[(elongation >= track_elongation) & (np.maximum(nx, ny) >= min_length)] = SHAPES.index("track")
    code[(nx == 1) & (ny >= min_length)] = SHAPES.index("vertical")
    code[(ny == 1) & (nx >= min_length)] = SHAPES.index("horizontal")
    code[npix == 1] = SHAPES.index("point")
    return {
        "npix": npix,
        "energy": total,
        "nx": nx,
        "ny": ny,
        "mean_x": mx,
        "mean_y": my,
        "sigma_x": np.sqrt(cxx),
        "sigma_y": np.sqrt(cyy),
        "sigma_major": major,
        "sigma_minor": minor,
        "elongation": elongation,
        "angle": angle,
        "shape_code": code,
        "shape": np.array(SHAPES, dtype=object)[code],
    }


def topology_map(
    counts: np.ndarray, x: np.ndarray, y: np.ndarray, energy: np.ndarray, *, padx: int = 5, pady: int = 5
) -> tuple[np.ndarray, int]:
    """Mean energy map of clusters aligned on their brightest pixel.

    Parameters
    ----------
    counts, x, y, energy : ndarray
        As :func:`cluster_shapes` (integer pixel coordinates).
    padx, pady : int
        Half widths of the window (columns, rows).

    Returns
    -------
    (ndarray of shape (2 pady + 1, 2 padx + 1), int)
        Energy per window pixel summed over the clusters and divided by their number
        (pixels outside the window are left out), and the number of clusters.
    """
    if padx < 0 or pady < 0:
        raise ConfigError(f"cluster topology: padx and pady must be >= 0 (got {padx}, {pady})")
    e = np.asarray(energy, dtype=np.float64)
    owner = _groups(counts, x, y, e)
    n = int(np.size(counts))
    out = np.zeros((2 * pady + 1, 2 * padx + 1))
    if n == 0 or e.size == 0:
        return out, 0
    order = np.lexsort((-e, owner))  # per cluster, brightest pixel first
    first = np.ones(e.size, dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    seed = np.full(n, -1, dtype=np.int64)
    seed[owner[order][first]] = order[first]
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    col = xi - xi[seed[owner]] + padx
    row = yi - yi[seed[owner]] + pady
    inside = (col >= 0) & (col <= 2 * padx) & (row >= 0) & (row <= 2 * pady)
    np.add.at(out, (row[inside], col[inside]), e[inside])
    n_clusters = int((np.asarray(counts) > 0).sum())
    return out / max(n_clusters, 1), n_clusters
