"""``waders dqm run`` on generated runs: values, reference comparison, incremental runs, the CLI."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from waders.dqm.run import RunOptions, monitor_run
from waders.dqm.store import open_store

_spec = importlib.util.spec_from_file_location("_dqm_run_fixtures", Path(__file__).with_name("_run_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

SIGMA_ADU = fx.NOISE / math.sqrt(fx.NSKIPS)
SIGMA_E = SIGMA_ADU / fx.GAIN
FAST = {"plots": False, "report": False}
#: A small ME set for the runs that draw plots.
FEW = {
    "monitoring_elements": {
        "MEOVSPedestalSigma": {"active": 1},
        "MESTDPixelChargePerRow": {"active": 1},
        "MEFitDCSigma": {"active": 1},
    }
}
CONTRACT_IMAGE = {"file", "image", "start", "summary", "status", "me"}
CONTRACT_ENTRY = {"value", "error", "unit", "x", "y", "yerr", "xlabel", "ylabel", "plot", "quality"}


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory):
    """Raw images: one amplifier (seeds 0-3), doubled noise (seeds 10-11), two amplifiers (seeds 20-21)."""
    d = tmp_path_factory.mktemp("raw")
    files = {
        "one": [fx.raw_file(d / f"one_{i}.fits", seed=i) for i in range(4)],
        "noisy": [fx.raw_file(d / f"noisy_{i}.fits", seed=10 + i, noise=2 * fx.NOISE) for i in range(2)],
        "two": [fx.raw_file(d / f"two_{i}.fits", amplifiers=("L", "U"), seed=20 + i) for i in range(2)],
    }
    return files


def check_contract(document: dict, run: int) -> None:
    assert document["run"] == run and document["status"] in ("pass", "warn", "fail")
    assert set(document) >= {"run", "tag", "updated", "reference_run", "status", "amplifiers", "images", "run_level",
                             "masked_fraction"}  # fmt: skip
    for image in document["images"].values():
        assert set(image) >= CONTRACT_IMAGE
        for per_amp in image["me"].values():
            for entry in per_amp.values():
                assert set(entry) >= CONTRACT_ENTRY
                assert entry["quality"]["status"] in ("pass", "warn", "fail", "none")
    for per_amp in document["run_level"].values():
        for entry in per_amp.values():
            assert set(entry) >= {"x", "y", "yerr", "unit", "plot", "quality"}


def test_one_amplifier_run_reports_the_known_values(raw_files, tmp_path):
    result = monitor_run(raw_files["one"][:2], RunOptions(4, output_dir=tmp_path, tag="night 1", **FAST))
    assert result.ok, result.failures
    doc = result.document
    check_contract(doc, 4)
    run_dir = tmp_path / "run004"
    assert doc == fx.read_summary(run_dir, 4)
    assert doc["amplifiers"] == ["L"] and doc["tag"] == "night 1" and list(doc["images"]) == ["one_0", "one_1"]
    assert np.allclose(fx.values(doc, "MEOVSPedestalSigma", "L"), SIGMA_ADU, rtol=0.1)
    assert np.allclose(fx.values(doc, "MEFitDCSigma", "L"), SIGMA_E, rtol=0.1)
    assert np.allclose(fx.values(doc, "MEFitDCCalibration", "L"), fx.GAIN, rtol=0.03)
    lam = fx.values(doc, "MEFitDCLambda", "L")
    assert np.all(np.abs(lam - fx.DARK_CURRENT) < 0.015)
    assert np.allclose(fx.values(doc, "MEReadoutnoiseNDCM", "L"), fx.NOISE, rtol=0.12)
    assert np.allclose(fx.values(doc, "MESTDPixelChargePerRow", "L"), SIGMA_E, rtol=0.12)
    level = doc["run_level"]["MEFitDCSigma"]["L"]
    assert level["x"] == [0, 1] and len(level["y"]) == 2 and level["unit"] == "e-"
    for stem in ("one_0", "one_1"):
        image = doc["images"][stem]
        assert image["summary"] == f"recon/{stem}.summary.json" and (run_dir / image["summary"]).exists()
        assert (run_dir / "recon" / f"{stem}_clusters.root").exists()
        with fits.open(run_dir / "avgimg" / f"{stem}_waders.fits") as hdul:
            assert "CALIBRATED" in [h.name for h in hdul]
    with fits.open(run_dir / "mask_run004.fits") as hdul:
        assert hdul[0].header["RUN"] == 4 and hdul[0].header["MASKTYPE"] == "defects"
        assert hdul["MASK_L"].data.shape == (60, 110)
    assert 0 <= doc["masked_fraction"]["L"] < 0.5
    assert (run_dir / "logs" / "dqm_run004.log").read_text().count("DQM run 4") >= 2
    with open_store(None, tmp_path) as store:
        assert store.runs() == [4]
        assert store.get_run(4) == doc
        assert [(r, i) for r, i, _, _ in store.history("MEFitDCSigma", "L")] == [(4, 0), (4, 1)]


def test_two_amplifier_run(raw_files, tmp_path):
    doc = monitor_run(raw_files["two"], RunOptions(5, output_dir=tmp_path, **FAST)).document
    check_contract(doc, 5)
    assert doc["amplifiers"] == ["L", "U"]
    for amp in "LU":
        assert np.allclose(fx.values(doc, "MEOVSPedestalSigma", amp), SIGMA_ADU, rtol=0.1)
        assert np.allclose(fx.values(doc, "MEFitDCCalibration", amp), fx.GAIN, rtol=0.03)
        assert np.allclose(fx.values(doc, "MEFitDCSigma", amp), SIGMA_E, rtol=0.1)
    pedestals = fx.values(doc, "MEOVSPedestalMu", "U") - fx.values(doc, "MEOVSPedestalMu", "L")
    assert np.allclose(pedestals, 100.0, atol=1.0)  # the generator puts U 100 ADU above L


def test_four_extension_averaged_run(tmp_path):
    files = [fx.averaged_file(tmp_path / f"avg_{i}.fits", seed=i) for i in range(2)]
    doc = monitor_run(files, RunOptions(6, output_dir=tmp_path / "dqm", **FAST)).document
    check_contract(doc, 6)
    assert doc["amplifiers"] == list(fx.EXT_NAMES)
    for amp in fx.EXT_NAMES:
        assert np.allclose(fx.values(doc, "MEOVSPedestalSigma", amp), 1.0, rtol=0.08)
        assert np.allclose(fx.values(doc, "MEFitDCSigma", amp), 0.1, rtol=0.1)
        assert np.allclose(fx.values(doc, "MEFitDCCalibration", amp), fx.GAIN, rtol=0.03)
        assert np.all(np.abs(fx.values(doc, "MEFitDCLambda", amp) - fx.DARK_CURRENT) < 0.01)
        raw_only = doc["images"]["avg_0"]["me"]["MEReadoutnoiseNDCM"][amp]
        assert raw_only["value"] is None and raw_only["quality"]["status"] == "none"
        assert "averaged" in raw_only["quality"]["detail"]
    assert doc["status"] == "pass"


def test_doubled_noise_fails_against_the_reference_and_a_like_run_passes(raw_files, tmp_path):
    reference = monitor_run(raw_files["one"][:2], RunOptions(10, output_dir=tmp_path, **FAST))
    assert reference.document["status"] == "pass" and reference.document["reference_run"] is None
    like = monitor_run(raw_files["one"][2:], RunOptions(11, output_dir=tmp_path, reference_run=10, **FAST)).document
    assert like["reference_run"] == 10
    assert like["status"] == "pass", _problems(like)
    tested = like["images"]["one_2"]["me"]["MEOVSPedestalSigma"]["L"]["quality"]
    assert tested["status"] == "pass" and tested["test"] == "reldiff" and "run 10" in tested["detail"]
    options = RunOptions(12, output_dir=tmp_path, reference_run=10, image_plots="problems")
    noisy = monitor_run(raw_files["noisy"], options)
    doc = noisy.document
    assert doc["status"] == "fail"
    for name in ("MEOVSPedestalSigma", "MEFitDCSigma", "MESTDPixelChargePerRow", "MEReadoutnoiseNDCM"):
        assert doc["images"]["noisy_0"]["me"][name]["L"]["quality"]["status"] == "fail", name
        assert doc["run_level"][name]["L"]["quality"]["status"] == "fail", name
    assert doc["images"]["noisy_0"]["status"] == "fail"
    profile = doc["images"]["noisy_0"]["me"]["MESTDPixelChargePerRow"]["L"]
    assert profile["quality"]["test"] == "chi2"
    assert profile["plot"] == "me/noisy_0_MESTDPixelChargePerRow_L.png"
    run_dir = tmp_path / "run012"
    assert (run_dir / profile["plot"]).stat().st_size > 1000
    assert doc["run_level"]["MEFitDCSigma"]["L"]["plot"] == "me/run_MEFitDCSigma.png"
    assert (run_dir / "me" / "run_MEFitDCSigma.png").exists()
    assert noisy.report == "written"
    with open_store(None, tmp_path) as store:
        assert store.runs() == [10, 11, 12]
        assert store.get_run(12)["status"] == "fail"


def _problems(document: dict) -> list[str]:
    out = []
    for stem, image in document["images"].items():
        for name, per_amp in image["me"].items():
            for amp, entry in per_amp.items():
                if entry["quality"]["status"] in ("warn", "fail"):
                    out.append(f"{stem} {name} {amp}: {entry['quality']['detail']}")
    return out


def test_images_added_one_by_one_are_never_counted_twice(raw_files, tmp_path):
    first, second = raw_files["one"][:2]
    monitor_run([first], RunOptions(20, me_config=FEW, output_dir=tmp_path, report=False))
    run_dir = tmp_path / "run020"
    doc = monitor_run([second], RunOptions(20, me_config=FEW, output_dir=tmp_path, report=False)).document
    assert list(doc["images"]) == ["one_0", "one_1"]
    plot = run_dir / "me" / "run_MEFitDCSigma.png"
    stamp = plot.stat().st_mtime_ns
    again = monitor_run([first], RunOptions(20, me_config=FEW, output_dir=tmp_path, report=False)).document
    assert list(again["images"]) == ["one_0", "one_1"]
    assert again["run_level"]["MEFitDCSigma"]["L"]["x"] == [0, 1]
    assert again["run_level"]["MEFitDCSigma"]["L"]["y"] == doc["run_level"]["MEFitDCSigma"]["L"]["y"]
    assert plot.stat().st_mtime_ns == stamp  # unchanged data: not redrawn
    with open_store(None, tmp_path) as store:
        assert len(store.history("MEFitDCSigma", "L")) == 2
    with fits.open(run_dir / "mask_run020.fits") as hdul:
        assert hdul[0].header["NFILES"] == 2


def test_the_pysimdamicm_dqm_configuration_runs(raw_files, tmp_path):
    result = monitor_run(raw_files["two"][:1], RunOptions(30, me_config=fx.DQM_JSON, output_dir=tmp_path, **FAST))
    assert result.ok, result.failures
    image = result.document["images"]["two_0"]
    from waders.core.config import load_config
    from waders.dqm.monitor import active_monitors

    active = [type(me).name for me in active_monitors(load_config(fx.DQM_JSON, kind="dqm").steps)]
    assert set(image["me"]) == set(active)
    for name, per_amp in image["me"].items():
        assert set(per_amp) == {"L", "U"}
        for amp, entry in per_amp.items():
            detail = entry["quality"]["detail"]
            assert "internal error" not in detail, f"{name} {amp}: {detail}"
            if image["me"][name][amp]["quality"]["status"] == "fail":
                pytest.fail(f"{name} {amp}: {detail}")
    per_row = image["me"]["MEFitDCPerRow"]["L"]
    assert per_row["x"][0] == pytest.approx(7.5)  # row_start 2, row_step 10: rows 3..12
    assert image["me"]["MEReadoutnoiseNDCM"]["U"]["value"] == pytest.approx(fx.NOISE, rel=0.12)


def test_command_line_reports_bad_files_and_exits_2(raw_files, tmp_path, capsys):
    from waders.core.cli.main import main

    bad = tmp_path / "broken.fits"
    bad.write_text("not a FITS file")
    me_json = tmp_path / "me.json"
    me_json.write_text(json.dumps(FEW))
    code = main(["dqm", "run", "--run", "41", "-o", str(tmp_path), "--me-json", str(me_json), "--tag", "cli",
                 str(raw_files["one"][0]), str(bad), str(tmp_path / "nothing_*.fits")])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "broken.fits" in captured.err and "no file matches" in captured.err
    assert "run 41:" in captured.out
    doc = json.loads((tmp_path / "run041" / "summary_run041.json").read_text())
    assert list(doc["images"]) == ["one_0"] and doc["tag"] == "cli"
    code = main(["dqm", "run", "--run", "42", "-o", str(tmp_path), "--ref", "99", str(raw_files["one"][0])])
    assert code == 2 and "reference run 99" in capsys.readouterr().err


def test_worker_processes_give_the_serial_result(raw_files, tmp_path):
    serial = monitor_run(raw_files["one"][:2], RunOptions(50, output_dir=tmp_path / "serial", **FAST)).document
    options = RunOptions(50, output_dir=tmp_path / "parallel", executor="processes", workers=2, **FAST)
    parallel = monitor_run(raw_files["one"][:2], options).document
    for doc in (serial, parallel):
        doc.pop("updated")
    assert parallel == serial


def test_monitor_elements_take_the_summary_in_memory(raw_files, tmp_path, monkeypatch):
    """The MEs get the summary document the analysis made, equal to summary.json, and need not read the file."""
    import waders.dqm.image_task as image_task

    seen = []
    evaluate = image_task.evaluate_monitors

    def spy(task, image, summary):
        path = task.run_dir / "recon" / f"{image.meta['stem']}.summary.json"
        seen.append((json.loads(json.dumps(summary)), json.loads(path.read_text())))
        path.unlink()  # the MEs must work without the file
        return evaluate(task, image, summary)

    monkeypatch.setattr(image_task, "evaluate_monitors", spy)
    result = monitor_run(raw_files["one"][:1], RunOptions(60, me_config=FEW, output_dir=tmp_path, **FAST))
    assert result.ok, result.failures
    assert len(seen) == 1
    in_memory, written = seen[0]
    assert in_memory == written
    entry = result.document["images"]["one_0"]["me"]["MEFitDCSigma"]["L"]
    assert entry["value"] == pytest.approx(SIGMA_E, rel=0.1)
    assert entry["quality"]["status"] == "pass"
