"""waders-io: reading and writing skipper-CCD files (FITS and ROOT).

FITS: :func:`read_image` reads raw multi-skip and averaged images (one or two
amplifiers per HDU, multi-extension files, fpack); :func:`write_raw_image`,
:func:`write_averaged_image` and :func:`write_processed` write them.
:func:`reduce_skips` compresses raw samples over skips by row blocks.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .atomic import atomic_path
from .fits import read_image, write_averaged_image, write_processed, write_raw_image
from .reduce import reduce_skips, resolve_range

try:
    __version__ = version("waders-io")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "atomic_path",
    "read_image",
    "reduce_skips",
    "resolve_range",
    "write_averaged_image",
    "write_processed",
    "write_raw_image",
]
