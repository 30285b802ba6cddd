"""Verdicts a shifter can trust: nothing analysed is a FAIL, --strict exits 1 on FAIL, each cause is said once,
and the fit-goodness test judges a chi2 by its distribution for the fit's degrees of freedom."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from waders.core.cli.main import main
from waders.dqm.monitor import histogram_chi2
from waders.dqm.monitors.darkcurrent import MEFitDC
from waders.dqm.quality import compare, goodness_test, run_reasons

_spec = importlib.util.spec_from_file_location("_dqm_run_fixtures", Path(__file__).with_name("_run_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

FEW = {"monitoring_elements": {"MEOVSPedestalSigma": {"active": 1}, "MEFitDCSigma": {"active": 1}}}


def dqm(tmp_path: Path, *args: str) -> int:
    me_json = tmp_path / "me.json"
    me_json.write_text(json.dumps(FEW))
    return main(["dqm", "run", "-o", str(tmp_path / "dqm"), "--me-json", str(me_json), *args])


def test_a_run_of_unreadable_images_is_a_fail_and_strict_exits_1(tmp_path, capsys):
    bad = []
    for name in ("img_1.fits", "img_2.fits"):
        bad.append(tmp_path / name)
        bad[-1].write_text("not a FITS file")
    assert dqm(tmp_path, "--run", "3", "--strict", *map(str, bad)) == 1
    captured = capsys.readouterr()
    out = captured.out
    for file in bad:  # each file's error once on the terminal
        assert captured.err.count(f"{file}: not a readable FITS file") == 1
    assert "run 3: fail; 0 image(s) in the run" in out
    assert "  fail: no image could be analysed (2 input(s) failed)" in out
    # one reason for the one cause of both files
    causes = [line for line in out.splitlines() if "could not be analysed (" in line]
    assert len(causes) == 1
    assert causes[0].startswith("  fail: 2 input(s) could not be analysed (img_1.fits, img_2.fits): not a readable")
    document = json.loads((tmp_path / "dqm" / "run003" / "summary_run003.json").read_text())
    assert document["status"] == "fail" and document["images"] == {}
    assert set(document["failed_inputs"]) == {"img_1", "img_2"}
    # without --strict: the input errors exit 2 as before, and the verdict still says fail
    assert dqm(tmp_path, "--run", "4", *map(str, bad)) == 2
    assert "run 4: fail" in capsys.readouterr().out


def test_a_good_image_passes_strict_and_a_bad_one_added_later_fails_the_run(tmp_path, capsys):
    good = fx.raw_file(tmp_path / "good_1.fits", seed=1)
    assert dqm(tmp_path, "--run", "5", "--strict", str(good)) == 0
    assert "run 5: pass; 1 image(s)" in capsys.readouterr().out
    bad = tmp_path / "bad_2.fits"
    bad.write_bytes(good.read_bytes()[:5000])  # truncated
    assert dqm(tmp_path, "--run", "5", "--strict", str(bad)) == 1
    out = capsys.readouterr().out
    assert "run 5: fail; 1 image(s)" in out and "1 input(s) could not be analysed (bad_2.fits)" in out
    # the file copied again: the run is whole and passes
    bad.write_bytes(good.read_bytes())
    assert dqm(tmp_path, "--run", "5", "--strict", str(bad)) == 0
    document = json.loads((tmp_path / "dqm" / "run005" / "summary_run005.json").read_text())
    assert document["status"] == "pass" and document["failed_inputs"] == {} and document["reasons"] == []


def _histogram(rng: np.random.Generator, n: float, sigma: float, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    expected = n * np.diff(norm.cdf(edges, scale=sigma))
    return rng.poisson(expected).astype(float), expected


@pytest.mark.parametrize("seed", range(5))
def test_the_right_model_passes_on_high_statistics(seed):
    """Ten million Gaussian entries drawn from the model itself: the chi2 is one of its distribution."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(-5, 5, 201)
    counts, expected = _histogram(rng, 1e7, 1.0, edges)
    me = MEFitDC()
    chi2, ndf = histogram_chi2(counts, expected, 3, accuracy=0.0, min_expected=me.qt_fit_min_expected)
    assert ndf == int((expected >= 5).sum()) - 3
    assert abs(chi2 - ndf) < 5 * np.sqrt(2 * ndf)  # its distribution: mean ndf, standard deviation sqrt(2 ndf)
    test, status, detail = goodness_test(me, {"chi2": chi2, "ndf": ndf})
    assert (test, status) == ("chi2", "pass"), detail


def test_a_wrong_model_fails_and_a_per_cent_imperfection_does_not_at_high_statistics():
    rng = np.random.default_rng(7)
    edges = np.linspace(-5, 5, 201)
    counts, _ = _histogram(rng, 1e7, 1.0, edges)
    me = MEFitDC()
    _, wrong = _histogram(rng, 1e7, 1.03, edges)  # the width 3 % off
    chi2, ndf = histogram_chi2(counts, wrong, 3, accuracy=me.qt_fit_model_accuracy)
    _, status, detail = goodness_test(me, {"chi2": chi2, "ndf": ndf})
    assert status == "fail" and "p = 0" in detail
    # 0.5 % too many entries in every bin: beyond the Poisson errors of ten million entries ...
    exact = 1e7 * np.diff(norm.cdf(edges)) * 1.005
    strict = histogram_chi2(counts, exact, 3, accuracy=0.0)
    assert goodness_test(me, dict(zip(("chi2", "ndf"), strict, strict=True)))[1] == "fail"
    # ... but within the model accuracy of 1 % the fit is judged good
    tolerant = histogram_chi2(counts, exact, 3, accuracy=me.qt_fit_model_accuracy)
    assert goodness_test(me, dict(zip(("chi2", "ndf"), tolerant, strict=True)))[1] == "pass"


def test_a_wrong_model_fails_with_few_bins_that_a_flat_limit_would_pass():
    """chi2 = 40 for 8 degrees of freedom is chi2/ndf 5 (a flat limit of 5 passes it) but p = 3e-6 (warn);
    48 for 8 is p = 1e-7 (fail)."""
    me = MEFitDC()
    assert goodness_test(me, {"chi2": 40.0, "ndf": 8})[1] == "warn"
    assert goodness_test(me, {"chi2": 48.0, "ndf": 8})[1] == "fail"
    assert goodness_test(me, {"chi2": 1300.0, "ndf": 1000})[1] == "fail"  # chi2/ndf 1.3 with 1000 ndf: p = 4e-10
    assert goodness_test(me, {"goodness": 4.0})[1] == "pass"  # only chi2/ndf known: the flat limit
    assert goodness_test(me, {"goodness": 6.0})[1] == "fail"


def test_one_cause_is_one_reason():
    """A bad fit read by five MEs in two amplifiers of one image is one reason (with its first case), not ten."""
    fit = {"value": 0.2, "chi2": 500.0, "ndf": 60, "goodness": 8.3}
    names = ("MEFitDC", "MEFitDCMu0", "MEFitDCSigma", "MEFitDCLambda", "MEFitDCCalibration")
    document = {
        "run": 1,
        "images": {"img_1": {"me": {n: {"L": dict(fit), "U": {**fit, "chi2": 400.0}} for n in names}}},
    }
    compare(document, None)
    assert document["status"] == "fail"
    assert len(document["reasons"]) == 1
    assert document["reasons"][0].startswith("fail: MEFitDC, MEFitDCMu0, MEFitDCSigma and 2 more: chi2: fit chi2 500")
    assert document["reasons"][0].endswith("(img_1, amplifier L; and 1 more image/amplifier(s))")
    assert run_reasons({"images": {}, "failed_inputs": {}}) == ["fail: no image"]


def test_an_analysis_keyed_for_other_amplifiers_stops_before_monitoring(tmp_path, capsys):
    """The real DAMIC-M file with img_5.json keyed L/U: one error line, exit 2, no run directory."""
    from waders.data import DAMICM_IMAGE, PYSIMDAMICM_CONFIGS, path

    text = (path(PYSIMDAMICM_CONFIGS) / "img_5.json").read_text()
    for old, new in (("EXT1", "L"), ("EXT2", "U"), ("EXT3", "L"), ("EXT4", "U")):
        text = text.replace(f'"{old}"', f'"{new}"')
    config = tmp_path / "lu.json"
    config.write_text(text)
    assert dqm(tmp_path, "--run", "6", "--strict", "--json", str(config), str(path(DAMICM_IMAGE))) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("WARNING")]  # duplicate keys
    assert len(err) == 1 and err[0].startswith(f"error: {config}: ") and "has values for L, U but" in err[0]
    assert "has amplifiers CCD_A, CCD_B, CCD_D, CCD_C" in err[0]
    assert not (tmp_path / "dqm" / "run006").exists()
