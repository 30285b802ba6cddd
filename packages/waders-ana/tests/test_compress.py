from __future__ import annotations

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.core.errors import ConfigError
from waders.io import read_image, write_raw_image
from waders.io.synthetic import make_raw_image


@pytest.mark.parametrize("lazy", [False, True])
def test_mean_and_std_over_the_skip_range(tmp_path, run_chain, lazy):
    image, _ = make_raw_image(amplifiers=("L", "U"), nskips=12, seed=3)
    if lazy:
        image = read_image(write_raw_image(tmp_path / "raw.fits", image, dtype="float64"), lazy=True)
        reference, _ = make_raw_image(amplifiers=("L", "U"), nskips=12, seed=3)
    else:
        reference = image
    run_chain(image, CompressSkipperProcess(func_to_compress="mean;std;median", id_skip_start=2, id_skip_end=-1))
    for name in ("L", "U"):
        samples = reference[name].raw[:, :, 2:]
        assert np.allclose(image[name].get("mean_compressed"), samples.mean(axis=2))
        assert np.allclose(image[name].get("std_compressed"), samples.std(axis=2))
        assert np.allclose(image[name].get("median_compressed"), np.median(samples, axis=2))
        assert image[name].results["CompressSkipperProcess"]["n_skips_used"] == 10
    assert image.header_cards["NSTART"][0] == 3
    assert image.header_cards["NUSED"][0] == 10


def test_noise_falls_as_one_over_sqrt_skips(run_chain):
    image, truth = make_raw_image(nrows=100, ncols=120, nskips=64, dark_current=0.0, noise=3.0, seed=4)
    run_chain(image, CompressSkipperProcess(func_to_compress=["mean"]))
    mean = image["L"].get("mean_compressed")
    residual = mean - truth.pedestal["L"][:, None]
    expected = 3.0 / np.sqrt(64)
    n = residual.size
    assert residual.std() == pytest.approx(expected, rel=4 / np.sqrt(2 * n))


def test_rows_and_columns_outside_the_window_are_nan(run_chain):
    image, _ = make_raw_image(nrows=20, ncols=30, nskips=3)
    run_chain(image, CompressSkipperProcess(id_row_start=5, id_row_end=15, id_col_start=2))
    mean = image["L"].get("mean_compressed")
    assert mean.shape == (20, 30)  # never cropped
    assert np.isnan(mean[:5]).all() and np.isnan(mean[15:]).all() and np.isnan(mean[:, :2]).all()
    assert np.isfinite(mean[5:15, 2:]).all()


def test_saturation_and_crosstalk_flags(run_chain):
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=40, ncols=50, nskips=20, noise=1.0, seed=5)
    image["L"].raw[7, 20, :] = 65535.0  # saturated: at the maximum with no spread
    rng = np.random.default_rng(0)
    for name in ("L", "U"):  # the same readout position is noisy in both amplifiers
        image[name].raw[10, 25, :] += rng.normal(0, 50, 20)
    image["L"].raw[30, 30, :] += rng.normal(0, 50, 20)  # noisy in one amplifier only
    run_chain(image, CompressSkipperProcess(xtalk=True))
    assert np.argwhere(image["L"].get("saturated_pixels")).tolist() == [[7, 20]]
    assert np.argwhere(image["L"].get("xtalk")).tolist() == [[10, 25]]
    assert np.array_equal(image["L"].get("xtalk"), image["U"].get("xtalk"))


def test_averaged_images_are_left_alone(run_chain):
    from waders.core import SkipperImage

    image = SkipperImage.from_arrays({"A": np.ones((4, 5))}, product="mean_compressed")
    run_chain(image, CompressSkipperProcess())
    assert image["A"].available() == ["mean_compressed"]


def test_bad_parameters():
    with pytest.raises(ConfigError, match="unknown reduction 'avg'"):
        CompressSkipperProcess(func_to_compress=["avg"])
    image, _ = make_raw_image(nskips=5)
    with pytest.raises(ConfigError, match="skip range"):
        CompressSkipperProcess(id_skip_start=6).run(image, None)
