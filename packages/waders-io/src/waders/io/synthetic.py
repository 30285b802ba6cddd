"""Synthetic skipper images with known truth, for tests, benchmarks and demos.

:func:`make_raw_image` draws a raw multi-skip image: per-row pedestals, a gain, white
readout noise per skip, Poisson dark current, and optional charge deposits, laid out
with prescan, active area and overscan for one or two amplifiers.  The truth it
returns (electrons per pixel, pedestal per row, ...) is what analysis must recover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from waders.core.geometry import AmplifierGeometry
from waders.core.image import SkipperImage

__all__ = ["SyntheticTruth", "make_raw_image"]


@dataclass
class SyntheticTruth:
    """What was put into a synthetic image, per amplifier.

    Attributes
    ----------
    electrons : dict
        Charge of every pixel (e-), readout order, 0 outside the active area.
    pedestal : dict
        Pedestal of every row (ADU).
    gain, noise, dark_current : float
        ADU/e-, ADU per skip, e-/pixel.
    """

    electrons: dict[str, np.ndarray] = field(default_factory=dict)
    pedestal: dict[str, np.ndarray] = field(default_factory=dict)
    gain: float = 1.0
    noise: float = 1.0
    dark_current: float = 0.0


def make_raw_image(
    *,
    amplifiers: Sequence[str] = ("L",),
    nrows: int = 50,
    ncols: int = 60,
    nskips: int = 10,
    prescan: int = 4,
    overscan: int = 10,
    gain: float = 10.0,
    noise: float = 2.0,
    dark_current: float = 0.05,
    pedestal: float = 1000.0,
    pedestal_slope: float = 0.5,
    row_binning: int = 1,
    col_binning: int = 1,
    exposure_time: float = 3600.0,
    deposits: Sequence[tuple[int, int, float]] = (),
    seed: int = 0,
    dtype: str = "float64",
) -> tuple[SkipperImage, SyntheticTruth]:
    """Draw a raw skipper image with known truth.

    Parameters
    ----------
    amplifiers : sequence of str
        ``("L",)`` for one amplifier or ``("L", "U")`` for a two-amplifier readout
        (U mirrored in the file).
    nrows, ncols : int
        Rows and pixels per row of each amplifier (prescan + active + overscan).
    nskips : int
        Samples per pixel.
    prescan, overscan : int
        Serial prescan and overscan columns per amplifier.
    gain : float
        ADU per electron.
    noise : float
        Readout noise of one sample (ADU).
    dark_current : float
        Mean charge per active pixel (e-), Poisson distributed.
    pedestal, pedestal_slope : float
        Pedestal of row r: ``pedestal + pedestal_slope * r`` (ADU), different per amplifier.
    row_binning, col_binning : int
        Binning written in the geometry (the pixels are drawn as given).
    exposure_time : float
        Seconds.
    deposits : sequence of (row, col, electrons)
        Extra charge added to single pixels (readout order of every amplifier).
    seed : int
        Seed of the random numbers.
    dtype : str
        Type of the samples (integers are rounded).

    Returns
    -------
    (SkipperImage, SyntheticTruth)
    """
    rng = np.random.default_rng(seed)
    truth = SyntheticTruth(gain=gain, noise=noise, dark_current=dark_current)
    arrays, geometries = {}, {}
    for i, name in enumerate(amplifiers):
        geometry = AmplifierGeometry(
            name,
            nrows,
            ncols,
            prescan_cols=prescan,
            overscan_cols=overscan,
            row_binning=row_binning,
            col_binning=col_binning,
            mirrored=i == 1,
            col_offset=i * ncols,
            extension=0,
        )
        charge = np.zeros((nrows, ncols))
        rows, cols = geometry.region("active")
        charge[rows, cols] = rng.poisson(dark_current, size=charge[rows, cols].shape)
        for r, c, q in deposits:
            charge[r, c] += q
        ped = pedestal + 100.0 * i + pedestal_slope * np.arange(nrows)
        samples = ped[:, None, None] + gain * charge[:, :, None] + rng.normal(0.0, noise, (nrows, ncols, nskips))
        if np.dtype(dtype).kind in "iu":
            samples = np.rint(samples)
        arrays[name] = samples.astype(dtype)
        geometries[name] = geometry
        truth.electrons[name] = charge
        truth.pedestal[name] = ped
    image = SkipperImage.from_arrays(
        arrays,
        geometries=geometries,
        exposure_time=exposure_time,
        layout="two-amplifier" if len(amplifiers) == 2 else "single",
    )
    return image, truth
