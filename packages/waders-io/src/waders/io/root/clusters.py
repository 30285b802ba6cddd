"""Cluster trees (``clustersRec``, ``clustersTrue``) and ``pixelizedEvent``, with pysimdamicm branch names.

One entry per image (analysis, id branch ``RUNID``) or per Geant4 event
(simulation, id branch ``event``).  Branches of an entry:

* ``RUNID``/``event`` (int32) and ``Nclusters`` (int32, number of clusters);
* one counted array ``X[Nclusters]`` per per-cluster quantity ``X`` (``Energy``,
  ``Npix``, ``PosX``, ``has_seed``, ``ccd``, ...; see the pysimdamicm branch
  dictionary), one element per cluster;
* per-pixel quantities (``pixels_x``, ``pixels_y``, ``pixels_E``, ...), one list
  per cluster, **flattened per entry** into counted arrays ``pixels_x[Npixels]``
  with the per-entry counter ``Npixels`` (total pixels of the entry); the
  per-cluster ``Npix[Nclusters]`` gives the split: the first ``Npix[0]`` values
  belong to cluster 0, the next ``Npix[1]`` to cluster 1, and so on;
* other per-cluster lists of a group ``G`` (e.g. ``projectionX`` and
  ``projectionX_cols``) likewise: ``N_G[Nclusters]`` per cluster and
  ``projectionX[N_G_total]`` per entry.

**Deliberate difference from pysimdamicm**: pysimdamicm wrote per-pixel quantities
as ``vector<vector<T>>`` (one inner vector per cluster).  uproot cannot write
doubly-jagged TTree branches, so waders writes them flattened as above.  ROOT
macros that loop over ``pixels_E[i][j]`` must index ``pixels_E[offset_i + j]``
with ``offset_i = Npix[0] + ... + Npix[i-1]``; ``TTree::Draw("pixels_E")``,
``Draw("Energy")`` and every per-cluster branch work unchanged.
:func:`read_clusters` rebuilds the nested lists.

``pixelizedEvent`` uses the same layout with one "cluster" per Geant4 hit
collection (event, CCD, time window): ``count_branch="Ncollections"``, per
collection ``ccd`` and ``Npix``, and the pixel arrays (``pixels_x``,
``pixels_Edep``, ...) counted by ``Npixels``.  (pysimdamicm kept only the last
collection's ``ccd`` and ``Npix``.)

Booleans are stored as int32 (``/I``), floats as float64 (``/D``); see
:mod:`waders.io.root._columns`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from waders.core.errors import DataError, InputFileError

from ._files import counter_of, open_root, require_branches, require_tree
from .records import MAX_ITEMS, RecordsTreeWriter

__all__ = [
    "CLUSTER_COUNTER",
    "PIXELS",
    "PIXEL_COUNT",
    "PIXEL_COUNTER",
    "ClustersTreeWriter",
    "read_clusters",
    "write_clusters_tree",
]

#: Per-entry counter of clusters.
CLUSTER_COUNTER = "Nclusters"
#: Name of the per-pixel group (field of the cluster records returned by :func:`read_clusters`).
PIXELS = "pixels"
#: Per-cluster branch: number of pixels of each cluster.
PIXEL_COUNT = "Npix"
#: Per-entry counter of the flattened pixel arrays.
PIXEL_COUNTER = "Npixels"
#: Default maximum number of entries per basket (pixels are bounded by ``MAX_ITEMS``).
MAX_ENTRIES = 50_000

_TOTAL = re.compile(r"N_(.+)_total")


def group_branches(group: str) -> tuple[str, str]:
    """(per-cluster count branch, per-entry counter branch) of a list group."""
    return (PIXEL_COUNT, PIXEL_COUNTER) if group == PIXELS else (f"N_{group}", f"N_{group}_total")


def _fields(name: str, values: Any, depth: int) -> dict[str, ak.Array]:
    """Split a record array (or mapping of arrays) into ``{field: array}`` with ``depth`` list levels."""
    if isinstance(values, Mapping):
        arrays = {str(key): ak.Array(value) for key, value in values.items()}
    else:
        array = values if isinstance(values, ak.Array) else ak.Array(values)
        if not array.fields:
            raise DataError(f"{name} must be a record array or a mapping of field name to array")
        arrays = {key: array[key] for key in array.fields}
    for key, array in arrays.items():
        if array.ndim != depth + 1:
            wanted = " * ".join(["entries"] + ["var"] * depth)
            raise DataError(f"{name} field '{key}' has {array.ndim} dimensions, expected {wanted} * value")
    return arrays


class ClustersTreeWriter:
    """Append entries (images or events) to a cluster tree.

    Parameters
    ----------
    file : uproot.WritableDirectory
        Output file (see :func:`waders.io.root.open_output`).
    name : str
        Tree name (``"clustersRec"``, ``"clustersTrue"``, ``"pixelizedEvent"``).
    id_branch : str
        Entry id branch: ``"RUNID"`` (analysis) or ``"event"`` (simulation).
    count_branch : str
        Per-entry number of clusters: ``"Nclusters"`` (``"Ncollections"`` for
        ``pixelizedEvent``).
    title : str
        Tree title.
    max_entries, max_items : int
        Largest basket written at once, in entries and in array elements.
    """

    def __init__(
        self,
        file: Any,
        name: str,
        *,
        id_branch: str = "RUNID",
        count_branch: str = CLUSTER_COUNTER,
        title: str = "",
        max_entries: int = MAX_ENTRIES,
        max_items: int = MAX_ITEMS,
    ) -> None:
        self.name = name
        self.id_branch = id_branch
        self.count_branch = count_branch
        self._writer = RecordsTreeWriter(file, name, title=title, max_entries=max_entries, max_items=max_items)
        self._counters = self._writer.counters

    @property
    def num_entries(self) -> int:
        """Entries written so far."""
        return self._writer.num_entries

    def _columns(self, ids: Any, clusters: Any, pixels: Any, lists: Mapping[str, Any]) -> dict[str, Any]:
        ids = np.asarray(ids)
        if ids.size == 0:
            ids = ids.reshape(0).astype(np.int32)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise DataError(f"tree {self.name}: {self.id_branch} must be a 1-D array of integers")
        if len(ids) and (ids.min() < np.iinfo(np.int32).min or ids.max() > np.iinfo(np.int32).max):
            raise DataError(f"tree {self.name}: {self.id_branch} values do not fit in int32")
        per_cluster = {} if clusters is None else _fields(f"tree {self.name}: clusters", clusters, 1)
        groups = {PIXELS: pixels, **lists} if pixels is not None else dict(lists)
        groups = {group: _fields(f"tree {self.name}: {group}", values, 2) for group, values in groups.items()}
        n_clusters = None
        for key, array in [*per_cluster.items(), *(next(iter(g.items())) for g in groups.values())]:
            counts = ak.to_numpy(ak.num(array, axis=1))
            if n_clusters is None:
                n_clusters = counts
            elif not np.array_equal(counts, n_clusters):
                raise DataError(f"tree {self.name}: '{key}' has a different number of clusters than the other fields")
        if n_clusters is None:
            raise DataError(f"tree {self.name}: no cluster fields to write")
        if len(n_clusters) != len(ids):
            raise DataError(f"tree {self.name}: {len(ids)} ids but {len(n_clusters)} entries of clusters")
        columns: dict[str, Any] = {self.id_branch: ids.astype(np.int32), self.count_branch: n_clusters.astype(np.int32)}
        clash = sorted(set(per_cluster) & set(columns))
        if clash:
            raise DataError(f"tree {self.name}: branch names used twice: {', '.join(clash)}")
        columns.update(per_cluster)
        for key in per_cluster:
            self._counters[key] = self.count_branch
        for group, values in groups.items():
            self._add_group(columns, group, values)
        return columns

    def _add_group(self, columns: dict[str, Any], group: str, arrays: dict[str, ak.Array]) -> None:
        count_name, total_name = group_branches(group)
        first = next(iter(arrays.values()))
        per_cluster = ak.values_astype(ak.num(first, axis=2), np.int32)
        for key, array in arrays.items():
            if not ak.all(ak.num(array, axis=2) == per_cluster):
                raise DataError(f"tree {self.name}: {group} field '{key}' has lists of a different length")
        if count_name in columns:
            given = columns[count_name]
            if not ak.all(ak.values_astype(given, np.int64) == per_cluster):
                raise DataError(
                    f"tree {self.name}: cluster field '{count_name}' disagrees with the number of {group} entries"
                )
        else:
            columns[count_name] = per_cluster
            self._counters[count_name] = self.count_branch
        clash = sorted((set(arrays) | {total_name}) & set(columns))
        if clash:
            raise DataError(f"tree {self.name}: branch names used twice: {', '.join(clash)}")
        columns[total_name] = ak.to_numpy(ak.sum(per_cluster, axis=1)).astype(np.int32)
        for key, array in arrays.items():
            columns[key] = ak.flatten(array, axis=2)
            self._counters[key] = total_name

    def extend(
        self,
        ids: Any,
        clusters: Any,
        pixels: Any = None,
        lists: Mapping[str, Any] | None = None,
    ) -> None:
        """Append entries.

        Parameters
        ----------
        ids : array of int
            Entry ids (run id per image, or event id), one per entry.
        clusters : ak.Array or mapping
            Per-cluster quantities: ``entries * var * {Energy, Npix, PosX, ...}``
            (one list of clusters per entry; an empty list for an image without
            clusters), or a mapping of branch name to ``entries * var * T``.
        pixels : ak.Array or mapping, optional
            Per-pixel quantities: ``entries * var * var * {pixels_x, pixels_y,
            pixels_E, ...}`` (per entry, per cluster, per pixel).  ``Npix`` is
            added to the cluster branches (or checked, if given).
        lists : mapping of str to ak.Array, optional
            Other per-cluster list groups, ``{G: entries * var * var * {...}}``,
            written with counters ``N_G`` (per cluster) and ``N_G_total``.

        Raises
        ------
        DataError
            If the arrays are inconsistent, cannot be stored, or differ in their
            branches from the first call.
        """
        self._writer.extend(self._columns(ids, clusters, pixels, lists or {}))


def write_clusters_tree(
    file: Any,
    name: str,
    ids: Any,
    clusters: Any,
    pixels: Any = None,
    *,
    lists: Mapping[str, Any] | None = None,
    id_branch: str = "RUNID",
    count_branch: str = CLUSTER_COUNTER,
    title: str = "",
) -> None:
    """Write a whole cluster tree at once (see :class:`ClustersTreeWriter`).

    Examples
    --------
    >>> clusters = ak.Array([[{"Energy": 1.2, "ccd": 1}], []])
    >>> pixels = ak.Array([[[{"pixels_x": 3, "pixels_y": 4, "pixels_E": 1.2}]], []])
    >>> with open_output("clusters.root") as out:  # doctest: +SKIP
    ...     write_clusters_tree(out, "clustersRec", [7, 8], clusters, pixels)
    """
    writer = ClustersTreeWriter(file, name, id_branch=id_branch, count_branch=count_branch, title=title)
    writer.extend(ids, clusters, pixels, lists)


def _zip(fields: Mapping[str, ak.Array], depth: int, length: int) -> ak.Array:
    if fields:
        return ak.zip(dict(fields), depth_limit=depth)
    return ak.Array(ak.contents.RecordArray([], [], length=length))


def read_clusters(
    path: str | Path,
    tree: str = "clustersRec",
    *,
    count_branch: str = CLUSTER_COUNTER,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> ak.Array:
    """Read a cluster tree back into nested records.

    Parameters
    ----------
    path : path
        ROOT file.
    tree : str
        Tree name.
    count_branch : str
        Per-entry cluster counter (``"Ncollections"`` for ``pixelizedEvent``).
    entry_start, entry_stop : int, optional
        Range of entries to read.

    Returns
    -------
    ak.Array
        One record per entry with the entry-level branches (e.g. ``RUNID``) and
        ``clusters``: a list of cluster records holding the per-cluster branches
        and, per list group, a nested list of records (``pixels`` for the pixel
        branches).  Counter branches (``Nclusters``, ``Npixels``, ...) are left out:
        they are the list lengths.

    Raises
    ------
    InputFileError
        If the file or tree is missing, or the counters are inconsistent.
    """
    with open_root(path) as file:
        ttree = require_tree(file, path, tree)
        require_branches(ttree, path, [count_branch])
        counters = {branch.name: counter_of(branch) for branch in ttree.branches}
        data = ttree.arrays(entry_start=entry_start, entry_stop=entry_stop, library="ak")
    used_counters = set(counters.values()) - {None}
    per_cluster = {key: data[key] for key, counter in counters.items() if counter == count_branch}
    groups: dict[str, dict[str, ak.Array]] = {}
    for key, counter in counters.items():
        if counter in (None, count_branch):
            continue
        match = _TOTAL.fullmatch(counter)
        group = PIXELS if counter == PIXEL_COUNTER else match.group(1) if match else None
        if group is not None and group_branches(group)[0] in per_cluster:
            groups.setdefault(group, {})[key] = data[key]
    n_clusters = ak.to_numpy(data[count_branch])
    total_clusters = int(n_clusters.sum())
    cluster_fields = dict(per_cluster)
    for group, arrays in groups.items():
        count_name, total_name = group_branches(group)
        counts = per_cluster[count_name]
        if not ak.all(ak.sum(counts, axis=1) == data[total_name]):
            raise InputFileError(
                f"{path}: tree {tree}: {count_name} does not add up to {total_name}", hint="the file is inconsistent"
            )
        flat_counts = ak.to_numpy(ak.flatten(counts))
        nested = {
            key: ak.unflatten(ak.unflatten(ak.flatten(array), flat_counts), n_clusters) for key, array in arrays.items()
        }
        cluster_fields[group] = _zip(nested, 3, total_clusters)
    entry = {
        key: data[key]
        for key, counter in counters.items()
        if counter is None and key not in used_counters | {count_branch}
    }
    entry.update(
        {
            key: data[key]
            for key, counter in counters.items()
            if counter not in (None, count_branch) and not any(key in arrays for arrays in groups.values())
        }
    )
    clusters = _zip(cluster_fields, 2, total_clusters) if cluster_fields else None
    if clusters is None:
        clusters = ak.unflatten(_zip({}, 1, total_clusters), n_clusters)
    entry["clusters"] = clusters
    return ak.zip(entry, depth_limit=1)
