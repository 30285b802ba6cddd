"""Monitor elements on analysed synthetic images with known noise, gain and dark current."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from waders.ana.cli import default_config
from waders.core.config import load_config
from waders.core.errors import ConfigError, DataError, UnknownNameError
from waders.core.pipeline import Pipeline, RunContext
from waders.core.plugins import monitor_registry
from waders.dqm import quality
from waders.dqm.configs import analysis_for
from waders.dqm.monitor import MEResult, MonitorElement, NotApplicable, UnavailableMonitor, active_monitors, jsonable
from waders.dqm.monitors import LEGACY_NAMES, builtin_monitors, register_builtin
from waders.dqm.monitors.charge import _boxes
from waders.io.synthetic import make_raw_image

_spec = importlib.util.spec_from_file_location("_dqm_run_fixtures", Path(__file__).with_name("_run_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

ISSUE_NAMES = [
    *("MEMeanDCperRow", "MEDCslope", "MEDCintercept", "MESensorMedianperRow", "MESensorMADperRow"),
    *("MEImageMedianperCol", "MEImageMADperCol", "MEOverscanMedianperRow", "MEOverscanMADperRow", "MEPedestalMu"),
    *("MEPedestalSigma", "MEMaskedPixels", "MESinglePED", "MEOverscanPCDMu", "MEOverscanPCDSigma", "MEFitDC"),
    *("MEFitDCMu0PerRow", "MEFitDCSigmaPerRow", "MEFitDCLambdaPerRow", "MEFitDCMu0", "MEFitDCSigma", "MEFitDCLambda"),
    "METempShift",
]
CURRENT_NAMES = [
    *("MEQmeanDiffSingleSkips", "MEReadoutnoiseNDCM", "MEMeanPixelChargePerRow", "MESTDPixelChargePerRow"),
    *("MESlopeFromMeanPCPerRow", "MEInterceptFromMeanPCPerRow", "MEMedianPixelChargePerRow"),
    *("MEMADPixelChargePerRow", "MEMedianPixelChargePerCol", "MEMADPixelChargePerCol"),
    *("MEOVSMedianPixelChargePerRow", "MEOVSMADPixelChargePerRow", "MEOVSPedestalMu", "MEOVSPedestalSigma"),
    *("MEOVSPedestalMuPerRow", "MEOVSPedestalSigmaPerRow", "MEPCD", "MEOVSPCD", "MEFitDC", "MEFitDCMu0"),
    *("MEFitDCSigma", "MEFitDCLambda", "MEFitDCCalibration", "MEFitDCPerCol", "MEFitSigmaPerCol"),
    *("MEFitCalibrationPerCol", "MEFitMu0PerCol", "MEFitDCPerRow", "MEFitSigmaPerRow"),
    *("MEFitCalibrationPerRow", "MEFitMu0PerRow", "MECCDEqualizedImage", "MECCDMeanImage", "MECCDStdImage"),
    *("MECCDCalImage", "MENpixQ1ePerCol", "MESTDSkipsPerCol", "MESkewnessCoeff", "MEDefectsMask"),
]

GAIN, NOISE, NSKIPS, DC = 10.0, 4.0, 16, 0.05
SIGMA_ADU = NOISE / math.sqrt(NSKIPS)  # noise of the averaged image


@pytest.fixture(scope="module")
def monitors():
    classes = builtin_monitors()
    return {name: cls() for name, cls in classes.items() if not issubclass(cls, UnavailableMonitor)}


@pytest.fixture(scope="module")
def analysed(monitors):
    """A one-amplifier raw image analysed with the default analysis plus what the MEs need."""
    hot = [(30, 40 + k, 3.0) for k in range(3)]  # a few faint hot pixels (30 ADU)
    image, truth = make_raw_image(
        nrows=80, ncols=130, nskips=NSKIPS, prescan=4, overscan=20, gain=GAIN, noise=NOISE, dark_current=DC,
        pedestal=1000.0, pedestal_slope=0.3, deposits=hot, seed=3,
    )  # fmt: skip
    image.header["TEMPA"] = 140.5
    image.meta.update(stem="synthetic", run=1, image=1, ccd=1)
    config = analysis_for(load_config(default_config(), kind="analysis"), list(monitors.values()))
    Pipeline(config.steps).run(image, RunContext(seed=0, detector=config.detector))
    return image, truth


def evaluate(monitors, analysed, name, **params):
    image, _ = analysed
    me = monitors[name].replace(**params) if params else monitors[name]
    return me.evaluate(image, {}, image["L"])


# --- catalogue and configuration ----------------------------------------------------------------------
def test_every_named_monitor_element_exists():
    classes = builtin_monitors()
    missing = sorted(set(ISSUE_NAMES + CURRENT_NAMES) - set(classes))
    assert not missing
    for legacy, current in LEGACY_NAMES.items():
        assert issubclass(classes[legacy], classes[current])
        assert classes[legacy].name == legacy
    for name, cls in classes.items():
        assert cls.name == name
        assert cls.summary()  # a one-line description for --list-monitors
        cls()  # defaults are valid


def test_pysimdamicm_dqm_file_loads_and_inactive_unknowns_are_accepted():
    register_builtin()
    config = load_config(fx.DQM_JSON, kind="dqm")
    active = active_monitors(config.steps)
    assert type(active[0]).name == "MEQmeanDiffSingleSkips"  # sequence id -1 first
    assert "MEFitDC" in config.names and "MEBaselineShift" not in config.names
    assert isinstance(config.configured["MEBaselineShift"], UnavailableMonitor)
    fit = config.configured["MEFitDC"]
    assert fit.value_for("n_peaks", "U") == 5 and fit.mask_clusters is True
    assert config.configured["MESlopeFromMeanPCPerRow"].plot_with_yerrors is False


def test_activating_an_unavailable_monitor_element_is_a_clear_error():
    register_builtin()
    config = load_config({"monitoring_elements": {"MENoisyImages": {"active": 1, "min_sigma": 5}}}, kind="dqm")
    with pytest.raises(ConfigError, match="MENoisyImages is not available in waders"):
        active_monitors(config.steps)


def test_bad_parameters_are_rejected_with_the_name():
    register_builtin()
    with pytest.raises(UnknownNameError, match="n_madd"):
        load_config({"monitoring_elements": {"MEMeanPixelChargePerRow": {"n_madd": 3, "active": 1}}}, kind="dqm")
    with pytest.raises(ConfigError, match="qt_valid_range"):
        load_config({"monitoring_elements": {"MEFitDCSigma": {"qt_valid_range": [1], "active": 1}}}, kind="dqm")
    me = builtin_monitors()["MEFitDCSigma"](qt_valid_range={"L": [0, 0.3], "1,U": [None, 0.5]})
    assert me.valid_range("L") == (0, 0.3)
    assert me.valid_range("U", 1) == (None, 0.5)
    assert me.valid_range("U", 2) is None
    assert "saveas" in MonitorElement.ignored_keys
    assert monitor_registry() is not None


def test_analysis_gets_the_processes_the_monitor_elements_read():
    register_builtin()
    base = load_config(default_config(), kind="analysis")
    me_config = load_config(fx.DQM_JSON, kind="dqm")
    config = analysis_for(base, active_monitors(me_config.steps))
    names = config.names
    assert names[: len(base.names)] == base.names  # the analysis chain is kept
    for added in ("RNvsNskipsPlot", "FitDarkCurrentPerRow", "FitDarkCurrentPerCol"):
        assert added in names
    fit = config.configured["FitDarkCurrentProcess"]
    assert fit.value_for("n_peaks", "U") == 5 and fit.binning_size == 0.5
    assert fit.mask_clusters is False  # the default analysis builds the cluster mask after the fit
    per_row = config.configured["FitDarkCurrentPerRow"]
    assert (per_row.row_start, per_row.row_step) == (2, 10)
    assert config.configured["RNvsNskipsPlot"].n_skips_per_block == 20
    assert config.to_dict()["process"]["sequence"] == names  # the summary's configuration is runnable again


# --- values on an analysed image ----------------------------------------------------------------------------
def test_noise_and_pedestal(monitors, analysed):
    _, truth = analysed
    sigma = evaluate(monitors, analysed, "MEOVSPedestalSigma")
    assert sigma.value == pytest.approx(SIGMA_ADU, rel=0.08)
    mu = evaluate(monitors, analysed, "MEOVSPedestalMu")
    assert mu.value == pytest.approx(truth.pedestal["L"].mean(), abs=0.3)
    per_row = evaluate(monitors, analysed, "MEOVSPedestalMuPerRow")
    assert np.array_equal(per_row.x, np.arange(1, 81))
    assert np.allclose(per_row.y, truth.pedestal["L"], atol=5 * SIGMA_ADU / math.sqrt(20))
    assert evaluate(monitors, analysed, "MEOVSPedestalSigmaPerRow").y.size == 80
    assert evaluate(monitors, analysed, "MESinglePED").value == pytest.approx(np.median(truth.pedestal["L"]), abs=1.0)
    assert evaluate(monitors, analysed, "MEOVSPCD").value == pytest.approx(SIGMA_ADU / GAIN, rel=0.1)
    assert evaluate(monitors, analysed, "MEOverscanPCDSigma").value == pytest.approx(SIGMA_ADU / GAIN, rel=0.1)
    assert evaluate(monitors, analysed, "MEOverscanPCDMu").value == pytest.approx(0.0, abs=0.02)
    assert (
        evaluate(monitors, analysed, "MEOVSPCDSigma").value == evaluate(monitors, analysed, "MEOverscanPCDSigma").value
    )
    readout = evaluate(monitors, analysed, "MEReadoutnoiseNDCM")
    assert readout.value == pytest.approx(NOISE, rel=0.1)
    assert readout.x[0] == 1 and readout.x[-1] == NSKIPS
    assert readout.y[-1] == pytest.approx(SIGMA_ADU, rel=0.15)


def test_dark_current_fit(monitors, analysed):
    lam = evaluate(monitors, analysed, "MEFitDCLambda")
    assert lam.value == pytest.approx(DC, abs=4 * lam.error)
    assert evaluate(monitors, analysed, "MEFitDCCalibration").value == pytest.approx(GAIN, rel=0.02)
    assert evaluate(monitors, analysed, "MEFitDCSigma").value == pytest.approx(SIGMA_ADU / GAIN, rel=0.1)
    assert evaluate(monitors, analysed, "MEFitDCMu0").value == pytest.approx(0.0, abs=0.02)
    pcd = evaluate(monitors, analysed, "MEFitDC")
    assert pcd.goodness < 3 and pcd.x.size == pcd.y.size == pcd.yfit.size
    assert np.isfinite(pcd.yfit).sum() > 10
    assert (
        evaluate(monitors, analysed, "MEFitDCLambdaPerRow").y.size
        == evaluate(monitors, analysed, "MEFitDCPerRow").y.size
    )
    per_row = evaluate(monitors, analysed, "MEFitDCPerRow")
    assert per_row.x[0] == pytest.approx(5.5)  # rows 1..10 of the first slice
    assert per_row.value == pytest.approx(DC, abs=5 * per_row.error)
    per_col = evaluate(monitors, analysed, "MEFitSigmaPerCol")
    assert np.nanmedian(per_col.y) == pytest.approx(SIGMA_ADU / GAIN, rel=0.2)


def test_charge_per_row_and_column(monitors, analysed):
    _, truth = analysed
    mean = evaluate(monitors, analysed, "MEMeanPixelChargePerRow")
    assert np.array_equal(mean.x, np.arange(1, 81)) and mean.yfit is not None
    assert mean.value == pytest.approx(0.0, abs=0.02)  # pixels above median + 5 MAD (the charged ones) are left out
    std = evaluate(monitors, analysed, "MESTDPixelChargePerRow")
    assert std.value == pytest.approx(SIGMA_ADU / GAIN, rel=0.1)
    slope = evaluate(monitors, analysed, "MESlopeFromMeanPCPerRow")
    assert slope.value == pytest.approx(0.0, abs=5 * slope.error)
    assert evaluate(monitors, analysed, "MEDCslope").value == slope.value
    intercept = evaluate(monitors, analysed, "MEInterceptFromMeanPCPerRow")
    assert intercept.value == pytest.approx(0.0, abs=5 * intercept.error)
    per_col = evaluate(monitors, analysed, "MEMedianPixelChargePerCol")
    assert per_col.x[0] == 5 and per_col.x.size == 130 - 4 - 20  # active columns, 1-based readout order
    assert evaluate(monitors, analysed, "MEMADPixelChargePerCol").value == pytest.approx(
        0.6745 * SIGMA_ADU / GAIN, rel=0.2
    )
    ovs = evaluate(monitors, analysed, "MEOVSMedianPixelChargePerRow")
    assert np.array_equal(ovs.x, np.arange(1, 81)) and abs(ovs.value) < 0.02
    assert evaluate(monitors, analysed, "MEOVSMADPixelChargePerRow").y.size == 80
    npix = evaluate(monitors, analysed, "MENpixQ1ePerCol")
    expected = int((truth.electrons["L"] >= 2).sum())
    assert npix.value == pytest.approx(expected, abs=3 * math.sqrt(expected) + 2)
    pcd = evaluate(monitors, analysed, "MEPCD")
    assert pcd.value == pytest.approx(truth.electrons["L"][:, 4:110].mean(), abs=0.01)
    assert np.sum(pcd.y) <= 80 * 106


def test_skips_and_images(monitors, analysed):
    drift = evaluate(monitors, analysed, "MEQmeanDiffSingleSkips", skip_reference=15, skip_step=3)
    assert np.array_equal(drift.x, [0, 3, 6, 9, 12, 15])
    assert np.all(np.abs(drift.y) <= 5 * np.maximum(drift.yerr, 1e-9))
    skew = evaluate(monitors, analysed, "MESkewnessCoeff")
    assert skew.value == pytest.approx(0.0, abs=5 * skew.error)
    assert evaluate(monitors, analysed, "MESTDSkipsPerCol").y.size == 106
    for name in ("MECCDEqualizedImage", "MECCDMeanImage", "MECCDStdImage", "MECCDCalImage"):
        picture = evaluate(monitors, analysed, name).image
        assert picture.shape == (80, 130)
    assert np.nanmin(evaluate(monitors, analysed, "MECCDEqualizedImage").image) == pytest.approx(0.0)
    small = evaluate(monitors, analysed, "MECCDMeanImage", max_pixels=1000)
    assert small.image.size <= 1000
    assert evaluate(monitors, analysed, "METempShift", keyword="TEMPA").value == 140.5
    with pytest.raises(NotApplicable, match="keyword"):
        evaluate(monitors, analysed, "METempShift")


def test_column_transient_reads_the_analysis(monitors, analysed):
    image, _ = analysed
    if not image["L"].results["CorrectElectronicColumnTransient"]["ect_valid"]:
        with pytest.raises(DataError, match="did not converge"):  # no transient in the image: may not converge
            evaluate(monitors, analysed, "MEColTransient")
        return
    result = evaluate(monitors, analysed, "MEColTransient")
    assert result.x[0] == 2 and result.yfit.size == result.y.size


def test_averaged_images_make_raw_monitor_elements_not_applicable(monitors, tmp_path):
    from waders.io import read_image

    image = read_image(fx.averaged_file(tmp_path / "avg.fits", names=("CCD_A", "CCD_B")))
    amp = image["CCD_A"]
    for name in ("MEQmeanDiffSingleSkips", "MEReadoutnoiseNDCM", "MESkewnessCoeff", "MESTDSkipsPerCol"):
        with pytest.raises(NotApplicable):
            monitors[name].evaluate(image, {}, amp)


def test_defects_candidates_and_run_mask(monitors, analysed):
    image, _ = analysed
    me = monitors["MEDefectsMask"]
    result = me.evaluate(image, {}, image["L"])
    flagged = result.extra["candidates"]
    assert flagged[30, 40:43].all() and result.value == flagged.sum()
    assert not flagged[:, :4].any() and not flagged[:, 110:].any()  # only the active region
    # normalisations: a row is hot against the number of columns, a column against the number of rows
    from waders.core.geometry import AmplifierGeometry

    geometry = AmplifierGeometry("L", 10, 50, prescan_cols=5, overscan_cols=5)  # 10 active rows x 40 columns
    frequency = np.zeros(geometry.shape)
    frequency[2, 5:14] = 1.0  # 9 of 40 columns: hot row (> 20 %)
    frequency[6, 5:10] = 1.0  # 5 of 40 columns: not a hot row (would be with the rows count, 50 %)
    frequency[0:3, 30] = 1.0  # 3 of 10 rows: hot column (> 20 %)
    mask = me.run_mask(frequency, geometry)
    assert mask[2, 5:45].all() and not mask[2, :5].any()
    assert not mask[6, 20:30].any() and mask[6, 5:10].all()
    assert mask[:, 30].all()


def test_boxes_start_at_the_bright_pixel():
    seeds = np.zeros((8, 8), dtype=bool)
    seeds[2, 3] = True
    boxes = _boxes(seeds, 3, 2)
    assert boxes[2:5, 3:5].all() and boxes.sum() == 6


def test_results_become_json_entries(monitors):
    me = monitors["MEOVSPedestalSigma"]
    entry = MEResult(1.23456789123, float("nan"), np.array([1.0, 2.0]), np.array([np.inf, 3.0])).to_entry(me)
    assert entry["value"] == 1.234568 and entry["error"] is None
    assert entry["y"] == [None, 3.0] and entry["unit"] == "ADU"
    assert jsonable(np.array([0.1 + 0.2, -12345678.9, 0.0])) == [0.3, -12345680.0, 0.0]
    assert set(entry) >= {"value", "error", "unit", "x", "y", "yerr", "xlabel", "ylabel", "plot", "quality"}


# --- quality tests ----------------------------------------------------------------------------------------
def _doc(run, values, errors=0.01, me="MEOVSPedestalSigma"):
    return {
        "run": run,
        "images": {
            f"img{i}": {"image": i, "me": {me: {"L": {"value": v, "error": errors, "x": None, "y": None}}}}
            for i, v in enumerate(values)
        },
        "run_level": {},
    }


def test_relative_difference_to_the_reference():
    me = builtin_monitors()["MEOVSPedestalSigma"]()
    reference = _doc(11, [1.00, 1.02, 0.99, 1.01])
    same = quality.compare(_doc(12, [1.01, 0.995]), reference, {me.name: me})
    assert same["status"] == "pass"
    entry = same["images"]["img0"]["me"][me.name]["L"]["quality"]
    assert entry["test"] == "reldiff" and "run 11" in entry["detail"]
    doubled = quality.compare(_doc(12, [2.0, 2.02]), reference, {me.name: me})
    assert doubled["status"] == "fail"
    slightly = quality.compare(_doc(12, [1.15]), reference, {me.name: me})
    assert slightly["status"] == "warn"


def test_range_and_fit_tests():
    me = builtin_monitors()["MEFitDCSigma"](qt_valid_range=[0.0, 0.2])
    doc = _doc(3, [0.15, 0.25], me="MEFitDCSigma")
    doc["images"]["img0"]["me"]["MEFitDCSigma"]["L"]["goodness"] = 7.0
    quality.compare(doc, None, {me.name: me})
    first = doc["images"]["img0"]["me"]["MEFitDCSigma"]["L"]["quality"]
    second = doc["images"]["img1"]["me"]["MEFitDCSigma"]["L"]["quality"]
    assert first["status"] == "fail" and first["test"] == "chi2"
    assert second["status"] == "fail" and second["test"] == "range"
    assert doc["status"] == "fail"


def test_profiles_and_distributions_against_the_reference():
    rng = np.random.default_rng(1)
    profile = builtin_monitors()["MESTDPixelChargePerRow"]()
    x = list(range(1, 51))

    def entry(y, err=0.01):
        return {"value": float(np.mean(y)), "error": 0.001, "x": x, "y": list(y), "yerr": [err] * len(y)}

    ref = quality.ReferenceStats(run=1, n=1, mean=0.1, spread=0.001, x=np.array(x, float), y=np.full(50, 0.1),
                                 yerr=np.full(50, 0.01))  # fmt: skip
    ok = quality.profile_chi2_test(profile, entry(0.1 + 0.01 * rng.standard_normal(50)), ref)
    bad = quality.profile_chi2_test(profile, entry(np.full(50, 0.2)), ref)
    assert ok[1] == "pass" and bad[1] == "fail"
    pcd = builtin_monitors()["MEOVSPCD"]()
    centres = pcd.histogram(np.zeros(1))[0]
    same = pcd.histogram(rng.normal(0, 0.1, 20000))[1]
    wider = pcd.histogram(rng.normal(0, 0.2, 20000))[1]
    ref_hist = quality.ReferenceStats(run=1, x=centres, y=pcd.histogram(rng.normal(0, 0.1, 40000))[1], histogram=True)
    assert quality.ks_test(pcd, {"x": list(centres), "y": list(same)}, ref_hist)[1] == "pass"
    assert quality.ks_test(pcd, {"x": list(centres), "y": list(wider)}, ref_hist)[1] == "fail"
