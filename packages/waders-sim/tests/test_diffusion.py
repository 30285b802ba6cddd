"""Diffusion: pair numbers, transverse spread versus depth, energy term, partial collection, keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.core.detector import Detector
from waders.core.errors import ConfigError, DataError
from waders.core.hits import HitCollection
from waders.core.pipeline import RunContext
from waders.data import PYSIMDAMICM_CONFIGS
from waders.data import path as data_path
from waders.sim.diffusion import Diffusion, pcc_efficiency
from waders.sim.events import SimEvents
from waders.sim.pairs import gauss_pairs
from waders.sim.random import CounterRNG

CONFIGS = data_path(PYSIMDAMICM_CONFIGS)
E2EV = 3.77
A_MM2 = 216.2e-6  # mm^2
B_MM = 0.886  # 1/mm


def make_data(x, y, z, edep, *, counts=None, event_id=None, time=None, ccd=None, pdg=None, seed=1) -> SimEvents:
    n = len(x)
    counts = np.ones(n, dtype=np.int64) if counts is None else np.asarray(counts)
    event_id = np.arange(len(counts)) if event_id is None else np.asarray(event_id)
    hits = {
        "x": np.asarray(x, dtype=float),
        "y": np.asarray(y, dtype=float),
        "z": np.asarray(z, dtype=float),
        "edep": np.asarray(edep, dtype=float),
        "time": np.zeros(n) if time is None else np.asarray(time, dtype=float),
        "ccd": np.ones(n, dtype=np.int32) if ccd is None else np.asarray(ccd, dtype=np.int32),
        "pdg": np.full(n, 11, dtype=np.int32) if pdg is None else np.asarray(pdg, dtype=np.int32),
    }
    detector = Detector(ccd_shape=[1000, 4000], e2eV=E2EV)
    return SimEvents(HitCollection.from_arrays(event_id, counts, hits), CounterRNG(seed), detector)


def run(process: Diffusion, data: SimEvents) -> dict[str, np.ndarray]:
    process.run(data, RunContext(seed=1, detector=data.detector))
    assert data.carriers is not None
    return data.carriers


def test_pysimdamicm_section_loads():
    config = json.loads((CONFIGS / "psimulCCDimg_config_file.json").read_text())
    section = {k: v for k, v in config["detector_response"]["Diffusion"].items() if k not in ("active", "units")}
    diffusion = Diffusion.from_mapping(section)
    assert diffusion.model == "gauss"
    assert np.isclose(diffusion.A, A_MM2)
    assert np.isclose(diffusion.B, B_MM)
    assert diffusion.fanofactor == 0.12
    assert diffusion.alpha == pytest.approx(5.97e-8)  # pixel/keVee -> pixel/eV (see the module doc)
    assert diffusion.alpha0 == 1.0 and not diffusion.only_pair_creation
    # pysimdamicm's other keys are accepted too
    Diffusion.from_mapping({"apply_pcc": 1, "pcc_debug": 1, "z_max": 669.0, "model": "karthik"})


def test_only_pair_creation_gives_the_exact_carriers_at_the_deposits():
    rng = np.random.default_rng(1)
    n_ev, per = 50, 4
    x, y = rng.uniform(1, 5, n_ev * per), rng.uniform(1, 5, n_ev * per)
    edep = rng.uniform(10, 5000, n_ev * per)
    data = make_data(x, y, rng.uniform(0, 0.6, x.size), edep, counts=np.full(n_ev, per), event_id=np.arange(n_ev) * 3)
    carriers = run(Diffusion(only_pair_creation=1, fanofactor=0.12), data)
    expected = gauss_pairs(
        edep,
        e2eV=E2EV,
        fano=0.12,
        rng=data.rng,
        event_id=np.repeat(np.arange(n_ev) * 3, per),
        hit_index=np.tile(np.arange(per), n_ev),
    )
    assert np.array_equal(np.bincount(carriers["hit"], minlength=x.size), expected)
    assert np.array_equal(carriers["x"], x[carriers["hit"]])
    assert np.array_equal(carriers["y"], y[carriers["hit"]])
    assert not carriers["sigma_xy"].any()
    assert np.array_equal(carriers["event"], np.repeat(np.arange(x.size) // per, expected))


def test_charge_conservation_within_fano_statistics():
    """Sum of carriers ~ Normal(sum E/e2eV, sqrt(F sum E/e2eV)): within 5 sigma."""
    rng = np.random.default_rng(2)
    edep = rng.uniform(100, 20_000, 2000)
    data = make_data(rng.uniform(1, 5, 2000), rng.uniform(1, 5, 2000), rng.uniform(0, 0.6, 2000), edep)
    carriers = run(Diffusion(fanofactor=0.12), data)
    mean = edep.sum() / E2EV
    assert abs(carriers["x"].size - mean) < 5 * np.sqrt(0.12 * mean)


@pytest.mark.parametrize("model", ["gauss", "karthik"])
def test_transverse_spread_follows_the_depth_law(model):
    """sigma(z) = sqrt(-A ln(1 - B z)) within 3 % at several depths.

    About 2.6e5 carriers per depth, two coordinates: the estimate of sigma has a relative
    statistical error of 1/sqrt(4 N) = 0.1 %.
    """
    depths = np.array([0.02, 0.15, 0.35, 0.55, 0.67])
    per = 200
    z = np.repeat(depths, per)
    x = np.full(z.size, 3.0)
    y = np.full(z.size, 4.0)
    data = make_data(x, y, z, np.full(z.size, 5000.0), counts=np.full(depths.size, per))
    carriers = run(Diffusion(model=model, alpha=0.0), data)
    dx = carriers["x"] - 3.0
    dy = carriers["y"] - 4.0
    depth_of = z[carriers["hit"]]
    for depth in depths:
        sel = depth_of == depth
        measured = np.sqrt(np.mean(dx[sel] ** 2 + dy[sel] ** 2) / 2)
        expected = np.sqrt(-A_MM2 * np.log(1 - B_MM * depth))
        assert measured == pytest.approx(expected, rel=0.03)
        assert np.allclose(carriers["sigma_xy"][sel], expected, rtol=1e-6, atol=0)  # float32 storage
        assert abs(np.corrcoef(dx[sel], dy[sel])[0, 1]) < 5 / np.sqrt(sel.sum())  # x and y independent


def test_depth_law_parameters_recovered_by_a_fit():
    """Fit sigma^2(z) = -A ln(1 - B z) to the measured spreads: A and B within 3 % of the truth."""
    from scipy.optimize import curve_fit

    depths = np.linspace(0.05, 0.65, 7)
    per = 100
    z = np.repeat(depths, per)
    data = make_data(np.full(z.size, 3.0), np.full(z.size, 4.0), z, np.full(z.size, 4000.0), counts=[per] * 7)
    carriers = run(Diffusion(alpha=0.0), data)
    depth_of = z[carriers["hit"]]
    measured = np.array(
        [
            np.mean((carriers["x"][depth_of == d] - 3.0) ** 2 + (carriers["y"][depth_of == d] - 4.0) ** 2) / 2
            for d in depths
        ]
    )
    (a, b), _ = curve_fit(
        lambda zz, a, b: -a * np.log(1 - b * zz), depths, measured * 1e6, p0=(150.0, 0.5), bounds=([0, 0], [1e3, 1.5])
    )
    assert a == pytest.approx(216.2, rel=0.03)  # um^2
    assert b == pytest.approx(0.886, rel=0.03)  # 1/mm


def test_energy_term_and_z_offset():
    """sigma <- sigma(z) (alpha0 + beta E), beta = alpha * pitch / sigma(z_max); no diffusion above z_offset."""
    diffusion = Diffusion(alpha=5.97e-5, alpha0=0.9, z_offset=10.0)  # alpha in pixel/keVee, z_offset in um
    z = np.array([0.005, 0.3, 0.3])
    energy = np.array([1e4, 1e3, 1e5])
    sigma = diffusion.sigma(z, energy, 0.015)
    sigma_z = np.sqrt(-A_MM2 * np.log(1 - B_MM * (0.3 - 0.01)))
    sigma_max = np.sqrt(-A_MM2 * np.log(1 - B_MM * (0.669 - 0.01)))
    beta = 5.97e-8 * 0.015 / sigma_max  # per eV
    assert sigma[0] == 0.0
    assert sigma[1:] == pytest.approx(sigma_z * (0.9 + beta * energy[1:]), rel=1e-12)
    # what pysimdamicm computed with "alpha": 5.97e-5 (its pix2mm*1e-3 factor), at 100 keV: +0.6 %
    assert beta * 1e5 == pytest.approx(5.97e-5 * 0.015e-3 / sigma_max * 1e5, rel=1e-12)
    # a value with its unit is converted as written: pixel/eVee is 1000 times larger
    assert Diffusion(alpha="5.97e-5 pixel/eVee").alpha == pytest.approx(5.97e-5)


def test_depth_beyond_the_model_is_a_data_error():
    data = make_data([1.0], [1.0], [0.6], [1000.0])
    with pytest.raises(DataError, match="beyond z_offset"):
        run(Diffusion(B=0.002, alpha=0), data)  # 1/B = 500 um
    with pytest.raises(ConfigError, match="z_max"):
        Diffusion(B=0.002, alpha=1e-5)  # sigma(z_max) undefined


def test_partial_charge_collection_thins_carriers():
    """Near the back surface each carrier survives with probability eps(z)."""
    thickness = 0.675
    z_back = thickness - 0.002  # eps = 0.247863
    eps = pcc_efficiency(np.array([z_back, thickness - 0.01, thickness + 0.001]), thickness)
    assert eps == pytest.approx([0.247863, 1.0, 0.0])
    n_hits = 300
    z = np.concatenate([np.full(n_hits, z_back), np.full(n_hits, 0.3)])
    data = make_data(np.full(2 * n_hits, 2.0), np.full(2 * n_hits, 2.0), z, np.full(2 * n_hits, 3770.0))
    with_pcc = run(Diffusion(apply_pcc=1), data)
    ref = make_data(np.full(2 * n_hits, 2.0), np.full(2 * n_hits, 2.0), z, np.full(2 * n_hits, 3770.0))
    without = run(Diffusion(), ref)
    back = z[without["hit"]] == z_back
    kept = np.sum(z[with_pcc["hit"]] == z_back)
    n = back.sum()
    assert abs(kept / n - 0.247863) < 5 * np.sqrt(0.25 * 0.75 / n)
    # carriers created deeper than 7.5 um from the back are all kept, unchanged
    deep_with = with_pcc["x"][z[with_pcc["hit"]] == 0.3]
    assert np.array_equal(deep_with, without["x"][~back])
    assert data.results["Diffusion"]["n_lost_pcc"] == n - kept


def test_repulsion_map(tmp_path):
    with pytest.raises(ConfigError, match="sigma_map_file is not set"):
        Diffusion(repulsion=1)
    with pytest.raises(ConfigError, match="not found"):
        Diffusion.from_mapping({"repulsion": 1, "sigma_map_file": str(tmp_path / "missing.csv")})
    path = tmp_path / "map.csv"
    # sigma (um) = 10 + energy (keV) + 1e4 * depth (m): bilinear interpolation is exact
    path.write_text("E_keV,0.0001,0.0003,0.0006\n1,12,14,17\n10,21,23,26\n100,111,113,116\n")
    diffusion = Diffusion.from_mapping({"repulsion": 1, "sigma_map_file": str(path)})
    sigma = diffusion.sigma(np.array([0.2, 0.5, 0.65]), np.array([5000.0, 50_000.0, 200_000.0]), 0.015)
    expected_um = 10 + np.array([5.0, 50.0, 200.0]) + 1e4 * np.array([0.2e-3, 0.5e-3, 0.65e-3])
    assert sigma == pytest.approx(expected_um * 1e-3)  # the last one is extrapolated
    bad = tmp_path / "bad.csv"
    bad.write_text("E,0.0001,0.0003\n10,1\n")
    with pytest.raises(ConfigError, match="sigma_map_file"):
        Diffusion(repulsion=1, sigma_map_file=str(bad))


def test_model_must_be_known():
    with pytest.raises(ConfigError):
        Diffusion(model="gaus_fit")


def test_karthik_collections_are_event_and_ccd():
    """Two CCDs of one event are separate collections; tiny collections can create no pair (killed)."""
    data = make_data(
        [1.0, 1.0, 2.0, 2.0, 3.0],
        [1.0, 1.0, 2.0, 2.0, 3.0],
        [0.1] * 5,
        [20.0, 25.0, 30.0, 2000.0, 1.12],
        counts=[4, 1],
        ccd=[1, 1, 2, 2, 1],
    )
    carriers = run(Diffusion(model="karthik"), data)
    per_hit = np.bincount(carriers["hit"], minlength=5)
    assert per_hit[:2].sum() >= 8  # 45 eV from the table: at least 8 pairs in the table row
    assert per_hit[4] == 0  # 1.12 eV rounds to the 1.10 eV row: no pair
    assert data.killed.tolist() == [False, True]
    assert data.counters == {"no electron-hole pair created": 1}


def test_carriers_do_not_depend_on_chunking():
    rng = np.random.default_rng(4)
    n_ev, per = 30, 3
    n = n_ev * per
    args = (rng.uniform(1, 5, n), rng.uniform(1, 5, n), rng.uniform(0, 0.6, n), rng.uniform(50, 3000, n))
    event_id = np.arange(n_ev) + 1000
    whole = make_data(*args, counts=np.full(n_ev, per), event_id=event_id)
    run(Diffusion(model="karthik", apply_pcc=1), whole)
    parts = []
    for lo, hi in ((0, 7), (7, 8), (8, 30)):
        sel = slice(lo * per, hi * per)
        chunk = make_data(*(a[sel] for a in args), counts=np.full(hi - lo, per), event_id=event_id[lo:hi])
        carriers = dict(run(Diffusion(model="karthik", apply_pcc=1), chunk))
        carriers["event"] = carriers["event"] + lo
        carriers["hit"] = carriers["hit"] + lo * per
        parts.append(carriers)
    for name, values in whole.carriers.items():
        assert np.array_equal(values, np.concatenate([p[name] for p in parts])), name


def test_killed_events_make_no_carriers():
    data = make_data([1.0, 2.0], [1.0, 2.0], [0.1, 0.1], [1000.0, 1000.0])
    data.kill(np.array([True, False]), "test")
    carriers = run(Diffusion(), data)
    assert set(carriers["hit"].tolist()) == {1}
