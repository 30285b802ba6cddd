"""Benchmark: ``waders sim`` on 100,000 Geant4 events of about 5 hits each.

pysimdamicm (psimulCCDimg) on this machine kind needed 13 min 03 s (128 events/s) and
2.9 GB for this input with its default configuration (PixelizeSignal + ClusterFinder,
method 1, N = 2).  Target (issue 6): at least 100x faster (under 8 s) on one core, memory
bounded by the chunk size.  The input is generated here (Geant4 layout, written with
waders-io); each measurement is a fresh ``waders sim`` process (wall time, peak RSS).

Usage::

    python benchmarks/sim.py [--events 100000] [--dir /tmp] [--update-docs] [--diffusion]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Child processes write byte code like a normal installation (some sandboxes set PYTHONDONTWRITEBYTECODE,
#: which makes every command recompile waders and its dependencies: seconds of start-up).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
PYSIMDAMICM_SECONDS = 13 * 60 + 3


def make_input(path: Path, n_events: int, seed: int = 1) -> Path:
    from waders.core.hits import HitCollection
    from waders.io.root import write_geant4

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    counts = rng.poisson(4.0, n_events) + 1  # about 5 hits per event
    n = int(counts.sum())
    centre_x = np.repeat(rng.uniform(0.5, 59.5, n_events), counts)  # mm, inside a 4000-column CCD (60 mm)
    centre_y = np.repeat(rng.uniform(0.5, 14.5, n_events), counts)  # mm, inside 1000 rows (15 mm)
    hits = {
        "x": centre_x + rng.normal(0, 0.01, n),
        "y": centre_y + rng.normal(0, 0.01, n),
        "z": rng.uniform(0.0, 0.675, n),
        "time": np.zeros(n),
        "edep": rng.exponential(1000.0, n) + 10.0,
        "ccd": np.ones(n, dtype=np.int32),
        "pdg": np.full(n, 11, dtype=np.int32),
    }
    collection = HitCollection.from_arrays(np.arange(n_events), counts, hits)
    write_geant4(path, collection)
    return path


def run_sim(config: Path, g4file: Path, out: Path) -> dict[str, float]:
    args = [sys.executable, "-m", "waders.core", "sim", "--json", str(config), "--g4file", str(g4file), "-o", str(out)]
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stdout, stderr = process.communicate()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(stderr.decode()[-3000:])
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout.decode()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--diffusion", action="store_true", help="also activate Diffusion")
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    g4file = make_input(args.dir / f"bench_g4_{args.events}.root", args.events)
    from waders.data import PYSIMDAMICM_CONFIGS, path

    config = json.loads((path(PYSIMDAMICM_CONFIGS) / "psimulCCDimg_config_file.json").read_text())
    config.setdefault("CF", {})["ccd_shape"] = [1000, 4000]
    if args.diffusion:
        config["detector_response"]["Diffusion"]["active"] = 1
    cfg = args.dir / "bench_sim_config.json"
    cfg.write_text(json.dumps(config))
    best = min(
        (run_sim(cfg, g4file, args.dir / "bench_sim_out") for _ in range(args.repeats)), key=lambda r: r["seconds"]
    )
    row = {
        "events": args.events,
        "diffusion": args.diffusion,
        "seconds": round(best["seconds"], 2),
        "events_per_s": round(args.events / best["seconds"]),
        "speedup_vs_pysimdamicm": round(PYSIMDAMICM_SECONDS * args.events / 100_000 / best["seconds"], 1),
        "peak_rss_mb": round(best["peak_rss_mb"]),
    }
    print(json.dumps(row))
    if args.update_docs:
        update_docs(row)


def update_docs(row: dict) -> None:
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text()
    key = "sim_diffusion" if row["diffusion"] else "sim"
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    chain = (
        "PixelizeSignal + Diffusion + ClusterFinder" if row["diffusion"] else "default: PixelizeSignal + ClusterFinder"
    )
    flag = " --diffusion" if row["diffusion"] else ""
    block = "\n".join(
        [
            begin,
            f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/sim.py{flag} --update-docs` "
            "(one `waders sim` process, whole command, best of the repeats).",
            "",
            "| events (about 5 hits each) | chain | wall time | events/s | vs pysimdamicm (128 events/s, 783 s) "
            "| peak RSS |",
            "|---|---|---|---|---|---|",
            f"| {row['events']} | {chain} | {row['seconds']} s | {row['events_per_s']} | "
            f"{row['speedup_vs_pysimdamicm']}x faster (target >= 100x) | {row['peak_rss_mb']} MB "
            "(pysimdamicm 2.9 GB) |",
            end,
        ]
    )
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        title = "with Diffusion" if row["diffusion"] else "default configuration"
        text = text.rstrip() + f"\n\n## Simulation, {title} (waders-sim, issue 6)\n\n" + block + "\n"
    docs.write_text(text)


if __name__ == "__main__":
    main()
