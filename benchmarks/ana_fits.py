"""Benchmark: dark-current fits of waders-ana (batched per-row fits and single iminuit fits).

On a synthetic 2000-row amplifier (Poisson dark current rising with the row, times a
gain of 10 ADU/e-, plus 0.2 e- of Gaussian noise) it measures:

* per-row fits per second of ``FitDarkCurrentPerRow`` with ``row_step = 1`` (2000 fits:
  histogramming + batched Levenberg-Marquardt), with pysimdamicm's default settings
  (2 peaks, 2 sqrt(N) bins, gain fixed), with the default configuration's settings
  (5 peaks, 0.3 ADU bins over -20..60 ADU) and with the gain free;
* the time of one ``FitDarkCurrentProcess`` fit (iminuit, MIGRAD + HESSE + MINOS) of the
  whole amplifier.

Target (issue): at least 1000 per-row fits per second on a 2-core machine.  Prints one
JSON line.

Usage::

    python benchmarks/ana_fits.py [--rows 2000] [--cols 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from _timing import best_of

from waders.ana.darkcurrent import FitDarkCurrentPerRow, FitDarkCurrentProcess
from waders.core import RunContext, SkipperImage


def make_image(rows: int, cols: int, seed: int = 1) -> SkipperImage:
    rng = np.random.default_rng(seed)
    dark_current = 0.05 + 0.25 * np.arange(rows)[:, None] / rows
    values = 10.0 * rng.poisson(dark_current, (rows, cols)) + rng.normal(0.0, 2.0, (rows, cols))
    return SkipperImage.from_arrays({"L": values}, product="mean_compressed_pedestal_subtracted")


def best_time(process, image: SkipperImage, repeats: int) -> float:
    context = RunContext(seed=1)
    return best_of(lambda: process.run(image, context), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--cols", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    image = make_image(args.rows, args.cols)
    configurations = {
        "per_row_defaults": FitDarkCurrentPerRow(row_step=1),
        "per_row_config": FitDarkCurrentPerRow(
            row_step=1, n_peaks=5, binning_size=0.3, x_min=-20, x_max=60, gain_min=8, gain_max=15
        ),
        "per_row_gain_free": FitDarkCurrentPerRow(
            row_step=1, n_peaks=5, binning_size=0.3, x_min=-20, x_max=60, gain_min=8, gain_max=15, do_calibration=True
        ),
    }
    report: dict[str, object] = {"rows": args.rows, "cols": args.cols, "cpus": os.cpu_count()}
    best_time(configurations["per_row_defaults"], image, 1)  # warm up imports
    for label, process in configurations.items():
        seconds = best_time(process, image, args.repeats)
        result = image["L"].results["FitDarkCurrentPerRow"]
        report[f"{label}_fits_per_s"] = round(args.rows / seconds)
        report[f"{label}_valid_fraction"] = round(float(np.mean(result["valid"])), 4)
    single = FitDarkCurrentProcess(x_min=-20, x_max=60, n_peaks=5, binning_size=0.3, gain_min=8, gain_max=15)
    report["single_fit_s"] = round(best_time(single, image, args.repeats), 3)
    report["single_fit_valid"] = bool(image["L"].results["FitDarkCurrentProcess"]["valid"])
    report["single_fit_pixels"] = args.rows * args.cols
    print(json.dumps(report))


if __name__ == "__main__":
    main()
