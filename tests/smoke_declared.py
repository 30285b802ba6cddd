"""Smoke check of one waders package installed with only its declared runtime dependencies.

Run by the nox ``tests`` session *before* the test extra is installed (the test extras pull
in other waders packages, e.g. waders-sim's tests use waders-ana, which would hide an
undeclared import).  It imports every module of ``waders.<package>`` and, for waders-sim,
runs a tiny ``waders sim`` with noise and an active ClusterFinder, so that imports made
inside functions are exercised too.

Usage: ``python tests/smoke_declared.py sim``
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path


def import_all(package: str) -> int:
    """Import every module of ``waders.<package>``; return how many."""
    root = importlib.import_module(f"waders.{package}")
    names = [m.name for m in pkgutil.walk_packages(root.__path__, prefix=f"waders.{package}.")]
    for name in names:
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)
    return len(names)


def sim_run() -> None:
    """A five-event ``waders sim`` with readout noise and an active ClusterFinder."""
    import numpy as np

    from waders.core.hits import HitCollection
    from waders.io.root import read_clusters, write_geant4

    pitch = 0.015
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        n = 5
        hits = {
            "x": (np.arange(n) * 20 + 10.5) * pitch, "y": np.full(n, 30.5 * pitch), "z": np.full(n, 0.3),
            "time": np.zeros(n), "edep": np.full(n, 2000.0), "ccd": np.ones(n, dtype=np.int32),
            "pdg": np.full(n, 11, dtype=np.int32),
        }  # fmt: skip
        g4 = tmp_path / "g4.root"
        write_geant4(g4, HitCollection.from_arrays(np.arange(n), np.ones(n, int), hits), run_info={"NEvts": n})
        config = {
            "detector_response": {
                "PixelizeSignal": {"active": 1},
                "ElectronicNoise": {"active": 1, "sigma": 0.2, "img_size": 40},
            },
            "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 1, "active": 1,
                                                 "spr_threshold": 1.0}},
            "CF": {"ccd_shape": [100, 150], "e2eV": 3.77, "ccd_thickness": 0.675},
        }  # fmt: skip
        (tmp_path / "sim.json").write_text(json.dumps(config))
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "waders.core", "sim", "--json", str(tmp_path / "sim.json"), "--g4file", str(g4)]
        result = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise SystemExit(f"waders sim failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        (output,) = out.glob("*.root")
        events = read_clusters(output).tolist()
        if len(events) != n:
            raise SystemExit(f"waders sim: {len(events)} events with clusters, expected {n}")


def main(package: str) -> None:
    count = import_all(package)
    if package == "sim":
        sim_run()
    print(f"smoke ok: waders-{package} ({count} modules) with only its declared dependencies")


if __name__ == "__main__":
    main(sys.argv[1])
