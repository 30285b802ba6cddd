"""Python interface of waders-sim: :func:`simulate` a Geant4 file as ``waders sim`` does.

Examples
--------
>>> from waders.sim import simulate  # doctest: +SKIP
>>> sim = simulate("demo_g4.root", events=(0, 100))  # doctest: +SKIP
>>> sim.clusters.Energy  # doctest: +SKIP
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waders.core.config import Config, load_config
from waders.core.errors import ConfigError, InputFileError

__all__ = ["DEFAULT_SIMULATION", "SimulationResult", "simulate", "simulation_config"]

#: Configuration used by :func:`simulate` without one: pixelize the deposits and find the clusters.
DEFAULT_SIMULATION: dict[str, Any] = {
    "detector_response": {"Diffusion": {"active": 1}, "PixelizeSignal": {"active": 1}},
    "reconstruction": {"ClusterFinder": {"active": 1}},
}


def _override_strings(overrides: Mapping[str, Any]) -> list[str]:
    """``PROCESS__PARAM=VALUE`` or ``{"PROCESS.PARAM": VALUE}`` keywords -> ``--set`` strings."""
    out = []
    for key, value in overrides.items():
        dotted = key.replace("__", ".")
        if "." not in dotted:
            raise ConfigError(
                f"unknown keyword {key}={value!r}",
                hint="use PROCESS__PARAM=VALUE, e.g. Diffusion__active=1 or ElectronicNoise__noise_adu=2.0",
            )
        out.append(f"{dotted}={json.dumps(value)}")
    return out


def simulation_config(config: str | Path | Mapping[str, Any] | Config | None = None, **overrides: Any) -> Config:
    """The validated configuration :func:`simulate` runs (:data:`DEFAULT_SIMULATION` when None).

    ``overrides`` are ``PROCESS__PARAM=VALUE`` keywords (``Diffusion__active=0``), or
    ``**{"PROCESS.PARAM": VALUE}``, as ``--set PROCESS.PARAM=VALUE`` of ``waders sim``.
    """
    if isinstance(config, Config):
        if overrides:
            raise ConfigError("a validated Config cannot take overrides", hint="pass a path or dict to override values")
        return config
    source = DEFAULT_SIMULATION if config is None else config
    return load_config(source, kind="simulation", overrides=_override_strings(overrides))


@dataclass(repr=False)
class SimulationResult:
    """What :func:`simulate` returns.

    Attributes
    ----------
    input : Path
        The Geant4 file.
    config : Config
        The configuration that ran.
    events : ak.Array
        ``clustersRec`` read back: one record per event with ``event`` and its ``clusters``.
    true_events : ak.Array
        ``clustersTrue`` (the clusters of the noiseless signal), same layout.
    events_read, events_kept : int
        Events read from the input and simulated (not killed by a selection).
    counters : dict
        Events left out, per reason.
    files : dict
        Files kept (only with ``output_dir``): ``{"root": path, "images": [...], ...}``.
    images : list of SkipperImage
        Images written by CreateFitsImage/PasteClusterProcess, read back (raw samples in memory).
    """

    input: Path
    config: Config
    events: Any
    true_events: Any
    events_read: int = 0
    events_kept: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    images: list[Any] = field(default_factory=list)

    @property
    def clusters(self) -> Any:
        """Reconstructed clusters, one record per cluster with its ``event`` (energies in keV)."""
        return _flat(self.events)

    @property
    def true_clusters(self) -> Any:
        """Clusters of the noiseless signal, one record per cluster with its ``event``."""
        return _flat(self.true_events)

    def __repr__(self) -> str:
        images = f", {len(self.images)} image(s)" if self.images else ""
        from waders.core.image import short_repr

        return short_repr(
            f"<SimulationResult {self.input.name}: {self.events_read} events read, {self.events_kept} simulated, "
            f"{len(self.clusters)} clusters{images}; {' -> '.join(self.config.names)}>"
        )


def _flat(events: Any) -> Any:
    import awkward as ak
    import numpy as np

    counts = ak.to_numpy(ak.num(events["clusters"], axis=1))
    clusters = ak.flatten(events["clusters"], axis=1)
    return ak.with_field(clusters, np.repeat(ak.to_numpy(events["event"]), counts), "event")


def simulate(
    g4_path: str | Path,
    config: str | Path | Mapping[str, Any] | Config | None = None,
    *,
    seed: int = 0,
    events: tuple[int | None, int | None] | None = None,
    output_dir: str | Path | None = None,
    chunk_size: int = 20_000,
    **overrides: Any,
) -> SimulationResult:
    """Simulate the detector response to the events of a Geant4 file, as ``waders sim`` does.

    Parameters
    ----------
    g4_path : str or Path
        Geant4 (DAMICG4) ROOT file.
    config : path, dict, Config or None
        Simulation configuration (pysimdamicm's or waders' format); None runs
        :data:`DEFAULT_SIMULATION` (diffusion, pixelization, cluster finding).
    seed : int
        Seed of the random streams (the same seed gives the same output).
    events : (start, stop), optional
        Range of Geant4 entries (``--events START:STOP``).
    output_dir : path, optional
        Keep the output files there (``<prefix>_<stem>.root``, images); by default they
        are written to a temporary folder, read back and deleted.
    chunk_size : int
        Events read at a time (memory bound; the output does not depend on it).
    **overrides
        ``PROCESS__PARAM=VALUE`` (``Diffusion__active=0``, ``CreateFitsImage__active=1``)
        or ``**{"PROCESS.PARAM": VALUE}``.

    Returns
    -------
    SimulationResult
        Reconstructed and true clusters, counters and the images written.
    """
    from waders.io.fits import read_image
    from waders.io.root import read_clusters

    from .driver import SimOptions, simulate_file

    g4_path = Path(g4_path)
    if not g4_path.is_file():
        raise InputFileError(f"{g4_path}: no such file", hint="give the path of a Geant4 ROOT file")
    validated = simulation_config(config, **overrides)
    start, stop = events if events is not None else (None, None)
    with tempfile.TemporaryDirectory(prefix="waders-sim-") as tmp:
        out = Path(output_dir) if output_dir is not None else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        options = SimOptions(output_dir=out, seed=seed, chunk_size=chunk_size, entry_start=start, entry_stop=stop)
        run = simulate_file(g4_path, validated, options)
        image_paths = [p for written in run.extra_outputs.values() for p in written.get("images", [])]
        result = SimulationResult(
            g4_path,
            validated,
            read_clusters(run.output, "clustersRec"),
            read_clusters(run.output, "clustersTrue"),
            run.events_read,
            run.events_kept,
            dict(run.counters),
            images=[read_image(Path(p)) for p in image_paths],
        )
        if output_dir is not None:
            result.files = {"root": str(run.output), **run.extra_outputs}
    return result
