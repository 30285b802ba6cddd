"""Benchmark: ClusterFinder (method 0, and method 1 with N = 2) and BuildClusterMask on a large image.

The image is a 2000 x 4000 calibrated image (electrons): Gaussian readout noise of
0.16 e-, Poisson dark current, and ~10^4 Gaussian charge clouds (20-200 e-,
sigma 0.3-0.8 px), which gives ~10^5 candidate pixels at the threshold [0.16, 3, 4]
(3 sigma pixels, 4 sigma seeds; noise fluctuations above 3 sigma are candidates too).
pysimdamicm's method 1 builds the full distance matrix of the candidates (10^5 x 10^5
doubles, 80 GB) and cannot run on such an image.

Prints one JSON line with the best wall time of ``--repeat`` runs of every step.

Usage::

    python benchmarks/ana_clusters.py [--rows 2000] [--cols 4000] [--clusters 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _timing import best_of

from waders.ana.clusters import BuildClusterMask, ClusterFinder
from waders.core import Detector, RunContext, SkipperImage
from waders.io.synthetic import cluster_deposits

PRODUCT = "mean_compressed_pedestal_subtracted_e"
SIGMA = 0.16  # e-


def make_image(rows: int, cols: int, n_clusters: int, seed: int = 1) -> tuple[SkipperImage, int]:
    rng = np.random.default_rng(seed)
    centres = np.column_stack([rng.uniform(5, rows - 5, n_clusters), rng.uniform(5, cols - 5, n_clusters)])
    electrons = rng.integers(20, 200, n_clusters)
    _, truth = cluster_deposits(rng, centres, electrons, rng.uniform(0.3, 0.8, n_clusters), shape=(rows, cols))
    charge = truth.image((rows, cols)) + rng.poisson(0.001, (rows, cols)) + rng.normal(0.0, SIGMA, (rows, cols))
    image = SkipperImage.from_arrays({"L": charge}, product=PRODUCT)
    return image, int((charge >= 3 * SIGMA).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--cols", type=int, default=4000)
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    image, n_candidates = make_image(args.rows, args.cols, args.clusters)
    context = RunContext(seed=0, detector=Detector.for_domain("ana"))
    threshold = [SIGMA, 3, 4]
    results: dict[str, object] = {
        "benchmark": "ana_clusters",
        "shape": [args.rows, args.cols],
        "clouds": args.clusters,
        "candidates": n_candidates,
    }
    for label, params in (("method0", {"method": 0}), ("method1_n2", {"method": 1, "max_nearest_neighbor": 2})):
        finder = ClusterFinder(spr_threshold=threshold, **params)
        results[f"{label}_s"] = round(best_of(lambda f=finder: f.run(image, context), args.repeat), 4)
        clusters = image.results["ClusterFinder"]["clusters"]
        results[f"{label}_clusters"] = len(clusters)
        results[f"{label}_seeded"] = int(np.sum(clusters["has_seed"]))
    mask = BuildClusterMask(cluster_size_min=2, N_col_pre=2, N_col_post=5, N_row_pre=2, N_row_post=5)
    results["build_mask_s"] = round(best_of(lambda: mask.run(image, context), args.repeat), 4)
    results["masked_fraction"] = round(image["L"].results["BuildClusterMask"]["masked_fraction"], 4)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
