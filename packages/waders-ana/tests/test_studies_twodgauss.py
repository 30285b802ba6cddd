"""TwoDGaussProcess: truth-based tests on two-amplifier images with correlated noise and Poisson charge."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.ana.sinks import write_run
from waders.ana.studies.twodgauss import (
    TwoDGaussProcess,
    expected_counts,
    histogram_2d,
    noise_covariance,
    paired_pixels,
)
from waders.core import RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry
from waders.io.synthetic import make_raw_image

PS = "mean_compressed_pedestal_subtracted"
#: Truth of the generated images: rotation (rad), principal widths (ADU), gains (ADU/e-), dark currents (e-/pixel).
THETA, SIGMA_L, SIGMA_U = 0.5, 3.0, 1.5
GAIN_L, GAIN_U = 7.0, 8.5
DC_L, DC_U = 0.05, 0.08


def geometries(nrows, ncols, prescan=4, overscan=(10, 14)):
    return {
        name: AmplifierGeometry(
            name, nrows, ncols, prescan_cols=prescan, overscan_cols=o, mirrored=i == 1, col_offset=i * ncols
        )
        for i, (name, o) in enumerate(zip("LU", overscan, strict=True))
    }


def correlated_image(nrows=420, ncols=420, seed=2, prescan=4, overscan=(10, 14)):
    """Pedestal-subtracted L and U images (ADU, readout order): Poisson charge x gain + correlated noise.

    The noise of the pixels read at the same time (same readout index) is drawn from the
    covariance of the model (rotation THETA, principal widths SIGMA_L, SIGMA_U); pixels of
    different readout positions are independent.
    """
    rng = np.random.default_rng(seed)
    noise = rng.multivariate_normal([0.0, 0.0], noise_covariance(SIGMA_L, SIGMA_U, THETA), size=(nrows, ncols))
    arrays = {
        "L": GAIN_L * rng.poisson(DC_L, (nrows, ncols)) + noise[..., 0],
        "U": GAIN_U * rng.poisson(DC_U, (nrows, ncols)) + noise[..., 1],
    }
    return SkipperImage.from_arrays(
        arrays, geometries=geometries(nrows, ncols, prescan, overscan), product=PS, layout="two-amplifier"
    )


START = {
    "q_min_ADU": -15.0, "q_max_ADU": 35.0, "bin_size": 0.5, "theta": 40.0, "sig_L": 2.5, "sig_U": 2.0,
    "cal_L": 7.5, "cal_U": 8.0, "dc_L": 0.03, "dc_U": 0.03,
}  # fmt: skip


def test_fit_recovers_gains_noise_and_rotation():
    image = correlated_image()
    mask = np.zeros((420, 420), dtype=bool)
    mask[100:140, 200:260] = True  # a masked region holding charge that would bias the fit
    for name in ("L", "U"):
        data = image[name].get(PS).copy()
        data[mask] = 20.0
        image[name].set(PS, data)
    image["L"].set("mask_clusters", mask)  # the mask of one amplifier excludes the pair
    TwoDGaussProcess(**START, do_calibration=True).run(image, RunContext(seed=1))
    r = image.results["TwoDGaussProcess"]
    assert r["valid"], r["status"]
    assert r["n_pixels"] == 420 * 402 - mask[:, 4:406].sum()  # rows x min(active columns) - masked
    assert r["n_masked"] == mask[:, 4:406].sum() and r["cluster_mask_used"]
    # 160k pairs: errors ~0.6 % (L gain, 1-e peak of 8000 pixels), 0.15 % (U gain); tolerance 2 %
    for key, truth in (("gain_L", GAIN_L), ("gain_U", GAIN_U)):
        assert r[key] == pytest.approx(truth, rel=0.02)
        assert abs(r[key] - truth) < 4 * r[f"{key}_err"]
    for key, truth in (("theta_rad", THETA), ("sigma_L", SIGMA_L), ("sigma_U", SIGMA_U), ("dc_L", DC_L),
                       ("dc_U", DC_U), ("offset_L", 0.0), ("offset_U", 0.0)):  # fmt: skip
        assert abs(r[key] - truth) < 4 * r[f"{key}_err"], (key, r[key], r[f"{key}_err"])
    cov = noise_covariance(SIGMA_L, SIGMA_U, THETA)
    assert r["noise_L_adu"] == pytest.approx(math.sqrt(cov[0, 0]), rel=0.01)
    assert r["correlation"] == pytest.approx(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]), abs=0.01)
    assert 0.8 < r["chi2_ndf"] < 1.2 and r["amplifier_L"] == "L" and r["amplifier_U"] == "U"
    for name, side in (("L", "L"), ("U", "U")):
        amp = image[name]
        assert amp.results["TwoDGaussProcess"]["gain_adu_per_e"] == r[f"gain_{side}"]
        calibrated = amp.get(f"{PS}_e2d")
        assert calibrated.shape == amp.geometry.shape
        np.testing.assert_allclose(calibrated, amp.get(PS) / r[f"gain_{side}"])
        assert not amp.has(f"{PS}_e")
    cards = image.header_cards
    assert cards["TDGCALL"][0] == r["gain_L"] and cards["TDGTHETAE"][0] == r["theta_rad_err"]
    assert cards["TDGNPIX"][0] == r["n_pixels"]
    assert set(cards) >= {"TDGTHETA", "TDGDCL", "TDGDCU", "TDGSIGL", "TDGSIGU", "TDGCALU", "TDGSIGUE", "TDGCHI2"}


def test_pairs_are_the_pixels_read_at_the_same_time():
    nrows, ncols = 30, 40
    rows, cols = np.indices((nrows, ncols))
    pattern = 1000.0 * rows + cols
    arrays = {"L": pattern, "U": pattern + 0.5}  # readout order: same index = read at the same time
    image = SkipperImage.from_arrays(arrays, geometries=geometries(nrows, ncols, 3, (5, 9)), product=PS)
    x, y, info = paired_pixels(image, TwoDGaussProcess(row_start=2, col_start=1))
    np.testing.assert_array_equal(y, x + 0.5)
    assert x.size == (nrows - 2) * (ncols - 3 - 9 - 1)  # the smaller active region of U
    assert x.min() == 1000 * 2 + 3 + 1 and info["n_masked"] == 0 and not info["cluster_mask_used"]
    image["U"].set(PS, np.where(pattern == 5004.0, np.nan, arrays["U"]))
    x2, _, _ = paired_pixels(image, TwoDGaussProcess(row_start=2, col_start=1, id_row_end=20))
    assert x2.size == 18 * 27 - 1 and x2.max() < 20_000


def test_model_is_normalised_and_histogram_is_one_bincount():
    edges = np.linspace(-20.0, 60.0, 161)
    params = np.array([1e5, 0.2, -0.1, 2.0, 1.2, 0.3, 0.2, 0.1, 7.0, 8.0])
    expected = expected_counts(params, edges, edges, n_max=6)
    # all peaks inside the range: the expected pairs add up to N (second-order bin integration)
    assert expected.sum() == pytest.approx(1e5, rel=1e-6)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-25, 65, 10_000), rng.uniform(-25, 65, 10_000)
    np.testing.assert_array_equal(histogram_2d(x, y, edges), np.histogram2d(x, y, [edges, edges])[0])


def test_without_fit_the_starting_values_are_recorded_and_used_for_calibration():
    image = correlated_image(nrows=60, ncols=60)
    TwoDGaussProcess(**START, do_fit=False, do_calibration=True).run(image, RunContext(seed=1))
    r = image.results["TwoDGaussProcess"]
    assert not r["fitted"] and not r["valid"] and r["status"] == "not fitted"
    assert r["gain_L"] == 7.5 and r["theta_rad"] == pytest.approx(math.radians(40.0))
    assert math.isnan(r["gain_L_err"])
    np.testing.assert_allclose(image["U"].get(f"{PS}_e2d"), image["U"].get(PS) / 8.0)


def test_end_to_end_from_raw_samples_with_common_noise(tmp_path):
    """Raw two-amplifier samples with a noise component common to L and U, through compression and pedestal.

    Per averaged pixel: independent noise 1 ADU and common noise 1 ADU, i.e. covariance
    [[2, 1], [1, 2]] ADU^2 (correlation 0.5, principal axes at 45 degrees).
    """
    image, _ = make_raw_image(
        amplifiers=("L", "U"), nrows=150, ncols=184, prescan=4, overscan=60, nskips=4, noise=2.0, gain=10.0,
        dark_current=0.1, seed=9,
    )  # fmt: skip
    common = np.random.default_rng(4).normal(0.0, 2.0, image["L"].raw.shape)
    image["L"].raw += common
    image["U"].raw += common
    process = TwoDGaussProcess(
        q_min_ADU=-8, q_max_ADU=26, bin_size=0.25, theta=45, sig_L=1.2, sig_U=1.6, cal_L=9.5, cal_U=9.5, dc_L=0.05,
        dc_U=0.05, save_plots=True,
    )  # fmt: skip
    from waders.core import Pipeline

    context = RunContext(seed=1, save_plots=True)
    Pipeline(
        [
            CompressSkipperProcess(func_to_compress=["mean"]),
            PedestalSubtractionProcess(method="mean", in_overscan=True, axis="row"),
            process,
        ]
    ).run(image, context)
    write_run(image, [process], context, tmp_path)
    r = image.results["TwoDGaussProcess"]
    assert r["valid"], r["status"]
    assert r["gain_L"] == pytest.approx(10.0, rel=0.02) and r["gain_U"] == pytest.approx(10.0, rel=0.02)
    assert r["correlation"] == pytest.approx(0.5, abs=0.05)
    assert r["dc_L"] == pytest.approx(0.1, rel=0.15)
    assert (tmp_path / "plots" / "image_TwoDGaussProcess_fit.png").stat().st_size > 1000


def test_pysimdamicm_section_loads(configs):
    section = json.loads((configs / "img_5.json").read_text())["process"]["TwoDGaussProcess"]
    process = TwoDGaussProcess.from_mapping(section)
    assert process.theta == pytest.approx(math.radians(46.0))
    assert process.dc_U_range == [0.0005, 0.01] and process.cal_L_range == [7.0, 9.5]
    assert process.q_min_ADU == -10 and process.bin_size == 0.4 and process.do_fit
    assert process.ignored["fit_opt"] == "QR LEM"
    limits = dict(
        zip(("norm", "oL", "oU", "sL", "sU", "theta", "dcL", "dcU", "kL", "kU"), process.limits(), strict=True)
    )
    assert limits["dcL"] == pytest.approx((0.0005, 0.05)) and limits["sU"] == (0.1, 5.0) and limits["theta"] == (-1, 1)
    assert process.edges().size == 101


def test_one_amplifier_is_an_error():
    image = SkipperImage.from_arrays({"L": np.zeros((10, 10))}, product=PS)
    with pytest.raises(DataError, match="needs a two-amplifier readout"):
        TwoDGaussProcess().run(image, RunContext(seed=1))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"q_min_ADU": 10, "q_max_ADU": 5}, "is empty"),
        ({"bin_size": 0}, "is empty"),
        ({"sig_L_range": [3, 1]}, "sig_L_range"),
        ({"theta_range": [1.0]}, "theta_range"),
        ({"cal_U_range": [-2, -1]}, "cal_U_range"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ConfigError, match=match):
        TwoDGaussProcess.from_mapping(params)


def test_start_beyond_the_paired_region_is_an_error():
    image = correlated_image(nrows=20, ncols=30)
    with pytest.raises(DataError, match="leave no pixel"):
        TwoDGaussProcess(row_start=20).run(image, RunContext(seed=1))


def test_everything_masked_gives_an_invalid_result_not_an_exception():
    image = correlated_image(nrows=20, ncols=30)
    image["U"].set("mask_clusters", np.ones((20, 30), dtype=bool))
    TwoDGaussProcess(do_calibration=True).run(image, RunContext(seed=1))
    r = image.results["TwoDGaussProcess"]
    assert r["n_pixels"] == 0 and not r["valid"] and r["status"].startswith("too few pairs")
    assert image["L"].get(f"{PS}_e2d").shape == (20, 30)
