"""Detector constants: geometry and physics constants that pysimdamicm kept in globals.

They live in the configuration (the ``detector`` section, or pysimdamicm's ``CF``
section of simulation files) so that every run records the values it used.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .kinds import Float, Int, ListOf, Optional
from .parameters import Configurable, Param

__all__ = ["ANALYSIS_PAIR_ENERGY", "SIMULATION_PAIR_ENERGY", "Detector"]

#: Mean energy per electron-hole pair used by analysis when not configured (pysimdamicm code default).
ANALYSIS_PAIR_ENERGY = 3.74
#: Mean energy per electron-hole pair used by simulation when not configured (pysimdamicm simulation JSON).
SIMULATION_PAIR_ENERGY = 3.77


class Detector(Configurable):
    """Detector geometry and conversion constants (section ``detector`` or ``CF``)."""

    ccd_shape = Param([4000, 6000], ListOf(Int(min=1), length=2), unit="pixel", doc="active area [rows, cols]")
    ccd_pixel_size_x = Param(0.015, Float(positive=True), unit="mm", doc="pixel pitch along x (columns)")
    ccd_pixel_size_y = Param(0.015, Float(positive=True), unit="mm", doc="pixel pitch along y (rows)")
    ccd_thickness = Param(0.675, Float(positive=True), unit="mm", doc="sensor thickness")
    n_cols_prescan = Param(0, Int(min=0), unit="pixel", doc="serial prescan added to simulated images")
    n_cols_overscan = Param(0, Int(min=0), unit="pixel", doc="serial overscan added to simulated images")
    n_rows_prescan = Param(0, Int(min=0), unit="pixel", doc="parallel prescan added to simulated images")
    n_rows_overscan = Param(0, Int(min=0), unit="pixel", doc="parallel overscan added to simulated images")
    e2eV = Param(
        SIMULATION_PAIR_ENERGY,
        Float(positive=True),
        unit="eV",
        doc="mean energy per electron-hole pair (analysis default 3.74 eV, simulation 3.77 eV)",
    )
    ADC2eV = Param(None, Optional(Float(positive=True)), unit="eV", doc="eV per ADU of simulated images in ADU")
    detector_name = Param("CCDSensor_PV", doc="Geant4 sensitive-volume name")
    img_exp_time = Param(8.64e13, Float(min=0), unit="s", doc="time window that splits a Geant4 event into images")
    invert_ccd_z_values = Param(True, doc="Geant4 depth is from the back: z = thickness - z_G4")
    z_offset = Param(None, Optional(Float()), unit="mm", doc="keep hits with z_offset <= z <= z_offset + thickness")

    ignored_keys: ClassVar[dict[str, str]] = {}

    @classmethod
    def label(cls) -> str:
        return "detector"

    @classmethod
    def for_domain(cls, domain: str, mapping: dict[str, Any] | None = None) -> Detector:
        """Build the detector constants with the defaults of ``"ana"`` or ``"sim"``."""
        detector = cls(e2eV=ANALYSIS_PAIR_ENERGY) if domain == "ana" else cls()
        for key, value in (mapping or {}).items():
            detector._set(key, value)
        return detector
