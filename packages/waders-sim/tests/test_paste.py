"""PasteClusterProcess: simulated events pasted into blank images, exact unit conversion and truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from waders.core.detector import Detector
from waders.core.errors import ConfigError, InputFileError, ProcessError
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.data import DAMICM_IMAGE, PYSIMDAMICM_CONFIGS
from waders.data import path as data_path
from waders.io import read_image
from waders.sim.events import SimEvents
from waders.sim.paste import PasteClusterProcess
from waders.sim.random import CounterRNG

E2EV = 3.77
DAMICM = data_path(DAMICM_IMAGE)
CONFIGS = data_path(PYSIMDAMICM_CONFIGS)


def make_events(event_ids, n_pix: int = 5, *, adc2ev: float | None = 0.72, seed: int = 4, **detector) -> SimEvents:
    """Events of ``n_pix`` pixels in an L shape with energies that depend on the event id."""
    event_ids = np.asarray(event_ids, dtype=np.int64)
    n = event_ids.size
    hits = {k: np.zeros(n) for k in ("x", "y", "z", "time", "edep")}
    hits["ccd"] = np.ones(n, dtype=np.int32)
    hits["pdg"] = np.full(n, 11, dtype=np.int32)
    collection = HitCollection.from_arrays(event_ids, np.ones(n, dtype=np.int64), hits)
    det = Detector(ccd_shape=[1000, 4000], e2eV=E2EV, ADC2eV=adc2ev, **detector)
    data = SimEvents(collection, CounterRNG(seed), det)
    event = np.repeat(np.arange(n), n_pix)
    k = np.tile(np.arange(n_pix), n)
    m = event.size
    data.set_pixels(
        {
            "event": event,
            "ccd": np.ones(m, dtype=np.int32),
            "row": (500 + (event_ids[event] % 7) + np.minimum(k, 2)).astype(np.int32),
            "col": (1000 + 3 * event_ids[event] + np.maximum(k - 2, 0)).astype(np.int32),
            "edep": 100.0 + 37.5 * k + 11.0 * (event_ids[event] % 5),
            "charge": np.full(m, 30, dtype=np.int32),
            "z": np.full(m, 0.1),
            "time": np.zeros(m),
            "pdg": np.full(m, 11, dtype=np.int32),
        }
    )
    return data


@pytest.fixture
def blanks(tmp_path):
    """Two generated blanks (100 x 150 averaged ADU with noise) in a directory."""
    folder = tmp_path / "blanks"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        data = 1000.0 * i + rng.normal(0.0, 2.0, (100, 150))
        fits.PrimaryHDU(data, header=fits.Header([("RUNID", 40 + i)])).writeto(folder / f"blank_{i}.fits")
    return folder


def paste(data, out, **params) -> tuple[PasteClusterProcess, dict]:
    process = PasteClusterProcess(blank_outdir=str(out), **params)
    ctx = RunContext(seed=4, detector=data.detector, output_dir=out)
    process.run(data, ctx)
    return process, process.finish(ctx)


def check_pasted_file(path: Path, blank: np.ndarray, calibration: float) -> dict:
    """The pasted image minus the blank is E / e2eV x calibration exactly; truth images agree."""
    truth = json.loads(path.with_name(f"{path.stem}.truth.json").read_text())
    with fits.open(path) as hdul:
        image = hdul[0].data
        mct, ids, eraw, emct = (hdul[name].data for name in ("MonteCarloTruth", "MCT_ID", "MCT_ERAW", "MCT_EMCT"))
        assert hdul[0].header["CALIB"] == pytest.approx(calibration)
        assert hdul[0].header["NEVTS"] == truth["n_pastes"]
    added = image - blank
    np.testing.assert_allclose(added, mct / E2EV * calibration, rtol=1e-12, atol=1e-9)  # the unit conversion
    pasted = mct > 0
    assert np.array_equal(ids > 0, pasted)
    np.testing.assert_array_equal(eraw[pasted], blank[pasted])
    assert np.all(eraw[~pasted] == 0)
    assert sorted(np.unique(ids[pasted]).tolist()) == [p["paste_id"] for p in truth["pastes"] if p["npix"]]
    for p in truth["pastes"]:
        mine = ids == p["paste_id"]
        assert mct[mine].sum() == pytest.approx(p["energy_eV"])  # no overlaps in these tests
        assert np.all(emct[mine] == pytest.approx(p["energy_eV"]))
        assert added[mine].sum() == pytest.approx(p["adu"])
        assert p["adu"] == pytest.approx(p["energy_eV"] / E2EV * calibration)
        rows, cols = np.nonzero(mine)
        w = mct[mine]
        assert p["row"] == pytest.approx(np.sum(w * (rows + 1)) / w.sum())
        assert p["col"] == pytest.approx(np.sum(w * (cols + 1)) / w.sum())
    return truth


def test_pasted_charge_is_energy_over_e2ev_times_calibration(tmp_path, blanks):
    data = make_events(np.arange(6))
    energies = np.bincount(data.pixels["event"], weights=data.pixels["edep"])
    _, written = paste(data, tmp_path / "out", blank_dir=str(blanks / "blank_0.fits"), calibration=2.5,
                       clusters_per_blank=10, row_cls_dist_fx="uniform")  # fmt: skip
    (path,) = (Path(p) for p in written["images"])
    assert path.name == "waders_sim_blank_0_Ncls6_1.fits"
    truth = check_pasted_file(path, fits.getdata(blanks / "blank_0.fits"), 2.5)
    assert [p["event"] for p in truth["pastes"]] == list(range(6))
    assert [p["energy_eV"] for p in truth["pastes"]] == pytest.approx(energies)
    assert all(p["npix"] == 5 and p["npix_dropped"] == 0 for p in truth["pastes"])
    pix = data.pixels
    assert np.all(pix["paste_image"] == 1)
    np.testing.assert_allclose(pix["paste_adu"], pix["edep"] / E2EV * 2.5)
    # the shape of each event is kept: offsets between its pixels unchanged
    for e in range(6):
        mine = pix["event"] == e
        assert np.array_equal(np.diff(pix["paste_row"][mine]), np.diff(pix["row"][mine]))
        assert np.array_equal(np.diff(pix["paste_col"][mine]), np.diff(pix["col"][mine]))
    assert read_image(path).geometry.averaged  # the output reads as an averaged image


def test_blanks_cycle_after_clusters_per_blank_and_results_do_not_depend_on_chunks(tmp_path, blanks):
    data = make_events(np.arange(7))
    _, whole = paste(data, tmp_path / "whole", blank_dir=str(blanks / "*.fits"), calibration=1.0,
                     clusters_per_blank=3, sigma=0.1)  # fmt: skip
    names = [Path(p).name for p in whole["images"]]
    assert [n.split("_Ncls")[1] for n in names] == ["3_1.fits", "3_2.fits", "1_3.fits"]
    stems = [n.split("_Ncls")[0] for n in names]
    assert stems[0] != stems[1] and stems[0] == stems[2]  # two blanks used in turn
    gains = [fits.getheader(p)["CALIB"] for p in whole["images"]]
    assert len(set(gains)) == 3 and all(abs(g - 1.0) < 0.5 for g in gains)  # one gain draw per blank
    for path, gain in zip(whole["images"], gains, strict=True):
        blank = blanks / f"{Path(path).name.split('waders_sim_')[1].split('_Ncls')[0]}.fits"
        check_pasted_file(Path(path), fits.getdata(blank), gain)
    process = PasteClusterProcess(blank_outdir=str(tmp_path / "parts"), blank_dir=str(blanks / "*.fits"),
                                  calibration=1.0, clusters_per_blank=3, sigma=0.1)  # fmt: skip
    ctx = RunContext(seed=4, output_dir=tmp_path / "parts")
    for part in ([0, 1], [2, 3, 4, 5], [6]):
        chunk = make_events(part)
        ctx.detector = chunk.detector
        process.run(chunk, ctx)
    parts = process.finish(ctx)
    assert [Path(p).name for p in parts["images"]] == names
    for a, b in zip(whole["images"], parts["images"], strict=True):
        for ext in range(5):
            np.testing.assert_array_equal(fits.getdata(a, ext), fits.getdata(b, ext))


def test_gain_from_adc2ev_and_electron_blanks(tmp_path, blanks):
    data = make_events(np.arange(3))
    _, written = paste(data, tmp_path / "adu", blank_dir=str(blanks / "blank_1.fits"), row_cls_dist_fx="uniform")
    check_pasted_file(Path(written["images"][0]), fits.getdata(blanks / "blank_1.fits"), E2EV / 0.72)
    data = make_events(np.arange(3))
    _, written = paste(data, tmp_path / "e", blank_dir=str(blanks / "blank_1.fits"), in_ADU=False)
    check_pasted_file(Path(written["images"][0]), fits.getdata(blanks / "blank_1.fits"), 1.0)
    data = make_events(np.arange(3), adc2ev=None)
    with pytest.raises(ProcessError, match="calibration"):
        paste(data, tmp_path / "x", blank_dir=str(blanks / "blank_1.fits"))


def test_charge_signal_pastes_the_collected_electrons(tmp_path, blanks):
    data = make_events(np.arange(3))
    paste(data, tmp_path, blank_dir=str(blanks / "blank_0.fits"), calibration=2.0, signal="charge")
    np.testing.assert_array_equal(data.pixels["paste_adu"], 30 * 2.0)  # 30 e- per pixel, 2 ADU/e-


def test_row_distributions_and_active_area(tmp_path, blanks):
    n = 3000
    rows = {}
    for mode in ("uniform", "linear"):
        data = make_events(np.arange(n), n_pix=1, n_rows_prescan=10, n_cols_prescan=5, n_cols_overscan=20)
        paste(data, tmp_path / mode, blank_dir=str(blanks / "blank_0.fits"), calibration=1.0,
              clusters_per_blank=n, row_cls_dist_fx=mode)  # fmt: skip
        pix = data.pixels
        assert pix["paste_row"].min() >= 10 and pix["paste_col"].min() >= 5 and pix["paste_col"].max() < 130
        rows[mode] = (pix["paste_row"] - 10 + 0.5) / 90.0  # fraction of the 90 active rows
    # uniform: mean 1/2; linear (density ~ t): mean 2/3, sigma of the mean ~ 0.29 / sqrt(3000) = 0.005
    assert rows["uniform"].mean() == pytest.approx(0.5, abs=0.02)
    assert rows["linear"].mean() == pytest.approx(2 / 3, abs=0.02)


def test_compton_mode_without_texp_and_with_calibration(tmp_path, blanks):
    data = make_events(np.arange(4))
    _, written = paste(data, tmp_path / "c", blank_dir=str(blanks / "blank_0.fits"), calibration=3.0,
                       row_cls_dist_fx="compton")  # fmt: skip
    check_pasted_file(Path(written["images"][0]), fits.getdata(blanks / "blank_0.fits"), 3.0)
    data = make_events(np.arange(4))
    _, written = paste(data, tmp_path / "q", blank_dir=str(blanks / "blank_0.fits"), row_cls_dist_fx="compton",
                       clusters_per_blank_texp=2)  # fmt: skip
    pix = data.pixels
    n_e = pix["edep"] / E2EV
    np.testing.assert_array_equal(pix["paste_adu"], np.rint(0.4088 + 5.177 * n_e + 7.85e-6 * n_e**2))


def test_missing_or_bad_blanks(tmp_path):
    data = make_events(np.arange(2))
    with pytest.raises(ConfigError, match="blank_dir"):
        paste(data, tmp_path)
    with pytest.raises(InputFileError, match="no blank image"):
        paste(data, tmp_path, blank_dir=str(tmp_path / "nothing*.fits"))


def test_paste_into_the_real_damicm_blank(tmp_path):
    data = make_events(np.arange(20))
    _, written = paste(data, tmp_path, blank_dir=str(DAMICM), extension="CCD_A", calibration=1.35,
                       clusters_per_blank=50)  # fmt: skip
    (path,) = (Path(p) for p in written["images"])
    assert path.name.startswith("waders_sim_avg_Image_5_Low_Temp_109_20250807_170213_15_Ncls20_1")
    blank = fits.getdata(DAMICM, "CCD_A")
    truth = check_pasted_file(path, blank, 1.35)
    assert len(truth["pastes"]) == 20
    header = fits.getheader(path)
    assert header["EV2ADU"] == pytest.approx(1.35 / E2EV)
    assert "DATEINI" in header  # the blank's header is kept
    # extension 0 on an fpack file whose primary HDU is empty: the first image HDU (CCD_A)
    data = make_events(np.arange(2))
    _, written = paste(data, tmp_path / "ext0", blank_dir=str(DAMICM), calibration=1.35)
    check_pasted_file(Path(written["images"][0]), blank, 1.35)


def test_pysimdamicm_section_loads():
    config = json.loads((CONFIGS / "psimulCCDimg_config_file.json").read_text())
    section = {
        k: v for k, v in config["detector_response"]["PasteClusterProcess"].items() if k not in ("active", "units")
    }
    process = PasteClusterProcess.from_mapping(section)
    assert process.row_cls_dist_fx == "linear" and process.clusters_per_blank == 50 and process.in_ADU is True
    assert process.blank_dir is None and process.extension == 0
