"""Simulation output branches of pysimdamicm's dictionary (spec C.14): times, image windows, flags, ADC2e."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from waders.core.hits import HitCollection
from waders.io.root import read_clusters, read_records, write_geant4

PITCH = 0.015  # mm
E2EV = 3.77
IMG_EXP_TIME = 10.0  # s


def test_pixel_times_image_windows_and_flags(tmp_path):
    """Two equal deposits in one pixel at 20 s and 30 s (event 0); one at 3 s by a neutron (event 1)."""
    x = np.array([10.5, 10.5, 40.5]) * PITCH
    y = np.array([5.5, 5.5, 7.5]) * PITCH
    hits = {
        "x": x, "y": y, "z": np.full(3, 0.2), "time": np.array([20.0, 30.0, 3.0]), "edep": np.full(3, 5000.0),
        "ccd": np.ones(3, dtype=np.int32), "pdg": np.array([11, 11, 2112], dtype=np.int32),
    }  # fmt: skip
    g4 = tmp_path / "g4.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(2), np.array([2, 1]), hits), run_info={"NEvts": 2})
    config = {
        "detector_response": {"PixelizeSignal": {"active": 1}},
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
        "CF": {"ccd_shape": [100, 100], "e2eV": E2EV, "img_exp_time": IMG_EXP_TIME, "ADC2eV": 0.75},
    }
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "waders.core", "sim", str(path), "--g4file", str(g4), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = out / "waders_sim_g4.root"
    rec = read_clusters(output).tolist()
    (first,), (second,) = (entry["clusters"] for entry in rec)
    (pixel,) = first["pixels"]
    assert pixel["pixels_time"] == pytest.approx(25.0)  # energy-weighted mean
    assert pixel["pixels_std_time"] == pytest.approx(5.0)  # population std of 20 s and 30 s
    assert pixel["pixels_img_time"] == 2  # int(25 s / 10 s)
    assert first["img_time"] == 2.0
    (neutron,) = second["pixels"]
    assert neutron["pixels_img_time"] == 0 and neutron["pixels_std_time"] == 0.0
    assert second["isneutron"] == 1 and first["isneutron"] == 0
    pixelized = read_clusters(output, "pixelizedEvent", count_branch="Ncollections").tolist()
    flags = [p["pixels_neutron"] for entry in pixelized for c in entry["clusters"] for p in c["pixels"]]
    assert flags == [0.0, 1.0]
    assert all(
        p["pixels_sigma_xy"] == 0.0 for e in pixelized for c in e["clusters"] for p in c["pixels"]
    )  # no diffusion
    (process,) = read_records(output, "process_config").tolist()
    assert process["ADC2eV"] == 0.75
    assert process["ADC2e"] == pytest.approx(0.75 / E2EV)
    assert process["img_exp_time"] == IMG_EXP_TIME
