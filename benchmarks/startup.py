"""Start-up time of the ``waders`` command (issue 18): wall time of whole commands in fresh interpreters.

Run as ``python benchmarks/startup.py [--repeats N]``.  Every command runs once untimed (so
byte-code is cached: ``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment),
then ``N`` times; the best wall time is reported with its ratio to ``python -c pass`` measured
in the same run.  The image is tiny (20 x 60 x 4 raw samples), so the ``waders ana`` times are
dominated by start-up.  ``--modules`` also prints which heavy packages each command imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def wall_time(argv: list[str], repeats: int) -> float:
    """Best wall time (s) of ``repeats`` runs of ``argv`` after one untimed run; the command must succeed."""
    subprocess.run(argv, check=True, capture_output=True, env=CHILD_ENV)
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=CHILD_ENV)
        best = min(best, time.perf_counter() - start)
    return best


def make_tiny_image(folder: Path) -> Path:
    """A 20 x 60 x 4 raw image (one amplifier) written as FITS."""
    from waders.io import write_raw_image
    from waders.io.synthetic import make_raw_image

    image, _ = make_raw_image(nrows=20, ncols=60, nskips=4)
    path = folder / "tiny.fits"
    write_raw_image(path, image)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per command (best is kept)")
    parser.add_argument("--modules", action="store_true", help="also list the heavy packages each command imports")
    args = parser.parse_args()
    waders = [sys.executable, "-m", "waders.core"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image = make_tiny_image(folder)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
            "waders --help": [*waders, "--help"],
            "waders ana --help": [*waders, "ana", "--help"],
            "waders ana --list-processes": [*waders, "ana", "--list-processes"],
            "waders info tiny.fits": [*waders, "info", str(image)],
            "waders ana -s CompressSkipperProcess tiny": [
                *waders, "ana", "-o", str(folder / "c"), "-s", "CompressSkipperProcess", str(image)
            ],
            "waders ana tiny (default chain)": [*waders, "ana", "-o", str(folder / "d"), str(image)],
        }  # fmt: skip
        baseline = None
        print(f"{'command':<45} {'best (s)':>9} {'x pass':>7}")
        for name, argv in cases.items():
            seconds = wall_time(argv, args.repeats)
            baseline = baseline or seconds
            print(f"{name:<45} {seconds:9.3f} {seconds / baseline:7.1f}", flush=True)
            if args.modules and argv[1] == "-m":
                from waders.core.testing import heavy_imports, startup_imports

                print(f"{'':<8}heavy: {', '.join(sorted(heavy_imports(startup_imports(argv[3:])))) or '-'}")


if __name__ == "__main__":
    main()
