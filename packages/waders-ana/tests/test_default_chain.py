"""The default chain of ``waders ana`` (no configuration): right answers for any gain, honest when it cannot.

Generated images with known gain, noise and dark current (gains 1.35, 10 and 200 ADU/e-),
and the real files shipped in waders-data: the DAMIC-M module-test image (single-electron
resolution: the default must reach what the user's tuned pysimdamicm configuration reaches)
and the two SENSEI LTA images (no single-electron resolution: the default must say so).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from waders.ana.cli import default_config
from waders.ana.runner import AnalysisOptions, analyse_file
from waders.core.config import load_config
from waders.data import DAMICM_IMAGE, LTA_CAL_IMAGE, LTA_IMAGE, PYSIMDAMICM_CONFIGS, path
from waders.io import write_raw_image
from waders.io.synthetic import make_raw_image


def analyse(file, tmp_path, config=None, overrides=()):
    """Run ``waders ana`` (as the command does) and return the summary."""
    source = default_config() if config is None else config
    cfg = load_config(source, kind="analysis", overrides=list(overrides))
    outputs = analyse_file(file, cfg, AnalysisOptions(output_dir=tmp_path))
    return json.loads(Path(outputs["summary"]).read_text())


# --- generated images: any gain ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("gain", "sigma_e", "dark", "seed"),
    [(1.35, 0.16, 0.7, 21), (10.0, 0.2, 0.2, 22), (200.0, 0.15, 0.05, 23)],
)
def test_default_chain_recovers_any_gain(tmp_path, gain, sigma_e, dark, seed):
    """Gain, noise and dark current recovered with no configuration, whatever the gain.

    300 x 400 pixels (about 100 000 active): the statistical errors of the gain (< 0.1 %),
    of sigma (< 0.5 %) and of lambda (< 1 %) are far below the tolerances, which allow for the
    pedestal estimate of each row (60 overscan pixels) that broadens the 0 e- peak slightly.
    """
    nskips = 4
    image, _ = make_raw_image(
        nrows=300, ncols=400, prescan=8, overscan=60, nskips=nskips, gain=gain,
        noise=sigma_e * gain * np.sqrt(nskips), dark_current=dark, pedestal=5000.0, seed=seed,
    )  # fmt: skip
    file = write_raw_image(tmp_path / f"gain{gain:g}.fits", image)
    amp = analyse(file, tmp_path)["amplifiers"]["L"]
    assert amp["fit_valid"] is True, amp["fit_status"]
    assert amp["gain_source"] == "dark-current fit"
    assert amp["fit_seeded_from_data"] is True
    assert amp["gain_adu_per_e"] == pytest.approx(gain, rel=0.01)
    assert abs(amp["gain_adu_per_e"] - gain) < 4 * amp["gain_err"] + 1e-4 * gain  # + the 4-decimal rounding
    assert amp["sigma_e"] == pytest.approx(sigma_e, rel=0.04)
    assert amp["lambda_e_per_pixel"] == pytest.approx(dark, rel=0.03)
    assert amp["noise_adu"] == pytest.approx(sigma_e * gain, rel=0.04)
    assert amp["pedestal_region"] == "overscan"
    assert amp["fit_chi2_ndf"] < 2


def test_default_chain_without_single_electron_resolution_says_so(tmp_path):
    """Noise of 0.6 e-: the 1 e- peak cannot be seen; the fit is not attempted and the gain is the stated fallback."""
    image, _ = make_raw_image(
        nrows=200, ncols=300, overscan=40, nskips=4, gain=10.0, noise=12.0, dark_current=0.3, seed=24
    )
    file = write_raw_image(tmp_path / "blurred.fits", image)
    summary = analyse(file, tmp_path)
    amp = summary["amplifiers"]["L"]
    assert amp["fit_valid"] is False
    assert amp["fit_reasons"] == [amp["fit_status"]]
    assert amp["fit_status"].startswith("no single-electron resolution")
    assert amp["gain_source"] == f"configuration (fallback: dark-current fit invalid: {amp['fit_status']})"
    assert amp["gain_adu_per_e"] == 10.0
    assert "L: CalibrationProcess: " + amp["gain_source"] in summary["warnings"]


# --- the real DAMIC-M image -------------------------------------------------------------------------------------
#: Per amplifier: gain (ADU/e-), noise (ADU), lambda (e-/pixel) that the user's tuned pysimdamicm configuration
#: ``img_5.json`` (shipped in waders-data: Gaussian pedestal with 1.5 MAD masking, rows 0-2 masked, 0.01 ADU bins,
#: two peaks from -1 to 6 ADU, gain within 0.8-1.8) gives with ``waders ana --json img_5.json`` (measured
#: 2026-12-04; test_tuned_configuration_still_gives_the_stated_values checks that they hold).  CCD_B's 1.4000 is
#: not a limit or a seed: fits started at 1.25, 1.30, 1.40 and 1.50 ADU/e- all end at 1.399-1.403, and a three-peak
#: fit gives 1.4014.
TUNED_DAMICM = {
    "CCD_A": (1.3524, 0.2118, 0.7266),
    "CCD_B": (1.4000, 0.2222, 0.7594),
    "CCD_D": (1.3270, 0.2036, 0.7522),
    "CCD_C": (1.3457, 0.2123, 0.7184),
}


@pytest.fixture(scope="module")
def damicm_default(tmp_path_factory):
    return analyse(path(DAMICM_IMAGE), tmp_path_factory.mktemp("damicm"))


def test_real_damicm_image_default_reaches_the_tuned_values(damicm_default):
    amps = damicm_default["amplifiers"]
    assert list(amps) == list(TUNED_DAMICM)
    assert damicm_default["warnings"] == []
    for name, (gain, noise, lam) in TUNED_DAMICM.items():
        amp = amps[name]
        assert amp["fit_valid"] is True and amp["gain_source"] == "dark-current fit", (name, amp["fit_status"])
        assert amp["gain_adu_per_e"] == pytest.approx(gain, rel=0.02), name  # the requirement: within 2 %
        assert amp["gain_adu_per_e"] == pytest.approx(gain, rel=0.002), name  # what it reaches
        assert amp["noise_adu"] == pytest.approx(noise, rel=0.02), name
        # the tuned fit leaves out rows 0-2 (a little more charge there): lambda within 2 %
        assert amp["lambda_e_per_pixel"] == pytest.approx(lam, rel=0.02), name
        assert amp["fit_chi2_ndf"] < 2
        assert amp["pedestal_region"] == "active"  # no overscan in the data
        assert amp["pedestal_fits_invalid"] <= 3  # of 320 rows; chi2 of a correct model fluctuates


def test_tuned_configuration_still_gives_the_stated_values(tmp_path):
    summary = analyse(path(DAMICM_IMAGE), tmp_path, path(PYSIMDAMICM_CONFIGS) / "img_5.json")
    for name, (gain, noise, lam) in TUNED_DAMICM.items():
        amp = summary["amplifiers"][name]
        assert amp["fit_valid"] is True
        assert amp["gain_adu_per_e"] == pytest.approx(gain, abs=2e-4)
        assert amp["noise_adu"] == pytest.approx(noise, abs=2e-4)
        assert amp["lambda_e_per_pixel"] == pytest.approx(lam, abs=2e-4)


# --- the real SENSEI LTA images ---------------------------------------------------------------------------------
#: A configuration tuned by hand for the LTA images (40-row binned pixels, noise about 500 ADU): the pedestal per
#: column (median over the 40 rows of the active region, which removes the baseline drift along each row of
#: image_lta_2_ave.fits) or per row from the overscan (cal_1_6_ave.fits, whose baseline is flat), and a
#: dark-current fit allowing gains of 100-5000 ADU/e-.  Whatever the settings, no fit is valid: neither image
#: shows a single-electron peak (the 0 e- peak is a Gaussian of 490-520 ADU with a featureless tail).  The tuned
#: noise (ADU) per amplifier EXT0..EXT3 comes from these runs (2026-12-04).
LTA_TUNED_FIT = {
    "FitDarkCurrentProcess": {
        "calibration": 1000.0, "x_min": -2500, "x_max": 6000, "binning_size": 50, "n_peaks": 4, "mu_min": -1000,
        "mu_max": 1000, "sigma_min": 50, "sigma_max": 3000, "gain_min": 100, "gain_max": 5000, "dc_max": 3000,
    },
}  # fmt: skip
LTA_TUNED = {
    LTA_CAL_IMAGE: (
        {"method": "gauss_fit", "in_overscan": True, "axis": "row", "n_sigma_to_mask": 5},
        (505.5, 525.1, 511.6, 518.5),
    ),
    LTA_IMAGE: (
        {"method": "median", "in_overscan": False, "axis": "col", "n_sigma_to_mask": 5},
        (511.5, 519.2, 514.1, 516.7),
    ),
}


def _lta_config(pedestal: dict) -> dict:
    config = default_config()
    config["process"]["sequence"] = ["CompressSkipperProcess", "PedestalSubtractionProcess",
                                     "FitDarkCurrentProcess", "CalibrationProcess"]  # fmt: skip
    config["process"]["PedestalSubtractionProcess"] = pedestal
    config["process"].update(LTA_TUNED_FIT)
    return config


@pytest.mark.parametrize("name", [LTA_CAL_IMAGE, LTA_IMAGE])
def test_real_lta_images_tuned_by_hand_have_no_valid_fit(tmp_path, name):
    pedestal, noise = LTA_TUNED[name]
    amps = analyse(path(name), tmp_path, _lta_config(pedestal))["amplifiers"]
    assert list(amps) == ["EXT0", "EXT1", "EXT2", "EXT3"]
    for amp, tuned_noise in zip(amps.values(), noise, strict=True):
        assert amp["noise_adu"] == pytest.approx(tuned_noise, abs=0.5)
        assert amp["fit_valid"] is False
        assert amp["gain_source"].startswith("configuration (fallback: dark-current fit invalid: ")


@pytest.mark.parametrize("name", [LTA_CAL_IMAGE, LTA_IMAGE])
def test_real_lta_images_default_says_there_is_no_single_electron_resolution(tmp_path, name):
    summary = analyse(path(name), tmp_path)
    for amp_name, amp in summary["amplifiers"].items():
        assert amp["fit_valid"] is False
        assert amp["fit_status"].startswith("no single-electron resolution: no single-electron peak found"), amp_name
        assert amp["gain_source"].startswith("configuration (fallback: dark-current fit invalid: no single-electron")
        assert f"{amp_name}: CalibrationProcess: {amp['gain_source']}" in summary["warnings"]
        assert amp["pedestal_region"] == "overscan"
    noise = [amp["noise_adu"] for amp in summary["amplifiers"].values()]
    if name == LTA_CAL_IMAGE:  # flat baseline: the overscan median agrees with the tuned Gaussian fits within 2 %
        assert noise == pytest.approx(LTA_TUNED[name][1], rel=0.02)
        assert not any("drifts" in warning for warning in summary["warnings"])
    else:  # the baseline drifts along each row: the overscan of a row is wider than the white noise
        assert all(n > 2 * t for n, t in zip(noise, LTA_TUNED[name][1], strict=True))
        # ... and the summary says why: the pixel-to-pixel noise (about 485 ADU) is near the tuned fits' (511-519)
        for amp_name in summary["amplifiers"]:
            drift = [w for w in summary["warnings"] if w.startswith(f"{amp_name}: PedestalSubtractionProcess: the ")]
            assert len(drift) == 1 and drift[0].endswith("the baseline drifts along the rows"), summary["warnings"]


def test_slice_fits_seeded_from_the_data(tmp_path):
    """FitDarkCurrentPerRow/PerCol with calibration 'auto' on a 1.35 ADU/e- image: every slice valid, right values."""
    image, _ = make_raw_image(
        nrows=200, ncols=300, overscan=40, nskips=4, gain=1.35, noise=0.16 * 1.35 * 2, dark_current=0.5, seed=25
    )
    file = write_raw_image(tmp_path / "slices.fits", image)
    config = default_config()
    config["process"]["sequence"] += ["FitDarkCurrentPerRow", "FitDarkCurrentPerCol"]
    config["process"]["FitDarkCurrentPerRow"] = {"calibration": "auto", "row_step": 20}
    config["process"]["FitDarkCurrentPerCol"] = {"calibration": "auto", "col_step": 50}
    studies = analyse(file, tmp_path, config)["studies"]
    for name, n_slices in (("FitDarkCurrentPerRow", 10), ("FitDarkCurrentPerCol", 6)):
        result = studies[name]["amplifiers"]["L"]
        assert result["seeded_from_data"] is True
        assert result["n_valid"] == n_slices, result["status"]
        lam = np.array(result["lambda_e_per_pixel"])
        # 5000-6000 pixels per slice: lambda to about 2 % each; the mean of the slices within 2 %
        assert np.mean(lam) == pytest.approx(0.5, rel=0.02)
        assert abs(result["lambda_slope"]) < 4 * result["lambda_slope_err"]
    gains = np.array(studies["FitDarkCurrentPerCol"]["amplifiers"]["L"]["gain_adu_per_e"])
    assert np.mean(gains) == pytest.approx(1.35, rel=0.005)


def test_small_image_falls_back_to_the_gain_guess_and_is_still_judged(tmp_path):
    """5400 active pixels with lambda 0.05: the 1 e- peak (about 270 pixels) does not stand out at 4 sigma, so the
    configured guess (10 ADU/e-, 5 noise sigmas) seeds the fit, which measures the gain and passes the quality rule."""
    image, _ = make_raw_image(
        nrows=60, ncols=110, prescan=4, overscan=16, nskips=16, gain=10.0, noise=8.0, dark_current=0.05, seed=10
    )
    file = write_raw_image(tmp_path / "small.fits", image)
    amp = analyse(file, tmp_path)["amplifiers"]["L"]
    assert amp["fit_seed_source"] == "gain guess"
    assert amp["fit_valid"] is True and amp["gain_source"] == "dark-current fit"
    assert abs(amp["gain_adu_per_e"] - 10.0) < 4 * amp["gain_err"]
    assert abs(amp["lambda_e_per_pixel"] - 0.05) < 4 * amp["lambda_err"]
    blurred = analyse(file, tmp_path, overrides=["FitDarkCurrentProcess.gain_guess=5"])["amplifiers"]["L"]
    assert blurred["fit_valid"] is False  # 5 ADU is under 3 noise sigmas (2.1 ADU): no fit
    assert blurred["fit_status"].startswith("no single-electron resolution")
