"""Reading run quantities from FITS headers of the DAQ systems in use.

Three header conventions exist in the field, and the ``input.convention`` block of
the configuration says which keyword holds which quantity:

=============  ================================  ==========================  ========================
quantity       Leach / CCDDrone (LBC, Compton)   DAMIC-M ACM board           SENSEI LTA
=============  ================================  ==========================  ========================
skips          ``NDCMS``                         ``NDCM``                    ``NSAMP`` (a string!)
pixels/row     ``NAXIS1 / NDCMS``                ``NCOL``                    ``NCOL``
binning        ``NPBIN``, ``NSBIN``              ``NPBIN``, ``NSBIN``        ``NROWCLUSTER``, ``NCOLCLUSTER``
exposure       ``MEXP`` (ms)                     ``EXPOSURE`` (s)            ``EXPOSURE`` (s)
times          ``EXPSTART``, ``RDSTRT``, ``RDEND``  ``DATEINI``, ``DATEEND``  --
=============  ================================  ==========================  ========================

When the configuration leaves a keyword at ``null`` the reader looks for the usual
ones in that order.  Numeric values stored as strings (LTA) are converted.

Values that make no sense are errors naming the file and the keyword
(:class:`~waders.core.errors.InputFileError`, exit code 2), never silent numbers:
skip counts, binning and ``NCOL`` must be positive integers (binning at most
:data:`MAX_BINNING`), geometry sizes non-negative integers and times finite and
non-negative.  A keyword that is absent (or an empty string) is unknown, not wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from waders.core import units
from waders.core.errors import InputFileError
from waders.core.inputs import InputConfig

__all__ = ["MAX_BINNING", "HeaderInfo", "header_count", "header_number", "header_seconds", "parse_header"]

#: Skip-count keywords tried, in order, when ``convention.Nskips`` is null.
SKIP_KEYWORDS = ("NDCMS", "NDCM", "NSAMP")
_ROW_BINNING = ("NPBIN", "NROWCLUSTER")
_COL_BINNING = ("NSBIN", "NCOLCLUSTER")
#: Largest binning accepted: no CCD in use has more than 2**16 pixels along a side
#: (DAMIC-M 6144 x 1536, SENSEI 6144 x 886), so a larger NPBIN/NSBIN is a corrupt header.
MAX_BINNING = 1 << 16
#: Largest skip count or column count accepted (a corrupt header otherwise asks for petabytes).
_MAX_COUNT = 1 << 24


def header_number(header: Mapping[str, Any], key: str | None, default: float | None = None) -> float | None:
    """Return a header value as a number (strings such as ``'500     '`` are converted).

    Returns ``default`` if the key is None, absent, empty or not numeric.
    """
    if key is None or key not in header:
        return default
    value = header[key]
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return default


def _present(header: Mapping[str, Any], key: str | None) -> bool:
    return key is not None and key in header and str(header[key]).strip() != ""


def _strict_number(header: Mapping[str, Any], key: str, source: str, expected: str) -> float:
    value = header[key]
    number = header_number(header, key)
    if number is None or isinstance(value, bool) or not math.isfinite(number):
        raise InputFileError(
            f"{source}: header keyword {key}={str(value).strip()!r} is not {expected}",
            hint=f"fix {key} in the file header (or set the value in the configuration)",
        )
    return number


def header_count(
    header: Mapping[str, Any],
    key: str | None,
    source: str,
    *,
    minimum: int = 1,
    maximum: int = _MAX_COUNT,
) -> int | None:
    """Return an integer header value checked against bounds; None if the keyword is absent.

    Parameters
    ----------
    header : mapping
        Header cards.
    key : str or None
        Keyword (None: absent).
    source : str
        File name for the error message.
    minimum, maximum : int
        Inclusive bounds (1: a positive count, 0: a size that may be zero).

    Raises
    ------
    InputFileError
        If the keyword is present but not a finite integer within the bounds.
    """
    if not _present(header, key):
        return None
    assert key is not None
    expected = "a positive integer" if minimum >= 1 else "a non-negative integer"
    number = _strict_number(header, key, source, expected)
    if not number.is_integer() or number < minimum:
        raise InputFileError(
            f"{source}: header keyword {key}={str(header[key]).strip()!r} is not {expected}",
            hint=f"fix {key} in the file header (or set the value in the configuration)",
        )
    if number > maximum:
        raise InputFileError(
            f"{source}: header keyword {key}={number:g} is larger than {maximum} (a corrupt header?)",
            hint=f"fix {key} in the file header",
        )
    return int(number)


def header_seconds(header: Mapping[str, Any], key: str | None, unit: str, source: str) -> float:
    """Return a time keyword in seconds (NaN if absent); raise if it is not finite and >= 0."""
    if not _present(header, key):
        return math.nan
    assert key is not None
    number = _strict_number(header, key, source, "a finite time")
    if number < 0:
        raise InputFileError(
            f"{source}: header keyword {key}={number:g} is a negative time", hint=f"fix {key} in the file header"
        )
    return number * units.unit_factor(unit)


def _first_count(
    header: Mapping[str, Any], keys: tuple[str, ...], source: str, maximum: int = _MAX_COUNT
) -> tuple[str | None, int | None]:
    """The first of ``keys`` present in the header, validated (an invalid one is an error, not skipped)."""
    for key in keys:
        if _present(header, key):
            return key, header_count(header, key, source, maximum=maximum)
    return None, None


def _parse_date(value: Any) -> datetime | None:
    if value is None:
        return None
    text = str(value).strip()
    for fmt in (None, "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%a %b %d %H:%M:%S %Y"):
        try:
            return datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


@dataclass
class HeaderInfo:
    """Run quantities read from a header through the configured convention.

    Attributes
    ----------
    nskips : int or None
        Samples per pixel (None if no skip keyword is present).
    nskips_keyword : str or None
        Keyword it came from.
    pixel_cols : int or None
        Pixels per row according to the DAQ (``NCOL``), if the header says.
    row_binning, col_binning : int
        Parallel and serial binning.
    ampl : str or None
        Amplifiers used (``'L'``, ``'U'``, ``'UL'``).
    exposure_time, read_time : float
        Seconds (NaN if unknown).
    times : dict
        ISO time stamps ``exposure_start``, ``readout_start``, ``readout_end`` (when present).
    daq : str
        ``"leach"``, ``"acm"``, ``"lta"`` or ``"unknown"``.
    """

    nskips: int | None
    nskips_keyword: str | None
    pixel_cols: int | None
    row_binning: int = 1
    col_binning: int = 1
    ampl: str | None = None
    exposure_time: float = math.nan
    read_time: float = math.nan
    times: dict[str, str] = field(default_factory=dict)
    daq: str = "unknown"
    averaged_flag: bool = False


def _time_keyword(
    header: Mapping[str, Any], key: str | None, unit: str | None, default_unit: str, source: str
) -> float:
    return header_seconds(header, key, unit or default_unit, source)


def parse_header(header: Mapping[str, Any], config: InputConfig, source: str) -> HeaderInfo:
    """Read the run quantities of ``header`` according to ``config.convention``.

    Parameters
    ----------
    header : mapping
        Merged header (run header first, then the data HDU's cards).
    config : InputConfig
        The ``input`` section.
    source : str
        File name for error messages.

    Raises
    ------
    InputFileError
        If a keyword named explicitly in the configuration is missing, or a keyword
        holds a value that makes no sense (a skip count of 0, a binning of 1e9, ...).
    """
    conv = config.convention
    nskips_value: int | None
    if conv.Nskips is not None:
        nskips_value = header_count(header, conv.Nskips, source)
        if nskips_value is None and config.image.skip_image is not False:
            raise InputFileError(
                f"{source}: header keyword {conv.Nskips} (number of skips) is missing",
                hint="set input.convention.Nskips to the keyword your DAQ writes (NDCMS, NDCM, NSAMP)",
            )
        nskips_key = conv.Nskips
    else:
        nskips_key, nskips_value = _first_count(header, SKIP_KEYWORDS, source)
    daq = {"NDCMS": "leach", "NDCM": "acm", "NSAMP": "lta"}.get(nskips_key or "", "unknown")

    pixel_cols = header_count(header, "NCOL", source)
    if pixel_cols is None and conv.Ncols not in (None, "NAXIS1"):
        pixel_cols = header_count(header, conv.Ncols, source)

    row_key = (conv.Npbin, *_ROW_BINNING) if conv.Npbin else _ROW_BINNING
    col_key = (conv.Nsbin, *_COL_BINNING) if conv.Nsbin else _COL_BINNING
    _, row_binning = _first_count(header, tuple(dict.fromkeys(row_key)), source, MAX_BINNING)
    _, col_binning = _first_count(header, tuple(dict.fromkeys(col_key)), source, MAX_BINNING)

    exposure_key = conv.exposure_time if conv.exposure_time in header else "EXPOSURE"
    exposure = _time_keyword(
        header, exposure_key, conv.exposure_time_unit, "ms" if exposure_key == "MEXP" else "s", source
    )
    if math.isnan(exposure) and config.datetime.exposure_time:
        exposure = _time_keyword(header, config.datetime.exposure_time, None, "s", source)
    read_time = _time_keyword(
        header, conv.read_time, conv.read_time_unit, "ms" if conv.read_time == "MREAD" else "s", source
    )
    if math.isnan(read_time) and config.datetime.read_time:
        read_time = _time_keyword(header, config.datetime.read_time, None, "ms", source)

    times: dict[str, str] = {}
    dt = config.datetime
    candidates = {
        "exposure_start": (dt.exposure_start, "DATEINI"),
        "readout_start": (dt.readout_start, "DATEINI"),
        "readout_end": (dt.readout_end, "DATEEND"),
    }
    parsed: dict[str, datetime] = {}
    for name, keys in candidates.items():
        for key in keys:
            stamp = _parse_date(header.get(key)) if key else None
            if stamp is not None:
                parsed[name] = stamp
                times[name] = stamp.isoformat()
                break
    if math.isnan(read_time):  # ACM boards write READOUT_SEC
        read_time = header_seconds(header, "READOUT_SEC", "s", source)
    if math.isnan(read_time) and "readout_start" in parsed and "readout_end" in parsed:
        read_time = (parsed["readout_end"] - parsed["readout_start"]).total_seconds()

    ampl = header.get(conv.ampl) if conv.ampl else None
    return HeaderInfo(
        nskips=nskips_value,
        nskips_keyword=nskips_key,
        pixel_cols=pixel_cols,
        row_binning=row_binning or 1,
        col_binning=col_binning or 1,
        ampl=str(ampl).strip().upper() if ampl not in (None, "") else None,
        exposure_time=exposure,
        read_time=read_time,
        times=times,
        daq=daq,
        averaged_flag=str(header.get("IMAGE", "")).strip().lower() == "averaged",
    )
