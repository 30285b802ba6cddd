"""The fit-quality kernel and its use by every fit: wrong model, parameter at a limit, too few entries."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.stats import chi2 as chi2_distribution

from waders.ana.compress import CompressSkipperProcess
from waders.ana.fitting.gaussian import fit_gaussians
from waders.ana.fitting.pcd import PCDSettings, fit_pcd, fit_pcd_batch, pcd_edges, slice_histograms
from waders.ana.fitting.quality import CHI2_NDF_FLOOR, P_VALUE_MIN, assess, assess_many, chi2_acceptable
from waders.ana.fitting.seeds import seed_pcd
from waders.ana.gain import fit_peaks
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.ana.studies.gaussfit import fit_gaussian_histogram
from waders.io.synthetic import make_raw_image

GAIN, SIGMA = 10.0, 2.0


def pcd_values(n=200_000, lam=0.2, gain=GAIN, sigma=SIGMA, seed=0):
    rng = np.random.default_rng(seed)
    return gain * rng.poisson(lam, n) + rng.normal(0.0, sigma, n)


SETTINGS = PCDSettings(n_peaks=4, calibration=GAIN, x_min=-10, x_max=40, binning_size=0.25, gain_limits=(5, 20))


# --- the kernel ---------------------------------------------------------------------------------------------------
def test_goodness_of_fit_rule():
    # the p-value threshold for ndf = 20 and 300, from the chi-square distribution itself
    for ndf in (1, 20, 300):
        limit = chi2_distribution.isf(P_VALUE_MIN, ndf)
        threshold = max(limit, CHI2_NDF_FLOOR * ndf)
        assert chi2_acceptable(0.999 * threshold, ndf)
        assert not chi2_acceptable(1.001 * threshold, ndf)
    assert chi2_acceptable(1.6 * 300, 300)  # real images: model right to a few % of the Poisson errors
    assert not chi2_acceptable(1000.0 * 50, 50)  # a wrong model
    assert chi2_acceptable(np.nan, 10) and chi2_acceptable(5.0, 0)  # not judged: other checks decide
    np.testing.assert_array_equal(chi2_acceptable(np.array([10.0, 1e4]), np.array([10, 10])), [True, False])


def test_verdicts_and_reasons():
    good = assess(chi2=52.0, ndf=50, n_entries=1000, min_entries=10)
    assert good.valid and good.status == "ok" and good.reasons == () and 0.3 < good.p_value < 0.5
    wrong = assess(chi2=50_000.0, ndf=50, n_entries=1000, min_entries=10)
    assert not wrong.valid and wrong.reasons[0].startswith("bad goodness of fit (chi2/ndf 1e+03 for ndf 50")
    limit = assess(chi2=50.0, ndf=50, n_entries=1000, min_entries=10, at_limit={"gain": True, "mu0": False})
    assert not limit.valid and limit.status == "gain at a limit"
    few = assess(chi2=1.0, ndf=1, n_entries=3, min_entries=10, entries="pixels")
    assert not few.valid and few.status == "too few pixels (3 < 10)"
    several = assess(chi2=1.0, ndf=1, n_entries=100, min_entries=10, converged=False, other={"no peak": True})
    assert several.reasons == ("fit did not converge", "no peak")
    valid, status, p_value = assess_many(
        chi2=np.array([10.0, 1e5, 10.0]), ndf=10, n_entries=np.array([100, 100, 2]), min_entries=5
    )
    assert list(valid) == [True, False, False] and status[0] == "ok" and status[2].startswith("too few")
    assert p_value.shape == (3,)


# --- every fit uses it --------------------------------------------------------------------------------------------
def test_pcd_fit_with_a_wrong_model_is_invalid():
    """Gain fixed to 7 ADU/e- on data with 10 ADU/e-: chi2/ndf in the hundreds, never valid."""
    values = pcd_values(lam=0.3, seed=1)
    fit = fit_pcd(values, PCDSettings(**{**SETTINGS.__dict__, "calibration": 7.0, "fit_gain": False}))
    assert fit.chi2_ndf > 100
    assert not fit.valid and "bad goodness of fit" in fit.status
    right = fit_pcd(values, SETTINGS)
    assert right.valid and right.status == "ok" and right.chi2_ndf < 2


def test_pcd_fit_with_a_parameter_at_a_limit_is_invalid():
    values = pcd_values(lam=0.3, seed=2)
    fit = fit_pcd(values, PCDSettings(**{**SETTINGS.__dict__, "gain_limits": (5.0, 9.0)}))
    assert fit.gain == pytest.approx(9.0, abs=1e-3)
    assert not fit.valid and "gain at a limit" in fit.status


def test_pcd_fit_with_too_few_entries_is_invalid():
    fit = fit_pcd(pcd_values(n=6, seed=3), SETTINGS)
    assert not fit.valid and fit.status.startswith("too few pixels")


def test_batched_slice_fits_flag_a_wrong_model():
    """Slices of 10 and 12 ADU/e- fitted with the gain fixed to 10: the 12 ADU/e- slices are invalid."""
    good = pcd_values(n=20 * 2000, lam=0.5, seed=4).reshape(20, 2000)
    bad = pcd_values(n=20 * 2000, lam=0.5, gain=12.0, seed=5).reshape(20, 2000)
    values = np.concatenate([good, bad])
    settings = PCDSettings(**{**SETTINGS.__dict__, "fit_gain": False, "binning_size": 0.5})
    edges = pcd_edges(-10, 40, 0.5, 2000)
    counts = slice_histograms(values, np.repeat(np.arange(40), 2000), 40, edges)
    fits = fit_pcd_batch(edges, counts, settings)
    assert fits.valid[:20].sum() >= 19  # a correct model fails the 1e-6 p-value in about 1e-6 of the fits
    assert not fits.valid[20:].any()
    assert all("bad goodness of fit" in status for status in fits.status[20:])


def test_gaussian_fits_of_the_pedestal_are_judged():
    rng = np.random.default_rng(6)
    gaussian = rng.normal(0.0, 1.0, (50, 2000))
    two_peaks = np.where(rng.random((50, 2000)) < 0.5, -1.2, 1.2) + rng.normal(0.0, 0.5, (50, 2000))
    fits = fit_gaussians(np.concatenate([gaussian, two_peaks]))
    valid, status, _ = assess_many(chi2=fits.chi2, ndf=fits.ndf, n_entries=fits.n_used, min_entries=10)
    assert valid[:50].sum() >= 49 and not valid[50:].any()
    assert status[60].startswith("bad goodness of fit")


def test_pedestal_process_warns_about_invalid_row_fits(run_chain, caplog):
    """Rows whose overscan holds two levels (a jump) cannot be a Gaussian: flagged, recorded and warned."""
    image, _ = make_raw_image(nrows=40, ncols=300, overscan=200, nskips=4, noise=2.0, seed=7)
    raw = image["L"].raw
    raw[:10, 100:200, :] += 8.0  # half of the overscan of rows 0-9 is 4 sigma higher
    with caplog.at_level(logging.WARNING):
        run_chain(image, CompressSkipperProcess(), PedestalSubtractionProcess(method="gauss_fit", n_sigma_win_fit=5))
    result = image["L"].results["PedestalSubtractionProcess"]
    assert not result["fit_valid_row"][:10].any() and result["fit_valid_row"][10:].sum() >= 29
    lines = [r.getMessage() for r in caplog.records if "Gaussian fits invalid" in r.getMessage()]
    assert len(lines) == 1 and "amplifier L: PedestalSubtractionProcess:" in lines[0]


def test_study_gaussian_fit_of_a_wrong_model_is_invalid():
    rng = np.random.default_rng(8)
    values = np.concatenate([rng.normal(-2, 0.5, 20_000), rng.normal(2, 0.5, 20_000)])
    counts, edges = np.histogram(values, 80, (-4, 4))
    fit = fit_gaussian_histogram(counts, edges, 0.0, 2.0)
    assert not fit["valid"] and "bad goodness of fit" in fit["status"]
    counts, edges = np.histogram(rng.normal(0, 1, 40_000), 80, (-4, 4))
    assert fit_gaussian_histogram(counts, edges, 0.0, 1.0)["valid"]


def test_peak_fit_of_the_gain_is_judged():
    fits = fit_peaks(pcd_values(lam=0.5, seed=9), 3)
    assert fits.valid and fits.status == "ok" and fits.peak_fit_chi2_ndf < 2
    assert fits.gain == pytest.approx(GAIN, rel=0.01)
    assert not fit_peaks(pcd_values(n=20, seed=10), 3).valid


@pytest.mark.parametrize(("gain", "sigma", "lam"), [(1.35, 0.21, 0.75), (10.0, 2.0, 0.2), (200.0, 30.0, 0.05)])
def test_seeds_from_the_data_for_any_gain(gain, sigma, lam):
    """The 0 e- and 1 e- peaks give the gain within 3 %, the noise within 5 %, lambda within 15 % (seeds only)."""
    seeds = seed_pcd(pcd_values(lam=lam, gain=gain, sigma=sigma, seed=11))
    assert seeds.resolved and seeds.reason == ""
    assert seeds.gain == pytest.approx(gain, rel=0.03)
    assert seeds.sigma == pytest.approx(sigma, rel=0.05)
    assert seeds.lam == pytest.approx(lam, rel=0.15)
    assert abs(seeds.mu0) < 0.2 * sigma


def test_seeds_say_when_there_is_no_single_electron_resolution():
    seeds = seed_pcd(pcd_values(lam=0.3, sigma=6.0, seed=12))  # 0.6 e- of noise
    assert not seeds.resolved and seeds.reason.startswith("no single-electron peak found")
    assert seeds.sigma == pytest.approx(6.0, rel=0.25)  # the unresolved 1 e- peak widens the 0 e- peak
    assert not seed_pcd(np.arange(10.0)).resolved
