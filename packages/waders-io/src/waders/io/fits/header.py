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

__all__ = ["HeaderInfo", "header_number", "parse_header"]

#: Skip-count keywords tried, in order, when ``convention.Nskips`` is null.
SKIP_KEYWORDS = ("NDCMS", "NDCM", "NSAMP")
_ROW_BINNING = ("NPBIN", "NROWCLUSTER")
_COL_BINNING = ("NSBIN", "NCOLCLUSTER")


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


def _first_number(header: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, float | None]:
    for key in keys:
        value = header_number(header, key)
        if value is not None:
            return key, value
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


def _time_keyword(header: Mapping[str, Any], key: str | None, unit: str | None, default_unit: str) -> float:
    value = header_number(header, key)
    if value is None:
        return math.nan
    return value * units.unit_factor(unit or default_unit)


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
        If a keyword named explicitly in the configuration is missing.
    """
    conv = config.convention
    if conv.Nskips is not None:
        nskips_value = header_number(header, conv.Nskips)
        if nskips_value is None and config.image.skip_image is not False:
            raise InputFileError(
                f"{source}: header keyword {conv.Nskips} (number of skips) is missing",
                hint="set input.convention.Nskips to the keyword your DAQ writes (NDCMS, NDCM, NSAMP)",
            )
        nskips_key = conv.Nskips
    else:
        nskips_key, nskips_value = _first_number(header, SKIP_KEYWORDS)
    daq = {"NDCMS": "leach", "NDCM": "acm", "NSAMP": "lta"}.get(nskips_key or "", "unknown")

    pixel_cols = header_number(header, "NCOL")
    if pixel_cols is None and conv.Ncols not in (None, "NAXIS1"):
        pixel_cols = header_number(header, conv.Ncols)

    row_key = (conv.Npbin, *_ROW_BINNING) if conv.Npbin else _ROW_BINNING
    col_key = (conv.Nsbin, *_COL_BINNING) if conv.Nsbin else _COL_BINNING
    _, row_binning = _first_number(header, tuple(dict.fromkeys(row_key)))
    _, col_binning = _first_number(header, tuple(dict.fromkeys(col_key)))

    exposure_key = conv.exposure_time if conv.exposure_time in header else "EXPOSURE"
    exposure = _time_keyword(header, exposure_key, conv.exposure_time_unit, "ms" if exposure_key == "MEXP" else "s")
    if math.isnan(exposure) and config.datetime.exposure_time:
        exposure = _time_keyword(header, config.datetime.exposure_time, None, "s")
    read_time = _time_keyword(header, conv.read_time, conv.read_time_unit, "ms" if conv.read_time == "MREAD" else "s")
    if math.isnan(read_time) and config.datetime.read_time:
        read_time = _time_keyword(header, config.datetime.read_time, None, "ms")

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
    if math.isnan(read_time) and header_number(header, "READOUT_SEC") is not None:  # ACM boards write it
        read_time = float(header_number(header, "READOUT_SEC") or math.nan)
    if math.isnan(read_time) and "readout_start" in parsed and "readout_end" in parsed:
        read_time = (parsed["readout_end"] - parsed["readout_start"]).total_seconds()

    ampl = header.get(conv.ampl) if conv.ampl else None
    return HeaderInfo(
        nskips=int(nskips_value) if nskips_value is not None else None,
        nskips_keyword=nskips_key,
        pixel_cols=int(pixel_cols) if pixel_cols is not None else None,
        row_binning=max(1, int(row_binning or 1)),
        col_binning=max(1, int(col_binning or 1)),
        ampl=str(ampl).strip().upper() if ampl not in (None, "") else None,
        exposure_time=exposure,
        read_time=read_time,
        times=times,
        daq=daq,
        averaged_flag=str(header.get("IMAGE", "")).strip().lower() == "averaged",
    )
