"""PixelizeSignal: pixel edges, CCD bounds, per-pixel statistics, flags, conservation, chunking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.core.detector import Detector
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.data import PYSIMDAMICM_CONFIGS
from waders.data import path as data_path
from waders.io.root import iter_geant4, write_geant4
from waders.sim.diffusion import Diffusion
from waders.sim.events import PIXEL_FIELDS, SimEvents
from waders.sim.pixelize import PixelizeSignal
from waders.sim.random import CounterRNG

CONFIGS = data_path(PYSIMDAMICM_CONFIGS)
E2EV = 3.77
PITCH = 0.015
ROWS, COLS = 100, 200


def detector(**kw) -> Detector:
    return Detector(**{"ccd_shape": [ROWS, COLS], "e2eV": E2EV, **kw})


def make_data(x, y, z=None, edep=None, *, counts=None, event_id=None, time=None, ccd=None, pdg=None, seed=1, det=None):
    n = len(x)
    counts = np.ones(n, dtype=np.int64) if counts is None else np.asarray(counts)
    event_id = np.arange(len(counts)) if event_id is None else np.asarray(event_id)
    hits = {
        "x": np.asarray(x, dtype=float),
        "y": np.asarray(y, dtype=float),
        "z": np.full(n, 0.1) if z is None else np.asarray(z, dtype=float),
        "edep": np.full(n, 1000.0) if edep is None else np.asarray(edep, dtype=float),
        "time": np.zeros(n) if time is None else np.asarray(time, dtype=float),
        "ccd": np.ones(n, dtype=np.int32) if ccd is None else np.asarray(ccd, dtype=np.int32),
        "pdg": np.full(n, 11, dtype=np.int32) if pdg is None else np.asarray(pdg, dtype=np.int32),
    }
    return SimEvents(HitCollection.from_arrays(event_id, counts, hits), CounterRNG(seed), det or detector())


def run(data: SimEvents, *processes) -> dict[str, np.ndarray]:
    context = RunContext(seed=1, detector=data.detector)
    for process in processes or (PixelizeSignal(),):
        process.run(data, context)
    assert data.pixels is not None
    return data.pixels


def test_pysimdamicm_section_loads():
    config = json.loads((CONFIGS / "psimulCCDimg_config_file.json").read_text())
    section = {k: v for k, v in config["detector_response"]["PixelizeSignal"].items() if k not in ("active", "units")}
    process = PixelizeSignal.from_mapping(section)
    assert process.shift_pixel_in_x == 0 and process.shift_pixel_in_y == 0
    data = make_data([0.0], [0.0], det=Detector(ccd_shape=[1000, 4000], ccd_pixel_size_x=0.01))
    assert process.geometry(data) == (4000, 1000, 0.01, 0.015)  # ccd_shape is [rows, cols]


def test_pixel_edges_and_ccd_bounds():
    """x = k * pitch is in pixel k; the CCD is [0, N); negative coordinates are outside and counted."""
    k = np.arange(COLS)
    # events COLS.. : at the upper edge (out), 1 nm below it (in), -1e-12 mm, -half a pixel, y at the upper edge (out)
    x = np.concatenate([k * PITCH, [COLS * PITCH, COLS * PITCH - 1e-6, -1e-12, -0.5 * PITCH, 0.0]])
    y = np.concatenate([(k % ROWS) * PITCH, [0.0, 0.0, 0.0, 0.0, ROWS * PITCH]])
    data = make_data(x, y, edep=np.full(x.size, 37.7))
    pixels = run(data)
    assert np.array_equal(pixels["event"], np.r_[k, COLS + 1])
    assert np.array_equal(pixels["col"], np.r_[k, COLS - 1])
    assert np.array_equal(pixels["row"], np.r_[k % ROWS, 0])
    assert np.flatnonzero(data.killed).tolist() == [COLS, COLS + 2, COLS + 3, COLS + 4]
    assert data.counters["no pixel inside the CCD"] == 4
    assert data.counters["charge outside the CCD (e-)"] == 40  # four deposits of 10 e-
    assert data.counters["events with charge outside the CCD"] == 4
    outside = data.results["PixelizeSignal"]["charge_outside_e"]
    assert np.allclose(outside, np.r_[np.zeros(COLS), [10.0, 0.0, 10.0, 10.0, 10.0]])


def test_pixel_edges_for_carriers():
    """The same edges through Diffusion(only_pair_creation): every carrier sits on its deposit."""
    k = np.arange(0, COLS, 7)
    x = np.concatenate([k * PITCH, [-1e-12, COLS * PITCH]])
    y = np.concatenate([(k % ROWS) * PITCH, [0.0, 0.0]])
    data = make_data(x, y, edep=np.full(x.size, 377.0))
    pixels = run(data, Diffusion(only_pair_creation=1), PixelizeSignal())
    assert np.array_equal(pixels["col"], k)
    assert np.array_equal(pixels["row"], k % ROWS)
    carriers_out = np.bincount(data.carriers["hit"], minlength=x.size)[-2:].sum()
    assert data.counters["charge outside the CCD (e-)"] == carriers_out


def test_total_charge_is_the_deposited_energy_within_fano_statistics():
    """All charge inside: sum of pixel charge ~ Normal(sum E/e2eV, sqrt(F sum E/e2eV))."""
    rng = np.random.default_rng(6)
    n = 300
    edep = rng.uniform(100, 10_000, n)
    data = make_data(rng.uniform(0.5, 2.5, n), rng.uniform(0.5, 1.0, n), rng.uniform(0, 0.6, n), edep, counts=[n])
    pixels = run(data, Diffusion(fanofactor=0.12), PixelizeSignal())
    mean = edep.sum() / E2EV
    assert "charge outside the CCD (e-)" not in data.counters
    assert abs(pixels["charge"].sum() - mean) < 5 * np.sqrt(0.12 * mean)
    assert pixels["edep"].sum() == pytest.approx(edep.sum(), rel=1e-12)  # every deposit made carriers


def test_shift_and_explicit_geometry():
    data = make_data([10 * PITCH, 3 * PITCH], [20 * PITCH, 40 * PITCH])
    process = PixelizeSignal(shift_pixel_in_x=5, shift_pixel_in_y=15, N_pixels_in_y=20)
    pixels = run(data, process)
    assert pixels["col"].tolist() == [5] and pixels["row"].tolist() == [5]  # second hit: col -2, outside
    assert data.killed.tolist() == [False, True]


def test_deposits_statistics_without_diffusion():
    """Edep sum, charge = rint(Edep/e2eV), mean depth, energy-weighted time, std of times."""
    x = np.array([5.2, 5.7, 5.9, 8.5]) * PITCH
    y = np.array([3.5, 3.1, 3.9, 3.5]) * PITCH
    edep = np.array([100.0, 300.0, 600.0, 50.0])
    z = np.array([0.1, 0.2, 0.6, 0.3])
    t = np.array([1.0, 2.0, 4.0, 7.0])
    pixels = run(make_data(x, y, z, edep, counts=[4], time=t))
    assert pixels["col"].tolist() == [5, 8] and pixels["row"].tolist() == [3, 3]
    assert pixels["edep"].tolist() == [1000.0, 50.0]
    assert pixels["charge"].tolist() == [round(1000 / E2EV), round(50 / E2EV)]
    assert pixels["z"] == pytest.approx([0.3, 0.3])
    assert pixels["time"] == pytest.approx([(100 + 600 + 2400) / 1000, 7.0])
    assert pixels["std_time"] == pytest.approx([np.std([1.0, 2.0, 4.0]), 0.0])
    later = {"noise", "total_unclipped", "saturated", "paste_row", "paste_col", "paste_adu", "paste_image"}
    assert set(pixels) == set(PIXEL_FIELDS) - later  # fields added by the noise, saturation and paste steps


def test_flags_and_most_frequent_pdg():
    pixel = np.repeat(np.arange(5), [4, 2, 1, 2, 3])
    pdg = [11, 11, 22, 2112, 22, 11, 1000140280, 1000020040, 1000260560, -11, 1000020040, 1000020040]
    x = (pixel * 3 + 0.5) * PITCH
    pixels = run(make_data(x, np.full(x.size, 0.5 * PITCH), pdg=pdg, counts=[pixel.size]))
    assert pixels["col"].tolist() == [0, 3, 6, 9, 12]
    assert pixels["pdg"].tolist() == [11, 11, 1000140280, 1000020040, 1000020040]  # tie 22/11 -> 11
    assert pixels["electron"].tolist() == [1, 1, 0, 0, 1]
    assert pixels["gamma"].tolist() == [1, 1, 0, 0, 0]
    assert pixels["neutron"].tolist() == [1, 0, 0, 0, 0]
    assert pixels["silicon"].tolist() == [0, 0, 1, 0, 0]  # alpha + iron is not silicon (pysimdamicm said yes)
    assert pixels["alpha"].tolist() == [0, 0, 0, 1, 1]
    assert pixels["ion"].tolist() == [0, 0, 1, 1, 1]


def test_charge_and_energy_conservation_with_diffusion():
    """Pixel charge + charge outside = carriers; pixel edep + edep outside = deposited energy."""
    rng = np.random.default_rng(3)
    n = 400
    x = rng.uniform(0, COLS * PITCH, n)  # some deposits near the edges diffuse out
    y = rng.uniform(0, ROWS * PITCH, n)
    edep = rng.uniform(50, 5000, n)
    data = make_data(x, y, rng.uniform(0, 0.67, n), edep, counts=[100] * 4)
    pixels = run(data, Diffusion(fanofactor=0.12), PixelizeSignal())
    carriers = data.carriers["x"].size
    outside = data.counters.get("charge outside the CCD (e-)", 0)
    assert outside > 0
    assert pixels["charge"].sum() + outside == carriers
    mean = edep.sum() / E2EV
    assert abs(carriers - mean) < 5 * np.sqrt(0.12 * mean)  # Fano statistics
    made = np.bincount(data.carriers["hit"], minlength=n) > 0
    inside_fraction = pixels["charge"].sum() / carriers
    assert pixels["edep"].sum() == pytest.approx(edep[made].sum() * inside_fraction, rel=0.02)


def test_only_pair_creation_gives_exact_counts_per_pixel():
    x = np.array([2.5, 2.5, 7.5]) * PITCH
    y = np.array([1.5, 1.5, 1.5]) * PITCH
    data = make_data(x, y, edep=[3770.0, 1885.0, 377.0], counts=[3])
    pixels = run(data, Diffusion(only_pair_creation=1), PixelizeSignal())
    per_hit = np.bincount(data.carriers["hit"], minlength=3)
    assert pixels["charge"].tolist() == [per_hit[0] + per_hit[1], per_hit[2]]
    assert pixels["edep"] == pytest.approx([3770.0 + 1885.0, 377.0])
    assert not pixels["sigma_xy"].any()


def reference_pixels(data: SimEvents) -> dict[tuple, tuple]:
    """Brute force: every carrier on its own, grouped with np.unique."""
    flat = data.flat_hits()
    c = data.carriers
    hit = c["hit"]
    col = np.floor(c["x"] / PITCH).astype(int)
    row = np.floor(c["y"] / PITCH).astype(int)
    ok = (col >= 0) & (col < COLS) & (row >= 0) & (row < ROWS)
    n_hit = np.bincount(hit, minlength=flat["edep"].size)
    energy = flat["edep"][hit] / n_hit[hit]
    keys = np.stack([flat["event"][hit], flat["ccd"][hit], row, col], axis=1)[ok]
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    out = {}
    for i, key in enumerate(map(tuple, unique)):
        sel = inverse == i
        h = hit[ok][sel]
        out[key] = (sel.sum(), energy[ok][sel].sum(), flat["z"][h].mean(), c["sigma_xy"][ok][sel].astype(float).mean())
    return out


def test_carrier_path_matches_brute_force():
    rng = np.random.default_rng(5)
    n = 60
    x = rng.uniform(0.2, 0.8, n)  # dense: deposits share pixels
    y = rng.uniform(0.2, 0.8, n)
    data = make_data(
        x, y, rng.uniform(0, 0.67, n), rng.uniform(20, 3000, n), counts=[20, 25, 15], ccd=rng.integers(1, 3, n)
    )
    pixels = run(data, Diffusion(), PixelizeSignal())
    reference = reference_pixels(data)
    assert len(reference) == pixels["event"].size
    for i in range(pixels["event"].size):
        key = (pixels["event"][i], pixels["ccd"][i], pixels["row"][i], pixels["col"][i])
        count, energy, z, sigma = reference[key]
        assert pixels["charge"][i] == count
        assert pixels["edep"][i] == pytest.approx(energy, rel=1e-12)
        assert pixels["z"][i] == pytest.approx(z, rel=1e-12)
        assert pixels["sigma_xy"][i] == pytest.approx(sigma, rel=1e-6)
    # carriers in any order give the same pixels
    shuffled = np.random.default_rng(0).permutation(data.carriers["x"].size)
    data.carriers = {k: v[shuffled] for k, v in data.carriers.items()}
    again = run(data)
    for name in pixels:
        assert np.allclose(again[name], pixels[name], rtol=1e-12, atol=0), name


def pipeline_pixels(hits: HitCollection, chunk: int) -> dict[str, np.ndarray]:
    """Diffusion + PixelizeSignal chunk by chunk; pixel events as Geant4 event ids."""
    parts = []
    for sub in hits.chunks(chunk):
        data = SimEvents(sub, CounterRNG(11), detector())
        pixels = run(data, Diffusion(model="karthik", apply_pcc=1), PixelizeSignal())
        parts.append({**pixels, "event": data.event_ids[pixels["event"]]})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def random_hits(n_events: int, per: int, seed: int) -> HitCollection:
    rng = np.random.default_rng(seed)
    n = n_events * per
    centre = np.repeat(rng.uniform(0.1, 2.9, (n_events, 2)), per, axis=0)
    hits = {
        "x": centre[:, 0] + rng.normal(0, 0.03, n),
        "y": np.clip(centre[:, 1] * 0.5 + rng.normal(0, 0.03, n), -0.01, None),
        "z": rng.uniform(0, 0.675, n),
        "edep": rng.exponential(800, n) + 10,
        "time": rng.uniform(0, 1e-6, n),
        "ccd": rng.integers(0, 3, n).astype(np.int32),
        "pdg": rng.choice([11, 22, 2112, 1000140280], n).astype(np.int32),
    }
    return HitCollection.from_arrays(np.arange(n_events) * 7 + 3, np.full(n_events, per), hits)


def test_chunk_independence():
    hits = random_hits(40, 5, seed=8)
    whole = pipeline_pixels(hits, 40)
    for chunk in (1, 7):
        parts = pipeline_pixels(hits, chunk)
        for name, values in whole.items():
            assert np.array_equal(values, parts[name]), name


def test_through_a_geant4_file(tmp_path):
    """write_geant4 + iter_geant4 (2 events per chunk) give the pixels of the in-memory hits."""
    hits = random_hits(6, 4, seed=9)
    det = detector()
    path = write_geant4(tmp_path / "g4.root", hits, detector=det)
    parts = []
    for sub in iter_geant4(path, step_size=2, detector=det):
        data = SimEvents(sub, CounterRNG(11), det)
        pixels = run(data, Diffusion(model="karthik", apply_pcc=1), PixelizeSignal())
        parts.append({**pixels, "event": data.event_ids[pixels["event"]]})
    from_file = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    direct = pipeline_pixels(hits, 6)
    for name in ("event", "ccd", "row", "col", "charge", "pdg"):
        assert np.array_equal(from_file[name], direct[name]), name
    for name in ("edep", "z", "time"):  # depth goes through posz = thickness - z and back
        assert np.allclose(from_file[name], direct[name], rtol=1e-9, atol=1e-12), name


def test_killed_events_are_skipped():
    data = make_data([PITCH, 2 * PITCH], [PITCH, PITCH])
    data.kill(np.array([True, False]), "test")
    pixels = run(data)
    assert pixels["event"].tolist() == [1]
    assert "no pixel inside the CCD" not in data.counters
