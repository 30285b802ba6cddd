"""Shared base of analysis processes: the input image, pixel ranges and region selection.

Every analysis process reads one named image product (parameter ``image``) of each
amplifier and may be restricted to ranges of skips, rows and columns (the
``id_*`` parameters of pysimdamicm).  Ranges never crop images: pixels outside them
are simply not used (outputs keep the amplifier's shape, with NaN where undefined).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Process
from waders.core.errors import ConfigError
from waders.core.geometry import AmplifierGeometry
from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Int, ListOf, Optional, Union

__all__ = ["INDEX_RANGES", "AnalysisProcess", "file_index_selector", "parse_index_ranges"]

RANGE_KIND = Optional(Int())
#: Kind of lists of indices and closed ranges such as ``[0, 1, [5, 9]]``.
INDEX_RANGES = ListOf(Union(Int(), ListOf(Int(), length=2)))


def parse_index_ranges(items: Sequence[Any], length: int, *, closed: bool = True) -> np.ndarray:
    """Boolean selector of length ``length`` from ``[i, [a, b], ...]``.

    Parameters
    ----------
    items : sequence
        Single indices and two-element ranges.
    length : int
        Axis length; indices beyond it are ignored.
    closed : bool
        ``[a, b]`` includes ``b`` (pysimdamicm's skip_rows/skip_cols, hot rows) or not
        (its rows_to_mask/cols_to_mask, which are half-open).
    """
    selected = np.zeros(length, dtype=bool)
    for item in items:
        if isinstance(item, list | tuple):
            lo, hi = int(item[0]), int(item[1]) + (1 if closed else 0)
            selected[max(0, lo) : max(0, min(hi, length))] = True
        elif 0 <= int(item) < length:
            selected[int(item)] = True
    return selected


def file_index_selector(
    items: Sequence[Any], geometry: AmplifierGeometry, axis: str, *, closed: bool = True
) -> np.ndarray:
    """Boolean selector over an amplifier's rows or readout columns from **file** indices.

    Row and column lists in configurations (``skip_cols``, ``cols_to_mask``, ``hot_cols``, ...)
    are 0-based coordinates of the file image, as in pysimdamicm, whatever the amplifier;
    this maps them to the amplifier's readout order (the ``U`` amplifier is mirrored).

    Parameters
    ----------
    items : sequence
        File indices and two-element ranges.
    geometry : AmplifierGeometry
        The amplifier.
    axis : {"row", "col"}
        Which axis.
    closed : bool
        Whether ``[a, b]`` includes ``b`` (see :func:`parse_index_ranges`).
    """
    if axis == "col":
        file_index = geometry.to_file_columns(np.arange(geometry.ncols))
    else:
        file_index = geometry.to_file_rows(np.arange(geometry.nrows))
    if not items:
        return np.zeros(file_index.size, dtype=bool)
    return parse_index_ranges(items, int(file_index.max()) + 1, closed=closed)[file_index]


class AnalysisProcess(Process):
    """Base of processes that analyse skipper images.

    The ``id_*`` ranges follow pysimdamicm: start ``null`` = 0, end ``null`` or negative =
    up to the last; a process value overrides the ``input.image`` value for this process.
    The ``input.image`` ranges reach the process when the chain is built
    (:meth:`with_input_ranges`, :func:`waders.ana.runner.build_chain`).
    """

    domain: ClassVar[str] = "ana"
    image = Param("mean_compressed", doc="input image product")
    id_skip_start = Param(None, RANGE_KIND, doc="first skip used; null = input.image value, else 0")
    id_skip_end = Param(None, RANGE_KIND, doc="end of the skip range (exclusive); null/negative = all")
    id_row_start = Param(None, RANGE_KIND, doc="first row used; null = input.image value, else 0")
    id_row_end = Param(None, RANGE_KIND, doc="end of the row range (exclusive); null/negative = all")
    id_col_start = Param(None, RANGE_KIND, doc="first column used; null = input.image value, else 0")
    id_col_end = Param(None, RANGE_KIND, doc="end of the column range (exclusive); null/negative = all")

    #: Configured input ranges ``{"skip"|"row"|"col": (start, end)}`` used where the process's
    #: own ``id_*`` are null (empty: the whole axis); see :meth:`with_input_ranges`.
    input_ranges: Mapping[str, tuple[int | None, int | None]] = MappingProxyType({})

    ignored_keys: ClassVar[dict[str, str]] = {
        "format_figures": "plots are PNG (waders ana --plot-format pdf for PDF)",
        "create_ttree": "per-pixel ROOT trees are not written; use --save-img for the images",
        "histequ": "display-only option of pysimdamicm",
        "DEBUG_ROWS": "interactive debugging of pysimdamicm",
        "show_fit": "interactive display of pysimdamicm; plots are written with --save-plots",
        "display": "interactive display of pysimdamicm; plots are written with --save-plots",
    }

    def with_input_ranges(self, ranges: Mapping[str, tuple[int | None, int | None]]) -> AnalysisProcess:
        """A copy of the process that uses ``ranges`` (the ``input.image`` id_* values) as its defaults."""
        clone = self.replace()
        clone.input_ranges = dict(ranges)
        return clone

    def _range(self, image: SkipperImage, axis: str, length: int) -> tuple[int, int]:
        ranges = self.input_ranges
        start = getattr(self, f"id_{axis}_start")
        end = getattr(self, f"id_{axis}_end")
        default_start, default_end = ranges.get(axis, (None, None))
        where_start = f"{self.name}.id_{axis}_start" if start is not None else f"input.image.id_{axis}_start"
        where_end = f"{self.name}.id_{axis}_end" if end is not None else f"input.image.id_{axis}_end"
        start = default_start if start is None else start
        end = default_end if end is None else end
        lo = 0 if start is None else int(start)
        hi = length if end is None or end < 0 else int(end)
        source = image.label
        if hi > length:
            raise ConfigError(
                f"{where_end} = {end} is beyond the {length} {axis}s of {source}",
                hint=f"set it to at most {length}, or -1 for all {axis}s",
            )
        if not 0 <= lo < hi:
            raise ConfigError(
                f"{where_start} = {start} leaves an empty {axis} range [{lo}, {hi}) "
                f"of the {length} {axis}s of {source}",
                hint=f"set id_{axis}_start/id_{axis}_end within 0..{length}",
            )
        return lo, hi

    def skip_range(self, image: SkipperImage, nskips: int) -> tuple[int, int]:
        """Resolved (start, stop) of skips."""
        return self._range(image, "skip", nskips)

    def window(self, image: SkipperImage, amplifier: Amplifier) -> tuple[slice, slice]:
        """Rows and columns of the amplifier selected by the id_row/id_col ranges."""
        rows = self._range(image, "row", amplifier.geometry.nrows)
        cols = self._range(image, "col", amplifier.geometry.ncols)
        return slice(*rows), slice(*cols)

    def window_mask(self, image: SkipperImage, amplifier: Amplifier) -> np.ndarray:
        """True outside the id_row/id_col window (numpy masked-array convention)."""
        mask = np.ones(amplifier.geometry.shape, dtype=bool)
        rows, cols = self.window(image, amplifier)
        mask[rows, cols] = False
        return mask

    def input_image(self, amplifier: Amplifier) -> np.ndarray:
        """The amplifier's input product as a float array."""
        return np.asarray(amplifier.get(self.image), dtype=np.float64)
