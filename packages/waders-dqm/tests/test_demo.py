"""waders demo: the example runs end to end and its numbers agree with the simulated truth."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from waders.dqm.demo import TRUTH, make_demo_input, run_demo


def test_the_shipped_input_is_the_documented_generator(tmp_path):
    from waders.data import GEANT4_DEMO, path
    from waders.io import read_geant4

    shipped = read_geant4(path(GEANT4_DEMO))
    again = read_geant4(make_demo_input(tmp_path / "again.root"))
    assert shipped.events.tolist() == again.events.tolist()


def test_demo_gives_back_the_truth(tmp_path):
    lines: list[str] = []
    result = run_demo(tmp_path / "example", seed=1, echo=lines.append)
    measured = result["measured"]
    # 3 images x 2 amplifiers x 600k pixels: statistical errors far below these tolerances
    assert measured["gain_adu_per_e"] == pytest.approx(TRUTH["gain_adu_per_e"], rel=0.01)
    assert measured["sigma_e"] == pytest.approx(TRUTH["sigma_e"], rel=0.03)
    # the 1-e- diffusion tails of the 300 simulated clusters add a few per cent to the dark current
    assert TRUTH["lambda_e_per_pixel"] <= measured["lambda_e_per_pixel"] < 1.06 * TRUTH["lambda_e_per_pixel"]
    assert measured["xray_kev"] == pytest.approx(TRUTH["xray_kev"], rel=0.02)
    assert result["n_xray_clusters"] >= 140  # 150 X-rays; a few overlap or leave the active area
    for path in result["outputs"].values():
        assert Path(path).exists(), path
    assert any("Fe-55 peak" in line for line in lines)
    # the monitoring of the run agrees: its quality tests pass (the fit chi2 is judged for its degrees of
    # freedom over the bins where the model applies; see waders.dqm.monitor.histogram_chi2)
    assert result["dqm_status"] == "pass", result["dqm_reasons"]
    assert "DQM verdict of run 1: PASS" in lines
    # the configurations it used are beside the outputs and its printed commands redo the steps
    commands = result["commands"]
    assert [f"  {c}" for c in commands] == lines[-4:-1]
    again = tmp_path / "again"
    sim_command = commands[0].replace(f"-o {tmp_path / 'example' / 'sim'}", f"-o {again}")
    rerun = subprocess.run([sys.executable, "-m", "waders.core", *shlex.split(sim_command)[1:]], capture_output=True)
    assert rerun.returncode == 0, rerun.stderr
    for image in sorted((tmp_path / "example" / "sim").glob("*.fits")):
        assert (again / image.name).read_bytes() == image.read_bytes()
    check = [sys.executable, "-m", "waders.core", "ana", "--json", str(tmp_path / "example" / "ana.json"), "--check"]
    assert subprocess.run(check, capture_output=True).returncode == 0


def test_demo_command_line():
    with tempfile.TemporaryDirectory() as directory:
        result = subprocess.run(
            [sys.executable, "-m", "waders.core", "demo", "--help"], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0
        assert "Simulate, analyse and monitor" in result.stdout
        assert Path(directory).exists()
