from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.ana.gain import FitCalibrationConstant, fit_peaks, locate_peaks
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.ana.sinks import save_figures
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.io.synthetic import make_raw_image

GAIN, SIGMA = 10.0, 2.0
PRODUCT = "mean_compressed_pedestal_subtracted"


def pcd_values(n=240_000, lam=0.2, mu0=0.4, gain=GAIN, sigma=SIGMA, seed=0):
    rng = np.random.default_rng(seed)
    return mu0 + gain * rng.poisson(lam, n) + rng.normal(0.0, sigma, n)


def image_of(arrays):
    return SkipperImage.from_arrays({k: np.asarray(v) for k, v in arrays.items()}, product=PRODUCT)


def assert_recovers(value, error, truth, relative):
    assert np.isfinite(error) and error > 0
    assert abs(value - truth) < 4 * error, (value, error, truth)
    assert abs(value - truth) < max(relative * abs(truth), 4 * error)


@pytest.mark.parametrize(
    ("lam", "calibration", "source"),
    [(0.2, None, "peak finding"), (0.1, 10.7, "calibration"), (1.5, 10.0, "calibration")],
)
def test_peaks_and_gain_recover_the_truth(lam, calibration, source):
    mu0 = 0.4
    fits = fit_peaks(pcd_values(lam=lam, mu0=mu0, seed=int(10 * lam)), 3, calibration)
    assert fits.valid and fits.status == "ok" and fits.gain_source == source
    assert_recovers(fits.gain, fits.gain_err, GAIN, 0.01)
    assert_recovers(fits.intercept, fits.intercept_err, mu0, 1.0)
    np.testing.assert_array_equal(fits.electrons, [0, 1, 2])
    position_pulls = (fits.positions - (mu0 + GAIN * fits.electrons)) / fits.position_errs
    assert np.abs(position_pulls).max() < 4
    width_pulls = (fits.widths - SIGMA) / fits.width_errs
    assert np.abs(width_pulls).max() < 4
    assert np.abs(fits.pulls).max() < 4  # linearity: residuals from the line within the errors
    # expected pixels in each peak: 240000 Poisson(k; lam)
    expected = 240_000 * np.exp(-lam) * lam**fits.electrons / np.array([1, 1, 2])
    assert np.all(np.abs(fits.counts - expected) < 5 * np.sqrt(expected))


def test_first_peak_is_the_nearest_not_the_most_prominent():
    # a hot population at 3 gains makes the 3-electron region more prominent than the 1-electron peak
    rng = np.random.default_rng(3)
    values = np.concatenate([pcd_values(lam=0.02, seed=4), 30 + rng.normal(0, SIGMA, 20_000)])
    positions, sigma, gain, source, status = locate_peaks(values, 3, None)
    assert status == "ok" and source == "peak finding"
    assert gain == pytest.approx(GAIN, rel=0.05) and sigma == pytest.approx(SIGMA, rel=0.1)
    assert positions[0] == pytest.approx(0.4, abs=0.3)


def test_no_peaks_is_reported_not_raised():
    noise = np.random.default_rng(5).normal(0, SIGMA, 50_000)
    found = fit_peaks(noise, 3)
    assert not found.valid and found.status == "no single-electron peak found"
    guessed = fit_peaks(noise, 3, calibration=10.0)
    assert not guessed.valid and "populated" in guessed.status and np.isnan(guessed.gain)
    few = fit_peaks(np.array([0.0, 1.0, np.nan]), 3)
    assert not few.valid and few.status.startswith("too few pixels")
    unresolved = fit_peaks(pcd_values(n=50_000, sigma=8.0, seed=6), 3, calibration=10.0)
    assert not unresolved.valid  # 0.8 e- of noise: peaks not separated


def test_process_records_per_amplifier(run_chain, tmp_path):
    image = image_of({"L": pcd_values(seed=7).reshape(400, 600), "U": pcd_values(gain=10.7, seed=8).reshape(400, 600)})
    process = FitCalibrationConstant(calibration={"L": 10.0, "U": 10.7}, n_peaks=3, save_plots=True)
    context = RunContext(seed=1)
    Pipeline([process]).run(image, context)
    save_figures(context.figures, tmp_path, "image")
    for name, gain in (("L", GAIN), ("U", 10.7)):
        result = image[name].results["FitCalibrationConstant"]
        assert result["valid"] and result["status"] == "ok" and result["gain_source"] == "calibration"
        assert_recovers(result["gain_adu_per_e"], result["gain_err"], gain, 0.01)
        for key in ("peak_positions_adu", "peak_widths_adu", "peak_position_errs", "residuals_adu", "peak_counts"):
            assert result[key].shape == (3,)
        assert result["n_pixels"] == 240_000
        assert result["sigma_e"] == pytest.approx(SIGMA / gain, rel=0.03)
        assert (tmp_path / "plots" / f"image_FitCalibrationConstant_{name}.png").exists()
    with pytest.raises(DataError, match="BuildClusterMask"):
        run_chain(image, FitCalibrationConstant(mask_clusters=True))
    with pytest.raises(ConfigError, match="no value for amplifier 'U'"):
        run_chain(image, FitCalibrationConstant(calibration={"L": 10.0}))


def test_end_to_end_from_raw_samples(run_chain):
    image, _ = make_raw_image(
        amplifiers=("L", "U"), nrows=300, ncols=704, prescan=4, overscan=100, nskips=4, noise=4.0, gain=GAIN,
        dark_current=0.2, seed=9,
    )  # fmt: skip
    run_chain(
        image,
        CompressSkipperProcess(func_to_compress=["mean"]),
        PedestalSubtractionProcess(method="mean"),
        FitCalibrationConstant(),
    )
    for name in ("L", "U"):
        result = image[name].results["FitCalibrationConstant"]
        assert result["valid"], result["status"]
        assert result["gain_source"] == "peak finding" and result["n_pixels"] == 300 * 600
        assert_recovers(result["gain_adu_per_e"], result["gain_err"], GAIN, 0.01)


@pytest.mark.parametrize("config", ["panaSKImg_configuration.json", "img_5.json"])
def test_pysimdamicm_sections_load(configs, config):
    sections = json.loads((configs / config).read_text())["process"]
    process = FitCalibrationConstant.from_mapping(sections["FitCalibrationConstant"])
    assert process.n_peaks == 3 and process.n_sigma_win_fit == 3
    assert process.value_for("calibration", ("U",)) == (10.7 if config.startswith("pana") else 10.0)
