from __future__ import annotations

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.core.errors import DataError
from waders.io.synthetic import make_raw_image

NSKIPS, NOISE = 16, 4.0
PIXEL_NOISE = NOISE / np.sqrt(NSKIPS)  # noise of one averaged pixel (ADU)


def chain(run_chain, image, **pedestal):
    return run_chain(image, CompressSkipperProcess(func_to_compress=["mean"]), PedestalSubtractionProcess(**pedestal))


@pytest.mark.parametrize(("method", "efficiency"), [("mean", 1.0), ("median", 1.2533), ("gauss_fit", 1.3)])
@pytest.mark.parametrize("amplifiers", [("L",), ("L", "U")])
def test_row_pedestal_from_the_overscan(run_chain, method, efficiency, amplifiers):
    image, truth = make_raw_image(
        amplifiers=amplifiers, nrows=200, ncols=160, overscan=100, nskips=NSKIPS, noise=NOISE, seed=11
    )
    chain(run_chain, image, method=method, in_overscan=True, axis="row", n_sigma_win_fit=4)
    for name in amplifiers:
        result = image[name].results["PedestalSubtractionProcess"]
        error = efficiency * PIXEL_NOISE / np.sqrt(100)
        pulls = (result["pedestal_row"] - truth.pedestal[name]) / error
        assert np.abs(pulls).max() < 4.5  # 200 rows: a 4.5 sigma pull has probability 1e-3
        assert abs(pulls.mean()) < 4.5 / np.sqrt(200) * 1.5
        # mean noise over 20000 overscan pixels: statistical error well below 3 %
        assert result["noise_adu"] == pytest.approx(PIXEL_NOISE, rel=0.03)
        subtracted = image[name].get("mean_compressed_pedestal_subtracted")
        rows, cols = image[name].geometry.region("active")
        electrons = truth.electrons[name][rows, cols]
        assert np.median(subtracted[rows, cols][electrons == 0]) == pytest.approx(0, abs=4 * PIXEL_NOISE / 100)


def test_outliers_are_masked_before_estimating(run_chain):
    image, truth = make_raw_image(nrows=100, ncols=120, overscan=60, nskips=NSKIPS, noise=NOISE, seed=12)
    rng = np.random.default_rng(1)
    hot = rng.random((100, 60)) < 0.05  # 5 % of the overscan carries 500 ADU of charge
    image["L"].raw[:, 60:, :] += 500 * hot[:, :, None]
    chain(run_chain, image, method="mean", n_sigma_to_mask=5)
    pedestal = image["L"].results["PedestalSubtractionProcess"]["pedestal_row"]
    assert np.abs(pedestal - truth.pedestal["L"]).max() < 5 * PIXEL_NOISE / np.sqrt(50)
    plain, truth = make_raw_image(nrows=100, ncols=120, overscan=60, nskips=NSKIPS, noise=NOISE, seed=12)
    plain["L"].raw[:, 60:, :] += 500 * hot[:, :, None]
    chain(run_chain, plain, method="mean", n_sigma_to_mask=-1)
    biased = plain["L"].results["PedestalSubtractionProcess"]["pedestal_row"]
    assert (biased - truth.pedestal["L"]).mean() > 10  # without masking the charge biases the pedestal


def test_column_both_and_global_axes(run_chain):
    rng = np.random.default_rng(2)
    image, truth = make_raw_image(
        nrows=120, ncols=100, overscan=30, nskips=NSKIPS, noise=NOISE, pedestal_slope=0.0, seed=13
    )
    column_offset = rng.normal(0, 5, 100)
    image["L"].raw += column_offset[None, :, None]
    chain(run_chain, image, method="median", axis="both", n_sigma_to_mask=5)
    result = image["L"].results["PedestalSubtractionProcess"]
    out = image["L"].get("mean_compressed_pedestal_subtracted")
    rows, cols = image["L"].geometry.region("active")
    empty = truth.electrons["L"] == 0
    residual = out[rows, cols][empty[rows, cols]]
    assert abs(np.median(residual)) < 3 * PIXEL_NOISE / np.sqrt(residual.size) * 1.25 + 0.02
    assert np.std(result["pedestal_col"] - (column_offset - np.median(column_offset))) < 0.2
    single, truth = make_raw_image(
        nrows=50, ncols=60, overscan=20, nskips=NSKIPS, noise=NOISE, pedestal_slope=0.0, seed=14
    )
    chain(run_chain, single, method="mean", axis="none")
    (value,) = single["L"].results["PedestalSubtractionProcess"]["pedestal_none"]
    assert value == pytest.approx(truth.pedestal["L"][0], abs=4 * PIXEL_NOISE / np.sqrt(50 * 20))


def test_active_region_when_the_overscan_and_prescan_are_too_narrow(run_chain):
    image, truth = make_raw_image(
        nrows=80, ncols=100, prescan=0, overscan=0, nskips=NSKIPS, noise=NOISE, dark_current=0.01, seed=15
    )
    chain(run_chain, image, method="median", in_overscan=True, skip_cols=[[0, 9]])
    result = image["L"].results["PedestalSubtractionProcess"]
    assert result["in_overscan"] is False and result["region"] == "active"
    error = 1.2533 * PIXEL_NOISE / np.sqrt(100 - 10)
    assert np.abs((result["pedestal_row"] - truth.pedestal["L"]) / error).max() < 5


def test_prescan_when_the_overscan_is_too_narrow(run_chain):
    """No overscan but 20 prescan columns: the pedestal comes from the prescan, without the charge of the pixels."""
    image, truth = make_raw_image(
        nrows=80, ncols=100, prescan=20, overscan=0, nskips=NSKIPS, noise=NOISE, dark_current=1.0, seed=16
    )
    chain(run_chain, image, method="gauss_fit", in_overscan=True)
    result = image["L"].results["PedestalSubtractionProcess"]
    assert result["in_overscan"] is True and result["region"] == "prescan"
    # 20 pixels per row: the Gaussian fit is about as precise as the mean (sigma / sqrt(20)); 5 errors allowed
    error = PIXEL_NOISE / np.sqrt(20)
    assert np.abs((result["pedestal_row"] - truth.pedestal["L"]) / error).max() < 5


def test_sliding_row_window_and_single_skip_mode(run_chain):
    image, truth = make_raw_image(
        nrows=60, ncols=80, overscan=40, nskips=NSKIPS, noise=NOISE, pedestal_slope=0.0, seed=16
    )
    chain(run_chain, image, method="mean", rebin_rows=4)
    result = image["L"].results["PedestalSubtractionProcess"]
    assert np.abs(result["pedestal_row"] - truth.pedestal["L"]).max() < 5 * PIXEL_NOISE / np.sqrt(4 * 40)
    drifting, truth = make_raw_image(nrows=60, ncols=80, overscan=40, nskips=NSKIPS, noise=NOISE, seed=17)
    drift = np.linspace(0, 30, NSKIPS)  # the baseline drifts during the skips of each row
    drifting["L"].raw += drift[None, None, :]
    run_chain(drifting, PedestalSubtractionProcess(method="median", in_rawskipimage=True, id_skip_start=4))
    out = drifting["L"].get("mean_compressed_pedestal_subtracted")
    rows, cols = drifting["L"].geometry.region("active")
    assert abs(np.median(out[rows, cols][truth.electrons["L"][rows, cols] == 0])) < 0.2


def test_no_usable_pixels_is_a_clear_error(run_chain):
    image, _ = make_raw_image(nrows=10, ncols=20, overscan=5, nskips=4)
    with pytest.raises(DataError, match="no usable pixels to estimate the pedestal per row"):
        chain(run_chain, image, method="mean", id_col_start=0, id_col_end=10)


def test_high_dark_current_fit_starts_at_the_zero_electron_peak(run_chain):
    """With about one electron per pixel the median sits between peaks; is_highDC finds the 0-e peak."""
    from waders.core import SkipperImage

    rng = np.random.default_rng(21)
    nrows, ncols, gain, sigma = 300, 600, 1.35, 0.22  # DAMIC-M module-test like: 0.16 e- resolution
    pedestal = rng.uniform(-45, -35, nrows)
    data = pedestal[:, None] + gain * rng.poisson(1.2, (nrows, ncols)) + rng.normal(0, sigma, (nrows, ncols))
    image = SkipperImage.from_arrays({"EXT1": data}, product="mean_compressed")
    run_chain(image, PedestalSubtractionProcess(method="gauss_fit", in_overscan=True, is_highT={"EXT1": True}))
    result = image["EXT1"].results["PedestalSubtractionProcess"]
    offsets = result["pedestal_row"] - pedestal
    assert np.median(np.abs(offsets)) < 0.02  # 0.1 sigma; the 1-e peak would be 1.35 away
    assert np.mean(np.abs(offsets) < 0.1) > 0.97
    assert result["noise_adu"] == pytest.approx(sigma, rel=0.05)
    # on the active region a Gaussian fit starts at the lowest peak even without is_highDC ...
    plain = SkipperImage.from_arrays({"EXT1": data}, product="mean_compressed")
    run_chain(plain, PedestalSubtractionProcess(method="gauss_fit", in_overscan=True))
    automatic = plain["EXT1"].results["PedestalSubtractionProcess"]
    assert np.allclose(automatic["pedestal_row"], result["pedestal_row"])
    # ... while the median of the mixture lands between the 0-e and 1-e peaks
    median = SkipperImage.from_arrays({"EXT1": data}, product="mean_compressed")
    run_chain(median, PedestalSubtractionProcess(method="median", in_overscan=True))
    assert np.median(median["EXT1"].results["PedestalSubtractionProcess"]["pedestal_row"] - pedestal) > 0.5


@pytest.mark.parametrize("drift", [0.0, 40.0])
def test_a_baseline_drifting_along_the_rows_is_reported(run_chain, drift):
    """A baseline drifting along the rows inflates the overscan noise; the pixel-to-pixel noise does not see it.

    200 overscan columns per row, a ramp of ``drift`` ADU over the 400 columns of a row (LTA-like): the spread
    of the overscan then holds the ramp (~ drift/2/sqrt(12) = 5.8 ADU for 40) on top of the 1 ADU pixel noise.
    """
    image, _ = make_raw_image(nrows=60, ncols=400, overscan=200, nskips=NSKIPS, noise=NOISE, seed=31)
    ncols = image["L"].raw.shape[1]
    image["L"].raw += np.linspace(0.0, drift, ncols)[None, :, None]
    chain(run_chain, image, method="median", in_overscan=True, axis="row")
    result = image["L"].results["PedestalSubtractionProcess"]
    # 60 rows x 200 pixels: the median of the per-row MAD estimates is within a few per cent
    assert result["noise_adu_pixel_to_pixel"] == pytest.approx(PIXEL_NOISE, rel=0.06)
    if drift:
        assert result["noise_adu"] > 3 * PIXEL_NOISE
        assert "the baseline drifts along the rows" in result["drift_warning"]
    else:
        assert result["noise_adu"] == pytest.approx(PIXEL_NOISE, rel=0.06)
        assert "drift_warning" not in result


def test_pixel_to_pixel_noise_of_white_noise_and_of_a_ramp():
    from waders.ana.pedestal import pixel_to_pixel_noise

    rng = np.random.default_rng(5)
    white = rng.normal(0.0, 2.0, size=(100, 300))
    # 100 rows x 299 differences: the MAD estimate has a relative error of about 1.1/sqrt(29900) = 0.6 %
    assert pixel_to_pixel_noise(white) == pytest.approx(2.0, rel=0.03)
    ramp = white + np.linspace(0, 1e4, 300)[None, :]  # a linear drift adds a constant to every difference
    assert pixel_to_pixel_noise(ramp) == pytest.approx(2.0, rel=0.03)
    assert np.isnan(pixel_to_pixel_noise(np.full((3, 1), 1.0)))
