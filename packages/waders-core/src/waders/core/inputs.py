"""Declared parameters of the ``input`` section of analysis configurations.

The section has the blocks of pysimdamicm's ``panaSKImg`` configuration: ``image``
(which HDUs, geometry, skip/row/column ranges, corrections), ``datetime`` and
``convention`` (which header keywords hold which quantity) and ``scp``
(slow-control values to copy from the header).  waders-io reads images according
to them.  waders adds ``amplifiers``: names used for per-amplifier values mapped to
amplifiers of the file (``{"A": "CCD_A"}``; see :mod:`waders.core.amplifiers`).
Geometry keys default to ``null``: the reader then takes the value from the file header
where waders wrote it, else the pysimdamicm default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from .errors import ConfigError, UnknownNameError
from .kinds import Bool, Int, ListOf, MappingOf, Optional, Str, Union
from .parameters import Configurable, Param

__all__ = ["ConventionInput", "DateTimeInput", "ImageInput", "InputConfig"]

_HDU = Union(Int(min=0), Str())


class ImageInput(Configurable):
    """Which data to read and how (``input.image``)."""

    extensions = Param(
        None,
        Optional(Union(_HDU, ListOf(_HDU))),
        doc="HDU index/name or list of them; null = every HDU with image data",
    )
    ext_header = Param(None, Optional(_HDU), doc="HDU whose header holds the run keywords; null = the data HDU")
    ACM_multi_extension = Param(
        False, doc="read the listed extensions as amplifiers of one image (DAMIC-M ACM); waders also detects it"
    )
    skip_image = Param(
        None, Optional(Bool()), doc="true: raw samples of every skip; false: averaged image; null = from the header"
    )
    axis_to_compress = Param(1, Int(min=0, max=1), doc="1: skips consecutive along a row; 0: along a column")
    correct_leach_bug = Param(False, doc="undo the Leach/CCDDrone rotation of the first two columns")
    correct_polarity = Param(False, doc="invert the signal polarity: q' = max(q) - q")
    row_binning = Param(0, Int(min=0), doc="software binning of rows of non-skip images (0 or 1: none)")
    id_skip_start = Param(None, Optional(Int()), doc="first skip used (0-based); null = 0")
    id_skip_end = Param(None, Optional(Int()), doc="end of the skip range (exclusive); -1 or null = all skips")
    id_row_start = Param(None, Optional(Int()), doc="first row used; null = 0")
    id_row_end = Param(None, Optional(Int()), doc="end of the row range (exclusive); -1 or null = all rows")
    id_col_start = Param(None, Optional(Int()), doc="first column used; null = 0")
    id_col_end = Param(None, Optional(Int()), doc="end of the column range (exclusive); -1 or null = all columns")
    n_rows_prescan = Param(None, Optional(Int(min=0)), unit="pixel", doc="parallel prescan rows (unbinned)")
    n_rows_overscan = Param(None, Optional(Int(min=0)), unit="pixel", doc="parallel overscan rows (binned)")
    ccd_rows = Param(None, Optional(Int(min=1)), unit="pixel", doc="physical rows of the CCD")
    n_cols_prescan = Param(None, Optional(Int(min=0)), unit="pixel", doc="serial prescan per amplifier (unbinned)")
    ccd_cols = Param(
        None,
        Optional(Int(min=1)),
        unit="pixel",
        doc="physical columns: prescan + active for 1 amplifier, active only for 2 (as pysimdamicm)",
    )
    n_amp = Param(None, Optional(Int(min=1, max=2)), doc="amplifiers per extension (1 or 2); null = from AMPL")
    amp_name = Param(None, Optional(Str()), doc="name of the amplifier of a single-amplifier extension")
    save_images = Param(True, aliases=("save_image",), doc="write the processed images (with --save-img)")
    bz2 = Param(False, doc="compress the output FITS with bzip2")

    @classmethod
    def label(cls) -> str:
        return "input.image"


class DateTimeInput(Configurable):
    """Header keywords holding the exposure and readout times (``input.datetime``)."""

    exposure_start = Param("EXPSTART", doc="keyword of the exposure start (date)")
    readout_start = Param("RDSTRT", doc="keyword of the readout start (date)")
    readout_end = Param("RDEND", doc="keyword of the readout end (date)")
    exposure_time = Param(None, Optional(Str()), doc="keyword of the exposure time (s)")
    read_time = Param(None, Optional(Str()), doc="keyword of the readout time (ms)")

    @classmethod
    def label(cls) -> str:
        return "input.datetime"


class ConventionInput(Configurable):
    """Header keywords of the image quantities (``input.convention``)."""

    Nskips = Param(None, Optional(Str()), doc="keyword of the number of skips; null = NDCMS, NDCM or NSAMP")
    Ncols = Param("NAXIS1", doc="keyword of the number of columns")
    Nrows = Param("NAXIS2", doc="keyword of the number of rows")
    Npbin = Param("NPBIN", doc="keyword of the parallel binning")
    Nsbin = Param("NSBIN", doc="keyword of the serial binning")
    ampl = Param("AMPL", doc="keyword of the amplifiers used ('L', 'U', 'UL')")
    exposure_time = Param("MEXP", doc="keyword of the exposure time")
    read_time = Param("MREAD", doc="keyword of the readout time")
    exposure_time_unit = Param(
        None, Optional(Str()), doc="unit of the exposure-time keyword; null = ms for MEXP, s otherwise"
    )
    read_time_unit = Param(None, Optional(Str()), doc="unit of the read-time keyword; null = ms for MREAD, s otherwise")
    ampdir = Param("VCKDIRN", doc="keyword of the vertical clock direction")
    itgtime = Param("ITGTIME", doc="keyword of the integration time")

    @classmethod
    def label(cls) -> str:
        return "input.convention"


@dataclass
class InputConfig:
    """The validated ``input`` section."""

    image: ImageInput = field(default_factory=ImageInput)
    datetime: DateTimeInput = field(default_factory=DateTimeInput)
    convention: ConventionInput = field(default_factory=ConventionInput)
    scp: dict[str, str] = field(default_factory=dict)
    amplifiers: dict[str, str] = field(default_factory=dict)

    BLOCKS = ("image", "datetime", "convention", "scp", "amplifiers")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> InputConfig:
        """Validate an ``input`` section (every block optional)."""
        mapping = mapping or {}
        if not isinstance(mapping, Mapping):
            raise ConfigError("input: expected a JSON object with blocks " + ", ".join(cls.BLOCKS))
        config = cls()
        for key, value in mapping.items():
            if key == "image":
                config.image = ImageInput.from_mapping(value)
            elif key == "datetime":
                config.datetime = DateTimeInput.from_mapping(value)
            elif key == "convention":
                config.convention = ConventionInput.from_mapping(value)
            elif key == "scp":
                config.scp = MappingOf(Str()).convert(value, "input.scp", None)
            elif key == "amplifiers":
                config.amplifiers = _amplifier_map(value)
            else:
                close = get_close_matches(key, cls.BLOCKS, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"blocks: {', '.join(cls.BLOCKS)}"
                raise UnknownNameError(f"unknown block '{key}' in input ({hint})")
        return config

    def to_dict(self) -> dict[str, Any]:
        """Return the section in declared units."""
        return {
            "image": self.image.to_dict(),
            "datetime": self.datetime.to_dict(),
            "convention": self.convention.to_dict(),
            "scp": dict(self.scp),
            "amplifiers": dict(self.amplifiers),
        }


def _amplifier_map(value: Any) -> dict[str, str]:
    """Validate ``input.amplifiers``: configuration name -> amplifier of the file."""
    mapping = MappingOf(Str()).convert(value, "input.amplifiers", None)
    for key, target in mapping.items():
        if not key.strip() or not target.strip():
            raise ConfigError(
                f"input.amplifiers: empty name in {key!r}: {target!r}",
                hint='map names to amplifiers of the file, e.g. {"A": "CCD_A"}',
            )
    return mapping
