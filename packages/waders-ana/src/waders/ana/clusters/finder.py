"""ClusterFinder: threshold the calibrated image and group the pixels above threshold into clusters.

Per amplifier (pysimdamicm's B.9): the image ``spr_image`` is taken on the amplifier's
active region (zero outside it and on ``skip_rows``/``skip_cols``), candidate and seed
pixels are selected with ``spr_threshold`` (:mod:`.threshold`), and candidates are grouped
by 8-connectivity (method 0) or radius single linkage (method 1, :mod:`.labelling`).
The clusters of all amplifiers are then described together (:mod:`.properties`) and
stored as one awkward Array in ``image.results["ClusterFinder"]["clusters"]``, with
``cluster_id`` = 1, 2, ... over the amplifiers in processing order.

Coordinates: amplifier images are stored in readout order; cluster coordinates are
1-based **file** coordinates (``pixels_x = file column + 1``), so the clusters of the
mirrored ``U`` amplifier appear where they are in the FITS image.  ``skip_rows``,
``skip_cols`` (and ApplySelectionCuts' hot rows/columns) are 0-based file coordinates
too, like in pysimdamicm.

Deliberate differences from pysimdamicm: pixels exactly at the candidate cut are
clustered (pysimdamicm listed them but labelled without them); ``only_cls_seed`` applies
to both methods; the closest cluster never excludes a cluster because it shares a
``PosX`` or ``PosY`` value; ``readout_start`` is the readout start (pysimdamicm stored the
exposure start there, which is now ``exposure_start``); the fitted projections
(``get_fitted_STD``: ``fSTD_X``, ``fPosX``, ``projectionX``...) are fits of the
pixel-integrated Gaussian (see :mod:`waders.ana.clusters.profiles`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Process, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError
from waders.core.image import Amplifier
from waders.core.kinds import JSON, Int
from waders.core.lazy import lazy_module

from ..base import INDEX_RANGES, file_index_selector
from ..saturation import saturated_at
from ..summary import SummaryPart
from .labelling import keep_seeded, label_candidates
from .mask import SELECTION
from .profiles import fitted_profiles
from .properties import Groups, closest_clusters, cluster_quantities, clusters_array, seed_quantities
from .threshold import Threshold, ThresholdKind, resolve_threshold

ak = lazy_module("awkward")

__all__ = ["ClusterFinder", "find_clusters"]

#: Products whose pixel values are copied into the clusters: suffix -> name relative to the image chain.
#: Raw-stage pixel values stored per cluster (``pixels_E_<stage>``, ``Energy_<stage>``, ADU) when the product exists;
#: ECTS is the column-transient-corrected image of ColumnTransientProcess (``..._correct_cols``).
_STAGES = (("AVG", ""), ("PS", "_pedestal_subtracted"), ("ECTS", "_pedestal_subtracted_correct_cols"))


@dataclass
class _AmplifierClusters:
    """Grouped pixels of the clusters of one amplifier (file coordinates, 1-based)."""

    index: int
    threshold: Threshold
    counts: np.ndarray
    x: np.ndarray
    y: np.ndarray
    charge_e: np.ndarray
    seeds: np.ndarray
    hot: np.ndarray
    stages: dict[str, np.ndarray] = field(default_factory=dict)
    n_candidates: int = 0
    saturated: np.ndarray | None = None


def _timestamp(value: Any) -> float:
    """UNIX time (s) of an ISO time stamp; NaN if absent or unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return math.nan
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return math.nan
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def _stage_products(spr_image: str) -> dict[str, str]:
    """Names of the mean-compressed and pedestal-subtracted products behind ``spr_image``."""
    base = spr_image[:-2] if spr_image.endswith("_e") else spr_image
    suffix = "_pedestal_subtracted"
    if not base.endswith(suffix):
        return {}
    base = base[: -len(suffix)]
    return {stage: base + tail for stage, tail in _STAGES}


class ClusterFinder(Process):
    """Find clusters of charge: threshold ``[sigma, n_pix, n_seed]``, then 8-connectivity or single linkage.

    Stores ``image.results["ClusterFinder"]["clusters"]`` (awkward Array, one record per
    cluster with pysimdamicm's quantities and ``pixels_*`` lists) and records per amplifier
    ``n_clusters``, ``sigma_e``, ``q_cut``/``q_seed`` (image units) and ``q_cut_e``/``q_seed_e``.
    """

    domain: ClassVar[str] = "ana"
    order: ClassVar[int] = 40
    summary_order: ClassVar[int] = 50
    imports: ClassVar[tuple[str, ...]] = ("awkward", "scipy.ndimage", "scipy.spatial", "scipy.special")
    products = (
        Product(
            "clusters",
            "table",
            "keV",
            "one record per cluster (energies in keV, positions in 1-based file pixels, pixels_* lists); "
            "written as the clustersRec tree",
        ),
        Product("n_clusters", "result", doc="clusters found in the amplifier"),
        Product("sigma_e", "result", "e-", "noise sigma of the thresholds"),
        Product("q_cut_e", "result", "e-", "pixel threshold (q_cut in the image unit)"),
        Product("q_seed_e", "result", "e-", "seed threshold (q_seed in the image unit)"),
    )

    spr_threshold = Param(
        [None, 3, 4],
        ThresholdKind(),
        per_amplifier=True,
        doc="[sigma, n_pix, n_seed]: pixels >= n_pix sigma, seeds >= n_seed sigma; sigma null = pedestal noise / "
        "gain, a number = e-, a string = header keyword (ADU); or a plain threshold in e-, or null",
    )
    spr_image = Param(
        "mean_compressed_pedestal_subtracted_e", doc="image to cluster (electrons if its name ends in _e)"
    )
    spr_sigma_mean = Param(True, doc="sigma null: mean (true) or median (false) of the pedestal sigmas")
    skip_rows = Param([], INDEX_RANGES, per_amplifier=True, doc="file rows (0-based, [a, b] closed) set to 0")
    skip_cols = Param([], INDEX_RANGES, per_amplifier=True, doc="file columns (0-based, [a, b] closed) set to 0")
    only_cls_seed = Param(False, doc="keep only clusters with at least one seed pixel")
    method = Param(0, Int(min=0, max=1), doc="0: 8-connected components; 1: single linkage within sqrt(2) N")
    max_nearest_neighbor = Param(1, Int(min=1), doc="N of method 1 (1 = 8-connectivity, 2 = one empty pixel apart)")
    ismoskita = Param([False, None], JSON(), doc="MOSKITA per-block noise from a CSV: not supported (must be false)")

    ignored_keys: ClassVar[dict[str, str]] = {
        "spr_mask": "never used by pysimdamicm (not an attribute of its ClusterFinder)",
        "get_fitted_STD": "per-cluster Gaussian fits of the projections are not computed; use wSTD_X/wSTD_Y",
        "split_image_in_rows": "row splitting only bounded pysimdamicm's O(N^2) memory; the KD-tree needs none",
        "min_length": "row splitting is not needed (see split_image_in_rows)",
        "consecutive_ones": "row splitting is not needed (see split_image_in_rows)",
        "qmax_to_split_in_rows": "row splitting is not needed (see split_image_in_rows)",
        "hot_cols_tosplit": "row splitting is not needed (see split_image_in_rows)",
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._check_moskita()

    def _set(self, key: str, value: Any) -> None:
        super()._set(key, value)
        if key == "ismoskita":
            self._check_moskita()

    def _check_moskita(self) -> None:
        flag = self.ismoskita[0] if isinstance(self.ismoskita, list) and self.ismoskita else self.ismoskita
        if flag not in (False, 0, None):
            raise ConfigError(
                f"{self.name}.ismoskita: the MOSKITA per-block noise is not supported (set [false, null])"
            )

    # --- per amplifier ---------------------------------------------------------------------
    def _amplifier(self, image: SkipperImage, amplifier: Amplifier, index: int) -> _AmplifierClusters:
        geometry = amplifier.geometry
        names = amplifier.names
        data = np.asarray(amplifier.get(self.spr_image), dtype=np.float64)
        threshold = resolve_threshold(
            self.value_for("spr_threshold", names),
            image=image,
            amplifier=amplifier,
            in_electrons=self.spr_image.endswith("_e"),
            sigma_mean=self.spr_sigma_mean,
            process=self.name,
        )
        work = np.zeros(geometry.shape)
        rows, cols = geometry.region("active")
        work[rows, cols] = data[rows, cols]
        work[file_index_selector(self.value_for("skip_rows", names, []), geometry, "row"), :] = 0.0
        work[:, file_index_selector(self.value_for("skip_cols", names, []), geometry, "col")] = 0.0
        r, c, labels, n = label_candidates(threshold.candidates(work), self.method, self.max_nearest_neighbor)
        n_candidates = r.size
        charge = work[r, c]
        seeds = threshold.seeds(charge)
        if self.only_cls_seed:
            keep, labels, n = keep_seeded(labels, n, seeds)
            r, c, charge, seeds = r[keep], c[keep], charge[keep], seeds[keep]
        x = geometry.to_file_columns(c).astype(np.int64)
        y = geometry.to_file_rows(r).astype(np.int64)
        order = np.lexsort((x, y, labels))  # per cluster, row-major in file coordinates
        r, c, x, y, charge, seeds, labels = (a[order] for a in (r, c, x, y, charge, seeds, labels))
        selection = amplifier.results.get(SELECTION, {})
        hot = np.zeros(r.size, dtype=bool)
        if "in_hot_rows" in selection:
            hot |= np.asarray(selection["in_hot_rows"], dtype=bool)[r]
        if "in_hot_columns" in selection:
            hot |= np.asarray(selection["in_hot_columns"], dtype=bool)[c]
        stages = {}
        for stage, product in _stage_products(self.spr_image).items():
            if amplifier.has(product):
                stages[stage] = np.asarray(amplifier.get(product), dtype=np.float64)[r, c]
        return _AmplifierClusters(
            index=index,
            threshold=threshold,
            counts=np.bincount(labels, minlength=n).astype(np.int64),
            x=x + 1,
            y=y + 1,
            charge_e=charge * threshold.to_electrons,
            seeds=seeds,
            hot=hot,
            stages=stages,
            n_candidates=int(n_candidates),
            saturated=saturated_at(amplifier, r, c),
        )

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """``n_clusters`` per amplifier (the clusters themselves go to the ROOT file)."""
        return SummaryPart(
            amplifiers={
                name: {"n_clusters": amp.results[self.name].get("n_clusters")}
                for name, amp in image.amplifiers.items()
                if amp.results.get(self.name)
            }
        )

    # --- whole image ---------------------------------------------------------------------------
    def run(self, data: SkipperImage, context: RunContext) -> None:
        e2eV = float(context.detector.e2eV)
        parts = [self._amplifier(data, amp, i) for i, amp in enumerate(data.amplifiers.values())]
        clusters = _describe_clusters(parts, data, e2eV)
        for amp, part in zip(data.amplifiers.values(), parts, strict=True):
            t = part.threshold
            amp.record(
                self.name,
                n_clusters=int(part.counts.size),
                n_candidates=part.n_candidates,
                sigma_e=t.sigma_e,
                sigma_e_spread=t.sigma_e_spread,
                q_cut=t.q_cut,
                q_seed=t.q_seed,
                q_cut_e=t.q_cut_e,
                q_seed_e=t.q_seed_e,
                gain_adu_per_e=t.gain,
                threshold_source=t.source,
                image_unit="e" if self.spr_image.endswith("_e") else "ADU",
            )
        data.record(
            self.name,
            clusters=clusters,
            n_clusters=len(clusters),
            amplifiers=list(data.amplifiers),
            e2eV=e2eV,
        )


def _describe_clusters(parts: list[_AmplifierClusters], image: SkipperImage, e2eV: float) -> ak.Array:
    """Describe the clusters of every amplifier and build the awkward Array (see :mod:`.properties`)."""
    counts = np.concatenate([p.counts for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    n = counts.size
    groups = Groups(counts)

    def cat(name: str, dtype: Any) -> np.ndarray:
        arrays = [getattr(p, name) for p in parts]
        return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)

    x, y = cat("x", np.int32), cat("y", np.int32)
    energy = cat("charge_e", np.float64) * e2eV / 1000.0

    def per_cluster(value: Any, dtype: Any = np.float64) -> np.ndarray:
        arrays = [np.full(p.counts.size, value(p), dtype=dtype) for p in parts]
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)

    ccd, image_id = image.meta.get("ccd"), image.meta.get("image")
    scalars: dict[str, np.ndarray] = {
        "ccd": np.full(n, 1 if ccd is None else int(ccd), dtype=np.int32),
        "nfile": np.full(n, -1 if image_id is None else int(image_id), dtype=np.int32),
        "cluster_id": np.arange(1, n + 1, dtype=np.int32),
        "amplifier": per_cluster(lambda p: p.index, np.int32),
    }
    sigma_kev = per_cluster(lambda p: p.threshold.sigma_e * e2eV / 1000.0)
    qseed_kev = per_cluster(lambda p: p.threshold.q_seed_e * e2eV / 1000.0)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="waders-profiles") as pool:
        # the profile fits (most of the time) run while the other quantities are computed (numpy releases the GIL)
        profiles = pool.submit(fitted_profiles, groups, {"X": x, "Y": y}, energy)
        scalars.update(cluster_quantities(groups, {"X": x, "Y": y}, energy))
        scalars.update(seed_quantities(groups, energy, cat("seeds", bool), sigma_kev, qseed_kev))
        scalars.update(closest_clusters(scalars["PosX"], scalars["PosY"], scalars["has_seed"], scalars["cluster_id"]))
        fitted, profile_lists = profiles.result()
    scalars.update(fitted)
    hotreg = groups.any(cat("hot", bool))
    scalars["hotreg"] = hotreg
    scalars["excluded"] = hotreg | ~scalars["has_seed"]
    pixels: dict[str, np.ndarray] = {
        "pixels_x": x,
        "pixels_y": y,
        "pixels_z": np.full(x.size, -1.0),
        "pixels_E": energy,
        "seed_nsig_pixels": energy / sigma_kev[groups.index],
    }
    stages = set.intersection(*(set(p.stages) for p in parts)) if parts else set()
    for stage, _ in _STAGES:
        if stage in stages:
            values = np.concatenate([p.stages[stage] for p in parts])
            pixels[f"pixels_E_{stage}"] = values
            scalars[f"Energy_{stage}"] = groups.sum(values)
    if parts and all(p.saturated is not None for p in parts):  # CompressSkipperProcess flagged saturation
        saturated = np.concatenate([p.saturated for p in parts])
        pixels["pixels_saturated"] = saturated
        scalars["Npix_sat"] = groups.sum(saturated.astype(np.float64))  # VD, as pysimdamicm (and waders sim)
    for key in ("exposure_start", "readout_start", "readout_end"):
        scalars[key] = np.full(n, _timestamp(image.meta.get(key)))
    ppcol = image.header.get("PPCOL")
    if isinstance(ppcol, int | float) and not isinstance(ppcol, bool):  # MOSKITA images (pysimdamicm: PPCOL x 1e34)
        scalars["ppcol"] = np.full(n, float(ppcol) * 1e34)
    clusters = clusters_array(scalars, pixels, counts)
    for name, (values, nbins) in profile_lists.items():
        clusters = ak.with_field(clusters, ak.unflatten(values, nbins), name)
    return clusters


def find_clusters(image: SkipperImage, context: RunContext | None = None, **params: Any) -> ak.Array:
    """Run :class:`ClusterFinder` with ``params`` on ``image`` and return the clusters.

    Parameters
    ----------
    image : SkipperImage
        Image with the product ``spr_image`` (and the pedestal/calibration results it needs).
    context : RunContext, optional
        Detector constants (e2eV); default: the analysis defaults.
    **params
        ClusterFinder parameters.
    """
    if context is None:
        from waders.core import Detector

        context = RunContext(seed=0, detector=Detector.for_domain("ana"))
    ClusterFinder(**params).run(image, context)
    return image.results["ClusterFinder"]["clusters"]
