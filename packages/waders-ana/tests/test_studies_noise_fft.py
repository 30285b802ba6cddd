"""FFTNoisePlot: spectra along the skips and along the row readout, timing, strongest lines."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.ana.sinks import write_run
from waders.ana.studies.fft import FFTNoisePlot, one_sided_power, strongest_lines
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import DataError
from waders.io import read_image, write_raw_image
from waders.io.synthetic import make_raw_image

NAME = FFTNoisePlot.name
SIGMA = 2.0  # ADU per sample
DT = 10e-6  # s per sample
NSKIPS = 64
F_SKIP = 23_000.0  # Hz: 14.72 bins of 1562.5 Hz along the skips (Nyquist 50 kHz)
F_ROW = 300.0  # Hz: along the rows, pixel time 640 us (Nyquist 781 Hz, bin 1562.5 / 100 = 15.6 Hz)


def image_with_lines(*, amplitude_skip=1.0, amplitude_row=0.5, seed=0, nrows=60, ncols=110) -> SkipperImage:
    """Raw image (prescan 4, overscan 6 -> 100 active columns) with two sinusoids in real time.

    Sample k of pixel (r, c) is read at t = ((r * ncols + c) * NSKIPS + k) * DT: the fast line is seen
    along the skips of every pixel, the slow one along the row readout.
    """
    image, _ = make_raw_image(
        nrows=nrows, ncols=ncols, nskips=NSKIPS, prescan=4, overscan=6, noise=SIGMA, dark_current=0.0, seed=seed
    )
    raw = image.amplifiers["L"].raw
    t = (np.arange(nrows * ncols * NSKIPS) * DT).reshape(raw.shape)
    raw += amplitude_skip * np.sin(2 * np.pi * F_SKIP * t + 0.3) + amplitude_row * np.sin(2 * np.pi * F_ROW * t + 1.1)
    return image


def run(image, process, *, compress=True):
    context = RunContext(seed=1)
    if compress:
        CompressSkipperProcess(func_to_compress=["mean"]).run(image, context)
    process.run(image, context)
    return image.amplifiers["L"].results[NAME]


def test_lines_along_skips_and_rows_are_found_within_one_bin():
    result = run(image_with_lines(), FFTNoisePlot(sample_time=DT * 1e6))
    skip_bin = 1 / (NSKIPS * DT)
    row_bin = 1 / (100 * NSKIPS * DT)
    assert result["skip_bin_hz"] == pytest.approx(skip_bin)
    assert result["row_bin_hz"] == pytest.approx(row_bin)
    assert abs(result["skip_peaks_hz"][0] - F_SKIP) <= skip_bin
    assert abs(result["row_peaks_hz"][0] - F_ROW) <= row_bin
    # a line of amplitude A carries A^2/2 of variance, leaking into the bins around it (0.72 bin off centre:
    # ~95 % within +/- 3 bins); white noise adds 2 sigma^2 / K per bin
    skip_peak_index = np.argmin(np.abs(result["skip_frequency_hz"] - F_SKIP))
    near = result["skip_power_adu2"][skip_peak_index - 3 : skip_peak_index + 4].sum()
    assert near - 7 * 2 * SIGMA**2 / NSKIPS == pytest.approx(0.5, rel=0.1)
    assert result["skip_peak_significance"][0] > 100 and result["row_peak_significance"][0] > 100
    assert result["skip_peak_ratio"][0] > 2.5 and result["row_peak_ratio"][0] > 5
    assert result["skip_n_pixels"] == 60 * 100 and result["row_n_rows"] == 60
    assert result["timing_source"] == "sample_time"
    assert len(result["peak_frequencies_hz"]) == 5
    assert np.min(np.abs(result["peak_frequencies_hz"] - F_ROW)) <= row_bin


def test_file_backed_raw_read_by_row_blocks_gives_the_same_spectra(tmp_path):
    image = image_with_lines(nrows=40)
    lazy = read_image(write_raw_image(tmp_path / "raw.fits", image, dtype="float64"), lazy=True)
    assert not isinstance(lazy.amplifiers["L"].raw, np.ndarray)
    process = FFTNoisePlot(sample_time=DT * 1e6, block_mbytes=1)  # 1 MB: blocks of 18 rows
    direct, blocks = run(image, process, compress=False), run(lazy, process, compress=False)
    for key in ("skip_power_adu2", "row_power_adu2", "skip_peaks_hz", "row_peaks_hz"):
        assert np.allclose(blocks[key], direct[key], rtol=1e-6)


def test_timing_from_the_read_time_and_from_the_pixel_time():
    image = image_with_lines()
    image.geometry.read_time = 60 * 110 * NSKIPS * DT  # rows x cols x skips samples of one amplifier
    result = run(image, FFTNoisePlot())
    assert result["timing_source"] == "read_time"
    assert result["sample_time_s"] == pytest.approx(DT) and result["pixel_time_s"] == pytest.approx(NSKIPS * DT)
    assert abs(result["skip_peaks_hz"][0] - F_SKIP) <= 1 / (NSKIPS * DT)
    image.geometry.read_time = float("nan")
    result = run(image, FFTNoisePlot(pixel_time=NSKIPS * DT * 1e6), compress=False)
    assert result["timing_source"] == "pixel_time" and result["sample_time_s"] == pytest.approx(DT)
    image.header["SAMPTIME"] = DT * 1e6
    result = run(image, FFTNoisePlot(sample_time_keyword="SAMPTIME"), compress=False)
    assert result["timing_source"] == "header SAMPTIME" and result["sample_time_s"] == pytest.approx(DT)


def test_white_noise_power_sums_to_the_variance_and_is_flat():
    image, _ = make_raw_image(nrows=100, ncols=60, nskips=50, noise=SIGMA, dark_current=0.0, seed=2)
    result = run(image, FFTNoisePlot(sample_time=1.0))
    power = result["skip_power_adu2"]
    # mean-subtracted series of K samples: variance sigma^2 (K - 1) / K; 5000 pixels -> 0.3 % statistical error
    assert power.sum() == pytest.approx(SIGMA**2 * 49 / 50, rel=0.02)
    assert power[0] == 0.0
    psd = result["skip_psd_adu2_per_hz"][1:]  # Nyquist bin included (half a bin wide)
    assert np.allclose(psd, 2 * SIGMA**2 * 1e-6, rtol=0.15)  # 2 sigma^2 / f_s with f_s = 1 MHz
    assert np.all(result["skip_peak_ratio"] < 1.3)


def test_without_timing_frequencies_are_per_sample(caplog):
    image = image_with_lines(nrows=30)
    with caplog.at_level(logging.WARNING):
        result = run(image, FFTNoisePlot(n_peaks=2))
    assert "no timing" in caplog.text
    assert result["timing_source"] == "unknown" and np.all(np.isnan(result["skip_peaks_hz"]))
    assert abs(result["skip_peaks_per_sample"][0] - F_SKIP * DT) <= 1 / NSKIPS
    assert abs(result["row_peaks_per_pixel"][0] - F_ROW * DT * NSKIPS) <= 1 / 100
    assert len(result["skip_peaks_per_sample"]) == 2


def test_row_spectrum_without_mean_compressed_uses_the_skip_means():
    result = run(image_with_lines(nrows=30), FFTNoisePlot(sample_time=DT * 1e6), compress=False)
    assert abs(result["row_peaks_hz"][0] - F_ROW) <= 1 / (100 * NSKIPS * DT)


def test_averaged_image_gives_the_row_spectrum_only():
    rng = np.random.default_rng(0)
    columns = np.arange(128)
    rows = 0.2 * rng.standard_normal((40, 128)) + np.sin(2 * np.pi * 0.125 * columns)
    image = SkipperImage.from_arrays({"L": rows}, product="mean_compressed")
    result = run(image, FFTNoisePlot(pixel_time=1e6), compress=False)  # 1 s per pixel -> 1 Hz sampling
    assert "skip_power_adu2" not in result
    assert result["row_peaks_hz"][0] == pytest.approx(0.125)


def test_strongest_lines_and_power_helpers():
    spectrum = np.array([100.0, 1, 1, 9, 1, 1, 4, 5, 1])
    lines = strongest_lines(spectrum, 2, 100)
    assert list(lines["index"]) == [3, 7]  # DC excluded, only local maxima (6 is beside 7)
    assert lines["ratio"][0] == pytest.approx(9.0)
    assert lines["significance"][0] == pytest.approx((9 - 1) / (1 / 10))
    power = one_sided_power(np.array([0.0, 4.0, 4.0, 4.0]), 1, 6)  # |X|^2 of 6 samples: bins 0..3
    assert np.allclose(power, [0.0, 8 / 36, 8 / 36, 4 / 36])


def test_plots_and_no_active_pixels(tmp_path):
    image = image_with_lines(nrows=20)
    CompressSkipperProcess(func_to_compress=["mean"]).run(image, RunContext(seed=1))
    context = RunContext()
    Pipeline([FFTNoisePlot(save_plots=True, sample_time=DT * 1e6)]).run(image, context)
    write_run(image, [], context, tmp_path)
    assert (tmp_path / "plots" / f"image_{NAME}_spectra_L.png").stat().st_size > 0
    with pytest.raises(DataError, match="outside the id_row/id_col window"):
        FFTNoisePlot(id_col_start=105).run(image, RunContext(seed=1))
    bare = SkipperImage.from_arrays({"L": np.zeros((5, 5))}, product="other")
    with pytest.raises(DataError, match="neither raw samples nor"):
        FFTNoisePlot().run(bare, RunContext(seed=1))


def test_pysimdamicm_sections_load(configs):
    sections = json.loads((configs / "panaSKImg_configuration.json").read_text())
    process = FFTNoisePlot.from_mapping(sections["process"]["FFTNoisePlot"])
    assert process.image == "mean_compressed"
