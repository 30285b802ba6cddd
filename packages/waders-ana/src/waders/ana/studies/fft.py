"""FFTNoisePlot: noise power spectra along the skips of a pixel and along the row readout.

Two spectra per amplifier:

* **skips** -- for every active pixel (id_row/id_col window) the skip series (configured
  skip range) minus its mean is Fourier transformed; the power is averaged over pixels.
  The transforms are batched: one ``rfft`` along the skip axis per block of rows of the
  raw samples (read block by block, so file-backed images stay out of memory);
* **rows** -- every active row of the ``image`` product (``mean_compressed`` by default;
  without it, the per-pixel means of the skip pass) over the amplifier's active columns
  minus the row mean, transformed along the row (readout order, i.e. time order) and
  averaged over rows.

Spectra are one-sided: ``*_power_adu2`` is the variance carried by each frequency bin
(summing to the variance of the series; a sinusoid of amplitude A puts A**2 / 2 in its
bin), ``*_psd_adu2_per_hz`` the power divided by the bin width (half a bin at DC and
Nyquist).  Frequencies come from the timing: ``sample_time`` and ``pixel_time`` when
given; else a header keyword (``sample_time_keyword``); else the read time of the image
divided by the number of samples one amplifier reads (rows x columns x skips); the pixel
interval is the number of skips per pixel times the sample interval.  Without any timing, frequencies are reported
only in cycles per sample / per pixel (the ``*_hz`` values are NaN).

The ``n_peaks`` strongest lines of each spectrum (local maxima, DC excluded) are
reported with their power, their ratio to the median power of the spectrum and their
significance ``(power - median) / (median / sqrt(n_averaged))`` (the fluctuation of an
average of ``n_averaged`` white-noise spectra).

Records per amplifier: ``sample_time_s``, ``pixel_time_s``, ``timing_source``;
``skip_frequency_hz``, ``skip_frequency_per_sample``, ``skip_power_adu2``,
``skip_psd_adu2_per_hz``, ``skip_n_pixels``, ``skip_peaks_hz``, ``skip_peaks_per_sample``,
``skip_peak_power_adu2``, ``skip_peak_ratio``, ``skip_peak_significance``; the same with
``row_`` (``row_frequency_per_pixel``, ``row_peaks_per_pixel``, ``row_n_rows``); and
``peak_frequencies_hz``: the ``n_peaks`` strongest lines of both spectra by ratio.

Deliberate differences from pysimdamicm:

* one batched FFT per block of rows instead of one FFT per pixel in a Python loop;
* power spectra (variance per bin) instead of averaged FFT magnitudes, so spectra of
  different images and skip numbers compare;
* the skip series is the configured skip range (pysimdamicm truncated or padded the
  series from skip 0), rows and columns are exactly the active ones (pysimdamicm
  counted one more of each and padded the rows with prescan and overscan);
* the sample interval is read time / (rows x cols x skips of one amplifier) and the
  pixel interval skips x sample interval (pysimdamicm used the pixel time as the sample
  time and an unrelated row rate); the read time is in seconds;
* the strongest lines are reported, not only drawn.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import DataError
from waders.core.image import RAW, Amplifier
from waders.core.kinds import Float, Int, Optional, Str
from waders.core.lazy import lazy_module

from ..base import AnalysisProcess
from ..plotting import figure, wants_plots

scipy_fft = lazy_module("scipy.fft")

__all__ = ["FFTNoisePlot", "one_sided_power", "strongest_lines"]

log = logging.getLogger(__name__)

_OPTIONAL_TIME = Optional(Float(min=0))


def one_sided_power(sum_abs2: np.ndarray, n_series: int, length: int) -> np.ndarray:
    """Variance per frequency bin from the summed ``|rfft|**2`` of ``n_series`` series of ``length``."""
    power = sum_abs2 / (max(n_series, 1) * float(length) ** 2)
    power[1 : (length + 1) // 2] *= 2.0  # fold negative frequencies (not DC, not Nyquist)
    return power


def strongest_lines(power: np.ndarray, n_peaks: int, n_averaged: int) -> dict[str, np.ndarray]:
    """The ``n_peaks`` highest local maxima of a spectrum, DC excluded.

    Parameters
    ----------
    power : numpy.ndarray
        One-sided spectrum (bin 0 is DC).
    n_peaks : int
        Number of lines.
    n_averaged : int
        Number of spectra averaged into ``power`` (for the significance).

    Returns
    -------
    dict
        ``index`` (bins), ``power``, ``ratio`` (to the median power) and ``significance``.
    """
    spectrum = np.asarray(power[1:], dtype=np.float64)
    if spectrum.size == 0:
        empty = np.zeros(0)
        return {"index": np.zeros(0, dtype=np.int64), "power": empty, "ratio": empty, "significance": empty}
    padded = np.concatenate([[-np.inf], spectrum, [-np.inf]])
    local = (spectrum > padded[:-2]) & (spectrum >= padded[2:])
    candidates = np.flatnonzero(local)
    order = candidates[np.argsort(spectrum[candidates])[::-1]][:n_peaks]
    median = float(np.median(spectrum))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = spectrum[order] / median
        significance = (spectrum[order] - median) / (median / math.sqrt(max(n_averaged, 1)))
    return {"index": order + 1, "power": spectrum[order], "ratio": ratio, "significance": significance}


class FFTNoisePlot(AnalysisProcess):
    """Noise power spectra along the skips (batched FFT over pixels) and along the row readout; strongest lines.

    Timing: ``sample_time``/``pixel_time`` (us), else header ``sample_time_keyword``, else read time /
    (rows x cols x skips of one amplifier); pixel time = skips x sample time.  Records ``skip_*`` and
    ``row_*`` spectra (``*_frequency_hz``, ``*_power_adu2``, ``*_psd_adu2_per_hz``), the strongest lines
    (``skip_peaks_hz``, ``row_peaks_hz``, ``*_peak_power_adu2``, ``*_peak_ratio``, ``*_peak_significance``)
    and ``peak_frequencies_hz`` (both spectra).
    """

    products = (
        Product(
            "row_psd_adu2_per_hz",
            "result",
            "ADU^2/Hz",
            "noise power spectral density along the row readout (row_frequency_hz)",
        ),
        Product(
            "skip_psd_adu2_per_hz",
            "result",
            "ADU^2/Hz",
            "power spectral density along the skips (raw images; skip_frequency_hz)",
        ),
        Product("peak_frequencies_hz", "result", "Hz", "strongest lines of both spectra"),
        Product("spectra", "figure", doc="the noise spectra and their strongest lines"),
    )

    order: ClassVar[int] = 61
    per_amplifier: ClassVar[bool] = True

    image = Param("mean_compressed", doc="image product for the row spectrum (ADU)")
    sample_time = Param(None, _OPTIONAL_TIME, unit="us", doc="time of one sample (skip); null: from header/read time")
    pixel_time = Param(None, _OPTIONAL_TIME, unit="us", doc="time between pixels; null: skips x sample time")
    sample_time_keyword = Param(None, Optional(Str()), doc="header keyword holding the sample time (in us)")
    n_peaks = Param(5, Int(min=1), doc="number of strongest lines reported per spectrum")
    block_mbytes = Param(64.0, Float(min=1), doc="memory for one block of raw samples (MB)")

    # --- timing --------------------------------------------------------------------------------
    def timing(self, image: SkipperImage, amplifier: Amplifier) -> tuple[float, float, str]:
        """Sample and pixel intervals (s, NaN if unknown) and where they came from."""
        nskips = max(int(image.geometry.nskips), 1)
        sample, source = float("nan"), "unknown"
        if self.sample_time is not None:
            sample, source = float(self.sample_time), "sample_time"
        elif self.sample_time_keyword and self.sample_time_keyword in image.header:
            try:
                sample = float(image.header[self.sample_time_keyword]) * 1e-6
                source = f"header {self.sample_time_keyword}"
            except (TypeError, ValueError):
                log.warning("%s: header %s is not a number", self.name, self.sample_time_keyword)
        if not math.isfinite(sample):
            read = image.geometry.read_time
            if math.isfinite(read) and read > 0:
                geometry = amplifier.geometry
                sample, source = read / (geometry.nrows * geometry.ncols * nskips), "read_time"
        if self.pixel_time is not None:
            pixel = float(self.pixel_time)
            if not math.isfinite(sample):
                sample, source = pixel / nskips, "pixel_time"
        else:
            pixel = sample * nskips
        if sample <= 0 or pixel <= 0:
            raise DataError(f"{self.name}: non-positive sample or pixel time", hint="set sample_time > 0")
        return sample, pixel, source

    # --- spectra -------------------------------------------------------------------------------
    def skip_spectrum(
        self, image: SkipperImage, amplifier: Amplifier
    ) -> tuple[np.ndarray, int, int, np.ndarray | None]:
        """Summed ``|rfft|**2`` over active pixels, the number of pixels, the series length and the pixel means."""
        raw = amplifier.get(RAW)
        start, stop = self.skip_range(image, raw.shape[2])
        length = stop - start
        rows, cols = self._active_window(image, amplifier)
        bytes_per_row = raw.shape[1] * raw.shape[2] * 8
        block_rows = max(1, int(self.block_mbytes * (1 << 20) // bytes_per_row))
        total = np.zeros(length // 2 + 1)
        means = np.full(amplifier.geometry.shape, np.nan)
        for first in range(rows.start, rows.stop, block_rows):
            last = min(first + block_rows, rows.stop)
            block = np.asarray(raw[first:last])[:, cols, start:stop]
            if block.dtype not in (np.float32, np.float64):
                block = block.astype(np.float64)
            # removing each pixel's mean only changes the DC bin: transform as is, drop DC afterwards
            spectrum = scipy_fft.rfft(block, axis=2)
            means[first:last, cols] = spectrum[:, :, 0].real / length
            pairs = spectrum.reshape(-1, spectrum.shape[-1]).view(block.dtype)  # (pixels, 2 * bins): re, im
            power = np.einsum("pf,pf->f", pairs, pairs).astype(np.float64)
            total += power[0::2] + power[1::2]
        total[0] = 0.0
        n_pixels = (rows.stop - rows.start) * (cols.stop - cols.start)
        return total, n_pixels, length, means

    def row_spectrum(self, data: np.ndarray, image: SkipperImage, amplifier: Amplifier) -> tuple[np.ndarray, int, int]:
        """Summed ``|rfft|**2`` of the active rows minus their means, the number of rows and the row length."""
        rows, cols = self._active_window(image, amplifier)
        values = np.asarray(data[rows, cols], dtype=np.float64)
        finite = np.isfinite(values)
        good_rows = finite.any(axis=1)
        values = values[good_rows]
        finite = finite[good_rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(finite, values, 0.0).sum(axis=1) / finite.sum(axis=1)
        values = np.where(finite, values - centre[:, None], 0.0)  # missing pixels at the row mean
        spectrum = scipy_fft.rfft(values, axis=1)
        total = (spectrum.real**2 + spectrum.imag**2).sum(axis=0)
        return total, int(values.shape[0]), int(values.shape[1])

    def _active_window(self, image: SkipperImage, amplifier: Amplifier) -> tuple[slice, slice]:
        act_rows, act_cols = amplifier.geometry.region("active")
        win_rows, win_cols = self.window(image, amplifier)
        rows = slice(max(act_rows.start, win_rows.start), min(act_rows.stop, win_rows.stop))
        cols = slice(max(act_cols.start, win_cols.start), min(act_cols.stop, win_cols.stop))
        if rows.stop <= rows.start or cols.stop <= cols.start:
            raise DataError(
                f"{self.name}: the active region of amplifier {amplifier.name} is outside the id_row/id_col window",
                hint="widen id_row/id_col",
            )
        return rows, cols

    # --- process -------------------------------------------------------------------------------
    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        sample, pixel, source = self.timing(image, amplifier)
        if source == "unknown":
            log.warning(
                "%s, amplifier %s: no timing (read time, sample_time); frequencies per sample/pixel only",
                image.label,
                amplifier.name,
            )
        results: dict[str, Any] = {"sample_time_s": sample, "pixel_time_s": pixel, "timing_source": source}
        means = None
        if amplifier.has(RAW) and amplifier.get(RAW).shape[2] > 1:
            total, n_pixels, length, means = self.skip_spectrum(image, amplifier)
            results.update(self._describe("skip", "sample", total, n_pixels, length, sample))
        else:
            log.info("%s, amplifier %s: no raw samples; no skip spectrum", image.label, amplifier.name)
        if amplifier.has(self.image):
            data = amplifier.get(self.image)
        elif means is not None:
            log.info("%s: no '%s'; the row spectrum uses the skip means", self.name, self.image)
            data = means
        else:
            raise DataError(
                f"{self.name}: amplifier {amplifier.name} has neither raw samples nor '{self.image}'",
                hint="run CompressSkipperProcess first or fix the image parameter",
            )
        total, n_rows, length = self.row_spectrum(data, image, amplifier)
        if n_rows:
            results.update(self._describe("row", "pixel", total, n_rows, length, pixel))
        results["peak_frequencies_hz"] = self._overall_peaks(results)
        amplifier.record(self.name, **results)
        if wants_plots(self, context):
            self._plot(image, amplifier, context, results)

    def _describe(
        self, prefix: str, per: str, total: np.ndarray, n_series: int, length: int, interval: float
    ) -> dict[str, Any]:
        power = one_sided_power(total, n_series, length)
        cycles = np.fft.rfftfreq(length)
        frequency = cycles / interval
        bin_hz = 1.0 / (length * interval)
        half = np.ones_like(power)  # DC and Nyquist bins of a one-sided spectrum are half as wide
        half[0] = 0.5
        if length % 2 == 0:
            half[-1] = 0.5
        lines = strongest_lines(power, self.n_peaks, n_series)
        count_key = "skip_n_pixels" if prefix == "skip" else "row_n_rows"
        return {
            f"{prefix}_frequency_hz": frequency,
            f"{prefix}_frequency_per_{per}": cycles,
            f"{prefix}_power_adu2": power,
            f"{prefix}_psd_adu2_per_hz": power / (bin_hz * half),
            f"{prefix}_bin_hz": bin_hz,
            count_key: n_series,
            f"{prefix}_peaks_hz": frequency[lines["index"]],
            f"{prefix}_peaks_per_{per}": cycles[lines["index"]],
            f"{prefix}_peak_power_adu2": lines["power"],
            f"{prefix}_peak_ratio": lines["ratio"],
            f"{prefix}_peak_significance": lines["significance"],
        }

    def _overall_peaks(self, results: dict[str, Any]) -> np.ndarray:
        frequency = np.concatenate([np.asarray(results.get(f"{p}_peaks_hz", [])) for p in ("skip", "row")])
        ratio = np.concatenate([np.asarray(results.get(f"{p}_peak_ratio", [])) for p in ("skip", "row")])
        return frequency[np.argsort(ratio)[::-1][: self.n_peaks]]

    # --- plot ----------------------------------------------------------------------------------
    def _plot(self, image: SkipperImage, amplifier: Amplifier, context: RunContext, results: dict[str, Any]) -> None:
        panels = [(p, per) for p, per in (("skip", "sample"), ("row", "pixel")) if f"{p}_power_adu2" in results]
        timed = math.isfinite(results["sample_time_s"])
        with figure(
            context, image, self.name, "spectra", amplifier, nrows=len(panels), size=(7.0, 3.2 * len(panels))
        ) as (fig, axes):
            fig.subplots_adjust(hspace=0.5)
            for ax, (prefix, per) in zip(np.atleast_1d(axes), panels, strict=True):
                x = results[f"{prefix}_frequency_hz" if timed else f"{prefix}_frequency_per_{per}"][1:]
                y = results[f"{prefix}_psd_adu2_per_hz" if timed else f"{prefix}_power_adu2"][1:]
                ax.plot(x, y, lw=0.8, color="k")
                ax.axhline(float(np.median(y)), ls="--", lw=0.8, color="tab:gray", label="median")
                peaks = results[f"{prefix}_peaks_hz" if timed else f"{prefix}_peaks_per_{per}"]
                index = np.searchsorted(x, peaks)
                ax.plot(peaks, y[np.clip(index, 0, len(y) - 1)], "v", color="tab:red", ms=5, label="strongest lines")
                ax.set_yscale("log")
                along = "along the skips of a pixel" if prefix == "skip" else "along the row readout"
                ax.set_title(along, fontsize=9)
                ax.set_xlabel("frequency (Hz)" if timed else f"frequency (cycles per {per})")
                ax.set_ylabel("PSD (ADU$^2$/Hz)" if timed else "power per bin (ADU$^2$)")
                ax.legend()
