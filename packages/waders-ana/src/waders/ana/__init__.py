"""waders-ana: analysis of skipper-CCD images (compression, pedestal, calibration, fits, clusters)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("waders-ana")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
