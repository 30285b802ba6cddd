"""Benchmark: detector-response physics of waders sim (Diffusion, PixelizeSignal).

100,000 events of 5 deposits of about 1 keV (Normal(1000, 100) eV) at random depths in a
675 um sensor, random positions on a 1000 x 4000 pixel CCD, processed in chunks of 20,000
events (the driver's default) through

* ``PixelizeSignal`` alone (deposits straight into pixels), and
* ``Diffusion`` (gauss model, default parameters) + ``PixelizeSignal`` (about 265 carriers
  per deposit, 1.3e8 carriers in all).

Only the processes are timed (the hit collections are built beforehand).  One JSON line
per configuration: events, hits, carriers, pixels, seconds, events/s, carriers/s.

Usage::

    python benchmarks/sim_physics.py [--events 100000] [--hits 5] [--chunk 20000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from waders.core.detector import Detector
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.sim.diffusion import Diffusion
from waders.sim.events import SimEvents
from waders.sim.pixelize import PixelizeSignal
from waders.sim.random import CounterRNG


def make_chunks(n_events: int, per: int, chunk: int, seed: int) -> list[HitCollection]:
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, n_events, chunk):
        n_ev = min(chunk, n_events - start)
        n = n_ev * per
        centre_x = np.repeat(rng.uniform(0.1, 59.9, n_ev), per)
        centre_y = np.repeat(rng.uniform(0.1, 14.9, n_ev), per)
        hits = {
            "x": centre_x + rng.normal(0, 0.005, n),
            "y": centre_y + rng.normal(0, 0.005, n),
            "z": rng.uniform(0, 0.675, n),
            "edep": rng.normal(1000.0, 100.0, n),
            "time": np.zeros(n),
            "ccd": np.ones(n, dtype=np.int32),
            "pdg": np.full(n, 11, dtype=np.int32),
        }
        chunks.append(HitCollection.from_arrays(np.arange(start, start + n_ev), np.full(n_ev, per), hits))
    return chunks


def run(name: str, chunks: list[HitCollection], processes: list, detector: Detector) -> dict:
    context = RunContext(seed=1, detector=detector)
    carriers = pixels = 0
    seconds = 0.0
    for hits in chunks:
        data = SimEvents(hits, CounterRNG(1), detector)
        start = time.perf_counter()
        for process in processes:
            process.run(data, context)
        seconds += time.perf_counter() - start
        carriers += 0 if data.carriers is None else int(data.carriers["x"].size)
        pixels += int(data.pixels["event"].size)
    n_events = sum(len(c) for c in chunks)
    return {
        "benchmark": name,
        "events": n_events,
        "hits": int(sum(int(c.n_hits.sum()) for c in chunks)),
        "carriers": carriers,
        "pixels": pixels,
        "seconds": round(seconds, 3),
        "events_per_s": round(n_events / seconds),
        "carriers_per_s": round(carriers / seconds) if carriers else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--hits", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of n runs")
    args = parser.parse_args()
    detector = Detector(ccd_shape=[1000, 4000], e2eV=3.77)
    chunks = make_chunks(args.events, args.hits, args.chunk, seed=1)
    configurations = {
        "PixelizeSignal": lambda: [PixelizeSignal()],
        "Diffusion+PixelizeSignal": lambda: [Diffusion(), PixelizeSignal()],
    }
    for name, build in configurations.items():
        results = [run(name, chunks, build(), detector) for _ in range(args.repeat)]
        print(json.dumps(min(results, key=lambda r: r["seconds"])), flush=True)


if __name__ == "__main__":
    main()
