"""pysimdamicm's --bz2: bzip2-compressed FITS are read, and written with waders ana --bz2."""

from __future__ import annotations

import bz2
import subprocess
import sys

import numpy as np
from astropy.io import fits

from waders.io import read_image, write_raw_image
from waders.io.synthetic import make_raw_image


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=300)


def test_bz2_input_and_output(tmp_path):
    image, _ = make_raw_image(nrows=20, ncols=40, nskips=5, seed=4)
    plain = write_raw_image(tmp_path / "img_1.fits", image)
    compressed = tmp_path / "img_2.fits.bz2"
    compressed.write_bytes(bz2.compress(plain.read_bytes()))
    a, b = read_image(plain), read_image(compressed)
    assert np.array_equal(np.asarray(a["L"].raw), np.asarray(b["L"].raw))  # the same samples
    out = tmp_path / "out"
    result = waders("ana", str(compressed), "-s", "CompressSkipperProcess", "--save-img", "--bz2", "-o", str(out))
    assert result.returncode == 0, result.stderr
    (written,) = out.glob("*_waders.fits*")
    assert written.name == "img_2_waders.fits.bz2"
    assert written.read_bytes()[:3] == b"BZh"  # really bzip2, not a plain FITS with a .bz2 name
    reference = waders("ana", str(plain), "-s", "CompressSkipperProcess", "--save-img", "-o", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    with fits.open(written) as hdul, fits.open(tmp_path / "ref" / "img_1_waders.fits") as ref:
        assert [h.name for h in hdul] == [h.name for h in ref]
        for got, want in zip(hdul, ref, strict=True):
            if want.data is not None:
                np.testing.assert_array_equal(got.data, want.data)  # same products as the uncompressed run
    assert not list(out.glob(".*"))  # no temporary file left
