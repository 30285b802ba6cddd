"""Reconstruction of simulated events: threshold, clustering and cluster quantities.

``ClusterFinder`` of a simulation configuration (registered as ``ClusterFinder@sim``)
clusters the pixels of every (event, CCD) collection of a chunk at once: pixel
coordinates of different collections are set far apart, so one KD-tree links the
pixels of all events within the linking radius (pysimdamicm's method 1, radius
``sqrt(2)·N``; method 0 = 8-connectivity = N = 1) without ever linking two events.
Cluster quantities are those of the analysis (:mod:`waders.io.clusters`, shared with
waders-ana; pysimdamicm's names, 1-based pixels,
energies in keV), with the simulation extras: depth (Z) statistics, times, the particle
codes and flags per pixel.

It also builds the **true clusters** (``clustersTrue``): the same clustering of the
noiseless signal, with no threshold, so that efficiency and resolution can be studied
(pysimdamicm wrote only the reconstructed ones).

Deliberate differences from pysimdamicm: the threshold applies to signal + noise of every
pixel in the event's region (noise-only pixels above it included), never to a full noise
image; a missing threshold with noise processes active is an error instead of half the
image becoming candidates; the cluster of the pixels' particle flags is kept per pixel
and per cluster as documented.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from waders.core import Param
from waders.core.errors import ConfigError
from waders.core.kinds import Float, Int, Optional
from waders.core.lazy import lazy_module
from waders.core.pipeline import RunContext

from .base import SimProcess
from .events import SimEvents

ak = lazy_module("awkward")

__all__ = ["ClusterFinder", "clusters_by_event", "link_pixels"]

_FLAGS = ("neutron", "gamma", "alpha", "ion", "electron", "silicon")


def link_pixels(rows: np.ndarray, cols: np.ndarray, group: np.ndarray, radius: float) -> tuple[np.ndarray, int]:
    """Single-linkage clusters of pixels within ``radius``, never across groups.

    Parameters
    ----------
    rows, cols : ndarray of int
        Pixel coordinates.
    group : ndarray of int
        Collection of every pixel (pixels of different groups are never linked).
    radius : float
        Linking distance (pixels).

    Returns
    -------
    labels : ndarray of int64
        Cluster of every pixel, ``0 .. n-1``.
    n : int
        Number of clusters.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    m = rows.size
    if m == 0:
        return np.zeros(0, dtype=np.int64), 0
    span = float(np.max(cols) - np.min(cols)) + 4 * radius + 10
    points = np.column_stack([rows.astype(np.float64), cols.astype(np.float64) + group.astype(np.float64) * span])
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    n, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64), int(n)


class ClusterFinder(SimProcess):
    """Threshold and cluster the pixels of every simulated event (clustersRec and clustersTrue)."""

    name: ClassVar[str] = "ClusterFinder"
    order: ClassVar[int] = 500

    method = Param(1, Int(min=0, max=1), doc="1: radius linkage (sqrt(2)*N); 0: 8-connected (N = 1)")
    max_nearest_neighbor = Param(2, Int(min=1), doc="N of the linking radius sqrt(2)*N (pixels)")
    spr_threshold = Param(
        None, Optional(Float(min=0)), unit="e", doc="pixel threshold in electrons (signal + noise); null = any signal"
    )
    true_clusters = Param(True, doc="also build the clusters of the noiseless signal (clustersTrue)")

    ignored_keys: ClassVar[dict[str, str]] = {
        "threshold": "pysimdamicm's SignalPatternRecognition key; use spr_threshold (electrons)",
        "get_fitted_STD": "fitted cluster profiles are not computed for simulations (as pysimdamicm)",
    }

    @property
    def radius(self) -> float:
        """Linking radius (pixels)."""
        n = 1 if self.method == 0 else self.max_nearest_neighbor
        return float(np.sqrt(2.0) * n + 1e-7)

    def run(self, data: SimEvents, context: RunContext) -> None:
        if data.pixels is None:
            raise ConfigError("ClusterFinder in a simulation needs PixelizeSignal earlier in the chain")
        pixels = data.pixels
        e2ev = data.detector.e2eV
        noise = pixels.get("noise")
        # the measured signal: with Diffusion, the collected electrons (Fano fluctuations, charge collection
        # losses) times e2eV, as pysimdamicm; without it, the deposited energy
        signal = pixels["charge"] * e2ev if data.carriers is not None else pixels["edep"]
        total = signal + (noise if noise is not None else 0.0)
        if self.spr_threshold is not None:
            keep = total > self.spr_threshold * e2ev
        else:
            if "noise" in data.results:  # noise processes ran (saturation alone also creates the field)
                raise ConfigError(
                    "ClusterFinder.spr_threshold is needed when noise processes are active",
                    hint="set it in electrons, e.g. 4 sigma of the readout noise",
                )
            keep = pixels["edep"] > 0
        alive = ~data.killed[pixels["event"]]
        data.clusters = self._clusters(data, {k: v[keep & alive] for k, v in pixels.items()}, total[keep & alive])
        data.kill(
            ~np.isin(np.arange(data.n_events), pixels["event"][keep & alive]) & ~data.killed, "no pixel above threshold"
        )
        if self.true_clusters:
            has_signal = (pixels["edep"] > 0) & alive
            data.true_clusters = self._clusters(
                data, {k: v[has_signal] for k, v in pixels.items()}, pixels["edep"][has_signal]
            )
        data.results[self.name] = {
            "n_clusters": len(data.clusters),
            "threshold_eV": None if self.spr_threshold is None else self.spr_threshold * e2ev,
        }

    def _clusters(self, data: SimEvents, pixels: dict[str, np.ndarray], energy_ev: np.ndarray) -> ak.Array:
        from waders.io.clusters import Groups, cluster_quantities, clusters_array

        group_key = pixels["event"].astype(np.int64) * 1_000_003 + pixels["ccd"].astype(np.int64)
        _, group = np.unique(group_key, return_inverse=True)
        labels, n = link_pixels(pixels["row"], pixels["col"], group, self.radius)
        order = np.lexsort((pixels["col"], pixels["row"], labels))
        labels = labels[order]
        pix = {k: v[order] for k, v in pixels.items()}
        energy_kev = energy_ev[order] / 1000.0
        counts = np.bincount(labels, minlength=n)
        groups = Groups(counts)
        first = groups.starts
        coordinates = {"X": pix["col"] + 1.0, "Y": pix["row"] + 1.0, "Z": pix["z"]}
        scalars: dict[str, np.ndarray] = {
            "event": data.event_ids[pix["event"][first]],
            "ccd": pix["ccd"][first].astype(np.int32),
        }
        scalars.update(cluster_quantities(groups, coordinates, np.maximum(energy_kev, 1e-12)))
        # cluster ids 1..n within each event, in order of first appearance
        event_of = scalars["event"]
        order_in_event = np.argsort(event_of, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        starts = np.searchsorted(event_of[order_in_event], event_of[order_in_event], side="left")
        rank[order_in_event] = np.arange(n) - starts
        scalars["cluster_id"] = (rank + 1).astype(np.int32)
        time = pix["time"]
        scalars["wTime"] = groups.sum(energy_kev * time) / np.maximum(groups.sum(energy_kev), 1e-300)
        scalars["meanTime"] = groups.mean(time)
        scalars["minTime"] = groups.min(time)
        scalars["timeQmax"] = time[groups.first_argmax(energy_kev)] if n else np.zeros(0)
        scalars["charge"] = groups.sum(pix["charge"].astype(np.float64))
        for flag in _FLAGS:
            values = pix.get(flag, np.zeros(energy_kev.size, dtype=np.int8))
            scalars[f"is{flag}"] = groups.max(values.astype(np.int32)) if n else np.zeros(0, dtype=np.int32)
        per_pixel = {
            "pixels_x": (pix["col"] + 1).astype(np.int32),
            "pixels_y": (pix["row"] + 1).astype(np.int32),
            "pixels_z": pix["z"].astype(np.float64),
            "pixels_E": energy_kev,
            "pixels_time": time.astype(np.float64),
            "pixels_charge": pix["charge"].astype(np.int32),
            "primary_part": pix["pdg"].astype(np.int32),
        }
        if "std_time" in pix:
            per_pixel["pixels_std_time"] = pix["std_time"].astype(np.float64)
        if "saturated" in pix:  # PixelSaturation ran: clipped pixels and the true (unclipped) signal
            saturated = pix["saturated"].astype(np.int32)
            per_pixel["pixels_saturated"] = saturated
            scalars["Npix_sat"] = groups.sum(saturated.astype(np.float64)) if n else np.zeros(0)
            true_kev = pix["edep"].astype(np.float64) / 1000.0
            per_pixel["pixels_E_MCT"] = true_kev
            scalars["Energy_MCT"] = groups.sum(true_kev) if n else np.zeros(0)
            scalars["Npix_MCT"] = (
                groups.sum((true_kev > 0).astype(np.float64)).astype(np.int32) if n else np.zeros(0, np.int32)
            )
        # image window of every pixel (pysimdamicm's time_img_pixel), and its mean per cluster
        img_time = np.floor(np.maximum(time, 0.0) / data.detector.img_exp_time).astype(np.int32)
        per_pixel["pixels_img_time"] = img_time
        scalars["img_time"] = groups.mean(img_time.astype(np.float64)) if n else np.zeros(0)
        for flag in _FLAGS:
            if flag in pix:
                per_pixel[f"{flag}_in_pixel"] = pix[flag].astype(np.int32)
        clusters = clusters_array(scalars, per_pixel, counts)
        return clusters[np.lexsort((scalars["cluster_id"], scalars["event"]))]


def clusters_by_event(clusters: ak.Array) -> tuple[np.ndarray, ak.Array]:
    """Group a flat clusters array into entries (one per event id that has clusters)."""
    events = ak.to_numpy(clusters["event"]) if len(clusters) else np.zeros(0, dtype=np.int64)
    ids, counts = np.unique(events, return_counts=True)
    return ids, ak.unflatten(clusters, counts)
