"""Geant4 volumes in ``geant4_config``: the source volume (``pp_vol_*``) and the CCD (``ccd_*``).

DAMICG4 files list every volume of the geometry in RunInfo: ``concatedVolumeNames``
(';'-joined) with the parallel arrays ``volumeDensity`` (g/cm3), ``volumeMass`` (kg),
``volumeVolume`` (cm3) and ``volumeSurface`` (cm2).  A volume name matches its entries by
exact name or as ``<name>_<digits>`` (Geant4 replicas, ``CCDSensor_PV_0``, ...), pysimdamicm's
rule (spec C.2).

* ``pp_vol_*`` (spec C.14): the volume(s) of ``simulatedVolume`` where the primaries were
  generated; ``pp_vol_n`` matching volumes, their ';'-joined names, mass, volume and surface
  summed and density averaged (pysimdamicm stored arrays when several matched).
* ``ccd_mass`` (kg), ``ccd_vol`` (cm3), ``ccd_density`` (g/cm3), ``ccd_surface`` (cm2,
  truncated to an int as pysimdamicm did): **one** CCD, i.e. the sensitive volume named by
  the detector's ``detector_name`` (default ``CCDSensor_PV``, the DAMICG4 name; set ``CF.detector_name``
  for geometries that name it otherwise).  Several CCDs are replicas of one sensor: the values
  are the mean over the matching volumes, and ``ccd_vol_n`` counts them (the total sensitive
  mass is ``ccd_mass x ccd_vol_n``).  A CCD volume that is not listed gives zeros with
  ``ccd_vol_n = 0`` (pysimdamicm: zeros), and a warning.

Files without ``concatedVolumeNames`` (e.g. written by ``waders dm`` or by hand) get no
``pp_vol_*``/``ccd_*`` branches.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

__all__ = ["ccd_volume", "matching_volumes", "source_volume"]

log = logging.getLogger(__name__)

#: RunInfo arrays parallel to ``concatedVolumeNames``: short name -> branch.
_PROPERTIES = (("density", "volumeDensity"), ("mass", "volumeMass"), ("volume", "volumeVolume"),
               ("surface", "volumeSurface"))  # fmt: skip


def matching_volumes(names: str, volume: str) -> tuple[list[str], np.ndarray]:
    """Volume names of ``names`` (';'-joined) and which of them are ``volume`` or ``volume_<digits>``."""
    listed = names.split(";")
    pattern = re.compile(rf"{re.escape(volume)}(_\d+)?")
    return listed, np.array([pattern.fullmatch(n) is not None for n in listed], dtype=bool)


def _selected(run_info: dict[str, Any], source: str, listed: list[str], match: np.ndarray) -> np.ndarray:
    values = np.asarray(run_info.get(source, []), dtype=np.float64).ravel()
    return values[match] if values.size == len(listed) else np.zeros(0)


def source_volume(run_info: dict[str, Any]) -> dict[str, Any]:
    """``NCCDs``, ``pp_gps``, ``pp_ion`` and ``pp_vol_*`` of a RunInfo entry (module docstring)."""
    out: dict[str, Any] = {}
    for name, keys in (("NCCDs", ("NCCDs", "NCCD")), ("pp_gps", ("primaryParticle",)), ("pp_ion", ("primaryIon",))):
        value = next((run_info[k] for k in keys if k in run_info), None)
        if value is not None:
            out[name] = value.item() if isinstance(value, np.generic) else value
    volume = run_info.get("simulatedVolume")
    names = run_info.get("concatedVolumeNames")
    if not isinstance(volume, str) or not isinstance(names, str):
        return out
    listed, match = matching_volumes(names, volume)
    out["pp_vol_n"] = int(match.sum())
    out["pp_vol_pvnames"] = ";".join(n for n, m in zip(listed, match, strict=True) if m)
    for key, source in _PROPERTIES:
        selected = _selected(run_info, source, listed, match)
        if key == "density":
            out[f"pp_vol_{key}"] = float(selected.mean()) if selected.size else 0.0
        else:
            out[f"pp_vol_{key}"] = float(selected.sum())
    return out


def ccd_volume(run_info: dict[str, Any], detector_name: str) -> dict[str, Any]:
    """``ccd_mass``, ``ccd_vol``, ``ccd_density``, ``ccd_surface`` and ``ccd_vol_n`` of one CCD (module docstring).

    Parameters
    ----------
    run_info : dict
        The RunInfo entry of the Geant4 file.
    detector_name : str
        Geant4 name of the CCD's sensitive volume (``Detector.detector_name``).
    """
    names = run_info.get("concatedVolumeNames")
    if not isinstance(names, str):
        return {}
    listed, match = matching_volumes(names, detector_name)
    if not match.any():
        log.warning("geant4_config: no volume %r among the Geant4 volumes; ccd_* are 0", detector_name)
    out: dict[str, Any] = {"ccd_vol_n": int(match.sum())}
    for key, source in _PROPERTIES:
        selected = _selected(run_info, source, listed, match)
        value = float(selected.mean()) if selected.size else 0.0
        branch = {"volume": "ccd_vol"}.get(key, f"ccd_{key}")
        out[branch] = int(value) if key == "surface" else value
    return out
