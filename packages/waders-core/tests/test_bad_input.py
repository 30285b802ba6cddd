"""Bad input at the core: names reaching paths, non-regular files, broken configurations, physics values."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waders.core.config import read_json
from waders.core.errors import ConfigError, InputFileError, WadersError, failure_message
from waders.core.kinds import Float, Int
from waders.core.parameters import Configurable, Param
from waders.core.paths import check_regular_file, inside, read_text_bounded, safe_name, unique_stems
from waders.core.testing import assert_clean_outcome, property_settings, run_cli


# --- names that reach file paths --------------------------------------------------------------------------
@property_settings(max_examples=300)
@given(name=st.text(max_size=300))
def test_safe_name_is_one_harmless_path_component(tmp_path_factory, name):
    safe = safe_name(name)
    assert safe and len(safe) <= 120
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".")  # neither hidden nor '..'
    folder = tmp_path_factory.getbasetemp()
    assert inside(folder / safe / "x.png", folder)


def test_safe_name_keeps_ordinary_names():
    assert [safe_name(n) for n in ("CCD_A", "L", "EXT1", "run-12.b")] == ["CCD_A", "L", "EXT1", "run-12.b"]
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("..") == "unnamed"


def test_colliding_output_stems_are_found():
    paths = [Path("a/img_1.fits"), Path("b/img_1.fits.fz"), Path("a/img_2.fits")]
    assert unique_stems(paths) == {"img_1": [paths[0], paths[1]]}


# --- inputs that cannot be read with a bound --------------------------------------------------------------
def test_pipes_devices_and_folders_are_refused(tmp_path):
    pipe = tmp_path / "cfg.json"
    os.mkfifo(pipe)
    with pytest.raises(InputFileError, match="named pipe, not a regular file"):
        check_regular_file(pipe)
    with pytest.raises(InputFileError, match="device or socket"):
        check_regular_file("/dev/zero")
    with pytest.raises(InputFileError, match="is a directory"):
        check_regular_file(tmp_path)
    with pytest.raises(ConfigError, match="named pipe"):  # a configuration given as a pipe does not hang
        read_json(pipe)


def test_binary_deep_and_oversized_configurations(tmp_path):
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"binary\.json: not UTF-8 text"):
        read_json(binary)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match=r"deep\.json: JSON nested"):
        read_json(deep)
    nested = tmp_path / "nested.json"
    nested.write_text('{"a": ' * 40 + "1" + "}" * 40)
    with pytest.raises(ConfigError, match="nested deeper than 32 levels"):
        read_json(nested)
    with pytest.raises(InputFileError, match="too large"):
        read_text_bounded(binary, "a configuration", limit=100)


# --- one error path -----------------------------------------------------------------------------------------
def test_failure_messages_name_the_file_and_keep_bugs_apart(tmp_path):
    named = failure_message(WadersError("amplifier L has an invalid pedestal noise"), tmp_path / "img_3.fits")
    assert named.startswith(f"{tmp_path / 'img_3.fits'}: amplifier L")
    already = failure_message(InputFileError(f"{tmp_path}/x.fits: truncated"), f"{tmp_path}/x.fits")
    assert already.count("x.fits") == 1
    disk = failure_message(OSError(28, "No space left on device", str(tmp_path / "out.root")), "in.root")
    assert "in.root: cannot read or write" in disk and "No space left on device" in disk
    bug = failure_message(ZeroDivisionError("division by zero"), "in.fits")
    assert "internal error ZeroDivisionError" in bug and "a bug in waders" in bug


# --- a read command must not write ------------------------------------------------------------------------
def test_conditions_list_does_not_touch_other_sqlite_files(tmp_path):
    store = tmp_path / "dqm.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE runs (run INTEGER PRIMARY KEY)")
    before = store.read_bytes()
    outcome = run_cli(["conditions", "list", "--db", str(store)])
    assert_clean_outcome(outcome, [str(store)])
    assert outcome.code == 2 and "not a conditions database" in outcome.errors[0]
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dqm.sqlite"]  # no journal, no new table


# --- physics values in declared parameters (issue 12) -----------------------------------------------------
class _Example(Configurable):
    gain = Param(10.0, Float(positive=True), unit="ADU/e", doc="conversion factor")
    n_sigma = Param(-1.0, doc="plain float: finite by default")
    skips = Param(1, Int(positive=True), doc="a count")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gain", 0, "must be greater than 0"),
        ("gain", -2.5, "must be greater than 0"),
        ("gain", math.inf, "expected a finite number"),
        ("gain", math.nan, "expected a finite number"),
        ("n_sigma", math.nan, "expected a finite number"),
        ("n_sigma", -math.inf, "expected a finite number"),
        ("skips", 0, "must be greater than 0"),
        ("skips", math.nan, "expected a positive integer"),
    ],
)
def test_declared_parameters_refuse_non_physical_values(key, value, message):
    with pytest.raises(ConfigError, match=message):
        _Example(**{key: value})


def test_positive_kinds_describe_themselves():
    assert Float(positive=True).description == "a positive number"
    assert Int(positive=True).description == "a positive integer"
    assert _Example(gain="20 ADU/e").gain == pytest.approx(20.0)


def test_nan_in_a_configuration_file_is_an_error(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text('{"detector": {"e2eV": NaN}}')
    data = read_json(path)
    assert math.isnan(data["detector"]["e2eV"])  # JSON as Python reads it ...
    from waders.core.detector import Detector

    with pytest.raises(ConfigError, match=r"e2eV: expected a finite number"):  # ... refused where it is used
        Detector.from_mapping(data["detector"])
    with pytest.raises(ConfigError, match=r"e2eV: must be greater than 0"):
        Detector.from_mapping(json.loads('{"e2eV": 0}'))
