"""RNvsNskipsPlot: noise versus the number of averaged skips, from the raw samples in one pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.ana.fitting.gaussian import MAD_TO_SIGMA
from waders.ana.sinks import save_figures
from waders.ana.studies.noise import (
    RNvsNskipsPlot,
    fit_power_law,
    mad_correlation,
    mad_correlation_series,
    skip_counts,
)
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.io import read_image, write_raw_image
from waders.io.synthetic import make_raw_image

SIGMA = 2.0  # ADU per sample
NAME = RNvsNskipsPlot.name


def raw_image(*, seed=0, nrows=300, ncols=60, overscan=20, nskips=100, **kwargs) -> SkipperImage:
    image, _ = make_raw_image(
        nrows=nrows, ncols=ncols, nskips=nskips, overscan=overscan, noise=SIGMA, seed=seed, **kwargs
    )
    return image


def run(image, process):
    process.run(image, RunContext(seed=1))
    return image.amplifiers["L"].results[NAME]


# --- truths ---------------------------------------------------------------------------------------
def test_white_noise_gives_alpha_one_half_and_sigma_1():
    # 300 rows x 20 overscan columns = 6000 pixels: 1.4826 MAD has a relative error 1.17/sqrt(6000) = 1.5 %
    # per point; the fit over N = 1..100 gives alpha to ~0.005 and sigma_1 to ~1.5 % (recorded errors).
    result = run(raw_image(), RNvsNskipsPlot(n_skips_per_block=-20))
    assert result["region"] == "overscan" and result["n_pixels"] == 300 * 20
    assert abs(result["alpha"] - 0.5) < 0.03
    assert abs(result["sigma_1_adu"] / SIGMA - 1) < 0.03
    assert abs(result["alpha"] - 0.5) < 4 * result["alpha_err"]
    assert abs(result["sigma_1_adu"] - SIGMA) < 4 * result["sigma_1_err"]
    assert result["correlated_noise"] is False
    expected = SIGMA / np.sqrt(result["n_skips"])
    assert np.all(np.abs(result["noise_adu"] / expected - 1) < 5 * result["noise_err_adu"] / result["noise_adu"])


def test_alpha_errors_are_honest_over_many_images():
    # the pulls (alpha - 0.5) / alpha_err of independent white-noise images have unit spread (not 0.1, not 10)
    pulls = []
    for seed in range(8):
        result = run(raw_image(seed=seed, nrows=120, nskips=40), RNvsNskipsPlot(n_skips_per_block=-12))
        pulls.append((result["alpha"] - 0.5) / result["alpha_err"])
    assert 0.3 < np.std(pulls) < 2.0
    assert abs(np.mean(pulls)) < 2.0


@pytest.mark.parametrize("kind", ["pixel_offset", "random_walk"])
def test_correlated_noise_gives_alpha_below_one_half(kind):
    image = raw_image(seed=3)
    raw = image.amplifiers["L"].raw
    rng = np.random.default_rng(7)
    if kind == "pixel_offset":  # one offset per pixel common to its skips: sigma_N^2 = 4/N + 0.09
        raw += rng.normal(0.0, 0.3, raw.shape[:2])[:, :, None]
    else:  # slow drift along the skips (random walk of 0.1 ADU per sample), 1/f^2-like
        raw += np.cumsum(rng.normal(0.0, 0.1, raw.shape), axis=2)
    result = run(image, RNvsNskipsPlot(n_skips_per_block=10))
    assert result["alpha"] < 0.45
    assert result["alpha_pull"] > 3 and result["correlated_noise"] is True
    assert result["chi2_ndf"] > 3  # the power law does not describe it either


def test_blank_image_uses_the_std_of_the_whole_image():
    # no charge, no overscan needed: 300 x 60 pixels, std error 1/sqrt(2 * 300 * 59) = 0.5 % per point
    image = raw_image(dark_current=0.0, overscan=0)
    result = run(image, RNvsNskipsPlot(is_blank=True, n_skips_per_block=-10))
    assert result["region"] == "full" and result["n_pixels"] == 300 * 60
    assert abs(result["alpha"] - 0.5) < 0.03 and abs(result["sigma_1_adu"] / SIGMA - 1) < 0.03
    assert not result["correlated_noise"]


def test_noise_values_equal_a_direct_computation_per_n():
    # the cumulative sums must give exactly the spread of the N-skip means, skip range applied
    image = raw_image(nrows=80, nskips=30)
    result = run(image, RNvsNskipsPlot(n_skips_per_block=7).with_input_ranges({"skip": (5, None)}))
    raw = image.amplifiers["L"].raw
    rows, cols = image.amplifiers["L"].geometry.region("overscan")
    assert list(result["n_skips"]) == [1, 8, 15, 22, 25]
    assert (result["skip_start"], result["skip_stop"]) == (5, 30)
    for n, noise in zip(result["n_skips"], result["noise_adu"], strict=True):
        means = raw[rows, cols, 5 : 5 + n].mean(axis=2)
        resid = means - means.mean(axis=1, keepdims=True)
        k = resid.shape[1]
        direct = MAD_TO_SIGMA * np.median(np.abs(resid - np.median(resid))) * np.sqrt(k / (k - 1))
        assert noise == pytest.approx(direct, rel=1e-5)


def test_file_backed_raw_read_by_row_blocks_gives_the_same_result(tmp_path):
    image = raw_image(nrows=200, nskips=100)
    lazy = read_image(write_raw_image(tmp_path / "raw.fits", image, dtype="float64"), lazy=True)
    assert not isinstance(lazy.amplifiers["L"].raw, np.ndarray)
    process = RNvsNskipsPlot(block_mbytes=1, n_skips_per_block=-8)  # about 10 blocks of 21 rows
    direct, blocks = run(image, process), run(lazy, process)
    assert np.allclose(blocks["noise_adu"], direct["noise_adu"], rtol=1e-6)
    assert blocks["alpha"] == pytest.approx(direct["alpha"], rel=1e-6)


def test_skip_counts():
    assert list(skip_counts(10, 100)) == [1, 11, 21, 31, 41, 51, 61, 71, 81, 91, 100]
    assert list(skip_counts(50, 50)) == [1, 50]
    log_counts = skip_counts(-8, 1000)
    assert log_counts[0] == 1 and log_counts[-1] == 1000 and len(log_counts) == 8
    assert list(log_counts) == [1, 3, 7, 19, 52, 139, 373, 1000]  # rounded geometric sequence
    assert list(skip_counts(-100, 5)) == [1, 2, 3, 4, 5]
    with pytest.raises(ConfigError, match="n_skips_per_block"):
        skip_counts(0, 10)


def test_mad_correlation_matches_a_monte_carlo():
    # correlation of |x| < 0.6745 and |y| < 0.6745 for unit Gaussians correlated by rho (2e6 pairs: +/- 0.001)
    assert mad_correlation_series(np.array(0.0)) == 0.0
    assert mad_correlation_series(np.array([0.3, 0.7, 0.9])) == pytest.approx([0.0350, 0.2472, 0.5439], abs=0.002)
    assert mad_correlation(np.array([0.3, 0.7])) == pytest.approx(mad_correlation_series(np.array([0.3, 0.7])))


def test_fit_power_law_exact_data():
    n = np.array([1, 2, 5, 10, 50])
    fit = fit_power_law(n, 3.0 * n**-0.4, np.full(5, 0.01))
    assert fit["alpha"] == pytest.approx(0.4) and fit["sigma_1_adu"] == pytest.approx(3.0)
    assert fit["chi2_ndf"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(fit_power_law(n[:1], n[:1] * 1.0, np.ones(1))["alpha"])


def test_mean_compressed_and_header_are_not_overwritten(tmp_path):
    image = raw_image(nrows=60, nskips=20)
    context = RunContext(seed=1)
    CompressSkipperProcess(func_to_compress=["mean"]).run(image, context)
    before = image.amplifiers["L"].get("mean_compressed").copy()
    cards = dict(image.header_cards)
    RNvsNskipsPlot(n_skips_per_block=3).run(image, context)
    assert np.array_equal(image.amplifiers["L"].get("mean_compressed"), before)
    assert image.header_cards == cards
    assert set(image.amplifiers["L"].products) == {"mean_compressed"}


def test_without_overscan_the_active_region_is_used():
    result = run(raw_image(nrows=60, overscan=0, dark_current=0.0, nskips=20), RNvsNskipsPlot())
    assert result["region"] == "active" and result["n_pixels"] == 60 * 56


def test_large_regions_are_subsampled_regularly():
    result = run(raw_image(nrows=100, overscan=0, nskips=10), RNvsNskipsPlot(max_pixels=1000))
    assert 500 <= result["n_pixels"] <= 1000


def test_two_amplifiers_and_plots(tmp_path):
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=40, ncols=30, nskips=16, noise=SIGMA)
    context = RunContext(seed=1)
    Pipeline([RNvsNskipsPlot(save_plots=True, n_skips_per_block=-6)]).run(image, context)
    save_figures(context.figures, tmp_path, "image")
    for amp in ("L", "U"):
        assert np.isfinite(image.amplifiers[amp].results[NAME]["alpha"])
        assert (tmp_path / "plots" / f"image_{NAME}_noise_vs_nskips_{amp}.png").stat().st_size > 0


# --- errors and configurations --------------------------------------------------------------------
def test_bad_inputs():
    averaged = SkipperImage.from_arrays({"L": np.zeros((10, 10))}, product="mean_compressed")
    with pytest.raises(DataError, match="raw samples"):
        RNvsNskipsPlot().run(averaged, RunContext(seed=1))
    with pytest.raises(ConfigError, match="must be 'raw'"):
        RNvsNskipsPlot(image="mean_compressed")
    with pytest.raises(ConfigError, match="n_skips_per_block"):
        RNvsNskipsPlot(n_skips_per_block=0)
    with pytest.raises(ConfigError, match="must be 'raw'"):
        RNvsNskipsPlot.from_mapping({"image": "mean_compressed"}).run(raw_image(nrows=10), RunContext(seed=1))


@pytest.mark.parametrize(
    "config",
    ["panaSKImg_configuration.json", "panaSKImg_config_ACM_ex.json", "img_5.json", "panaSKImg_config_LBC_ex.json"],
)
def test_pysimdamicm_sections_load(configs, config):
    sections = json.loads((configs / config).read_text())["process"]
    process = RNvsNskipsPlot.from_mapping(sections["RNvsNskipsPlot"])
    assert process.n_skips_per_block == sections["RNvsNskipsPlot"]["n_skips_per_block"]
    assert process.is_blank is False
