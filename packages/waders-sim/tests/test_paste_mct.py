"""End to end: ``waders sim`` pastes diffused events into a blank, ``waders ana --mct`` matches them to the truth.

It lives with waders-sim (whose test extra installs waders-ana): the analysis package alone cannot make the
pasted image.  The matching itself is tested on generated images in waders-ana's ``test_mct.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from waders.io import read_clusters, write_raw_image
from waders.io.synthetic import make_raw_image

E2EV = 3.74
SIGMA_E = 10.0 / np.sqrt(16) / 10.0  # 10 ADU per skip, 16 skips, 10 ADU/e-: 0.25 e- per pixel


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=600)


def test_images_pasted_by_waders_sim_match_their_truth_table(tmp_path):
    """End to end: waders sim pastes 12 diffused events into a generated blank; waders ana --mct finds each one."""
    from waders.core.hits import HitCollection
    from waders.io.root import write_geant4

    blanks = tmp_path / "blanks"
    blank, _ = make_raw_image(
        amplifiers=("L",), nrows=300, ncols=400, prescan=8, overscan=40, nskips=16, noise=10.0, gain=10.0,
        dark_current=0.02, seed=5,
    )  # fmt: skip
    write_raw_image(blanks / "blank_run1_img1.fits", blank)
    rng = np.random.default_rng(2)
    n = 12
    hits = {
        "x": rng.uniform(0.3, 4.0, n), "y": rng.uniform(0.3, 3.0, n), "z": rng.uniform(0.1, 0.6, n),
        "time": np.zeros(n), "edep": rng.uniform(3000.0, 20000.0, n), "ccd": np.ones(n, dtype=np.int32),
        "pdg": np.full(n, 11, dtype=np.int32),
    }  # fmt: skip
    g4 = tmp_path / "g4.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(n), np.ones(n, dtype=np.int64), hits), run_info={"NEvts": n})
    pasted = tmp_path / "pasted"
    paste = {
        "active": 1, "blank_outdir": str(pasted), "blank_dir": str(blanks / "*.fits"), "clusters_per_blank": n,
        "calibration": 10.0, "row_cls_dist_fx": "uniform",
    }  # fmt: skip
    config = {
        "detector_response": {
            "Diffusion": {"active": 1},
            "PixelizeSignal": {"active": 1},
            "PasteClusterProcess": paste,
        },
        "CF": {"ccd_shape": [300, 400], "e2eV": E2EV},
    }
    (tmp_path / "paste.json").write_text(json.dumps(config))
    result = waders("sim", str(tmp_path / "paste.json"), "--g4file", str(g4), "-o", str(tmp_path / "sim"))
    assert result.returncode == 0, result.stderr
    (image,) = pasted.glob("*.fits")
    truth = json.loads(image.with_name(f"{image.stem}.truth.json").read_text())["pastes"]
    result = waders("ana", "-o", str(tmp_path / "ana"), "--mct", str(image))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(tmp_path / "ana" / f"{image.stem}_clusters.root").tolist()
    summary = json.loads((tmp_path / "ana" / f"{image.stem}.summary.json").read_text())
    assert list(summary["amplifiers"]) == ["L"]  # the four truth HDUs are not amplifiers
    gain = summary["amplifiers"]["L"]
    assert gain["fit_valid"] is True
    gain_error = gain["gain_err"] / gain["gain_adu_per_e"]
    assert gain_error < 0.01
    found = {c["MCT_id"]: c for c in entry["clusters"] if c["MCT_id"] > 0 and c["Energy_MCT"] > 1.0}
    assert sorted(found) == [p["paste_id"] for p in truth]  # matched fraction 12/12
    for paste_truth in truth:
        cluster = found[paste_truth["paste_id"]]
        true_kev = paste_truth["energy_eV"] / 1000.0
        # all pasted electrons but isolated 1 e- tail pixels are above the 4-sigma (1 e-) cut
        assert true_kev * 0.98 <= cluster["Energy_MCT"] <= true_kev * (1 + 1e-9)
        npix = len(cluster["pixels"])
        allowed = (0.02 * npix + 5 * SIGMA_E * np.sqrt(npix) + 0.5) * E2EV / 1000.0
        # + 3 standard errors of the fitted gain (its 1 e- peak holds the ~2000 dark-current pixels of the
        # blank: about 0.5 %), which scales every energy
        assert abs(cluster["Energy"] - cluster["Energy_MCT"]) < allowed + 3 * gain_error * true_kev
        assert cluster["PosX"] == pytest.approx(paste_truth["col"], abs=0.1)  # both 1-based file coordinates
        assert cluster["PosY"] == pytest.approx(paste_truth["row"], abs=0.1)
