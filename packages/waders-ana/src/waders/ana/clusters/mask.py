"""BuildClusterMask and ApplySelectionCuts: mask the pixels near clusters and flag hot rows/columns.

**BuildClusterMask** (pysimdamicm's B.11) masks, per amplifier, the neighbourhood of every
selected cluster: clusters with a seed, at least ``cluster_size_min`` pixels, an energy
above ``cluster_E_min`` (e-; waived below ``mask_below_threshold[1]`` when
``mask_below_threshold[0]`` is true) and extents ``DX >= cluster_DX_min``,
``DY >= cluster_DY_min``.  Around every pixel (row ``r``, column ``c``) of such a cluster
the closed box ``[r - N_row_pre, r + N_row_post] x [c - N_col_pre, c + N_col_post]``,
clipped to the amplifier, is masked; clusters of at most ``cluster_box_E_min`` e- get a
1-pixel box on every side.  With ``mask_cluster_column`` (``mask_cluster_row``) the
clusters above ``cluster_box_E_min`` mask instead the whole columns ``[c, c + N_col_post]``
(the whole row ``r``); with ``circular_mask``, every pixel within ``radius`` pixels of a
cluster pixel.  The boxes are painted at once with a 2-D difference array and cumulative
sums (no loop over clusters or pixels).

*Readout direction.*  Rows and columns here are those of the amplifier's image in
**readout order** (column 0 is read first).  ``pre`` is the side read before the pixel
and ``post`` the side read after it, so a trail of deferred charge (serial or vertical
charge transfer inefficiency) is covered by ``N_col_post``/``N_row_post`` for every
amplifier.  pysimdamicm worked in file coordinates and swapped pre and post for the
mirrored ``U`` amplifier; storing U in readout order makes that swap automatic.

Products per amplifier (bool, True = do not use, readout order):
``mask_clusters_only`` (outside the active region, or near a selected cluster) and
``mask_clusters`` (also the ``hot_rows`` and ``hot_cols``); with ``add_cluster_id``, the
float image ``mask_clusters_ids`` = ``cluster_id * 1e10 + q`` (q in e-) on the pixels of
the selected clusters above ``qmax_threshold`` (in e- if > 1, else as a fraction of the
cluster's Qmax), 0 elsewhere.

**ApplySelectionCuts** records per amplifier the boolean vectors ``in_hot_rows`` and
``in_hot_columns`` (readout order) of the configured ``rows`` and ``cols``.  Run before
ClusterFinder, ClusterFinder uses them; run after it, it updates the clusters.  Either
way every cluster gets ``hotreg`` (a pixel in a hot row or column) and
``excluded = hotreg or not has_seed``.

Row and column lists (``hot_rows``, ``hot_cols``, ``rows``, ``cols``, and ClusterFinder's
``skip_rows``/``skip_cols``) are 0-based **file** coordinates, like in pysimdamicm and like
the cluster coordinates (``pixels_x - 1``), with ``[a, b]`` closed ranges; they may be
given per amplifier (``{"L": [...], "U": [...]}``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Process, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry
from waders.core.kinds import JSON, Float, Int
from waders.core.lazy import lazy_module

from ..base import INDEX_RANGES, file_index_selector
from ..summary import SummaryPart
from .properties import Groups

ak = lazy_module("awkward")
ndimage = lazy_module("scipy.ndimage")

__all__ = [
    "FINDER",
    "SELECTION",
    "ApplySelectionCuts",
    "BuildClusterMask",
    "box_mask",
    "hot_cluster_flags",
    "to_readout_columns",
    "to_readout_rows",
]

#: Name of the process that stores the clusters.
FINDER = "ClusterFinder"
#: Name of the process that records hot rows and columns.
SELECTION = "ApplySelectionCuts"


# --- coordinates -------------------------------------------------------------------------------
def to_readout_columns(geometry: AmplifierGeometry, file_cols: Any) -> np.ndarray:
    """Map 0-based file columns to the amplifier's readout-order columns (inverse of ``to_file_columns``)."""
    local = np.asarray(file_cols) - geometry.col_offset
    return geometry.ncols - 1 - local if geometry.mirrored else local


def to_readout_rows(geometry: AmplifierGeometry, file_rows: Any) -> np.ndarray:
    """Map 0-based file rows to the amplifier's rows (inverse of ``to_file_rows``)."""
    return np.asarray(file_rows) - geometry.row_offset


# --- painting -------------------------------------------------------------------------------
def box_mask(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    row_pre: Any,
    row_post: Any,
    col_pre: Any,
    col_post: Any,
) -> np.ndarray:
    """Union of the closed boxes ``[r - row_pre, r + row_post] x [c - col_pre, c + col_post]``, clipped.

    Parameters
    ----------
    shape : (int, int)
        Image shape.
    rows, cols : numpy.ndarray of int
        Box centres.
    row_pre, row_post, col_pre, col_post : int or numpy.ndarray
        Box extents (>= 0), scalars or one per centre.

    Returns
    -------
    numpy.ndarray of bool
        True inside at least one box.
    """
    nrows, ncols = shape
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if rows.size == 0:
        return np.zeros(shape, dtype=bool)
    r0 = np.clip(rows - row_pre, 0, nrows)
    r1 = np.clip(rows + row_post, -1, nrows - 1) + 1  # exclusive end
    c0 = np.clip(cols - col_pre, 0, ncols)
    c1 = np.clip(cols + col_post, -1, ncols - 1) + 1
    valid = (r0 < r1) & (c0 < c1)
    r0, r1, c0, c1 = r0[valid], r1[valid], c0[valid], c1[valid]
    diff = np.zeros((nrows + 1, ncols + 1), dtype=np.int32)
    np.add.at(
        diff, (np.concatenate([r0, r1, r0, r1]), np.concatenate([c0, c0, c1, c1])), np.repeat([1, -1, -1, 1], r0.size)
    )
    return (diff.cumsum(axis=0, dtype=np.int32).cumsum(axis=1, dtype=np.int32) > 0)[:nrows, :ncols]


def _interval_selector(length: int, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Union of closed index intervals ``[start, stop]`` clipped to ``0 .. length-1``."""
    lo = np.clip(starts, 0, length)
    hi = np.clip(stops, -1, length - 1) + 1
    keep = lo < hi
    diff = np.zeros(length + 1, dtype=np.int64)
    np.add.at(diff, lo[keep], 1)
    np.add.at(diff, hi[keep], -1)
    return np.cumsum(diff)[:length] > 0


# --- access to the clusters -------------------------------------------------------------------
def _clusters(image: SkipperImage, process: str) -> ak.Array:
    found = image.results.get(FINDER, {})
    if "clusters" not in found:
        raise DataError(f"{process}: no clusters for {image.label}", hint=f"run {FINDER} before {process}")
    return found["clusters"]


def _pixels(clusters: ak.Array, geometry: AmplifierGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Readout-order (rows, cols) of the pixels of ``clusters`` (all of one amplifier)."""
    x = ak.to_numpy(ak.flatten(clusters["pixels_x"], axis=1)).astype(np.int64) - 1
    y = ak.to_numpy(ak.flatten(clusters["pixels_y"], axis=1)).astype(np.int64) - 1
    return to_readout_rows(geometry, y), to_readout_columns(geometry, x)


def hot_cluster_flags(clusters: ak.Array, image: SkipperImage) -> np.ndarray:
    """Per cluster: True if a pixel lies in a hot row or column recorded by ApplySelectionCuts."""
    flags = np.zeros(len(clusters), dtype=bool)
    if len(clusters) == 0:
        return flags
    amplifier_index = ak.to_numpy(clusters["amplifier"])
    for index, amp in enumerate(image.amplifiers.values()):
        selection = amp.results.get(SELECTION, {})
        chosen = amplifier_index == index
        if not chosen.any() or not selection:
            continue
        sub = clusters[chosen]
        rows, cols = _pixels(sub, amp.geometry)
        hot = (
            np.asarray(selection["in_hot_rows"], dtype=bool)[rows]
            | np.asarray(selection["in_hot_columns"], dtype=bool)[cols]
        )
        flags[chosen] = Groups(ak.to_numpy(sub["Npix"])).any(hot)
    return flags


class BuildClusterMask(Process):
    """Mask the pixels around selected clusters (closed boxes along the readout direction) and hot rows/columns.

    Produces per amplifier ``mask_clusters`` and ``mask_clusters_only`` (bool, True = do not
    use) and optionally ``mask_clusters_ids``; records ``n_clusters_masked`` and
    ``masked_fraction`` (of the active region, in ``mask_clusters``).
    """

    domain: ClassVar[str] = "ana"
    order: ClassVar[int] = 50
    products = (
        Product(
            "mask_clusters",
            "image",
            doc="True = do not use: cluster boxes, hot rows/columns and the non-active regions",
        ),
        Product("mask_clusters_only", "image", doc="the cluster boxes and the non-active regions"),
        Product(
            "mask_clusters_ids",
            "image",
            doc="cluster_id * 1e10 + charge (e-) on bright pixels",
            switch="add_cluster_id",
        ),
        Product("n_clusters_masked", "result", doc="clusters masked"),
        Product("masked_fraction", "result", doc="fraction of the active region masked"),
    )

    N_col_pre = Param(5, Int(min=0), doc="columns masked before each cluster pixel (readout direction)")
    N_col_post = Param(5, Int(min=0), doc="columns masked after each cluster pixel (readout direction)")
    N_row_pre = Param(5, Int(min=0), doc="rows masked before each cluster pixel")
    N_row_post = Param(5, Int(min=0), doc="rows masked after each cluster pixel")
    cluster_box_E_min = Param(100.0, Float(), unit="e", doc="clusters at most this charge get 1-pixel boxes (e-)")
    cluster_size_min = Param(2, Int(min=0), doc="minimum number of pixels of a masked cluster")
    cluster_E_min = Param(0.0, Float(), unit="e", doc="masked clusters have more charge than this (e-)")
    cluster_DX_min = Param(1, Int(min=0), doc="minimum column extent DX of a masked cluster")
    cluster_DY_min = Param(1, Int(min=0), doc="minimum row extent DY of a masked cluster")
    mask_below_threshold = Param(
        [False, 0.0], JSON(), doc="[on, q]: if on, clusters of at most q e- are masked whatever cluster_E_min"
    )
    mask_cluster_column = Param(False, doc="clusters above cluster_box_E_min mask columns [c, c + N_col_post]")
    mask_cluster_row = Param(False, doc="clusters above cluster_box_E_min mask their whole rows")
    add_cluster_id = Param(False, doc="produce mask_clusters_ids = cluster_id * 1e10 + q (e-) on bright pixels")
    qmax_threshold = Param(0.5, Float(min=0), doc="bright pixels: q > this (e-) if > 1, else E / Qmax > this")
    circular_mask = Param(False, doc="mask every pixel within radius of a cluster pixel instead of boxes")
    radius = Param(0.0, Float(min=0), doc="radius of circular_mask (pixels)")
    hot_cols = Param([], INDEX_RANGES, per_amplifier=True, doc="file columns (0-based, [a, b] closed) masked")
    hot_rows = Param([], INDEX_RANGES, per_amplifier=True, doc="file rows (0-based, [a, b] closed) masked")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._below_threshold()

    def _set(self, key: str, value: Any) -> None:
        super()._set(key, value)
        if key == "mask_below_threshold":
            self._below_threshold()

    def _below_threshold(self) -> tuple[bool, float]:
        value = self.mask_below_threshold
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not isinstance(value[0], bool | int)
            or isinstance(value[1], bool)
            or not isinstance(value[1], int | float)
        ):
            raise ConfigError(f"{self.name}.mask_below_threshold: expected [true|false, charge in e-], got {value!r}")
        return bool(value[0]), float(value[1])

    def select(self, clusters: ak.Array, e2eV: float) -> tuple[np.ndarray, np.ndarray]:
        """(selected, big) flags per cluster: masked at all, and masked with the full box."""
        if len(clusters) == 0:
            return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
        charge = ak.to_numpy(clusters["Energy"]) * 1000.0 / e2eV
        below_on, below_value = self._below_threshold()
        energy_ok = charge > self.cluster_E_min
        if below_on:
            energy_ok |= charge <= below_value
        selected = (
            ak.to_numpy(clusters["has_seed"]).astype(bool)
            & (ak.to_numpy(clusters["Npix"]) >= self.cluster_size_min)
            & energy_ok
            & (ak.to_numpy(clusters["DX"]) >= self.cluster_DX_min)
            & (ak.to_numpy(clusters["DY"]) >= self.cluster_DY_min)
        )
        return selected, charge > self.cluster_box_E_min

    def _paint(self, shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, big: np.ndarray) -> np.ndarray:
        if self.circular_mask:
            seeds = np.zeros(shape, dtype=bool)
            seeds[rows, cols] = True
            if not seeds.any():
                return seeds
            return ndimage.distance_transform_edt(~seeds) <= self.radius
        column_mode = big & self.mask_cluster_column
        row_mode = big & ~column_mode & self.mask_cluster_row
        boxed = ~(column_mode | row_mode)
        one = np.ones(rows.size, dtype=np.int64)
        sizes = [
            np.where(big, n, one)[boxed] for n in (self.N_row_pre, self.N_row_post, self.N_col_pre, self.N_col_post)
        ]
        mask = box_mask(shape, rows[boxed], cols[boxed], *sizes)
        if column_mode.any():
            c = cols[column_mode]
            mask[:, _interval_selector(shape[1], c, c + self.N_col_post)] = True
        if row_mode.any():
            mask[np.unique(rows[row_mode]), :] = True
        return mask

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """Nothing: the mask is an image product."""
        return SummaryPart()

    def run(self, data: SkipperImage, context: RunContext) -> None:
        clusters = _clusters(data, self.name)
        e2eV = float(context.detector.e2eV)
        selected, big = self.select(clusters, e2eV)
        amplifier_index = ak.to_numpy(clusters["amplifier"]) if len(clusters) else np.zeros(0, dtype=np.int32)
        for index, amp in enumerate(data.amplifiers.values()):
            geometry = amp.geometry
            chosen = selected & (amplifier_index == index)
            sub = clusters[chosen]
            counts = ak.to_numpy(sub["Npix"]).astype(np.int64) if len(sub) else np.zeros(0, dtype=np.int64)
            rows, cols = _pixels(sub, geometry) if len(sub) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
            near = self._paint(geometry.shape, rows, cols, np.repeat(big[chosen], counts))
            only = geometry.mask("active") | near
            names = amp.names
            full = only.copy()
            full[file_index_selector(self.value_for("hot_rows", names, []), geometry, "row"), :] = True
            full[:, file_index_selector(self.value_for("hot_cols", names, []), geometry, "col")] = True
            amp.set("mask_clusters_only", only)
            amp.set("mask_clusters", full)
            if self.add_cluster_id:
                amp.set("mask_clusters_ids", self._ids(geometry.shape, sub, rows, cols, counts, e2eV))
            active = ~geometry.mask("active")
            amp.record(
                self.name,
                n_clusters_masked=int(chosen.sum()),
                masked_fraction=float(full[active].mean()) if active.any() else float("nan"),
            )

    def _ids(
        self, shape: tuple[int, int], sub: ak.Array, rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, e2eV: float
    ) -> np.ndarray:
        ids = np.zeros(shape)
        if rows.size == 0:
            return ids
        energy = ak.to_numpy(ak.flatten(sub["pixels_E"], axis=1))
        charge = energy * 1000.0 / e2eV
        if self.qmax_threshold > 1:
            bright = charge > self.qmax_threshold
        else:
            bright = energy / np.repeat(ak.to_numpy(sub["Qmax"]), counts) > self.qmax_threshold
        cluster_id = np.repeat(ak.to_numpy(sub["cluster_id"]).astype(np.float64), counts)
        ids[rows[bright], cols[bright]] = cluster_id[bright] * 1e10 + charge[bright]
        return ids


class ApplySelectionCuts(Process):
    """Flag hot rows and columns (``in_hot_rows``, ``in_hot_columns``) and the clusters that touch them.

    Records per amplifier ``in_hot_rows`` (length nrows) and ``in_hot_columns`` (length
    ncols, readout order).  If ClusterFinder already ran, updates the clusters' ``hotreg``
    and ``excluded`` fields; otherwise ClusterFinder fills them from these flags.
    """

    domain: ClassVar[str] = "ana"
    order: ClassVar[int] = 35

    products = (
        Product("in_hot_rows", "result", doc="True for the hot rows of the amplifier (length nrows)"),
        Product("in_hot_columns", "result", doc="True for the hot columns (length ncols, readout order)"),
        Product("n_hot_rows", "result", doc="number of hot rows"),
        Product("n_hot_columns", "result", doc="number of hot columns"),
    )

    cols = Param([], INDEX_RANGES, per_amplifier=True, doc="hot file columns (0-based, [a, b] closed)")
    rows = Param([], INDEX_RANGES, per_amplifier=True, doc="hot file rows (0-based, [a, b] closed)")

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """Nothing: the flags are in the clusters and the ROOT file."""
        return SummaryPart()

    def run(self, data: SkipperImage, context: RunContext) -> None:
        for amp in data.amplifiers.values():
            names = amp.names
            in_rows = file_index_selector(self.value_for("rows", names, []), amp.geometry, "row")
            in_cols = file_index_selector(self.value_for("cols", names, []), amp.geometry, "col")
            amp.record(
                self.name,
                in_hot_rows=in_rows,
                in_hot_columns=in_cols,
                n_hot_rows=int(in_rows.sum()),
                n_hot_columns=int(in_cols.sum()),
            )
        found = data.results.get(FINDER, {})
        if "clusters" in found:
            clusters = found["clusters"]
            hot = hot_cluster_flags(clusters, data)
            no_seed = ~ak.to_numpy(clusters["has_seed"]).astype(bool) if len(clusters) else np.zeros(0, bool)
            clusters = ak.with_field(clusters, hot, "hotreg")
            found["clusters"] = ak.with_field(clusters, hot | no_seed, "excluded")
            data.record(self.name, n_clusters_hot=int(hot.sum()))
