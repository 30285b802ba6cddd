"""A third-party package adds a process and a command, with no change to waders."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "plugin_example"

RUN_FROM_CONFIG = r"""
import json, sys
import numpy as np
from waders.core import Pipeline, RunContext, SkipperImage, load_config

rng = np.random.default_rng(3)
charge = (rng.random((20, 30)) < 0.1) * 50.0          # 10 % of pixels carry 50 ADU
raw = charge[:, :, None] + rng.normal(0, 1.0, (20, 30, 16))
image = SkipperImage.from_arrays({"A": raw})
config = load_config(sys.argv[1], kind="analysis")
Pipeline.from_config(config).run(image, RunContext(seed=1))
print(json.dumps({"n_above": image["A"].results["LabPixelsAbove"]["n_above"], "truth": int((charge > 0).sum())}))
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """Install the example plug-in with pip into a private directory."""
    if importlib.util.find_spec("pip") is None or importlib.util.find_spec("hatchling") is None:
        pytest.fail("the test extra of waders-core (pip, hatchling) must be installed to run the plug-in test")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "waders_lab_example").is_dir()
    return target


def run(plugin_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(plugin_path))
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)


def test_plugin_process_runs_from_a_configuration(plugin_path, tmp_path):
    config = tmp_path / "lab.json"
    config.write_text(
        json.dumps({"process": {"sequence": "LabMean;LabPixelsAbove", "LabPixelsAbove": {"threshold": 25}}})
    )
    result = run(plugin_path, "-c", RUN_FROM_CONFIG, str(config))
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts["n_above"] == counts["truth"] > 0


def test_plugin_parameters_are_validated(plugin_path, tmp_path):
    config = tmp_path / "lab.json"
    config.write_text(json.dumps({"process": {"sequence": "LabPixelsAbove", "LabPixelsAbove": {"treshold": 1}}}))
    result = run(plugin_path, "-c", RUN_FROM_CONFIG, str(config))
    assert result.returncode != 0
    assert "unknown parameter 'treshold' in LabPixelsAbove (did you mean 'threshold'?)" in result.stderr


def test_plugin_command_appears_in_waders(plugin_path):
    help_text = run(plugin_path, "-m", "waders.core", "--help")
    assert help_text.returncode == 0
    assert "lab" in help_text.stdout.split("Commands:")[1]
    result = run(plugin_path, "-m", "waders.core", "lab")
    assert result.returncode == 0 and result.stdout.strip() == "hello from the lab"
