"""Bad FITS input: one line naming the file and the problem."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from waders.core.errors import ConfigError, InputFileError
from waders.core.inputs import InputConfig
from waders.io import read_image, write_raw_image
from waders.io.synthetic import make_raw_image


def one_line(err: pytest.ExceptionInfo) -> str:
    text = err.value.one_line()
    assert "\n" not in text
    return text


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputFileError) as err:
        read_image(tmp_path / "nope.fits")
    assert one_line(err) == f"{tmp_path / 'nope.fits'}: no such file"
    with pytest.raises(InputFileError, match="is a directory"):
        read_image(tmp_path)


def test_not_a_fits_file(tmp_path):
    path = tmp_path / "notes.fits"
    path.write_text("this is not FITS\n" * 100)
    with pytest.raises(InputFileError) as err:
        read_image(path)
    assert one_line(err).startswith(f"{path}: not a readable FITS file")


@pytest.mark.parametrize("cut", [100, 3000, 20000])
def test_truncated_file(tmp_path, cut):
    image, _ = make_raw_image(nrows=30, nskips=5)
    path = write_raw_image(tmp_path / "full.fits", image, dtype="float32")
    data = path.read_bytes()
    truncated = tmp_path / "cut.fits"
    truncated.write_bytes(data[: len(data) - cut])
    with pytest.raises(InputFileError) as err:
        read_image(truncated, lazy=True)
    text = one_line(err)
    assert str(truncated) in text
    assert "truncated" in text or "not a readable FITS" in text


def test_naxis1_not_divisible_by_the_skip_count(tmp_path):
    path = tmp_path / "odd.fits"
    fits.PrimaryHDU(np.zeros((4, 61), np.float32), header=fits.Header({"NDCMS": 7})).writeto(path)
    with pytest.raises(InputFileError) as err:
        read_image(path)
    assert "NAXIS1=61 is not divisible by the skip count NDCMS=7" in one_line(err)


def test_missing_skip_keyword(tmp_path):
    path = tmp_path / "noskips.fits"
    fits.PrimaryHDU(np.zeros((4, 60), np.float32)).writeto(path)
    config = InputConfig.from_mapping({"image": {"skip_image": True}, "convention": {"Nskips": "NDCMS"}})
    with pytest.raises(InputFileError) as err:
        read_image(path, config)
    assert one_line(err) == (
        f"{path}: header keyword NDCMS (number of skips) is missing; set input.convention.Nskips to the "
        "keyword your DAQ writes (NDCMS, NDCM, NSAMP)"
    )
    auto = InputConfig.from_mapping({"image": {"skip_image": True}})
    with pytest.raises(InputFileError, match="no skip-count keyword"):
        read_image(path, auto)
    assert read_image(path).geometry.averaged  # without skip information it is an averaged image


def test_unknown_extension_and_odd_two_amplifier_image(tmp_path):
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(np.zeros((4, 3 * 5), np.float32), header=fits.Header({"NDCMS": 5, "AMPL": "UL"})).writeto(path)
    with pytest.raises(InputFileError, match=r"no HDU 'CCD_Z' \(HDUs: PRIMARY\)"):
        read_image(path, InputConfig.from_mapping({"image": {"extensions": "CCD_Z"}}))
    with pytest.raises(InputFileError, match="needs an even number of columns, got 3"):
        read_image(path)


def test_config_typos_are_caught_before_reading():
    with pytest.raises(ConfigError, match="did you mean 'correct_polarity'"):
        InputConfig.from_mapping({"image": {"correct_polarty": True}})
