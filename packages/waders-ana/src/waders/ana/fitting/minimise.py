"""One minimiser for many small problems at once: damped Newton (Levenberg-Marquardt), vectorised.

Binned fits of waders-ana fit thousands of small, independent models (the pedestal of every
row, the dark current of every slice).  :func:`minimise_batch` runs a Levenberg-Marquardt
iteration on all of them together: one batched linear solve per step, no Python loop over
problems.  The caller provides the objective, its gradient and a curvature matrix (the
Hessian, or the Fisher matrix for a likelihood) for any subset of the problems.

Per problem, a step ``(C + lambda diag|C|) delta = -g`` is tried and kept if it does not
increase the objective; ``lambda`` shrinks after a success and grows after a failure.
Parameters stay within ``[lower, upper]`` (a parameter on a bound with the gradient pushing
outwards is held there for the step), ``fixed`` parameters never move.  A problem is done
when its estimated distance to the minimum ``EDM = g^T C^-1 g / 2`` (in units of the
objective: for a negative log-likelihood, of the log-likelihood) is below ``tolerance``, or
when ``lambda`` exceeds 1e10 (no step improves it any more).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchMinimum", "Derivatives", "minimise_batch"]

#: ``derivatives(params, rows) -> (value, gradient, curvature)`` for the problems ``rows``:
#: shapes (R,), (R, P), (R, P, P) for ``params`` of shape (R, P).
Derivatives = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class BatchMinimum:
    """Result of :func:`minimise_batch`, one entry per problem.

    Attributes
    ----------
    params : numpy.ndarray, shape (S, P)
        Parameters at the minimum.
    value : numpy.ndarray, shape (S,)
        Objective there.
    curvature : numpy.ndarray, shape (S, P, P)
        Curvature matrix there (its inverse is the covariance for a negative log-likelihood).
    edm : numpy.ndarray, shape (S,)
        Estimated distance to the minimum (objective units; NaN when not computable).
    iterations : numpy.ndarray of int, shape (S,)
        Steps tried.
    converged : numpy.ndarray of bool, shape (S,)
        ``edm < tolerance``.
    """

    params: np.ndarray
    value: np.ndarray
    curvature: np.ndarray
    edm: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray


def _solve(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(matrix, vector[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("sij,sj->si", np.linalg.pinv(matrix), vector)


def restrict(matrix: np.ndarray, vector: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove the non-free directions: identity rows/columns of ``matrix`` and zero ``vector`` there.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (S, P, P)
    vector : numpy.ndarray, shape (S, P)
    free : numpy.ndarray of bool, shape (S, P) or (P,)

    Returns
    -------
    (matrix, vector)
    """
    free = np.broadcast_to(free, vector.shape)
    both = free[:, :, None] & free[:, None, :]
    eye = np.eye(matrix.shape[-1], dtype=bool)[None]
    return np.where(both, matrix, np.where(eye, 1.0, 0.0)), np.where(free, vector, 0.0)


def minimise_batch(
    derivatives: Derivatives,
    params: np.ndarray,
    *,
    lower: np.ndarray | float = -np.inf,
    upper: np.ndarray | float = np.inf,
    fixed: np.ndarray | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
) -> BatchMinimum:
    """Minimise ``S`` independent objectives of ``P`` parameters each, all at once.

    Parameters
    ----------
    derivatives : callable
        ``derivatives(params, rows)`` returns the objective (R,), its gradient (R, P) and a
        curvature matrix (R, P, P) at ``params`` (R, P) for the problems ``rows`` (indices
        into the batch, so that the caller can select their data).
    params : numpy.ndarray, shape (S, P)
        Starting values (clipped into the bounds).
    lower, upper : numpy.ndarray or float
        Bounds, shape (P,) or scalars.
    fixed : numpy.ndarray of bool, optional
        Parameters that are not fitted, shape (P,).
    max_iterations : int
        Steps per problem at most.
    tolerance : float
        Convergence: EDM below this (objective units).

    Returns
    -------
    BatchMinimum
    """
    params = np.array(params, dtype=np.float64, ndmin=2)
    n, n_par = params.shape
    lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n_par,))
    upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n_par,))
    fixed = np.zeros(n_par, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    params = np.clip(params, lower, upper)
    rows = np.arange(n)
    with np.errstate(all="ignore"):
        value, gradient, curvature = (np.array(a, dtype=np.float64) for a in derivatives(params, rows))
    eye = np.eye(n_par)
    damping = np.full(n, 1e-3)
    edm = np.full(n, np.nan)
    iterations = np.zeros(n, dtype=np.int64)
    active = rows
    for _ in range(max_iterations + 1):
        p, g, c = params[active], gradient[active], curvature[active]
        tiny = 1e-9 * np.maximum(1.0, np.abs(p))
        clamped = ((p <= lower + tiny) & (g > 0)) | ((p >= upper - tiny) & (g < 0))
        diagonal = np.abs(np.diagonal(c, axis1=1, axis2=2))
        floor = 1e-12 * np.maximum(diagonal.max(axis=1, keepdims=True), 1e-300)
        matrix, vector = restrict(c + eye * floor[:, :, None], g, ~clamped & ~fixed)
        with np.errstate(all="ignore"):
            edm[active] = 0.5 * np.einsum("si,si->s", vector, _solve(matrix, vector))
        keep = ~((edm[active] < tolerance) | (damping[active] > 1e10))
        active = active[keep]
        if active.size == 0:
            break
        matrix, vector = matrix[keep], vector[keep]
        scale = np.abs(np.diagonal(matrix, axis1=1, axis2=2)) + 1e-9
        with np.errstate(all="ignore"):
            step = _solve(matrix + damping[active, None, None] * eye * scale[:, :, None], -vector)
        step = np.where(np.isfinite(step), step, 0.0)
        trial = np.clip(p[keep] + step, lower, upper)
        with np.errstate(all="ignore"):
            t_value, t_gradient, t_curvature = derivatives(trial, active)
        better = np.isfinite(t_value) & (t_value <= value[active])
        accepted = active[better]
        params[accepted] = trial[better]
        value[accepted] = t_value[better]
        gradient[accepted] = t_gradient[better]
        curvature[accepted] = t_curvature[better]
        damping[active] = np.where(better, np.maximum(damping[active] * 0.2, 1e-9), damping[active] * 10.0)
        iterations[active] += 1
    return BatchMinimum(params, value, curvature, edm, iterations, edm < tolerance)
