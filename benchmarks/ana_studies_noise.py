"""Benchmark: the noise studies of waders-ana on a 1000 x 2000 x 100 raw image (two amplifiers).

Generates the image in memory (``make_raw_image``, float32 samples, two amplifiers of
1000 rows x 1000 columns x 100 skips), compresses it and subtracts the pedestal, then
times every noise study once (best of ``--repeats``) and prints one JSON line per process::

    {"process": "RNvsNskipsPlot", "seconds": 0.12, ...}

Target (issue): each study within 2 s on a 2-core machine.

Usage::

    python benchmarks/ana_studies_noise.py [--rows 1000] [--cols 1000] [--skips 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import time

from waders.ana.compress import CompressSkipperProcess
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.ana.studies.commonmode import CommonModeSubtraction
from waders.ana.studies.fft import FFTNoisePlot
from waders.ana.studies.gaussfit import GaussianFitProcess
from waders.ana.studies.injection import AddBKGComponent, GaussianNoiseProcess
from waders.ana.studies.noise import RNvsNskipsPlot
from waders.ana.studies.profiles import MeanPixelChargePerAxis
from waders.core import RunContext
from waders.io.synthetic import make_raw_image

PRODUCT = "mean_compressed_pedestal_subtracted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--skips", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    image, _ = make_raw_image(
        amplifiers=("L", "U"), nrows=args.rows, ncols=args.cols, nskips=args.skips, dtype="float32"
    )
    image.geometry.read_time = 1e-5 * args.rows * args.cols * args.skips  # 10 us per sample
    context = RunContext(seed=1)
    CompressSkipperProcess(func_to_compress=["mean"]).run(image, context)
    PedestalSubtractionProcess(method="median").run(image, context)
    setup = time.perf_counter() - start
    processes = {
        "RNvsNskipsPlot": RNvsNskipsPlot(),
        "RNvsNskipsPlot(is_blank)": RNvsNskipsPlot(is_blank=True),
        "FFTNoisePlot": FFTNoisePlot(),
        "CommonModeSubtraction": CommonModeSubtraction(),
        "CommonModeSubtraction(median)": CommonModeSubtraction(estimator="median"),
        "CommonModeSubtraction(row)": CommonModeSubtraction(mode="row"),
        "GaussianFitProcess": GaussianFitProcess(),
        "GaussianFitProcess(active)": GaussianFitProcess(in_overscan=False),
        "MeanPixelChargePerAxis": MeanPixelChargePerAxis(),
        "MeanPixelChargePerAxis(median,row)": MeanPixelChargePerAxis(function="median", axis="row"),
        "GaussianNoiseProcess": GaussianNoiseProcess(image=PRODUCT),
        "AddBKGComponent": AddBKGComponent(image=PRODUCT, function="linear", Ncls=10_000),
    }
    shape = f"{args.rows}x{2 * args.cols}x{args.skips}"
    for label, process in processes.items():
        times = []
        for _ in range(args.repeats):
            begin = time.perf_counter()
            process.run(image, context)
            times.append(time.perf_counter() - begin)
        print(json.dumps({"process": label, "seconds": round(min(times), 4), "image": shape}))
    print(json.dumps({"setup_seconds": round(setup, 2)}))


if __name__ == "__main__":
    main()
