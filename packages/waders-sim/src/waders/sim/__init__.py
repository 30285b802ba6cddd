"""waders-sim: detector-response simulation of Geant4 events in skipper CCDs.

From Python::

    from waders.sim import simulate

    sim = simulate("demo_g4.root", events=(0, 100))  # diffusion, pixelization, clusters
    sim.clusters.Energy  # keV, one entry per cluster

Every simulation process is importable from here (``from waders.sim import Diffusion``);
names are loaded on first use from the entry points of waders-sim (``ClusterFinder`` is
its simulation variant), so ``import waders.sim`` stays cheap.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from waders.core.lazy import entry_point_classes, lazy_getattr

try:
    __version__ = version("waders-sim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Public names of the Python interface -> module.
_API = {
    "simulate": ".api",
    "simulation_config": ".api",
    "SimulationResult": ".api",
    "DEFAULT_SIMULATION": ".api",
}
#: Simulation processes of waders-sim: name -> "module:Class" (its entry points, the one list).
PROCESSES = entry_point_classes("waders-sim")

if TYPE_CHECKING:  # pragma: no cover
    from .api import DEFAULT_SIMULATION, SimulationResult, simulate, simulation_config

__all__ = ["DEFAULT_SIMULATION", "SimulationResult", "__version__", "simulate", "simulation_config"]
__all__ += sorted(PROCESSES)


def __getattr__(name: str) -> Any:
    return lazy_getattr(globals(), __name__, name, _API, PROCESSES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
