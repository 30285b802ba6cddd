from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import requires


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=120)


def test_dqm_depends_on_ana_and_is_a_waders_command():
    declared = {re.split(r"[<>=!~;\[ ]", r)[0] for r in requires("waders-dqm")}  # "waders-core<0.2,>=0.1.0"
    assert {"waders-core", "waders-io", "waders-ana"} <= declared
    commands = waders("--help").stdout.split("Commands:")[1]
    assert "  dqm " in commands
    assert "  ana " in commands  # installed as a dependency


def test_list_monitors_and_check(tmp_path):
    result = waders("dqm", "--list-monitors")
    assert result.returncode == 0
    assert result.stdout.strip()
    config = tmp_path / "me.json"
    config.write_text(json.dumps({"monitoring_elements": {"MENoSuchElement": {"active": 1}}}))
    result = waders("dqm", "check", str(config))
    assert result.returncode == 2
    assert "unknown monitor element 'MENoSuchElement'" in result.stderr
