from __future__ import annotations

import json
import subprocess
import sys


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=120)


def test_sim_is_a_waders_command():
    assert "  sim " in waders("--help").stdout.split("Commands:")[1]
    help_text = waders("sim", "--help").stdout
    for option in ("--json", "--set", "--list-processes", "--check"):
        assert option in help_text


def test_check_rejects_unknown_sections_and_processes(tmp_path):
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"detector_response": {}, "CF": {"e2eV": 3.77}}))
    result = waders("sim", "--json", str(config), "--check")
    assert result.returncode == 2  # the run would refuse an empty chain, so --check does too
    assert "no simulation process is active" in result.stderr
    active = {"PixelizeSignal": {"active": 1}}
    config.write_text(json.dumps({"detector_response": active, "reconstruction": {"ClusterFinder": {"active": 1}}}))
    result = waders("sim", "--json", str(config), "--check")
    assert result.returncode == 0, result.stderr
    config.write_text(json.dumps({"detector_respons": {}}))
    result = waders("sim", "--json", str(config), "--check")
    assert result.returncode == 2
    assert "unknown section 'detector_respons'" in result.stderr
    config.write_text(json.dumps({"detector_response": {"NoSuchStep": {"active": 1}}}))
    result = waders("sim", "--json", str(config), "--check")
    assert result.returncode == 2
    assert "unknown process 'NoSuchStep'" in result.stderr
    config.write_text(json.dumps({"detector_response": {}, "CF": {"ccd_thickness": "675 s"}}))
    result = waders("sim", "--json", str(config), "--check")
    assert result.returncode == 2
    assert "detector.ccd_thickness: wrong unit 's'" in result.stderr
