from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import requires

import pytest


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=120)


def test_ana_does_not_depend_on_sim_or_dqm():
    declared = {re.split(r"[<>=!~;\[ ]", r)[0] for r in requires("waders-ana")}
    assert {"waders-core", "waders-io"} <= declared
    assert not declared & {"waders-sim", "waders-dqm"}


def test_ana_is_a_waders_command():
    result = waders("--help")
    assert "  ana " in result.stdout.split("Commands:")[1]
    help_text = waders("ana", "--help").stdout
    for option in ("--json", "--sequence", "--set", "--list-processes", "--check"):
        assert option in help_text


def test_list_processes_lists_what_is_installed():
    result = waders("ana", "--list-processes")
    assert result.returncode == 0
    assert result.stdout.strip()


def test_check_validates_and_reports_errors_on_one_line(tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"process": {"sequence": []}}))
    assert waders("ana", "--json", str(config), "--check").returncode == 0
    config.write_text(json.dumps({"process": {"sequence": "NoSuchProcess"}}))
    result = waders("ana", "--json", str(config), "--check")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {config}: unknown process 'NoSuchProcess' in the sequence")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "missing.json", "--check"], "configuration file missing.json does not exist"),
        (["--check", "--set", "nonsense"], "bad --set 'nonsense'"),
        (["--list-processes", "NoSuchProcess"], "unknown process 'NoSuchProcess'"),
    ],
)
def test_bad_command_lines(args, message):
    result = waders("ana", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_help_examples_keep_their_lines():
    """The Examples block of the help is printed line by line (click's \\b marker, not a literal '\\b')."""
    out = waders("ana", "--help").stdout
    assert "\\b" not in out
    assert "\n  Examples (in a folder where 'waders example-data .' was run):\n    waders ana -o out/" in out
    assert "PedestalSubtractionProcess \\\n        --set PedestalSubtractionProcess.method=median" in out
