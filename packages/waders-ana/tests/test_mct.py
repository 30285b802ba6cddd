"""``waders ana --mct``: clusters matched to the Monte-Carlo truth of a simulated image with known clouds.

The image is a generated raw skipper image with charge clouds of known pixels; the truth
HDUs are written as PasteClusterProcess writes them (``MonteCarloTruth`` in eV and
``MCT_ID``, the true cluster of every pixel).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from waders.io import read_clusters, write_raw_image
from waders.io.synthetic import cluster_deposits, make_raw_image

E2EV = 3.74
SIGMA_E = 10.0 / np.sqrt(16) / 10.0  # 10 ADU per skip, 16 skips, 10 ADU/e-: 0.25 e- per pixel
DARK = 0.05
# three isolated clouds, and two clouds 2 pixels apart that the clustering must merge (pile-up)
CENTRES = [(40.3, 60.7), (120.2, 150.4), (160.0, 40.0), (80.0, 200.0), (80.0, 202.0)]
ELECTRONS = [900, 2500, 1500, 1200, 800]


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    rng = np.random.default_rng(21)
    deposits, truth = cluster_deposits(rng, CENTRES, ELECTRONS, [0.9, 1.4, 1.1, 0.8, 0.8])
    image, _ = make_raw_image(
        amplifiers=("L",), nrows=200, ncols=250, prescan=8, overscan=40, nskips=16, noise=10.0, gain=10.0,
        dark_current=DARK, deposits=deposits, seed=6,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("sim") / "pasted_img3.fits"
    write_raw_image(path, image)
    energy = np.zeros((200, 250))
    ids = np.zeros((200, 250), dtype=np.int32)
    np.add.at(energy, (truth.pixel_row, truth.pixel_col), truth.pixel_electrons * E2EV)
    order = np.argsort(truth.pixel_cluster, kind="stable")  # where clouds overlap, the later one wins (as pasting)
    ids[truth.pixel_row[order], truth.pixel_col[order]] = truth.pixel_cluster[order] + 1
    with fits.open(path, mode="append") as hdul:
        hdul.append(fits.ImageHDU(energy, name="MonteCarloTruth"))
        hdul.append(fits.ImageHDU(ids, name="MCT_ID"))
    out = tmp_path_factory.mktemp("out")
    result = waders("ana", "-o", str(out), "--mct", str(path))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(out / "pasted_img3_clusters.root").tolist()
    summary = json.loads((out / "pasted_img3.summary.json").read_text())
    return entry["clusters"], truth, summary, (energy, ids)


def test_truth_hdus_are_not_amplifiers(simulated):
    _, _, summary, _ = simulated
    assert list(summary["amplifiers"]) == ["L"]


def test_every_true_cluster_is_found_with_its_energy_and_position(simulated):
    clusters, truth, _, _ = simulated
    for k in range(3):  # the isolated clouds
        (match,) = [c for c in clusters if c["MCT_id"] == k + 1 and c["Energy_MCT"] > 0.1]
        assert match["MCT_pileup"] == 0 and match["MCT_pileup_Ncls"] == 1
        true_kev = truth.electrons[k] * E2EV / 1000.0
        # only isolated 1-electron tail pixels can fall below the 4-sigma (1 e-) cut: < 1 % of the charge
        assert true_kev * 0.99 <= match["Energy_MCT"] <= true_kev * (1 + 1e-12)
        npix = len(match["pixels"])
        # reconstructed = true + dark current (0.05 e-/pixel) +- noise (0.25 e- per pixel)
        allowed = (DARK * npix + 5 * SIGMA_E * np.sqrt(npix)) * E2EV / 1000.0
        assert abs(match["Energy"] - match["Energy_MCT"] - DARK * npix * E2EV / 1000.0) < allowed
        assert match["PosY"] == pytest.approx(truth.row[k] + 1, abs=0.1)  # 1-based
        assert match["PosX"] == pytest.approx(truth.col[k] + 1, abs=0.1)
        pixel_e = [p["pixels_E_MCT"] for p in match["pixels"]]
        assert sum(pixel_e) == pytest.approx(match["Energy_MCT"], rel=1e-12)
        assert match["Npix_MCT"] == sum(e > 0 for e in pixel_e)
        assert {p["pixels_MCT_cls_id"] for p in match["pixels"] if p["pixels_E_MCT"] > 0} == {k + 1}


def test_merged_clouds_are_pile_up_and_the_rest_has_no_truth(simulated):
    clusters, truth, _, (energy, ids) = simulated
    (merged,) = [c for c in clusters if c["MCT_pileup"]]
    assert merged["MCT_pileup_Ncls"] == 2
    # the id with most true energy; where the clouds overlap the pixel belongs to the later paste (id 5)
    by_id = {k: energy[ids == k].sum() for k in (4, 5)}
    assert merged["MCT_id"] == max(by_id, key=by_id.get)
    assert merged["Energy_MCT"] == pytest.approx((truth.electrons[3] + truth.electrons[4]) * E2EV / 1000, rel=0.01)
    matched = {c["MCT_id"] for c in clusters if c["MCT_id"] > 0 and c["Energy_MCT"] > 0.1}
    assert matched == {1, 2, 3, merged["MCT_id"]}  # matched fraction: every true cluster (4 and 5 together)
    # dark-current clusters away from the clouds carry no truth
    dark = [c for c in clusters if c["MCT_id"] == 0]
    assert dark and all(c["Energy_MCT"] == 0 and c["Npix_MCT"] == 0 for c in dark)


def test_mct_without_truth_hdus_is_a_one_line_error(tmp_path):
    image, _ = make_raw_image(amplifiers=("L",), nrows=50, ncols=60, nskips=4, seed=1)
    path = write_raw_image(tmp_path / "data.fits", image)
    result = waders("ana", "-o", str(tmp_path / "out"), "--mct", str(path))
    assert result.returncode == 2
    assert "no MonteCarloTruth and no MCT_ID HDU for --mct" in result.stderr
    assert "Traceback" not in result.stderr


def test_images_pasted_by_waders_sim_match_their_truth_table(tmp_path):
    """End to end: waders sim pastes 12 diffused events into a generated blank; waders ana --mct finds each one."""
    pytest.importorskip("waders.sim", reason="needs waders-sim to make the pasted image")
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
