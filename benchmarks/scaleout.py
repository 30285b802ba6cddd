"""Benchmark: batches and scale-out of whole ``waders ana`` commands (issues 8 and 18).

(a) 200 small raw images (100 x 300 x 50, one amplifier): one ``waders ana`` command per
    image against one batched serial command -> throughput ratio (target >= 2).
(b) 32 raw images of 500 x 1600 x 40 (two amplifiers): serial against ``--executor processes
    --workers 2`` (target >= 1.8x) and ``--executor dask --workers 2`` (a LocalCluster,
    target >= 1.5x), all in the same run, repeats interleaved.

Every run is a fresh ``waders ana`` process; the CPU time (user + system) of the commands
is printed too, as a check when other jobs share the cores.

Usage::

    python benchmarks/scaleout.py [--images 32] [--small 200] [--dir /tmp/bench_scaleout] [--update-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _make(directory: Path, n: int, prefix: str, **geometry: object) -> list[Path]:
    """``n`` seeded raw images ``<prefix>_NNN.fits`` (gain 10 ADU/e-, noise 10 ADU), written once and reused."""
    from waders.io import write_raw_image
    from waders.io.synthetic import make_raw_image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = directory / f"{prefix}_{i:03d}.fits"
        if not path.exists():
            image, _ = make_raw_image(**geometry, noise=10.0, gain=10.0, dark_current=0.1, seed=i, dtype="float32")
            write_raw_image(path, image)
        paths.append(path)
    return paths


def make_images(directory: Path, n: int) -> list[Path]:
    """``n`` raw images of 500 rows x 2 x (800 + 60) columns x 40 skips (two amplifiers)."""
    return _make(directory, n, "scale", amplifiers=("L", "U"), nrows=500, ncols=800, overscan=60, nskips=40)


def make_small_images(directory: Path, n: int) -> list[Path]:
    """``n`` raw images of 100 rows x (300 + 20) columns x 50 skips (one amplifier)."""
    return _make(directory, n, "small", amplifiers=("L",), nrows=100, ncols=300, overscan=20, nskips=50)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU time (s) of one command (its waited-for children included)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=CHILD_ENV)
    return time.perf_counter() - start, _children_cpu() - cpu


def batches(args: argparse.Namespace, config: Path) -> dict[str, float]:
    """(a): one command per small image against one batched command."""
    paths = make_small_images(args.dir / "small", args.small)
    base = [sys.executable, "-m", "waders.core", "ana", "--json", str(config)]
    single = [0.0, 0.0]
    for path in paths:
        wall, cpu = timed([*base, "-o", str(args.dir / "small_single"), str(path)])
        single[0] += wall
        single[1] += cpu
    batched = min(timed([*base, "-o", str(args.dir / "small_batched"), *map(str, paths)]) for _ in range(2))
    return {
        "small_images": len(paths),
        "single_s": round(single[0], 2),
        "single_cpu_s": round(single[1], 2),
        "batched_s": round(batched[0], 2),
        "batched_cpu_s": round(batched[1], 2),
        "throughput_ratio": round(single[0] / batched[0], 2),
    }


def scaleout(args: argparse.Namespace, config: Path) -> dict[str, float]:
    """(b): serial, 2 processes and a 2-worker dask LocalCluster on the same images, repeats interleaved."""
    paths = make_images(args.dir / "images", args.images)
    base = [sys.executable, "-m", "waders.core", "ana", "--json", str(config), *map(str, paths)]
    variants = {
        "serial": [],
        "processes": ["--executor", "processes", "--workers", "2"],
        "dask": ["--executor", "dask", "--workers", "2"],
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeats):
        for name, extra in variants.items():
            wall, cpu = timed([*base, "-o", str(args.dir / name), *extra])
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    row: dict[str, float] = {"images": args.images}
    for name, (wall, cpu) in best.items():
        row[f"{name}_s"] = round(wall, 2)
        row[f"{name}_cpu_s"] = round(cpu, 2)
    row["speedup_processes"] = round(best["serial"][0] / best["processes"][0], 2)
    row["speedup_dask"] = round(best["serial"][0] / best["dask"][0], 2)
    return row


def update_docs(args: argparse.Namespace, small: dict[str, float] | None, row: dict[str, float]) -> None:
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text()
    begin, end = "<!-- scaleout:begin -->", "<!-- scaleout:end -->"
    lines = [
        begin,
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/scaleout.py --update-docs` (whole `waders ana` "
        f"commands; CPU = user + system time of the commands; {os.cpu_count()} cores, shared with other jobs).",
        "",
    ]
    if small is not None:
        lines += [
            f"Batches: {small['small_images']} raw images of 100 x 300 x 50 (+ 20 overscan columns), one amplifier.",
            "",
            "| one command per image | one batched command (serial) | throughput ratio (target >= 2) |",
            "|---|---|---|",
            f"| {small['single_s']} s (CPU {small['single_cpu_s']} s) | {small['batched_s']} s "
            f"(CPU {small['batched_cpu_s']} s) | {small['throughput_ratio']}x |",
            "",
        ]
    lines += [
        f"Scale-out: {row['images']} raw images of 500 x 1600 x 40 (+ 2 x 60 overscan columns), two amplifiers; "
        f"best of {args.repeats}, repeats interleaved.",
        "",
        "| serial | 2 processes | dask LocalCluster, 2 workers | speed-up (targets >= 1.8 / >= 1.5) |",
        "|---|---|---|---|",
        f"| {row['serial_s']} s (CPU {row['serial_cpu_s']} s) | {row['processes_s']} s (CPU {row['processes_cpu_s']} s)"
        f" | {row['dask_s']} s (CPU {row['dask_cpu_s']} s) | {row['speedup_processes']}x (processes), "
        f"{row['speedup_dask']}x (dask) |",
        end,
    ]
    block = "\n".join(lines)
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n## Batches and scale-out (issues 8, 18)\n\n" + block + "\n"
    docs.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images of the scale-out part")
    parser.add_argument("--small", type=int, default=200, help="small images of the batch part (0: skip it)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_scaleout"))
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs of each scale-out command")
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    config = args.dir / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(CONFIG))
    small = batches(args, config) if args.small else None
    if small is not None:
        print(json.dumps(small), flush=True)
    row = scaleout(args, config)
    print(json.dumps(row), flush=True)
    if args.update_docs:
        update_docs(args, small, row)


if __name__ == "__main__":
    main()
