"""Bad FITS input: one-line errors naming file and problem (exit 2), never an internal error or a hang.

Seeds are the real DAMIC-M (fpack) and SENSEI LTA files of waders-data and a raw
multi-skip image written by waders; headers are broken card by card at the byte level
(the way a disk error or a hand edit breaks them, including structural cards such as
NAXIS and BITPIX that astropy would refuse to write).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

import waders.data
from waders.core.errors import InputFileError
from waders.core.testing import (
    HEADER_VALUES,
    assert_clean_outcome,
    card_offsets,
    property_settings,
    replace_card,
    run_cli,
)
from waders.io.fits import read_image
from waders.io.fits.writer import write_raw_image
from waders.io.synthetic import make_raw_image

#: Keywords whose values the reader uses (run header, geometry, structure, compression).
KEYWORDS = (
    "NDCMS", "NDCM", "NSAMP", "NCOL", "NSBIN", "NPBIN", "EXPOSURE", "MEXP", "WPRESCAN", "WCCDCOLS",
    "WPRROWS", "WOVROWS", "CCDNPRES", "CCDNCOL", "NCOLPRE", "PRESCAN", "PHYSCOL", "AMPL", "EXTNAME",
    "NAXIS", "NAXIS1", "NAXIS2", "BITPIX", "ZNAXIS1", "ZNAXIS2", "ZBITPIX", "ZCMPTYPE", "DATEINI",
)  # fmt: skip


def _raw_seed(directory: Path) -> Path:
    image, _ = make_raw_image(nrows=12, ncols=30, nskips=4, dark_current=0.1, seed=3)
    return write_raw_image(directory / "raw_4.fits", image)


class Seeds(dict):
    """File contents by name (short repr: hypothesis prints the fixture with a failing example)."""

    def __repr__(self) -> str:
        return f"Seeds({', '.join(self)})"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("seeds")
    return Seeds(
        {
            "damicm.fz": waders.data.path(waders.data.DAMICM_IMAGE).read_bytes(),
            "lta.fits": waders.data.path(waders.data.LTA_IMAGE).read_bytes(),
            "raw.fits": _raw_seed(directory).read_bytes(),
        }
    )


#: One broken card: keyword, which of its cards (HDU), value text.
EDITS = st.lists(
    st.tuples(
        st.sampled_from(KEYWORDS),
        st.integers(0, 4),
        st.one_of(st.sampled_from(HEADER_VALUES), st.integers(-(10**12), 10**12).map(str)),
    ),
    min_size=1,
    max_size=3,
)


def apply_edits(data: bytes, edits: list[tuple[str, int, str]]) -> bytes:
    """Replace the value of the chosen cards (keywords absent from the file are left out)."""
    for key, which, value in edits:
        offsets = card_offsets(data, key)
        if offsets:
            data = replace_card(data, offsets[which % len(offsets)], value)
    return data


@property_settings(max_examples=150)
@given(name=st.sampled_from(["damicm.fz", "lta.fits", "raw.fits"]), edits=EDITS)
def test_broken_headers_never_give_an_internal_error(seeds, name, edits):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(apply_edits(seeds[name], edits))
        outcome = run_cli(["info", str(path)], timeout=30)
    assert_clean_outcome(outcome, [str(path)])


@property_settings(max_examples=40)
@given(data=st.data())
def test_truncated_and_corrupted_files(seeds, data):
    name = data.draw(st.sampled_from(sorted(seeds)))
    content = bytearray(seeds[name])
    cut = data.draw(st.integers(0, len(content)))
    content = content[:cut]
    for _ in range(data.draw(st.integers(0, 4))):
        if content:
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(bytes(content))
        outcome = run_cli(["info", str(path)], timeout=30)
    assert_clean_outcome(outcome, [str(path)])


# --- the families of issue 14, one test each -------------------------------------------------------
def test_named_pipe_and_device_are_refused_without_hanging(tmp_path):
    pipe = tmp_path / "pipe.fits"
    os.mkfifo(pipe)
    for target in (pipe, Path("/dev/zero")):
        outcome = run_cli(["info", str(target)], timeout=10)
        assert_clean_outcome(outcome, [str(target)])
        assert outcome.code == 2 and "not a regular file" in outcome.errors[0]
    with pytest.raises(InputFileError, match="named pipe"):
        read_image(pipe)


def test_gzip_compressed_raw_fits_is_read(tmp_path, seeds):
    plain = tmp_path / "raw_4.fits"
    plain.write_bytes(seeds["raw.fits"])
    packed = tmp_path / "raw_4.fits.gz"
    packed.write_bytes(gzip.compress(seeds["raw.fits"]))
    expected = read_image(plain).amplifiers["L"].raw
    got = read_image(packed).amplifiers["L"].raw  # the compressed size is smaller than the data
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("NDCMS", "0", "NDCMS='0' is not a positive integer"),
        ("NDCMS", "-3", "NDCMS='-3' is not a positive integer"),
        ("NDCMS", "'ten'", "NDCMS='ten' is not a positive integer"),
        ("NDCMS", "'nan'", "NDCMS='nan' is not a positive integer"),
        ("NSBIN", "'inf'", "NSBIN='inf' is not a positive integer"),
        ("NPBIN", "1e9", "NPBIN=1e+09 is larger than 65536"),
        ("WPRESCAN", "-1", "WPRESCAN='-1' is not a non-negative integer"),
        ("MEXP", "'nan'", "MEXP='nan' is not a finite time"),
        ("MEXP", "-5", "MEXP=-5 is a negative time"),
    ],
)
def test_header_values_are_validated(tmp_path, seeds, key, value, message):
    # issue 12: a 10-skip raw image with NDCMS 0 used to be read as an averaged one
    content = seeds["raw.fits"]
    (offset,) = card_offsets(content, key)
    path = tmp_path / "raw_4.fits"
    path.write_bytes(replace_card(content, offset, value))
    with pytest.raises(InputFileError) as caught:
        read_image(path)
    assert str(path) in caught.value.one_line() and message in caught.value.one_line()
    outcome = run_cli(["info", str(path)])
    assert outcome.code == 2 and len(outcome.errors) == 1 and message in outcome.errors[0]


@pytest.mark.parametrize(("key", "value"), [("NAXIS", "9"), ("BZERO", "'abc'"), ("BITPIX", "7")])
def test_broken_structural_cards(tmp_path, seeds, key, value):
    content = seeds["raw.fits"]
    if key == "BZERO":  # the raw seed has no BZERO card: put it in place of MEXP
        (offset,) = card_offsets(content, "MEXP")
        content = content[:offset] + b"BZERO   = " + content[offset + 10 :]
    (offset,) = card_offsets(content, key)
    path = tmp_path / "raw_4.fits"
    path.write_bytes(replace_card(content, offset, value))
    outcome = run_cli(["info", str(path)])
    assert_clean_outcome(outcome, [str(path)])
    assert outcome.code == 2


def test_infinite_pixels_and_extension_beyond_the_file(tmp_path):
    image, _ = make_raw_image(nrows=8, ncols=20, nskips=3)
    path = write_raw_image(tmp_path / "raw_3.fits", image)
    with fits.open(path, mode="update") as hdul:
        hdul[0].data[2, 5] = np.inf
    with pytest.raises(InputFileError, match=r"raw_3\.fits: 1 raw sample\(s\) .* are not finite"):
        read_image(path)
    with fits.open(waders.data.path(waders.data.LTA_IMAGE)) as hdul:
        hdul[1].data[3, 3] = -np.inf
        hdul.writeto(tmp_path / "lta.fits")
    with pytest.raises(InputFileError, match=r"lta\.fits: 1 pixel\(s\) of HDU 1 are infinite"):
        read_image(tmp_path / "lta.fits")
    with pytest.raises(InputFileError, match=r"no HDU 7"):
        read_image(waders.data.path(waders.data.LTA_IMAGE), {"image": {"extensions": [7]}})


def test_a_batch_reports_every_good_file(tmp_path, seeds):
    good = tmp_path / "raw_4.fits"
    good.write_bytes(seeds["raw.fits"])
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a FITS file" * 300)
    outcome = run_cli(["info", str(bad), str(good)])
    assert outcome.code == 2
    assert outcome.errors == [outcome.errors[0]] and str(bad) in outcome.errors[0]
    assert f"{good}: FITS" in outcome.stdout  # the good file is still described


def test_temporaries_of_killed_writers_are_cleaned(tmp_path):
    import subprocess
    import sys

    from waders.core.paths import temporary_tag
    from waders.io.atomic import atomic_path

    host = temporary_tag().rsplit("-", 1)[0]
    final = tmp_path / "out.summary.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".{final.name}.{host}-{int(dead.stdout)}.abc123.json.tmp"  # left by a kill -9
    stale.write_text("partial")
    live = tmp_path / f".{final.name}.{host}-{os.getppid()}.def456.json.tmp"  # a concurrent writer, still running
    live.write_text("being written")
    with atomic_path(final) as tmp:
        tmp.write_text("{}")
    assert final.read_text() == "{}"
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([final.name, live.name])
