"""CreateFitsImage: raw and averaged skipper images of simulated events, with a truth table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from waders.core.detector import Detector
from waders.core.errors import ConfigError
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.io import read_clusters, read_image
from waders.sim.events import SimEvents
from waders.sim.images import CreateFitsImage, SimulatedRawSamples
from waders.sim.random import CounterRNG

E2EV = 3.77


def make_events(event_ids, clusters: dict[int, list[tuple[int, int, int]]], shape=(60, 80), seed=2) -> SimEvents:
    """Events with given signal pixels: event id -> [(row, col, electrons), ...]."""
    event_ids = np.asarray(event_ids, dtype=np.int64)
    n = event_ids.size
    hits = {k: np.zeros(n) for k in ("x", "y", "z", "time", "edep")}
    hits["ccd"] = np.ones(n, dtype=np.int32)
    hits["pdg"] = np.full(n, 11, dtype=np.int32)
    collection = HitCollection.from_arrays(event_ids, np.ones(n, dtype=np.int64), hits)
    data = SimEvents(collection, CounterRNG(seed), Detector(ccd_shape=list(shape), e2eV=E2EV))
    event, row, col, q = [], [], [], []
    for i, e in enumerate(event_ids):
        for r, c, electrons in clusters[int(e)]:
            event.append(i)
            row.append(r)
            col.append(c)
            q.append(electrons)
    q = np.array(q)
    m = q.size
    data.set_pixels(
        {
            "event": np.array(event), "ccd": np.ones(m, dtype=np.int32), "row": np.array(row, dtype=np.int32),
            "col": np.array(col, dtype=np.int32), "edep": q * E2EV + 0.5, "charge": q.astype(np.int32),
            "z": np.full(m, 0.2), "time": np.zeros(m), "pdg": np.full(m, 11, dtype=np.int32),
        }
    )  # fmt: skip
    return data


def blob(row: int, col: int, electrons: int) -> list[tuple[int, int, int]]:
    """A 3 x 3 cluster with ``electrons`` in the centre and a quarter in each neighbour."""
    return [
        (row + dr, col + dc, electrons if (dr, dc) == (0, 0) else electrons // 4)
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
    ]


CLUSTERS = {
    0: blob(10, 10, 40),
    1: blob(30, 60, 80),  # right half: amplifier U
    2: blob(50, 39, 20) + blob(50, 41, 8),  # straddles the two halves
    3: [(5, 70, 3)],
    4: blob(20, 20, 12),
}


def run(data, tmp_path, *, chunks=None, **params):
    process = CreateFitsImage(**params)
    ctx = RunContext(seed=9, detector=data.detector, output_dir=tmp_path, options={"input": "/data/g4sim.root"})
    process.run(data, ctx)
    return process, process.finish(ctx)


def expected_image(clusters: dict[int, list], events, shape, file_col) -> np.ndarray:
    q = np.zeros(shape)
    for e in events:
        for r, c, electrons in clusters[e]:
            q[r, file_col(c)] += electrons
    return q


def test_raw_two_amplifier_image_matches_pedestal_gain_signal_and_dark_current(tmp_path):
    data = make_events(range(5), CLUSTERS)
    gain, noise, nskips, ped, lam = 8.0, 3.0, 36, 500.0, 0.1
    params = {
        "raw": True, "nskips": nskips, "amplifiers": 2, "prescan": 4, "overscan": 6, "gain": gain,
        "noise_adu": noise, "pedestal_adu": ped, "darkcurrent": lam, "exp_time": 1.0, "n_events": 5,
    }  # fmt: skip
    _, written = run(data, tmp_path, **params)
    (path,) = (Path(p) for p in written["images"])
    assert path.name == "g4sim_image_1.fits"
    image = read_image(path)
    assert image.geometry.layout == "two-amplifier" and image.geometry.nskips == nskips
    left, right = image["L"].geometry, image["U"].geometry
    assert (left.ncols, left.prescan_cols, left.overscan_cols, left.mirrored) == (50, 4, 6, False)
    assert (right.ncols, right.prescan_cols, right.overscan_cols, right.mirrored) == (50, 4, 6, True)
    # file layout [L pre 4 | L active 40 | L ovs 6 | U ovs 6 | U active 40 | U pre 4]
    with fits.open(path) as hdul:
        raw = hdul[0].data.astype(np.float64).reshape(60, 100, nskips)
        assert hdul[0].header["SIMGAIN"] == gain and hdul[0].header["NEVTS"] == 5
    mean = raw.mean(axis=2)
    electrons = (mean - ped) / gain  # noise per pixel 3 / 6 / 8 = 0.06 e-: rounding is exact
    assert np.abs(electrons - np.rint(electrons)).max() < 0.4
    residual = (mean - ped) / gain - np.rint(electrons)
    assert residual.std() == pytest.approx(noise / np.sqrt(nskips) / gain, rel=0.05)  # 6000 pixels: 1 % error
    assert raw.std(axis=2, ddof=1).mean() == pytest.approx(noise, rel=0.02)

    def file_col(c):
        return 4 + c if c < 40 else 4 + 2 * 6 + c

    signal = expected_image(CLUSTERS, range(5), (60, 100), file_col)
    dark = np.rint(electrons) - signal
    active = np.zeros((60, 100), dtype=bool)
    active[:, 4:44] = active[:, 56:96] = True
    assert np.all(dark >= 0) and np.all(dark[~active] == 0)  # no charge in prescan/overscan
    n = active.sum()  # 4800 pixels: sigma of the mean = sqrt(0.1 / 4800) = 0.0046
    assert abs(dark[active].mean() - lam) < 4 * np.sqrt(lam / n)


def test_truth_table_matches_the_events(tmp_path):
    data = make_events(range(5), CLUSTERS)
    _, written = run(data, tmp_path, raw=True, nskips=2, amplifiers=2, prescan=4, overscan=6, n_events=5)
    (truth_path,) = written["truth"]
    assert truth_path.endswith("g4sim_image_1.truth.json")
    truth = json.loads(Path(truth_path).read_text())
    assert truth["gain_adu_per_e"] == 10.0 and truth["nskips"] == 2 and truth["amplifiers"] == 2
    assert truth["dark_current_e_per_pixel"] == pytest.approx(0.001 / 3)
    by_event = {t["event"]: t for t in truth["events"]}
    assert sorted(by_event) == [0, 1, 2, 3, 4]
    for e, pixels in CLUSTERS.items():
        q = np.array([p[2] for p in pixels], dtype=float)
        rows = np.array([p[0] for p in pixels]) + 1
        cols = np.array([4 + p[1] if p[1] < 40 else 16 + p[1] for p in pixels]) + 1
        entry = by_event[e]
        assert entry["charge_e"] == q.sum() and entry["npix"] == len(pixels) and entry["npix_outside"] == 0
        assert entry["energy_eV"] == pytest.approx(np.sum(q * E2EV + 0.5))
        assert entry["row"] == pytest.approx(np.sum(q * rows) / q.sum())
        assert entry["col"] == pytest.approx(np.sum(q * cols) / q.sum())


def test_averaged_single_amplifier_image(tmp_path):
    data = make_events(range(5), CLUSTERS)
    gain, noise, nskips, ped = 5.0, 4.0, 100, 200.0
    _, written = run(data, tmp_path, gain=gain, noise_adu=noise, nskips=nskips, pedestal_adu=ped, prescan=3,
                     overscan=10, darkcurrent=0.0, n_events=10)  # fmt: skip
    (path,) = (Path(p) for p in written["images"])
    image = read_image(path)
    assert image.geometry.averaged and list(image.amplifiers) == ["L"]
    geometry = image["L"].geometry
    assert (geometry.nrows, geometry.ncols, geometry.prescan_cols, geometry.overscan_cols) == (60, 93, 3, 10)
    values = image["L"].get("mean_compressed")
    signal = expected_image(CLUSTERS, range(5), (60, 93), lambda c: 3 + c)
    residual = values - ped - gain * signal
    sigma = noise / np.sqrt(nskips)  # 0.4 ADU; 5580 pixels: 1 % on the std
    assert residual.std() == pytest.approx(sigma, rel=0.05)
    assert abs(residual.mean()) < 4 * sigma / np.sqrt(residual.size)


def test_images_of_n_events_and_a_partial_last_image_independent_of_chunking(tmp_path):
    events = {e: blob(5 + 7 * e, 10 + 9 * e, 30) for e in range(7)}
    params = {"raw": True, "nskips": 3, "n_events": 3, "random_position": True}
    data = make_events(range(7), events)
    _, whole = run(data, tmp_path / "whole", **params)
    assert [Path(p).name for p in whole["images"]] == [f"g4sim_image_{n}.fits" for n in (1, 2, 3)]
    counts = [json.loads(Path(p).read_text())["n_events"] for p in whole["truth"]]
    assert counts == [3, 3, 1]
    # the same events in three chunks through one process: identical files
    process = CreateFitsImage(**params)
    ctx = RunContext(seed=9, output_dir=tmp_path / "parts", options={"input": "/data/g4sim.root"})
    for part in ([0, 1], [2, 3, 4, 5], [6]):
        chunk = make_events(part, {e: events[e] for e in part})
        ctx.detector = chunk.detector
        process.run(chunk, ctx)
    parts = process.finish(ctx)
    for a, b in zip(whole["images"], parts["images"], strict=True):
        np.testing.assert_array_equal(fits.getdata(a), fits.getdata(b))
    for a, b in zip(whole["truth"], parts["truth"], strict=True):
        ta, tb = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
        assert ta["events"] == tb["events"]
    truth = [t for p in whole["truth"] for t in json.loads(Path(p).read_text())["events"]]
    assert len({(t["row"], t["col"]) for t in truth}) == 7  # random positions, all inside
    assert all(1 <= t["row"] <= 60 and 1 <= t["col"] <= 80 and t["npix"] == 9 for t in truth)


def test_pixels_outside_the_image_are_counted_and_integer_inverted_output(tmp_path):
    data = make_events(range(2), {0: blob(10, 10, 50), 1: blob(58, 30, 50)})  # event 1: a row beyond 60 rows
    _, written = run(data, tmp_path, raw=True, nskips=2, n_rows=59, dtype="uint16", invert_polarity=60000.0,
                     noise_adu=1.0, pedestal_adu=100.0, darkcurrent=0.0)  # fmt: skip
    assert data.counters["pixels outside the simulated image (not imaged)"] == 3
    truth = json.loads(Path(written["truth"][0]).read_text())
    assert [t["npix_outside"] for t in truth["events"]] == [0, 3]
    with fits.open(written["images"][0]) as hdul:
        raw = hdul[0].data.astype(np.float64)
        assert hdul[0].data.dtype.kind in "iu"
    assert raw.shape == (59, 80 * 2)
    value = 60000.0 - raw  # inverted polarity: pedestal 100 + 10 ADU/e- x charge
    assert np.allclose(value, np.rint(value)) and value[10, 2 * 10] > 100 + 10 * 50 - 5


def test_lazy_samples_are_row_slices_of_the_same_realisation():
    samples = SimulatedRawSamples(
        CounterRNG(1), 1, 0, (20, 15, 4), (2, 12), np.array([3]), np.array([5]), np.array([7.0]),
        pedestal=10.0, gain=2.0, noise=1.0, dark_current=0.2,
    )  # fmt: skip
    full = samples[:]
    assert full.shape == (20, 15, 4) and samples.shape == (20, 15, 4)
    np.testing.assert_array_equal(samples[5:9], full[5:9])
    np.testing.assert_array_equal(samples[7], full[7])
    np.testing.assert_array_equal(samples[::3], full[::3])
    np.testing.assert_array_equal(np.asarray(samples), full)


def test_blank_image_and_odd_columns_are_refused(tmp_path):
    data = make_events(range(1), {0: blob(10, 10, 5)})
    with pytest.raises(ConfigError, match="PasteClusterProcess"):
        run(data, tmp_path, blank_image="blank.fits")
    with pytest.raises(ConfigError, match="even"):
        run(data, tmp_path, amplifiers=2, n_cols=79)


@pytest.mark.slow
def test_waders_ana_finds_the_simulated_clusters_at_their_truth(tmp_path):
    """The raw image analysed by ``waders ana`` (default chain): clusters where the truth table puts them."""
    big = {0: blob(30, 50, 400), 1: blob(100, 200, 600), 2: blob(70, 120, 300)}
    data = make_events(range(3), big, shape=(150, 300))
    _, written = run(data, tmp_path, raw=True, nskips=25, amplifiers=2, prescan=8, overscan=60, gain=10.0,
                     noise_adu=10.0, darkcurrent=0.2, exp_time=1.0, n_events=3)  # fmt: skip
    image = Path(written["images"][0])
    out = tmp_path / "ana"
    result = subprocess.run(
        [sys.executable, "-m", "waders.core", "ana", "-o", str(out), str(image)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    truth = json.loads(Path(written["truth"][0]).read_text())["events"]
    (entry,) = read_clusters(next(out.glob("*_clusters.root"))).tolist()
    found = [c for c in entry["clusters"] if c["Energy"] > 1.0]
    assert len(found) == 3
    for t in truth:
        (cluster,) = [c for c in found if abs(c["PosY"] - t["row"]) < 1 and abs(c["PosX"] - t["col"]) < 1]
        assert cluster["PosY"] == pytest.approx(t["row"], abs=0.1)
        assert cluster["PosX"] == pytest.approx(t["col"], abs=0.1)
        # analysis energy scale 3.74 eV/e-; dark current (0.2 e-/pixel) and noise add a little
        assert cluster["Energy"] == pytest.approx(t["charge_e"] * 3.74 / 1000, rel=0.02)
