"""CommonModeSubtraction: noise shared by amplifiers read simultaneously is removed, with the stated penalty."""

from __future__ import annotations

import numpy as np
import pytest

from waders.ana.sinks import save_figures
from waders.ana.studies.commonmode import CommonModeSubtraction, one_factor
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import DataError
from waders.core.geometry import AmplifierGeometry

NAME = CommonModeSubtraction.name
PRODUCT = "mean_compressed_pedestal_subtracted"
SIGMA = 1.0  # own noise of every amplifier (ADU)
ROWS, COLS = 200, 250  # 50 000 pixel times: correlations known to 1/sqrt(5e4) = 0.0045


def image_of(n_amps, common, *, seed=0, sigma=SIGMA, pedestal_step=5.0, overscan=0):
    """n amplifiers: own Gaussian noise + a shared offset ``common`` (rows x cols) + a pedestal per amplifier."""
    rng = np.random.default_rng(seed)
    arrays, geometries = {}, {}
    for i in range(n_amps):
        name = f"A{i}"
        arrays[name] = common + rng.normal(0.0, sigma, (ROWS, COLS)) + pedestal_step * i
        geometries[name] = AmplifierGeometry(name, ROWS, COLS, overscan_cols=overscan)
    return SkipperImage.from_arrays(arrays, geometries=geometries, product=PRODUCT)


def run(image, **params):
    CommonModeSubtraction(**params).run(image, RunContext(seed=1))
    return image.results[NAME], {name: amp.results[NAME] for name, amp in image.amplifiers.items()}


def off_diagonal(matrix):
    matrix = np.asarray(matrix)
    return matrix[~np.eye(len(matrix), dtype=bool)]


@pytest.mark.parametrize("n_amps", [2, 3, 4])
def test_pixel_common_mode_is_removed_without_noise_penalty(n_amps):
    tau = 1.0  # common-mode RMS: correlation before tau^2 / (tau^2 + sigma^2) = 0.5
    rng = np.random.default_rng(100 + n_amps)
    image = image_of(n_amps, rng.normal(0.0, tau, (ROWS, COLS)), seed=n_amps)
    summary, amps = run(image)
    assert summary["amplifiers"] == [f"A{i}" for i in range(n_amps)]
    assert np.allclose(off_diagonal(summary["correlation_before"]), 0.5, atol=0.02)
    assert np.all(np.abs(off_diagonal(summary["correlation_after"])) < 0.05)
    assert summary["common_mode_rms_adu"] == pytest.approx(tau, rel=0.05)
    # the decorrelating subtraction leaves exactly the own noise (expected penalty 0); statistical error
    # of a standard deviation from ~5e4 pixels: 1/sqrt(2 * 5e4) = 0.3 %
    for amp in amps.values():
        assert amp["noise_before_adu"] == pytest.approx(np.hypot(SIGMA, tau), rel=0.02)
        assert amp["noise_penalty_adu2"] == pytest.approx(0.0, abs=1e-12)
        assert amp["noise_after_adu"] == pytest.approx(amp["expected_noise_after_adu"], rel=0.015)
        assert amp["noise_after_adu"] == pytest.approx(SIGMA, rel=0.03)
    assert image.amplifiers["A0"].has(f"{PRODUCT}_cm")


@pytest.mark.parametrize("n_amps", [2, 4])
def test_row_common_mode_is_removed_per_row(n_amps):
    rng = np.random.default_rng(7)
    offsets = rng.normal(0.0, 3.0, (ROWS, 1)) * np.ones((1, COLS))  # per-row offset shared by all amplifiers
    image = image_of(n_amps, offsets, seed=11)
    summary, amps = run(image, mode="row")
    assert np.all(off_diagonal(summary["correlation_before"]) > 0.85)
    assert np.all(np.abs(off_diagonal(summary["correlation_after"])) < 0.05)
    for name, amp in amps.items():
        # penalty: the row estimate averages n * COLS pixels -> sigma^2 / (n COLS), negligible
        assert amp["expected_noise_after_adu"] == pytest.approx(SIGMA * np.sqrt(1 + 1 / (n_amps * COLS)), rel=0.02)
        assert amp["noise_after_adu"] == pytest.approx(SIGMA, rel=0.03)
        residual = image.amplifiers[name].get(f"{PRODUCT}_cm") - image.amplifiers[name].get(PRODUCT)
        assert np.allclose(residual, residual[:, :1])  # one value per row


def test_median_of_the_others_has_the_documented_penalty_and_anticorrelation():
    # 3 amplifiers, median of the 2 others (= their mean): variance sigma^2 (1 + 1/2), correlation -1/2
    rng = np.random.default_rng(3)
    image = image_of(3, rng.normal(0.0, 2.0, (ROWS, COLS)), seed=4)
    summary, amps = run(image, estimator="median")
    assert np.allclose(off_diagonal(summary["correlation_after"]), -0.5, atol=0.02)
    for amp in amps.values():
        assert amp["expected_noise_after_adu"] == pytest.approx(SIGMA * np.sqrt(1.5), rel=0.03)
        assert amp["noise_after_adu"] == pytest.approx(amp["expected_noise_after_adu"], rel=0.02)


def test_charge_is_not_used_and_does_not_leak_into_other_amplifiers():
    rng = np.random.default_rng(5)
    image = image_of(3, rng.normal(0.0, 1.0, (ROWS, COLS)), seed=6)
    charged = rng.random((ROWS, COLS)) < 0.02
    image.amplifiers["A1"].products[PRODUCT][charged] += 500.0  # bright pixels in one amplifier
    summary, amps = run(image)
    assert amps["A1"]["usable_fraction"] == pytest.approx(0.98, abs=0.005)
    assert np.all(np.abs(off_diagonal(summary["correlation_after"])) < 0.05)
    for name in ("A0", "A2"):
        subtracted = image.amplifiers[name].get(PRODUCT) - image.amplifiers[name].get(f"{PRODUCT}_cm")
        assert np.abs(subtracted[charged]).max() < 10  # a 500 ADU charge would shift them by ~100 if used
    out = image.amplifiers["A1"].get(f"{PRODUCT}_cm") - 5.0
    assert np.median(out[charged]) == pytest.approx(500.0, abs=1.0)  # the charge itself is kept


def test_cluster_mask_window_and_one_factor():
    rng = np.random.default_rng(8)
    image = image_of(2, rng.normal(0.0, 1.0, (ROWS, COLS)), seed=9)
    with pytest.raises(DataError, match="no cluster mask"):
        run(image, mask_clusters=True)
    for amp in image.amplifiers.values():
        amp.set("mask_clusters", np.zeros((ROWS, COLS), dtype=bool))
    summary, _ = run(image, mask_clusters=True, id_row_start=50)
    out = image.amplifiers["A0"]
    assert np.array_equal(out.get(f"{PRODUCT}_cm")[:50], out.get(PRODUCT)[:50])  # outside the window: untouched
    assert summary["n_pixels_used"] <= 150 * COLS
    h = one_factor(np.array([[5.0, 2.0, 3.0], [2.0, 2.0, 1.5], [3.0, 1.5, 3.0]]))
    assert np.allclose(np.outer(h, h)[~np.eye(3, dtype=bool)], [2.0, 3.0, 2.0, 1.5, 3.0, 1.5])  # exact rank one
    assert np.allclose(one_factor(np.eye(3)), 0.0)


def test_bad_inputs():
    single = SkipperImage.from_arrays({"L": np.zeros((5, 5))}, product=PRODUCT)
    with pytest.raises(DataError, match="at least two amplifiers"):
        run(single)
    mixed = SkipperImage.from_arrays({"L": np.zeros((5, 5)), "U": np.zeros((5, 6))}, product=PRODUCT)
    with pytest.raises(DataError, match="different shapes"):
        run(mixed)
    no_overscan = image_of(2, 0.0)
    with pytest.raises(DataError, match="no overscan"):
        run(no_overscan, region="overscan")


def test_overscan_region_and_plot(tmp_path):
    rng = np.random.default_rng(10)
    image = image_of(3, rng.normal(0.0, 1.0, (ROWS, COLS)), seed=12, overscan=50)
    context = RunContext(seed=1)
    Pipeline([CommonModeSubtraction(region="overscan", save_plots=True)]).run(image, context)
    save_figures(context.figures, tmp_path, "image")
    summary = image.results[NAME]
    assert summary["n_pixels_used"] <= ROWS * 50
    assert np.all(np.abs(off_diagonal(summary["correlation_after"])) < 0.05)
    assert (tmp_path / "plots" / f"image_{NAME}_correlation.png").stat().st_size > 0
