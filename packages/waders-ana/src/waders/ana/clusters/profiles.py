"""Fitted cluster profiles: ``fSTD_X``, ``fPosX``, ``projectionX`` ... (pysimdamicm's ``get_fitted_STD``, spec B.10).

For every cluster and axis A (X: columns, Y: rows) the energy projection is histogrammed
in unit bins centred on the pixels, from ``minA - 1`` to ``maxA + 1`` (``DA + 2`` bins,
pysimdamicm's range ``minA - 1.5 .. maxA + 1.5``), with contents ``E / Qmax``; a Gaussian
is fitted to it, giving ``fSTD_A`` (sigma, pixels) and ``fPosA`` (mean, 1-based pixels,
bounded to ``[minA, maxA]`` as in pysimdamicm).  The histogram contents are stored as
``projectionA`` and, as pysimdamicm did, ``projectionX_cols``/``projectionY_rows`` =
``DA + 2`` evenly spaced values from ``minA - 1.5`` to ``maxA + 1.5`` (not the bin centres).

All clusters are fitted at once (vectorised damped Gauss-Newton on the per-cluster 3x3
normal equations, solved in closed form), in chunks of clusters; there is no per-cluster
Python loop, and the fit of a cluster does not depend on the other clusters.  A cluster two
pixels wide along A is fitted exactly by a whole range of narrow Gaussians (about 0.13 to
0.15 pixel): its ``fSTD_A`` is where the 40 iterations stop in that range, which rounding
can move by a few thousandths of a pixel.

Deliberate differences from pysimdamicm: the model is the Gaussian **integrated over each
pixel** (a pixel collects the charge landing anywhere in it), fitted by least squares,
so ``fSTD_A`` is the diffusion sigma of the charge cloud even below one pixel (pysimdamicm
ran ROOT's likelihood fit of a Gaussian evaluated at the bin centres, biased for narrow
clouds); a cluster one pixel wide along A has ``fSTD_A = 0`` (the fit's limit).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from waders.core.lazy import lazy_module

from .properties import Groups

special = lazy_module("scipy.special")

__all__ = ["fitted_profiles"]

_ITERATIONS = 40
_SIGMA_MIN = 1e-3  # pixels
_SQRT_2PI = np.sqrt(2.0 * np.pi)
#: Clusters fitted together (see :func:`_fit`).
CHUNK_CLUSTERS = 8192
#: Threads fitting chunks at once (two: about 20% faster than one on two processors; more add little).
FIT_THREADS = min(2, os.cpu_count() or 1)
#: (row, column) of the upper triangle of the 3x3 normal matrix, row by row, and the diagonal among them.
_UPPER = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
_DIAGONAL = (0, 3, 5)


def _phi(u: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * u * u) / _SQRT_2PI


class _Edges:
    """Bin edges of all the histograms, one after the other: adjacent bins share an edge (one CDF per edge).

    Bins of a cluster are consecutive; with ``b`` the global bin index and ``k`` its cluster, the lower
    edge of bin ``b`` is edge ``b + k`` and its upper edge ``b + k + 1`` (one more edge than bins per
    cluster).  Per-bin arrays are computed for every pair of consecutive edges (``u[1:]``, ``u[:-1]``,
    no gathering); the pair joining two clusters is a dummy bin of the extra cluster ``n`` (contents
    0, amplitude 0), dropped from the sums.
    """

    def __init__(self, bin_cluster: np.ndarray, x: np.ndarray, n: int) -> None:
        lower = np.arange(bin_cluster.size) + bin_cluster
        self.n = n
        self.x = np.empty(bin_cluster.size + n)
        self.cluster = np.empty(self.x.size, dtype=np.int64)
        self.x[lower], self.x[lower + 1] = x - 0.5, x + 0.5  # x + 0.5 of a bin is x - 0.5 of the next
        self.cluster[lower], self.cluster[lower + 1] = bin_cluster, bin_cluster
        #: Cluster of every pair of consecutive edges (n: the dummy cluster).
        self.pair_cluster = np.full(self.x.size - 1, n, dtype=np.int64)
        self.pair_cluster[lower] = bin_cluster
        self.real = lower

    def per_pair(self, per_bin: np.ndarray) -> np.ndarray:
        """Values of the bins spread over the pairs of edges (0 for the dummy bins)."""
        out = np.zeros(self.pair_cluster.size)
        out[self.real] = per_bin
        return out

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """Sum of per-pair values over every cluster's bins (the dummy bins left out)."""
        return np.bincount(self.pair_cluster, weights=weights, minlength=self.n + 1)[: self.n]

    def spread(self, per_cluster: np.ndarray, dummy: float) -> np.ndarray:
        """A per-cluster value on every pair of edges (``dummy`` on the dummy bins)."""
        return np.append(per_cluster, dummy)[self.pair_cluster]


def _model(edges: _Edges, amp: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pixel-integrated Gaussian per bin and its derivatives (parameters per cluster; see :class:`_Edges`).

    Written with in-place operations (fewer temporary arrays); the numbers are those of
    ``amp * frac, frac, amp * (p0 - p1) / sigma, amp * (p0 * u0 - p1 * u1) / sigma``.
    """
    u = edges.x - mu[edges.cluster]
    u /= sigma[edges.cluster]
    cdf = special.ndtr(u)
    density = -0.5 * u
    density *= u
    np.exp(density, out=density)
    density /= _SQRT_2PI
    frac = cdf[1:] - cdf[:-1]
    amp, sigma = edges.spread(amp, 0.0), edges.spread(sigma, 1.0)
    d_mu = density[:-1] - density[1:]
    d_mu *= amp
    d_mu /= sigma
    d_sigma = density[:-1] * u[:-1]
    d_sigma -= density[1:] * u[1:]
    d_sigma *= amp
    d_sigma /= sigma
    return amp * frac, frac, d_mu, d_sigma


def _solve(sums: tuple[np.ndarray, ...], gradient: tuple[np.ndarray, ...]) -> np.ndarray:
    """Steps of the symmetric 3x3 normal equations of every cluster (closed form); the pseudo-inverse where singular.

    ``sums`` are the matrix entries (a, b, c, d, e, f) of ``[[a, b, c], [b, d, e], [c, e, f]]`` per cluster and
    ``gradient`` the right-hand sides.  The adjugate formula costs a few array operations for all clusters at once
    (a batched LAPACK solve spends microseconds per 3x3 matrix); a cluster whose determinant is 0 (e.g. a fit that
    is already exact, where the damping no longer counts) takes the pseudo-inverse's least-norm step.
    """
    a, b, c, d, e, f = sums
    g0, g1, g2 = gradient
    with np.errstate(all="ignore"):
        c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
        c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
        det = a * c00 + b * c01 + c * c02
        step = np.empty((a.size, 3))
        step[:, 0] = c00 * g0 + c01 * g1 + c02 * g2
        step[:, 1] = c01 * g0 + c11 * g1 + c12 * g2
        step[:, 2] = c02 * g0 + c12 * g1 + c22 * g2
        step /= det[:, None]
    singular = det == 0
    if singular.any():
        matrix = np.stack([a, b, c, b, d, e, c, e, f], axis=1)[singular].reshape(-1, 3, 3)
        rhs = np.stack(gradient, axis=1)[singular]
        step[singular] = (np.linalg.pinv(matrix) @ rhs[..., None])[..., 0]
    return step


def _fit(
    bin_cluster: np.ndarray, x: np.ndarray, h: np.ndarray, start: tuple[np.ndarray, ...], bounds: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Fit all clusters' histograms; return (mean, sigma) per cluster.

    The clusters are fitted in chunks of :data:`CHUNK_CLUSTERS` (each fit is independent of the others, so
    the numbers do not depend on the chunks): the temporary arrays of a chunk stay in the processor's caches,
    and :data:`FIT_THREADS` chunks are fitted at once.
    """
    n = start[0].size
    if n <= CHUNK_CLUSTERS:
        return _fit_chunk(bin_cluster, x, h, start, bounds)
    mu, sigma = np.empty(n), np.empty(n)
    first_bin = np.searchsorted(bin_cluster, np.arange(0, n + CHUNK_CLUSTERS, CHUNK_CLUSTERS).clip(max=n))

    def fit(k: int) -> None:
        lo, hi = k * CHUNK_CLUSTERS, min((k + 1) * CHUNK_CLUSTERS, n)
        bins = slice(first_bin[k], first_bin[k + 1])
        mu[lo:hi], sigma[lo:hi] = _fit_chunk(
            bin_cluster[bins] - lo, x[bins], h[bins], tuple(s[lo:hi] for s in start), tuple(b[lo:hi] for b in bounds)
        )

    chunks = range(len(first_bin) - 1)
    with ThreadPoolExecutor(max_workers=FIT_THREADS, thread_name_prefix="waders-fit") as pool:
        for done in [pool.submit(fit, k) for k in chunks]:  # numpy and scipy release the GIL in array operations
            done.result()
    return mu, sigma


def _fit_chunk(
    bin_cluster: np.ndarray, x: np.ndarray, h: np.ndarray, start: tuple[np.ndarray, ...], bounds: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the histograms of some clusters (bins of cluster 0 first); return (mean, sigma) per cluster.

    The model and its derivatives are evaluated once per iteration, at the trial parameters: the
    accepted ones are the next iteration's Jacobian (the same numbers a second evaluation would give).
    """
    n = start[0].size
    amp, mu, sigma = (np.array(s, dtype=np.float64) for s in start)
    low, high = bounds
    damping = np.full(n, 1e-3)

    edges = _Edges(bin_cluster, x, n)
    h = edges.per_pair(h)

    def chi2(model: np.ndarray) -> np.ndarray:
        return edges.sums((h - model) ** 2)

    model, d_amp, d_mu, d_sigma = _model(edges, amp, mu, sigma)
    current = chi2(model)
    for _ in range(_ITERATIONS):
        residual = h - model
        jac = (d_amp, d_mu, d_sigma)
        gradient = tuple(edges.sums(jac[i] * residual) for i in range(3))
        sums = [edges.sums(jac[i] * jac[j]) for i, j in _UPPER]
        for k in _DIAGONAL:  # Levenberg-Marquardt damping of the diagonal
            sums[k] = sums[k] + damping * np.maximum(sums[k], 1e-12)
        step = np.nan_to_num(_solve(tuple(sums), gradient))
        new_amp = np.maximum(amp + step[:, 0], 0.0)
        new_mu = np.clip(mu + step[:, 1], low, high)
        new_sigma = np.maximum(sigma + step[:, 2], _SIGMA_MIN)
        trial_model = _model(edges, new_amp, new_mu, new_sigma)
        trial = chi2(trial_model[0])
        better = trial <= current
        amp = np.where(better, new_amp, amp)
        mu = np.where(better, new_mu, mu)
        sigma = np.where(better, new_sigma, sigma)
        current = np.where(better, trial, current)
        damping = np.where(better, damping / 3.0, damping * 10.0)
        taken = edges.spread(better, False)
        for kept, new in zip((model, *jac), trial_model, strict=True):
            np.copyto(kept, new, where=taken)
        d_amp, d_mu, d_sigma = jac
    return mu, sigma


def fitted_profiles(
    groups: Groups, coords: dict[str, np.ndarray], energy: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Fitted sigma and mean of every cluster's projections on each axis (module docstring).

    Parameters
    ----------
    groups : Groups
        Pixel grouping.
    coords : dict
        ``{"X": columns, "Y": rows}`` of every pixel (1-based integer pixels).
    energy : numpy.ndarray
        Pixel energies (any unit).

    Returns
    -------
    scalars : dict
        ``fSTD_A``, ``fPosA`` per cluster (pixels).
    lists : dict
        ``{"projectionA": (contents, counts), "projectionX_cols"/"projectionY_rows": (values, counts)}``:
        flat values and the number of bins of every cluster.
    """
    energy = np.asarray(energy, dtype=np.float64)
    if groups.n == 0:
        empty, none = np.zeros(0), np.zeros(0, dtype=np.int64)
        names = [f"{kind}{axis}" for axis in coords for kind in ("fSTD_", "fPos")]
        lists = ["projectionX", "projectionX_cols", "projectionY", "projectionY_rows"]
        return dict.fromkeys(names, empty), dict.fromkeys(lists, (empty, none))
    qmax = groups.max(energy)
    scalars: dict[str, np.ndarray] = {}
    lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, coord in coords.items():
        coord = np.rint(np.asarray(coord, dtype=np.float64)).astype(np.int64)
        low, high = groups.min(coord), groups.max(coord)
        nbins = high - low + 3
        first_bin = np.concatenate([[0], np.cumsum(nbins)[:-1]])
        bin_of_pixel = first_bin[groups.index] + coord - (low[groups.index] - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            weights = np.where(qmax[groups.index] != 0, energy / qmax[groups.index], 0.0)
        h = np.bincount(bin_of_pixel, weights=weights, minlength=int(nbins.sum()))
        bin_cluster = np.repeat(np.arange(groups.n), nbins)
        local = np.arange(int(nbins.sum())) - first_bin[bin_cluster]
        x = (low[bin_cluster] - 1 + local).astype(np.float64)
        total = np.bincount(bin_cluster, weights=h, minlength=groups.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = np.bincount(bin_cluster, weights=h * x, minlength=groups.n) / total
            spread = np.sqrt(
                np.bincount(bin_cluster, weights=h * (x - pos[bin_cluster]) ** 2, minlength=groups.n) / total
            )
        pos = np.where(np.isfinite(pos), pos, low)
        spread = np.where(np.isfinite(spread), np.maximum(spread, 0.3), 0.5)
        # clusters one pixel wide along the axis: sigma 0 (the fit's limit), mean at that pixel; fit the others
        wide = high > low
        compact = np.cumsum(wide) - 1
        in_fit = wide[bin_cluster]
        mu, sigma = low.astype(np.float64), np.zeros(groups.n)
        if wide.any():
            mu[wide], sigma[wide] = _fit(
                compact[bin_cluster[in_fit]], x[in_fit], h[in_fit],
                (total[wide], pos[wide], spread[wide]), (low[wide].astype(float), high[wide].astype(float)),
            )  # fmt: skip
        scalars[f"fSTD_{name}"] = sigma
        scalars[f"fPos{name}"] = mu
        lists[f"projection{name}"] = (h, nbins)
        start, stop = low - 1.5, high + 1.5
        spaced = start[bin_cluster] + (stop - start)[bin_cluster] * local / (nbins[bin_cluster] - 1)
        lists["projectionX_cols" if name == "X" else f"projection{name}_rows"] = (spaced, nbins)
    return scalars, lists
