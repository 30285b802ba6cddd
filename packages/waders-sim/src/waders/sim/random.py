"""Counter-based random numbers: the same draws for an event whatever the chunking or workers.

A simulation draws, for example, the displacement of carrier ``k`` of hit ``h`` of event
``e``.  Instead of consuming a sequential stream (whose state would depend on which events
were simulated before in the same process), every draw is a hash of (seed, stream,
event id, further integer keys): SplitMix64's finaliser applied to a combination of the
keys, vectorised with numpy's uint64 arithmetic.  Events give identical results in a
serial run, in any chunk size and on any worker.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["CounterRNG"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / float(1 << 53)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (a bijection of uint64 with good avalanche)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def _stream_key(seed: int, stream: str) -> np.uint64:
    digest = hashlib.sha256(f"{int(seed)}/{stream}".encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


class CounterRNG:
    """Random numbers addressed by integer keys instead of a sequential state.

    Parameters
    ----------
    seed : int
        Seed of the simulation.

    Examples
    --------
    >>> rng = CounterRNG(42)
    >>> x = rng.normal("diffusion-x", event_ids, carrier_index)  # doctest: +SKIP
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def bits(self, stream: str, *keys: np.ndarray | int) -> np.ndarray:
        """64 random bits for every element of the broadcast keys."""
        with np.errstate(over="ignore"):
            state = np.full(
                np.broadcast_shapes(*(np.shape(k) for k in keys)) if keys else (), _stream_key(self.seed, stream)
            )
            for key in keys:
                state = _mix(state ^ (np.asarray(key).astype(np.uint64) + _GOLDEN) * _M2)
            return _mix(state + _GOLDEN)

    def uniform(self, stream: str, *keys: np.ndarray | int) -> np.ndarray:
        """Uniform numbers in (0, 1), one per element of the broadcast keys."""
        return ((self.bits(stream, *keys) >> np.uint64(11)).astype(np.float64) + 0.5) * _TO_UNIT

    def normal(self, stream: str, *keys: np.ndarray | int) -> np.ndarray:
        """Standard normal numbers (Box-Muller on two independent uniforms)."""
        u1 = self.uniform(stream + "/1", *keys)
        u2 = self.uniform(stream + "/2", *keys)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def poisson(self, mean: float | np.ndarray, stream: str, *keys: np.ndarray | int) -> np.ndarray:
        """Poisson numbers by inversion of the cumulative distribution (exact; vectorised).

        The mean may be a scalar or an array broadcast with the keys.  Large means
        (above 1000) use the normal approximation with continuity correction.
        """
        u = self.uniform(stream, *keys)
        mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), u.shape)
        out = np.zeros(u.shape, dtype=np.int64)
        small = mean <= 1000
        if np.any(~small):
            z = self.normal(stream + "/large", *keys)
            out[~small] = np.maximum(0, np.rint(mean[~small] + np.sqrt(mean[~small]) * z[~small])).astype(np.int64)
        if np.any(small):
            lam = mean[small]
            target = u[small]
            p = np.exp(-lam)
            cdf = p.copy()
            k = np.zeros(lam.shape, dtype=np.int64)
            active = target > cdf
            n_max = int(np.max(lam) + 12 * np.sqrt(np.max(lam)) + 12)
            for step in range(1, n_max + 1):
                if not active.any():
                    break
                p = np.where(active, p * lam / step, p)
                cdf = np.where(active, cdf + p, cdf)
                k = np.where(active, step, k)
                active &= target > cdf
            out[small] = k
        return out
