"""Describe a file: what ``waders info`` prints.

For FITS images: per amplifier its name, size, skips, whether it is averaged, the
prescan and overscan widths, the binning, and the exposure.  For ROOT files: the
trees with their entries and branches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waders.core.inputs import InputConfig
from waders.core.paths import check_regular_file

from .fits.reader import read_image

__all__ = ["describe", "describe_fits", "format_description"]

_ROOT_SUFFIXES = (".root",)


def _waders_output(path: Path) -> dict[str, Any] | None:
    """Describe a ``<stem>_waders.fits`` file of ``waders ana --save-img`` (None for any other FITS file).

    Such a file holds one HDU per image product (amplifiers stacked as in the input); its
    primary header keeps the input's header and geometry (``WGEOM``), so the input's skip
    count must not be applied to the products.
    """
    import json
    import warnings

    from astropy.io import fits

    try:
        with warnings.catch_warnings():  # a broken file is read_image's to report, in one line
            warnings.simplefilter("ignore")
            # our own handle: astropy leaves the file open when it fails half-way through a broken header
            with open(path, "rb") as handle, fits.open(handle, memmap=False, lazy_load_hdus=True) as hdul:
                primary = hdul[0].header
                if "WGEOM" not in primary:
                    return None
                products = [
                    {
                        "extension": i,
                        "name": hdu.name,
                        "product": hdu.header.get("PRODUCT", ""),
                        "nrows": int(hdu.header.get("NAXIS2", 0)),
                        "ncols": int(hdu.header.get("NAXIS1", 0)),
                        "amplifiers": ";".join(
                            str(hdu.header[k]) for k in hdu.header if k[:3] == "AMP" and k[3:].isdigit()
                        ),
                    }
                    for i, hdu in enumerate(hdul)
                    if i > 0 and "PRODUCT" in hdu.header
                ]
                geometry = json.loads(primary["WGEOM"])
                source = str(primary.get("FILE", ""))
                processes = [str(primary[k]) for k in primary if k.startswith("WPROC")]
    except Exception:  # not a readable waders output (astropy raises many kinds): read_image says what is wrong
        return None
    return {
        "path": str(path),
        "format": "fits",
        "layout": "waders output",
        "input": source,
        "processes": processes,
        "products": products,
        "input_geometry": geometry,
    }


def describe_fits(path: str | Path, config: InputConfig | None = None) -> dict[str, Any]:
    """Describe a FITS skipper image (keys ``format``, ``layout``, ``amplifiers``, ...).

    A processed-image file written by ``waders ana --save-img`` is described by its products
    (keys ``layout`` = "waders output", ``input``, ``products``, ``input_geometry``).
    """
    if Path(path).is_file():
        output = _waders_output(Path(path))
        if output is not None:
            return output
    image = read_image(path, config, lazy=True)
    description = image.geometry.describe()
    return {
        "path": str(path),
        "format": "fits",
        **description,
        "daq": image.geometry.extra.get("daq"),
        "skip_keyword": image.geometry.extra.get("skip_keyword"),
        "times": {k: v for k, v in image.meta.items() if k != "file"},
    }


def _is_root(path: Path) -> bool:
    if path.suffix.lower() in _ROOT_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"root"
    except OSError:
        return False


def describe(path: str | Path, config: InputConfig | None = None) -> dict[str, Any]:
    """Describe a FITS or ROOT file.

    Raises
    ------
    InputFileError
        If the file is missing or neither a readable FITS nor ROOT file.
    """
    path = Path(path)
    check_regular_file(path, "a FITS or ROOT file")
    if _is_root(path):
        from .root import describe_root

        return {"path": str(path), **describe_root(path)}
    return describe_fits(path, config)


def _seconds(value: Any) -> str:
    return "unknown" if value is None or value != value else f"{value:g} s"


def format_description(info: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe`'s result."""
    lines = []
    if info.get("layout") == "waders output":
        geometry = info["input_geometry"]
        kind = (
            f"{geometry['layout']}, {'averaged over ' if geometry['averaged'] else 'raw, '}{geometry['nskips']} skips"
        )
        lines.append(
            f"{info['path']}: FITS, processed images written by waders ana from {info['input'] or '?'} ({kind}); "
            f"{len(info['products'])} product(s)"
        )
        header = ("ext", "name", "product", "rows", "cols", "amplifiers")
        rows = [
            (str(p["extension"]), p["name"], p["product"], str(p["nrows"]), str(p["ncols"]), p["amplifiers"])
            for p in info["products"]
        ]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if info["processes"]:
            lines.append("  processes: " + ", ".join(info["processes"]))
    elif info["format"] == "fits":
        kind = (
            f"averaged over {info['amplifiers'][0]['nskips']} skips"
            if info["averaged"]
            else f"raw, {info['nskips']} skips"
        )
        lines.append(
            f"{info['path']}: FITS, {info['layout']}, {kind}, exposure {_seconds(info['exposure_s'])}, "
            f"read time {_seconds(info['read_time_s'])}, DAQ {info.get('daq') or 'unknown'}"
        )
        header = (
            "amplifier",
            "ext",
            "rows",
            "cols",
            "skips",
            "prescan",
            "overscan",
            "rows pre/post",
            "binning",
            "mirrored",
        )
        rows = [
            (
                a["name"],
                str(a["extension"]),
                str(a["nrows"]),
                str(a["ncols"]),
                str(a["nskips"]),
                str(a["prescan_cols"]),
                str(a["overscan_cols"]),
                f"{a['prescan_rows']}/{a['overscan_rows']}",
                f"{a['row_binning']}x{a['col_binning']}",
                "yes" if a["mirrored"] else "no",
            )
            for a in info["amplifiers"]
        ]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    else:
        lines.append(f"{info['path']}: ROOT, {len(info['trees'])} tree(s)")
        for tree in info["trees"]:
            lines.append(f"  {tree['name']}: {tree['entries']} entries; branches: {', '.join(tree['branches'])}")
    return "\n".join(lines)
