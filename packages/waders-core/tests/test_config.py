from __future__ import annotations

import json
from pathlib import Path

import pytest

from waders.core.config import load_config, parse_document, read_json
from waders.core.errors import ConfigError, UnitError, UnknownNameError
from waders.data import PYSIMDAMICM_CONFIGS, path

CONFIGS = path(PYSIMDAMICM_CONFIGS)


def write(tmp_path: Path, data: dict, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


ANALYSIS = {
    "input": {"image": {"n_amp": 1, "id_skip_start": 10, "save_image": True}, "convention": {"Nskips": "NDCM"}},
    "process": {
        "sequence": "MeanOverSkips;RowPedestal;Calibrate",
        "RowPedestal": {"method": "med", "n_sigma_to_mask": 5, "__DEBUG__": False, "units": "informative"},
        "Calibrate": {"gain": {"L": 10.0, "U": 10.7}},
    },
}


def test_pysimdamicm_analysis_layout(tmp_path, registry):
    config = load_config(write(tmp_path, ANALYSIS), kind="analysis", registry=registry)
    assert config.names == ["MeanOverSkips", "RowPedestal", "Calibrate"]  # sequence order
    pedestal = config.configured["RowPedestal"]
    assert pedestal.method == "median"
    assert pedestal.n_sigma_to_mask == 5.0
    assert config.configured["Calibrate"].value_for("gain", "U") == pytest.approx(10.7)
    assert config.input.image.n_amp == 1
    assert config.input.image.save_images is True  # 'save_image' is accepted as an alias
    assert config.input.convention.Nskips == "NDCM"
    assert config.detector.e2eV == pytest.approx(3.74)  # analysis default


def test_sequence_processes_without_a_section_run_with_defaults(registry):
    config = load_config({"process": {"sequence": "MeanOverSkips;Calibrate"}}, kind="analysis", registry=registry)
    assert config.names == ["MeanOverSkips", "Calibrate"]
    assert config.configured["Calibrate"].gain == pytest.approx(10.0)


def test_waders_layout_list_sequence_and_units(registry):
    data = {
        "format": "waders-1",
        "process": {"sequence": ["MeanOverSkips", "RowPedestal"], "RowPedestal": {"n_sigma_to_mask": "3"}},
        "detector": {"ccd_pixel_size_x": "15 um", "e2eV": 3.8},
    }
    config = load_config(data, kind="analysis", registry=registry)
    assert config.detector.ccd_pixel_size_x == pytest.approx(0.015)
    assert config.detector.e2eV == pytest.approx(3.8)
    assert config.configured["RowPedestal"].n_sigma_to_mask == 3.0


def test_unknown_parameter_error_names_file_process_and_fix(tmp_path, registry):
    bad = json.loads(json.dumps(ANALYSIS))
    bad["process"]["RowPedestal"]["n_sigma_to_msk"] = 3
    path = write(tmp_path, bad)
    with pytest.raises(UnknownNameError) as err:
        load_config(path, kind="analysis", registry=registry)
    assert err.value.one_line() == (
        f"{path}: unknown parameter 'n_sigma_to_msk' in RowPedestal (did you mean 'n_sigma_to_mask'?)"
    )


def test_inactive_sections_are_validated_too(registry):
    data = {"process": {"sequence": "MeanOverSkips", "Calibrate": {"gian": 3}}}
    with pytest.raises(UnknownNameError, match="'gian' in Calibrate .*'gain'"):
        load_config(data, kind="analysis", registry=registry)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            {"process": {"sequence": "MeanOverSkip"}},
            UnknownNameError,
            "unknown process 'MeanOverSkip' .*did you mean 'MeanOverSkips'",
        ),
        ({"process": {"sequence": "Smear"}}, ConfigError, "Smear is a simulation process"),
        ({"process": {}}, ConfigError, "process.sequence is missing"),
        ({"process": {"sequence": "Calibrate;Calibrate"}}, ConfigError, "appears twice"),
        ({"process": {"sequence": 3}}, ConfigError, "must be a list"),
        ({"proces": {}, "input": {}}, UnknownNameError, "unknown section 'proces' .*did you mean 'process'"),
        ({"input": {"imag": {}}, "process": {"sequence": ""}}, UnknownNameError, "block 'imag'.*'image'"),
        ({"input": {"image": {"n_amp": 3}}, "process": {"sequence": ""}}, ConfigError, "input.image.n_amp: 3 is above"),
        ({"process": {"sequence": "Calibrate", "Calibrate": {"gain": "10 keV"}}}, UnitError, "wrong unit 'keV'"),
        ({"process": {"sequence": "Calibrate", "Calibrate": {"gain": "ten"}}}, ConfigError, "Calibrate.gain"),
        ({"monitoring_elements": {}}, ConfigError, "this is a dqm configuration"),
    ],
)
def test_bad_analysis_configurations(registry, data, error, message):
    with pytest.raises(error, match=message):
        load_config(data, kind="analysis", registry=registry)


def test_command_line_overrides_win(registry):
    config = load_config(
        ANALYSIS,
        kind="analysis",
        registry=registry,
        overrides=["RowPedestal.method=mean", "Calibrate.gain=12.5", "input.image.n_amp=2", "detector.e2eV=3.75"],
        sequence="MeanOverSkips,RowPedestal",
    )
    assert config.names == ["MeanOverSkips", "RowPedestal"]
    assert config.configured["RowPedestal"].method == "mean"
    assert config.configured["Calibrate"].gain == pytest.approx(12.5)
    assert config.input.image.n_amp == 2
    assert config.detector.e2eV == pytest.approx(3.75)
    with pytest.raises(ConfigError, match="bad --set"):
        load_config(ANALYSIS, kind="analysis", registry=registry, overrides=["RowPedestal.method"])
    with pytest.raises(UnknownNameError, match="'metod' in RowPedestal"):
        load_config(ANALYSIS, kind="analysis", registry=registry, overrides=["RowPedestal.metod=mean"])


SIMULATION = {
    "in_root": {"in_dir_path": ".", "root_file_name": "None"},
    "out_root": {"out_dir_path": ".", "prefix_root_name": "out", "store_pixel_info": 1, "save_CCDimg": 0},
    "detector_response": {
        "Smear": {"A": 216.2, "B": 0.000886, "units": "A:um*um;B:1/um", "active": 1},
        "Pixelize": {"shift_pixel_in_x": 0, "units": "N_pixels_in_x:pixel;shift_pixel_in_x:pixel:broken", "active": 1},
    },
    "reconstruction": {"SignalPatternRecognition": {"method": 1, "threshold": 15, "units": "ADC", "active": 0}},
    "CF": {"ccd_shape": [1000, 4000], "e2eV": 3.77, "ADC2eV": 0.72, "img_exp_time": 1e9, "detector_name": "CCDSensor"},
}


def test_pysimdamicm_simulation_layout(registry):
    config = load_config(SIMULATION, kind="simulation", registry=registry)
    assert config.names == ["Pixelize", "Smear"]  # default order, not file order
    smear = config.configured["Smear"]
    assert pytest.approx(216.2e-6) == smear.A  # mm^2
    assert pytest.approx(0.886) == smear.B  # 1/mm
    assert smear.darkcurrent == pytest.approx(0.001 / 86400)  # e/pixel/s
    assert config.detector.ccd_shape == [1000, 4000]
    assert config.detector.e2eV == pytest.approx(3.77)
    assert config.sections["out_root"].store_pixel_info is True
    assert "SignalPatternRecognition" in config.retired
    out = config.to_dict()
    assert out["detector_response"]["Smear"]["active"] is True
    assert out["detector_response"]["Smear"]["A"] == pytest.approx(216.2)


def test_simulation_activation_and_retired_processes(registry):
    off = json.loads(json.dumps(SIMULATION))
    off["detector_response"]["Smear"]["active"] = 0
    assert load_config(off, kind="simulation", registry=registry).names == ["Pixelize"]
    on = load_config(off, kind="simulation", registry=registry, overrides=["Smear.active=1", "Smear.A=100"])
    assert on.names == ["Pixelize", "Smear"]
    bad = json.loads(json.dumps(SIMULATION))
    bad["reconstruction"]["SignalPatternRecognition"]["active"] = 1
    with pytest.raises(ConfigError, match="no longer exists: merged into ClusterFinder"):
        load_config(bad, kind="simulation", registry=registry)
    bad = json.loads(json.dumps(SIMULATION))
    bad["detector_response"]["Smear"]["active"] = "sometimes"
    with pytest.raises(ConfigError, match="Smear.active"):
        load_config(bad, kind="simulation", registry=registry)


def test_dqm_layout(monitors):
    data = {"monitoring_elements": {"Monitor": {"n_mad": 3, "active": 1}}}
    config = load_config(data, kind="dqm", registry=monitors)
    assert config.names == ["Monitor"]
    assert config.steps[0].n_mad == 3.0
    with pytest.raises(UnknownNameError, match="unknown monitor element 'MEFoo'"):
        load_config({"monitoring_elements": {"MEFoo": {"active": 0}}}, kind="dqm", registry=monitors)


def test_config_round_trips_through_waders_layout(registry):
    config = load_config(ANALYSIS, kind="analysis", registry=registry)
    again = load_config(json.loads(json.dumps(config.to_dict())), kind="analysis", registry=registry)
    assert again.to_dict() == config.to_dict()


def test_file_errors(tmp_path, registry):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json", kind="analysis", registry=registry)
    broken = tmp_path / "broken.json"
    broken.write_text('{"process": {"sequence": "A",}\n}')
    with pytest.raises(ConfigError, match=r"invalid JSON at line 1, column \d+"):
        read_json(broken)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        read_json(listing)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")), ids=lambda p: p.name)
def test_real_pysimdamicm_files_parse(path):
    """Every shipped pysimdamicm file splits into the expected sections and processes.

    (Validation against the real processes is tested in waders-ana, waders-sim and waders-dqm.)
    """
    doc = parse_document(read_json(path), path=path)
    if path.name.startswith("psimul"):
        assert doc.kind == "simulation"
        assert [n for n, s in doc.steps.items() if s.active] == ["PixelizeSignal", "ClusterFinder"]
        assert doc.detector["e2eV"] == 3.77
    elif path.name.startswith("dqm"):
        assert doc.kind == "dqm"
        assert doc.steps["MEFitDC"].active and not doc.steps["MEDefectsMask"].active
    else:
        assert doc.kind == "analysis"
        assert doc.sequence and doc.sequence[0] == "CompressSkipperProcess"
        assert all(doc.steps[name].active for name in doc.sequence)
        assert "image" in doc.input


def test_inactive_pysimdamicm_sections_of_processes_not_installed_are_skipped(registry, caplog):
    data = {"process": {"sequence": "MeanOverSkips", "TwoDGaussProcess": {"theta": 46.0}}}
    config = load_config(data, kind="analysis", registry=registry)
    assert config.names == ["MeanOverSkips"]
    assert config.retired == {"TwoDGaussProcess": "not installed"}
    assert "TwoDGaussProcess skipped" in caplog.text
    with pytest.raises(UnknownNameError, match="unknown process 'TwoDGaussProcess' in the sequence"):
        load_config({"process": {"sequence": "TwoDGaussProcess"}}, kind="analysis", registry=registry)
    with pytest.raises(UnknownNameError, match="unknown process 'TwoDGausProcess'"):  # a typo is still an error
        load_config(
            {"process": {"sequence": "MeanOverSkips", "TwoDGausProcess": {}}}, kind="analysis", registry=registry
        )
