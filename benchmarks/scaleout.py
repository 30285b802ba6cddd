"""Benchmark: analysing 32 generated raw images serially and with 2 local workers.

Target (issue 8): 2 workers (processes or a dask LocalCluster) at least 1.7x faster than
serial on this 2-core machine.  Each run is a fresh ``waders ana`` process.

Usage::

    python benchmarks/scaleout.py [--images 32] [--dir /tmp] [--update-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Child processes write byte code like a normal installation (some sandboxes set PYTHONDONTWRITEBYTECODE,
#: which makes every command recompile waders and its dependencies: seconds of start-up).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

CONFIG = {
    "process": {
        "sequence": "CompressSkipperProcess;PedestalSubtractionProcess;FitDarkCurrentProcess;CalibrationProcess;"
        "ClusterFinder",
        "FitDarkCurrentProcess": {"calibration": 10.0, "x_min": -10, "x_max": 35},
        "CalibrationProcess": {"gain": 10.0, "from_dc_fit": True},
    }
}


def make_images(directory: Path, n: int) -> list[Path]:
    from waders.io import write_raw_image
    from waders.io.synthetic import make_raw_image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = directory / f"scale_{i:03d}.fits"
        if not path.exists():
            image, _ = make_raw_image(
                amplifiers=("L", "U"), nrows=500, ncols=800, overscan=60, nskips=40, noise=10.0, gain=10.0,
                dark_current=0.1, seed=i, dtype="float32",
            )  # fmt: skip
            write_raw_image(path, image)
        paths.append(path)
    return paths


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=CHILD_ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_scaleout"))
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs of each command")
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    paths = make_images(args.dir / "images", args.images)
    config = args.dir / "config.json"
    config.write_text(json.dumps(CONFIG))
    base = [sys.executable, "-m", "waders.core", "ana", "--json", str(config), *map(str, paths)]

    def best(extra: list[str], name: str) -> float:
        return min(timed([*base, "-o", str(args.dir / name), *extra]) for _ in range(args.repeats))

    serial = best([], "serial")
    processes = best(["--executor", "processes", "--workers", "2"], "processes")
    dask = best(["--executor", "dask", "--workers", "2"], "dask")
    row = {
        "images": args.images,
        "serial_s": round(serial, 2),
        "processes_s": round(processes, 2),
        "dask_s": round(dask, 2),
        "speedup_processes": round(serial / processes, 2),
        "speedup_dask": round(serial / dask, 2),
    }
    print(json.dumps(row))
    if args.update_docs:
        docs = ROOT / "docs" / "benchmarks.md"
        text = docs.read_text()
        begin, end = "<!-- scaleout:begin -->", "<!-- scaleout:end -->"
        block = "\n".join(
            [
                begin,
                f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/scaleout.py --update-docs` "
                f"({args.images} raw images of 500 x 1600 x 40, two amplifiers; whole `waders ana` commands, best of "
                f"{args.repeats}).",
                "",
                "| serial | 2 processes | dask LocalCluster, 2 workers | speed-up (target >= 1.7) |",
                "|---|---|---|---|",
                f"| {row['serial_s']} s | {row['processes_s']} s | {row['dask_s']} s | "
                f"{row['speedup_processes']}x (processes), {row['speedup_dask']}x (dask) |",
                end,
            ]
        )
        if begin in text:
            text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
        else:
            text = text.rstrip() + "\n\n## Scale-out (issue 8)\n\n" + block + "\n"
        docs.write_text(text)


if __name__ == "__main__":
    main()
