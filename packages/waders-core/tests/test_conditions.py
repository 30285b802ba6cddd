from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from waders.core.conditions import ConditionsDB, Constant, Validity
from waders.core.errors import ConfigError, InputFileError


def gain(value, runs=None, amplifier="L", **times):
    return Constant("6414", amplifier, "gain", value, 0.01, "ADU/e", validity=Validity.parse_runs(runs, **times))


def test_newest_deployment_wins_where_validities_overlap_and_history_is_kept(tmp_path):
    db = ConditionsDB(tmp_path / "c.sqlite")
    db.deploy([gain(10.0, "1:100")])
    plan = db.deploy([gain(10.4, "50:")])
    assert plan[0]["overrides"] == [1]
    assert db.get("gain", "6414", "L", run=20).value == 10.0
    assert db.get("gain", "6414", "L", run=60).value == 10.4
    assert db.get("gain", "6414", "L", run=500).value == 10.4
    assert [c.value for c in db.history("gain", "6414", "L")] == [10.0, 10.4]  # never deleted
    with pytest.raises(ConfigError, match="no gain constant for detector 6414, amplifier L valid at run 0"):
        db.get("gain", "6414", "L", run=0)


def test_dry_run_writes_nothing(tmp_path):
    db = ConditionsDB(tmp_path / "c.sqlite")
    assert db.deploy([gain(10.0, "1:")], dry_run=True)[0]["overrides"] == []
    assert not db.path.exists()
    db.deploy([gain(10.0, "1:")])
    plan = db.deploy([gain(11.0, "5:9")], dry_run=True)
    assert plan[0]["overrides"] == [1]
    assert [c.value for c in db.list()] == [10.0]


def test_time_validity_aliases_and_all_amplifier_entries(tmp_path):
    db = ConditionsDB(tmp_path / "c.sqlite")
    db.deploy([gain(1.30, amplifier="*", time_min="2025-01-01T00:00:00", time_max="2025-06-01")])
    db.deploy([gain(1.35, amplifier="EXT1", time_min="2025-01-01T00:00:00")])
    # an amplifier known as CCD_A (pysimdamicm's EXT1) gets its own constant, others the '*' one
    assert db.get("gain", "6414", ("CCD_A", "EXT1"), when="2025-03-01T10:00:00").value == 1.35
    assert db.get("gain", "6414", ("CCD_B", "EXT2"), when="2025-03-01T10:00:00").value == 1.30
    with pytest.raises(ConfigError, match="valid at any run, 2025-07-01"):
        db.get("gain", "6414", ("CCD_B",), when="2025-07-01T00:00:00")


def test_array_constants_are_checksummed(tmp_path):
    db = ConditionsDB(tmp_path / "c.sqlite")
    mask = np.zeros((4, 5), dtype=np.uint8)
    mask[1, 2] = 1
    db.deploy([Constant("6414", "L", "bad_pixel_mask", array=mask, validity=Validity(1, None))])
    assert np.array_equal(db.get("bad_pixel_mask", "6414", "L", run=3).array, mask)
    with sqlite3.connect(db.path) as raw:  # corrupt the stored blob
        raw.execute("UPDATE constants SET blob = ? WHERE id = 1", (b"garbage",))
    with pytest.raises(InputFileError, match="fails its checksum"):
        db.get("bad_pixel_mask", "6414", "L", run=3)


def test_bad_validity_and_missing_database(tmp_path):
    with pytest.raises(ConfigError, match="reversed"):
        Validity(10, 5)
    with pytest.raises(ConfigError, match="bad run range"):
        Validity.parse_runs("a:b")
    with pytest.raises(InputFileError, match="does not exist"):
        ConditionsDB(tmp_path / "missing.sqlite").get("gain", "1", "L", run=1)


def test_command_line(tmp_path):
    db = tmp_path / "c.sqlite"

    def waders(*args):
        return subprocess.run([sys.executable, "-m", "waders.core", "conditions", *args, "--db", str(db)],
                              capture_output=True, text=True)  # fmt: skip

    ok = waders("deploy", "--type", "gain", "--detector", "1", "--amplifier", "L", "--value", "9.5", "--runs", "1:10")
    assert ok.returncode == 0, ok.stderr
    assert "deployed #1 1/L gain = 9.5" in ok.stdout
    assert "overrides #1" in waders("deploy", "--type", "gain", "--detector", "1", "--amplifier", "L",
                                    "--value", "10", "--runs", "5:").stdout  # fmt: skip
    assert "gain = 10" in waders("get", "--type", "gain", "--detector", "1", "--amplifier", "L", "--run", "7").stdout
    missing = waders("get", "--type", "gain", "--detector", "1", "--amplifier", "U", "--run", "7")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no gain constant for detector 1, amplifier U")
    assert len(waders("history", "--type", "gain", "--detector", "1").stdout.splitlines()) == 2
