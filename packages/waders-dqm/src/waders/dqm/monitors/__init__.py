"""The monitor elements shipped with waders-dqm (entry-point group ``waders.monitors``).

Current pysimdamicm names, the 2021 legacy names (subclasses of the current ones, listed
in :data:`LEGACY_NAMES`), and pysimdamicm's names that never existed (registered as
unavailable so that its DQM file loads while they are inactive).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["LEGACY_NAMES", "MODULES", "builtin_monitors", "register_builtin"]

#: Module of every monitor element (name -> module under waders.dqm.monitors).
MODULES: dict[str, str] = {
    **dict.fromkeys(
        [
            "MEMeanPixelChargePerRow", "MESTDPixelChargePerRow", "MESlopeFromMeanPCPerRow",
            "MEInterceptFromMeanPCPerRow", "MEMedianPixelChargePerRow", "MEMADPixelChargePerRow",
            "MEMedianPixelChargePerCol", "MEMADPixelChargePerCol", "MEOVSMedianPixelChargePerRow",
            "MEOVSMADPixelChargePerRow", "MENpixQ1ePerCol", "MEMeanDCperRow", "MEDCslope", "MEDCintercept",
            "MESensorMedianperRow", "MESensorMADperRow", "MEImageMedianperCol", "MEImageMADperCol",
            "MEOverscanMedianperRow", "MEOverscanMADperRow",
        ],
        "charge",
    ),
    **dict.fromkeys(
        [
            "MEOVSPedestalMuPerRow", "MEOVSPedestalSigmaPerRow", "MEOVSPedestalMu", "MEOVSPedestalSigma",
            "MESinglePED", "MEPedestalMu", "MEPedestalSigma", "MEMeanPedestalSigma",
        ],
        "pedestal",
    ),
    **dict.fromkeys(
        ["MEPCD", "MEOVSPCD", "MEOverscanPCDMu", "MEOverscanPCDSigma", "MEOVSPCDMu", "MEOVSPCDSigma"], "pcd"
    ),
    **dict.fromkeys(
        [
            "MEFitDC", "MEFitDCMu0", "MEFitDCSigma", "MEFitDCLambda", "MEFitDCCalibration",
            "MEFitDCPerRow", "MEFitSigmaPerRow", "MEFitCalibrationPerRow", "MEFitMu0PerRow",
            "MEFitDCPerCol", "MEFitSigmaPerCol", "MEFitCalibrationPerCol", "MEFitMu0PerCol",
            "MEFitDCLambdaPerRow", "MEFitDCSigmaPerRow", "MEFitDCMu0PerRow",
        ],
        "darkcurrent",
    ),
    **dict.fromkeys(["MECCDEqualizedImage", "MECCDMeanImage", "MECCDStdImage", "MECCDCalImage"], "images"),
    **dict.fromkeys(["MEQmeanDiffSingleSkips", "MESTDSkipsPerCol", "MEReadoutnoiseNDCM", "MESkewnessCoeff"], "skips"),
    **dict.fromkeys(["MEDefectsMask", "MEMaskedPixels"], "defects"),
    **dict.fromkeys(["MEColTransient", "MEColTransientMu", "MEColTransientAmplitude"], "transient"),
    **dict.fromkeys(
        ["METempShift", "MEBaselineShift", "MEHorizontalClusters", "MENoisyImages", "MESigmaCutoffNoise",
         "MEPoorQualityData"],
        "other",
    ),
}  # fmt: skip

#: 2021 names (pysimdamicm presentation) and the current name each one is.
LEGACY_NAMES: dict[str, str] = {
    "MEMeanDCperRow": "MEMeanPixelChargePerRow",
    "MEDCslope": "MESlopeFromMeanPCPerRow",
    "MEDCintercept": "MEInterceptFromMeanPCPerRow",
    "MESensorMedianperRow": "MEMedianPixelChargePerRow",
    "MESensorMADperRow": "MEMADPixelChargePerRow",
    "MEImageMedianperCol": "MEMedianPixelChargePerCol",
    "MEImageMADperCol": "MEMADPixelChargePerCol",
    "MEOverscanMedianperRow": "MEOVSMedianPixelChargePerRow",
    "MEOverscanMADperRow": "MEOVSMADPixelChargePerRow",
    "MEPedestalMu": "MEOVSPedestalMu",
    "MEPedestalSigma": "MEOVSPedestalSigma",
    "MEMaskedPixels": "MEDefectsMask",
    "MEFitDCLambdaPerRow": "MEFitDCPerRow",
    "MEFitDCSigmaPerRow": "MEFitSigmaPerRow",
    "MEFitDCMu0PerRow": "MEFitMu0PerRow",
}


_CACHE: dict[str, type] = {}


def builtin_monitors() -> dict[str, type]:
    """Every monitor element of waders-dqm by name (imports the modules)."""
    if not _CACHE:
        for name, module in MODULES.items():
            _CACHE[name] = getattr(import_module(f"{__name__}.{module}"), name)
    return dict(_CACHE)


def register_builtin(registry: Any = None) -> None:
    """Register the shipped MEs that the entry points do not provide (before ``pip install``)."""
    from waders.core.plugins import monitor_registry

    registry = registry or monitor_registry()
    for name, cls in builtin_monitors().items():
        if name not in registry:
            registry.register(cls, name)


def __getattr__(name: str) -> Any:
    """Lazy access to the ME classes: ``waders.dqm.monitors.MEFitDC``."""
    if name in MODULES:
        return builtin_monitors()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
