"""The pipeline: run configured processes in order, timed, with provenance.

:class:`Pipeline` runs a list of :class:`~waders.core.process.Process` instances
on one data container.  It times every step, logs it, and attaches a
:class:`Provenance` record (process names, parameters in declared units, package
versions) to the container, which writers put into FITS headers and ROOT trees.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .detector import Detector
from .process import Process
from .versions import waders_versions

if TYPE_CHECKING:
    from .config import Config

__all__ = ["Pipeline", "Provenance", "RunContext", "StepRecord"]

log = logging.getLogger(__name__)


def _stable_int(text: str) -> int:
    """Return a 32-bit integer from a string, the same in every Python process (unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@dataclass
class RunContext:
    """What a process needs besides its data and parameters.

    Parameters
    ----------
    seed : int, optional
        Seed of all random streams; None draws fresh entropy (not reproducible).
    detector : Detector
        Detector constants.
    output_dir : Path, optional
        Output directory of the driving command (processes do not write files: the
        command's writers do, from the processes' declared products).
    save_plots : bool
        Whether processes should draw their plots.
    options : dict
        Free-form options of the driving command.
    figures : dict
        Figures drawn by the processes: ``{process name: {figure name: matplotlib Figure}}``
        (:meth:`add_figure`); the driving command writes or returns them.
    """

    seed: int | None = None
    detector: Detector = field(default_factory=Detector)
    output_dir: Path | None = None
    save_plots: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_figure(self, process: str, name: str, figure: Any) -> None:
        """Keep a figure drawn by ``process`` under ``name`` (a later one of the same name replaces it)."""
        self.figures.setdefault(process, {})[name] = figure

    def __post_init__(self) -> None:
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy % (2**63))

    def rng(self, *keys: str | int) -> np.random.Generator:
        """Return an independent random generator for a (process, item, ...) key.

        The stream depends only on the seed and the keys, never on the order in
        which generators are requested or on the number of workers: a process
        asks for ``context.rng(self.name, event_id)`` and always gets the same stream.
        """
        spawn_key = tuple(k if isinstance(k, int) else _stable_int(str(k)) for k in keys)
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=spawn_key))


@dataclass
class StepRecord:
    """One executed step: process name, parameters (declared units) and wall time (s)."""

    process: str
    parameters: dict[str, Any]
    seconds: float = 0.0


@dataclass
class Provenance:
    """How a product was made: the steps, the package versions, the time and the seed."""

    steps: list[StepRecord] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=waders_versions)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    seed: int | None = None
    config: str | None = None

    @property
    def timings(self) -> dict[str, float]:
        """Wall time in seconds per process (summed if a process ran twice)."""
        out: dict[str, float] = {}
        for step in self.steps:
            out[step.process] = out.get(step.process, 0.0) + step.seconds
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible representation."""
        return {
            "created": self.created,
            "versions": dict(self.versions),
            "seed": self.seed,
            "config": self.config,
            "steps": [
                {"process": s.process, "parameters": s.parameters, "seconds": round(s.seconds, 6)} for s in self.steps
            ],
        }

    def header_cards(self) -> list[tuple[str, Any, str]]:
        """FITS header cards (key, value, comment) describing the provenance."""
        cards: list[tuple[str, Any, str]] = [("WADERS", self.versions.get("waders-core", "?"), "waders-core version")]
        for dist, version in sorted(self.versions.items()):
            if dist != "waders-core":
                cards.append((f"HIERARCH WADERS {dist.upper()}", version, f"{dist} version"))
        cards.append(("WDATE", self.created, "UTC time of processing"))
        if self.seed is not None:
            cards.append(("WSEED", self.seed, "random seed"))
        for i, step in enumerate(self.steps, start=1):
            cards.append((f"WPROC{i}", step.process, "process run"))
        return cards


class Pipeline:
    """An ordered list of processes.

    Parameters
    ----------
    processes : sequence of Process
        The steps, in execution order.
    """

    def __init__(self, processes: Sequence[Process]) -> None:
        self.processes = list(processes)

    @classmethod
    def from_config(cls, config: Config) -> Pipeline:
        """Build the pipeline of the active processes of a validated configuration."""
        return cls(config.processes)

    def __iter__(self) -> Iterable[Process]:
        return iter(self.processes)

    def __len__(self) -> int:
        return len(self.processes)

    @property
    def names(self) -> list[str]:
        """Process names in order."""
        return [p.name for p in self.processes]

    def run(self, data: Any, context: RunContext | None = None) -> Any:
        """Run every process on ``data`` and attach the provenance to it.

        Parameters
        ----------
        data : SkipperImage or HitCollection
            The container; processes add their outputs to it.
        context : RunContext, optional
            Seed, detector constants, output options.

        Returns
        -------
        object
            ``data``, with ``data.provenance`` set when the container allows it.
        """
        context = context or RunContext()
        provenance = Provenance(seed=context.seed)
        label = getattr(data, "label", type(data).__name__)
        for process in self.processes:
            log.debug("%s: running %s", label, process.name)
            start = time.perf_counter()
            process.run(data, context)
            seconds = time.perf_counter() - start
            provenance.steps.append(StepRecord(process.name, process.to_dict(), seconds))
            log.info("%s: %s done in %.3f s", label, process.name, seconds)
        try:
            data.provenance = provenance
        except AttributeError:
            log.debug("container %s does not keep provenance", type(data).__name__)
        return data
