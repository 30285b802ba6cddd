"""ContinuousReadout: charge collected at time t moves floor((t - t0) / pixel_read_time) rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.core.detector import Detector
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.data import PYSIMDAMICM_CONFIGS
from waders.data import path as data_path
from waders.sim.diffusion import Diffusion
from waders.sim.events import SimEvents
from waders.sim.pixelize import PixelizeSignal
from waders.sim.random import CounterRNG
from waders.sim.readout import ContinuousReadout

CONFIGS = data_path(PYSIMDAMICM_CONFIGS)
PITCH = 0.015
READ = 0.001  # s/pixel


def make_data(times: np.ndarray, row: float = 10.5, col: float = 20.5) -> SimEvents:
    n = len(times)
    hits = {
        "x": np.full(n, col * PITCH),
        "y": np.full(n, row * PITCH),
        "z": np.full(n, 0.2),
        "edep": np.full(n, 377.0),
        "time": np.asarray(times, dtype=float),
        "ccd": np.ones(n, dtype=np.int32),
        "pdg": np.full(n, 11, dtype=np.int32),
    }
    collection = HitCollection.from_arrays(np.arange(n), np.ones(n, dtype=np.int64), hits)
    return SimEvents(collection, CounterRNG(1), Detector(ccd_shape=[100, 200], e2eV=3.77))


def run(data: SimEvents, *processes) -> dict[str, np.ndarray]:
    context = RunContext(seed=1, detector=data.detector)
    for process in processes:
        process.run(data, context)
    assert data.pixels is not None
    return data.pixels


def test_pysimdamicm_section_loads():
    config = json.loads((CONFIGS / "psimulCCDimg_config_file.json").read_text())
    section = {
        k: v for k, v in config["detector_response"]["ContinuousReadout"].items() if k not in ("active", "units")
    }
    process = ContinuousReadout.from_mapping(section)
    assert process.pixel_read_time == 0.001 and process.ampli == 4 and process.t0 == 0.0


def test_deposits_move_by_the_pixels_read_before_collection():
    """t = k * read time and t = (k + 0.5) * read time both move the charge by k rows."""
    k = np.arange(6)
    times = np.concatenate([k * READ, (k + 0.5) * READ])
    data = make_data(times)
    original = data.hits
    pixels = run(data, ContinuousReadout(pixel_read_time=READ), PixelizeSignal())
    assert np.array_equal(pixels["row"], 10 + np.r_[k, k])
    assert np.array_equal(pixels["col"], np.full(12, 20))
    assert data.results["ContinuousReadout"]["max_shift_pixels"] == 5
    assert np.array_equal(data.hits.events.y.to_numpy().ravel(), data.flat_hits()["y"])  # hits and flat agree
    assert np.allclose(original.events.y.to_numpy().ravel(), 10.5 * PITCH)  # the caller's collection is untouched


def test_carriers_move_with_the_time_of_their_deposit():
    times = np.array([0.0, 2.2 * READ, 7.0 * READ])
    data = make_data(times)
    pixels = run(data, Diffusion(only_pair_creation=1), ContinuousReadout(pixel_read_time=READ), PixelizeSignal())
    assert pixels["row"].tolist() == [10, 12, 17]
    assert pixels["charge"].sum() == data.carriers["x"].size
    assert np.allclose(data.flat_hits()["y"], 10.5 * PITCH)  # deposits stay; the carriers moved


def test_t0_and_charge_pushed_out_of_the_ccd():
    """Before t0 the shift is negative; charge moved beyond the CCD is counted by PixelizeSignal."""
    data = make_data(np.array([0.5, 1.0, 1.2]), row=10.5)
    pixels = run(data, ContinuousReadout(pixel_read_time=READ, t0=1.0), PixelizeSignal())
    assert pixels["row"].tolist() == [10]
    assert data.killed.tolist() == [True, False, True]  # -500 rows and +200 rows leave the 100-row CCD
    assert data.counters["charge outside the CCD (e-)"] == 200


def test_zero_read_time_does_nothing():
    data = make_data(np.array([5.0]))
    pixels = run(data, ContinuousReadout(pixel_read_time=0.0), PixelizeSignal())
    assert pixels["row"].tolist() == [10]


@pytest.mark.parametrize("value", ["1 ms/pixel", 0.001])
def test_read_time_units(value):
    assert ContinuousReadout(pixel_read_time=value).pixel_read_time == pytest.approx(0.001)
