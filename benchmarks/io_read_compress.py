"""Benchmark: read + compress (mean over skips) of a large raw skipper image.

Compares, in the same run and on the same file (in the page cache for both):

* baseline: a plain astropy read of the whole HDU + ``numpy.mean`` over the skip axis;
* waders:   ``waders.io.read_image(lazy=True)`` + ``waders.io.reduce_skips`` (row blocks).

Each measurement runs in a fresh Python process that reports its wall time and peak RSS.
Targets (issue 3): waders within 1.5x of the baseline time, peak RSS under 1.5 GB
whatever the file size.

Usage::

    python benchmarks/io_read_compress.py [--gb 1.3] [--small-gb 0.3] [--dir /tmp] [--update-docs]
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

CHILD = r"""
import json, resource, sys, time
import numpy as np
path, mode = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if mode == "baseline":
    from astropy.io import fits
    with fits.open(path, memmap=False) as hdul:
        raw = hdul[0].data
        nskips = hdul[0].header["NDCMS"]
    mean = raw.reshape(raw.shape[0], -1, nskips).mean(axis=2, dtype=np.float64)
    checksum = float(mean.sum())
else:
    from waders.io import read_image, reduce_skips
    image = read_image(path, lazy=True)
    result = reduce_skips(image, ["mean"])
    checksum = float(sum(r["mean"].sum() for r in result.values()))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "checksum": checksum}))
"""


class GeneratedSamples:
    """Raw samples generated on demand, row block by row block (never all in memory)."""

    def __init__(self, nrows: int, ncols: int, nskips: int, seed: int) -> None:
        self.shape = (nrows, ncols, nskips)
        self.dtype = np.dtype(np.float64)
        self.seed = seed

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.shape[0])
        rng = np.random.default_rng([self.seed, start])
        block = rng.normal(0.0, 3.0, (stop - start, *self.shape[1:])).astype(np.float32)
        return block + np.float32(1000.0)


def make_file(path: Path, gigabytes: float) -> tuple[Path, tuple[int, int, int]]:
    from waders.core import AmplifierGeometry, SkipperImage
    from waders.core.geometry import ImageGeometry
    from waders.core.image import Amplifier
    from waders.io import write_raw_image

    nskips, ncols = 40, 2000  # per amplifier; two amplifiers
    nrows = max(1, int(gigabytes * 1e9 / (2 * ncols * nskips * 4)))
    amps = {}
    for i, name in enumerate(("L", "U")):
        geometry = AmplifierGeometry(
            name, nrows, ncols, prescan_cols=8, overscan_cols=100, mirrored=i == 1, col_offset=i * ncols, extension=0
        )
        amps[name] = Amplifier(geometry, raw=GeneratedSamples(nrows, ncols, nskips, seed=i))
    image = SkipperImage(amps, ImageGeometry({n: a.geometry for n, a in amps.items()}, nskips=nskips))
    if not path.exists():
        write_raw_image(path, image, dtype="float32", block_rows=64)
    return path, (nrows, 2 * ncols, nskips)


def measure(path: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), mode], capture_output=True, text=True, check=True, env=CHILD_ENV
    )
    return json.loads(out.stdout)


def run(gigabytes: float, directory: Path, repeats: int) -> dict[str, object]:
    path, shape = make_file(directory / f"bench_raw_{gigabytes:g}GB.fits", gigabytes)
    size_gb = path.stat().st_size / 1e9
    measure(path, "baseline")  # warm the page cache
    baseline = [measure(path, "baseline") for _ in range(repeats)]
    waders = [measure(path, "waders") for _ in range(repeats)]
    best_base = min(baseline, key=lambda m: m["seconds"])
    best_waders = min(waders, key=lambda m: m["seconds"])
    assert abs(best_base["checksum"] - best_waders["checksum"]) < 1e-6 * abs(best_base["checksum"]) + 1e-3
    return {
        "file_gb": round(size_gb, 3),
        "shape": shape,
        "baseline_s": round(best_base["seconds"], 2),
        "waders_s": round(best_waders["seconds"], 2),
        "ratio": round(best_waders["seconds"] / best_base["seconds"], 2),
        "baseline_rss_mb": round(max(m["peak_rss_mb"] for m in baseline)),
        "waders_rss_mb": round(max(m["peak_rss_mb"] for m in waders)),
    }


def update_docs(rows: list[dict[str, object]]) -> None:
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    begin, end = "<!-- io_read_compress:begin -->", "<!-- io_read_compress:end -->"
    table = [
        begin,
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/io_read_compress.py --update-docs` "
        "(2 cores, 24 GB; file in the page cache; best of the repeats).",
        "",
        "| file | rows x cols x skips | baseline: astropy read + numpy mean | waders: lazy read + reduce_skips | "
        "ratio (target <= 1.5) | peak RSS baseline | peak RSS waders (target < 1.5 GB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = " x ".join(str(s) for s in r["shape"])  # type: ignore[union-attr]
        table.append(
            f"| {r['file_gb']} GB | {shape} | {r['baseline_s']} s | {r['waders_s']} s | {r['ratio']} | "
            f"{r['baseline_rss_mb']} MB | {r['waders_rss_mb']} MB |"
        )
    table.append(end)
    block = "\n".join(table)
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n## Read + compress of a raw image (waders-io, issue 3)\n\n" + block + "\n"
    docs.parent.mkdir(exist_ok=True)
    docs.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.3, help="size of the large file (GB)")
    parser.add_argument("--small-gb", type=float, default=0.3, help="size of the small file (GB), 0 to skip")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the files are written")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--update-docs", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    for size in [s for s in (args.small_gb, args.gb) if s > 0]:
        row = run(size, args.dir, args.repeats)
        print(json.dumps(row))
        rows.append(row)
    if args.update_docs:
        update_docs(rows)


if __name__ == "__main__":
    main()
