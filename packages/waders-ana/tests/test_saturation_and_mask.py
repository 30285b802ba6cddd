"""Saturated pixels (``pixels_saturated``, ``Npix_sat``) and ``waders ana --mask`` (``dist_mask_min/max``).

Generated raw images with charge clouds of known pixels: some pixels of one cloud are
clipped by the "ADC" (every skip at 65535 ADU); the mask marks a known column and a known
pixel block, and the distances are checked against a brute-force computation on the pixels
the clusters hold.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from waders.ana.clusters.distmask import cluster_mask_distances, distance_to_mask
from waders.ana.compress import CompressSkipperProcess
from waders.ana.saturation import saturated_map
from waders.io import read_clusters, write_averaged_image, write_raw_image
from waders.io.synthetic import cluster_deposits, make_raw_image

SHAPE = (160, 250)  # file rows, columns (prescan 8 + active + overscan 40)
CENTRES = [(40.3, 60.7), (100.2, 150.4), (130.0, 40.0)]
ELECTRONS = [900, 2500, 1500]
SATURATED = 65535.0


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=600)


def _image(seed: int = 6):
    rng = np.random.default_rng(21)
    deposits, truth = cluster_deposits(rng, CENTRES, ELECTRONS, [0.9, 1.4, 1.1])
    image, _ = make_raw_image(
        amplifiers=("L",), nrows=SHAPE[0], ncols=SHAPE[1], prescan=8, overscan=40, nskips=16, noise=10.0,
        gain=10.0, dark_current=0.05, deposits=deposits, seed=seed,
    )  # fmt: skip
    return image, truth


def _pix(cluster, name: str) -> list:
    return [p[name] for p in cluster["pixels"]]


def _flagged(clusters) -> list[tuple[int, int]]:
    """0-based file (row, column) of the pixels flagged as saturated."""
    return sorted(
        (p["pixels_y"] - 1, p["pixels_x"] - 1) for c in clusters for p in c["pixels"] if p["pixels_saturated"]
    )


def _brightest(truth, cloud: int, n: int) -> list[tuple[int, int]]:
    mine = np.zeros(SHAPE)
    sel = truth.pixel_cluster == cloud
    np.add.at(mine, (truth.pixel_row[sel], truth.pixel_col[sel]), truth.pixel_electrons[sel])
    flat = np.argsort(mine, axis=None)[::-1][:n]
    return [tuple(int(v) for v in np.unravel_index(i, SHAPE)) for i in flat]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    image, truth = _image()
    clipped = _brightest(truth, 1, 3)
    for row, col in clipped:
        image["L"].raw[row, col, :] = SATURATED  # the ADC clipped every skip
    folder = tmp_path_factory.mktemp("sat")
    path = write_raw_image(folder / "sat_img1.fits", image, dtype="float64")
    mask = np.zeros(SHAPE, dtype=np.int16)
    mask[:, 150] = 1  # a hot column through cloud 1
    mask[125:128, 30:33] = 1  # a block next to cloud 2
    mask_path = folder / "mask.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(mask)]).writeto(mask_path)
    out = folder / "out"
    result = waders("ana", "-o", str(out), "--mask", str(mask_path), str(path))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(out / "sat_img1_clusters.root").tolist()
    return entry["clusters"], clipped, mask.astype(bool), folder, path


def test_saturated_pixels_are_flagged_in_their_cluster(analysed):
    clusters, clipped, _, _, _ = analysed
    assert _flagged(clusters) == sorted(clipped)
    for c in clusters:
        assert c["Npix_sat"] == sum(_pix(c, "pixels_saturated"))
        assert set(_pix(c, "pixels_saturated")) <= {0, 1}
    assert sorted(c["Npix_sat"] for c in clusters if c["Npix_sat"]) == [3]


def test_mask_distances_match_a_brute_force_computation(analysed):
    clusters, _, mask, _, _ = analysed
    masked = np.argwhere(mask)
    assert len(clusters) >= 3
    for c in clusters:
        rows = np.asarray(_pix(c, "pixels_y")) - 1
        cols = np.asarray(_pix(c, "pixels_x")) - 1
        nearest = np.hypot(rows[:, None] - masked[None, :, 0], cols[:, None] - masked[None, :, 1]).min(axis=1)
        assert c["dist_mask_min"] == pytest.approx(nearest.min())
        assert c["dist_mask_max"] == pytest.approx(nearest.max())
    crossing = [c for c in clusters if 151 in _pix(c, "pixels_x")]  # column 150 (0-based) runs through cloud 1
    assert crossing and all(c["dist_mask_min"] == 0 for c in crossing)


def test_no_masked_pixel_gives_minus_one():
    distance = distance_to_mask(np.zeros((5, 6), dtype=bool))
    assert (distance == -1).all()
    mask = np.zeros((5, 6), dtype=bool)
    mask[0, 0] = True
    import awkward as ak

    clusters = ak.Array([{"pixels_x": [4, 5], "pixels_y": [4, 5]}])  # 0-based (3, 3) and (4, 4)
    low, high = cluster_mask_distances(clusters, distance_to_mask(mask))
    assert low[0] == pytest.approx(np.hypot(3, 3)) and high[0] == pytest.approx(np.hypot(4, 4))


def test_bad_mask_is_a_one_line_error(analysed, tmp_path):
    *_, path = analysed
    missing = waders("ana", "-o", str(tmp_path / "a"), "--mask", str(tmp_path / "nope.fits"), str(path))
    assert missing.returncode == 2 and "nope.fits: no such file" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "a").exists()
    small = tmp_path / "small.fits"
    fits.PrimaryHDU(np.zeros((10, 10))).writeto(small)
    wrong = waders("ana", "-o", str(tmp_path / "b"), "--mask", str(small), str(path))
    assert wrong.returncode == 2
    assert "the mask has shape (10, 10)" in wrong.stderr and "Traceback" not in wrong.stderr


def test_saturation_level_flags_averaged_images(tmp_path, run_chain):
    image, truth = _image(seed=8)
    run_chain(image, CompressSkipperProcess(func_to_compress=["mean"]))
    clipped = _brightest(truth, 2, 2)
    mean = image["L"].get("mean_compressed")
    for row, col in clipped:
        mean[row, col] = 60000.0  # the level of the ADC
    path = write_averaged_image(tmp_path / "avg_img2.fits", image)
    out = tmp_path / "out"
    result = waders("ana", "-o", str(out), "--set", "CompressSkipperProcess.saturation_adu=60000", str(path))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(out / "avg_img2_clusters.root").tolist()
    assert _flagged(entry["clusters"]) == sorted(clipped)


def test_saturation_rules():
    mean = np.array([[5.0, 9.0], [9.0, 3.0]])
    std = np.array([[0.0, 0.0], [1.5, 0.0]])
    assert saturated_map(mean, std, None, 9.0).tolist() == [[False, True], [False, False]]  # max AND no spread
    assert saturated_map(mean, None, 5.0, 9.0).tolist() == [[True, True], [True, False]]
    assert not saturated_map(mean, None, None, 9.0).any()


def test_process_config_has_the_conversion_constants(analysed):
    from waders.io.root import read_records

    *_, folder, _ = analysed
    (config,) = read_records(folder / "out" / "sat_img1_clusters.root", "process_config").tolist()
    assert config["ADC2e"] == pytest.approx(10.0, rel=0.02)  # the generated gain, fitted by the default chain
    assert config["ADC2eV"] == pytest.approx(config["e2eV"] / config["ADC2e"], rel=1e-12)
    assert config["img_exp_time"] == pytest.approx(8.64e13)
