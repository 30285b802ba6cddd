"""Reading 2-D planes and mask images for the tools (plain, fpack, gzip or bzip2 FITS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from waders.core.errors import InputFileError

__all__ = ["image_extensions", "read_mask", "read_plane"]


def _open(path: Path) -> Any:
    from astropy.io import fits

    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        hdul = fits.open(path, memmap=False)
        hdul.verify("silentfix")
        return hdul
    except (OSError, ValueError, EOFError) as err:
        raise InputFileError(f"{path}: not a readable FITS file ({err})", hint="check the file name") from None


def _key(ext: str | int | None) -> str | int | None:
    if isinstance(ext, str) and ext.lstrip("-").isdigit():
        return int(ext)
    return ext


def image_extensions(path: str | Path) -> list[int]:
    """Indices of the HDUs of a file that hold a 2-D image."""
    path = Path(path)
    with _open(path) as hdul:
        return [i for i, hdu in enumerate(hdul) if getattr(hdu, "data", None) is not None and hdu.data.ndim == 2]


def read_plane(path: str | Path, ext: str | int | None = None) -> np.ndarray:
    """One 2-D image of a FITS file as float64.

    Parameters
    ----------
    path : path
        FITS file (``.fits``, ``.fz``, ``.fits.gz``, ``.fits.bz2``).
    ext : int or str, optional
        HDU index or EXTNAME (default: the first HDU holding a 2-D image).

    Raises
    ------
    InputFileError
        Missing file, unknown extension or an extension that is not a 2-D image.
    """
    path = Path(path)
    key = _key(ext)
    with _open(path) as hdul:
        if key is None:
            found = [hdu for hdu in hdul if getattr(hdu, "data", None) is not None and hdu.data.ndim == 2]
            if not found:
                raise InputFileError(f"{path}: no 2-D image in the file")
            data = found[0].data
        else:
            try:
                data = hdul[key].data
            except (KeyError, IndexError):
                names = [h.name for h in hdul]
                raise InputFileError(
                    f"{path}: no extension {key!r}", hint=f"use an index 0..{len(hdul) - 1} or one of {names}"
                ) from None
            if data is None or data.ndim != 2:
                raise InputFileError(f"{path}: extension {key!r} is not a 2-D image", hint="choose another --ext")
        return np.array(data, dtype=np.float64)


def read_mask(path: str | Path, shape: tuple[int, int] | None = None, ext: str | int | None = None) -> np.ndarray:
    """A mask image: nonzero (or NaN) = masked, as pysimdamicm's ``--mask`` files.

    Parameters
    ----------
    path : path
        FITS file; by default its first 2-D image (pysimdamicm used extension 1, which
        is the first image of files written with an empty primary HDU).
    shape : (int, int), optional
        Expected shape; a different shape is an error.
    ext : int or str, optional
        HDU of the mask.

    Returns
    -------
    ndarray of bool
        True = excluded.
    """
    values = read_plane(path, ext)
    if shape is not None and values.shape != tuple(shape):
        raise InputFileError(
            f"{path}: the mask has shape {values.shape}, the images {tuple(shape)}",
            hint="give a mask made for these images",
        )
    return ~np.isfinite(values) | (values != 0)
