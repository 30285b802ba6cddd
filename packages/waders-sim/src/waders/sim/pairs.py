"""Electron-hole pair creation: how many electrons an energy deposit frees in silicon.

Two models, as pysimdamicm's ``Diffusion.model`` (spec C.3, C.4):

``"gauss"`` (:func:`gauss_pairs`)
    Every deposit independently: n = round(Normal(E/e2eV, sqrt(F·E/e2eV))), clipped at 0.
``"karthik"`` (:func:`karthik_pairs`)
    The total of a hit collection (one CCD of one event) is drawn at once: at most 50 eV
    from the 100 K ionisation-yield table ``data/p100K.dat`` (Ramanathan & Kurinsky 2020,
    :func:`p100k_table`), above from the discretised Fano distribution
    P(n) ∝ (2πnF)^(-1/2)·exp(-(n·e2eV - E)² / (2nF·e2eV²)); the total is then shared by
    the deposits: n_i = floor(N·E_i/E) and the remainder by independent draws with
    probabilities ∝ N·E_i/E - n_i (pysimdamicm's "method 1").

Random numbers come from the counter-based generator, addressed by Geant4 event id and an
index inside the event (hit index, CCD id, draw number), so the result of an event never
depends on the chunking.

Deliberate differences from pysimdamicm
---------------------------------------
* gauss: negative draws (possible for deposits of a few eV) give 0 pairs instead of
  crashing the carrier expansion.
* karthik, table regime: the row is the nearest 0.05 eV grid point,
  ``rint(E/0.05) - 22`` (floored at the 1.10 eV row).  pysimdamicm rounded E to a
  multiple of 0.05 and searched for the first row with energy >= that float; e.g.
  ``round(10/0.05)*0.05 = 10.000000000000002`` selected the 10.05 eV row.
* karthik, Gaussian regime: the candidate range extends to 7 standard deviations
  (probability ratio e^-24.5) instead of pysimdamicm's cut where the probability falls to
  5 % of the peak (about ±2.45 sigma), which truncated the distribution and lowered its
  variance, i.e. the effective Fano factor, by about 10 %.  Collections with more than
  :data:`MAX_CANDIDATES` candidates (sigma_n ≳ 36 e-, E ≳ 40 keV at F = 0.12) use
  round(Normal(E/e2eV, sqrt(F·E/e2eV))), which agrees with the discretised distribution
  to O(1/sqrt(n)) in shape (mean offset ≈ F electrons).
* karthik: collections are (event, CCD); pysimdamicm also split them by image time window
  (``img_exp_time``), which the chunk container does not represent.
"""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources

import numpy as np

from waders.core.lazy import lazy_module

from .random import CounterRNG

special = lazy_module("scipy.special")

__all__ = [
    "MAX_CANDIDATES",
    "TABLE_MAX_ENERGY",
    "discrete_fano_pairs",
    "distribute_pairs",
    "gauss_pairs",
    "karthik_pairs",
    "p100k_table",
    "table_pairs",
]

#: Highest energy (eV) of the p100K table; above, the discretised Fano Gaussian is used.
TABLE_MAX_ENERGY = 50.0
#: Energy step (eV) and first energy of the p100K table.
_TABLE_STEP = 0.05
_TABLE_FIRST_STEP = 22  # 1.10 eV / 0.05 eV
#: Largest candidate range drawn exactly from the discretised Fano distribution.
MAX_CANDIDATES = 512
#: Half-width of the candidate range of the discretised Fano distribution (standard deviations).
_N_SIGMA = 7.0
#: Elements of the (collections x candidates) work array, to bound memory.
_BLOCK_ELEMENTS = 1 << 22


@lru_cache(maxsize=1)
def p100k_table() -> tuple[np.ndarray, np.ndarray]:
    """The 100 K pair-creation table, loaded once.

    Returns
    -------
    energies : ndarray, shape (979,)
        Deposited energy of every row (eV), 1.10 to 50.00 in 0.05 eV steps.
    cdf : ndarray, shape (979, 21)
        Cumulative probability of creating at most 0, 1, ..., 20 pairs.  The two first
        rows (1.10 and 1.15 eV) have no probability in the file: they create 0 pairs.
    """
    text = resources.files("waders.sim").joinpath("data", "p100K.dat").read_text()
    table = np.loadtxt(io.StringIO(text))
    energies = table[:, 0].copy()
    probs = np.zeros((table.shape[0], 21))
    probs[:, 1:] = table[:, 1:]
    total = probs.sum(axis=1)
    empty = total <= 0
    probs[empty, 0] = 1.0
    probs /= np.where(empty, 1.0, total)[:, None]
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    energies.flags.writeable = False
    cdf.flags.writeable = False
    return energies, cdf


def table_pairs(energy: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Pairs from the p100K table for energies up to 50 eV, by inversion of the row's CDF.

    Parameters
    ----------
    energy : ndarray
        Deposited energies (eV), at most :data:`TABLE_MAX_ENERGY`.
    u : ndarray
        Uniform numbers in (0, 1), one per energy.

    Returns
    -------
    ndarray of int64
        Number of pairs (0 to 20).
    """
    _, cdf = p100k_table()
    row = np.rint(np.asarray(energy, dtype=np.float64) / _TABLE_STEP).astype(np.int64) - _TABLE_FIRST_STEP
    row = np.clip(row, 0, cdf.shape[0] - 1)
    return (cdf[row] < np.asarray(u)[:, None]).sum(axis=1).astype(np.int64)


def _fano_range(mean: np.ndarray, fano: float) -> tuple[np.ndarray, np.ndarray]:
    """Integers n where (n - m)² / (2nF) <= c²/2, c = :data:`_N_SIGMA` (roots of a quadratic in n)."""
    c = _N_SIGMA
    b = 2.0 * mean + fano * c * c
    root = c * np.sqrt((fano * c) ** 2 + 4.0 * mean * fano)
    lo = np.maximum(1, np.floor((b - root) / 2.0)).astype(np.int64)
    hi = np.ceil((b + root) / 2.0).astype(np.int64)
    return lo, hi


def discrete_fano_pairs(energy: np.ndarray, e2eV: float, fano: float, u: np.ndarray) -> np.ndarray:
    """Pairs from the discretised Fano distribution (energies above 50 eV), by inversion.

    P(n) ∝ (2πnF)^(-1/2)·exp(-(n - m)² / (2nF)), m = E/e2eV, n >= 1.

    Parameters
    ----------
    energy : ndarray
        Deposited energies (eV).
    e2eV : float
        Mean energy per pair (eV).
    fano : float
        Fano factor.
    u : ndarray
        Uniform numbers in (0, 1), one per energy.

    Returns
    -------
    ndarray of int64
    """
    mean = np.asarray(energy, dtype=np.float64) / e2eV
    u = np.asarray(u, dtype=np.float64)
    out = np.zeros(mean.shape, dtype=np.int64)
    if mean.size == 0:
        return out
    if fano <= 0:
        return np.rint(mean).astype(np.int64)
    lo, hi = _fano_range(mean, fano)
    size = hi - lo + 1
    big = size > MAX_CANDIDATES
    if big.any():
        m = mean[big]
        out[big] = np.maximum(0, np.rint(m + np.sqrt(fano * m) * special.ndtri(u[big]))).astype(np.int64)
    small = np.flatnonzero(~big)
    if small.size:
        order = small[np.argsort(size[small], kind="stable")]  # similar widths in a block
        rows = max(1, _BLOCK_ELEMENTS // int(size[small].max()))
        for start in range(0, order.size, rows):
            block = order[start : start + rows]
            width = int(size[block].max())
            n = lo[block, None] + np.arange(width)
            valid = n <= hi[block, None]
            m = mean[block, None]
            logw = -0.5 * np.log(n) - (n - m) ** 2 / (2.0 * n * fano)
            logw = np.where(valid, logw, -np.inf)
            w = np.exp(logw - logw.max(axis=1, keepdims=True))
            cdf = np.cumsum(w, axis=1)
            target = u[block] * cdf[:, -1]
            index = np.minimum((cdf < target[:, None]).sum(axis=1), size[block] - 1)
            out[block] = lo[block] + index
    return out


def gauss_pairs(
    energy: np.ndarray,
    *,
    e2eV: float,
    fano: float,
    rng: CounterRNG,
    event_id: np.ndarray,
    hit_index: np.ndarray,
    stream: str = "pairs-gauss",
) -> np.ndarray:
    """Pairs of every deposit: round(Normal(E/e2eV, sqrt(F·E/e2eV))), at least 0.

    Parameters
    ----------
    energy : ndarray
        Deposited energies (eV).
    e2eV : float
        Mean energy per pair (eV).
    fano : float
        Fano factor.
    rng : CounterRNG
        Counter-based random numbers.
    event_id, hit_index : ndarray of int
        Keys of the draws: Geant4 event id and index of the deposit in its event.
    stream : str
        Random stream name.

    Returns
    -------
    ndarray of int64
    """
    mean = np.asarray(energy, dtype=np.float64) / e2eV
    if mean.size == 0:
        return np.zeros(0, dtype=np.int64)
    z = rng.normal(stream, event_id, hit_index)
    n = np.rint(mean + np.sqrt(fano * np.maximum(mean, 0.0)) * z)
    return np.maximum(n, 0).astype(np.int64)


def distribute_pairs(
    energy: np.ndarray,
    collection: np.ndarray,
    total: np.ndarray,
    *,
    rng: CounterRNG,
    keys: tuple[np.ndarray, ...],
    stream: str = "pairs-share",
) -> np.ndarray:
    """Share the pairs of every collection among its deposits in proportion to their energy.

    n_i = floor(N·w_i) with w_i = E_i / Σ E; the remainder R = N - Σ n_i goes to R deposits
    drawn independently (with replacement) with probabilities ∝ N·w_i - n_i.

    Parameters
    ----------
    energy : ndarray
        Deposit energies (eV); non-positive energies get no pair.
    collection : ndarray of int
        Collection (0 .. C-1) of every deposit.
    total : ndarray of int, shape (C,)
        Pairs of every collection.
    rng : CounterRNG
        Counter-based random numbers.
    keys : tuple of ndarray, each shape (C,)
        Keys of the collection (e.g. event id and CCD id); the draw number is appended.
    stream : str
        Random stream name.

    Returns
    -------
    ndarray of int64
        Pairs of every deposit.
    """
    energy = np.maximum(np.asarray(energy, dtype=np.float64), 0.0)
    collection = np.asarray(collection, dtype=np.int64)
    total = np.asarray(total, dtype=np.int64)
    n_coll = total.size
    out = np.zeros(energy.size, dtype=np.int64)
    if energy.size == 0:
        return out
    order = np.argsort(collection, kind="stable")
    coll = collection[order]
    e = energy[order]
    e_tot = np.bincount(coll, weights=e, minlength=n_coll)
    has = e_tot[coll] > 0
    share = np.where(has, total[coll] * (e / np.where(has, e_tot[coll], 1.0)), 0.0)
    base = np.floor(share)
    frac = share - base
    n = base.astype(np.int64)
    remainder = total - np.bincount(coll, weights=base, minlength=n_coll).astype(np.int64)
    remainder = np.where(e_tot > 0, np.maximum(remainder, 0), 0)
    if remainder.any():
        counts = np.bincount(coll, minlength=n_coll)
        first = np.cumsum(counts) - counts
        last = first + counts - 1
        cum = np.cumsum(frac)
        offset = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)
        span = cum[np.maximum(last, 0)] - offset
        draw_coll = np.repeat(np.arange(n_coll), remainder)
        draw_index = np.arange(draw_coll.size) - np.repeat(np.cumsum(remainder) - remainder, remainder)
        u = rng.uniform(stream, *(np.asarray(k)[draw_coll] for k in keys), draw_index)
        target = offset[draw_coll] + u * span[draw_coll]
        pick = np.searchsorted(cum, target, side="left")
        pick = np.clip(pick, first[draw_coll], last[draw_coll])
        n += np.bincount(pick, minlength=e.size)
    out[order] = n
    return out


def karthik_pairs(
    energy: np.ndarray,
    collection: np.ndarray,
    *,
    e2eV: float,
    fano: float,
    rng: CounterRNG,
    keys: tuple[np.ndarray, ...],
    stream: str = "pairs-karthik",
) -> np.ndarray:
    """Pairs of every deposit with the "karthik" model (the total drawn per collection).

    Parameters
    ----------
    energy : ndarray
        Deposit energies (eV).
    collection : ndarray of int
        Collection (0 .. C-1) of every deposit: pysimdamicm's hit collection, one CCD of
        one event.
    e2eV : float
        Mean energy per pair (eV) of the Gaussian regime.
    fano : float
        Fano factor of the Gaussian regime.
    rng : CounterRNG
        Counter-based random numbers.
    keys : tuple of ndarray, each shape (C,)
        Keys of every collection (Geant4 event id, CCD id).
    stream : str
        Random stream name.

    Returns
    -------
    ndarray of int64
        Pairs of every deposit.
    """
    energy = np.asarray(energy, dtype=np.float64)
    collection = np.asarray(collection, dtype=np.int64)
    n_coll = len(keys[0]) if keys else 0
    if energy.size == 0:
        return np.zeros(0, dtype=np.int64)
    e_tot = np.bincount(collection, weights=np.maximum(energy, 0.0), minlength=n_coll)
    u = rng.uniform(stream, *keys)
    total = np.zeros(n_coll, dtype=np.int64)
    low = e_tot <= TABLE_MAX_ENERGY
    total[low] = table_pairs(e_tot[low], u[low])
    total[~low] = discrete_fano_pairs(e_tot[~low], e2eV, fano, u[~low])
    return distribute_pairs(energy, collection, total, rng=rng, keys=keys, stream=stream + "/share")
