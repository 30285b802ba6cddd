"""Averaged and multi-extension images, processed outputs, and the real files of waders-data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

from waders.core import AmplifierGeometry, SkipperImage
from waders.core.config import read_json
from waders.core.inputs import InputConfig
from waders.core.pipeline import Provenance, StepRecord
from waders.io import read_image, write_averaged_image, write_processed


def multi_extension_image(rng) -> SkipperImage:
    names = ["CCD_A", "CCD_B", "CCD_D"]
    arrays = {n: rng.normal(-40 + i, 1, (8, 12)) for i, n in enumerate(names)}
    geometries = {n: AmplifierGeometry(n, 8, 12, overscan_cols=3, extension=i + 1) for i, n in enumerate(names)}
    return SkipperImage.from_arrays(
        arrays, geometries=geometries, product="mean_compressed", layout="multi-extension", nskips_averaged=500
    )


def test_multi_extension_round_trip(tmp_path):
    image = multi_extension_image(np.random.default_rng(1))
    path = write_averaged_image(tmp_path / "avg.fits", image)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "CCD_A", "CCD_B", "CCD_D"]
        assert hdul[0].data is None
    back = read_image(path)
    assert list(back.amplifiers) == ["CCD_A", "CCD_B", "CCD_D"]
    assert back.geometry.averaged
    assert back.geometry.nskips_averaged == 500
    assert back.geometry.layout == "multi-extension"
    for i, name in enumerate(back.amplifiers, start=1):
        amp = back[name]
        assert amp.geometry.names == (name, f"EXT{i}")
        assert amp.geometry.overscan_cols == 3
        assert np.array_equal(amp.get("mean_compressed"), image[name].get("mean_compressed"))
        assert not amp.has("raw")


def test_two_amplifier_averaged_image_is_split_and_mirrored(tmp_path):
    rng = np.random.default_rng(2)
    geometries = {
        "L": AmplifierGeometry("L", 5, 10, prescan_cols=2, overscan_cols=3),
        "U": AmplifierGeometry("U", 5, 10, prescan_cols=2, overscan_cols=3, mirrored=True, col_offset=10),
    }
    image = SkipperImage.from_arrays(
        {n: rng.normal(size=(5, 10)) for n in "LU"}, geometries=geometries, product="mean_compressed"
    )
    path = write_averaged_image(tmp_path / "avg2.fits", image)
    data = fits.getdata(path)
    assert np.array_equal(data[:, 10:], image["U"].get("mean_compressed")[:, ::-1])
    back = read_image(path)
    for name in "LU":
        assert np.array_equal(back[name].get("mean_compressed"), image[name].get("mean_compressed"))
        assert back[name].geometry.mirrored == (name == "U")


def test_processed_output_has_products_provenance_and_constants(tmp_path):
    image = multi_extension_image(np.random.default_rng(3))
    for amp in image.amplifiers.values():
        amp.set("mean_compressed_pedestal_subtracted_e", amp.get("mean_compressed") / 1.3)
        amp.set("mask_clusters", amp.get("mean_compressed") > -39)
    image.add_header_card("GAIN_CCD_A", 1.3, "calibration constant ADU/e")
    image.provenance = Provenance(steps=[StepRecord("CalibrationProcess", {"gain": 1.3}, 0.1)], seed=7)
    image.header = {"NDCM": 500, "EXPOSURE": 500.0}
    path = write_processed(tmp_path / "img_waders.fits", image)
    with fits.open(path) as hdul:
        primary = hdul[0].header
        assert primary["GAIN_CCD_A"] == 1.3
        assert primary["WPROC1"] == "CalibrationProcess"
        assert primary["WSEED"] == 7
        assert primary["NDCM"] == 500
        assert json.loads(primary["WGEOM"])["amplifiers"][1]["name"] == "CCD_B"
        assert [h.name for h in hdul[1:]] == ["MEAN", "CALIBRATED", "FULLMASK"]
        calibrated = hdul["CALIBRATED"]
        assert calibrated.header["PRODUCT"] == "mean_compressed_pedestal_subtracted_e"
        assert calibrated.header["AMP2"] == "CCD_B"
        assert calibrated.header["AMP2ROWS"] == "8:16"
        assert np.allclose(calibrated.data[8:16], image["CCD_B"].get("mean_compressed_pedestal_subtracted_e"))
        assert hdul["FULLMASK"].data.dtype == np.uint8


def test_damicm_acm_file(data_dir):
    image = read_image(data_dir / "damicm" / "avg_Image_5_Low_Temp_109_20250807_170213_15.fz")
    assert list(image.amplifiers) == ["CCD_A", "CCD_B", "CCD_D", "CCD_C"]
    assert [a.geometry.aliases for a in image.amplifiers.values()] == [("EXT1",), ("EXT2",), ("EXT3",), ("EXT4",)]
    geometry = image.geometry
    assert geometry.averaged
    assert geometry.nskips_averaged == 500
    assert geometry.exposure_time == 500.0
    assert geometry.extra["daq"] == "acm"
    for amp in image.amplifiers.values():
        assert amp.geometry.shape == (320, 640)
        assert (amp.geometry.prescan_cols, amp.geometry.overscan_cols) == (0, 0)  # a window of the register
        assert -45 < np.median(amp.get("mean_compressed")) < -30  # pedestal not subtracted, in ADU
    assert image.header["CH0"] == "CCD_A"
    assert image.meta["exposure_start"].startswith("2025-08-07T17:02:13")


def test_damicm_file_with_the_users_configuration(data_dir):
    """img_5.json (pysimdamicm, ACM mode) reads the same four amplifiers with its EXT names."""
    user = read_json(data_dir / "configs" / "pysimdamicm" / "img_5.json")
    config = InputConfig.from_mapping(user["input"])
    image = read_image(data_dir / "damicm" / "avg_Image_5_Low_Temp_109_20250807_170213_15.fz", config)
    assert image["CCD_A"].geometry.names == ("CCD_A", "EXT1")
    assert all(a.geometry.overscan_cols == 0 for a in image.amplifiers.values())
    assert image.geometry.read_time == pytest.approx(3769.88, abs=0.01)


@pytest.mark.parametrize(
    ("name", "nskips", "ncols"), [("image_lta_2_ave.fits", 500, 5000), ("cal_1_6_ave.fits", 15, 4700)]
)
def test_sensei_lta_files(data_dir, name, nskips, ncols):
    image = read_image(data_dir / "lta" / name)
    assert list(image.amplifiers) == ["EXT0", "EXT1", "EXT2", "EXT3"]  # the first amplifier is in the primary HDU
    assert image.geometry.nskips_averaged == nskips  # NSAMP is a string in these headers
    assert image.geometry.exposure_time == 0.0
    assert image.geometry.extra["daq"] == "lta"
    for amp in image.amplifiers.values():
        g = amp.geometry
        assert g.shape == (40, ncols)
        assert g.prescan_cols == 7
        assert g.overscan_cols == ncols - (7 + 6144 // 2)
        assert g.row_binning == 40
        overscan = amp.get("mean_compressed")[:, g.overscan]
        assert 1e4 < np.median(overscan) < 1e6  # raw LTA pedestal level (ADU), not subtracted
