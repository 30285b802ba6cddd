"""Raw multi-skip FITS images: layouts, round trips, corrections and streaming."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from waders.core.errors import InputFileError
from waders.core.inputs import InputConfig
from waders.io import read_image, reduce_skips, write_raw_image
from waders.io.fits.raw import FitsRawSamples, RowSource
from waders.io.synthetic import make_raw_image


@pytest.mark.parametrize("amplifiers", [("L",), ("L", "U")])
@pytest.mark.parametrize(("dtype", "binning"), [("float32", (1, 1)), ("int32", (2, 1)), ("uint16", (1, 3))])
def test_raw_round_trip_is_exact(tmp_path, amplifiers, dtype, binning):
    image, _ = make_raw_image(
        amplifiers=amplifiers, nskips=5, dtype=dtype, row_binning=binning[0], col_binning=binning[1], seed=4
    )
    path = write_raw_image(tmp_path / "raw.fits", image, dtype=dtype)
    for lazy in (False, True):
        back = read_image(path, lazy=lazy)
        assert list(back.amplifiers) == list(amplifiers)
        assert back.geometry.nskips == 5
        assert not back.geometry.averaged
        for name in amplifiers:
            expected = image[name]
            got = back[name]
            assert np.array_equal(np.asarray(got.raw), expected.raw.astype(np.float64))
            g, e = got.geometry, expected.geometry
            assert (g.nrows, g.ncols, g.prescan_cols, g.overscan_cols) == (
                e.nrows,
                e.ncols,
                e.prescan_cols,
                e.overscan_cols,
            )
            assert (g.row_binning, g.col_binning, g.mirrored) == (e.row_binning, e.col_binning, e.mirrored)
            assert isinstance(got.raw, FitsRawSamples) == lazy


def test_file_layout_of_two_amplifiers(tmp_path):
    """raw[r, c*nskips + k]; the U half is mirrored and its sample stream reversed."""
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=3, ncols=6, nskips=4, prescan=1, overscan=2, seed=1)
    path = write_raw_image(tmp_path / "raw.fits", image, dtype="float64")
    raw = fits.getdata(path)
    assert raw.shape == (3, 2 * 6 * 4)
    lower, upper = image["L"].raw, image["U"].raw
    assert raw[1, 2 * 4 + 3] == lower[1, 2, 3]
    # the last sample in the file is the first skip of U's first pixel read (its prescan)
    assert raw[2, -1] == upper[2, 0, 0]
    assert np.array_equal(raw[:, 24:][:, ::-1].reshape(3, 6, 4), upper)
    header = fits.getheader(path)
    assert (header["NDCMS"], header["AMPL"], header["WPRESCAN"]) == (4, "UL", 1)


def test_polarity_inversion(tmp_path):
    image, _ = make_raw_image(nskips=3, seed=2)
    path = write_raw_image(tmp_path / "inv.fits", image, dtype="float64", invert_polarity=5e4)
    config = InputConfig.from_mapping({"image": {"correct_polarity": True}})
    for lazy in (False, True):
        back = np.asarray(read_image(path, config, lazy=lazy)["L"].raw)
        original = image["L"].raw
        assert np.allclose(back, original - original.min(), atol=1e-9)


def _leach_bug(clean: np.ndarray, two_halves: bool) -> np.ndarray:
    """What the Leach/CCDDrone recorder writes for a clean image (inverse of the fix)."""
    bugged = np.empty_like(clean)
    width = clean.shape[1] // 2 if two_halves else clean.shape[1]
    bugged[:, 2:width] = clean[:, : width - 2]
    bugged[:, :2] = np.roll(clean[:, width - 2 : width], 1, axis=0)
    if two_halves:
        bugged[:, width:-2] = clean[:, width + 2 :]
        bugged[:, -2:] = np.roll(clean[:, width : width + 2], 1, axis=0)
    return bugged


@pytest.mark.parametrize("ampl", ["L", "UL"])
def test_leach_bug_correction(tmp_path, ampl):
    rng = np.random.default_rng(3)
    nrows, naxis1, nskips = 9, 2 * 8 * 3, 3
    clean = rng.normal(1000, 5, (nrows, naxis1))
    header = fits.Header({"NDCMS": nskips, "AMPL": ampl, "WPRESCAN": 1, "WCCDCOLS": 6 if ampl == "UL" else 14})
    fits.PrimaryHDU(_leach_bug(clean, ampl == "UL"), header=header).writeto(tmp_path / "leach.fits")
    config = InputConfig.from_mapping({"image": {"correct_leach_bug": True}})
    expected = read_image_from_array(clean, nskips, ampl)
    for lazy in (False, True):
        image = read_image(tmp_path / "leach.fits", config, lazy=lazy)
        for name, samples in expected.items():
            raw = image[name].raw
            got = np.concatenate([raw[a : a + 2] for a in range(0, nrows, 2)]) if lazy else raw  # odd block ends
            assert np.allclose(got, samples)


def read_image_from_array(clean: np.ndarray, nskips: int, ampl: str) -> dict[str, np.ndarray]:
    if ampl == "UL":
        half = clean.shape[1] // 2
        return {
            "L": clean[:, :half].reshape(clean.shape[0], -1, nskips),
            "U": clean[:, half:][:, ::-1].reshape(clean.shape[0], -1, nskips),
        }
    return {"L": clean.reshape(clean.shape[0], -1, nskips)}


def test_lazy_samples_behave_like_an_array(tmp_path):
    image, _ = make_raw_image(nrows=12, nskips=4, seed=5)
    back = read_image(write_raw_image(tmp_path / "r.fits", image), lazy=True)["L"].raw
    expected = image["L"].raw.astype(np.float32).astype(np.float64)
    assert back.shape == expected.shape
    assert np.array_equal(back[3], expected[3])
    assert np.array_equal(back[-1], expected[-1])
    assert np.array_equal(back[2:7], expected[2:7])
    assert np.array_equal(back[2:7, 1:3], expected[2:7, 1:3])
    assert np.array_equal(back[::3], expected[::3])
    with pytest.raises(IndexError):
        back[12]


@pytest.mark.parametrize("block_bytes", [1, 5000, 1 << 30])
def test_reduce_skips_matches_numpy_for_any_block_size(tmp_path, block_bytes):
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=11, nskips=9, seed=6)
    lazy = read_image(write_raw_image(tmp_path / "r.fits", image, dtype="float64"), lazy=True)
    result = reduce_skips(lazy, ["mean", "std", "median"], skips=(2, -1), block_bytes=block_bytes)
    for name in ("L", "U"):
        samples = image[name].raw[:, :, 2:]
        assert np.allclose(result[name]["mean"], samples.mean(axis=2))
        assert np.allclose(result[name]["std"], samples.std(axis=2))
        assert np.allclose(result[name]["median"], np.median(samples, axis=2))
    in_memory = reduce_skips(image, ["mean"], skips=(0, 4), block_bytes=block_bytes)
    assert np.allclose(in_memory["U"]["mean"], image["U"].raw[:, :, :4].mean(axis=2))


def test_reduce_skips_reads_bounded_row_blocks(tmp_path, monkeypatch):
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=40, ncols=20, nskips=25, seed=7)
    lazy = read_image(write_raw_image(tmp_path / "r.fits", image, dtype="float64"), lazy=True)
    calls: list[tuple[int, int]] = []
    for method in ("rows", "stored_rows", "mapped_rows"):
        original = getattr(RowSource, method)

        def spy(self, start, stop, _original=original, **options):
            calls.append((start, stop))
            return _original(self, start, stop, **options)

        monkeypatch.setattr(RowSource, method, spy)
    block_bytes = 3 * 2 * 20 * 25 * 8  # three rows of both amplifiers
    reduce_skips(lazy, ["mean"], block_bytes=block_bytes)
    assert max(stop - start for start, stop in calls) == 3
    assert sorted(calls)[0][0] == 0
    assert sum(stop - start for start, stop in calls) == 40  # each row read once for both amplifiers


@pytest.mark.parametrize(
    ("skips", "message"),
    [((5, 3), "skip range"), ((0, 100), "skip range"), ((20, -1), "skip range"), ((-1, None), "skip range")],
)
def test_bad_skip_ranges(skips, message):
    from waders.core.errors import ConfigError

    image, _ = make_raw_image(nskips=10)
    with pytest.raises(ConfigError, match=message):
        reduce_skips(image, ["mean"], skips=skips)


def test_negative_end_means_up_to_the_last_skip():
    image, _ = make_raw_image(nskips=10, seed=8)
    for end in (-1, -10, None):
        result = reduce_skips(image, ["mean"], skips=(3, end))
        assert np.allclose(result["L"]["mean"], image["L"].raw[:, :, 3:].mean(axis=2))


class _FailingSamples:
    """Raw samples whose third row block cannot be produced (e.g. a DAQ read error)."""

    def __init__(self, shape):
        self.shape = shape
        self.dtype = np.dtype(np.float64)

    def __getitem__(self, rows):
        start, stop, _ = rows.indices(self.shape[0])
        if start >= 4:
            raise OSError("device error")
        return np.zeros((stop - start, *self.shape[1:]))


def test_interrupted_write_leaves_no_file(tmp_path):
    from waders.core import AmplifierGeometry, SkipperImage
    from waders.core.geometry import ImageGeometry
    from waders.core.image import Amplifier

    geometry = AmplifierGeometry("L", 10, 6, extension=0)
    amp = Amplifier(geometry, raw=_FailingSamples((10, 6, 3)))
    image = SkipperImage({"L": amp}, ImageGeometry({"L": geometry}, nskips=3))
    target = tmp_path / "raw.fits"
    target.write_bytes(b"previous complete file")
    with pytest.raises(OSError, match="device error"):
        write_raw_image(target, image, block_rows=2)
    assert target.read_bytes() == b"previous complete file"  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["raw.fits"]  # no temporary file left behind


@pytest.mark.parametrize("bad", [[np.nan], [np.inf], [np.inf, -np.inf]])
@pytest.mark.parametrize(
    ("functions", "skips"),
    [(["mean"], (None, None)), (["median"], (None, None)), (["std", "median"], (None, None)), (["mean"], (1, None))],
)
def test_reduce_skips_finds_non_finite_samples(tmp_path, bad, functions, skips):
    """Whether found in the means or by a pass over the samples: the same error, however the skips are reduced."""
    from waders.core.errors import InputFileError

    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=12, ncols=30, nskips=4, seed=8)
    path = write_raw_image(tmp_path / "r.fits", image, dtype="float32")
    with fits.open(path, mode="update") as hdul:
        for i, value in enumerate(bad):
            hdul[0].data[7, 4 * 3 + i * 4 * 30] = value  # skip 0 of a pixel of each half
    lazy = read_image(path, lazy=True)
    with pytest.raises(InputFileError, match=rf"{len(bad)} raw sample\(s\) in HDU 0 rows \d+\.\.\d+ are not finite"):
        reduce_skips(lazy, functions, skips=skips, block_bytes=3 * 60 * 4 * 8)


def test_stored_rows_into_a_buffer_and_a_file_cut_after_opening(tmp_path):
    image, _ = make_raw_image(nrows=10, nskips=4, seed=9)
    path = write_raw_image(tmp_path / "r.fits", image, dtype="float32")
    source = read_image(path, lazy=True)["L"].raw.source
    offset, dtype, _, _ = source.memmap_info
    buffer = np.full(4 * source.shape[1], np.nan, dtype=dtype)
    rows = source.stored_rows(2, 5, out=buffer)
    assert np.shares_memory(rows, buffer)  # no new memory
    assert np.array_equal(rows, source.stored_rows(2, 5))
    path.write_bytes(path.read_bytes()[: offset + 6 * source.shape[1] * np.dtype(dtype).itemsize])
    with pytest.raises(InputFileError, match="truncated"):
        source.stored_rows(4, 8, out=buffer)


def test_mapped_rows_share_the_file_pages_and_a_file_cut_after_opening(tmp_path):
    image, _ = make_raw_image(nrows=10, nskips=4, seed=9)
    path = write_raw_image(tmp_path / "r.fits", image, dtype="float32")
    source = read_image(path, lazy=True)["L"].raw.source
    offset, dtype, _, _ = source.memmap_info
    rows = source.mapped_rows(2, 5)
    assert not rows.flags.owndata and not rows.flags.writeable  # the file's pages, read-only
    assert np.array_equal(rows, source.stored_rows(2, 5))
    del rows
    path.write_bytes(path.read_bytes()[: offset + 6 * source.shape[1] * np.dtype(dtype).itemsize])
    with pytest.raises(InputFileError, match="truncated"):  # found before mapping: no SIGBUS
        source.mapped_rows(4, 8)


def test_reduce_skips_gives_the_same_means_from_mapped_and_read_rows(tmp_path, monkeypatch):
    from waders.io import reduce as reduce_module

    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=30, ncols=20, nskips=25, seed=5)
    lazy = read_image(write_raw_image(tmp_path / "r.fits", image, dtype="float32"), lazy=True)
    block_bytes = 4 * 2 * 20 * 25 * 8
    mapped = reduce_skips(lazy, ["mean", "std"], block_bytes=block_bytes)
    monkeypatch.setattr(reduce_module, "MAP_ROWS", False)
    read = reduce_skips(lazy, ["mean", "std"], block_bytes=block_bytes)
    for name in ("L", "U"):
        for function in ("mean", "std"):
            np.testing.assert_array_equal(mapped[name][function], read[name][function])
        np.testing.assert_allclose(mapped[name]["mean"], image[name].raw.mean(axis=2), rtol=1e-6)
