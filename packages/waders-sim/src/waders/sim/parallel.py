"""Simulation on several workers: split a Geant4 file into event ranges, simulate, merge.

Each task simulates a range of entries into a part file; the parts are merged, in event
order, into the same output a serial run writes.  Random draws are keyed by event id, so
the merged trees are identical to the serial ones whatever the number of workers.
Image-making processes (CreateFitsImage, PasteClusterProcess) fill images across events
and therefore run serially only.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.config import Config
from waders.core.errors import ConfigError, WadersError
from waders.core.executors import run_tasks
from waders.core.lazy import lazy_module
from waders.io.root import (
    ClustersTreeWriter,
    count_geant4_events,
    open_output,
    read_clusters,
    read_run_info,
    write_records_tree,
)
from waders.io.root.titles import TITLES

from .driver import SimOptions, SimResult, _geant4_config, _process_config, simulate_file

ak = lazy_module("awkward")

__all__ = ["simulate_file_parallel"]

_SERIAL_ONLY = ("CreateFitsImage", "PasteClusterProcess")
_TREES = (("clustersRec", "Nclusters"), ("clustersTrue", "Nclusters"), ("pixelizedEvent", "Ncollections"))


def _simulate_part(task: tuple[Path, Config, SimOptions]) -> dict[str, Any]:
    path, config, options = task
    result = simulate_file(path, config, options)
    return {"output": str(result.output), "events_read": result.events_read, "events_kept": result.events_kept,
            "clusters": result.clusters, "counters": result.counters}  # fmt: skip


def _merge_tree(out: Any, parts: list[Path], tree: str, count_branch: str) -> None:
    writer = None
    for part in parts:
        try:
            data = read_clusters(part, tree, count_branch=count_branch)
        except WadersError:  # the part has no such tree (no event produced one)
            continue
        if len(data) == 0:
            continue
        clusters = data["clusters"]
        groups = [f for f in clusters.fields if f != "pixels" and clusters[f].ndim == 3]  # e.g. pp (primaries)
        fields = [f for f in clusters.fields if f != "pixels" and f not in groups]
        pixels = clusters["pixels"] if "pixels" in clusters.fields else None
        if writer is None:
            title = TITLES.get(tree, "")
            writer = ClustersTreeWriter(out, tree, id_branch="event", count_branch=count_branch, title=title)
        lists = {group: clusters[group] for group in groups} or None
        writer.extend(ak.to_numpy(data["event"]).astype(np.int32), clusters[fields], pixels, lists)


def simulate_file_parallel(
    path: Path,
    config: Config,
    options: SimOptions,
    *,
    executor: str,
    workers: int,
    scheduler: str | None = None,
    events_per_task: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Simulate ``path`` on several workers (same output as :func:`~waders.sim.driver.simulate_file`).

    ``progress`` is called with the number of events read by each finished task (in this process).
    """
    busy = [p.name for p in config.steps if p.name in _SERIAL_ONLY]
    if busy:
        raise ConfigError(f"{', '.join(busy)} fills images across events", hint="run it with --executor serial")
    total = count_geant4_events(path)
    start = options.entry_start or 0
    stop = total if options.entry_stop is None else min(options.entry_stop, total)
    per_task = events_per_task or max(1, math.ceil((stop - start) / (4 * max(1, workers))))
    parts_dir = options.output_dir / f".parts_{path.stem}"
    tasks = [
        (
            path,
            config,
            replace(
                options, output_dir=parts_dir, entry_start=a, entry_stop=min(a + per_task, stop), prefix=f"part{i:05d}"
            ),
        )
        for i, a in enumerate(range(start, stop, per_task))
    ]

    def done(outcome: Any) -> None:
        if progress is not None and outcome.error is None:
            progress(outcome.value["events_read"])

    outcomes = run_tasks(_simulate_part, tasks, executor=executor, workers=workers, scheduler=scheduler, progress=done)
    failed = [o.error for o in outcomes if o.error is not None]
    if failed:
        shutil.rmtree(parts_dir, ignore_errors=True)  # no partial results left behind
        raise WadersError(f"{path}: {len(failed)} simulation task(s) failed: {failed[0]}")
    prefix = options.prefix or (
        config.sections["out_root"].prefix_root_name if "out_root" in config.sections else "waders_sim"
    )
    output = options.output_dir / f"{prefix}_{path.stem}.root"
    parts = [Path(o.value["output"]) for o in outcomes]
    result = SimResult(output=output)
    for outcome in outcomes:
        value = outcome.value
        result.events_read += value["events_read"]
        result.events_kept += value["events_kept"]
        result.clusters += value["clusters"]
        for reason, n in value["counters"].items():
            result.counters[reason] = result.counters.get(reason, 0) + n
    with open_output(output) as out:
        for tree, counter in _TREES:
            _merge_tree(out, parts, tree, counter)
        g4config = _geant4_config(path, read_run_info(path), result.clusters, config.detector.detector_name)
        write_records_tree(out, "geant4_config", g4config)
        write_records_tree(out, "process_config", _process_config(config, options.seed))
    shutil.rmtree(parts_dir, ignore_errors=True)
    return result
