"""Conversion constants of an analysis in ``process_config``: ``ADC2e``, ``ADC2eV``, ``img_exp_time``.

pysimdamicm wrote its global unit constants into every ``process_config`` (spec B.14.2):
``ADC2e`` (ADU per electron, the gain used for cluster energies), ``ADC2eV`` (eV per ADU) and
``img_exp_time`` (s).  waders calibrates each amplifier with its own gain, so:

* ``ADC2e`` = the **mean** over the amplifiers of the gain CalibrationProcess used
  (``gain_adu_per_e``; FitCalibrationConstant's gains when CalibrationProcess did not run);
  the per-amplifier gains are in ``info`` (``<A>_gain``).  Without a gain (no calibration
  in the sequence) ``ADC2e`` and ``ADC2eV`` are not written;
* ``ADC2eV`` = ``e2eV / ADC2e``;
* ``img_exp_time`` = the detector's ``img_exp_time`` (``CF.img_exp_time``; by default
  1e9 days = 8.64e13 s as in pysimdamicm; it only splits Geant4 events in simulations).

With ``--oroot`` the one ``process_config`` entry holds the constants of the first image.
"""

from __future__ import annotations

import math
from typing import Any

from waders.core.detector import Detector
from waders.core.image import SkipperImage

__all__ = ["analysis_constants", "mean_gain"]

#: Processes whose per-amplifier ``gain_adu_per_e`` is the gain of the analysis, in order of preference.
_GAIN_SOURCES = ("CalibrationProcess", "FitCalibrationConstant")


def mean_gain(image: SkipperImage) -> float | None:
    """Mean gain (ADU/e-) over the amplifiers of an analysed image, or None without one (module docstring)."""
    for process in _GAIN_SOURCES:
        gains = [amp.results.get(process, {}).get("gain_adu_per_e") for amp in image.amplifiers.values()]
        usable = [float(g) for g in gains if isinstance(g, int | float) and math.isfinite(g) and g > 0]
        if usable:
            return sum(usable) / len(usable)
    return None


def analysis_constants(image: SkipperImage, detector: Detector) -> dict[str, Any]:
    """``ADC2e`` (ADU/e-), ``ADC2eV`` (eV/ADU) and ``img_exp_time`` (s) of one analysed image."""
    columns: dict[str, Any] = {"img_exp_time": float(detector.img_exp_time)}
    gain = mean_gain(image)
    if gain is not None:
        columns.update(ADC2e=gain, ADC2eV=float(detector.e2eV) / gain)
    return columns
