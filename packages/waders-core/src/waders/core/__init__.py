"""waders-core: units, configuration, containers, processes and the pipeline of waders.

The public API is re-exported here::

    from waders.core import Param, Process, Pipeline, RunContext, SkipperImage, load_config
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

# Names are imported on first use, so that 'waders --help' does not pay for numpy and awkward.
_EXPORTS = {
    "units": ".units",
    "Config": ".config",
    "load_config": ".config",
    "Detector": ".detector",
    "ConfigError": ".errors",
    "DataError": ".errors",
    "InputFileError": ".errors",
    "ProcessError": ".errors",
    "UnitError": ".errors",
    "UnknownNameError": ".errors",
    "WadersError": ".errors",
    "AmplifierGeometry": ".geometry",
    "ImageGeometry": ".geometry",
    "HitCollection": ".hits",
    "RAW": ".image",
    "Amplifier": ".image",
    "SkipperImage": ".image",
    "iter_row_blocks": ".image",
    "Configurable": ".parameters",
    "Param": ".parameters",
    "Pipeline": ".pipeline",
    "Provenance": ".pipeline",
    "RunContext": ".pipeline",
    "monitor_registry": ".plugins",
    "process_registry": ".plugins",
    "Process": ".process",
    "Product": ".products",
}

if TYPE_CHECKING:  # pragma: no cover
    from . import units
    from .config import Config, load_config
    from .detector import Detector
    from .errors import ConfigError, DataError, InputFileError, ProcessError, UnitError, UnknownNameError, WadersError
    from .geometry import AmplifierGeometry, ImageGeometry
    from .hits import HitCollection
    from .image import RAW, Amplifier, SkipperImage, iter_row_blocks
    from .parameters import Configurable, Param
    from .pipeline import Pipeline, Provenance, RunContext
    from .plugins import monitor_registry, process_registry
    from .process import Process
    from .products import Product


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'waders.core' has no attribute {name!r}")
    from importlib import import_module

    module = import_module(_EXPORTS[name], __name__)
    value = module if name == "units" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


try:
    __version__ = version("waders-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "RAW",
    "Amplifier",
    "AmplifierGeometry",
    "Config",
    "ConfigError",
    "Configurable",
    "DataError",
    "Detector",
    "HitCollection",
    "ImageGeometry",
    "InputFileError",
    "Param",
    "Pipeline",
    "Process",
    "ProcessError",
    "Product",
    "Provenance",
    "RunContext",
    "SkipperImage",
    "UnitError",
    "UnknownNameError",
    "WadersError",
    "__version__",
    "iter_row_blocks",
    "load_config",
    "monitor_registry",
    "process_registry",
    "units",
]
