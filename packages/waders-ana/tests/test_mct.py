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
