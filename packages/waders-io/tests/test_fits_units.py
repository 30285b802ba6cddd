"""Units and history in every FITS file waders writes: BUNIT and HISTORY, read back by astropy."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from waders.core import SkipperImage
from waders.io import write_averaged_image, write_raw_image
from waders.io.fits import write_processed
from waders.io.fits.bunit import product_unit


@pytest.mark.parametrize(
    ("product", "unit"),
    [
        ("raw", "adu"),
        ("mean_compressed", "adu"),
        ("mean_compressed_pedestal_subtracted", "adu"),
        ("mean_compressed_pedestal_subtracted_e", "electron"),
        ("mean_compressed_e2d", "electron"),
        ("mask_clusters", None),
        ("saturated_pixels", None),
    ],
)
def test_product_units(product, unit):
    assert product_unit(product) == unit


def test_raw_and_averaged_images_have_bunit_and_history(tmp_path):
    rng = np.random.default_rng(1)
    image = SkipperImage.from_arrays({"L": rng.normal(1000.0, 2.0, size=(6, 8, 3))})
    raw = write_raw_image(tmp_path / "raw.fits", image)
    ccd = CCDData.read(raw, hdu=0)
    assert str(ccd.unit) == "adu" and ccd.shape == (6, 24)
    assert "written by waders" in str(ccd.header["HISTORY"])
    averaged = SkipperImage.from_arrays({"L": rng.normal(size=(6, 8))}, product="mean_compressed")
    path = write_averaged_image(tmp_path / "avg.fits", averaged)
    assert str(CCDData.read(path, hdu=0).unit) == "adu"


def test_processed_products_are_read_with_their_unit(tmp_path):
    image = SkipperImage.from_arrays({"L": np.full((4, 5), 20.0)}, product="mean_compressed")
    image["L"].set("mean_compressed_e", np.full((4, 5), 2.0))
    image["L"].set("mask_clusters", np.zeros((4, 5), dtype=bool))
    path = write_processed(tmp_path / "p_waders.fits", image)
    with fits.open(path) as hdus:
        names = [h.name for h in hdus]
        assert "BUNIT" not in hdus[names.index("FULLMASK")].header  # a mask has no unit
    electrons = CCDData.read(path, hdu=names.index("MEAN_COMPRESSED_E"))
    assert str(electrons.unit) == "electron"
    np.testing.assert_array_equal(electrons.data, 2.0)
    assert str(CCDData.read(path, hdu="MEAN").unit) == "adu"
