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


@dataclass
class ClusterTruth:
    """Truth of the charge clouds drawn by :func:`cluster_deposits` (amplifier coordinates, readout order).

    Attributes
    ----------
    centre_row, centre_col : numpy.ndarray
        Centres the clouds were drawn around (pixel centres are at integer coordinates).
    row, col : numpy.ndarray
        Charge-weighted mean pixel coordinates of each cloud's deposited pixels.
    electrons : numpy.ndarray
        Total charge deposited in the image by each cloud (e-).
    pixel_cluster, pixel_row, pixel_col, pixel_electrons : numpy.ndarray
        The deposits: cloud index, row, column and charge (e-) of every charged pixel.
    """

    centre_row: np.ndarray
    centre_col: np.ndarray
    row: np.ndarray
    col: np.ndarray
    electrons: np.ndarray
    pixel_cluster: np.ndarray
    pixel_row: np.ndarray
    pixel_col: np.ndarray
    pixel_electrons: np.ndarray

    def image(self, shape: tuple[int, int]) -> np.ndarray:
        """Charge image (e-) of all the clouds, of the given shape."""
        charge = np.zeros(shape)
        np.add.at(charge, (self.pixel_row, self.pixel_col), self.pixel_electrons)
        return charge


def cluster_deposits(
    rng: np.random.Generator,
    centres: np.ndarray | Sequence[tuple[float, float]],
    electrons: int | Sequence[int] | np.ndarray,
    sigma_px: float | Sequence[float] | np.ndarray,
    *,
    shape: tuple[int, int] | None = None,
) -> tuple[list[tuple[int, int, float]], ClusterTruth]:
    """Draw Gaussian charge clouds: every electron lands at ``centre + Normal(0, sigma_px)`` per axis.

    A pixel ``i`` covers ``[i - 0.5, i + 0.5)``.  The deposits can be passed to
    :func:`make_raw_image` (``deposits=``); the truth gives each cloud's exact charge and
    charge-weighted centre as deposited in pixels.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    centres : array of shape (n, 2)
        (row, col) of every cloud centre.
    electrons : int or array of int
        Electrons of every cloud.
    sigma_px : float or array
        Transverse spread of every cloud (pixels).
    shape : (int, int), optional
        Image shape: electrons landing outside are dropped (and not counted in the truth).

    Returns
    -------
    deposits : list of (row, col, electrons)
        One entry per charged pixel of every cloud.
    truth : ClusterTruth
    """
    centres = np.atleast_2d(np.asarray(centres, dtype=np.float64))
    n = centres.shape[0]
    per_cloud = np.broadcast_to(np.asarray(electrons, dtype=np.int64), (n,))
    sigma = np.broadcast_to(np.asarray(sigma_px, dtype=np.float64), (n,))
    cloud = np.repeat(np.arange(n), per_cloud)
    rows = np.floor(centres[cloud, 0] + sigma[cloud] * rng.standard_normal(cloud.size) + 0.5).astype(np.int64)
    cols = np.floor(centres[cloud, 1] + sigma[cloud] * rng.standard_normal(cloud.size) + 0.5).astype(np.int64)
    if shape is not None:
        inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        cloud, rows, cols = cloud[inside], rows[inside], cols[inside]
    span = int(max(rows.max(initial=0), cols.max(initial=0)) - min(rows.min(initial=0), cols.min(initial=0)) + 1)
    low = min(rows.min(initial=0), cols.min(initial=0))
    key = (cloud * span + (rows - low)) * span + (cols - low)
    unique, charge = np.unique(key, return_counts=True)
    pix_cloud = unique // (span * span)
    pix_row = (unique // span) % span + low
    pix_col = unique % span + low
    total = np.bincount(pix_cloud, weights=charge, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_row = np.bincount(pix_cloud, weights=charge * pix_row, minlength=n) / total
        mean_col = np.bincount(pix_cloud, weights=charge * pix_col, minlength=n) / total
    truth = ClusterTruth(
        centre_row=centres[:, 0].copy(),
        centre_col=centres[:, 1].copy(),
        row=mean_row,
        col=mean_col,
        electrons=total,
        pixel_cluster=pix_cloud,
        pixel_row=pix_row,
        pixel_col=pix_col,
        pixel_electrons=charge.astype(np.float64),
    )
    deposits = [(int(r), int(c), float(q)) for r, c, q in zip(pix_row, pix_col, charge, strict=True)]
    return deposits, truth


__all__ += ["ClusterTruth", "cluster_deposits"]
