"""Fitted cluster profiles: ``fSTD_X``, ``fPosX``, ``projectionX`` ... (pysimdamicm's ``get_fitted_STD``, spec B.10).

For every cluster and axis A (X: columns, Y: rows) the energy projection is histogrammed
in unit bins centred on the pixels, from ``minA - 1`` to ``maxA + 1`` (``DA + 2`` bins,
pysimdamicm's range ``minA - 1.5 .. maxA + 1.5``), with contents ``E / Qmax``; a Gaussian
is fitted to it, giving ``fSTD_A`` (sigma, pixels) and ``fPosA`` (mean, 1-based pixels,
bounded to ``[minA, maxA]`` as in pysimdamicm).  The histogram contents are stored as
``projectionA`` and, as pysimdamicm did, ``projectionX_cols``/``projectionY_rows`` =
``DA + 2`` evenly spaced values from ``minA - 1.5`` to ``maxA + 1.5`` (not the bin centres).

All clusters are fitted at once (vectorised damped Gauss-Newton on the per-cluster 3x3 normal
equations, solved in closed form, with steps lengthened or shortened from the ratio of
successive steps: :func:`_step_scale`, and never dividing sigma by more than two) on dense
arrays of the clusters with the same number of bins; there is no per-cluster Python loop, the
fit of a cluster does not depend on the other clusters, and it stops once its steps are below
:data:`TOLERANCE`. A cluster two pixels wide along A is fitted exactly by a whole range of
narrow Gaussians (about 0.1 to 0.15 pixel): its ``fSTD_A`` is where the iterations stop in that
range, which rounding can move by a few thousandths of a pixel. That stop depends only on the
ratio of the two contents, so these clusters (most of them in a noisy image) take their
``fSTD_A`` and ``fPosA`` from a table of the same fit over :data:`TABLE_POINTS` ratios
(:func:`_two_pixel_table`, computed once and shipped with the package): within 0.005 pixel of
their own fit for 95% of them.

Deliberate differences from pysimdamicm: the model is the Gaussian **integrated over each
pixel** (a pixel collects the charge landing anywhere in it), fitted by least squares,
so ``fSTD_A`` is the diffusion sigma of the charge cloud even below one pixel (pysimdamicm
ran ROOT's likelihood fit of a Gaussian evaluated at the bin centres, biased for narrow
clouds); a cluster one pixel wide along A has ``fSTD_A = 0`` (the fit's limit).
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

import numpy as np

from waders.core.lazy import lazy_module

from .properties import Groups

special = lazy_module("scipy.special")

__all__ = ["fitted_profiles"]

_ITERATIONS = 40
_SIGMA_MIN = 1e-3  # pixels
#: A step divides sigma by at most 1 / this: a longer one can land where the Gaussian fills one pixel, its
#: derivatives vanish and the fit stays, however poor (seen on 0.2% of the fitted clusters of the DAMIC-M image).
_SIGMA_SHRINK = 0.5
#: A fit stops when an accepted step moves the mean and sigma by less than this (pixels; the amplitude: relative).
TOLERANCE = 1e-7
#: Ratios in the table of two-pixel-wide fits (:func:`_two_pixel_table`), and the first pixel of its histograms.
TABLE_POINTS = 4001
_TABLE_PIXEL = 100
_SQRT_2PI = np.sqrt(2.0 * np.pi)
#: Bounds of the factor on a Gauss-Newton step (:func:`_step_scale`).
STEP_SCALE_MIN, STEP_SCALE_MAX = 0.5, 2.0
#: Clusters fitted together (see :func:`_fit`): 16384 was the fastest on the 800 MB and 3.2 GB stress images.
CHUNK_CLUSTERS = 16384
#: Histograms of up to this many bins are fitted in groups of equal size; wider ones are padded to a power of two.
_EXACT_BINS = 8
#: (row, column) of the upper triangle of the 3x3 normal matrix, row by row, and the diagonal among them.
_UPPER = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
_DIAGONAL = (0, 3, 5)


def _bucket(nbins: np.ndarray) -> np.ndarray:
    """Number of bins each cluster's histogram is padded to: its own up to 8, else the next power of two."""
    padded = 1 << np.ceil(np.log2(np.maximum(nbins, 1))).astype(np.int64)
    return np.where(nbins <= _EXACT_BINS, nbins, padded)


def _model(
    edges: np.ndarray, amp: np.ndarray, mu: np.ndarray, sigma: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    """Pixel-integrated Gaussian in every bin and its derivatives (arrays ``(bins, clusters)``).

    ``edges`` are the ``bins + 1`` bin edges of every cluster (one column per cluster); ``mask``
    (or None) is False on the bins that only pad a histogram to the width of its group (model and
    derivatives 0 there).  Written with in-place operations (fewer temporary arrays); the numbers
    are those of ``amp * frac, frac, amp * (p0 - p1) / sigma, amp * (p0 * u0 - p1 * u1) / sigma``.
    Clusters run along the rows (the last axis): sums over bins add whole rows, which is about
    ten times faster than summing the few bins of every cluster.
    """
    u = edges - mu
    u /= sigma
    cdf = special.ndtr(u)
    density = -0.5 * u
    density *= u
    np.exp(density, out=density)
    density /= _SQRT_2PI
    frac = cdf[1:] - cdf[:-1]
    d_mu = density[:-1] - density[1:]
    d_mu *= amp
    d_mu /= sigma
    d_sigma = density[:-1] * u[:-1]
    d_sigma -= density[1:] * u[1:]
    d_sigma *= amp
    d_sigma /= sigma
    out = (amp * frac, frac, d_mu, d_sigma)
    if mask is not None:
        for array in out:
            array *= mask
    return out


def _solve(sums: tuple[np.ndarray, ...], gradient: tuple[np.ndarray, ...]) -> np.ndarray:
    """Steps ``(3, clusters)`` of the symmetric 3x3 normal equations (closed form; pseudo-inverse where singular).

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
        step = np.empty((3, a.size))
        step[0] = c00 * g0 + c01 * g1 + c02 * g2
        step[1] = c01 * g0 + c11 * g1 + c12 * g2
        step[2] = c02 * g0 + c12 * g1 + c22 * g2
        step /= det
    singular = det == 0
    if singular.any():
        matrix = np.stack([a, b, c, b, d, e, c, e, f], axis=1)[singular].reshape(-1, 3, 3)
        rhs = np.stack(gradient, axis=1)[singular]
        step[:, singular] = (np.linalg.pinv(matrix) @ rhs[..., None])[..., 0].T
    return step


def _fit(
    low: np.ndarray, nbins: np.ndarray, h: np.ndarray, start: tuple[np.ndarray, ...], bounds: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Fit all clusters' histograms; return (mean, sigma) per cluster.

    ``h`` holds the histograms one after the other (``nbins`` bins each, the first centred on
    ``low - 1``).  Clusters with the same number of bins (see :func:`_bucket`) are fitted
    together on dense ``(bins, clusters)`` arrays, in chunks of :data:`CHUNK_CLUSTERS`; each fit
    is independent of the others and its sums run over its bins in order, so no number depends
    on the grouping or the chunks.
    """
    n = low.size
    mu, sigma = np.empty(n), np.empty(n)
    first = np.concatenate([[0], np.cumsum(nbins)[:-1]])
    width = _bucket(nbins)

    def fit(bins: int, members: np.ndarray) -> None:
        j = np.arange(bins)[:, None]
        real = j < nbins[members]
        contents = np.where(real, h[np.minimum(first[members] + j, h.size - 1)], 0.0)
        edges = (low[members] - 1.5) + np.arange(bins + 1, dtype=np.float64)[:, None]
        mu[members], sigma[members] = _fit_chunk(
            edges, contents, None if real.all() else real, tuple(s[members] for s in start),
            tuple(b[members] for b in bounds),
        )  # fmt: skip

    for bins in np.unique(width):  # in one thread: the array operations are short, a second one waits for the GIL
        members = np.flatnonzero(width == bins)
        for lo in range(0, members.size, CHUNK_CLUSTERS):
            fit(int(bins), members[lo : lo + CHUNK_CLUSTERS])
    return mu, sigma


def _fit_chunk(
    edges: np.ndarray,
    h: np.ndarray,
    mask: np.ndarray | None,
    start: tuple[np.ndarray, ...],
    bounds: tuple[np.ndarray, ...],
    tolerance: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the histograms ``h`` (``(bins, clusters)``, edges ``edges``, padding ``mask``); return (mean, sigma).

    At most :data:`_ITERATIONS` iterations; a cluster stops earlier once an accepted step moves its
    mean and sigma by less than ``tolerance`` pixels (default :data:`TOLERANCE`) and its amplitude
    by less than ``tolerance`` relative (0: never), or once its damping shows that no step improves
    it any more.  Stopped clusters leave the arrays (they are compacted when a quarter has stopped),
    so the cost follows the clusters still moving.  The model and its derivatives are evaluated once
    per iteration, at the trial parameters: the accepted ones are the next iteration's Jacobian.
    """
    tolerance = TOLERANCE if tolerance is None else tolerance
    n = start[0].size
    mu_out, sigma_out = np.empty(n), np.empty(n)
    active = np.arange(n)
    amp, mu, sigma = (np.array(s, dtype=np.float64) for s in start)
    low, high = bounds
    damping = np.full(n, 1e-3)
    previous, previous_scale = np.zeros((3, n)), np.ones(n)  # the last step (0: none) and its length factor

    def chi2(model: np.ndarray) -> np.ndarray:
        return ((h - model) ** 2).sum(axis=0)

    model, d_amp, d_mu, d_sigma = _model(edges, amp, mu, sigma, mask)
    current = chi2(model)
    stopped = np.zeros(n, dtype=bool)
    for _ in range(_ITERATIONS):
        residual = h - model
        jac = (d_amp, d_mu, d_sigma)
        gradient = tuple((jac[i] * residual).sum(axis=0) for i in range(3))
        sums = [(jac[i] * jac[j]).sum(axis=0) for i, j in _UPPER]
        for k in _DIAGONAL:  # Levenberg-Marquardt damping of the diagonal
            sums[k] = sums[k] + damping * np.maximum(sums[k], 1e-12)
        step = np.nan_to_num(_solve(tuple(sums), gradient))
        scale = _step_scale(step, previous, previous_scale)
        previous, previous_scale = step, scale
        step = step * scale
        new_amp = np.maximum(amp + step[0], 0.0)
        new_mu = np.clip(mu + step[1], low, high)
        new_sigma = np.maximum(sigma + step[2], np.maximum(_SIGMA_MIN, _SIGMA_SHRINK * sigma))
        trial_model = _model(edges, new_amp, new_mu, new_sigma, mask)
        trial = chi2(trial_model[0])
        better = (trial <= current) & ~stopped  # a stopped cluster keeps its parameters until it is dropped
        previous = np.where(better, previous, 0.0)  # a rejected step tells nothing about the next one
        converged = better & (np.abs(new_mu - mu) < tolerance) & (np.abs(new_sigma - sigma) < tolerance)
        converged &= np.abs(new_amp - amp) < tolerance * amp
        amp = np.where(better, new_amp, amp)
        mu = np.where(better, new_mu, mu)
        sigma = np.where(better, new_sigma, sigma)
        current = np.where(better, trial, current)
        damping = np.where(stopped, damping, np.where(better, damping / 3.0, damping * 10.0))
        stopped |= converged | (damping > 1e12)  # converged, or no step improves the fit any more
        for kept, new in zip((model, *jac), trial_model, strict=True):
            np.copyto(kept, new, where=better)
        d_amp, d_mu, d_sigma = jac
        if np.count_nonzero(stopped) * 4 >= stopped.size:  # drop the stopped clusters from the arrays
            mu_out[active[stopped]], sigma_out[active[stopped]] = mu[stopped], sigma[stopped]
            keep = ~stopped
            if not keep.any():
                return mu_out, sigma_out
            active, amp, mu, sigma, low, high, damping, current, previous_scale = (
                a[keep] for a in (active, amp, mu, sigma, low, high, damping, current, previous_scale)
            )
            edges, h, model, d_amp, d_mu, d_sigma, previous = (
                a[:, keep] for a in (edges, h, model, d_amp, d_mu, d_sigma, previous)
            )
            mask = None if mask is None else mask[:, keep]
            stopped = np.zeros(active.size, dtype=bool)
    mu_out[active], sigma_out[active] = mu, sigma
    return mu_out, sigma_out


def _step_scale(step: np.ndarray, previous: np.ndarray, previous_scale: np.ndarray) -> np.ndarray:
    """Length factor of every cluster's Gauss-Newton step, from its ratio to the cluster's previous step.

    On a histogram that a Gaussian does not fit well (large residuals: most noise clusters),
    Gauss-Newton converges only linearly, ``x[k+1] - x* = r (x[k] - x*)``: its steps overshoot
    and alternate (``r < 0``) or creep along a valley (``0 < r < 1``).  If the previous step
    ``p`` was taken with factor ``c``, the new step ``s`` is ``q = s.p / p.p`` times it with
    ``r = 1 + (q - 1) / c``, and ``s / (1 - r)`` lands on ``x*`` where that holds (Aitken's
    extrapolation).  The factor stays within [:data:`STEP_SCALE_MIN`, :data:`STEP_SCALE_MAX`]
    (1 without a previous step), and the chi2 test still rejects a step that does not improve
    the fit.  It halves the iterations of the fits of a noisy image.
    """
    with np.errstate(all="ignore"):
        ratio = (step * previous).sum(axis=0) / (previous * previous).sum(axis=0)
        rate = 1.0 + (ratio - 1.0) / previous_scale
        scale = np.clip(1.0 / (1.0 - rate), STEP_SCALE_MIN, STEP_SCALE_MAX)
    return np.where(np.isfinite(scale), scale, 1.0)


def _start(h: np.ndarray, nbins: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starting amplitude, mean and sigma of every histogram: its sum, mean and rms (at least 0.3 pixel)."""
    n = nbins.size
    first_bin = np.concatenate([[0], np.cumsum(nbins)[:-1]])
    bin_cluster = np.repeat(np.arange(n), nbins)
    x = (low[bin_cluster] - 1 + np.arange(h.size) - first_bin[bin_cluster]).astype(np.float64)
    total = np.bincount(bin_cluster, weights=h, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.bincount(bin_cluster, weights=h * x, minlength=n) / total
        spread = np.sqrt(np.bincount(bin_cluster, weights=h * (x - pos[bin_cluster]) ** 2, minlength=n) / total)
    pos = np.where(np.isfinite(pos), pos, low)
    spread = np.where(np.isfinite(spread), np.maximum(spread, 0.3), 0.5)
    return total, pos, spread


def _fit_all(h: np.ndarray, nbins: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit histograms at least two pixels wide (``nbins`` bins each, the first centred on ``low - 1``)."""
    bound_low = low.astype(np.float64)
    return _fit(bound_low, nbins, h, _start(h, nbins, low), (bound_low, bound_low + (nbins - 3)))


#: The tabulated fits (:func:`_compute_two_pixel_table`), shipped with the package.
TABLE_FILE = "data/two_pixel_profile_fit.npy"


@functools.cache
def _two_pixel_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fit of two-pixel-wide histograms as a function of their content ratio (:func:`_compute_two_pixel_table`).

    Read from :data:`TABLE_FILE` (computing it takes about 0.05 s, paid by every command that
    fits profiles); :func:`_write_two_pixel_table` writes it again after a change of the fit.
    """
    with files("waders.ana").joinpath(TABLE_FILE).open("rb") as handle:
        offset, sigma = np.load(handle)
    return _table_ratios(), offset, sigma


def _table_ratios() -> np.ndarray:
    """Content ratios ``h2 / (h1 + h2)`` of the table: :data:`TABLE_POINTS` evenly spaced, 0 and 1 left out."""
    return np.linspace(0.0, 1.0, TABLE_POINTS)[1:-1]


def _compute_two_pixel_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit two-pixel-wide histograms over the table's content ratios (module docstring).

    Returns the ratios ``r = h2 / (h1 + h2)`` (:func:`_table_ratios`), and the fitted mean
    (pixels after the first pixel) and sigma (pixels) of ``[0, h1, h2, 0]`` with
    ``max(h1, h2) = 1`` (the usual single-row cluster), first pixel :data:`_TABLE_PIXEL`.
    """
    ratio = _table_ratios()
    peak = np.maximum(ratio, 1.0 - ratio)
    zeros = np.zeros(ratio.size)
    h = np.stack([zeros, (1.0 - ratio) / peak, ratio / peak, zeros], axis=1).ravel()
    low = np.full(ratio.size, _TABLE_PIXEL)
    mu, sigma = _fit_all(h, np.full(ratio.size, 4), low)
    return ratio, mu - _TABLE_PIXEL, sigma


def _write_two_pixel_table(path: str | Path | None = None) -> None:
    """Write :func:`_compute_two_pixel_table`'s mean offsets and sigmas (a ``(2, points)`` array).

    ``path`` defaults to the package's :data:`TABLE_FILE` (in a source checkout).
    """
    _, offset, sigma = _compute_two_pixel_table()
    np.save(path or Path(__file__).resolve().parents[1] / TABLE_FILE, np.stack([offset, sigma]))


def _fitted(h: np.ndarray, nbins: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fitted mean and sigma of every histogram (``nbins`` bins each, the first centred on ``low - 1``).

    One pixel wide: sigma 0 (the fit's limit), mean at that pixel.  Two pixels wide: read from
    :func:`_two_pixel_table` by content ratio.  Wider: fitted (:func:`_fit`).
    """
    mu, sigma = low.astype(np.float64), np.zeros(nbins.size)
    first_bin = np.concatenate([[0], np.cumsum(nbins)[:-1]])
    two = np.flatnonzero(nbins == 4)
    h1, h2 = h[first_bin[two] + 1], h[first_bin[two] + 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = h2 / (h1 + h2)
    ratios, offset, width = _two_pixel_table()
    in_table = (ratio >= ratios[0]) & (ratio <= ratios[-1]) & (h1 > 0) & (h2 > 0)
    tabulated = two[in_table]
    mu[tabulated] += np.interp(ratio[in_table], ratios, offset)
    sigma[tabulated] = np.interp(ratio[in_table], ratios, width)
    fit = nbins > 3
    fit[tabulated] = False
    if fit.any():
        bin_cluster = np.repeat(np.arange(nbins.size), nbins)
        mu[fit], sigma[fit] = _fit_all(h[fit[bin_cluster]], nbins[fit], low[fit])
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
    histograms = {name: _projection(groups, coord, energy, qmax) for name, coord in coords.items()}
    # both axes are fitted in one call: fewer, larger array operations
    h, nbins, low = (np.concatenate([p[i] for p in histograms.values()]) for i in range(3))
    mu, sigma = _fitted(h, nbins, low)
    scalars: dict[str, np.ndarray] = {}
    lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k, (name, (h, nbins, low)) in enumerate(histograms.items()):
        scalars[f"fSTD_{name}"] = sigma[k * groups.n : (k + 1) * groups.n]
        scalars[f"fPos{name}"] = mu[k * groups.n : (k + 1) * groups.n]
        lists[f"projection{name}"] = (h, nbins)
        first_bin = np.concatenate([[0], np.cumsum(nbins)[:-1]])
        bin_cluster = np.repeat(np.arange(groups.n), nbins)
        local = np.arange(int(nbins.sum())) - first_bin[bin_cluster]
        start, stop = low - 1.5, low + nbins - 1.5
        spaced = start[bin_cluster] + (stop - start)[bin_cluster] * local / (nbins[bin_cluster] - 1)
        lists["projectionX_cols" if name == "X" else f"projection{name}_rows"] = (spaced, nbins)
    return scalars, lists


def _projection(
    groups: Groups, coord: np.ndarray, energy: np.ndarray, qmax: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms ``E / Qmax`` of every cluster's projection on one axis: (contents, bins per cluster, lowest pixel)."""
    coord = np.rint(np.asarray(coord, dtype=np.float64)).astype(np.int64)
    low, high = groups.min(coord), groups.max(coord)
    nbins = high - low + 3
    first_bin = np.concatenate([[0], np.cumsum(nbins)[:-1]])
    bin_of_pixel = first_bin[groups.index] + coord - (low[groups.index] - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(qmax[groups.index] != 0, energy / qmax[groups.index], 0.0)
    return np.bincount(bin_of_pixel, weights=weights, minlength=int(nbins.sum())), nbins, low
