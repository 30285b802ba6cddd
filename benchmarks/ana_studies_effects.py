"""Benchmark: charge-loss, crosstalk and column-transient studies of waders-ana.

Generates in memory a two-amplifier raw image of 1000 rows x 1000 columns x 100 skips per
amplifier (float32), prepares the inputs the studies need (compressed, pedestal-subtracted
and calibrated images; not timed), and times each study on it:

* ``ChargeLossPlot`` (raw samples; no plots);
* ``ChargeLossSkewnessProcess`` (raw samples, pysimdamicm's configuration: skip_step 20);
* ``CrossTalkProcess`` (flag, alpha matrix with 1000 bootstrap resamples, null test, correction);
* ``CorrectElectronicColumnTransient`` (pedestal-subtracted image).

Target (issue): each study within 2 s on this machine.  Prints one JSON line per process,
``{"process": ..., "seconds": ...}`` (the best of ``--repeats`` runs, after one warm-up run
that loads the imports).

Usage::

    python benchmarks/ana_studies_effects.py [--rows 1000] [--cols 1000] [--skips 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _timing import best_of

from waders.ana.calibration import CalibrationProcess
from waders.ana.compress import CompressSkipperProcess
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.ana.studies.chargeloss import ChargeLossPlot, ChargeLossSkewnessProcess
from waders.ana.studies.crosstalk import CrossTalkProcess
from waders.ana.studies.transient import CorrectElectronicColumnTransient
from waders.core import Pipeline, RunContext
from waders.io.synthetic import make_raw_image


def best_time(process, image, repeats: int) -> float:
    context = RunContext(seed=1)
    return best_of(lambda: process.run(image, context), repeats, warmup=True)  # warm-up: imports, allocations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--skips", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    image, truth = make_raw_image(
        amplifiers=("L", "U"), nrows=args.rows, ncols=args.cols, nskips=args.skips, dtype="float32"
    )
    rng = np.random.default_rng(2)
    for amp in image.amplifiers.values():  # a few hundred bright pixels per amplifier as crosstalk seeds
        rows, cols = amp.geometry.region("active")
        r, c = rng.integers(rows.start, rows.stop, 500), rng.integers(cols.start, cols.stop, 500)
        amp.raw[r, c, :] += np.float32(truth.gain * 1000.0)
    prepare = [
        CompressSkipperProcess(),
        PedestalSubtractionProcess(method="median"),
        CalibrationProcess(gain=truth.gain),
    ]
    Pipeline(prepare).run(image, RunContext(seed=1))
    studies = [
        ChargeLossPlot(skip_id_list=[0, 1, 2, 45]),
        ChargeLossSkewnessProcess(id_skip_start=2, skip_step=20),
        CrossTalkProcess(),
        CorrectElectronicColumnTransient(col_end=10),
    ]
    for process in studies:
        seconds = best_time(process, image, args.repeats)
        shape = [args.rows, args.cols, args.skips]
        print(json.dumps({"process": process.name, "seconds": round(seconds, 3), "shape": shape, "amplifiers": 2}))


if __name__ == "__main__":
    main()
