"""Write skipper-CCD FITS files: raw multi-skip images, averaged images, processed products.

Every writer is atomic (temporary file, then rename) and puts enough header cards in
the file for :func:`~waders.io.fits.reader.read_image` to read it back with no
configuration: the skip count (``NDCMS``), the amplifiers (``AMPL``), the binning
(``NPBIN``, ``NSBIN``) and waders' geometry cards (``WPRESCAN``, ``WCCDCOLS``, ``WPRROWS``,
``WOVROWS``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.errors import DataError
from waders.core.geometry import AmplifierGeometry, ImageGeometry
from waders.core.image import SkipperImage

from ..atomic import atomic_path
from .bunit import ADU, product_unit

__all__ = [
    "PRODUCT_EXTNAMES",
    "extname_for",
    "write_averaged_image",
    "write_processed",
    "write_raw_image",
]

#: EXTNAMEs of processed products (pysimdamicm's names where it had one).
PRODUCT_EXTNAMES = {
    "mean_compressed_pedestal_subtracted_e": "CALIBRATED",
    "mean_compressed_pedestal_subtracted": "PEDSUBTRACTED",
    "mean_compressed": "MEAN",
    "median_compressed": "MEDIAN",
    "std_compressed": "STD",
    "mask_clusters": "FULLMASK",
    "mask_clusters_only": "CLSMASK",
    "saturated_pixels": "PIXSATURATION",
    "xtalk": "CROSSTALK",
    "mask_clusters_ids": "QMAX",
}

#: Products pysimdamicm put in the primary HDU, in order of preference (spec B.14.1).
_PRIMARY_PRODUCTS = tuple(list(PRODUCT_EXTNAMES)[:4])


def extname_for(product: str) -> str:
    """EXTNAME of a product: pysimdamicm's name if it had one, else the product name in capitals."""
    return PRODUCT_EXTNAMES.get(product, product.upper())


def _card_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return _ascii(str(value))


def _ascii(text: str) -> str:
    """FITS cards hold printable ASCII only: other characters (a file name 'ünï.fits') are escaped."""
    if text.isascii() and text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def _fits_header(cards: Mapping[str, Any] | Iterable[tuple[str, Any, str]]) -> Any:
    from astropy.io import fits

    header = fits.Header()
    items = cards.items() if isinstance(cards, Mapping) else cards
    for item in items:
        key, value, comment = (*item, "")[:3] if isinstance(item, tuple) else (item, None, "")
        if isinstance(value, tuple):
            value, comment = value[0], value[1] if len(value) > 1 else ""
        key = str(key)
        if len(key) > 8 and not key.startswith("HIERARCH"):
            key = f"HIERARCH {key}"
        value = _card_value(value)
        # a card is 80 characters: long HIERARCH keys leave less room for the comment
        room = 80 - len(key) - len(repr(value)) - 8 if key.startswith("HIERARCH") else 40
        header[key] = (value, _ascii(str(comment))[: max(0, min(40, room))])
    return header


def _add_history(header: Any, image: SkipperImage) -> None:
    """HISTORY cards: the waders version and the processes applied to ``image``, in order."""
    provenance = image.provenance
    if provenance is None:  # made in memory (simulation): no processes of waders-ana ran on it
        from waders.core.versions import waders_versions

        header.add_history(f"written by waders {waders_versions().get('waders-core', '?')}")
        return
    version = provenance.versions.get("waders-core", "?")
    header.add_history(f"waders {version} ({provenance.created}), processes applied in order:")
    for i, step in enumerate(provenance.steps, start=1):
        header.add_history(f"{i}. {step.process}")


def _geometry_cards(geometries: Sequence[AmplifierGeometry]) -> dict[str, tuple[Any, str]]:
    g = geometries[0]
    two = len(geometries) == 2
    if two:
        ccd_cols = (g.ncols - g.prescan_cols - g.overscan_cols) * 2 * g.col_binning
    else:
        ccd_cols = (g.ncols - g.overscan_cols) * g.col_binning
    return {
        "AMPL": ("UL" if two else g.name if g.name in ("L", "U") else "L", "amplifiers read"),
        "NPBIN": (g.row_binning, "parallel binning"),
        "NSBIN": (g.col_binning, "serial binning"),
        "WPRESCAN": (g.prescan_cols * g.col_binning, "serial prescan per amplifier (unbinned)"),
        "WCCDCOLS": (ccd_cols, "prescan+active (1 amp) or active (2 amps), unbinned"),
        "WPRROWS": (g.prescan_rows * g.row_binning, "parallel prescan rows (unbinned)"),
        "WOVROWS": (g.overscan_rows, "parallel overscan rows (binned)"),
    }


def _time_cards(geometry: ImageGeometry, meta: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    cards: dict[str, tuple[Any, str]] = {}
    if math.isfinite(geometry.exposure_time):
        cards["MEXP"] = (geometry.exposure_time * 1e3, "exposure time (ms)")
    if math.isfinite(geometry.read_time):
        cards["MREAD"] = (geometry.read_time * 1e3, "readout time (ms)")
    for key, card in (("exposure_start", "EXPSTART"), ("readout_start", "RDSTRT"), ("readout_end", "RDEND")):
        if key in meta:
            cards[card] = (str(meta[key]), key.replace("_", " "))
    return cards


def _amplifier_groups(image: SkipperImage) -> list[list[AmplifierGeometry]]:
    """Amplifiers grouped by the HDU (file layout) they share."""
    groups: dict[Any, list[AmplifierGeometry]] = {}
    for amp in image.amplifiers.values():
        groups.setdefault(amp.geometry.extension, []).append(amp.geometry)
    for geometries in groups.values():
        geometries.sort(key=lambda g: g.col_offset)
        if len(geometries) > 2 or (len(geometries) == 2 and not geometries[1].mirrored):
            raise DataError("a FITS HDU holds one amplifier or two mirrored ones (L, U)")
    return list(groups.values())


def write_raw_image(
    path: str | Path,
    image: SkipperImage,
    *,
    dtype: str = "float32",
    header: Mapping[str, Any] | None = None,
    invert_polarity: float | None = None,
    block_rows: int | None = None,
) -> Path:
    """Write the raw samples of an image as a raw multi-skip FITS file.

    Each HDU holds one amplifier (``[prescan|active|overscan]``) or two
    (``[L prescan|L active|L overscan|U overscan|U active|U prescan]``, the ``U`` half
    mirrored and its sample stream reversed), with ``raw[r, c*nskips + k]``.  Data are
    written by row blocks, so lazily generated samples never sit in memory at once.

    Parameters
    ----------
    path : path
        Output file.
    image : SkipperImage
        Amplifiers with raw samples (rows, cols, skips) in readout order.  Amplifiers
        sharing ``geometry.extension`` go into one HDU.
    dtype : str
        Sample type in the file (``"float32"``, ``"int32"``, ``"uint16"``, ...).
    header : mapping, optional
        Extra cards for the primary header.
    invert_polarity : float, optional
        Write ``invert_polarity - q`` (a DAQ with inverted polarity).
    block_rows : int, optional
        Rows per write (default: about 64 MB of samples).

    Returns
    -------
    Path
        The file written.
    """
    groups = _amplifier_groups(image)
    nskips = image.geometry.nskips
    file_dtype = np.dtype(dtype)
    path = Path(path)
    with atomic_path(path) as tmp:
        for hdu_number, geometries in enumerate(groups):
            amps = [image.amplifiers[g.name] for g in geometries]
            nrows = geometries[0].nrows
            naxis1 = sum(g.ncols for g in geometries) * nskips
            cards = {"NDCMS": (nskips, "samples (skips) per pixel"), **_geometry_cards(geometries)}
            cards["BUNIT"] = (ADU, "unit of the samples")
            if hdu_number == 0:
                cards.update(_time_cards(image.geometry, image.meta))
                cards.update(dict(header or {}))
            if len(groups) > 1:
                cards["EXTNAME"] = (geometries[0].name, "amplifier")
            history = image if hdu_number == 0 else None
            _write_streamed_hdu(
                tmp, hdu_number, cards, nrows, naxis1, file_dtype, amps, invert_polarity, block_rows, history
            )
    return path


def _write_streamed_hdu(
    tmp: Path,
    hdu_number: int,
    cards: Mapping[str, Any],
    nrows: int,
    naxis1: int,
    file_dtype: np.dtype,
    amps: Sequence[Any],
    invert_polarity: float | None,
    block_rows: int | None,
    history: SkipperImage | None = None,
) -> None:
    from astropy.io import fits

    header = fits.Header()
    if hdu_number == 0:
        header["SIMPLE"] = True
    else:
        header["XTENSION"] = "IMAGE"
    header["BITPIX"] = 8 * file_dtype.itemsize * (-1 if file_dtype.kind == "f" else 1)
    header["NAXIS"] = 2
    header["NAXIS1"] = naxis1
    header["NAXIS2"] = nrows
    if hdu_number == 0:
        header["EXTEND"] = True
    else:
        header["PCOUNT"] = 0
        header["GCOUNT"] = 1
    if file_dtype.kind == "u":  # FITS stores unsigned integers as signed with BZERO
        header["BSCALE"] = 1
        header["BZERO"] = 2 ** (8 * file_dtype.itemsize - 1)
    header.update(_fits_header(cards))
    if history is not None:
        _add_history(header, history)
    step = block_rows or max(1, (64 << 20) // max(1, naxis1 * 8))
    stream = fits.StreamingHDU(tmp, header)
    try:
        for start in range(0, nrows, step):
            stop = min(start + step, nrows)
            parts = []
            for amp in amps:
                block = np.asarray(amp.raw[start:stop], dtype=np.float64).reshape(stop - start, -1)
                parts.append(block[:, ::-1] if amp.geometry.mirrored else block)
            rows = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
            if invert_polarity is not None:
                rows = invert_polarity - rows
            if file_dtype.kind in "iu":
                rows = np.rint(rows)
                info = np.iinfo(file_dtype)
                if rows.min(initial=0) < info.min or rows.max(initial=0) > info.max:
                    raise DataError(f"samples do not fit in {file_dtype}", hint="write with dtype='float32'")
                if file_dtype.kind == "u":
                    rows = rows - header["BZERO"]
                    out_dtype = np.dtype(f"int{8 * file_dtype.itemsize}")
                else:
                    out_dtype = file_dtype
            else:
                out_dtype = file_dtype
            stream.write(rows.astype(out_dtype.newbyteorder(">"), copy=False))
    finally:
        stream.close()


def _assembled_hdus(image: SkipperImage, product: str) -> list[tuple[list[AmplifierGeometry], np.ndarray]]:
    """One 2-D array per HDU group with the product laid out as in the file."""
    out = []
    for geometries in _amplifier_groups(image):
        parts = [g.to_file_layout(image.amplifiers[g.name].get(product)) for g in geometries]
        out.append((geometries, np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]))
    return out


def write_averaged_image(
    path: str | Path, image: SkipperImage, product: str = "mean_compressed", *, header: Mapping[str, Any] | None = None
) -> Path:
    """Write one 2-D product as an averaged skipper image (``IMAGE = 'averaged'``).

    A multi-extension image gets an empty primary HDU with the run header and one
    HDU per amplifier (the DAMIC-M layout); others get one HDU.
    """
    from astropy.io import fits

    hdus = _assembled_hdus(image, product)
    run = {
        "NDCMS": (image.geometry.nskips_averaged, "skips averaged"),
        "NCOL": (int(hdus[0][1].shape[1]), "pixels per row"),
        "IMAGE": ("averaged", "samples averaged over skips"),
        "BUNIT": (product_unit(product) or "", "unit of the pixel values"),
        **_time_cards(image.geometry, image.meta),
        **dict(header or {}),
    }
    hdul = fits.HDUList()
    if len(hdus) == 1:
        geometries, data = hdus[0]
        hdul.append(
            fits.PrimaryHDU(data.astype(np.float64), header=_fits_header({**run, **_geometry_cards(geometries)}))
        )
    else:
        hdul.append(fits.PrimaryHDU(header=_fits_header(run)))
        for geometries, data in hdus:
            cards = {**_geometry_cards(geometries), "EXTNAME": geometries[0].name, "NCOL": int(data.shape[1])}
            cards["BUNIT"] = run["BUNIT"]
            hdul.append(fits.ImageHDU(data.astype(np.float64), header=_fits_header(cards)))
    _add_history(hdul[0].header, image)
    path = Path(path)
    with atomic_path(path) as tmp:
        hdul.writeto(tmp)
    return path


def write_processed(
    path: str | Path,
    image: SkipperImage,
    products: Sequence[str] | None = None,
    *,
    extra_cards: Mapping[str, Any] | None = None,
    layout: str = "waders",
) -> Path:
    """Write processed images (one HDU per product) with provenance and calibration cards.

    The primary HDU has no data; its header holds the input header, the cards the
    processes queued (``image.header_cards``: gains, fit results, ...), the provenance
    (waders versions, the processes run, the seed) and the geometry (``WGEOM``, JSON).
    Each product HDU holds every amplifier in the input's file layout; the amplifiers
    of a multi-extension input are stacked along rows in order (rows of amplifier i:
    ``AMPiROWS``).

    Parameters
    ----------
    path : path
        Output file (``<stem>_waders.fits``).
    image : SkipperImage
        The processed image.
    products : sequence of str, optional
        Products to write (default: every 2-D product present for all amplifiers).
    extra_cards : mapping, optional
        More primary-header cards.
    layout : {"waders", "pysimdamicm"}
        ``"pysimdamicm"``: as pysimdamicm's ``*_waders.fits`` (spec B.14.1), the
        primary HDU holds the first of the calibrated, pedestal-subtracted, mean and
        median images (and that product is not repeated as an extension) and
        ``NDCMS`` is 1 (the products are averaged images).
    """
    from astropy.io import fits

    amps = list(image.amplifiers.values())
    if products is None:
        products = [p for p in amps[0].products if all(p in a.products for a in amps)]
    header = _fits_header({k: v for k, v in image.header.items() if k not in ("EXTNAME",)})
    for key, (value, comment) in image.header_cards.items():
        header.update(_fits_header([(key, value, comment)]))
    if image.provenance is not None:
        header.update(_fits_header(image.provenance.header_cards()))
    header.update(_fits_header(dict(extra_cards or {})))
    header["FILE"] = (_ascii(image.source.name) if image.source else "", "input file")
    header["WGEOM"] = json.dumps(image.geometry.describe(), separators=(",", ":"))
    primary_data = None
    if layout == "pysimdamicm":
        header["NDCMS"] = (1, "skips of the stored images (averaged)")
        primary = next((p for p in PRODUCT_EXTNAMES if p in products and p in _PRIMARY_PRODUCTS), None)
        if primary is not None:
            groups = _assembled_hdus(image, primary)
            primary_data = np.concatenate([d for _, d in groups], axis=0) if len(groups) > 1 else groups[0][1]
            header["EXTNAME"] = (extname_for(primary), "product in the primary HDU")
            products = [p for p in products if p != primary]
    elif layout != "waders":
        raise DataError(f"unknown output layout {layout!r}", hint="use waders or pysimdamicm")
    _add_history(header, image)
    hdul = fits.HDUList([fits.PrimaryHDU(primary_data, header=header)])
    for product in products:
        groups = _assembled_hdus(image, product)
        data = np.concatenate([d for _, d in groups], axis=0) if len(groups) > 1 else groups[0][1]
        cards: dict[str, Any] = {"EXTNAME": extname_for(product), "PRODUCT": product}
        unit = product_unit(product)
        if unit is not None:
            cards["BUNIT"] = (unit, "unit of the pixel values")
        row = 0
        for i, (geometries, block) in enumerate(groups, start=1):
            cards[f"AMP{i}"] = ",".join(g.name for g in geometries)
            cards[f"AMP{i}ROWS"] = f"{row}:{row + block.shape[0]}"
            row += block.shape[0]
        out = data.astype(np.uint8) if data.dtype == bool else data
        hdu_header = _fits_header(cards)
        _add_history(hdu_header, image)
        hdul.append(fits.ImageHDU(out, header=hdu_header))
    path = Path(path)
    with atomic_path(path) as tmp:
        hdul.writeto(tmp)
    return path
