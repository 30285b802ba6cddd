"""The two fit kernels on their own: the Baker-Cousins deviance and the batched minimiser.

Truth tests: a perfect model has zero deviance; the deviance of Poisson data follows chi2
with the number of bins (minus fitted parameters) as degrees of freedom; the minimiser
finds the known minimum of quadratic problems (with bounds and fixed parameters) and
recovers the true parameters of many small Poisson fits with pulls of mean 0 and width 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from waders.ana.fitting.deviance import deviance_terms, poisson_deviance
from waders.ana.fitting.minimise import minimise_batch


def test_deviance_of_a_perfect_model_is_zero_and_of_empty_bins_twice_the_expectation():
    expected = np.array([[0.5, 3.0, 12.0, 100.0], [1.0, 2.0, 3.0, 4.0]])
    assert np.allclose(poisson_deviance(expected, expected), 0.0, atol=1e-12)
    assert np.allclose(deviance_terms(np.zeros(4), expected[0]), 2 * expected[0])
    assert np.all(deviance_terms(expected[1][::-1], expected[1]) > 0)  # any other model is worse
    assert poisson_deviance(expected, expected, axis=None) == pytest.approx(0.0, abs=1e-12)


def test_deviance_of_poisson_data_follows_chi2_with_the_number_of_bins():
    rng = np.random.default_rng(11)
    n_bins, n_hist = 20, 4000
    mu = np.linspace(20.0, 60.0, n_bins)
    chi2 = poisson_deviance(rng.poisson(mu, size=(n_hist, n_bins)), mu)
    # E[D] = ndf + sum 1/(6 mu) to first order (the Baker-Cousins bias); sigma of the mean sqrt(2 ndf / N)
    bias = float((1.0 / (6.0 * mu)).sum())
    assert abs(chi2.mean() - n_bins - bias) < 5 * math.sqrt(2 * n_bins / n_hist)
    assert stats.kstest(chi2, stats.chi2(n_bins).cdf).pvalue > 1e-3


def _quadratic(centre: np.ndarray, matrix: np.ndarray):
    def derivatives(p: np.ndarray, rows: np.ndarray):
        d = p - centre[rows]
        g = np.einsum("sij,sj->si", matrix[rows], d)
        return 0.5 * np.einsum("si,si->s", d, g), g, matrix[rows]

    return derivatives


def test_minimiser_finds_the_minimum_of_many_quadratics_with_bounds_and_fixed_parameters():
    rng = np.random.default_rng(3)
    n = 500
    centre = rng.normal(0.0, 2.0, size=(n, 3))
    a = rng.normal(size=(n, 3, 3))
    matrix = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(3)
    fit = minimise_batch(_quadratic(centre, matrix), np.zeros((n, 3)), tolerance=1e-12)
    assert fit.converged.all()
    np.testing.assert_allclose(fit.params, centre, atol=1e-5)
    # diagonal problems: a bound clips the minimum exactly, a fixed parameter stays at its start
    diagonal = np.broadcast_to(np.diag([1.0, 4.0, 2.0]), (n, 3, 3)).copy()
    start = np.full((n, 3), 0.5)
    fit = minimise_batch(
        _quadratic(centre, diagonal), start, lower=[-1.0, -np.inf, -np.inf], upper=[1.0, np.inf, np.inf],
        fixed=np.array([False, False, True]), tolerance=1e-12,
    )  # fmt: skip
    np.testing.assert_allclose(fit.params[:, 0], np.clip(centre[:, 0], -1.0, 1.0), atol=1e-6)
    np.testing.assert_allclose(fit.params[:, 1], centre[:, 1], atol=1e-6)
    assert np.all(fit.params[:, 2] == 0.5)


def test_minimiser_recovers_known_parameters_of_many_poisson_fits():
    """S exponential spectra mu_b = exp(a + b x_b): pulls of a and b have mean 0 and width 1."""
    rng = np.random.default_rng(7)
    n, x = 3000, np.linspace(-1.0, 1.0, 12)
    truth = np.column_stack([rng.uniform(2.5, 4.0, n), rng.uniform(-1.0, 1.0, n)])
    counts = rng.poisson(np.exp(truth[:, :1] + truth[:, 1:] * x)).astype(np.float64)

    def derivatives(p: np.ndarray, rows: np.ndarray):
        mu = np.exp(p[:, :1] + p[:, 1:] * x)
        jac = np.stack([mu, mu * x], axis=-1)  # d mu / d(a, b)
        gradient = np.einsum("sb,sbi->si", 1.0 - counts[rows] / mu, jac)
        fisher = np.einsum("sbi,sbj->sij", jac / np.sqrt(mu)[..., None], jac / np.sqrt(mu)[..., None])
        return 0.5 * poisson_deviance(counts[rows], mu), gradient, fisher

    fit = minimise_batch(derivatives, np.column_stack([np.full(n, 3.0), np.zeros(n)]), tolerance=1e-8)
    assert fit.converged.all() and fit.iterations.max() < 50
    errors = np.sqrt(np.diagonal(np.linalg.inv(fit.curvature), axis1=1, axis2=2))
    pulls = (fit.params - truth) / errors
    limit = 5 / math.sqrt(n)  # 5 sigma of a mean of n unit-variance pulls
    assert np.all(np.abs(pulls.mean(axis=0)) < limit + 0.02)  # + O(1/N_counts) bias of the ML estimate
    assert np.all(np.abs(pulls.std(axis=0) - 1.0) < 5 / math.sqrt(2 * n) + 0.02)
    # at the minimum the deviance follows chi2 with bins - 2 degrees of freedom
    chi2 = 2 * fit.value
    assert abs(chi2.mean() - (x.size - 2)) < 5 * math.sqrt(2 * (x.size - 2) / n) + 0.1
