"""Benchmark: EvalCTIProcess, EvalHaloProcess and TwoDGaussProcess on a 1000 x 2000 x 100 two-amplifier raw image.

The raw image (``make_raw_image``: two amplifiers of 1000 rows x 1000 columns, 100 skips,
float32) has 20 ADU of noise per skip (2 ADU = 0.2 e- after averaging), a gain of 10 ADU/e-,
0.01 e-/pixel of dark current and ``--clouds`` Gaussian charge clouds (50 to 5000 e-).
The chain CompressSkipperProcess, PedestalSubtractionProcess, CalibrationProcess,
ClusterFinder ([null, 3, 4]: every single-electron pixel is a seeded cluster, ~13 000
clusters per amplifier) and BuildClusterMask runs first, untimed.  Then every study is
timed with pysimdamicm's default parameters (windows [155, 10]; the 2-D fit on
[-20, 100] ADU with 0.5 ADU bins, starting gains set to 10 ADU/e-).

Prints one JSON line per process: ``{"process", "seconds"}`` (best of ``--repeat``) and
a few numbers of the result.

Usage::

    python benchmarks/ana_studies_clusters.py [--clouds 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _timing import best_of

from waders.ana.calibration import CalibrationProcess
from waders.ana.clusters import BuildClusterMask, ClusterFinder
from waders.ana.compress import CompressSkipperProcess
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.ana.studies.cti import EvalCTIProcess, EvalHaloProcess
from waders.ana.studies.twodgauss import TwoDGaussProcess
from waders.core import Detector, Pipeline, RunContext
from waders.io.synthetic import cluster_deposits, make_raw_image

NROWS, NCOLS, PRESCAN, OVERSCAN = 1000, 1000, 8, 100


def prepared_image(n_clouds: int, context: RunContext):
    rng = np.random.default_rng(3)
    centres = np.column_stack(
        [rng.uniform(5, NROWS - 5, n_clouds), rng.uniform(PRESCAN + 5, NCOLS - OVERSCAN - 5, n_clouds)]
    )
    deposits, _ = cluster_deposits(
        rng, centres, rng.integers(50, 5000, n_clouds), rng.uniform(0.3, 1.0, n_clouds), shape=(NROWS, NCOLS)
    )
    image, _ = make_raw_image(
        amplifiers=("L", "U"), nrows=NROWS, ncols=NCOLS, nskips=100, dtype="float32", prescan=PRESCAN,
        overscan=OVERSCAN, noise=20.0, gain=10.0, dark_current=0.01, deposits=deposits, seed=1,
    )  # fmt: skip
    Pipeline(
        [
            CompressSkipperProcess(func_to_compress=["mean"]),
            PedestalSubtractionProcess(method="median", in_overscan=True, axis="row"),
            CalibrationProcess(gain=10.0),
            ClusterFinder(spr_threshold=[None, 3, 4]),
            BuildClusterMask(cluster_size_min=2, N_col_pre=2, N_col_post=5, N_row_pre=2, N_row_post=5),
        ]
    ).run(image, context)
    return image


def best_time(process, image, context: RunContext, repeat: int) -> float:
    return best_of(lambda: process.run(image, context), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    context = RunContext(seed=0, detector=Detector.for_domain("ana"))
    image = prepared_image(args.clouds, context)
    clusters = image.results["ClusterFinder"]["clusters"]
    n_clusters, n_seeded = len(clusters), int(np.sum(clusters["has_seed"]))

    seconds = best_time(EvalCTIProcess(), image, context, args.repeat)
    cti = image.results["EvalCTIProcess"]
    print(json.dumps({"process": "EvalCTIProcess", "seconds": round(seconds, 4), "clusters": n_clusters,
                      "vcti_rate_d10": round(float(cti["vcti_rate"][0]), 5),
                      "background_rate": round(cti["background_rate"], 5)}))  # fmt: skip

    seconds = best_time(EvalHaloProcess(), image, context, args.repeat)
    halo = image.results["EvalHaloProcess"]
    print(json.dumps({"process": "EvalHaloProcess", "seconds": round(seconds, 4), "seeded_clusters": n_seeded,
                      "halo_rate_d10": round(float(halo["halo_rate"][0]), 5)}))  # fmt: skip

    fit = TwoDGaussProcess(cal_L=10.0, cal_U=10.0, dc_L=0.01, dc_U=0.01, theta=30.0, do_calibration=True)
    seconds = best_time(fit, image, context, args.repeat)
    r = image.results["TwoDGaussProcess"]
    print(json.dumps({"process": "TwoDGaussProcess", "seconds": round(seconds, 4), "pairs": r["n_pixels"],
                      "valid": r["valid"], "gain_L": round(r["gain_L"], 4), "gain_U": round(r["gain_U"], 4),
                      "sigma_L": round(r["sigma_L"], 4), "sigma_U": round(r["sigma_U"], 4)}))  # fmt: skip


if __name__ == "__main__":
    main()
