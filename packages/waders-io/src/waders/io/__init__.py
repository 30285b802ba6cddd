"""waders-io: reading and writing skipper-CCD files (FITS and ROOT).

FITS: :func:`read_image` reads raw multi-skip and averaged images (one or two
amplifiers per HDU, multi-extension files, fpack); :func:`write_raw_image`,
:func:`write_averaged_image` and :func:`write_processed` write them.
:func:`reduce_skips` compresses raw samples over skips by row blocks.

ROOT (:mod:`waders.io.root`): Geant4 (DAMICG4) input read in chunks of events
(:func:`iter_geant4`), and the output trees of analysis and simulation
(``clustersRec``, ``info``, ``process_config``, ``pixelizedEvent``, ...).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from waders.core.lazy import lazy_getattr

# Public names, imported on first use: ``import waders.io`` does not import numpy,
# astropy or uproot (the ``waders`` command starts fast; issue 18).
_EXPORTS = {
    "atomic_path": ".atomic",
    **dict.fromkeys(("read_image", "write_averaged_image", "write_processed", "write_raw_image"), ".fits"),
    **dict.fromkeys(("reduce_skips", "resolve_range"), ".reduce"),
    **dict.fromkeys(
        ("count_geant4_events", "describe_root", "iter_geant4", "read_clusters", "read_geant4", "write_geant4"), ".root"
    ),
}

try:
    __version__ = version("waders-io")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "atomic_path",
    "count_geant4_events",
    "describe_root",
    "iter_geant4",
    "read_clusters",
    "read_geant4",
    "read_image",
    "reduce_skips",
    "resolve_range",
    "write_averaged_image",
    "write_geant4",
    "write_processed",
    "write_raw_image",
]


def __getattr__(name: str) -> Any:
    return lazy_getattr(globals(), __name__, name, _EXPORTS, {})


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
