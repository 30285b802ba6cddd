"""EvalCTIProcess and EvalHaloProcess: single-electron tails behind clusters and halos in front of them.

Both run after ClusterFinder, on the calibrated image ``image`` (electrons).  A pixel is a
*single-electron pixel* when its charge ``q`` (e-) satisfies ``Qrange_e[0] < q < Qrange_e[1]``
(default 0.75 .. 1.5 e-).  Only *valid* pixels count: pixels of the amplifier's active
region, inside the id_row/id_col window, with a finite value.  A rate is the number of
single-electron pixels of a window divided by the number of valid pixels of that window,
so windows clipped by the edge of the active region (or of the image) are normalised by
the pixels actually inside them, and a window with no valid pixel has a NaN rate.

Distances are ``d = step, 2 step, ... < max`` pixels, from ``[max, step]`` (``VCTI``,
``HCTI``, ``radius``).  With ``cumulative`` a window holds the pixels at distances
``1 .. d``; otherwise only those at distances ``d - step + 1 .. d``.

Rows and columns are those of the amplifier image in **readout order** (column 0 is read
first; the clusters' 1-based file coordinates are mapped back).  *Behind* a pixel means
read after it (larger row, larger readout column): that is where charge-transfer
inefficiency leaves its deferred charge.  *In front* means read before it.

**EvalCTIProcess** (per cluster)

* vertical: for every column of the cluster, the strip of rows above the cluster's
  highest row in that column, ``(r_max, r_max + d]``;
* horizontal: for every row of the cluster, the strip of readout columns behind the
  cluster's last column in that row, ``(c_max, c_max + d]``;

``vcti_rate``/``hcti_rate`` = single-electron pixels of all the strips of the cluster /
their valid pixels; ``vcti_pix``/``hcti_pix`` are the distances ``d``.

**EvalHaloProcess** (per seeded cluster; NaN rates for clusters without a seed): the
region read before the cluster, made of (i) the strips of rows below each column's lowest
row, (ii) the strips of readout columns before each row's first column, and (iii) the
quadrant of rows below the cluster's lowest row and columns before its first column
within a Euclidean distance ``d`` of the corner ``(min row, min column)``
(pixels ``(min row - dy, min column - dx)`` with ``dx, dy >= 1`` and ``dx^2 + dy^2 <= d^2``;
``(d - step)^2 < dx^2 + dy^2 <= d^2`` without ``cumulative``).  ``halo_rate`` = single-electron
pixels of the three parts / their valid pixels; ``halo_pix`` are the radii ``d``.

**Vectorisation.**  Per amplifier the single-electron and valid indicators are packed in
one int64 per pixel and summed cumulatively once along columns and once along rows; the
sum over any strip is then the difference of two look-ups, done for all (cluster, column)
or (cluster, row) pairs and all distances with one fancy-indexing operation.  A quarter
disc is the sum of the full row prefixes up to the corner (one look-up in a table summed
along both axes) minus one look-up per row of the disc at the staircase
``C0 - floor(sqrt(d^2 - dy^2))`` (the same staircase for every cluster).  There is no loop
over clusters or pixels.

**Outputs.**  Fields added to the clusters (``image.results["ClusterFinder"]["clusters"]``,
which stays a flat record array): ``vcti_pix``, ``vcti_rate``, ``hcti_pix``, ``hcti_rate``
(EvalCTIProcess) and ``halo_pix``, ``halo_rate`` (EvalHaloProcess), each a per-cluster list
with one value per distance (``var * int32`` distances, ``var * float64`` rates).
Summaries per amplifier and per image (pooled over amplifiers) over the clusters with at
least ``summary_q_min_e`` electrons: the pixel-weighted mean rate per distance (all
single-electron pixels of the windows / all their valid pixels) with its Poisson error,
the number of window pixels, and the single-electron rate of all valid pixels
(``background_rate``) for comparison.  Windows of neighbouring clusters may overlap; such
pixels are counted once per cluster, so the errors are then underestimated.

Note: a pixel touching a cluster and above ClusterFinder's candidate cut belongs to the
cluster.  With a cut below 1 e- (e.g. ``[null, 3, 4]`` with 0.2 e- noise) the pixel right
behind every column's top (and every row's end) can therefore never be a single-electron
pixel, which lowers the rates at the smallest distances (pysimdamicm has the same effect);
compare rates between images or amplifiers, or use a cut above 1 e- for the clustering.

Deliberate differences from pysimdamicm:

* rates are normalised by the valid pixels actually inside the windows (pysimdamicm used the
  nominal window length, also for windows clipped at the image edge, and in
  EvalHaloProcess raised it to the *power* of the number of columns instead of multiplying,
  and used the wrong loop variable for the row part of the halo); windows are restricted
  to the amplifier's active region and the id_row/id_col window;
* windows follow the readout direction of every amplifier: pysimdamicm looked to the
  right in file columns, which for the mirrored ``U`` amplifier is *in front* of the
  cluster (CTI) and behind it (halo);
* the halo quadrant counts the pixels inside the quarter disc (or annulus) instead of
  normalising by the area ``pi d^2 / 4``;
* clusters without a seed keep NaN halo rates, so every cluster has the same fields (a
  requirement of the ROOT output);
* per-distance summaries per amplifier and per image are added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier
from waders.core.kinds import Float, Int, ListOf
from waders.core.lazy import lazy_module

from .. import plotting
from ..base import AnalysisProcess
from ..clusters.mask import FINDER, to_readout_columns, to_readout_rows

ak = lazy_module("awkward")

__all__ = [
    "EvalCTIProcess",
    "EvalHaloProcess",
    "IndicatorSums",
    "distances",
    "indicator_sums",
    "line_extremes",
    "quadrant_staircase",
    "quadrant_sums",
    "strip_sums",
    "unpack",
]

#: Largest (clusters x quadrant rows) block read at once by EvalHaloProcess.
_BLOCK = 2_000_000

_DISTANCES = ListOf(Int(min=1), length=2)
_QRANGE = ListOf(Float(), length=2)


# --- building blocks -----------------------------------------------------------------------------
def distances(spec: Any, where: str) -> np.ndarray:
    """Distances ``step, 2 step, ... < max`` (pixels) of a ``[max, step]`` parameter.

    Raises
    ------
    ConfigError
        If there is no such distance (``max <= step``).
    """
    maximum, step = int(spec[0]), int(spec[1])
    values = np.arange(step, maximum, step, dtype=np.int64)
    if values.size == 0:
        raise ConfigError(
            f"{where} = [{maximum}, {step}] gives no distance (distances are step, 2 step, ... < max)",
            hint="give [max, step] with max > step",
        )
    return values


#: Packed counts: single-electron pixels in the high 32 bits, valid pixels in the low 32 bits of an int64.
_SHIFT = 32
_LOW = (1 << _SHIFT) - 1


def unpack(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split packed non-negative counts into (single-electron pixels, valid pixels)."""
    return packed >> _SHIFT, packed & _LOW


@dataclass
class IndicatorSums:
    """Cumulative sums of the packed single-electron and valid-pixel indicators of one amplifier image.

    Every value is ``hits * 2**32 + valid`` (int64): one look-up gives both counts and sums of
    such values stay exact (see :func:`unpack`).

    Attributes
    ----------
    along_rows : numpy.ndarray of int64, shape (nrows + 1, ncols)
        ``[r, c]`` = packed counts of column ``c`` in rows ``0 .. r-1``.
    along_cols : numpy.ndarray of int64, shape (ncols + 1, nrows)
        ``[c, r]`` = packed counts of row ``r`` in columns ``0 .. c-1``.
    n_hits, n_valid : int
        Single-electron and valid pixels of the image.
    """

    along_rows: np.ndarray
    along_cols: np.ndarray
    n_hits: int
    n_valid: int


def _cumulative(indicator: np.ndarray) -> np.ndarray:
    out = np.zeros((indicator.shape[0] + 1, indicator.shape[1]), dtype=np.int64)
    np.cumsum(indicator, axis=0, out=out[1:])
    return out


def indicator_sums(charge: np.ndarray, valid: np.ndarray, qrange: tuple[float, float]) -> IndicatorSums:
    """Build the cumulative sums of single-electron pixels (``qrange[0] < q < qrange[1]``) and valid pixels.

    Parameters
    ----------
    charge : numpy.ndarray
        Pixel charges (e-), amplifier image in readout order.
    valid : numpy.ndarray of bool
        Pixels that may be counted (True = used).
    qrange : (float, float)
        Open charge interval of a single-electron pixel (e-).
    """
    if valid.size >= _LOW:
        raise DataError(f"image of {valid.size} pixels is too large for the single-electron window sums")
    with np.errstate(invalid="ignore"):
        hits = valid & (charge > qrange[0]) & (charge < qrange[1])
    packed = (hits.astype(np.int64) << _SHIFT) | valid
    return IndicatorSums(
        along_rows=_cumulative(packed),
        along_cols=_cumulative(packed.T),
        n_hits=int(hits.sum()),
        n_valid=int(valid.sum()),
    )


def line_extremes(
    cluster: np.ndarray, line: np.ndarray, position: np.ndarray, n_lines: int, *, largest: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest (or smallest) position of every cluster on every line it touches.

    Parameters
    ----------
    cluster, line, position : numpy.ndarray of int
        Per pixel: cluster index, line (column or row) and position along the line.
    n_lines : int
        Number of lines of the image.
    largest : bool
        Largest position (True) or smallest.

    Returns
    -------
    cluster, line, edge : numpy.ndarray
        One entry per (cluster, line) pair, sorted by cluster.
    """
    key = cluster.astype(np.int64) * n_lines + line
    if key.size == 0:
        return key, key.copy(), np.asarray(position, dtype=np.int64)
    order = np.lexsort((position, key))
    key, position = key[order], position[order]
    change = key[1:] != key[:-1]
    pick = np.concatenate([change, [True]]) if largest else np.concatenate([[True], change])
    key = key[pick]
    return key // n_lines, key % n_lines, position[pick].astype(np.int64)


def strip_sums(
    table: np.ndarray, line: np.ndarray, edge: np.ndarray, lengths: np.ndarray, *, forward: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Single-electron and valid pixels of the strips of ``lengths`` pixels next to ``edge`` on each line.

    Parameters
    ----------
    table : numpy.ndarray of int64, shape (length + 1, n_lines)
        Packed cumulative sums along the lines (:class:`IndicatorSums`).
    line, edge : numpy.ndarray of int
        Line and edge position of every strip.
    lengths : numpy.ndarray of int
        Strip lengths (pixels).
    forward : bool
        Strips at positions ``edge + 1 .. edge + length`` (True) or ``edge - length .. edge - 1``;
        clipped to the image.

    Returns
    -------
    hits, valid : numpy.ndarray of int64, shape (n_strips, n_lengths)
    """
    size = table.shape[0] - 1
    edge, lengths = edge[:, None], lengths[None, :]
    if forward:
        lo, hi = np.minimum(edge + 1, size), np.minimum(edge + 1 + lengths, size)
    else:
        lo, hi = np.maximum(edge - lengths, 0), np.maximum(edge, 0)
    line = line[:, None]
    return unpack(table[hi, line] - table[lo, line])


def quadrant_staircase(radii: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the quarter discs in front of a corner: offsets ``dx, dy >= 1`` with ``dx^2 + dy^2 <= r^2``.

    Row offset ``dy`` of the disc of radius ``r`` holds ``dx = 1 .. w`` with
    ``w = floor(sqrt(r^2 - dy^2))``; only rows with ``w >= 1`` are listed.

    Returns
    -------
    dy, width : numpy.ndarray of int
        One entry per (radius, row), grouped by radius.
    bounds : numpy.ndarray of int
        Entries ``bounds[k] .. bounds[k + 1] - 1`` belong to ``radii[k]``.
    """
    radii = np.asarray(radii, dtype=np.int64)
    dy = np.arange(1, int(radii.max(initial=0)) + 1, dtype=np.int64)
    span = radii[:, None] ** 2 - dy[None, :] ** 2
    width = np.floor(np.sqrt(np.maximum(span, 0))).astype(np.int64)
    k, row = np.nonzero(width >= 1)
    bounds = np.searchsorted(k, np.arange(radii.size + 1))
    return dy[row], width[k, row], bounds


def quadrant_sums(
    sums: IndicatorSums, corner_row: np.ndarray, corner_col: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Single-electron and valid pixels of the quarter discs in front of each corner (cumulative in radius).

    The disc of radius ``r`` in front of ``(R0, C0)`` holds the pixels ``(R0 - dy, C0 - dx)`` with
    ``dx, dy >= 1`` and ``dx^2 + dy^2 <= r^2``, clipped to the image.  Its sum is the sum of the
    full row prefixes up to ``C0`` (read in a table summed along both axes) minus one look-up
    per row of the disc at the staircase ``C0 - w(dy)``.

    Returns
    -------
    hits, valid : numpy.ndarray of int64, shape (n_corners, n_radii)
    """
    n = corner_row.size
    dy, width, bounds = quadrant_staircase(radii)
    if n == 0:
        empty = np.zeros((0, radii.size), dtype=np.int64)
        return empty, empty
    table = sums.along_cols  # [c, r]: row r, columns < c
    both = np.zeros((table.shape[0], table.shape[1] + 1), dtype=np.int64)
    np.cumsum(table, axis=1, out=both[:, 1:])  # [c, r]: rows < r, columns < c
    # zeros before the first column and row: staircase points outside the image read 0
    pad = int(radii.max(initial=0))
    padded = np.zeros((table.shape[0] + pad, table.shape[1] + pad), dtype=np.int64)
    padded[pad:, pad:] = table
    flat = padded.ravel()
    stride = padded.shape[1]
    offset = -width * stride - dy  # flat offset of (column C0 - w, row R0 - dy) from (C0, R0)
    n_rows = np.diff(bounds)  # rows of each disc: r - 1 (for r >= 1)
    packed = np.empty((n, radii.size), dtype=np.int64)
    step = max(1, _BLOCK // max(dy.size, 1))
    for start in range(0, n, step):  # blocks bound the memory; there is no loop over clusters
        r0 = corner_row[start : start + step, None]
        c0 = corner_col[start : start + step, None]
        prefix = both[c0, r0] - both[c0, np.maximum(r0 - n_rows[None, :], 0)]
        stairs = np.take(flat, (c0 + pad) * stride + (r0 + pad) + offset[None, :])
        cumulative = np.zeros((stairs.shape[0], stairs.shape[1] + 1), dtype=np.int64)
        np.cumsum(stairs, axis=1, out=cumulative[:, 1:])
        packed[start : start + step] = prefix - (cumulative[:, bounds[1:]] - cumulative[:, bounds[:-1]])
    return unpack(packed)


def _group_sum(cluster: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """Add ``values`` (rows sorted by ``cluster``) into ``out[cluster]``."""
    if cluster.size == 0:
        return
    first = np.concatenate([[True], cluster[1:] != cluster[:-1]])
    out[cluster[first]] += np.add.reduceat(values, np.flatnonzero(first), axis=0)


def _group_min(cluster: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clusters, smallest value of each) for ``values`` sorted by ``cluster``."""
    if cluster.size == 0:
        return cluster, values
    first = np.flatnonzero(np.concatenate([[True], cluster[1:] != cluster[:-1]]))
    return cluster[first], np.minimum.reduceat(values, first)


def _rate(hits: np.ndarray, valid: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid > 0, hits / np.where(valid > 0, valid, 1), np.nan)


def _list_field(values: np.ndarray) -> ak.Array:
    """Per-cluster lists (``var * T``) from a 2-D array (one row per cluster)."""
    n, k = values.shape
    offsets = ak.index.Index64(np.arange(n + 1, dtype=np.int64) * k)
    content = ak.contents.NumpyArray(np.ascontiguousarray(values).reshape(-1))
    return ak.Array(ak.contents.ListOffsetArray(offsets, content))


@dataclass
class _ClusterPixels:
    """Flat pixels of the clusters (0-based file coordinates) and their cluster indices."""

    cluster: np.ndarray
    file_row: np.ndarray
    file_col: np.ndarray
    amplifier: np.ndarray  # per cluster
    charge_e: np.ndarray  # per cluster
    seeded: np.ndarray  # per cluster

    @classmethod
    def of(cls, clusters: ak.Array, e2eV: float) -> _ClusterPixels:
        n = len(clusters)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, np.zeros(0), np.zeros(0, dtype=bool))
        counts = ak.to_numpy(ak.num(clusters["pixels_x"], axis=1)).astype(np.int64)
        return cls(
            cluster=np.repeat(np.arange(n, dtype=np.int64), counts),
            file_row=ak.to_numpy(ak.flatten(clusters["pixels_y"], axis=1)).astype(np.int64) - 1,
            file_col=ak.to_numpy(ak.flatten(clusters["pixels_x"], axis=1)).astype(np.int64) - 1,
            amplifier=ak.to_numpy(clusters["amplifier"]).astype(np.int64),
            charge_e=ak.to_numpy(clusters["Energy"]).astype(np.float64) * 1000.0 / e2eV,
            seeded=ak.to_numpy(clusters["has_seed"]).astype(bool),
        )

    def of_amplifier(self, index: int, amplifier: Amplifier, chosen: np.ndarray) -> tuple[np.ndarray, ...]:
        """(cluster index, row, readout column) of the pixels of the chosen clusters of one amplifier."""
        keep = (chosen & (self.amplifier == index))[self.cluster]
        geometry = amplifier.geometry
        rows = to_readout_rows(geometry, self.file_row[keep])
        cols = to_readout_columns(geometry, self.file_col[keep])
        if rows.size and (
            rows.min() < 0 or rows.max() >= geometry.nrows or cols.min() < 0 or cols.max() >= geometry.ncols
        ):
            raise DataError(f"clusters of amplifier {amplifier.name} lie outside its image", hint="rerun ClusterFinder")
        return self.cluster[keep], rows, cols


@dataclass
class _Window:
    """Summed single-electron and valid pixels per cluster and distance (cumulative in distance)."""

    hits: np.ndarray
    valid: np.ndarray

    @classmethod
    def zeros(cls, n: int, k: int) -> _Window:
        return cls(np.zeros((n, k)), np.zeros((n, k)))

    def add(self, cluster: np.ndarray, hits: np.ndarray, valid: np.ndarray) -> None:
        _group_sum(cluster, hits.astype(np.float64), self.hits)
        _group_sum(cluster, valid.astype(np.float64), self.valid)

    def per_step(self, cumulative: bool) -> _Window:
        """The same sums for windows of one step (differences of consecutive distances) unless cumulative."""
        if cumulative:
            return self
        return _Window(np.diff(self.hits, axis=1, prepend=0.0), np.diff(self.valid, axis=1, prepend=0.0))


def _summary(window: _Window, chosen: np.ndarray, prefix: str) -> dict[str, Any]:
    hits = window.hits[chosen].sum(axis=0)
    valid = window.valid[chosen].sum(axis=0)
    return {
        f"{prefix}_rate": _rate(hits, valid),
        f"{prefix}_rate_err": _rate(np.sqrt(hits), valid),
        f"{prefix}_pixels": valid.astype(np.int64),
        f"{prefix}_hits": hits.astype(np.int64),
    }


# --- the processes -------------------------------------------------------------------------------
class _ClusterWindows(AnalysisProcess):
    """Parameters and pixel bookkeeping shared by EvalCTIProcess and EvalHaloProcess."""

    order: ClassVar[int] = 510
    #: Names of the ``[max, step]`` distance parameters.
    _distance_params: ClassVar[tuple[str, ...]] = ()
    #: Plot panel title per field prefix.
    _titles: ClassVar[dict[str, str]] = {}

    image = Param("mean_compressed_pedestal_subtracted_e", doc="calibrated image product (e-)")
    Qrange_e = Param([0.75, 1.5], _QRANGE, unit="e", doc="open charge interval (e-) of a single-electron pixel")
    cumulative = Param(True, doc="windows hold distances 1..d (true) or only d-step+1..d (false)")
    summary_q_min_e = Param(0.0, Float(min=0), unit="e", doc="clusters in the per-distance summaries: charge >= this")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._check()

    def _set(self, key: str, value: Any) -> None:
        super()._set(key, value)
        if key in ("Qrange_e", *self._distance_params):
            self._check()

    def _check(self) -> None:
        low, high = self.Qrange_e
        if not low < high:
            raise ConfigError(f"{self.name}.Qrange_e = {self.Qrange_e}: expected [low, high] with low < high (e-)")
        for name in self._distance_params:
            distances(getattr(self, name), f"{self.name}.{name}")

    def _valid(self, image: SkipperImage, amplifier: Amplifier) -> tuple[np.ndarray, np.ndarray]:
        charge = self.input_image(amplifier)
        valid = ~(amplifier.geometry.mask("active") | self.window_mask(image, amplifier)) & np.isfinite(charge)
        return charge, valid

    def _inputs(self, image: SkipperImage) -> _ClusterPixels:
        found = image.results.get(FINDER, {})
        if "clusters" not in found:
            raise DataError(f"{self.name}: no clusters for {image.label}", hint=f"run {FINDER} before {self.name}")
        return _ClusterPixels.of(found["clusters"], float(found.get("e2eV", 3.74)))

    def _finish(
        self,
        data: SkipperImage,
        context: RunContext,
        pixels: _ClusterPixels,
        windows: dict[str, tuple[_Window, np.ndarray, str]],
        summarised: np.ndarray,
        backgrounds: list[tuple[int, int]],
        computed: np.ndarray,
    ) -> None:
        """Record the summaries, add the per-cluster fields and draw the plot.

        ``windows`` maps a field prefix (``vcti``) to the cumulative window sums, the
        distances and the name of the distance key (``vcti_distance_px``); ``backgrounds``
        holds the (single-electron, valid) pixels of every amplifier; clusters not ``computed``
        get NaN rates.
        """
        steps = {prefix: (w.per_step(self.cumulative), d, key) for prefix, (w, d, key) in windows.items()}

        def summaries(chosen: np.ndarray) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for prefix, (window, dist, key) in steps.items():
                out[key] = dist
                out.update(_summary(window, chosen, prefix))
            return out

        for index, amp in enumerate(data.amplifiers.values()):
            mine = summarised & (pixels.amplifier == index)
            self._record(data, amp, summaries(mine), *backgrounds[index], int(mine.sum()))
        n_hits, n_valid = sum(h for h, _ in backgrounds), sum(v for _, v in backgrounds)
        self._record(data, None, summaries(summarised), n_hits, n_valid, int(summarised.sum()))
        fields: dict[str, np.ndarray] = {}
        for prefix, (window, dist, _) in steps.items():
            rate = _rate(window.hits, window.valid)
            rate[~computed] = np.nan
            fields[f"{prefix}_pix"] = np.broadcast_to(dist.astype(np.int32), rate.shape)
            fields[f"{prefix}_rate"] = rate
        found = data.results[FINDER]
        clusters = found["clusters"]
        for name, values in fields.items():
            clusters = ak.with_field(clusters, _list_field(values), name)
        found["clusters"] = clusters
        if plotting.wants_plots(self, context):
            self._plot(data, context, [(prefix, key, self._titles[prefix]) for prefix, (_, _, key) in steps.items()])

    def _record(
        self,
        image: SkipperImage,
        amplifier: Amplifier | None,
        summaries: dict[str, Any],
        n_hits: int,
        n_valid: int,
        n_clusters: int,
    ) -> None:
        values = {
            **summaries,
            "background_rate": n_hits / n_valid if n_valid else math.nan,
            "background_rate_err": math.sqrt(n_hits) / n_valid if n_valid else math.nan,
            "n_clusters": int(n_clusters),
            "cumulative": bool(self.cumulative),
            "qrange_e": list(self.Qrange_e),
        }
        if amplifier is None:
            image.record(self.name, **values)
        else:
            amplifier.record(self.name, **values)

    def _plot(self, image: SkipperImage, context: RunContext, panels: list[tuple[str, str, str]]) -> None:
        """Rates vs distance, one panel per (prefix, distance key, title), one line per amplifier."""
        size = (5.0 * len(panels), 4.0)
        with plotting.figure(context, image, self.name, "rates", ncols=len(panels), size=size) as (_, axes):
            axes = np.atleast_1d(axes)
            window = "distances 1..d" if self.cumulative else "distances d-step+1..d"
            axes[0].set_ylabel(f"single-electron pixels / pixel ({window})")
            for ax, (prefix, distance_key, title) in zip(axes, panels, strict=True):
                for name, amp in image.amplifiers.items():
                    res = amp.results.get(self.name, {})
                    line = ax.errorbar(
                        res[distance_key], res[f"{prefix}_rate"], res[f"{prefix}_rate_err"], fmt="o-", ms=3,
                        label=f"amplifier {name}",
                    )  # fmt: skip
                    ax.axhline(res["background_rate"], ls="--", lw=0.8, color=line[0].get_color())
                ax.set_xlabel("distance d (pixels)")
                ax.set_title(title)
                ax.legend(title="dashed: all pixels")


class EvalCTIProcess(_ClusterWindows):
    """Charge-transfer-inefficiency tails: single-electron rates behind every cluster along columns and rows.

    Adds ``vcti_pix``, ``vcti_rate``, ``hcti_pix``, ``hcti_rate`` to every cluster and
    records per amplifier and per image ``vcti_distance_px``, ``vcti_rate``,
    ``vcti_rate_err``, ``vcti_pixels``, ``vcti_hits`` (and the same for ``hcti``),
    ``background_rate``, ``background_rate_err`` and ``n_clusters`` (clusters summarised).
    """

    products = (
        Product(
            "vcti_rate", "result", "e-/pixel", "single-electron rate behind the clusters along columns (vcti_rate_err)"
        ),
        Product(
            "hcti_rate", "result", "e-/pixel", "single-electron rate behind the clusters along rows (hcti_rate_err)"
        ),
        Product("background_rate", "result", "e-/pixel", "single-electron rate far from clusters"),
        Product("rates", "figure", per_amplifier=False, doc="rates versus distance"),
    )

    _distance_params: ClassVar[tuple[str, ...]] = ("VCTI", "HCTI")
    _titles: ClassVar[dict[str, str]] = {"vcti": "vertical (rows behind)", "hcti": "horizontal (columns behind)"}

    VCTI = Param([155, 10], _DISTANCES, doc="[max, step] of the vertical windows (rows behind each column's top)")
    HCTI = Param([155, 10], _DISTANCES, doc="[max, step] of the horizontal windows (readout columns behind each row)")

    def run(self, data: SkipperImage, context: RunContext) -> None:
        pixels = self._inputs(data)
        n = pixels.amplifier.size
        vd = distances(self.VCTI, f"{self.name}.VCTI")
        hd = distances(self.HCTI, f"{self.name}.HCTI")
        vertical, horizontal = _Window.zeros(n, vd.size), _Window.zeros(n, hd.size)
        computed = np.zeros(n, dtype=bool)
        backgrounds = []
        for index, amp in enumerate(data.amplifiers.values()):
            sums = indicator_sums(*self._valid(data, amp), tuple(self.Qrange_e))
            backgrounds.append((sums.n_hits, sums.n_valid))
            cluster, rows, cols = pixels.of_amplifier(index, amp, np.ones(n, dtype=bool))
            computed[cluster] = True
            c, line, edge = line_extremes(cluster, cols, rows, amp.geometry.ncols, largest=True)
            vertical.add(c, *strip_sums(sums.along_rows, line, edge, vd, forward=True))
            c, line, edge = line_extremes(cluster, rows, cols, amp.geometry.nrows, largest=True)
            horizontal.add(c, *strip_sums(sums.along_cols, line, edge, hd, forward=True))
        windows = {"vcti": (vertical, vd, "vcti_distance_px"), "hcti": (horizontal, hd, "hcti_distance_px")}
        summarised = pixels.charge_e >= self.summary_q_min_e
        self._finish(data, context, pixels, windows, summarised, backgrounds, computed)


class EvalHaloProcess(_ClusterWindows):
    """Single-electron halo: rate of single-electron pixels read before every seeded cluster vs distance.

    Adds ``halo_pix`` and ``halo_rate`` to every cluster (NaN rates without a seed) and
    records per amplifier and per image ``halo_radius_px``, ``halo_rate``, ``halo_rate_err``,
    ``halo_pixels``, ``halo_hits``, ``background_rate``, ``background_rate_err`` and
    ``n_clusters`` (seeded clusters summarised).
    """

    products = (
        Product(
            "halo_rate",
            "result",
            "e-/pixel",
            "single-electron rate versus distance before seeded clusters (halo_rate_err)",
        ),
        Product("background_rate", "result", "e-/pixel", "single-electron rate far from clusters"),
        Product("rates", "figure", per_amplifier=False, doc="rates versus distance"),
    )

    order: ClassVar[int] = 511
    _distance_params: ClassVar[tuple[str, ...]] = ("radius",)
    _titles: ClassVar[dict[str, str]] = {"halo": "halo (pixels read before the cluster)"}

    radius = Param([155, 10], _DISTANCES, doc="[max, step] of the halo distances (pixels)")

    def run(self, data: SkipperImage, context: RunContext) -> None:
        pixels = self._inputs(data)
        n = pixels.amplifier.size
        radii = distances(self.radius, f"{self.name}.radius")
        halo = _Window.zeros(n, radii.size)
        backgrounds = []
        for index, amp in enumerate(data.amplifiers.values()):
            sums = indicator_sums(*self._valid(data, amp), tuple(self.Qrange_e))
            backgrounds.append((sums.n_hits, sums.n_valid))
            cluster, rows, cols = pixels.of_amplifier(index, amp, pixels.seeded)
            c, line, edge = line_extremes(cluster, cols, rows, amp.geometry.ncols, largest=False)
            halo.add(c, *strip_sums(sums.along_rows, line, edge, radii, forward=False))
            ids, first_row = _group_min(c, edge)
            c, line, edge = line_extremes(cluster, rows, cols, amp.geometry.nrows, largest=False)
            halo.add(c, *strip_sums(sums.along_cols, line, edge, radii, forward=False))
            _, first_col = _group_min(c, edge)
            hits, valid = quadrant_sums(sums, first_row, first_col, radii)
            halo.hits[ids] += hits
            halo.valid[ids] += valid
        summarised = pixels.seeded & (pixels.charge_e >= self.summary_q_min_e)
        windows = {"halo": (halo, radii, "halo_radius_px")}
        self._finish(data, context, pixels, windows, summarised, backgrounds, pixels.seeded)
