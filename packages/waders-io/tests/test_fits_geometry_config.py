"""A configured geometry that does not fit the image is an error naming the value, the image size and the file.

pysimdamicm refused a negative overscan; waders used to give an overscan of 0 silently
(and the noise, then measured on the active area with its dark current, came out too high).
"""

from __future__ import annotations

import pytest

from waders.core.errors import ConfigError
from waders.data import DAMICM_IMAGE, path
from waders.io import read_image, write_raw_image
from waders.io.synthetic import make_raw_image


@pytest.fixture(scope="module")
def two_amp(tmp_path_factory):
    """Two amplifiers of 60 columns each: 4 prescan + 46 active + 10 overscan (ccd_cols = 92)."""
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=30, ncols=60, nskips=2, prescan=4, overscan=10)
    file = tmp_path_factory.mktemp("geo") / "two.fits"
    write_raw_image(file, image)
    return file


@pytest.fixture(scope="module")
def one_amp(tmp_path_factory):
    """One amplifier of 60 columns: 4 prescan + 46 active + 10 overscan (ccd_cols = 50)."""
    image, _ = make_raw_image(amplifiers=("L",), nrows=30, ncols=60, nskips=2, prescan=4, overscan=10)
    file = tmp_path_factory.mktemp("geo") / "one.fits"
    write_raw_image(file, image)
    return file


def image_config(**values):
    return {"image": values}


def test_the_header_geometry_reads_back(two_amp, one_amp):
    for geometry in read_image(two_amp).geometry.amplifiers.values():
        assert (geometry.prescan_cols, geometry.overscan_cols, geometry.ncols) == (4, 10, 60)
    geometry = read_image(one_amp).geometry.amplifiers["L"]
    assert (geometry.prescan_cols, geometry.overscan_cols) == (4, 10)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ccd_cols": 120}, r"input.image.ccd_cols = 120 needs 64 columns per amplifier but .*two.fits "),
        ({"ccd_cols": 92, "n_cols_prescan": 20}, r"ccd_cols = 92 with n_cols_prescan = 20 needs 66 columns"),
        ({"n_cols_prescan": 61}, r"n_cols_prescan = 61 needs 107 columns per amplifier"),
        ({"n_rows_prescan": 20, "n_rows_overscan": 10}, r"n_rows_prescan = 20 and n_rows_overscan = 10 leave no"),
    ],
)
def test_two_amplifier_geometry_beyond_the_image(two_amp, values, message):
    with pytest.raises(ConfigError, match=message) as err:
        read_image(two_amp, image_config(**values))
    assert "two.fits (HDU 0: 30 rows x 120 columns)" in err.value.message


def test_one_amplifier_ccd_cols_wider_than_the_image(one_amp):
    with pytest.raises(
        ConfigError, match=r"ccd_cols = 61 needs 61 columns but .*one.fits \(HDU 0: 30 rows x 60 columns"
    ):
        read_image(one_amp, image_config(ccd_cols=61))
    # what fits still gives the overscan of the rest: 60 - 55 columns
    assert read_image(one_amp, image_config(ccd_cols=55)).geometry.amplifiers["L"].overscan_cols == 5


def test_binned_sizes_are_compared_in_binned_columns(tmp_path):
    """ccd_cols is unbinned: 100 unbinned columns are 50 binned ones and fit 60; 130 (65 binned) do not."""
    image, _ = make_raw_image(amplifiers=("L",), nrows=20, ncols=60, nskips=2, prescan=2, overscan=10, col_binning=2)
    file = tmp_path / "binned.fits"
    write_raw_image(file, image)
    assert read_image(file, image_config(ccd_cols=100)).geometry.amplifiers["L"].overscan_cols == 10
    with pytest.raises(ConfigError, match=r"ccd_cols = 130 needs 65 columns .*, binning 1x2\) has 60"):
        read_image(file, image_config(ccd_cols=130))


def test_real_damicm_extension_narrower_than_the_configured_ccd():
    """The DAMIC-M extensions have 640 columns (img_5.json says ccd_cols 640: no overscan, as read)."""
    config = {"image": {"ccd_cols": 640, "n_cols_prescan": 0, "extensions": [1, 2, 3, 4]}}
    assert all(g.overscan_cols == 0 for g in read_image(path(DAMICM_IMAGE), config).geometry.amplifiers.values())
    config["image"]["ccd_cols"] = 6144
    with pytest.raises(
        ConfigError, match=r"ccd_cols = 6144 needs 6144 columns but .*avg_Image_5.*HDU 1: 320 rows x 640"
    ):
        read_image(path(DAMICM_IMAGE), config)
