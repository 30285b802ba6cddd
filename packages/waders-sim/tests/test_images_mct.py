"""End to end: CreateFitsImage writes the truth HDUs, ``waders ana --mct`` matches every event to its cluster.

Twelve diffused events on a grid (both amplifiers of a two-amplifier raw image, the U half
mirrored in the file); the truth table gives each event's ``mct_id``, energy and centre.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from waders.io import read_clusters

E2EV = 3.74
PITCH = 0.015


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("raw", [True, False])
def test_simulated_images_carry_truth_hdus_for_ana_mct(tmp_path, raw):
    from waders.core.hits import HitCollection
    from waders.io.root import write_geant4

    rng = np.random.default_rng(7)
    cols, rows = np.meshgrid([40, 120, 280, 360], [60, 150, 240])  # away from the amplifier split (column 200)
    n = cols.size
    hits = {
        "x": (cols.ravel() + rng.uniform(0, 1, n)) * PITCH, "y": (rows.ravel() + rng.uniform(0, 1, n)) * PITCH,
        "z": rng.uniform(0.1, 0.6, n), "time": np.zeros(n), "edep": rng.uniform(3000.0, 20000.0, n),
        "ccd": np.ones(n, dtype=np.int32), "pdg": np.full(n, 11, dtype=np.int32),
    }  # fmt: skip
    g4 = tmp_path / "g4.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(n), np.ones(n, dtype=np.int64), hits), run_info={"NEvts": n})
    image_config = {
        "active": 1, "n_events": n, "raw": raw, "nskips": 16, "noise_adu": 10.0, "gain": 10.0, "amplifiers": 2,
        "prescan": 8, "overscan": 40, "darkcurrent": 0.1, "exp_time": 0.2, "prefix": "sim",
    }  # fmt: skip
    config = {
        "detector_response": {
            "Diffusion": {"active": 1},
            "PixelizeSignal": {"active": 1},
            "CreateFitsImage": image_config,
        },
        "CF": {"ccd_shape": [300, 400], "e2eV": E2EV},
    }
    (tmp_path / "sim.json").write_text(json.dumps(config))
    result = waders("sim", str(tmp_path / "sim.json"), "--g4file", str(g4), "-o", str(tmp_path / "sim"))
    assert result.returncode == 0, result.stderr
    image = tmp_path / "sim" / "sim_image_1.fits"
    truth = json.loads(image.with_name("sim_image_1.truth.json").read_text())["events"]
    assert len(truth) == n
    with fits.open(image) as hdul:
        energy, ids = hdul["MonteCarloTruth"].data, hdul["MCT_ID"].data
        assert energy.shape == ids.shape == (300, 2 * (8 + 200 + 40))
    for event in truth:  # the truth images agree with the table
        assert energy[ids == event["mct_id"]].sum() == pytest.approx(event["energy_eV"], rel=1e-9)
    result = waders("ana", "-o", str(tmp_path / "ana"), "--mct", str(image))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(tmp_path / "ana" / "sim_image_1_clusters.root").tolist()
    found = {c["MCT_id"]: c for c in entry["clusters"] if c["MCT_id"] > 0 and c["Energy_MCT"] > 1.0}
    assert sorted(found) == list(range(1, n + 1))  # every event, matched fraction 12/12
    sigma_e = 10.0 / np.sqrt(16) / 10.0  # 0.25 e- per pixel
    for event in truth:
        cluster = found[event["mct_id"]]
        true_kev = event["energy_eV"] / 1000.0
        assert cluster["MCT_pileup"] == 0
        # every deposited electron but isolated 1 e- tail pixels is above the 4-sigma (1 e-) cut
        assert true_kev * 0.98 <= cluster["Energy_MCT"] <= true_kev * (1 + 1e-9)
        npix = len(cluster["pixels"])
        # pair creation (Fano), dark current 0.02 e-/pixel, noise and the fitted gain (about 1 %)
        allowed = (np.sqrt(0.129 * true_kev * 1000 / E2EV) * 5 + 0.02 * npix + 5 * sigma_e * np.sqrt(npix)) * E2EV
        assert abs(cluster["Energy"] - true_kev) * 1000 < allowed + 0.03 * true_kev * 1000
        assert cluster["PosX"] == pytest.approx(event["col"], abs=0.3)  # both 1-based file coordinates
        assert cluster["PosY"] == pytest.approx(event["row"], abs=0.3)
