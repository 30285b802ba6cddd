"""Geometry of a skipper image: amplifiers, prescan, active and overscan regions.

Every amplifier's arrays are stored **in readout order**: column 0 is the first pixel
the amplifier reads (prescan first, then the active area, then the overscan), and
skip index ``k`` is the k-th measurement in time.  For the mirrored amplifier of a
two-amplifier readout (``U``) this means its half of the file image is flipped;
:meth:`AmplifierGeometry.to_file_columns` maps readout columns back to columns of
the file image, which is what output coordinates (cluster positions) use.

All sizes are in binned pixels.  Region masks follow the numpy masked-array
convention: ``True`` = excluded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from .errors import DataError

__all__ = ["REGIONS", "AmplifierGeometry", "ImageGeometry"]

Region = Literal["full", "prescan", "active", "overscan", "active_rows"]
#: Region names understood by :meth:`AmplifierGeometry.region`.
REGIONS: tuple[str, ...] = ("full", "prescan", "active", "overscan", "active_rows")


@dataclass(frozen=True)
class AmplifierGeometry:
    """Layout of one amplifier's pixels, in readout order.

    Parameters
    ----------
    name : str
        Amplifier name (``"L"``, ``"U"``, or an extension name such as ``"CCD_A"``).
    nrows, ncols : int
        Size of this amplifier's image (binned pixels).
    prescan_cols, overscan_cols : int
        Serial prescan and overscan widths (binned pixels).
    prescan_rows, overscan_rows : int
        Parallel prescan and overscan heights (binned pixels).
    row_binning, col_binning : int
        On-chip binning factors (NPBIN, NSBIN).
    mirrored : bool
        True if the amplifier reads from the right edge of its block in the file
        (the ``U`` amplifier of a two-amplifier image).
    col_offset, row_offset : int
        Position of the amplifier's block in the file image (or in the stacked image
        of a multi-extension file), used for output coordinates.
    extension : int or str, optional
        FITS extension the amplifier was read from.
    aliases : tuple of str
        Other names of the amplifier accepted in per-amplifier parameters (e.g. pysimdamicm's
        ``"EXT1"`` for the first extension of a multi-extension file).
    """

    name: str
    nrows: int
    ncols: int
    prescan_cols: int = 0
    overscan_cols: int = 0
    prescan_rows: int = 0
    overscan_rows: int = 0
    row_binning: int = 1
    col_binning: int = 1
    mirrored: bool = False
    col_offset: int = 0
    row_offset: int = 0
    extension: int | str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The name followed by the aliases."""
        return (self.name, *self.aliases)

    def __post_init__(self) -> None:
        if self.nrows <= 0 or self.ncols <= 0:
            raise DataError(f"amplifier {self.name}: empty image ({self.nrows} x {self.ncols})")
        if min(self.prescan_cols, self.overscan_cols, self.prescan_rows, self.overscan_rows) < 0:
            raise DataError(f"amplifier {self.name}: negative prescan or overscan size")
        if self.prescan_cols + self.overscan_cols > self.ncols:
            raise DataError(
                f"amplifier {self.name}: prescan ({self.prescan_cols}) + overscan ({self.overscan_cols}) "
                f"columns exceed the {self.ncols} columns of the image",
                hint="check n_cols_prescan and ccd_cols in the input configuration",
            )
        if self.prescan_rows + self.overscan_rows > self.nrows:
            raise DataError(f"amplifier {self.name}: prescan + overscan rows exceed the {self.nrows} rows of the image")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the amplifier's image."""
        return (self.nrows, self.ncols)

    @property
    def active_rows(self) -> slice:
        """Rows of the active area (and of the overscan columns)."""
        return slice(self.prescan_rows, self.nrows - self.overscan_rows)

    @property
    def active_cols(self) -> slice:
        """Columns of the active area."""
        return slice(self.prescan_cols, self.ncols - self.overscan_cols)

    @property
    def prescan(self) -> slice:
        """Columns of the serial prescan."""
        return slice(0, self.prescan_cols)

    @property
    def overscan(self) -> slice:
        """Columns of the serial overscan."""
        return slice(self.ncols - self.overscan_cols, self.ncols)

    def region(self, name: str) -> tuple[slice, slice]:
        """Return (row slice, column slice) of a named region.

        Parameters
        ----------
        name : {"full", "prescan", "active", "overscan", "active_rows"}
            ``"prescan"`` and ``"overscan"`` are the serial regions over the active
            rows; ``"active_rows"`` is every column of the active rows.
        """
        if name == "full":
            return slice(0, self.nrows), slice(0, self.ncols)
        if name == "active":
            return self.active_rows, self.active_cols
        if name == "overscan":
            if not self.overscan_cols:
                raise DataError(
                    f"amplifier {self.name} has no overscan columns",
                    hint="use the active region (in_overscan: false) or configure the overscan width",
                )
            return self.active_rows, self.overscan
        if name == "prescan":
            if not self.prescan_cols:
                raise DataError(f"amplifier {self.name} has no prescan columns")
            return self.active_rows, self.prescan
        if name == "active_rows":
            return self.active_rows, slice(0, self.ncols)
        raise DataError(f"unknown region {name!r}", hint=f"use one of {', '.join(REGIONS)}")

    def mask(self, name: str) -> np.ndarray:
        """Boolean mask of the amplifier image, True outside the region (numpy convention)."""
        mask = np.ones(self.shape, dtype=bool)
        rows, cols = self.region(name)
        mask[rows, cols] = False
        return mask

    def to_file_columns(self, cols: np.ndarray) -> np.ndarray:
        """Map readout-order columns to columns of the file (or stacked) image."""
        cols = np.asarray(cols)
        return self.col_offset + (self.ncols - 1 - cols if self.mirrored else cols)

    def to_file_rows(self, rows: np.ndarray) -> np.ndarray:
        """Map amplifier rows to rows of the file (or stacked) image."""
        return self.row_offset + np.asarray(rows)

    def to_file_layout(self, array: np.ndarray) -> np.ndarray:
        """Return ``array`` (readout order, columns on axis 1) as laid out in the file."""
        return array[:, ::-1] if self.mirrored else array

    def with_size(self, nrows: int, ncols: int) -> AmplifierGeometry:
        """Return the same layout for a cropped image (used by row/column ranges)."""
        return replace(self, nrows=nrows, ncols=ncols)


@dataclass
class ImageGeometry:
    """Geometry of a whole image: every amplifier plus the shared readout settings.

    Parameters
    ----------
    amplifiers : dict
        :class:`AmplifierGeometry` per amplifier name, in processing order.
    nskips : int
        Number of samples per pixel in the file (1 for averaged images).
    averaged : bool
        True if the file holds images already averaged over skips.
    nskips_averaged : int
        For averaged images, the number of skips that were averaged (for labels).
    exposure_time, read_time : float
        Exposure and readout time in internal units (s); NaN if unknown.
    layout : str
        ``"single"``, ``"two-amplifier"`` or ``"multi-extension"``.
    """

    amplifiers: dict[str, AmplifierGeometry]
    nskips: int = 1
    averaged: bool = False
    nskips_averaged: int = 1
    exposure_time: float = float("nan")
    read_time: float = float("nan")
    layout: str = "single"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def n_amplifiers(self) -> int:
        """Number of amplifiers."""
        return len(self.amplifiers)

    @property
    def row_binning(self) -> int:
        """Parallel binning (same for all amplifiers)."""
        return next(iter(self.amplifiers.values())).row_binning

    @property
    def col_binning(self) -> int:
        """Serial binning (same for all amplifiers)."""
        return next(iter(self.amplifiers.values())).col_binning

    def describe(self) -> dict[str, object]:
        """Return a JSON-compatible summary (used by ``waders info``)."""

        def seconds(value: float) -> float | None:
            return None if value != value else value  # NaN -> null in JSON

        return {
            "layout": self.layout,
            "nskips": self.nskips_averaged if self.averaged else self.nskips,
            "averaged": self.averaged,
            "exposure_s": seconds(self.exposure_time),
            "read_time_s": seconds(self.read_time),
            "amplifiers": [
                {
                    "name": g.name,
                    "nrows": g.nrows,
                    "ncols": g.ncols,
                    "nskips": self.nskips_averaged if self.averaged else self.nskips,
                    "averaged": self.averaged,
                    "prescan_cols": g.prescan_cols,
                    "overscan_cols": g.overscan_cols,
                    "prescan_rows": g.prescan_rows,
                    "overscan_rows": g.overscan_rows,
                    "row_binning": g.row_binning,
                    "col_binning": g.col_binning,
                    "mirrored": g.mirrored,
                    "extension": g.extension,
                }
                for g in self.amplifiers.values()
            ],
        }
