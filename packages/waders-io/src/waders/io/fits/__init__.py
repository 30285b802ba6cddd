"""FITS reading and writing of skipper-CCD images."""

from __future__ import annotations

from .reader import FITS_SUFFIXES, read_image
from .writer import PRODUCT_EXTNAMES, extname_for, write_averaged_image, write_processed, write_raw_image

__all__ = [
    "FITS_SUFFIXES",
    "PRODUCT_EXTNAMES",
    "extname_for",
    "read_image",
    "write_averaged_image",
    "write_processed",
    "write_raw_image",
]
