"""waders ana end to end: generated raw images with known truth, batches, bad input, the real DAMIC-M image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from waders.data import DAMICM_IMAGE
from waders.data import path as data_path
from waders.io import read_clusters, write_raw_image
from waders.io.synthetic import cluster_deposits, make_raw_image

GAIN, NOISE_PER_SKIP, NSKIPS, DARK = 10.0, 10.0, 25, 0.2
SIGMA_E = NOISE_PER_SKIP / np.sqrt(NSKIPS) / GAIN  # 0.2 e- per averaged pixel
E2EV = 3.74


def waders(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory):
    """A two-amplifier raw image with three charge clouds in each amplifier."""
    rng = np.random.default_rng(5)
    deposits, truth = cluster_deposits(
        rng, [(50.3, 100.7), (150.2, 60.4), (220.0, 200.5)], [800, 1500, 3000], [0.8, 1.2, 1.5]
    )
    image, pixels_truth = make_raw_image(
        amplifiers=("L", "U"), nrows=300, ncols=400, prescan=8, overscan=60, nskips=NSKIPS,
        noise=NOISE_PER_SKIP, gain=GAIN, dark_current=DARK, deposits=deposits, seed=3,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("data") / "run7_img12.fits"
    write_raw_image(path, image)
    return path, truth, pixels_truth


@pytest.fixture(scope="module")
def analysed(raw_file, tmp_path_factory):
    path, truth, pixels_truth = raw_file
    out = tmp_path_factory.mktemp("out")
    result = waders("ana", "-o", str(out), "--save-img", str(path))
    assert result.returncode == 0, result.stderr
    return out, (truth, pixels_truth), json.loads((out / "run7_img12.summary.json").read_text())


def test_default_chain_recovers_gain_noise_and_dark_current(analysed):
    _, _, summary = analysed
    assert summary["warnings"] == []
    assert summary["image"] == 12
    for name in ("L", "U"):
        amp = summary["amplifiers"][name]
        # about 100000 active pixels: statistical errors are far below the required accuracy
        assert amp["gain_adu_per_e"] == pytest.approx(GAIN, rel=0.01)
        assert abs(amp["gain_adu_per_e"] - GAIN) < 4 * amp["gain_err"]
        assert amp["sigma_e"] == pytest.approx(SIGMA_E, rel=0.03)
        assert amp["lambda_e_per_pixel"] == pytest.approx(DARK, rel=0.05)
        assert abs(amp["lambda_e_per_pixel"] - DARK) < 4 * amp["lambda_err"] + 0.002  # + the clouds' own charge
        assert amp["noise_adu"] == pytest.approx(SIGMA_E * GAIN, rel=0.03)
        assert amp["fit_valid"] is True
        assert amp["n_clusters"] > 3
    assert set(summary["timings_s"]) == {
        "CompressSkipperProcess", "PedestalSubtractionProcess", "FitDarkCurrentProcess",
        "CalibrationProcess", "ClusterFinder", "BuildClusterMask",
    }  # fmt: skip
    assert summary["config"]["process"]["sequence"][0] == "CompressSkipperProcess"


def test_clusters_in_the_root_file_match_the_truth(analysed):
    out, (truth, pixels_truth), _ = analysed
    (entry,) = read_clusters(out / "run7_img12_clusters.root").tolist()
    big = [c for c in entry["clusters"] if c["Energy"] > 1.0]  # the clouds (keV); dark-current electrons are 3.7 eV
    assert len(big) == 6  # three clouds in each amplifier
    for amp_index, name in ((0, "L"), (1, "U")):
        found = sorted((c for c in big if c["amplifier"] == amp_index), key=lambda c: c["Energy"])
        for cluster, row, col, electrons in zip(found, truth.row, truth.col, truth.electrons, strict=True):
            file_col = 400 + (399 - col) if name == "U" else col
            assert cluster["PosY"] == pytest.approx(row + 1, abs=0.1)  # 1-based file coordinates
            assert cluster["PosX"] == pytest.approx(file_col + 1, abs=0.1)
            # the energy of the charge in the cluster's pixels (cloud + dark current there), within 1 %
            rows = np.array([p["pixels_y"] for p in cluster["pixels"]]) - 1
            cols = np.array([p["pixels_x"] for p in cluster["pixels"]]) - 1
            readout_cols = 399 - (cols - 400) if name == "U" else cols
            charge = pixels_truth.electrons[name][rows, readout_cols].sum()
            assert cluster["Energy"] == pytest.approx(charge * E2EV / 1000, rel=0.01)
            # and the cloud itself: the dark current of 0.2 e-/pixel adds a little
            assert electrons <= charge < electrons * 1.06
            assert cluster["has_seed"]
            assert len(cluster["pixels"]) == cluster["Npix"]


def test_processed_images_are_written(analysed):
    out, _, _ = analysed
    with fits.open(out / "run7_img12_waders.fits") as hdul:
        names = [h.name for h in hdul]
        assert {"MEAN", "PEDSUBTRACTED", "CALIBRATED", "FULLMASK"} <= set(names)
        assert hdul["CALIBRATED"].data.shape == (300, 800)
        assert hdul[0].header["WPROC3"] == "FitDarkCurrentProcess"
        assert hdul[0].header["GAIN_L"] == pytest.approx(GAIN, rel=0.01)


def test_binned_single_amplifier_image_reports_dark_current_per_unbinned_pixel(tmp_path):
    image, _ = make_raw_image(
        nrows=300, ncols=300, overscan=40, nskips=NSKIPS, noise=NOISE_PER_SKIP, gain=GAIN, dark_current=2 * DARK,
        col_binning=2, seed=8,
    )  # fmt: skip
    path = write_raw_image(tmp_path / "binned.fits", image)
    result = waders("ana", "-o", str(tmp_path), str(path))
    assert result.returncode == 0, result.stderr
    amp = json.loads((tmp_path / "binned.summary.json").read_text())["amplifiers"]["L"]
    assert amp["lambda_e_per_pixel"] == pytest.approx(DARK, rel=0.05)  # 2 x 0.2 e- per binned pixel
    assert amp["gain_adu_per_e"] == pytest.approx(GAIN, rel=0.01)


def test_batch_goes_on_past_bad_files(raw_file, tmp_path):
    path, _, _ = raw_file
    bad = tmp_path / "broken.fits"
    bad.write_bytes(path.read_bytes()[:5000])
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"process": {"sequence": "CompressSkipperProcess;PedestalSubtractionProcess"}}))
    result = waders("ana", "--json", str(config), "-o", str(tmp_path / "out"), str(bad), str(path))
    assert result.returncode == 2
    assert "analysed 1 of 2 file(s)" in result.stdout
    assert (tmp_path / "out" / "run7_img12.summary.json").exists()
    assert not (tmp_path / "out" / "broken.summary.json").exists()
    assert "broken.fits: corrupt or truncated FITS file" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "PedestalSubtractionProcess.n_sigma_to_msk=3"], "did you mean 'n_sigma_to_mask'?"),
        (["-s", "CompressSkipperProcess,NoSuchProcess"], "unknown process 'NoSuchProcess' in the sequence"),
        (["--set", "CalibrationProcess.gain=ten"], "error: CalibrationProcess.gain: 'ten' is not a number"),
        (["--set", "CalibrationProcess.gain=10 keV"], "wrong unit 'keV'"),
        (["missing*.fits"], "no input files (no file matches missing*.fits)"),
    ],
)
def test_bad_command_lines_are_one_line_errors(raw_file, tmp_path, args, message):
    path, _, _ = raw_file
    inputs = [] if any("missing" in a for a in args) else [str(path)]
    result = waders("ana", "-o", str(tmp_path), *args, *inputs)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_no_single_electron_resolution_is_an_honest_fallback_not_a_crash(tmp_path):
    image, _ = make_raw_image(nrows=80, ncols=120, overscan=30, nskips=4, noise=40.0, dark_current=0.0, seed=9)
    path = write_raw_image(tmp_path / "noise.fits", image)  # sigma = 2 e-: no single-electron peak to fit
    result = waders("ana", "-o", str(tmp_path), str(path))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "noise.summary.json").read_text())
    amp = summary["amplifiers"]["L"]
    assert amp["fit_valid"] is False
    assert amp["fit_reasons"][0].startswith("no single-electron resolution")
    assert amp["gain_source"].startswith("configuration (fallback: dark-current fit invalid: no single-electron")
    assert amp["gain_adu_per_e"] == 10.0  # the configured gain, stated as such
    assert any(w.startswith("L: FitDarkCurrentProcess: fit invalid") for w in summary["warnings"])
    # one line per amplifier and process on stderr, naming the file
    lines = [line for line in result.stderr.splitlines() if "CalibrationProcess" in line]
    assert len(lines) == 1 and "noise.fits, amplifier L" in lines[0] and "fallback" not in lines[0]


def test_real_damicm_image_with_the_users_configuration(configs, tmp_path):
    """pysimdamicm's img_5.json on the DAMIC-M module-test image: gain about 1.35 ADU/e-, 0.16 e- resolution."""
    image = data_path(DAMICM_IMAGE)
    config = configs / "img_5.json"
    result = waders("ana", "--json", str(config), "-o", str(tmp_path), str(image))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "avg_Image_5_Low_Temp_109_20250807_170213_15.summary.json").read_text())
    assert list(summary["amplifiers"]) == ["CCD_A", "CCD_B", "CCD_D", "CCD_C"]
    for amp in summary["amplifiers"].values():
        assert 1.25 < amp["gain_adu_per_e"] < 1.45
        assert amp["gain_source"] == "dark-current fit"
        assert 0.13 < amp["sigma_e"] < 0.19
        assert amp["fit_valid"] is True
    high = waders(
        "ana", "--json", str(config), "-o", str(tmp_path / "t15"), "--set",
        'ClusterFinder.spr_threshold={"EXT1": [null, 15, 50], "EXT2": [null, 15, 50], "EXT3": [null, 15, 50], '
        '"EXT4": [null, 15, 50]}', str(image),
    )  # fmt: skip
    assert high.returncode == 0, high.stderr
    counts = json.loads((tmp_path / "t15" / "avg_Image_5_Low_Temp_109_20250807_170213_15.summary.json").read_text())
    for amp in counts["amplifiers"].values():
        assert 100 < amp["n_clusters"] < 180  # pysimdamicm: about 120 to 150 per extension


def test_gain_from_the_conditions_database(raw_file, tmp_path):
    path, _, _ = raw_file
    db = tmp_path / "conditions.sqlite"
    for amp, value in (("L", 9.8), ("U", 10.3)):
        deployed = waders("conditions", "deploy", "--db", str(db), "--type", "gain", "--detector", "1",
                          "--amplifier", amp, "--value", str(value), "--runs", "0:")  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"process": {
        "sequence": "CompressSkipperProcess;PedestalSubtractionProcess;CalibrationProcess",
        "CalibrationProcess": {"gain": "conditions"}}}))  # fmt: skip
    result = waders("ana", "--json", str(config), "--conditions", str(db), "-o", str(tmp_path), str(path))
    assert result.returncode == 0, result.stderr
    amps = json.loads((tmp_path / "run7_img12.summary.json").read_text())["amplifiers"]
    assert (amps["L"]["gain_adu_per_e"], amps["U"]["gain_adu_per_e"]) == (9.8, 10.3)
    assert amps["L"]["gain_source"].startswith("conditions #")
    missing = waders("ana", "--json", str(config), "--conditions", str(tmp_path / "none.sqlite"), "-o",
                     str(tmp_path), str(path))  # fmt: skip
    assert missing.returncode == 2
    assert "conditions database" in missing.stderr and "does not exist" in missing.stderr


def test_progress_bar_of_the_files_on_a_terminal_with_errors_above_it(raw_file, tmp_path):
    import os
    import pty

    path, _, _ = raw_file
    bad = tmp_path / "broken.fits"
    bad.write_bytes(path.read_bytes()[:5000])
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"process": {"sequence": "CompressSkipperProcess;PedestalSubtractionProcess"}}))
    copy = tmp_path / "run7_img13.fits"
    copy.write_bytes(path.read_bytes())
    args = ["ana", "--json", str(config), "-o", str(tmp_path / "out"), str(path), str(bad), str(copy)]
    main_fd, terminal = pty.openpty()  # stderr on a (pseudo-)terminal, as for a user
    try:
        result = subprocess.run([sys.executable, "-m", "waders.core", *args], stdout=subprocess.DEVNULL,
                                stderr=terminal, timeout=300)  # fmt: skip
    finally:
        os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    shown = b"".join(chunks).decode(errors="replace")
    assert result.returncode == 2
    assert "analysing" in shown and "3/3" in shown and "file" in shown
    # the error is a line of its own (the bar is cleared before it and drawn again after it)
    (line,) = [line for line in shown.replace("\r\n", "\n").split("\n") if "corrupt or truncated" in line]
    assert line.split("\r")[-1].startswith("error: ") and "broken.fits" in line
    after = shown[shown.index("corrupt or truncated") :]
    assert "analysing" in after and "3/3" in after
    # in a pipe: the error, and no bar
    piped = waders(*args)
    assert "corrupt or truncated" in piped.stderr and "3/3" not in piped.stderr
