"""Cluster quantities of pysimdamicm (its ``Cluster`` object), computed for all clusters at once.

Shared by the analysis (``waders.ana.clusters``) and the simulation
(``waders.sim.reconstruction``): it lives in waders-io, next to the ROOT layout of the
``clustersRec`` tree, so that waders-sim needs no waders-ana (numpy and awkward only).

Pixels are passed *grouped*: flat per-pixel arrays where cluster ``k`` owns the
``counts[k]`` pixels starting at ``offsets[k] = counts[:k].sum()``.  Every quantity is a
segmented reduction (:func:`numpy.ufunc.reduceat`) over these groups: there is no loop
over clusters or pixels.

Conventions (pysimdamicm's branch names, see the reference B.10):

* coordinates are **1-based** file coordinates: ``pixels_x`` = column + 1,
  ``pixels_y`` = row + 1; energies are in keV (electrons x e2eV / 1000);
* for an axis ``A`` (``X``, ``Y``; simulation may add ``Z``): ``meanA``, ``minA``,
  ``maxA``; ``RMSA`` = mean of ``a**2`` (a *mean square*, kept for compatibility);
  ``DA = maxA - minA + 1``; ``PosA`` = energy-weighted mean; ``STD_A`` = population
  standard deviation; ``wSTD_A = sqrt(sum E (a - PosA)^2 / sum E)`` (the correct
  energy-weighted spread); ``dwSTD_A = wSTD_A / sqrt(Npix)`` (pysimdamicm's legacy
  ``sqrt(sum w (a - PosA)^2 / n)`` with ``w = E / sum E``);
* ``STD_XY = sqrt(STD_X^2 + STD_Y^2)``, ``wSTD_XY = sqrt((wSTD_X^2 + wSTD_Y^2) / 2)``;
* ``Qmax`` = largest pixel energy; ``QmaxX``/``QmaxY`` its coordinates (first pixel in
  the cluster's pixel order, which is row-major in file coordinates).

The result is an awkward Array (:func:`clusters_array`): one record per cluster with
scalar fields and per-pixel list fields whose names start with ``pixels_``
(``var * {Energy: float64, ..., pixels_x: var * int32, pixels_y: var * int32,
pixels_z: var * float64, pixels_E: var * float64, ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from waders.core.lazy import lazy_module

ak = lazy_module("awkward")

__all__ = [
    "PIXEL_FIELDS",
    "Groups",
    "axis_quantities",
    "cluster_quantities",
    "clusters_array",
    "pixel_field_names",
    "seed_quantities",
]

#: Per-pixel list fields always present (data: ``pixels_z`` is -1).
PIXEL_FIELDS = ("pixels_x", "pixels_y", "pixels_z", "pixels_E")


class Groups:
    """Segmented reductions over grouped per-pixel arrays.

    Parameters
    ----------
    counts : numpy.ndarray of int
        Number of pixels of every cluster (all > 0).
    """

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        if np.any(self.counts <= 0):
            raise ValueError("every cluster needs at least one pixel")
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.starts = self.offsets[:-1]
        self.n = self.counts.size
        #: Cluster index of every pixel.
        self.index = np.repeat(np.arange(self.n), self.counts)

    def _reduce(self, ufunc: np.ufunc, values: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        if self.n == 0:
            return np.zeros(0, dtype=dtype)
        return ufunc.reduceat(values, self.starts)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum per cluster."""
        return self._reduce(np.add, values)

    def min(self, values: np.ndarray) -> np.ndarray:
        """Minimum per cluster."""
        return self._reduce(np.minimum, values)

    def max(self, values: np.ndarray) -> np.ndarray:
        """Maximum per cluster."""
        return self._reduce(np.maximum, values)

    def any(self, flags: np.ndarray) -> np.ndarray:
        """Logical OR per cluster."""
        return self._reduce(np.logical_or, np.asarray(flags, dtype=bool), bool).astype(bool)

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Mean per cluster."""
        return self.sum(values) / self.counts

    def first_argmax(self, values: np.ndarray) -> np.ndarray:
        """Index (into the flat arrays) of the first maximum of every cluster."""
        if self.n == 0:
            return np.zeros(0, dtype=np.int64)
        top = self.max(values)[self.index]
        candidates = np.where(values == top, np.arange(values.size), values.size)
        return np.minimum.reduceat(candidates, self.starts)


def axis_quantities(groups: Groups, name: str, coord: np.ndarray, energy: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of one coordinate axis (``name`` = ``"X"``, ``"Y"``, ...) for every cluster.

    Parameters
    ----------
    groups : Groups
        Pixel grouping.
    name : str
        Axis suffix of the output names.
    coord : numpy.ndarray
        Coordinate of every pixel (1-based pixels, or mm for a depth).
    energy : numpy.ndarray
        Energy of every pixel (any unit; only ratios are used).

    Returns
    -------
    dict
        ``meanA, minA, maxA, RMSA, DA, PosA, STD_A, dwSTD_A, wSTD_A`` (float64 arrays).
    """
    coord = np.asarray(coord, dtype=np.float64)
    total = groups.sum(energy)
    mean = groups.mean(coord)
    low, high = groups.min(coord), groups.max(coord)
    pos = groups.sum(energy * coord) / total
    centred = coord - mean[groups.index]
    weighted = coord - pos[groups.index]
    wvar = groups.sum(energy * weighted * weighted) / total
    return {
        f"mean{name}": mean,
        f"min{name}": low,
        f"max{name}": high,
        f"RMS{name}": groups.mean(coord * coord),
        f"D{name}": high - low + 1.0,
        f"Pos{name}": pos,
        f"STD_{name}": np.sqrt(groups.mean(centred * centred)),
        f"dwSTD_{name}": np.sqrt(wvar / groups.counts),
        f"wSTD_{name}": np.sqrt(wvar),
    }


def cluster_quantities(
    groups: Groups, coordinates: Mapping[str, np.ndarray], energy_kev: np.ndarray
) -> dict[str, np.ndarray]:
    """Every geometric and charge quantity of B.10 for every cluster.

    Parameters
    ----------
    groups : Groups
        Pixel grouping.
    coordinates : mapping
        Axis name -> per-pixel coordinate; ``"X"`` and ``"Y"`` (1-based pixels) at least.
    energy_kev : numpy.ndarray
        Pixel energies (keV, > 0).

    Returns
    -------
    dict
        ``Npix, Energy, Qmax, Qmax<A>, STD_XY, wSTD_XY`` and :func:`axis_quantities` of every axis.
    """
    energy_kev = np.asarray(energy_kev, dtype=np.float64)
    out: dict[str, np.ndarray] = {
        "Npix": groups.counts.astype(np.int32),
        "Energy": groups.sum(energy_kev),
    }
    for name, coord in coordinates.items():
        out.update(axis_quantities(groups, name, coord, energy_kev))
    out["STD_XY"] = np.sqrt(out["STD_X"] ** 2 + out["STD_Y"] ** 2)
    out["wSTD_XY"] = np.sqrt((out["wSTD_X"] ** 2 + out["wSTD_Y"] ** 2) / 2.0)
    first = groups.first_argmax(energy_kev)
    out["Qmax"] = energy_kev[first] if groups.n else np.zeros(0)
    for name, coord in coordinates.items():
        out[f"Qmax{name}"] = np.asarray(coord, dtype=np.float64)[first] if groups.n else np.zeros(0)
    return out


def seed_quantities(
    groups: Groups,
    energy_kev: np.ndarray,
    seeds: np.ndarray,
    sigma_kev: np.ndarray,
    q_seed_kev: np.ndarray,
) -> dict[str, np.ndarray]:
    """Seed information of every cluster (data only).

    Parameters
    ----------
    groups : Groups
        Pixel grouping.
    energy_kev : numpy.ndarray
        Pixel energies (keV).
    seeds : numpy.ndarray of bool
        Seed flag of every pixel (``q >= q_seed``).
    sigma_kev, q_seed_kev : numpy.ndarray
        Noise sigma and seed cut of every *cluster* (keV; NaN when not in sigmas).

    Returns
    -------
    dict
        ``sigma_seed_eV`` (eV), ``qmin_cluster_seed`` (keV), ``has_seed`` (bool),
        ``seed_nsig_min``, ``seed_nsig_max``, ``seed_nsig_delta`` (pixel energy in sigmas).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        nsig = np.asarray(energy_kev, dtype=np.float64) / np.asarray(sigma_kev)[groups.index]
    low, high = groups.min(nsig), groups.max(nsig)
    return {
        "sigma_seed_eV": np.asarray(sigma_kev, dtype=np.float64) * 1000.0,
        "qmin_cluster_seed": np.asarray(q_seed_kev, dtype=np.float64),
        "has_seed": groups.any(seeds),
        "seed_nsig_min": low,
        "seed_nsig_max": high,
        "seed_nsig_delta": high - low,
    }


def clusters_array(scalars: Mapping[str, np.ndarray], pixels: Mapping[str, np.ndarray], counts: np.ndarray) -> ak.Array:
    """Build the awkward Array of clusters: one record per cluster.

    Parameters
    ----------
    scalars : mapping
        Field name -> 1-D array with one value per cluster.
    pixels : mapping
        Field name -> flat per-pixel array (grouped by cluster); becomes ``var * T``.
    counts : numpy.ndarray of int
        Pixels per cluster.

    Returns
    -------
    ak.Array
        ``N * {scalars..., pixels...: var * T}``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    offsets = ak.index.Index64(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    contents, names = [], []
    for name, values in scalars.items():
        values = np.ascontiguousarray(values)
        if values.shape != counts.shape:
            raise ValueError(f"cluster field {name!r} has {values.shape} values for {counts.size} clusters")
        contents.append(ak.contents.NumpyArray(values))
        names.append(name)
    for name, values in pixels.items():
        values = np.ascontiguousarray(values)
        if values.size != int(offsets.data[-1]):
            raise ValueError(f"pixel field {name!r} has {values.size} values for {int(offsets.data[-1])} pixels")
        contents.append(ak.contents.ListOffsetArray(offsets, ak.contents.NumpyArray(values)))
        names.append(name)
    return ak.Array(ak.contents.RecordArray(contents, names, length=counts.size))


def pixel_field_names(clusters: ak.Array) -> list[str]:
    """Names of the per-pixel list fields of a clusters array (those starting with ``pixels_``)."""
    return [name for name in clusters.fields if name.startswith("pixels_")]
