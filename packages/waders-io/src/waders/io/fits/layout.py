"""Amplifier geometry of FITS skipper images: prescan, active area and overscan.

One geometry model serves every readout (pysimdamicm had two inconsistent ones):
sizes given in the configuration are **unbinned** pixels, as in pysimdamicm's
``input.image`` block, and are converted to binned pixels with ``ceil`` (a binned
column that contains any prescan pixel is prescan).

* one amplifier per HDU: ``ccd_cols`` = prescan + active columns (unbinned);
  ``overscan = ncols - ceil(ccd_cols / binning)``.
* two amplifiers per HDU (``[L prescan|L active|L overscan|U overscan|U active|U prescan]``):
  ``ccd_cols`` = active columns of both halves (unbinned);
  per amplifier ``overscan = ncols/2 - ceil(prescan/binning) - ceil(ccd_cols/(2 binning))``.
* rows: ``n_rows_prescan`` (unbinned, divided by the parallel binning, which fixes
  pysimdamicm's use of ``ccd_rows`` there) and ``n_rows_overscan`` (binned rows at the end).

When the configuration leaves a size at ``null`` it comes from the header: waders'
own cards (``WPRESCAN``, ``WCCDCOLS``, ``WPRROWS``, ``WOVROWS``, unbinned), the LTA cards
(``CCDNPRES``, ``CCDNCOL``), the ACM cards (``PRESCAN``, ``NCOLPRE``, ``PHYSCOL``: a readout
window of the serial register), else pysimdamicm's defaults (8 prescan columns, 6144
columns, 1 prescan row).  A size set in the configuration must fit the image (else a
:class:`~waders.core.errors.ConfigError` names the value, the image size and the file;
pysimdamicm also refused a negative overscan); a size from the header or a default that
is wider than the image leaves no overscan.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from waders.core.errors import ConfigError, InputFileError
from waders.core.geometry import AmplifierGeometry
from waders.core.inputs import ImageInput

from .header import HeaderInfo, header_count

__all__ = ["GEOMETRY_CARDS", "amplifier_count", "split_geometries"]

log = logging.getLogger(__name__)

#: Header cards waders writes so that its own images need no geometry configuration.
GEOMETRY_CARDS = {
    "WPRESCAN": "serial prescan per amplifier (unbinned columns)",
    "WCCDCOLS": "ccd_cols: prescan+active (1 amp) or active of both halves (2 amps), unbinned",
    "WPRROWS": "parallel prescan rows (unbinned)",
    "WOVROWS": "parallel overscan rows (binned)",
}

_LEACH_DEFAULTS = {"n_cols_prescan": 8, "ccd_cols": 6144, "n_rows_prescan": 1}


def amplifier_count(image_cfg: ImageInput, info: HeaderInfo) -> int:
    """Amplifiers per HDU: the configuration, else the AMPL keyword, else 2 for Leach files, 1 otherwise."""
    if image_cfg.n_amp is not None:
        return image_cfg.n_amp
    if info.ampl:
        return 2 if len(set(info.ampl) & {"U", "L"}) == 2 else 1
    return 2 if info.daq == "leach" else 1


def _card(header: Mapping[str, Any], card: str, source: str) -> float | None:
    """A geometry card as a non-negative integer (None if absent; an error if it makes no sense)."""
    value = header_count(header, card, source, minimum=0)
    return None if value is None else float(value)


def _size(
    key: str, image_cfg: ImageInput, header: Mapping[str, Any], card: str, fallback: float | None, source: str
) -> float | None:
    value = getattr(image_cfg, key)
    if value is not None:
        return float(value)
    from_card = _card(header, card, source)
    return from_card if from_card is not None else fallback


def _serial_sizes(
    image_cfg: ImageInput, header: Mapping[str, Any], info: HeaderInfo, n_amp: int, source: str
) -> tuple[float, float]:
    """Unbinned (prescan columns, ccd_cols) for this HDU."""
    prescan = _size("n_cols_prescan", image_cfg, header, "WPRESCAN", None, source)
    ccd_cols = _size("ccd_cols", image_cfg, header, "WCCDCOLS", None, source)
    if prescan is not None and ccd_cols is not None:
        return prescan, ccd_cols
    if "CCDNPRES" in header and "CCDNCOL" in header:  # SENSEI LTA: one amplifier reads half the register
        lta_pre = _card(header, "CCDNPRES", source) or 0.0
        lta_cols = _card(header, "CCDNCOL", source) or 0.0
        prescan = lta_pre if prescan is None else prescan
        ccd_cols = (lta_pre + lta_cols / 2 if n_amp == 1 else lta_cols) if ccd_cols is None else ccd_cols
        return prescan, ccd_cols
    if "PHYSCOL" in header and "NCOLPRE" in header:  # DAMIC-M ACM: a window of the serial register
        skipped = _card(header, "NCOLPRE", source) or 0.0
        physical_prescan = _card(header, "PRESCAN", source) or 0.0
        physical_cols = _card(header, "PHYSCOL", source) or 0.0
        if prescan is None:
            prescan = max(0.0, physical_prescan - skipped)
        if ccd_cols is None:
            ccd_cols = max(0.0, physical_prescan + physical_cols - skipped)
        return prescan, ccd_cols
    return (
        _LEACH_DEFAULTS["n_cols_prescan"] if prescan is None else prescan,
        _LEACH_DEFAULTS["ccd_cols"] if ccd_cols is None else ccd_cols,
    )


def _check_configured(
    image_cfg: ImageInput,
    *,
    nrows: int,
    ncols: int,
    n_amp: int,
    serial: tuple[float, float],
    binning: tuple[int, int],
    extension: int | str,
    source: str,
) -> None:
    """Raise when sizes set in ``input.image`` do not fit the image.

    ``serial`` holds the unbinned (prescan, ccd_cols) in effect (configured, else from the
    header); only a configured value is an error, a header value wider than the image
    leaves no overscan.
    """
    b_r, b_c = binning
    binned = f", binning {b_r}x{b_c}" if (b_r, b_c) != (1, 1) else ""
    where = f"{source} (HDU {extension}: {nrows} rows x {ncols} columns{binned})"
    prescan_u, ccd_cols_u = serial
    prescan = math.ceil(prescan_u / b_c)
    width = ncols if n_amp == 1 else ncols // 2
    per_amp = "" if n_amp == 1 else " per amplifier"
    sizes = {"ccd_cols": math.ceil(ccd_cols_u / b_c), "n_cols_prescan": prescan}
    if n_amp == 1:  # either one alone must fit
        keys = [k for k, size in sizes.items() if size > width and getattr(image_cfg, k) is not None][:1]
        needed = sizes[keys[0]] if keys else 0
    else:  # prescan and half of ccd_cols side by side
        keys = [k for k in sizes if getattr(image_cfg, k) is not None]
        needed = prescan + math.ceil(ccd_cols_u / (2 * b_c))
    configured = [f"{key} = {getattr(image_cfg, key):g}" for key in keys]
    if needed > width and configured:
        raise ConfigError(
            f"input.image.{' with '.join(configured)} needs {needed} columns{per_amp} but {where} has {width}",
            hint="set it from the image geometry (waders info FILE), or null to take it from the header",
        )
    rows_pre, rows_over = image_cfg.n_rows_prescan, image_cfg.n_rows_overscan
    rows_needed = math.ceil((rows_pre or 0) / b_r) + int(rows_over or 0)
    if (rows_pre is not None or rows_over is not None) and rows_needed >= nrows:
        raise ConfigError(
            f"input.image.n_rows_prescan = {rows_pre} and n_rows_overscan = {rows_over} leave no active row of {where}",
            hint="set them from the image geometry (waders info FILE)",
        )


def split_geometries(
    *,
    nrows: int,
    ncols: int,
    info: HeaderInfo,
    image_cfg: ImageInput,
    header: Mapping[str, Any],
    base_name: str,
    aliases: tuple[str, ...],
    extension: int | str,
    multi_hdu: bool,
    source: str,
) -> list[AmplifierGeometry]:
    """Geometries of the amplifiers of one data HDU (readout order, binned pixels).

    Parameters
    ----------
    nrows, ncols : int
        Rows and pixels per row of the HDU (binned).
    info : HeaderInfo
        Run quantities of the header.
    image_cfg : ImageInput
        The ``input.image`` block.
    header : mapping
        Merged header (for geometry cards).
    base_name : str
        Name of a single-amplifier HDU (EXTNAME or ``EXT<n>``).
    aliases : tuple of str
        Other names of that amplifier.
    extension : int or str
        HDU of the data.
    multi_hdu : bool
        True when several HDUs are read (names are then made unique).
    source : str
        File name for messages.
    """
    n_amp = amplifier_count(image_cfg, info)
    b_r, b_c = info.row_binning, info.col_binning
    prescan_u, ccd_cols_u = _serial_sizes(image_cfg, header, info, n_amp, source)
    default_rows = _LEACH_DEFAULTS["n_rows_prescan"] if info.daq in ("leach", "unknown") else 0
    prescan_rows_u = _size("n_rows_prescan", image_cfg, header, "WPRROWS", default_rows, source) or 0.0
    overscan_rows = int(_size("n_rows_overscan", image_cfg, header, "WOVROWS", 0, source) or 0)
    prescan_rows = math.ceil(prescan_rows_u / b_r)
    prescan = math.ceil(prescan_u / b_c)
    common = {
        "prescan_rows": min(prescan_rows, nrows),
        "overscan_rows": overscan_rows,
        "row_binning": b_r,
        "col_binning": b_c,
        "extension": extension,
    }
    _check_configured(
        image_cfg,
        nrows=nrows,
        ncols=ncols,
        n_amp=n_amp,
        serial=(prescan_u, ccd_cols_u),
        binning=(b_r, b_c),
        extension=extension,
        source=source,
    )
    if n_amp == 1:
        overscan = ncols - math.ceil(ccd_cols_u / b_c)
        if overscan < 0:
            log.debug("%s: image narrower than ccd_cols=%g: no overscan", source, ccd_cols_u)
        name = image_cfg.amp_name or (info.ampl if info.ampl in ("L", "U") and not multi_hdu else None) or base_name
        names = tuple(a for a in (*aliases, base_name) if a != name)
        return [
            AmplifierGeometry(
                name,
                nrows,
                ncols,
                prescan_cols=min(prescan, ncols),
                overscan_cols=max(0, overscan),
                aliases=tuple(dict.fromkeys(names)),
                **common,
            )
        ]
    if ncols % 2:
        raise InputFileError(
            f"{source}: a two-amplifier image needs an even number of columns, got {ncols}",
            hint="set input.image.n_amp to 1 if one amplifier reads this image",
        )
    half = ncols // 2
    overscan = half - prescan - math.ceil(ccd_cols_u / (2 * b_c))
    geometries = []
    for amp, mirrored, offset in (("L", False, 0), ("U", True, half)):
        name = f"{base_name}_{amp}" if multi_hdu else amp
        geometries.append(
            AmplifierGeometry(
                name,
                nrows,
                half,
                prescan_cols=min(prescan, half),
                overscan_cols=max(0, overscan),
                mirrored=mirrored,
                col_offset=offset,
                aliases=(amp,) if multi_hdu else (),
                **common,
            )
        )
    return geometries
