"""waders-ana: analysis of skipper-CCD images (compression, pedestal, calibration, fits, clusters).

From Python::

    from waders.ana import analyse

    result = analyse("image.fits")  # the default chain of 'waders ana'
    result.amplifiers  # numbers per amplifier
    result.plot("pcd", amplifier="CCD_A")  # a matplotlib Figure

Every analysis process is importable from here (``from waders.ana import
PedestalSubtractionProcess``); names are loaded on first use from the entry points of
waders-ana, so ``import waders.ana`` stays cheap.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from waders.core.lazy import entry_point_classes, lazy_getattr

try:
    __version__ = version("waders-ana")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Public names of the Python interface -> module.
_API = {
    "analyse": ".api",
    "analysis_config": ".api",
    "AnalysisResult": ".result",
    "AmplifierResult": ".result",
    "summary_schema": ".schema",
    "SUMMARY_FORMAT": ".schema",
}
#: Analysis processes of waders-ana: name -> "module:Class" (its entry points, the one list).
PROCESSES = entry_point_classes("waders-ana")

if TYPE_CHECKING:  # pragma: no cover
    from .api import analyse, analysis_config
    from .result import AmplifierResult, AnalysisResult
    from .schema import SUMMARY_FORMAT, summary_schema

__all__ = [
    "SUMMARY_FORMAT",
    "AmplifierResult",
    "AnalysisResult",
    "__version__",
    "analyse",
    "analysis_config",
    "summary_schema",
]
__all__ += sorted(PROCESSES)


def __getattr__(name: str) -> Any:
    return lazy_getattr(globals(), __name__, name, _API, PROCESSES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
