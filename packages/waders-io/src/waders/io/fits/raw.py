"""Raw multi-skip samples read from a FITS HDU by row blocks.

A raw skipper HDU has ``NAXIS1 = ncols * nskips``: the samples of one pixel are
consecutive along the row, ``raw[r, c*nskips + k]``.  In a two-amplifier image the
``U`` half is read from the right edge and its sample stream is reversed, so
reversing the whole half of a row gives the ``U`` pixels in readout order with
their skips in time order.

:class:`FitsRawSamples` behaves like a read-only array of shape (rows, cols, skips)
in float64 for one amplifier, but reads only the rows asked for: images larger than
memory are reduced block by block (see :mod:`waders.io.reduce`).
"""

from __future__ import annotations

import mmap
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.errors import InputFileError

__all__ = ["FitsRawSamples", "RowSource", "leach_correct_rows"]

#: Read-only shared mapping; on Linux its page table is filled at once (MAP_POPULATE) rather than page by page.
_MAP_OPTIONS: dict[str, int] = (
    {"flags": mmap.MAP_SHARED | mmap.MAP_POPULATE, "prot": mmap.PROT_READ}
    if hasattr(mmap, "MAP_POPULATE")
    else {"access": mmap.ACCESS_READ}
)


class RowSource:
    """Rows of one raw FITS HDU in physical values (float64), with the setup corrections.

    Parameters
    ----------
    path : Path
        The file.
    hdu_index : int
        HDU of the data.
    shape : (int, int)
        (NAXIS2, NAXIS1).
    memmap_info : tuple, optional
        (data offset in bytes, big-endian dtype, BSCALE, BZERO) for uncompressed data,
        which is then read directly from the file; None reads through astropy sections.
    leach : str, optional
        Apply the Leach/CCDDrone column-rotation fix; the value is the AMPL string.
    invert : bool
        Invert the polarity: ``q' = max(q) - q`` (the maximum over the whole HDU).
    """

    def __init__(
        self,
        path: Path,
        hdu_index: int,
        shape: tuple[int, int],
        memmap_info: tuple[int, str, float, float] | None = None,
        leach: str | None = None,
        invert: bool = False,
    ) -> None:
        self.path = path
        self.hdu_index = hdu_index
        self.shape = shape
        self.memmap_info = memmap_info
        self.leach = leach
        self.invert = invert
        self._lock = threading.Lock()
        self._maximum: float | None = None
        self._first_row: np.ndarray | None = None

    @property
    def plain(self) -> bool:
        """True when rows are used as stored: no scaling and no correction."""
        if self.leach is not None or self.invert or self.memmap_info is None:
            return False
        _, _, bscale, bzero = self.memmap_info
        return bscale == 1.0 and bzero == 0.0

    def stored_rows(self, start: int, stop: int, *, check: bool = True, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [start, stop) in the file's own type (only when :attr:`plain`): half the memory traffic.

        ``check=False`` leaves the test for non-finite samples to the caller (:meth:`check_finite`), e.g.
        :func:`waders.io.reduce.reduce_skips`, which sees them in the means it computes anyway.
        ``out``, a flat array of the file's type with room for the rows, receives them (no new memory:
        on some machines the first touch of fresh memory costs as much as reading the file).
        """
        offset, dtype, _, _ = self.memmap_info  # type: ignore[misc]
        row_items = self.shape[1]
        item = np.dtype(dtype)
        count = (stop - start) * row_items
        with self.path.open("rb") as handle:
            handle.seek(offset + start * row_items * item.itemsize)
            if out is None:
                raw = np.fromfile(handle, dtype=item, count=count)
            else:
                raw = out[:count]
                raw = raw[: handle.readinto(raw.view(np.uint8)) // item.itemsize]
        return self._checked_rows(raw, start, stop, check=check)

    def mapped_rows(self, start: int, stop: int, *, check: bool = True) -> np.ndarray:
        """Rows [start, stop) in the file's own type, mapped from the file (only when :attr:`plain`): no copy.

        The array reads the file's pages (from the page cache) where it lies: nothing is copied
        into the process, and the pages leave the process's memory when the array and its views
        are dropped (peak memory follows the blocks in use, not the file).  The file must keep its
        size while the array is used.  ``check`` as in :meth:`stored_rows`.  Where the file system
        cannot map files, the rows are read (:meth:`stored_rows`).

        Raises
        ------
        InputFileError
            If the file ends before the rows.
        """
        offset, dtype, _, _ = self.memmap_info  # type: ignore[misc]
        item = np.dtype(dtype)
        row_bytes = self.shape[1] * item.itemsize
        first, length = offset + start * row_bytes, (stop - start) * row_bytes
        base = first - first % mmap.ALLOCATIONGRANULARITY
        with self.path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size < first + length:  # mapping past the end would be SIGBUS
                raise self._truncated(start, stop)
            try:
                mapping = mmap.mmap(handle.fileno(), first - base + length, offset=base, **_MAP_OPTIONS)
            except (OSError, ValueError):  # a file system that cannot map files: read them
                return self.stored_rows(start, stop, check=check)
        raw = np.frombuffer(mapping, dtype=item, count=length // item.itemsize, offset=first - base)
        return self._checked_rows(raw, start, stop, check=check)

    def _checked_rows(self, raw: np.ndarray, start: int, stop: int, *, check: bool) -> np.ndarray:
        """``raw`` (the flat samples of rows [start, stop)) as rows, after the truncation and finiteness checks."""
        if raw.size != (stop - start) * self.shape[1]:
            raise self._truncated(start, stop)
        if check and raw.dtype.kind == "f":
            self.check_finite(raw, start, stop)
        return raw.reshape(stop - start, self.shape[1])

    def _truncated(self, start: int, stop: int) -> InputFileError:
        return InputFileError(f"{self.path}: truncated FITS file (rows {start}..{stop} missing)")

    def check_finite(self, block: np.ndarray, start: int, stop: int) -> None:
        """Raw samples are DAQ readings: an infinite or NaN one means a corrupt file.

        Raises
        ------
        InputFileError
            If a sample of ``block`` (rows [start, stop)) is inf or NaN.
        """
        if not np.isfinite(block).all():
            bad = int(np.count_nonzero(~np.isfinite(block)))
            raise InputFileError(
                f"{self.path}: {bad} raw sample(s) in HDU {self.hdu_index} rows {start}..{stop - 1} "
                "are not finite (inf or nan)",
                hint="the file is corrupt; copy it again or leave it out",
            )

    def _plain_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as float64, no corrections."""
        if self.memmap_info is not None:
            # Explicit reads, not numpy.memmap: mapped pages would stay in the resident set and
            # peak memory would grow with the file size.
            _, _, bscale, bzero = self.memmap_info
            block = self.stored_rows(start, stop, check=False).astype(np.float64)  # checked below
            if bscale != 1.0:
                block *= bscale
            if bzero != 0.0:
                block += bzero
        else:
            from astropy.io import fits

            try:
                with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
                    block = np.asarray(hdul[self.hdu_index].section[start:stop], dtype=np.float64)
            except (OSError, ValueError, TypeError, IndexError, KeyError, OverflowError) as err:
                from .reader import corrupt_file, raised_by_astropy

                if isinstance(err, InputFileError) or not raised_by_astropy(err):
                    raise
                raise corrupt_file(self.path, err) from None
        self.check_finite(block, start, stop)
        return block

    def maximum(self) -> float:
        """Maximum of the uncorrected samples of the whole HDU (one streaming pass)."""
        if self._maximum is None:
            step = max(1, (64 << 20) // (8 * self.shape[1]))
            self._maximum = max(
                float(np.max(self._plain_rows(a, min(a + step, self.shape[0])))) for a in range(0, self.shape[0], step)
            )
        return self._maximum

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) in physical values with the configured corrections."""
        with self._lock:
            if self.leach is None:
                block = self._plain_rows(start, stop)
            else:
                nrows = self.shape[0]
                extended = self._plain_rows(start, min(stop + 1, nrows))
                if self._first_row is None:
                    self._first_row = self._plain_rows(0, 1)[0]
                following = extended[1:] if stop < nrows else np.vstack([extended[1:], self._first_row])
                block = leach_correct_rows(
                    extended[: stop - start], following, two_halves="U" in self.leach and "L" in self.leach
                )
            if self.invert:
                block = self.maximum() - block
            return block


def leach_correct_rows(block: np.ndarray, following: np.ndarray, *, two_halves: bool) -> np.ndarray:
    """Undo the Leach/CCDDrone recorder bug on raw (sample) columns.

    The recorder moved the first two columns of each half to the end of the half and
    one row up.  For rows ``r`` of ``block``, ``following[i]`` must be row ``r + 1``
    of the file (row 0 of the file for the last row).

    Parameters
    ----------
    block : ndarray, shape (n, NAXIS1)
        Raw rows.
    following : ndarray, shape (n, NAXIS1)
        The row after each of them.
    two_halves : bool
        True for ``AMPL = 'UL'``: the second half is corrected mirror-wise.
    """
    out = np.empty_like(block)
    width = block.shape[1] // 2 if two_halves else block.shape[1]
    out[:, : width - 2] = block[:, 2:width]
    out[:, width - 2] = following[:, 0]
    out[:, width - 1] = following[:, 1]
    if two_halves:
        out[:, width + 2 :] = block[:, width:-2]
        out[:, width] = following[:, -2]
        out[:, width + 1] = following[:, -1]
    return out


@dataclass
class FitsRawSamples:
    """Raw samples of one amplifier, shape (rows, cols, skips), read on demand.

    Parameters
    ----------
    source : RowSource
        The HDU rows (shared by the amplifiers of one HDU).
    first_col : int
        First pixel column of the amplifier's half in the file.
    ncols : int
        Pixels of the amplifier per row.
    nskips : int
        Samples per pixel.
    mirrored : bool
        Reverse the half's sample stream (the ``U`` amplifier).
    """

    source: RowSource
    first_col: int
    ncols: int
    nskips: int
    mirrored: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        """(rows, cols, skips)."""
        return (self.source.shape[0], self.ncols, self.nskips)

    @property
    def dtype(self) -> np.dtype:
        """Samples are delivered as float64."""
        return np.dtype(np.float64)

    @property
    def ndim(self) -> int:
        """Always 3."""
        return 3

    @property
    def nbytes(self) -> int:
        """Bytes the samples take once read."""
        return int(np.prod(self.shape)) * 8

    def from_rows(self, rows: np.ndarray) -> np.ndarray:
        """Extract this amplifier's samples from raw HDU rows (n, NAXIS1)."""
        lo = self.first_col * self.nskips
        half = rows[:, lo : lo + self.ncols * self.nskips]
        if self.mirrored:
            half = half[:, ::-1]
        return half.reshape(rows.shape[0], self.ncols, self.nskips)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Return the samples of rows [start, stop)."""
        return self.from_rows(self.source.rows(start, stop))

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        nrows = self.shape[0]
        if isinstance(rows, int | np.integer):
            index = int(rows) + (nrows if rows < 0 else 0)
            if not 0 <= index < nrows:
                raise IndexError(f"row {rows} out of range for {nrows} rows")
            block = self.read_rows(index, index + 1)[0]
        elif isinstance(rows, slice):
            start, stop, step = rows.indices(nrows)
            block = self.read_rows(start, max(start, stop)) if step == 1 else self.read_rows(0, nrows)[rows]
        else:
            block = np.asarray(self)[rows]
        if not rest:
            return block
        return block[rest] if block.ndim == 2 else block[(slice(None), *rest)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self.read_rows(0, self.shape[0])
        return data if dtype is None else data.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]
