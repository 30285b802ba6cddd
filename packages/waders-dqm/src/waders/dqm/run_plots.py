"""The plots of a run: which image plots are drawn (the policy), the run-level plots, late problem plots."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from waders.core.paths import safe_name

from .monitor import MonitorElement
from .pool import Pool
from .quality import ReferenceStats

__all__ = [
    "image_plot_path",
    "plot_old_problems",
    "plot_run_level",
    "preload_plotting",
    "same_data",
    "wants_plot",
]

log = logging.getLogger(__name__)


def image_plot_path(stem: str, me: str, key: str) -> str:
    """``me/<stem>_<ME>_<amplifier>.png`` (relative to the run directory)."""
    return f"me/{safe_name(stem)}_{safe_name(me)}_{safe_name(key)}.png"


def wants_plot(me: MonitorElement, status: str, policy: str, full: bool) -> bool:
    """Whether an image entry of ``me`` with ``status`` is plotted under ``policy`` (``full``: ``--image-hr``)."""
    if policy == "none" or not me.wants_image_plot():
        return False
    if me.kind == "image" or full or policy == "all":
        return True
    return status in ("warn", "fail")


def same_data(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> bool:
    """Whether an ME entry has the data and status of its earlier version (its plot can be kept)."""
    if not previous:
        return False
    keys = ("value", "error", "x", "y", "yerr", "yfit")
    return all(entry.get(k) == previous.get(k) for k in keys) and (entry.get("quality") or {}).get("status") == (
        previous.get("quality") or {}
    ).get("status")


def preload_plotting() -> None:
    """Import matplotlib before worker processes fork (they then need not import it each)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.figure


def _monitor_for(name: str, monitors: Mapping[str, MonitorElement]) -> MonitorElement | None:
    if name in monitors:
        return monitors[name]
    from .monitors import builtin_monitors

    cls = builtin_monitors().get(name)
    return cls() if cls is not None else None


def _draw_run_plot(task: tuple[MonitorElement, dict[str, Any], Path, str, dict[str, Any]]) -> bool:
    from .plots import plot_run

    me, per_amp, path, label, references = task
    return plot_run(me, per_amp, path, label=label, references=references) is not None


def _draw_image_plot(task: tuple[MonitorElement, dict[str, Any], Path, str, dict[str, Any] | None]) -> bool:
    me, entry, path, label, reference = task
    return me.plot(entry, path, label=label, reference=reference) is not None


def plot_run_level(
    run_dir: Path,
    document: dict[str, Any],
    previous: Mapping[str, Any] | None,
    monitors: Mapping[str, MonitorElement],
    references: Mapping[tuple[str, str], ReferenceStats],
    pool: Pool,
) -> None:
    """Draw ``me/run_<ME>.png`` for the MEs whose run-level data (or reference) changed."""
    old_level = (previous or {}).get("run_level") or {}
    same_reference = (previous or {}).get("reference_run") == document.get("reference_run")
    tasks, names = [], []
    for name, per_amp in document["run_level"].items():
        relative = f"me/run_{safe_name(name)}.png"
        old = old_level.get(name)
        unchanged = (
            same_reference
            and old is not None
            and set(old) == set(per_amp)
            and all(
                old[a].get("x") == e["x"]
                and old[a].get("y") == e["y"]
                and old[a].get("yerr") == e["yerr"]
                and (old[a].get("quality") or {}).get("status") == e["quality"]["status"]
                and old[a].get("plot") == relative
                for a, e in per_amp.items()
            )
            and (run_dir / relative).exists()
        )
        if unchanged:
            for entry in per_amp.values():
                entry["plot"] = relative
            continue
        me = _monitor_for(name, monitors)
        if me is None:
            continue
        refs = {a: references[(name, a)].to_plot() for a in per_amp if (name, a) in references}
        tasks.append((me, per_amp, run_dir / relative, f"run {document['run']}", refs))
        names.append(name)
    for name, (drawn, error) in zip(names, pool.map(_draw_run_plot, tasks), strict=True):
        if error is not None:
            log.warning("run plot of %s: %s", name, error)
        for entry in document["run_level"][name].values():
            entry["plot"] = f"me/run_{safe_name(name)}.png" if drawn else None


def plot_old_problems(
    run_dir: Path,
    document: dict[str, Any],
    processed: set[str],
    monitors: Mapping[str, MonitorElement],
    references: Mapping[tuple[str, str], ReferenceStats],
    policy: str,
    pool: Pool,
) -> None:
    """Plots of images added earlier whose entries became problems (e.g. with a new reference run)."""
    tasks, entries = [], []
    for stem, image in document["images"].items():
        if stem in processed:
            continue
        for name, per_amp in image.get("me", {}).items():
            me = _monitor_for(name, monitors)
            if me is None or me.kind == "image":
                continue
            for key, entry in per_amp.items():
                if entry.get("plot") or not wants_plot(me, entry["quality"]["status"], policy, False):
                    continue
                ref = references.get((name, key))
                relative = image_plot_path(stem, name, key)
                label = f"{stem}, amplifier {key}"
                tasks.append((me, entry, run_dir / relative, label, ref.to_plot() if ref else None))
                entries.append((entry, relative))
    for (entry, relative), (drawn, _) in zip(entries, pool.map(_draw_image_plot, tasks), strict=True):
        entry["plot"] = relative if drawn else None
