"""Benchmark: ``waders dqm run`` on a run of averaged four-amplifier images, report included.

Generates ``--images`` (20) averaged multi-extension images of ``--rows`` x ``--cols``
(320 x 640) pixels per amplifier and four amplifiers (pedestal per row, gain 10 ADU/e-,
noise 2 ADU, Poisson dark current 0.05 e-/pixel), then times in a separate process the
whole ``waders dqm run`` (analysis of every image, the default monitor elements, the
run-level plots, the mask, the store and the report).  Target (issue): under 30 s.

A first, untimed ``waders dqm run`` on one image lets Python write its byte-code caches
(the timed process then starts like an installed waders; ``PYTHONDONTWRITEBYTECODE`` is
removed from the child environment unless ``--no-bytecode`` is given).

Usage::

    python benchmarks/dqm_run.py [--images 20 --rows 320 --cols 640] [--workers 2] [--dir /tmp/x]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 30.0
NAMES = ("CCD_A", "CCD_B", "CCD_C", "CCD_D")


def generate(directory: Path, n_images: int, rows: int, cols: int) -> list[Path]:
    """Write the averaged images (not timed)."""
    import numpy as np

    from waders.core import AmplifierGeometry, SkipperImage
    from waders.io import write_averaged_image

    paths = []
    prescan, overscan = 8, 64
    for k in range(n_images):
        rng = np.random.default_rng(k)
        arrays, geometries = {}, {}
        for i, name in enumerate(NAMES):
            charge = np.zeros((rows, cols))
            charge[:, prescan : cols - overscan] = rng.poisson(0.05, (rows, cols - prescan - overscan))
            pedestal = -40.0 + i + 0.01 * np.arange(rows)[:, None]
            arrays[name] = pedestal + 10.0 * charge + rng.normal(0.0, 2.0, (rows, cols))
            geometries[name] = AmplifierGeometry(
                name, rows, cols, prescan_cols=prescan, overscan_cols=overscan, extension=i + 1
            )
        image = SkipperImage.from_arrays(
            arrays,
            geometries=geometries,
            product="mean_compressed",
            layout="multi-extension",
            nskips_averaged=500,
            exposure_time=3600.0,
        )
        paths.append(write_averaged_image(directory / f"avg_run1_img{k:03d}.fits", image))
    return paths


def waders_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "waders.core", *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rows", type=int, default=320)
    parser.add_argument("--cols", type=int, default=640)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1: serial)")
    parser.add_argument("--dir", type=Path, default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE for the child")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and the DQM output")
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="waders_dqm_bench_"))
    data, out = work / "data", work / "dqm"
    data.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    paths = generate(data, args.images, args.rows, args.cols)
    size = f"{args.rows} x {args.cols} x {len(NAMES)}"
    print(f"generated {len(paths)} images of {size} in {time.perf_counter() - started:.1f} s")

    env = dict(os.environ)
    if not args.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    scale = ["--executor", "processes", "--workers", str(args.workers)] if args.workers > 1 else []
    warm = waders_command("dqm", "run", "--run", "999", "-o", str(work / "warmup"), str(paths[0]))
    subprocess.run(warm, env=env, check=True, capture_output=True)

    command = waders_command("-v", "dqm", "run", "--run", "1", "-o", str(out), *scale, str(data / "avg_run1_img*.fits"))
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        print(f"waders dqm run failed with exit code {done.returncode}")
        return 1
    print(done.stdout.strip())
    phases = re.findall(r"DQM run 1: status \w+.*?; (setup .*)$", done.stderr, re.MULTILINE)
    if phases:
        print(f"phases: {phases[-1]}")
    verdict = "met" if seconds < TARGET_S else "MISSED"
    print(f"waders dqm run: {args.images} images x {len(NAMES)} amplifiers in {seconds:.1f} s "
          f"(workers {args.workers}; target {TARGET_S:.0f} s: {verdict})")  # fmt: skip
    if not args.keep and args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
