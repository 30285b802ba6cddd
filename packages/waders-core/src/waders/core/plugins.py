"""Plug-in discovery through entry points.

Three entry-point groups make waders extensible without changing it:

``waders.processes``
    :class:`~waders.core.process.Process` subclasses; the entry-point name is the
    process name used in configurations.
``waders.monitors``
    Monitor elements of the data-quality monitor (waders-dqm).
``waders.commands``
    :mod:`click` commands added to the ``waders`` umbrella command (``ana``, ``sim``,
    ``dqm``, ``info``, ...).

A lab adds its own process by declaring, in its package's ``pyproject.toml``::

    [project.entry-points."waders.processes"]
    MyProcess = "mylab.processes:MyProcess"

Entry points are loaded lazily: listing names does not import the plug-in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from difflib import get_close_matches
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .errors import UnknownNameError, WadersError

__all__ = [
    "COMMANDS_GROUP",
    "MONITORS_GROUP",
    "PROCESSES_GROUP",
    "PYSIMDAMICM_PROCESSES",
    "RETIRED_PROCESSES",
    "Registry",
    "monitor_registry",
    "process_registry",
]

log = logging.getLogger(__name__)

PROCESSES_GROUP = "waders.processes"
MONITORS_GROUP = "waders.monitors"
COMMANDS_GROUP = "waders.commands"

#: pysimdamicm process names that no longer exist, with what replaced them.  An
#: *inactive* section with such a name is accepted (shipped configurations have one).
RETIRED_PROCESSES: dict[str, str] = {
    "SignalPatternRecognition": "merged into ClusterFinder (as in pysimdamicm 7); configure the threshold there",
}

#: Every process name of pysimdamicm 7.2's registry.  An *inactive* section naming one
#: that is not installed is skipped with a warning (a configuration written for the full
#: pysimdamicm catalogue still loads where only part of waders is installed); an active
#: one is an error.  Any other unknown name is an error (most likely a typo).
PYSIMDAMICM_PROCESSES: frozenset[str] = frozenset(
    {
        "CompressSkipperProcess", "CrossTalkProcess", "AddBKGComponent", "PedestalSubtractionProcess",
        "GaussianNoiseProcess", "GaussianFitProcess", "CalibrationProcess", "TwoDGaussProcess",
        "FitDarkCurrentProcess", "FitDarkCurrentPerRow", "CorrectElectronicColumnTransient", "FitDarkCurrentPerCol",
        "MeanPixelChargePerAxis", "EvalCTIProcess", "EvalHaloProcess", "ChargeLossPlot", "ChargeLossSkewnessProcess",
        "FFTNoisePlot", "RNvsNskipsPlot", "FitCalibrationConstant", "CreateFitsImage", "ClusterFinder",
        "BuildClusterMask", "ApplySelectionCuts", "Diffusion", "ContinuousReadout", "PixelizeSignal", "DarkCurrent",
        "ElectronicNoise", "PixelSaturation", "PasteClusterProcess",
    }
)  # fmt: skip


@dataclass
class _Entry:
    name: str
    entry_point: EntryPoint | None = None
    obj: Any = None

    @property
    def distribution(self) -> str:
        dist = getattr(self.entry_point, "dist", None)
        return dist.name if dist is not None else "(registered in code)"


class Registry:
    """Named plug-ins of one entry-point group, loaded on first use.

    Parameters
    ----------
    group : str
        Entry-point group name.
    what : str
        Word for the things registered, used in messages (``"process"``).
    """

    def __init__(self, group: str, what: str) -> None:
        self.group = group
        self.what = what
        self._entries: dict[str, _Entry] | None = None

    def _discover(self) -> dict[str, _Entry]:
        if self._entries is None:
            self._entries = {}
            for ep in entry_points(group=self.group):
                if ep.name in self._entries:
                    other = self._entries[ep.name].distribution
                    log.warning(
                        "%s %r is provided by both %s and %s; using the first",
                        self.what,
                        ep.name,
                        other,
                        ep.dist.name if ep.dist else "?",
                    )
                    continue
                self._entries[ep.name] = _Entry(ep.name, ep)
        return self._entries

    def register(self, obj: Any, name: str | None = None) -> Any:
        """Register ``obj`` in code (tests, notebooks); returns it so it can decorate."""
        key = name or getattr(obj, "name", None) or obj.__name__
        self._discover()[key] = _Entry(key, None, obj)
        return obj

    def unregister(self, name: str) -> None:
        """Remove a name registered with :meth:`register`."""
        self._discover().pop(name, None)

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._discover())

    def __contains__(self, name: str) -> bool:
        return name in self._discover()

    def key(self, name: str, domain: str | None = None) -> str:
        """Registry key of ``name``: ``NAME@DOMAIN`` when a domain-specific variant exists.

        A package can register a process under ``"ClusterFinder@sim"`` so that simulation
        configurations get its variant of a name that analysis also uses.
        """
        if domain is not None and f"{name}@{domain}" in self._discover():
            return f"{name}@{domain}"
        return name

    def has(self, name: str, domain: str | None = None) -> bool:
        """True if ``name`` (or its ``@domain`` variant) is registered."""
        return self.key(name, domain) in self._discover()

    def distribution(self, name: str) -> str:
        """Name of the distribution that provides ``name``."""
        return self._discover()[name].distribution

    def get(self, name: str, domain: str | None = None) -> Any:
        """Load and return the plug-in registered as ``name`` (its ``@domain`` variant first).

        Raises
        ------
        UnknownNameError
            If nothing is registered under that name (with a suggestion).
        WadersError
            If the plug-in is registered but fails to import.
        """
        entries = self._discover()
        entry = entries.get(self.key(name, domain))
        if entry is None:
            close = get_close_matches(name, list(entries), n=1, cutoff=0.8)
            if close:
                raise UnknownNameError(f"unknown {self.what} '{name}'", suggestion=close[0])
            if name in RETIRED_PROCESSES:
                raise UnknownNameError(f"{self.what} '{name}' no longer exists: {RETIRED_PROCESSES[name]}")
            listing = ", ".join(sorted(entries)) or "none"
            raise UnknownNameError(f"unknown {self.what} '{name}'", hint=f"installed: {listing}")
        if entry.obj is None:
            try:
                entry.obj = entry.entry_point.load()  # type: ignore[union-attr]
            except Exception as err:  # a broken plug-in must not look like a waders bug
                raise WadersError(
                    f"{self.what} '{name}' from {entry.distribution} failed to load: {err}",
                    hint="reinstall or fix that package",
                ) from err
        return entry.obj

    def load_all(self) -> dict[str, Any]:
        """Load every plug-in; ones that fail to load are logged and skipped."""
        loaded = {}
        for name in self.names():
            try:
                loaded[name] = self.get(name)
            except WadersError as err:
                log.warning("%s", err.one_line())
        return loaded


_PROCESSES = Registry(PROCESSES_GROUP, "process")
_MONITORS = Registry(MONITORS_GROUP, "monitor element")


def process_registry() -> Registry:
    """Return the registry of processes (entry-point group ``waders.processes``)."""
    return _PROCESSES


def monitor_registry() -> Registry:
    """Return the registry of DQM monitor elements (entry-point group ``waders.monitors``)."""
    return _MONITORS
