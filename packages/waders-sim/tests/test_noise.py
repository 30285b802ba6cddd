"""DarkCurrent, ElectronicNoise and PixelSaturation: sparse noise that is exact in distribution."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from waders.core.detector import Detector
from waders.core.errors import ConfigError, ProcessError
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.data import PYSIMDAMICM_CONFIGS
from waders.data import path as data_path
from waders.sim.events import SimEvents
from waders.sim.noise import DarkCurrent, ElectronicNoise, PixelSaturation, region_of_interest
from waders.sim.random import CounterRNG

CONFIGS = data_path(PYSIMDAMICM_CONFIGS)
E2EV = 3.77
DAY = 86400.0


def make_events(
    event_ids: np.ndarray,
    *,
    shape: tuple[int, int] = (400, 600),
    n_pix: int = 4,
    seed: int = 5,
    ccd: int = 1,
    edep: float = 400.0,
    positions: dict[int, tuple[int, int]] | None = None,
) -> SimEvents:
    """Events with ``n_pix`` signal pixels in a row at a position derived from the event id."""
    event_ids = np.asarray(event_ids, dtype=np.int64)
    n = event_ids.size
    hits = {k: np.zeros(n) for k in ("x", "y", "z", "time", "edep")}
    hits["edep"][:] = edep * n_pix
    hits["ccd"] = np.full(n, ccd, dtype=np.int32)
    hits["pdg"] = np.full(n, 11, dtype=np.int32)
    collection = HitCollection.from_arrays(event_ids, np.ones(n, dtype=np.int64), hits)
    detector = Detector(ccd_shape=list(shape), e2eV=E2EV, ADC2eV=0.72)
    data = SimEvents(collection, CounterRNG(seed), detector)
    positions = positions or {}
    row0 = np.array([positions.get(int(e), ((e * 37) % shape[0], (e * 91) % (shape[1] - n_pix)))[0] for e in event_ids])
    col0 = np.array([positions.get(int(e), ((e * 37) % shape[0], (e * 91) % (shape[1] - n_pix)))[1] for e in event_ids])
    event = np.repeat(np.arange(n), n_pix)
    m = event.size
    data.set_pixels(
        {
            "event": event,
            "ccd": np.full(m, ccd, dtype=np.int32),
            "row": np.repeat(row0, n_pix).astype(np.int32),
            "col": (np.repeat(col0, n_pix) + np.tile(np.arange(n_pix), n)).astype(np.int32),
            "edep": np.full(m, edep),
            "charge": np.full(m, round(edep / E2EV), dtype=np.int32),
            "z": np.full(m, 0.3),
            "time": np.zeros(m),
            "std_time": np.zeros(m),
            "pdg": np.full(m, 11, dtype=np.int32),
            "sigma_xy": np.full(m, 0.005),
            "electron": np.ones(m, dtype=np.int8),
        }
    )
    return data


def context(data: SimEvents, seed: int = 5) -> RunContext:
    return RunContext(seed=seed, detector=data.detector)


def dark_current(lam: float, **kw) -> DarkCurrent:
    """DarkCurrent with lambda = ``lam`` electrons per pixel (exposure 1 day)."""
    return DarkCurrent(darkcurrent=lam, exp_time=1.0, **kw)


def noise_only(data: SimEvents) -> dict[str, np.ndarray]:
    keep = data.pixels["edep"] == 0
    return {k: v[keep] for k, v in data.pixels.items()}


def mixture_tail_cdf(x: np.ndarray, lam: float, mu: float, s: float, thr: float) -> np.ndarray:
    """CDF of K + G conditioned on K + G > thr, K ~ Poisson(lam), G ~ Normal(mu, s)."""
    k = np.arange(0, 25)[None, :]
    pmf = stats.poisson.pmf(k, lam)
    above = np.sum(pmf * special.ndtr(-(thr - k - mu) / s))
    x = np.asarray(x)[:, None]
    between = np.clip(special.ndtr((x - k - mu) / s) - special.ndtr((thr - k - mu) / s), 0, None)
    return np.sum(pmf * between, axis=1) / above


def mixture_tail_probability(lam: float, mu: float, s: float, thr: float) -> float:
    k = np.arange(0, 40)
    return float(np.sum(stats.poisson.pmf(k, lam) * special.ndtr(-(thr - k - mu) / s)))


# --- region of interest ----------------------------------------------------------------
def test_region_of_interest_is_centred_shifted_at_edges_and_enlarged_for_big_events():
    rows = np.array([100, 100, 0, 0, 399, 399, 50, 250])
    cols = np.array([300, 303, 5, 6, 590, 599, 10, 10])
    starts = np.array([0, 2, 4, 6])
    roi = region_of_interest(rows, cols, starts, (400, 600), img_size=50, min_enlarge=10)
    assert roi["nrows"].tolist() == [50, 50, 50, 211]  # the tall event: D_y = 201 > 50 -> 201 + 10
    assert roi["row0"].tolist()[:3] == [100 - 24, 0, 350]  # centred, shifted inside at both edges
    assert roi["col0"].tolist()[:3] == [300 - 23, 0, 550]
    for i, s in enumerate(starts):
        assert roi["row0"][i] <= rows[s : s + 2].min() and rows[s : s + 2].max() < roi["row0"][i] + roi["nrows"][i]
        assert roi["col0"][i] <= cols[s : s + 2].min() and cols[s : s + 2].max() < roi["col0"][i] + roi["ncols"][i]
    small = region_of_interest(np.array([3]), np.array([4]), np.array([0]), (20, 30), img_size=300, min_enlarge=30)
    assert (small["row0"][0], small["nrows"][0], small["col0"][0], small["ncols"][0]) == (0, 20, 0, 30)


# --- dark current ----------------------------------------------------------------------
def test_dark_current_occupancy_matches_lambda():
    lam, n_events, size = 0.004, 3000, 40
    data = make_events(np.arange(n_events))
    dark_current(lam, img_size=size).with_threshold(0.5).run(data, context(data))
    extra = noise_only(data)
    n_empty = size * size - 4
    p = 1 - math.exp(-lam)
    expected = n_events * n_empty * p  # binomial mean; sigma = sqrt(N p (1-p)) ~ 139
    assert abs(extra["event"].size - expected) < 4 * math.sqrt(expected)
    values = extra["noise"] / E2EV
    assert np.allclose(values, np.rint(values)) and values.min() >= 1  # whole electrons
    n2 = np.sum(np.rint(values) >= 2)  # P(K >= 2 | K >= 1) ~ lam / 2
    assert abs(n2 - expected * lam / 2) < 5 * math.sqrt(expected * lam / 2) + 3
    assert np.all(extra["pdg"] == -1) and np.all(extra["z"] == -1) and np.all(extra["time"] == -1)
    assert np.all(extra["charge"] == 0) and np.all(extra["electron"] == 0)
    info = data.results["DarkCurrent"]
    assert info["lambda_e"] == pytest.approx(lam) and info["mode"] == "cropped-image"
    assert info["n_noise_pixels_appended"] == extra["event"].size
    # every noise-only pixel lies in its event's ROI and on no signal pixel; pixels stay sorted and unique
    key = (data.pixels["event"].astype(np.int64) * 1000 + data.pixels["row"]) * 1000 + data.pixels["col"]
    assert np.all(np.diff(key) > 0)
    signal = data.pixels["edep"] > 0
    assert signal.sum() == 4 * n_events


def test_dark_current_on_signal_pixels_is_poisson():
    lam = 0.3
    data = make_events(np.arange(4000), n_pix=5)
    dark_current(lam).with_threshold(None).run(data, context(data))
    k = data.pixels["noise"] / E2EV
    assert data.pixels["event"].size == 20000  # nothing appended without a threshold
    assert np.allclose(k, np.rint(k))
    assert abs(k.mean() - lam) < 4 * math.sqrt(lam / k.size)
    assert abs(k.var() - lam) < 0.03  # var of the sample variance ~ (lam + 2 lam^2)/n -> sigma ~ 0.005


def test_exposure_per_row_dark_current_grows_with_the_row():
    n_events = 2000
    data = make_events(np.arange(n_events), shape=(400, 600))
    # lambda(row) = 0.001 + 0.00002 * row electrons: 0.001 at row 0, 0.009 at row 400
    process = DarkCurrent(
        darkcurrent=0.001, exp_time=1.0, exp_mode="exposure-per-row", row_readtime=0.02, img_size=60
    )  # e/pixel/day * day
    process.with_threshold(0.5).run(data, context(data))
    extra = noise_only(data)
    lam_row = 0.001 + 0.00002 * extra["row"]
    assert data.results["DarkCurrent"]["lambda_e_per_row"] == pytest.approx(0.00002)
    # expected count: sum over events and ROI rows of 60 * (1 - exp(-lambda(row)))
    roi = data.results["noise"]["roi"]
    rows = roi["row0"][:, None] + np.arange(60)[None, :]
    expected = np.sum(60 * (1 - np.exp(-(0.001 + 0.00002 * rows))))
    assert abs(extra["event"].size - expected) < 4 * math.sqrt(expected)
    low, high = extra["row"] < 200, extra["row"] >= 200
    expected_low = np.sum(np.where(rows < 200, 60 * (1 - np.exp(-(0.001 + 0.00002 * rows))), 0))
    assert abs(low.sum() - expected_low) < 4 * math.sqrt(expected_low)
    assert high.sum() > 2 * low.sum()
    assert lam_row.size == extra["event"].size


# --- readout noise ---------------------------------------------------------------------
def test_readout_noise_sigma_and_pedestal_are_recovered():
    data = make_events(np.arange(5000), n_pix=10)
    ElectronicNoise(sigma=0.8, pedestal=0.1, nSamples=4).with_threshold(None).run(data, context(data))
    g = data.pixels["noise"] / E2EV
    n = g.size  # 50000 pixels: sigma of the std estimate = 0.4/sqrt(2n) = 0.0013
    assert data.pixels["event"].size == 50000
    assert abs(g.std() - 0.8 / 2) < 4 * 0.4 / math.sqrt(2 * n)
    assert abs(g.mean() - 0.1) < 4 * 0.4 / math.sqrt(n)
    info = data.results["ElectronicNoise"]
    assert info["sigma_pixel_e"] == pytest.approx(0.4) and info["nSamples"] == 4
    assert info["n_noise_pixels_appended"] == 0


def test_readout_noise_tail_count_and_values_are_exact():
    n_events, size, s, thr = 1000, 40, 0.3, 0.75  # thr = 2.5 sigma
    data = make_events(np.arange(n_events))
    ElectronicNoise(sigma=s, img_size=size).with_threshold(thr).run(data, context(data))
    extra = noise_only(data)
    p = stats.norm.sf(thr / s)
    expected = n_events * (size * size - 4) * p
    assert abs(extra["event"].size - expected) < 4 * math.sqrt(expected)
    values = extra["noise"] / E2EV
    assert values.min() > thr
    ks = stats.kstest(values, lambda x: 1 - stats.norm.sf(x / s) / p)
    assert ks.pvalue > 0.001


def test_dark_current_and_readout_noise_tail_is_the_exact_mixture():
    lam, mu, s, thr = 0.15, 0.05, 0.3, 0.8
    n_events, size = 1500, 40
    data = make_events(np.arange(n_events))
    ctx = context(data)
    dark_current(lam, img_size=size).with_threshold(thr).run(data, ctx)
    ElectronicNoise(sigma=s, pedestal=mu, img_size=size).with_threshold(thr).run(data, ctx)
    extra = noise_only(data)
    values = extra["noise"] / E2EV
    assert values.min() > thr  # the invariant: noise-only pixels are exactly those above the threshold
    p = mixture_tail_probability(lam, mu, s, thr)
    expected = n_events * (size * size - 4) * p
    assert abs(extra["event"].size - expected) < 4 * math.sqrt(expected)
    ks = stats.kstest(values, lambda x: mixture_tail_cdf(x, lam, mu, s, thr))
    assert ks.pvalue > 0.001
    # the pixels of the first and second component are mixed: both contribute (K = 1 dominates)
    assert np.mean(values > 1.5) > 0.01
    # signal pixels got K + G: mean lam + mu, variance lam + s^2
    signal = data.pixels["noise"][data.pixels["edep"] > 0] / E2EV
    assert abs(signal.mean() - (lam + mu)) < 4 * math.sqrt((lam + s * s) / signal.size)


def test_dense_tail_when_the_threshold_is_low():
    data = make_events(np.arange(200))
    ElectronicNoise(sigma=0.25, img_size=12).with_threshold(0.0).run(data, context(data))
    extra = noise_only(data)
    expected = 200 * (144 - 4) * 0.5
    assert abs(extra["event"].size - expected) < 4 * math.sqrt(expected * 0.5)
    key = (extra["event"].astype(np.int64) * 1000 + extra["row"]) * 1000 + extra["col"]
    assert np.unique(key).size == key.size  # without replacement


def test_no_threshold_adds_noise_to_signal_pixels_only():
    data = make_events(np.arange(50))
    ctx = context(data)
    dark_current(0.5).with_threshold(None).run(data, ctx)
    ElectronicNoise().with_threshold(None).run(data, ctx)
    assert data.pixels["event"].size == 200 and np.all(data.pixels["edep"] > 0)
    assert data.counters == {}


# --- full-image mode ---------------------------------------------------------------------
def test_full_image_mode_gives_the_same_noise_at_the_same_pixel():
    positions = {0: (100, 200), 1: (100, 200), 2: (110, 230), 3: (300, 100)}
    data = make_events(np.arange(4), shape=(200, 400), positions=positions)
    data.pixels["row"] = np.where(data.pixels["event"] == 3, data.pixels["row"] - 150, data.pixels["row"])
    ctx = context(data)
    dark_current(0.05, mode="full-image", img_size=60).with_threshold(0.6).run(data, ctx)
    ElectronicNoise(sigma=0.3, mode="full-image", img_size=60).with_threshold(0.6).run(data, ctx)
    pix = data.pixels
    by_event = []
    for e in range(4):
        sel = pix["event"] == e
        by_event.append(dict(zip(zip(pix["row"][sel], pix["col"][sel], strict=True), pix["noise"][sel], strict=True)))
    assert by_event[0] == by_event[1]  # same place, same noise (signal and noise-only pixels)
    common = set(by_event[0]) & set(by_event[2])
    assert len(common) > 20
    assert all(by_event[0][k] == by_event[2][k] for k in common)
    assert all(v > 0.6 * E2EV for k, v in by_event[2].items() if k not in {(110, 230 + i) for i in range(4)})
    expected = (60 * 60 - 4) * mixture_tail_probability(0.05, 0.0, 0.3, 0.6)  # ~ 130 per event
    assert abs(len(by_event[2]) - 4 - expected) < 5 * math.sqrt(expected)
    # cropped mode: different events see different noise
    data2 = make_events(np.arange(2), shape=(200, 400), positions=positions)
    ElectronicNoise(sigma=0.3, img_size=60).with_threshold(0.6).run(data2, context(data2))
    noise = data2.pixels["noise"]
    first = noise[(data2.pixels["event"] == 0) & (data2.pixels["edep"] > 0)]
    second = noise[(data2.pixels["event"] == 1) & (data2.pixels["edep"] > 0)]
    assert not np.array_equal(first, second)


def test_full_image_mode_is_reproducible_from_the_seed():
    def run(seed):
        data = make_events(np.arange(3), shape=(100, 150), seed=seed)
        ElectronicNoise(sigma=0.3, mode="full-image", img_size=40).with_threshold(0.6).run(data, context(data, seed))
        return data.pixels

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["noise"], c["noise"])


def test_mixed_modes_are_refused():
    data = make_events(np.arange(3))
    ctx = context(data)
    dark_current(0.01, mode="full-image").with_threshold(1.0).run(data, ctx)
    with pytest.raises(ConfigError, match="same mode"):
        ElectronicNoise().with_threshold(1.0).run(data, ctx)


# --- chunking ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["cropped-image", "full-image"])
def test_noise_does_not_depend_on_the_chunking(mode):
    ids = np.arange(100, 160)

    def chain(data):
        ctx = context(data)
        dark_current(0.05, img_size=50, mode=mode).with_threshold(0.7).run(data, ctx)
        ElectronicNoise(sigma=0.3, img_size=50, mode=mode).with_threshold(0.7).run(data, ctx)
        out = dict(data.pixels)
        out["event"] = data.event_ids[out["event"]]
        return out

    whole = chain(make_events(ids))
    parts = [chain(make_events(chunk)) for chunk in np.array_split(ids, [7, 30, 31])]
    joined = {k: np.concatenate([p[k] for p in parts]) for k in whole}
    assert whole["event"].size > 60 * 4 + 100  # noise-only pixels were appended
    for name in whole:
        np.testing.assert_array_equal(whole[name], joined[name], err_msg=name)


# --- saturation ----------------------------------------------------------------------------
def test_saturation_clips_keeps_the_unclipped_value_and_flags():
    data = make_events(np.arange(10), edep=400.0)
    data.pixels["edep"] = data.pixels["edep"] * np.where(np.arange(40) % 2 == 0, 10.0, 1.0)  # 4000 eV or 400 eV
    ctx = context(data)
    ElectronicNoise(sigma=0.2).with_threshold(None).run(data, ctx)
    before = data.pixels["edep"] + data.pixels["noise"]
    PixelSaturation(saturation=2000).run(data, ctx)  # 2000 ADU x 0.72 eV/ADU = 1440 eV
    pix = data.pixels
    total = pix["edep"] + pix["noise"]
    assert np.array_equal(pix["saturated"], (before > 1440.0).astype(np.int8))
    assert pix["saturated"].sum() == 20
    assert np.allclose(total[pix["saturated"] == 1], 1440.0)
    assert np.array_equal(total[pix["saturated"] == 0], before[pix["saturated"] == 0])
    assert np.array_equal(pix["total_unclipped"], before)
    assert data.results["PixelSaturation"]["saturation_eV"] == pytest.approx(1440.0)
    assert data.counters["saturated pixels (clipped)"] == 20


def test_saturation_without_noise_and_without_adc2ev():
    data = make_events(np.arange(3), edep=2000.0)
    PixelSaturation(saturation=1000).run(data, context(data))
    assert np.allclose(data.pixels["edep"] + data.pixels["noise"], 720.0)
    assert np.all(data.pixels["total_unclipped"] == 2000.0) and np.all(data.pixels["edep"] == 2000.0)
    data = make_events(np.arange(3))
    data.detector = Detector(ccd_shape=[400, 600])
    with pytest.raises(ProcessError, match="ADC2eV"):
        PixelSaturation().run(data, context(data))


def test_noise_needs_pixels_and_dark_current_first():
    data = make_events(np.arange(3))
    data.pixels = None
    with pytest.raises(ConfigError, match="PixelizeSignal"):
        DarkCurrent().with_threshold(1.0).run(data, context(data))
    data = make_events(np.arange(3))
    ElectronicNoise().with_threshold(1.0).run(data, context(data))
    with pytest.raises(ProcessError, match="before ElectronicNoise"):
        DarkCurrent().with_threshold(1.0).run(data, context(data))


# --- configuration -----------------------------------------------------------------------
def test_pysimdamicm_sections_load():
    config = json.loads((CONFIGS / "psimulCCDimg_config_file.json").read_text())
    sections = config["detector_response"]

    def load(cls):
        section = {k: v for k, v in sections[cls.name].items() if k not in ("active", "units")}
        return cls.from_mapping(section)

    dc = load(DarkCurrent)
    assert dc.darkcurrent == pytest.approx(0.001 / DAY) and dc.exp_time == pytest.approx(DAY / 3)
    assert dc.img_size == 300 and dc.min_enlarge == 30 and dc.mode == "cropped-image"
    en = load(ElectronicNoise)
    assert en.sigma == 0.25 and en.pedestal == 0.0 and en.nSamples == 1
    sat = load(PixelSaturation)
    assert sat.saturation == 65535


# --- the threshold comes from the configuration, once ---------------------------------------
def test_the_chain_hands_clusterfinders_threshold_to_the_noise_steps():
    from waders.sim.noise import with_reconstruction_threshold
    from waders.sim.reconstruction import ClusterFinder

    chain = [dark_current(0.05, img_size=40), ElectronicNoise(sigma=0.3, img_size=40), ClusterFinder(spr_threshold=0.7)]
    bound = with_reconstruction_threshold(chain)
    assert [p.threshold_e for p in bound[:2]] == [0.7, 0.7] and bound[2] is chain[2]
    assert chain[0].threshold_e is None  # the configured processes are not modified
    assert [p.threshold_e for p in with_reconstruction_threshold(chain[:2])] == [None, None]  # no reconstruction
    # the bound chain appends exactly what a process constructed with the threshold appends
    a, b = make_events(np.arange(200)), make_events(np.arange(200))
    for process in bound[:2]:
        process.run(a, context(a))
    dark_current(0.05, img_size=40, threshold_e=0.7).run(b, context(b))
    ElectronicNoise(sigma=0.3, img_size=40, threshold_e=0.7).run(b, context(b))
    assert noise_only(a)["event"].size > 0 and (noise_only(a)["noise"] / E2EV).min() > 0.7
    for name in a.pixels:
        np.testing.assert_array_equal(a.pixels[name], b.pixels[name], err_msg=name)
    assert a.results["ElectronicNoise"]["threshold_e"] == 0.7


def test_nothing_reads_the_threshold_from_the_run_options():
    import waders.sim

    sources = [p for root in waders.sim.__path__ for p in Path(root).rglob("*.py")]
    assert sources
    for source in sources:
        assert not re.search(r"options\W{0,8}(get\W{0,4})?threshold_e", source.read_text()), source
