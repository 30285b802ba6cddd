"""Noise of simulated events: dark current, readout noise and pixel saturation (pysimdamicm C.7-C.10).

The noise of a pixel is ``K + G`` electrons, with ``K ~ Poisson(lambda)`` (dark current,
:class:`DarkCurrent`) and ``G ~ Normal(pedestal, sigma / sqrt(nSamples))`` (readout noise,
:class:`ElectronicNoise`), times ``e2eV`` (eV).  Instead of drawing a 300 x 300 noise image
per event (pysimdamicm), the processes keep the pixels **sparse** and exact in
distribution:

* every pixel with signal gets its noise (field ``noise`` of :attr:`SimEvents.pixels
  <waders.sim.events.SimEvents.pixels>`, eV);
* of the empty pixels of the event's region of interest (ROI, C.10), only those whose
  noise exceeds the reconstruction threshold ``threshold_e`` (electrons: a constructor
  argument, which the driver sets once, when it builds the chain, from ClusterFinder's
  ``spr_threshold`` with :func:`with_reconstruction_threshold`) are appended, as noise-only
  pixels (``edep`` 0, ``charge`` 0,
  ``z``/``time``/``std_time``/``pdg`` -1).  Their number is
  ``Binomial(n_empty, p_tail)``, their positions are uniform without replacement among
  the empty ROI pixels and their values follow the conditional tail distribution of the
  noise.  The pixels below the threshold are never drawn: whatever the reconstruction
  would do with them (nothing: they are below its threshold) it cannot tell the
  difference.

The two processes run one after the other (DarkCurrent 40, ElectronicNoise 50) and each
keeps the invariant "the noise-only pixels present are exactly the empty ROI pixels whose
noise so far exceeds the threshold": DarkCurrent appends the pixels with
``K > threshold``; ElectronicNoise adds ``G`` to every present pixel, appends the absent
pixels with ``K + G > threshold`` (their ``K`` follows the Poisson law conditioned on
``K <= threshold``: the tail probability is the DC (x) Gaussian mixture
``sum_{k <= thr} P(k | K <= thr) Q((thr - k - pedestal) / sigma)``) and drops the
noise-only pixels that fell below.  Without a threshold (``threshold_e`` None: no
reconstruction in the chain), noise is added to the signal pixels only and nothing is
appended or counted.

Random numbers come from the counter RNG (streams named after the process): the noise of
a signal pixel is keyed by (event id, CCD, row, column), the count of appended pixels by
(event id, CCD), their positions and values by (event id, CCD, index), so results do not
depend on the chunking.  In ``"full-image"`` mode the noise of pixel (CCD, row, column) is
keyed by (CCD, row, column) only (an event-independent stream): every event sees the same
noise at the same pixel.  The above-threshold pixels of a whole CCD are found once per
run, by row blocks (never a full image in memory), and each event takes those inside its
ROI.

ROI (C.10): a square of ``img_size`` pixels (``max(D_x, D_y) + min_enlarge`` for larger
events) around the pixels of each (event, CCD) collection, shifted to stay inside the CCD
(``detector.ccd_shape``) and cut to the CCD if the CCD is smaller.  The first noise process
of the chain fixes the ROI (as pysimdamicm); the second reuses it.

:class:`PixelSaturation` clips ``edep + noise`` at ``saturation`` ADU
(``x detector.ADC2eV`` eV), keeps the unclipped value (``total_unclipped``, eV) and a
``saturated`` flag (0/1), and stores the clipped total by correcting ``noise`` (creating it
if no noise process ran), so that ``edep`` stays the deposited-energy truth.

Deliberate differences from pysimdamicm
---------------------------------------
* Noise is sparse and exact in distribution instead of dense 300 x 300 images per event
  (F.4); only pixels above the reconstruction threshold exist as noise-only pixels.
* Counter-based random numbers keyed by event id, one stream per process, instead of one
  generator seeded with the constant 321 shared by DarkCurrent and ElectronicNoise
  (identical noise in every run, F.3).  The run seed changes the noise.
* ``nSamples`` is a parameter (the readout-noise sigma is ``sigma / sqrt(nSamples)``);
  pysimdamicm fixed it to 1.
* The ROI is ``[start, start + S)`` with ``start = clip(min - (S - D) // 2, 0, N - S)``:
  it never extends one pixel beyond the CCD edge (pysimdamicm's high-edge offset did), and
  full-image mode uses the same coordinates as cropped mode (pysimdamicm shifted by one
  pixel and swapped rows and columns, C.10 [BUG]).
* In full-image mode the noise covers the active area ``detector.ccd_shape`` (the
  prescan/overscan of pysimdamicm's extended image hold no events).
* Saturation is applied by PixelSaturation itself to every pixel (signal and noise), not
  inside the image builder or ClusterFinder.
* ``row_readtime`` is in days per row (pysimdamicm's default of 1 is kept; only
  ``exp_mode: "exposure-per-row"`` uses it).
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, ClassVar

import numpy as np

from waders.core import Param
from waders.core.errors import ConfigError, ProcessError
from waders.core.kinds import Choice, Float, Int
from waders.core.lazy import lazy_module
from waders.core.pipeline import RunContext

from .base import SimProcess
from .events import SimEvents
from .random import CounterRNG

special = lazy_module("scipy.special")
stats = lazy_module("scipy.stats")

__all__ = [
    "DarkCurrent",
    "ElectronicNoise",
    "PixelSaturation",
    "pixel_key",
    "poisson_from_uniform",
    "region_of_interest",
    "with_reconstruction_threshold",
]

log = logging.getLogger(__name__)

#: Key of the state shared by the noise processes in ``SimEvents.results``.
NOISE_STATE = "noise"
_MODES = ("cropped-image", "full-image")

#: Values of noise-only pixels for the known pixel fields (others get 0).
_NOISE_ONLY_FILL: dict[str, float] = {
    "edep": 0.0,
    "charge": 0,
    "z": -1.0,
    "time": -1.0,
    "std_time": -1.0,
    "pdg": -1,
    "sigma_xy": 0.0,
}


# --------------------------------------------------------------------------------------
# helpers shared with other modules (images, tests)
# --------------------------------------------------------------------------------------
def poisson_from_uniform(u: np.ndarray, lam: np.ndarray | float) -> np.ndarray:
    """Poisson numbers by inversion of the cumulative distribution of uniform numbers.

    The smallest ``k`` with ``u <= F(k; lam)`` (exact); the loop only continues for the
    few entries above ``F(0) = exp(-lam)``, so small means are cheap.  Means above 30 use
    :func:`scipy.stats.poisson.ppf`.

    Parameters
    ----------
    u : ndarray
        Uniform numbers in (0, 1).
    lam : float or ndarray
        Means (broadcast with ``u``).
    """
    u = np.asarray(u, dtype=np.float64)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), u.shape).ravel()
    flat_u = u.ravel()
    k = np.zeros(flat_u.size, dtype=np.int64)
    big = lam > 30.0
    if big.any():
        k[big] = stats.poisson.ppf(flat_u[big], lam[big]).astype(np.int64)
    p = np.exp(-lam)
    idx = np.flatnonzero(~big & (flat_u > p))
    if idx.size:
        lam_a, u_a = lam[idx], flat_u[idx]
        p_a = p[idx]
        cdf_a = p_a.copy()
        for step in range(1, 200):
            p_a = p_a * lam_a / step
            cdf_a = cdf_a + p_a
            k[idx] = step
            more = u_a > cdf_a
            if not more.any():
                break
            idx, lam_a, u_a, p_a, cdf_a = idx[more], lam_a[more], u_a[more], p_a[more], cdf_a[more]
    return k.reshape(u.shape)


def pixel_key(event: np.ndarray, ccd: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """One sortable int64 per (event index, CCD, row, column): the order of :attr:`SimEvents.pixels`."""
    ccd_values, ccd_rank = np.unique(np.asarray(ccd), return_inverse=True)
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    row_min = int(row.min(initial=0))
    col_min = int(col.min(initial=0))
    n_rows = int(row.max(initial=0)) - row_min + 1
    n_cols = int(col.max(initial=0)) - col_min + 1
    span = max(1, len(ccd_values)) * n_rows * n_cols
    if (int(np.max(event, initial=0)) + 1) * span >= 2**62:  # pragma: no cover - absurd sizes
        raise ProcessError("pixel coordinates too large to sort")
    return ((np.asarray(event, dtype=np.int64) * len(ccd_values) + ccd_rank) * n_rows + (row - row_min)) * n_cols + (
        col - col_min
    )


def _collections(pixels: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of every (event, CCD) run of the sorted pixels."""
    event, ccd = pixels["event"], pixels["ccd"]
    if event.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero((np.diff(event) != 0) | (np.diff(ccd) != 0)) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    counts = np.diff(np.concatenate([starts, [event.size]])).astype(np.int64)
    return starts, counts


def region_of_interest(
    rows: np.ndarray,
    cols: np.ndarray,
    starts: np.ndarray,
    ccd_shape: tuple[int, int],
    img_size: int,
    min_enlarge: int,
) -> dict[str, np.ndarray]:
    """Square region of interest around each collection of pixels (C.10).

    Parameters
    ----------
    rows, cols : ndarray of int
        Pixel coordinates, grouped by collection.
    starts : ndarray of int
        First pixel of every collection.
    ccd_shape : (int, int)
        Rows and columns of the CCD.
    img_size, min_enlarge : int
        Side ``S`` of the ROI; ``max(D_x, D_y) + min_enlarge`` for larger collections.

    Returns
    -------
    dict
        ``row0``, ``col0`` (first row/column) and ``nrows``, ``ncols`` of every ROI.
    """
    rmin = np.minimum.reduceat(rows, starts).astype(np.int64)
    rmax = np.maximum.reduceat(rows, starts).astype(np.int64)
    cmin = np.minimum.reduceat(cols, starts).astype(np.int64)
    cmax = np.maximum.reduceat(cols, starts).astype(np.int64)
    dy, dx = rmax - rmin + 1, cmax - cmin + 1
    size = np.where((dx > img_size) | (dy > img_size), np.maximum(dx, dy) + min_enlarge, img_size)
    ccd_rows = np.maximum(int(ccd_shape[0]), rmax + 1)
    ccd_cols = np.maximum(int(ccd_shape[1]), cmax + 1)
    row_lo = np.minimum(rmin, 0)  # pixels at negative coordinates (should not happen) stay inside
    col_lo = np.minimum(cmin, 0)
    nrows = np.minimum(size, ccd_rows - row_lo)
    ncols = np.minimum(size, ccd_cols - col_lo)
    row0 = np.clip(rmin - (nrows - dy) // 2, row_lo, ccd_rows - nrows)
    col0 = np.clip(cmin - (ncols - dx) // 2, col_lo, ccd_cols - ncols)
    return {"row0": row0, "col0": col0, "nrows": nrows.astype(np.int64), "ncols": ncols.astype(np.int64)}


# --------------------------------------------------------------------------------------
# tail distributions
# --------------------------------------------------------------------------------------
def _k_threshold(threshold: float) -> int:
    """Largest integer ``k`` with ``k <= threshold`` (``K > threshold`` iff ``K > k``)."""
    return math.floor(threshold)


def _poisson_pmf(k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    return np.exp(special.xlogy(k, lam) - lam - special.gammaln(k + 1.0))


def poisson_tail_probability(lam: np.ndarray, threshold: float) -> np.ndarray:
    """P(K > threshold) for K ~ Poisson(lam)."""
    return special.pdtrc(_k_threshold(threshold), np.asarray(lam, dtype=np.float64))


def poisson_tail_sample(lam: np.ndarray, threshold: float, u: np.ndarray) -> np.ndarray:
    """K ~ Poisson(lam) conditioned on K > threshold, by inversion of ``u`` (exact in the far tail)."""
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), np.shape(u)).ravel()
    u = np.asarray(u, dtype=np.float64).ravel()
    k0 = _k_threshold(threshold)
    target = u * special.pdtrc(k0, lam)
    out = np.full(u.size, k0 + 1, dtype=np.int64)
    idx = np.arange(u.size)
    cdf = np.zeros(u.size)
    k_max = int(k0 + 1 + np.max(lam, initial=0.0) + 15 * np.sqrt(np.max(lam, initial=0.0)) + 30)
    for k in range(k0 + 1, k_max + 1):
        cdf[idx] += _poisson_pmf(np.float64(k), lam[idx])
        out[idx] = k
        more = target[idx] > cdf[idx] * (1.0 + 1e-12)
        idx = idx[more]
        if idx.size == 0:
            break
    return out


def _gauss_weights(lam: np.ndarray, threshold: float, mu: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``P(k) Q((thr - k - mu) / sigma)`` for k = 0..k_max (rows: entries of ``lam``) and ``P(K <= thr)``."""
    lam = np.asarray(lam, dtype=np.float64).reshape(-1)
    k0 = _k_threshold(threshold)
    if k0 < 0:
        raise ProcessError(f"the reconstruction threshold must be >= 0 electrons, got {threshold}")
    if lam.size > 1 and lam.min() == lam.max():  # one dark current for all (no per-row exposure): compute once
        weights, norm = _gauss_weights(lam[:1], threshold, mu, sigma)
        return np.broadcast_to(weights, (lam.size, weights.shape[1])), np.broadcast_to(norm, lam.shape)
    lam_max = float(np.max(lam, initial=0.0))
    k_max = min(k0, int(lam_max + 20 * math.sqrt(lam_max) + 30))
    k = np.arange(k_max + 1, dtype=np.float64)
    pmf = _poisson_pmf(k[None, :], lam.reshape(-1, 1))
    if sigma > 0:
        q = special.ndtr(-(threshold - k - mu) / sigma)
    else:
        q = (k + mu > threshold).astype(np.float64)
    return pmf * q[None, :], special.pdtr(k0, lam).reshape(-1)


def gauss_tail_probability(lam: np.ndarray, threshold: float, mu: float, sigma: float) -> np.ndarray:
    """P(K + G > thr | K <= thr) for K ~ Poisson(lam) (lam may be 0) and G ~ Normal(mu, sigma)."""
    weights, norm = _gauss_weights(lam, threshold, mu, sigma)
    return np.clip(weights.sum(axis=1) / norm, 0.0, 1.0)


def gauss_tail_sample(
    lam: np.ndarray, threshold: float, mu: float, sigma: float, u_k: np.ndarray, u_g: np.ndarray
) -> np.ndarray:
    """K + G conditioned on K <= thr and K + G > thr (the DC (x) Gaussian tail), by inversion."""
    weights, _ = _gauss_weights(lam, threshold, mu, sigma)
    cum = np.cumsum(weights, axis=1)
    k = np.minimum((cum < (u_k * cum[:, -1])[:, None]).sum(axis=1), weights.shape[1] - 1).astype(np.float64)
    if sigma > 0:
        a = (threshold - k - mu) / sigma
        g = mu - sigma * special.ndtri(u_g * special.ndtr(-a))
    else:
        g = np.full(k.shape, mu)
    return k + g


# --------------------------------------------------------------------------------------
# sparse positions in the ROI
# --------------------------------------------------------------------------------------
def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner index and index within owner for ``counts[i]`` items of every owner ``i``."""
    owner = np.repeat(np.arange(counts.size), counts)
    within = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, within


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in the sorted array ``sorted_keys``."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def _sample_positions(
    rng: CounterRNG,
    stream: str,
    event_ids: np.ndarray,
    ccds: np.ndarray,
    m: np.ndarray,
    n_roi: np.ndarray,
    present: np.ndarray,
    present_owner: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choose ``m[i]`` ROI indices of collection ``i`` uniformly without replacement among the empty ones.

    Sparse collections use sequential rejection (the first ``m`` distinct candidates not
    present, candidates keyed by their index); dense ones (``m`` above a quarter of the
    empty pixels) order all their empty pixels by a random key and take the first ``m``.

    Returns
    -------
    owner, rank, index : ndarray
        Collection, draw rank (0..m-1) and ROI index of every chosen pixel.
    """
    n_present = np.bincount(present_owner, minlength=m.size)
    n_empty = n_roi - n_present
    base = np.int64(int(n_roi.max(initial=1)) + 1)
    present_keys = np.sort(present_owner.astype(np.int64) * base + present)
    out_owner, out_rank, out_index = [], [], []

    def is_present(keys: np.ndarray) -> np.ndarray:
        return _member(present_keys, keys)

    dense = m > np.maximum(n_empty // 4, 0)
    sparse = np.flatnonzero((m > 0) & ~dense)
    # expected rejections: candidates on present pixels or repeated; draw a few more than m + that
    m_s = m[sparse].astype(np.float64)
    lost = m_s * n_present[sparse] / n_roi[sparse] + m_s * m_s / np.maximum(n_empty[sparse], 1)
    lost = lost * n_roi[sparse] / np.maximum(n_empty[sparse] - m_s, 1)
    n_cand = (m[sparse] + np.ceil(lost + 3 * np.sqrt(lost) + 2)).astype(np.int64)
    todo = sparse
    while todo.size:
        owner_local, j = _expand(n_cand)
        owner = todo[owner_local]
        index = np.minimum((rng.uniform(stream, event_ids[owner], ccds[owner], j) * n_roi[owner]).astype(np.int64),
                           n_roi[owner] - 1)  # fmt: skip
        keys = owner.astype(np.int64) * base + index
        keep = ~is_present(keys)
        keys, owner, j, index = keys[keep], owner[keep], j[keep], index[keep]
        _, first = np.unique(keys, return_index=True)  # candidates are in (owner, j) order: first = smallest j
        first = np.sort(first)
        owner, j, index = owner[first], j[first], index[first]
        accepted = np.bincount(owner, minlength=m.size)
        starts = np.cumsum(accepted) - accepted
        rank = np.arange(owner.size) - starts[owner]
        done = accepted[todo] >= m[todo]
        take = (rank < m[owner]) & done[np.searchsorted(todo, owner)]
        out_owner.append(owner[take])
        out_rank.append(rank[take])
        out_index.append(index[take])
        todo, n_cand = todo[~done], n_cand[~done] * 2
    dense_idx = np.flatnonzero((m > 0) & dense)
    budget = 4_000_000
    start = 0
    while start < dense_idx.size:
        sizes = np.cumsum(n_roi[dense_idx[start:]])
        stop = start + max(1, int(np.searchsorted(sizes, budget, side="right")))
        batch = dense_idx[start:stop]
        owner_local, index = _expand(n_roi[batch])
        owner = batch[owner_local]
        keys = owner.astype(np.int64) * base + index
        keep = ~is_present(keys)
        owner, index = owner[keep], index[keep]
        u = rng.uniform(stream + "/dense", event_ids[owner], ccds[owner], index)
        order = np.lexsort((u, owner))
        owner, index = owner[order], index[order]
        counts = np.bincount(owner, minlength=m.size)
        rank = np.arange(owner.size) - (np.cumsum(counts) - counts)[owner]
        take = rank < m[owner]
        out_owner.append(owner[take])
        out_rank.append(rank[take])
        out_index.append(index[take])
        start = stop
    if not out_owner:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return (
        np.concatenate(out_owner).astype(np.int64),
        np.concatenate(out_rank).astype(np.int64),
        np.concatenate(out_index).astype(np.int64),
    )


# --------------------------------------------------------------------------------------
# the noise processes
# --------------------------------------------------------------------------------------
class _NoiseProcess(SimProcess):
    """Shared machinery of DarkCurrent and ElectronicNoise (sparse exact noise in the ROI)."""

    mode = Param("cropped-image", Choice(_MODES), doc="noise per event in its ROI, or one fixed full-image realisation")
    img_size = Param(300, Int(min=1), unit="pixel", doc="side of the square region of interest around an event")
    min_enlarge = Param(30, Int(min=0), unit="pixel", doc="ROI margin for events larger than img_size")

    #: ``"poisson"`` (dark current) or ``"gauss"`` (readout noise).
    component: ClassVar[str] = ""

    def __init__(self, threshold_e: float | None = None, **values: Any) -> None:
        super().__init__(**values)
        #: Reconstruction threshold (electrons; None: no reconstruction in the chain).
        self.threshold_e: float | None = None if threshold_e is None else float(threshold_e)
        self._full_cache: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, int]] = {}

    def with_threshold(self, threshold_e: float | None) -> _NoiseProcess:
        """A copy of this process that appends the noise-only pixels above ``threshold_e``.

        Parameters
        ----------
        threshold_e : float or None
            Reconstruction threshold (electrons); None when the chain has no reconstruction.
        """
        new = copy.copy(self)
        new.threshold_e = None if threshold_e is None else float(threshold_e)
        new._full_cache = {}
        return new

    # --- what a subclass provides --------------------------------------------------
    def model(self, data: SimEvents) -> dict[str, Any]:  # pragma: no cover - abstract
        """Parameters of this noise component (electrons)."""
        raise NotImplementedError

    def metadata(self, model: dict[str, Any], data: SimEvents) -> dict[str, Any]:  # pragma: no cover - abstract
        """What to record in ``data.results[self.name]``."""
        raise NotImplementedError

    # --- the run -------------------------------------------------------------------
    def run(self, data: SimEvents, context: RunContext) -> None:
        if data.pixels is None:
            raise ConfigError(f"{self.name} needs PixelizeSignal earlier in the chain")
        threshold = self.threshold_e
        e2ev = float(data.detector.e2eV)
        model = self.model(data)
        state = data.results.setdefault(NOISE_STATE, {"components": []})
        prior = list(state["components"])
        for other in prior:
            if other["mode"] != self.mode:
                raise ConfigError(
                    f"{self.name}.mode is {self.mode!r} but {other['process']}.mode is {other['mode']!r}",
                    hint="use the same mode for DarkCurrent and ElectronicNoise",
                )
            if other["component"] == self.component:
                raise ProcessError(f"{self.name}: two {self.component} noise components in one chain")
        if self.component == "poisson" and prior:
            raise ProcessError("DarkCurrent must run before ElectronicNoise (keep their default order)")
        if prior and state.get("threshold_e") != threshold:
            raise ProcessError(f"{self.name}: the noise processes of a chunk must see the same threshold")
        pixels = data.pixels
        if "noise" not in pixels:
            pixels["noise"] = np.zeros(pixels["event"].size)
        starts, counts = _collections(pixels)
        coll_event = pixels["event"][starts] if starts.size else np.zeros(0, dtype=np.int64)
        coll_ccd = pixels["ccd"][starts] if starts.size else np.zeros(0, dtype=np.int64)
        roi = self._roi(state, data, starts, coll_event, coll_ccd)
        alive_coll = ~data.killed[coll_event]
        alive_pix = np.repeat(alive_coll, counts)
        # 1. noise of the pixels present (signal, and noise-only pixels of the previous process)
        idx = np.flatnonzero(alive_pix)
        values = self._pixel_noise(data, model, idx)
        pixels["noise"] = pixels["noise"].astype(np.float64, copy=True)
        pixels["noise"][idx] += values * e2ev
        appended = 0
        if threshold is not None:
            new = self._append(data, model, prior, threshold, starts, counts, coll_event, coll_ccd, roi, alive_coll)
            if new is not None:
                appended = new["event"].size
                new["noise"] = new["noise"] * e2ev
                self._merge(data, new)
            pixels = data.pixels
            noise_only = pixels["edep"] == 0
            drop = noise_only & ~(pixels["noise"] > threshold * e2ev) & ~data.killed[pixels["event"]]
            if drop.any():
                data.pixels = {k: v[~drop] for k, v in pixels.items()}
        state["components"].append({"process": self.name, "component": self.component, "mode": self.mode, **model})
        state["threshold_e"] = threshold
        info = self.metadata(model, data)
        info.update(mode=self.mode, threshold_e=threshold, n_noise_pixels_appended=int(appended))
        data.results[self.name] = info

    # --- ROI -----------------------------------------------------------------------
    def _roi(
        self, state: dict[str, Any], data: SimEvents, starts: np.ndarray, event: np.ndarray, ccd: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The ROI of every collection: computed by the first noise process, reused by the next."""
        shape = tuple(int(v) for v in data.detector.ccd_shape)
        stored = state.get("roi")
        same = stored is not None and np.array_equal(stored["event"], event) and np.array_equal(stored["ccd"], ccd)
        if same:
            return stored
        if starts.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            roi = {"row0": empty, "col0": empty, "nrows": empty, "ncols": empty}
        else:
            pixels = data.pixels
            roi = region_of_interest(pixels["row"], pixels["col"], starts, shape, self.img_size, self.min_enlarge)
        if stored is not None and stored["event"].size:  # new collections (should not happen): keep known ROIs
            key_new = event.astype(np.int64) * 1_000_003 + ccd
            key_old = stored["event"].astype(np.int64) * 1_000_003 + stored["ccd"]
            pos = np.searchsorted(key_old, key_new)
            pos = np.minimum(pos, max(key_old.size - 1, 0))
            known = (key_old.size > 0) & (key_old[pos] == key_new)
            for name in ("row0", "col0", "nrows", "ncols"):
                roi[name] = np.where(known, stored[name][pos], roi[name])
        roi = {**roi, "event": event.copy(), "ccd": ccd.copy(), "ccd_shape": np.asarray(shape)}
        state["roi"] = roi
        return roi

    # --- noise of present pixels -----------------------------------------------------
    def _stream(self, suffix: str) -> str:
        return f"{self.name}/{suffix}"

    def _pixel_noise(self, data: SimEvents, model: dict[str, Any], idx: np.ndarray) -> np.ndarray:
        """Noise (electrons) of the pixels ``idx`` of ``data.pixels``."""
        pixels = data.pixels
        row, col, ccd = pixels["row"][idx], pixels["col"][idx], pixels["ccd"][idx]
        if self.mode == "full-image":
            keys: tuple[Any, ...] = (ccd, row, col)
            stream = self._stream("full-image")
        else:
            keys = (data.event_ids[pixels["event"][idx]], ccd, row, col)
            stream = self._stream("pixel")
        return self._draw(data.rng, model, stream, keys, row)

    def _draw(
        self, rng: CounterRNG, model: dict[str, Any], stream: str, keys: tuple[Any, ...], row: np.ndarray
    ) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- appended noise-only pixels ------------------------------------------------
    @staticmethod
    def _lambda(component: dict[str, Any] | None, row: np.ndarray) -> np.ndarray:
        """Dark-current mean (electrons) at the given rows (0 without dark current)."""
        if component is None:
            return np.zeros(np.shape(row))
        return component["lam0"] + component["slope"] * np.asarray(row, dtype=np.float64)

    def _tail_probability(
        self, model: dict[str, Any], prior_dc: dict[str, Any] | None, threshold: float, row: np.ndarray
    ) -> np.ndarray:
        if self.component == "poisson":
            return poisson_tail_probability(self._lambda(model, row), threshold)
        return gauss_tail_probability(self._lambda(prior_dc, row), threshold, model["mu"], model["sigma"])

    def _append(
        self,
        data: SimEvents,
        model: dict[str, Any],
        prior: list[dict[str, Any]],
        threshold: float,
        starts: np.ndarray,
        counts: np.ndarray,
        coll_event: np.ndarray,
        coll_ccd: np.ndarray,
        roi: dict[str, np.ndarray],
        alive: np.ndarray,
    ) -> dict[str, np.ndarray] | None:
        """Noise-only pixels of every alive collection whose noise exceeds the threshold."""
        if starts.size == 0 or not alive.any():
            return None
        prior_dc = next((c for c in prior if c["component"] == "poisson"), None)
        pixels = data.pixels
        coll_of_pixel = np.repeat(np.arange(starts.size), counts)
        present = (pixels["row"] - roi["row0"][coll_of_pixel]) * roi["ncols"][coll_of_pixel] + (
            pixels["col"] - roi["col0"][coll_of_pixel]
        )
        sel = alive[coll_of_pixel]
        if self.mode == "full-image":
            owner, index, values = self._full_image_pixels(
                data, model, prior_dc, threshold, roi, alive, present[sel], coll_of_pixel[sel]
            )
        else:
            owner, index, values = self._cropped_pixels(
                data, model, prior_dc, threshold, roi, alive, coll_event, coll_ccd, present[sel], coll_of_pixel[sel]
            )
        if owner.size == 0:
            return None
        new: dict[str, np.ndarray] = {}
        for name, column in pixels.items():
            fill = _NOISE_ONLY_FILL.get(name, 0)
            new[name] = np.full(owner.size, fill, dtype=column.dtype)
        new["event"] = coll_event[owner].astype(pixels["event"].dtype)
        new["ccd"] = coll_ccd[owner].astype(pixels["ccd"].dtype)
        new["row"] = (roi["row0"][owner] + index // roi["ncols"][owner]).astype(pixels["row"].dtype)
        new["col"] = (roi["col0"][owner] + index % roi["ncols"][owner]).astype(pixels["col"].dtype)
        new["noise"] = values.astype(np.float64)
        return new

    def _cropped_pixels(
        self,
        data: SimEvents,
        model: dict[str, Any],
        prior_dc: dict[str, Any] | None,
        threshold: float,
        roi: dict[str, np.ndarray],
        alive: np.ndarray,
        coll_event: np.ndarray,
        coll_ccd: np.ndarray,
        present: np.ndarray,
        present_owner: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = data.rng
        n_roi = roi["nrows"] * roi["ncols"]
        n_present = np.bincount(present_owner, minlength=n_roi.size)
        n_empty = np.where(alive, n_roi - n_present, 0)
        dc = model if self.component == "poisson" else prior_dc
        per_row = dc is not None and dc["slope"] != 0
        # the tail probability grows with the dark current, hence with the row in per-row mode
        last_row = roi["row0"] + roi["nrows"] - 1
        p_max = self._tail_probability(model, prior_dc, threshold, last_row if per_row else np.zeros(n_roi.size))
        if per_row:
            p_first = self._tail_probability(model, prior_dc, threshold, roi["row0"])
            p_max = np.maximum(p_max, p_first)
        event_ids = data.event_ids[coll_event]
        m = np.zeros(n_roi.size, dtype=np.int64)
        draw = (n_empty > 0) & (p_max > 0)
        if draw.any():
            u = rng.uniform(self._stream("count"), event_ids[draw], coll_ccd[draw])
            m[draw] = stats.binom.ppf(u, n_empty[draw], np.minimum(p_max[draw], 1.0)).astype(np.int64)
        m = np.minimum(m, n_empty)
        owner, rank, index = _sample_positions(
            rng, self._stream("position"), event_ids, coll_ccd, m, n_roi, present, present_owner
        )
        if owner.size == 0:
            return owner, index, np.zeros(0)
        keys = (event_ids[owner], coll_ccd[owner], rank)
        row = roi["row0"][owner] + index // roi["ncols"][owner]
        if per_row:  # thinning: keep each candidate with probability p(row) / p_max (exact)
            p_row = self._tail_probability(model, prior_dc, threshold, row)
            keep = rng.uniform(self._stream("thin"), *keys) * p_max[owner] < p_row
            owner, rank, index, row = owner[keep], rank[keep], index[keep], row[keep]
            keys = (event_ids[owner], coll_ccd[owner], rank)
        if self.component == "poisson":
            values = poisson_tail_sample(
                self._lambda(model, row), threshold, rng.uniform(self._stream("tail-k"), *keys)
            )
        else:
            values = gauss_tail_sample(
                self._lambda(prior_dc, row),
                threshold,
                model["mu"],
                model["sigma"],
                rng.uniform(self._stream("tail-k"), *keys),
                rng.uniform(self._stream("tail-g"), *keys),
            )
        return owner, index, values.astype(np.float64)

    # --- full-image mode -----------------------------------------------------------
    def _full_values(
        self, data: SimEvents, model: dict[str, Any], prior_dc: dict[str, Any] | None, ccd: Any, rows: np.ndarray
    ) -> np.ndarray:
        """Fixed total noise (electrons) of rows ``rows`` of CCD ``ccd`` (all columns), so far in the chain."""
        n_cols = int(data.detector.ccd_shape[1])
        r = rows[:, None]
        c = np.arange(n_cols)[None, :]
        keys = (ccd, r, c)
        value = self._draw(data.rng, model, self._stream("full-image"), keys, np.broadcast_to(r, (rows.size, n_cols)))
        if prior_dc is not None:
            lam = self._lambda(prior_dc, np.broadcast_to(r, (rows.size, n_cols)))
            u = data.rng.uniform(f"{prior_dc['process']}/full-image", *keys)
            value = value + poisson_from_uniform(u, lam)
        return value

    def _full_image_pixels(
        self,
        data: SimEvents,
        model: dict[str, Any],
        prior_dc: dict[str, Any] | None,
        threshold: float,
        roi: dict[str, np.ndarray],
        alive: np.ndarray,
        present: np.ndarray,
        present_owner: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_cols_ccd = int(data.detector.ccd_shape[1])
        out_owner, out_index, out_values = [], [], []
        n_roi = roi["nrows"] * roi["ncols"]
        base = np.int64(int(n_roi.max(initial=1)) + 1)
        present_keys = np.sort(present_owner.astype(np.int64) * base + present)
        colls = np.flatnonzero(alive)
        for ccd in np.unique(roi["ccd"][colls]):
            keys, values = self._full_ccd(data, model, prior_dc, threshold, ccd)
            mine = colls[roi["ccd"][colls] == ccd]
            for batch in np.array_split(mine, max(1, mine.size // 2000)):
                if batch.size == 0:
                    continue
                owner_local, row_in = _expand(roi["nrows"][batch])
                owner = batch[owner_local]
                row = roi["row0"][owner] + row_in
                lo = np.searchsorted(keys, row * n_cols_ccd + roi["col0"][owner])
                hi = np.searchsorted(keys, row * n_cols_ccd + roi["col0"][owner] + roi["ncols"][owner])
                pair, offset = _expand(hi - lo)
                hit = lo[pair] + offset
                owner = owner[pair]
                r, c = keys[hit] // n_cols_ccd, keys[hit] % n_cols_ccd
                index = (r - roi["row0"][owner]) * roi["ncols"][owner] + (c - roi["col0"][owner])
                absent = ~_member(present_keys, owner.astype(np.int64) * base + index)
                out_owner.append(owner[absent])
                out_index.append(index[absent])
                out_values.append(values[hit][absent])
        if not out_owner:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        return np.concatenate(out_owner), np.concatenate(out_index), np.concatenate(out_values)

    def _full_ccd(
        self, data: SimEvents, model: dict[str, Any], prior_dc: dict[str, Any] | None, threshold: float, ccd: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted linear indices (row * cols + col) and noise (e-) of the CCD pixels above the threshold."""
        n_rows, n_cols = (int(v) for v in data.detector.ccd_shape)
        cache_key = (
            int(ccd),
            threshold,
            data.rng.seed,
            n_rows,
            n_cols,
            tuple(sorted((k, v) for k, v in model.items() if isinstance(v, int | float))),
            None if prior_dc is None else (prior_dc["process"], prior_dc["lam0"], prior_dc["slope"]),
        )
        if cache_key in self._full_cache:
            keys, values, _ = self._full_cache[cache_key]
            return keys, values
        block = max(1, 2_000_000 // max(n_cols, 1))
        found_keys, found_values = [], []
        for start in range(0, n_rows, block):
            rows = np.arange(start, min(start + block, n_rows))
            value = self._full_values(data, model, prior_dc, ccd, rows)
            r, c = np.nonzero(value > threshold)
            found_keys.append((rows[r] * n_cols + c).astype(np.int64))
            found_values.append(value[r, c].astype(np.float64))
        keys = np.concatenate(found_keys)
        values = np.concatenate(found_values)
        self._full_cache[cache_key] = (keys, values, n_cols)
        log.info("%s: full-image noise of CCD %s: %d pixels above %.3g e-", self.name, ccd, keys.size, threshold)
        return keys, values

    # --- bookkeeping ---------------------------------------------------------------
    @staticmethod
    def _merge(data: SimEvents, new: dict[str, np.ndarray]) -> None:
        """Insert new pixels keeping the (event, ccd, row, col) order (two sorted runs: a linear merge)."""
        pixels = data.pixels
        merged = {k: np.concatenate([v, new[k]]) for k, v in pixels.items()}
        key = pixel_key(merged["event"], merged["ccd"], merged["row"], merged["col"])
        order = np.argsort(key, kind="stable")
        data.pixels = {k: v[order] for k, v in merged.items()}


class DarkCurrent(_NoiseProcess):
    """Dark current: Poisson(darkcurrent x exp_time) electrons per pixel, sparse above the threshold."""

    name: ClassVar[str] = "DarkCurrent"
    order: ClassVar[int] = 40
    component: ClassVar[str] = "poisson"

    darkcurrent = Param(0.001, Float(min=0), unit="e/pixel/day", doc="dark current")
    exp_time = Param(8.0 / 24.0, Float(min=0), unit="day", doc="exposure time of the image")
    exp_mode = Param(
        "exposure",
        Choice(["exposure", "exposure-per-row"]),
        doc="'exposure-per-row': a row read r rows after the first collects darkcurrent*row_readtime*r more",
    )
    row_readtime = Param(1.0, Float(min=0), unit="day", doc="readout time of one row (exposure-per-row mode)")

    def model(self, data: SimEvents) -> dict[str, Any]:
        slope = self.darkcurrent * self.row_readtime if self.exp_mode == "exposure-per-row" else 0.0
        return {"lam0": float(self.darkcurrent * self.exp_time), "slope": float(slope)}

    def metadata(self, model: dict[str, Any], data: SimEvents) -> dict[str, Any]:
        return {
            "darkcurrent_e_per_pixel_per_day": self.darkcurrent * 86400.0,
            "exp_time_s": self.exp_time,
            "exp_mode": self.exp_mode,
            "lambda_e": model["lam0"],
            "lambda_e_per_row": model["slope"],
        }

    def _draw(
        self, rng: CounterRNG, model: dict[str, Any], stream: str, keys: tuple[Any, ...], row: np.ndarray
    ) -> np.ndarray:
        lam = self._lambda(model, row)
        return poisson_from_uniform(rng.uniform(stream, *keys), lam).astype(np.float64)


class ElectronicNoise(_NoiseProcess):
    """Readout noise: Normal(pedestal, sigma / sqrt(nSamples)) electrons per pixel, sparse above the threshold."""

    name: ClassVar[str] = "ElectronicNoise"
    order: ClassVar[int] = 50
    component: ClassVar[str] = "gauss"

    pedestal = Param(0.0, Float(), unit="e", doc="mean of the readout noise")
    sigma = Param(0.25, Float(min=0), unit="e", doc="readout noise of one sample")
    nSamples = Param(1, Int(min=1), doc="samples averaged per pixel (noise sigma / sqrt(nSamples))")

    def model(self, data: SimEvents) -> dict[str, Any]:
        return {"mu": float(self.pedestal), "sigma": float(self.sigma / math.sqrt(self.nSamples))}

    def metadata(self, model: dict[str, Any], data: SimEvents) -> dict[str, Any]:
        return {
            "pedestal_e": self.pedestal,
            "sigma_e": self.sigma,
            "nSamples": self.nSamples,
            "sigma_pixel_e": model["sigma"],
        }

    def _draw(
        self, rng: CounterRNG, model: dict[str, Any], stream: str, keys: tuple[Any, ...], row: np.ndarray
    ) -> np.ndarray:
        return model["mu"] + model["sigma"] * rng.normal(stream, *keys)


class PixelSaturation(SimProcess):
    """Clip pixel values (signal + noise) at the saturation level; keep the unclipped value and a flag."""

    name: ClassVar[str] = "PixelSaturation"
    order: ClassVar[int] = 55

    saturation = Param(65535.0, Float(min=0), unit="ADU", doc="saturation level (converted with detector.ADC2eV)")

    def run(self, data: SimEvents, context: RunContext) -> None:
        if data.pixels is None:
            raise ConfigError(f"{self.name} needs PixelizeSignal earlier in the chain")
        adc2ev = data.detector.ADC2eV
        if adc2ev is None:
            raise ProcessError(
                f"{self.name} needs detector.ADC2eV (eV per ADU) to convert the saturation level",
                hint="set ADC2eV in the CF (detector) section, e.g. 0.72",
            )
        level = float(self.saturation * adc2ev)
        pixels = data.pixels
        noise = pixels.get("noise")
        noise = np.zeros(pixels["edep"].size) if noise is None else noise.astype(np.float64)
        total = pixels["edep"] + noise
        saturated = total > level
        pixels["total_unclipped"] = total
        pixels["saturated"] = saturated.astype(np.int8)
        pixels["noise"] = np.where(saturated, level - pixels["edep"], noise)
        n = int(saturated.sum())
        data.count("saturated pixels (clipped)", n)
        data.results[self.name] = {"saturation_ADU": self.saturation, "saturation_eV": level, "n_saturated": n}


def with_reconstruction_threshold(processes: list[SimProcess]) -> list[SimProcess]:
    """The chain with the noise processes given the reconstruction threshold, read once from it.

    The threshold (electrons) is ClusterFinder's ``spr_threshold``; without a ClusterFinder
    in the chain it is None (noise on the signal pixels only).

    Parameters
    ----------
    processes : list of SimProcess
        The simulation chain in run order.

    Returns
    -------
    list of SimProcess
        The same processes, the noise ones replaced by copies holding the threshold.
    """
    finder = next((p for p in processes if p.name == "ClusterFinder"), None)
    threshold = getattr(finder, "spr_threshold", None)
    return [p.with_threshold(threshold) if isinstance(p, _NoiseProcess) else p for p in processes]
