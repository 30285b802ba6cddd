"""Fitted cluster profiles (fSTD_X, fPosX, projectionX...) against clouds of known diffusion sigma."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.special import ndtr

from waders.ana.clusters.profiles import fitted_profiles
from waders.ana.clusters.properties import Groups
from waders.io import read_clusters, write_raw_image
from waders.io.synthetic import cluster_deposits, make_raw_image

SIGMAS = [0.5, 0.9, 1.3, 1.8]


def exact_cloud(mu_x: float, mu_y: float, sigma: float, half: int = 8):
    """Pixels of a noise-free cloud: the 2-D Gaussian integrated over each pixel."""
    cx, cy = round(mu_x), round(mu_y)
    xs, ys = np.meshgrid(np.arange(cx - half, cx + half + 1), np.arange(cy - half, cy + half + 1))
    fx = ndtr((xs + 0.5 - mu_x) / sigma) - ndtr((xs - 0.5 - mu_x) / sigma)
    fy = ndtr((ys + 0.5 - mu_y) / sigma) - ndtr((ys - 0.5 - mu_y) / sigma)
    energy = 1000.0 * fx * fy
    keep = energy > 1e-6
    return xs[keep], ys[keep], energy[keep]


def noisy_clouds(seed: int, repeat: int, extra: list | None = None):
    """Clouds of every sigma in SIGMAS (``repeat`` times) plus ``extra`` ones, energies with 5% noise."""
    rng = np.random.default_rng(seed)
    clouds = [exact_cloud(20.0 + 25 * i + rng.random(), 30.0 + rng.random(), s) for i, s in enumerate(SIGMAS * repeat)]
    clouds += extra or []
    x = np.concatenate([c[0] for c in clouds])
    y = np.concatenate([c[1] for c in clouds])
    e = np.concatenate([c[2] for c in clouds]) * (1 + 0.05 * rng.standard_normal(x.size))
    return Groups(np.array([c[0].size for c in clouds])), x, y, e


def test_noise_free_clouds_give_their_sigma_and_centre():
    clouds = [exact_cloud(40.3 + 30 * i, 20.8 - 3 * i, s) for i, s in enumerate(SIGMAS)]
    clouds.append((np.array([7]), np.array([9]), np.array([5.0])))  # one pixel: sigma 0 (the fit's limit)
    x = np.concatenate([c[0] for c in clouds])
    y = np.concatenate([c[1] for c in clouds])
    e = np.concatenate([c[2] for c in clouds])
    groups = Groups(np.array([c[0].size for c in clouds]))
    scalars, lists = fitted_profiles(groups, {"X": x, "Y": y}, e)
    np.testing.assert_allclose(scalars["fSTD_X"][:-1], SIGMAS, rtol=1e-4)
    np.testing.assert_allclose(scalars["fSTD_Y"][:-1], SIGMAS, rtol=1e-4)
    np.testing.assert_allclose(scalars["fPosX"][:-1], 40.3 + 30 * np.arange(4), atol=1e-4)
    np.testing.assert_allclose(scalars["fPosY"][:-1], 20.8 - 3 * np.arange(4), atol=1e-4)
    assert scalars["fSTD_X"][-1] == 0 and scalars["fPosX"][-1] == 7
    contents, nbins = lists["projectionX"]
    assert nbins[-1] == 3 and contents[-3:].tolist() == [0.0, 1.0, 0.0]  # E / Emax in bins min-1 .. max+1
    cols, _ = lists["projectionX_cols"]
    assert cols[-3:].tolist() == [5.5, 7.0, 8.5]  # pysimdamicm's linspace(min - 1.5, max + 1.5, nbins)
    first = nbins[0]  # the column sums of E / Emax of the first cloud, with an empty bin on each side
    assert contents[:first].sum() == pytest.approx(clouds[0][2].sum() / clouds[0][2].max(), rel=1e-12)
    assert contents[0] == 0.0 and contents[first - 1] == 0.0


def test_fits_in_chunks_equal_one_fit_of_all(monkeypatch):
    """Every cluster is fitted on its own: chunking (and the other clusters) change no number."""
    from waders.ana.clusters import profiles

    two_pixels = [(np.array([3, 4]), np.array([2, 2]), np.array([5.0, 2.0 + i])) for i in range(7)]
    groups, x, y, e = noisy_clouds(3, 5, two_pixels)
    whole, _ = fitted_profiles(groups, {"X": x, "Y": y}, e)
    monkeypatch.setattr(profiles, "CHUNK_CLUSTERS", 3)
    chunked, _ = fitted_profiles(groups, {"X": x, "Y": y}, e)
    for name, values in whole.items():
        np.testing.assert_array_equal(chunked[name], values, err_msg=name)
    single, _ = fitted_profiles(Groups(groups.counts[5:6]), {"X": x[groups.index == 5], "Y": y[groups.index == 5]},
                                e[groups.index == 5])  # fmt: skip
    assert single["fSTD_X"][0] == whole["fSTD_X"][5] and single["fPosY"][0] == whole["fPosY"][5]


def test_fitted_sigma_of_simulated_clouds_in_an_analysed_image(tmp_path):
    rng = np.random.default_rng(8)
    centres = [(40.2 + 35 * i, 60.6 + 40 * i) for i in range(len(SIGMAS))]
    electrons = 5000
    deposits, truth = cluster_deposits(rng, centres, electrons, SIGMAS)
    image, _ = make_raw_image(
        amplifiers=("L",), nrows=200, ncols=260, prescan=8, overscan=40, nskips=16, noise=10.0, gain=10.0,
        dark_current=0.02, deposits=deposits, seed=2,
    )  # fmt: skip
    path = write_raw_image(tmp_path / "clouds.fits", image)
    result = subprocess.run(
        [sys.executable, "-m", "waders.core", "ana", "-o", str(tmp_path), str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(tmp_path / "clouds_clusters.root").tolist()
    big = sorted((c for c in entry["clusters"] if c["Energy"] > 5.0), key=lambda c: c["PosX"])
    assert len(big) == len(SIGMAS)
    for cluster, sigma, row, col in zip(big, SIGMAS, truth.row, truth.col, strict=True):
        # 5000 electrons: the sigma of the drawn cloud scatters by sigma / sqrt(2 N) = 1 %; 4 of those
        # plus 2 % for the noise (0.25 e- per pixel) and the electrons below the 1 e- cut in the tails
        for axis in ("X", "Y"):
            assert cluster[f"fSTD_{axis}"] == pytest.approx(sigma, rel=0.06), axis
        assert cluster["fPosX"] == pytest.approx(col + 1, abs=0.05)  # 1-based
        assert cluster["fPosY"] == pytest.approx(row + 1, abs=0.05)
        nbins = int(cluster["DX"]) + 2
        assert len(cluster["projectionX"]) == nbins


def test_two_pixel_wide_clusters_are_read_from_the_table_of_their_fit():
    """A two-pixel-wide histogram is fitted exactly by a range of narrow Gaussians: its value comes from a table."""
    from waders.ana.clusters import profiles

    rng = np.random.default_rng(11)
    ratio = rng.uniform(0.002, 0.998, 3000)
    first = rng.integers(1, 4000, ratio.size)
    x = np.stack([first, first + 1], axis=1).ravel()
    y = np.repeat(np.arange(ratio.size) * 4, 2)
    e = np.stack([1.0 - ratio, ratio], axis=1).ravel() * rng.uniform(1.0, 50.0, ratio.size).repeat(2)
    groups = Groups(np.full(ratio.size, 2))
    tabulated, _ = fitted_profiles(groups, {"X": x, "Y": y}, e)
    peak = np.maximum(ratio, 1 - ratio)
    h = np.stack([np.zeros(ratio.size), (1 - ratio) / peak, ratio / peak, np.zeros(ratio.size)], axis=1).ravel()
    mu, sigma = profiles._fit_all(h, np.full(ratio.size, 4), first)  # the fit itself, cluster by cluster
    for got, want in ((tabulated["fSTD_X"], sigma), (tabulated["fPosX"], mu)):
        # the degenerate fit's answer jumps by up to ~0.02 pixel between close ratios (and with the first pixel)
        assert np.percentile(np.abs(got - want), 95) < 0.005
        assert np.abs(got - want).max() < 0.05
    assert 0.09 < np.median(tabulated["fSTD_X"]) < 0.16  # narrow: the histogram leaves its outer bins empty
    assert np.all((tabulated["fPosX"] >= first) & (tabulated["fPosX"] <= first + 1))
    assert np.all(tabulated["fSTD_Y"] == 0)  # one row


def test_step_scale_lands_on_the_limit_of_a_linearly_converging_iteration():
    """Aitken's factor: for x[k+1] - x* = r (x[k] - x*), the scaled step goes to x* (within the factor's bounds)."""
    from waders.ana.clusters import profiles

    x_star = np.array([[2.0], [1.5], [0.8]])  # (parameters, clusters)
    for rate in (-0.6, -0.3, 0.2, 0.45):  # overshooting (alternating) and creeping iterations
        x0 = np.array([[3.0], [1.0], [1.2]])
        previous = (rate - 1.0) * (x0 - x_star)  # the plain Gauss-Newton step from x0, taken with factor 1
        x1 = x0 + previous
        step = (rate - 1.0) * (x1 - x_star)  # the next plain step
        scale = profiles._step_scale(step, previous, np.ones(1))
        np.testing.assert_allclose(scale, 1.0 / (1.0 - rate))
        np.testing.assert_allclose(x1 + step * scale, x_star)
    # no previous step: 1; a steep creep is capped
    assert profiles._step_scale(np.ones((3, 1)), np.zeros((3, 1)), np.ones(1))[0] == 1.0
    assert profiles._step_scale(0.9 * np.ones((3, 1)), np.ones((3, 1)), np.ones(1))[0] == profiles.STEP_SCALE_MAX


def test_a_peaked_profile_is_not_fitted_into_the_one_pixel_limit():
    """A DAMIC-M cluster projection: a long step used to shrink sigma to the one-pixel limit, a worse fit it kept."""
    from scipy import special

    from waders.ana.clusters import profiles

    h = np.array([0.0, 0.2, 1.51, 1.0, 1.34, 2.75, 13.49, 1.67, 0.72, 0.47, 0.73, 0.0])
    low = np.array([100])
    mu, sigma = profiles._fit_all(h, np.array([h.size]), low)

    def chi2(mu: float, sigma: float) -> float:  # with the best amplitude for (mu, sigma)
        centres = low[0] - 1 + np.arange(h.size)
        f = special.ndtr((centres + 0.5 - mu) / sigma) - special.ndtr((centres - 0.5 - mu) / sigma)
        return float(((h - (h @ f) / (f @ f) * f) ** 2).sum())

    assert 0.3 < sigma[0] < 0.6
    assert mu[0] == pytest.approx(low[0] + 5, abs=0.2)  # the 13.49 pixel
    assert chi2(mu[0], sigma[0]) < 0.5 * chi2(low[0] + 5, profiles._SIGMA_MIN)


def test_shipped_two_pixel_table_is_the_fit_it_tabulates():
    """The table read from the package is the fit of its ratios (regenerate it with ``_write_two_pixel_table``)."""
    from waders.ana.clusters import profiles

    shipped = profiles._two_pixel_table()
    computed = profiles._compute_two_pixel_table()
    assert all(a.shape == (profiles.TABLE_POINTS - 2,) for a in shipped)
    np.testing.assert_array_equal(shipped[0], computed[0])
    for got, want in zip(shipped[1:], computed[1:], strict=True):
        # the degenerate fit's stop may move with the platform's rounding (module docstring)
        assert np.percentile(np.abs(got - want), 99) < 1e-3
        assert np.abs(got - want).max() < 0.05


def test_fits_stop_early_only_once_converged(monkeypatch):
    """Stopping a fit when its steps fall below the tolerance moves no result by more than a few tolerances."""
    from waders.ana.clusters import profiles

    groups, x, y, e = noisy_clouds(12, 10)
    early, _ = fitted_profiles(groups, {"X": x, "Y": y}, e)
    monkeypatch.setattr(profiles, "TOLERANCE", 0.0)
    full, _ = fitted_profiles(groups, {"X": x, "Y": y}, e)
    for name in early:
        np.testing.assert_allclose(early[name], full[name], atol=1e-5, err_msg=name)
