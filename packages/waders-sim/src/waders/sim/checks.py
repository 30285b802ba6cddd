"""Checks of a whole simulation chain, made before any event is read.

``waders sim --check`` and every simulation run call :func:`check_chain`, so a chain the
run would refuse half-way (a noise process without a reconstruction threshold, a process
without PixelizeSignal before it, ...) is reported by ``--check`` already.
"""

from __future__ import annotations

from waders.core.config import Config
from waders.core.errors import ConfigError

__all__ = ["check_chain"]

#: Processes that work on the pixelized signal.
_NEEDS_PIXELS = ("DarkCurrent", "ElectronicNoise", "PixelSaturation", "CreateFitsImage", "PasteClusterProcess")


def check_chain(config: Config) -> None:
    """Raise ConfigError for a simulation chain that a run would refuse.

    Parameters
    ----------
    config : Config
        Validated simulation configuration.

    Raises
    ------
    ConfigError
        No active process; a process needing PixelizeSignal without it; DarkCurrent or
        ElectronicNoise with ClusterFinder but no ``spr_threshold``; the two noise processes
        in different modes; PixelSaturation without ``detector.ADC2eV``; PasteClusterProcess
        without ``blank_dir``.
    """
    steps = {process.name: process for process in config.steps}
    if not steps:
        raise ConfigError("no simulation process is active", hint="set active: 1 on PixelizeSignal and ClusterFinder")
    if "PixelizeSignal" not in steps:
        for name in (*_NEEDS_PIXELS, "ClusterFinder"):
            if name in steps:
                raise ConfigError(
                    f"{name} needs PixelizeSignal earlier in the chain", hint="set PixelizeSignal.active=1"
                )
    noise = [steps[name] for name in ("DarkCurrent", "ElectronicNoise") if name in steps]
    finder = steps.get("ClusterFinder")
    if noise and finder is not None and finder.spr_threshold is None:
        raise ConfigError(
            "ClusterFinder.spr_threshold is needed when noise processes are active",
            hint="set it in electrons, e.g. 4 sigma of the readout noise (--set ClusterFinder.spr_threshold=1.0)",
        )
    if len(noise) == 2 and noise[0].mode != noise[1].mode:
        raise ConfigError(
            f"DarkCurrent.mode is {noise[0].mode!r} but ElectronicNoise.mode is {noise[1].mode!r}",
            hint="use the same mode for DarkCurrent and ElectronicNoise",
        )
    if "PixelSaturation" in steps and config.detector.ADC2eV is None:
        raise ConfigError(
            "PixelSaturation needs detector.ADC2eV (eV per ADU) to convert the saturation level",
            hint="set ADC2eV in the CF (detector) section, e.g. 0.72",
        )
    paste = steps.get("PasteClusterProcess")
    if paste is not None and not paste.blank_dir:
        raise ConfigError(
            "PasteClusterProcess.blank_dir is required", hint="a blank FITS file, directory or glob pattern"
        )
