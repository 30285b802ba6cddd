"""waders sim on bad Geant4 input and options: one-line errors, no internal error, no silent overwrite."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from waders.core.hits import HitCollection
from waders.core.testing import assert_clean_outcome, property_settings, run_cli
from waders.io.root import describe_root, write_geant4

PITCH = 0.015  # mm
#: A value put into a Geant4 branch: corrupt files, wrong units, hits outside the CCD.
BRANCH_VALUES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e15, 1e300, -5.0, 5.0, 0.3, 1e-300]),
    st.floats(-10.0, 10.0),
)


def _config(directory: Path, diffusion: bool = True) -> Path:
    config = {
        "detector_response": {"PixelizeSignal": {"active": 1}, "Diffusion": {"active": int(diffusion)}},
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
        "CF": {"ccd_shape": [200, 300], "e2eV": 3.77, "ccd_thickness": 0.675},
    }
    path = directory / "sim.json"
    path.write_text(json.dumps(config))
    return path


def _hits(n_events: int = 4, **changes: list[float]) -> dict[str, np.ndarray]:
    n = n_events
    hits = {
        "x": np.full(n, 50.5 * PITCH), "y": np.full(n, 40.5 * PITCH), "z": np.full(n, 0.3),
        "time": np.zeros(n), "edep": np.full(n, 2000.0), "ccd": np.ones(n, dtype=np.int32),
        "pdg": np.full(n, 11, dtype=np.int32),
    }  # fmt: skip
    for name, values in changes.items():
        hits[name] = np.asarray(values, dtype=float)
    return hits


def _write(path: Path, hits: dict[str, np.ndarray]) -> Path:
    n = hits["x"].size
    write_geant4(path, HitCollection.from_arrays(np.arange(n), np.ones(n, int), hits), run_info={"NEvts": n})
    return path


@property_settings(max_examples=20)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(["x", "y", "z", "edep", "time"]), st.integers(0, 3), BRANCH_VALUES),
        min_size=1,
        max_size=3,
    ),
    image=st.booleans(),
)
def test_mutated_geant4_branches_never_give_an_internal_error(changes, image):
    hits = _hits()
    for branch, index, value in changes:
        hits[branch][index] = value
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        g4 = _write(directory / "g4.root", hits)
        args = ["sim", "--json", str(_config(directory)), "--g4file", str(g4), "-o", str(directory / "out")]
        outcome = run_cli([*args, "--image"] if image else args, timeout=60)
    assert_clean_outcome(outcome, [str(g4)])


@pytest.mark.parametrize(
    ("branch", "value", "message"),
    [
        ("edep", -1.0, "edep = -1"),
        ("edep", math.nan, "edep = nan"),
        ("edep", math.inf, "edep = inf"),  # issue 12: clusters with Energy = inf were written
        ("z", math.nan, "z = nan"),
        ("time", 1e300, "time = 1e+300"),  # the time spread of a pixel squares it
        ("edep", 1e15, "more than the 5e+08"),  # used to try to allocate petabytes
    ],
)
def test_corrupt_hits_are_errors_naming_file_and_event(tmp_path, branch, value, message):
    values = list(_hits()[branch])
    values[2] = value
    g4 = _write(tmp_path / "g4.root", _hits(**{branch: values}))
    outcome = run_cli(["sim", "--json", str(_config(tmp_path)), "--g4file", str(g4), "-o", str(tmp_path / "out")])
    assert_clean_outcome(outcome, [str(g4)])
    assert outcome.code == 2 and message in outcome.errors[0] and "event 2" in outcome.errors[0]
    assert not list((tmp_path / "out").glob("*.root")) if (tmp_path / "out").exists() else True


def test_hits_outside_the_thickness_are_dropped_and_counted(tmp_path):
    g4 = _write(tmp_path / "g4.root", _hits(z=[5.0, 0.3, -1.0, 0.3]))
    outcome = run_cli(["sim", "--json", str(_config(tmp_path)), "--g4file", str(g4), "-o", str(tmp_path / "out")])
    assert outcome.code == 0, outcome.stderr
    assert "hits outside the CCD thickness (dropped): 2" in outcome.stdout
    assert "4 events read, 2 simulated" in outcome.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "15:3"], "selects no event"),
        (["--events", "2:2"], "selects no event"),
        (["--events", "10:20"], "the file has 4 entries"),
        (["--events", "-2:"], "entries are counted from 0"),
        (["--chunk-size", "0"], "--chunk-size"),
    ],
)
def test_empty_event_ranges_do_not_replace_a_good_output(tmp_path, args, message):
    g4 = _write(tmp_path / "g4.root", _hits())
    base = ["sim", "--json", str(_config(tmp_path)), "--g4file", str(g4), "-o", str(tmp_path / "out")]
    assert run_cli(base).code == 0
    (output,) = (tmp_path / "out").glob("*.root")
    good = output.read_bytes()
    outcome = run_cli([*base, *args])
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and message in outcome.errors[0]
    assert output.read_bytes() == good


def test_two_inputs_with_the_same_name_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _write(tmp_path / folder / "g4.root", _hits())
    out = tmp_path / "out"
    outcome = run_cli(
        ["sim", "--json", str(_config(tmp_path)), "--g4file", str(tmp_path / "a" / "g4.root"),
         "--g4file", str(tmp_path / "b" / "g4.root"), "-o", str(out)]
    )  # fmt: skip
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and "would both be written to" in outcome.errors[0]
    assert not out.exists()


def test_a_zero_pair_energy_is_an_error(tmp_path):
    g4 = _write(tmp_path / "g4.root", _hits())
    outcome = run_cli(
        ["sim", "--json", str(_config(tmp_path)), "--set", "CF.e2eV=0", "--g4file", str(g4), "-o", str(tmp_path)]
    )
    assert outcome.code == 2 and "e2eV: must be greater than 0" in outcome.errors[0]


def test_output_folder_in_proc(tmp_path):
    g4 = _write(tmp_path / "g4.root", _hits())
    outcome = run_cli(["sim", "--json", str(_config(tmp_path)), "--g4file", str(g4), "-o", "/proc/waders_sim_out"])
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and "/proc/waders_sim_out" in outcome.errors[0]
    assert describe_root(g4)["format"] == "root"
