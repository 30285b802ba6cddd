"""Pair creation: the 100 K table, the Fano statistics and the sharing of a collection's pairs."""

from __future__ import annotations

import numpy as np
import pytest

from waders.sim.pairs import (
    MAX_CANDIDATES,
    discrete_fano_pairs,
    distribute_pairs,
    gauss_pairs,
    karthik_pairs,
    p100k_table,
    table_pairs,
)
from waders.sim.random import CounterRNG

E2EV = 3.77
N = 20_000


def single_collections(energy: float, n: int = N, seed: int = 7) -> np.ndarray:
    """karthik pairs of n one-deposit collections (events 0..n-1, CCD 1) of the same energy."""
    ids = np.arange(n, dtype=np.int64)
    return karthik_pairs(
        np.full(n, energy),
        np.arange(n),
        e2eV=E2EV,
        fano=0.12,
        rng=CounterRNG(seed),
        keys=(ids, np.ones(n, dtype=np.int64)),
    )


def table_moments(energy: float) -> tuple[float, float]:
    energies, cdf = p100k_table()
    row = int(np.argmin(np.abs(energies - energy)))
    probs = np.diff(np.concatenate([[0.0], cdf[row]]))
    n = np.arange(21)
    mean = float((probs * n).sum())
    return mean, float((probs * (n - mean) ** 2).sum())


@pytest.mark.parametrize(("energy", "published"), [(3.0, 1.006), (10.0, 2.80), (50.0, 13.47)])
def test_mean_pairs_from_the_100K_table(energy, published):
    n = single_collections(energy)
    mean, var = table_moments(energy)
    error = np.sqrt(var / N)  # standard error of the sample mean
    assert abs(n.mean() - mean) < 5 * error + 1e-12
    assert abs(n.mean() - published) < 5 * error + 0.005  # published means are rounded to 3-4 digits


def test_table_rows_probabilities_at_10_eV():
    """10 eV is the 10.00 row (pysimdamicm's float search took 10.05): P(2,3,4) = 0.278, 0.640, 0.081."""
    u = CounterRNG(3).uniform("t", np.arange(N))
    n = table_pairs(np.full(N, 10.0), u)
    for k, p in ((2, 0.27835), (3, 0.63976), (4, 0.08144)):
        frac = np.mean(n == k)
        assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / N)


def test_table_lowest_rows_and_below_give_no_pair():
    u = CounterRNG(3).uniform("t", np.arange(100))
    assert not table_pairs(np.full(100, 1.1), u).any()
    assert not table_pairs(np.full(100, 1.15), u).any()
    assert not table_pairs(np.full(100, 0.3), u).any()  # floored at the 1.10 eV row
    assert (table_pairs(np.full(100, 1.2), u) == 1).all()


def test_table_is_loaded_once_and_read_only():
    first = p100k_table()
    assert p100k_table() is first
    energies, cdf = first
    assert energies.shape == (979,) and cdf.shape == (979, 21)
    assert energies[0] == pytest.approx(1.1) and energies[-1] == pytest.approx(50.0)
    assert np.all(cdf[:, -1] == 1.0)
    assert not cdf.flags.writeable


def test_gauss_fano_factor_recovered():
    """Var(n)/mean = F (+1/12 from rounding) for identical deposits; sample variance error sqrt(2/N) = 1 %."""
    fano = 0.12
    energy = 1000 * E2EV
    n = gauss_pairs(
        np.full(N, energy), e2eV=E2EV, fano=fano, rng=CounterRNG(1), event_id=np.arange(N), hit_index=np.zeros(N, int)
    )
    assert abs(n.mean() - 1000) < 5 * np.sqrt(fano * 1000 / N)
    assert n.var(ddof=1) / 1000 == pytest.approx(fano, rel=0.05)


def test_gauss_never_negative_and_keyed():
    energy = np.full(N, 0.5)
    kwargs = {"e2eV": E2EV, "fano": 5.0, "rng": CounterRNG(1), "hit_index": np.zeros(N, int)}
    n = gauss_pairs(energy, event_id=np.arange(N), **kwargs)
    assert n.min() == 0 and n.max() > 0
    # the draw of an event does not depend on the other events of the call
    part = gauss_pairs(energy[100:200], event_id=np.arange(100, 200), **{**kwargs, "hit_index": np.zeros(100, int)})
    assert np.array_equal(part, n[100:200])


@pytest.mark.parametrize("energy", [200.0, 1000 * E2EV, 1e6])
def test_karthik_gaussian_regime_fano_factor(energy):
    """Above 50 eV: discretised Fano distribution, Var/mean = F within 5 % (sample error 1 %).

    1 MeV collections have more than MAX_CANDIDATES candidates and use the rounded Normal.
    """
    n = single_collections(energy)
    mean = energy / E2EV
    assert abs(n.mean() - mean - 0.12) < 5 * np.sqrt(0.12 * mean / N) + 0.05  # mean is m + F to O(1/m)
    assert n.var(ddof=1) / mean == pytest.approx(0.12, rel=0.05)


def test_discrete_fano_big_and_small_branches_agree():
    """Just above and below MAX_CANDIDATES candidates the two samplers give the same moments."""
    u = CounterRNG(5).uniform("u", np.arange(N))
    moments = []
    for width in (MAX_CANDIDATES - 20, MAX_CANDIDATES + 20):
        mean = (width / 14.0) ** 2 / 0.12  # width ~ 14 sigma
        n = discrete_fano_pairs(np.full(N, mean * E2EV), E2EV, 0.12, u)
        moments.append((n.mean() - mean, n.var() / mean))
    (d1, f1), (d2, f2) = moments
    assert abs(d1 - d2) < 0.5 and f1 == pytest.approx(f2, rel=0.05)


def test_distribute_shares_in_proportion_to_energy():
    weights = np.array([100.0, 200.0, 700.0, 0.0])
    coll = np.repeat(np.arange(N), 4)
    energy = np.tile(weights, N)
    total = np.full(N, 265)
    n = distribute_pairs(energy, coll, total, rng=CounterRNG(2), keys=(np.arange(N),)).reshape(N, 4)
    assert (n.sum(axis=1) == 265).all()  # every pair is given to a deposit
    assert (n[:, 3] == 0).all()  # no energy, no pair
    expected = 265 * weights[:3] / 1000  # 26.5, 53, 185.5
    assert (n[:, :3] >= np.floor(expected)).all()
    assert np.allclose(n[:, :3].mean(axis=0), expected, atol=0.02)  # remainder draws: sd of the mean < 0.005


def test_karthik_collections_do_not_depend_on_the_call():
    """Deposits of a collection interleaved with other collections, and the same collection alone."""
    rng = CounterRNG(9)
    energy = np.array([30.0, 500.0, 20.0, 700.0, 5.0])
    coll = np.array([0, 1, 0, 1, 2])
    keys = (np.array([10, 11, 12]), np.array([1, 1, 1]))
    together = karthik_pairs(energy, coll, e2eV=E2EV, fano=0.12, rng=rng, keys=keys)
    alone = karthik_pairs(
        energy[[1, 3]], np.array([0, 0]), e2eV=E2EV, fano=0.12, rng=rng, keys=(np.array([11]), np.array([1]))
    )
    assert np.array_equal(together[[1, 3]], alone)
