"""Companion variance files of averaged images (pysimdamicm's CrossTalkProcess ``std_pattern``, B.12.1).

Averaged ACM images are written without the skip spread; the DAQ writes it to a companion
file with the same name except ``pattern[0]`` replaced by ``pattern[1]`` (default
``avg_skips_contrun`` -> ``var_skips_contrun``), holding per pixel the **variance** of the
skips, with the same HDUs and layout.  :func:`companion_std` reads it for every amplifier
of an image, cut and oriented as the image's own products, and returns the standard
deviation ``sqrt(variance)`` (pysimdamicm used the variance as if it were a standard
deviation, reference F.1 item 20).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from waders.core.errors import DataError, InputFileError
from waders.core.image import SkipperImage

__all__ = ["companion_path", "companion_std"]


def companion_path(source: str | Path, pattern: Sequence[str]) -> Path:
    """Name of the companion file: ``pattern[0]`` replaced by ``pattern[1]`` in the file name.

    Raises
    ------
    DataError
        If the pattern is not two strings or the file name does not contain ``pattern[0]``.
    """
    source = Path(source)
    if len(pattern) != 2 or not pattern[0]:
        raise DataError(f"std_pattern must be two names [average, variance], got {list(pattern)}")
    if pattern[0] not in source.name:
        raise DataError(
            f"{source.name} does not contain '{pattern[0]}', so it has no std_pattern companion file",
            hint="set CrossTalkProcess.std_pattern to the [average, variance] parts of the file names, "
            "or compute std_compressed from a raw image",
        )
    return source.with_name(source.name.replace(pattern[0], pattern[1]))


def companion_std(image: SkipperImage, pattern: Sequence[str]) -> dict[str, np.ndarray]:
    """Skip standard deviation of every amplifier from the companion variance file.

    Parameters
    ----------
    image : SkipperImage
        Image read from a file (``image.source``).
    pattern : sequence of two str
        ``[average part, variance part]`` of the file names.

    Returns
    -------
    dict
        Amplifier name -> ``sqrt(variance)`` (ADU), shaped and oriented as the amplifier's products.

    Raises
    ------
    DataError, InputFileError
        No file name, no companion, or a companion whose HDUs do not match the image.
    """
    from astropy.io import fits

    if image.source is None:
        raise DataError(f"{image.label}: the image has no file name to find its std_pattern companion")
    path = companion_path(image.source, pattern)
    if not path.is_file():
        raise InputFileError(
            f"std_pattern companion {path} of {Path(image.source).name} does not exist",
            hint="put the variance file next to the average, or compute std_compressed from a raw image",
        )
    out: dict[str, np.ndarray] = {}
    try:
        with fits.open(path, memmap=False) as hdul:
            for name, amp in image.amplifiers.items():
                g = amp.geometry
                ext = g.extension if g.extension is not None else 0
                try:
                    data = hdul[ext].data
                except (KeyError, IndexError):
                    raise InputFileError(f"{path}: no HDU {ext!r} for amplifier {name}") from None
                if data is None or data.ndim != 2 or data.shape[0] < g.nrows or data.shape[1] < g.col_offset + g.ncols:
                    raise InputFileError(
                        f"{path}: HDU {ext!r} does not hold the {g.nrows} x {g.ncols} pixels of amplifier {name}",
                        hint="the companion must have the layout of the averaged image",
                    )
                block = np.asarray(data[: g.nrows, g.col_offset : g.col_offset + g.ncols], dtype=np.float64)
                variance = g.to_file_layout(block)
                with np.errstate(invalid="ignore"):
                    out[name] = np.where(variance >= 0, np.sqrt(variance), np.nan)
    except OSError as err:
        raise InputFileError(f"{path}: not a readable FITS file ({err})") from None
    return out
