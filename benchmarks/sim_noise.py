"""Benchmark: sparse noise of simulated events (DarkCurrent + ElectronicNoise), events per second.

100,000 events of 5 signal pixels each (placed at random on a 1000 x 4000 CCD) go
through DarkCurrent and ElectronicNoise with the pysimdamicm defaults (0.001 e-/pixel/day
for 1/3 day, sigma 0.25 e-), cropped mode with 300 x 300 regions of interest and the
reconstruction threshold at 4 sigma (1 e-), in chunks of 20,000 events as ``waders sim``
runs them.  pysimdamicm drew two 300 x 300 noise images per event (1.8e5 random numbers);
waders draws the signal pixels' noise and only the noise-only pixels above the threshold
(about 18 per event here), exactly in distribution.

Usage::

    python benchmarks/sim_noise.py [--events 100000] [--chunk 20000] [--mode cropped-image|full-image]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from waders.core.detector import Detector
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.sim.events import SimEvents
from waders.sim.noise import DarkCurrent, ElectronicNoise
from waders.sim.random import CounterRNG

SHAPE = (1000, 4000)
N_PIX = 5


def make_chunk(first: int, n: int, rng: CounterRNG, detector: Detector) -> SimEvents:
    """``n`` events with ids ``first..first+n-1``, 5 signal pixels in a row each."""
    ids = np.arange(first, first + n)
    hits = {k: np.zeros(n) for k in ("x", "y", "z", "time", "edep")}
    hits["ccd"] = np.ones(n, dtype=np.int32)
    hits["pdg"] = np.full(n, 11, dtype=np.int32)
    data = SimEvents(HitCollection.from_arrays(ids, np.ones(n, dtype=np.int64), hits), rng, detector)
    place = np.random.default_rng(first)
    event = np.repeat(np.arange(n), N_PIX)
    m = event.size
    data.set_pixels(
        {
            "event": event,
            "ccd": np.ones(m, dtype=np.int32),
            "row": np.repeat(place.integers(0, SHAPE[0], n), N_PIX).astype(np.int32),
            "col": (np.repeat(place.integers(0, SHAPE[1] - N_PIX, n), N_PIX) + np.tile(np.arange(N_PIX), n)).astype(
                np.int32
            ),
            "edep": place.exponential(500.0, m) + 10.0,
            "charge": np.full(m, 100, dtype=np.int32),
            "z": np.full(m, 0.3),
            "time": np.zeros(m),
            "std_time": np.zeros(m),
            "pdg": np.full(m, 11, dtype=np.int32),
            "sigma_xy": np.zeros(m),
        }
    )
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--mode", default="cropped-image", choices=["cropped-image", "full-image"])
    parser.add_argument("--img-size", type=int, default=300)
    args = parser.parse_args()
    detector = Detector(ccd_shape=list(SHAPE), e2eV=3.77)
    rng = CounterRNG(1)
    sigma = 0.25
    context = RunContext(seed=1, detector=detector, options={"threshold_e": 4 * sigma})
    processes = [
        DarkCurrent(mode=args.mode, img_size=args.img_size),
        ElectronicNoise(mode=args.mode, img_size=args.img_size, sigma=sigma),
    ]
    chunks = [make_chunk(first, min(args.chunk, args.events - first), rng, detector)
              for first in range(0, args.events, args.chunk)]  # fmt: skip
    seconds = {p.name: 0.0 for p in processes}
    noise_pixels = 0
    for data in chunks:
        for process in processes:
            start = time.perf_counter()
            process.run(data, context)
            seconds[process.name] += time.perf_counter() - start
        noise_pixels += int(np.sum(data.pixels["edep"] == 0))
    total = sum(seconds.values())
    row = {
        "events": args.events,
        "mode": args.mode,
        "img_size": args.img_size,
        "threshold_e": 4 * sigma,
        "seconds": round(total, 2),
        "events_per_s": round(args.events / total),
        "seconds_per_process": {k: round(v, 2) for k, v in seconds.items()},
        "noise_only_pixels_per_event": round(noise_pixels / args.events, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
