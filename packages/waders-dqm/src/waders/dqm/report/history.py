"""The history page (``report/history.html``): trends of the main quantities across runs.

Noise, gain and dark current come from ``store.history(ME, amplifier)`` (one value per
image); the masked fraction and the run status from the run documents
(``store.get_run``).  The document being reported always wins over what the store holds
for its run, so the page is right even before the store is updated.  Without a store,
the run documents next to the run directory (``<outdir>/runNNN/summary_runNNN.json``)
are used.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .common import PlotCache, as_mapping, data_hash, format_value, status_of
from .templating import render
from .view import run_dir_name

__all__ = [
    "TRENDS",
    "DirectoryStore",
    "HistoryData",
    "RunStore",
    "Trend",
    "collect_history",
    "render_history",
    "write_history",
]

log = logging.getLogger(__name__)

Point = tuple[int, Any, float, float | None]


class RunStore(Protocol):
    """What the report needs from the DQM store."""

    def runs(self) -> list[int]:
        """Run numbers in the store."""

    def get_run(self, run: int) -> Mapping[str, Any]:
        """The run document of ``run``."""

    def history(self, me: str, amplifier: str) -> list[tuple[int, Any, Any, Any]]:
        """(run, image, value, error) of every stored image value of an ME and amplifier."""


@dataclass(frozen=True)
class Trend:
    """A quantity followed across runs.

    Attributes
    ----------
    key : str
        Short name (file names, HTML ids).
    label : str
        Axis and column label.
    candidates : tuple of str
        ME names that measure it, most preferred first; the first one with data is used.
    """

    key: str
    label: str
    candidates: tuple[str, ...]


#: The quantities of the history page (masked fraction comes from the run documents).
TRENDS: tuple[Trend, ...] = (
    Trend("noise", "noise", ("MEFitDCSigma", "MEOVSPedestalSigma")),
    Trend("gain", "gain", ("MEFitDCCalibration",)),
    Trend("dark_current", "dark current", ("MEFitDCLambda",)),
)


def document_points(document: Mapping[str, Any], me: str, amplifier: str) -> list[Point]:
    """(run, image, value, error) of the image values of one ME and amplifier in a run document."""
    run = int(document["run"])
    out: list[Point] = []
    for entry in as_mapping(document.get("images")).values():
        item = as_mapping(as_mapping(as_mapping(as_mapping(entry).get("me")).get(me)).get(amplifier))
        value = item.get("value")
        if isinstance(value, int | float) and math.isfinite(value):
            error = item.get("error")
            out.append(
                (run, as_mapping(entry).get("image"), float(value), error if isinstance(error, int | float) else None)
            )
    return out


class DirectoryStore:
    """The :class:`RunStore` methods over the run documents of a DQM output directory.

    Parameters
    ----------
    outdir : Path
        Directory holding ``runNNN/summary_runNNN.json``.
    """

    _PATTERN = re.compile(r"run(\d{3,})")

    def __init__(self, outdir: Path) -> None:
        self.outdir = Path(outdir)
        self._documents: dict[int, Mapping[str, Any]] = {}
        if not self.outdir.is_dir():
            return
        for directory in sorted(self.outdir.iterdir()):
            match = self._PATTERN.fullmatch(directory.name)
            summary = directory / f"summary_{directory.name}.json"
            if not match or not summary.is_file():
                continue
            try:
                document = json.loads(summary.read_text())
                self._documents[int(document["run"])] = document
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("skipping unreadable run document %s", summary)

    def runs(self) -> list[int]:
        return sorted(self._documents)

    def get_run(self, run: int) -> Mapping[str, Any]:
        return self._documents[run]

    def history(self, me: str, amplifier: str) -> list[tuple[int, Any, Any, Any]]:
        return [p for run in self.runs() for p in document_points(self._documents[run], me, amplifier)]


class _WithCurrent:
    """A store seen with the current run's document in place of what it holds for that run."""

    def __init__(self, store: RunStore, document: Mapping[str, Any]) -> None:
        self.store = store
        self.document = document
        self.run = int(document["run"])

    def runs(self) -> list[int]:
        return sorted({int(r) for r in self.store.runs()} | {self.run})

    def get_run(self, run: int) -> Mapping[str, Any]:
        return self.document if run == self.run else self.store.get_run(run)

    def history(self, me: str, amplifier: str) -> list[tuple[int, Any, Any, Any]]:
        others = [p for p in self.store.history(me, amplifier) if int(p[0]) != self.run]
        return others + list(document_points(self.document, me, amplifier))


@dataclass
class HistoryData:
    """Everything the history page shows.

    Attributes
    ----------
    current : int
        The run the page belongs to.
    runs : list of int
        All runs, ascending.
    documents : dict
        Run → (tag, status, number of images, reference run).
    amplifiers : list of str
        Amplifiers seen in any run.
    series : dict
        Trend key → (ME name, unit, {amplifier: [(run, image, value, error), ...]}).
    masked : dict
        Amplifier → {run: masked fraction}.
    """

    current: int
    runs: list[int]
    documents: dict[int, tuple[str, str, int, Any]] = field(default_factory=dict)
    amplifiers: list[str] = field(default_factory=list)
    series: dict[str, tuple[str, str, dict[str, list[Point]]]] = field(default_factory=dict)
    masked: dict[str, dict[int, float]] = field(default_factory=dict)


def _unit(documents: Sequence[Mapping[str, Any]], me: str) -> str:
    for document in documents:
        for entry in as_mapping(document.get("images")).values():
            for item in as_mapping(as_mapping(as_mapping(entry).get("me")).get(me)).values():
                unit = as_mapping(item).get("unit")
                if unit:
                    return str(unit)
    return ""


def collect_history(
    document: Mapping[str, Any], store: RunStore | None, outdir: Path, trends: Sequence[Trend] = TRENDS
) -> HistoryData:
    """Gather the trend data of all runs.

    Parameters
    ----------
    document : Mapping
        The document of the run being reported.
    store : RunStore or None
        The DQM store; None reads the run documents in ``outdir``.
    outdir : Path
        The DQM output directory (used without a store).
    trends : sequence of Trend
        The quantities to follow.
    """
    source = _WithCurrent(store if store is not None else DirectoryStore(outdir), document)
    runs = source.runs()
    data = HistoryData(current=source.run, runs=runs)
    documents = []
    amplifiers: dict[str, None] = {}
    for run in runs:
        doc = as_mapping(source.get_run(run))
        documents.append(doc)
        data.documents[run] = (
            str(doc.get("tag") or ""),
            status_of(doc.get("status")),
            len(as_mapping(doc.get("images"))),
            doc.get("reference_run"),
        )
        amplifiers.update(dict.fromkeys(str(a) for a in doc.get("amplifiers") or []))
        for amp, fraction in as_mapping(doc.get("masked_fraction")).items():
            if isinstance(fraction, int | float) and math.isfinite(fraction):
                data.masked.setdefault(str(amp), {})[run] = float(fraction)
    amplifiers.update(dict.fromkeys(data.masked))
    data.amplifiers = list(amplifiers)
    for trend in trends:
        for me in trend.candidates:
            points = {amp: [p for p in source.history(me, amp) if p[2] is not None] for amp in data.amplifiers}
            if any(points.values()):
                points = {a: sorted(p, key=lambda q: (int(q[0]), str(q[1]))) for a, p in points.items()}
                data.series[trend.key] = (me, _unit(documents, me), points)
                break
    return data


def run_means(points: Sequence[Point]) -> dict[int, tuple[float, float | None, int]]:
    """Per run: mean of the image values, its uncertainty (std/√n, or the single error) and n."""
    by_run: dict[int, list[Point]] = {}
    for point in points:
        by_run.setdefault(int(point[0]), []).append(point)
    out = {}
    for run, items in by_run.items():
        values = np.array([float(p[2]) for p in items])
        if len(values) > 1:
            error = float(np.std(values, ddof=1) / math.sqrt(len(values)))
        else:
            error = items[0][3]
        out[run] = (float(values.mean()), error, len(values))
    return out


def _draw_trend(
    fig: Any, data: HistoryData, label: str, me: str, unit: str, series: Mapping[str, Sequence[Point]]
) -> None:
    ax = fig.add_subplot()
    ax.set_title(f"{label} ({me}), run mean and images")
    markers = "osD^v<>"
    for i, (amp, points) in enumerate(series.items()):
        if not points:
            continue
        colour = f"C{i % 10}"
        ax.plot([int(p[0]) for p in points], [p[2] for p in points], ".", color=colour, alpha=0.3, ms=4)
        means = run_means(points)
        runs = sorted(means)
        errors = [means[r][1] if means[r][1] is not None else 0.0 for r in runs]
        ax.errorbar(
            runs,
            [means[r][0] for r in runs],
            yerr=errors,
            fmt=markers[i % len(markers)] + "-",
            color=colour,
            ms=5,
            lw=1,
            capsize=2,
            label=f"amplifier {amp} (run mean)",
        )
    ax.axvline(data.current, color="0.4", ls="--", lw=1, label=f"run {data.current}")
    ax.set_xlabel("run")
    ax.set_ylabel(f"{label} [{unit}]" if unit else label)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best")


def _draw_masked(fig: Any, data: HistoryData) -> None:
    ax = fig.add_subplot()
    ax.set_title("masked fraction")
    markers = "osD^v<>"
    for i, (amp, values) in enumerate(data.masked.items()):
        runs = sorted(values)
        ax.plot(
            runs,
            [100 * values[r] for r in runs],
            markers[i % len(markers)] + "-",
            color=f"C{i % 10}",
            ms=5,
            label=f"amplifier {amp}",
        )
    ax.axvline(data.current, color="0.4", ls="--", lw=1, label=f"run {data.current}")
    ax.set_xlabel("run")
    ax.set_ylabel("masked fraction [%]")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best")


def history_plots(data: HistoryData, cache: PlotCache, trends: Sequence[Trend] = TRENDS) -> dict[str, Path]:
    """Draw (or keep, when unchanged) one PNG per quantity: trend key → path."""
    out = {}
    labels = {t.key: t.label for t in trends}
    for key, (me, unit, series) in data.series.items():
        label = labels.get(key, key)
        digest = data_hash("trend", key, me, unit, data.current, series)
        out[key] = cache.render(
            f"history_{key}.png",
            digest,
            lambda fig, s=series, lb=label, m=me, u=unit: _draw_trend(fig, data, lb, m, u, s),
        )
    if data.masked:
        digest = data_hash("masked", data.current, data.masked)
        out["masked_fraction"] = cache.render(
            "history_masked_fraction.png", digest, lambda fig: _draw_masked(fig, data)
        )
    return out


def render_history(
    data: HistoryData, plots: Mapping[str, Path], trends: Sequence[Trend] = TRENDS, *, interactive: bool = False
) -> str:
    """The HTML of the history page (template ``templates/history.html.j2``).

    ``interactive`` adds a link to the interactive page of the run (``interactive.html``).
    """
    labels = {t.key: t.label for t in trends}
    columns: list[tuple[str, str]] = []  # (header, key)
    for key, (_me, unit, _series) in data.series.items():
        for amp in data.amplifiers:
            columns.append((f"{labels.get(key, key)} {amp}" + (f" [{unit}]" if unit else ""), f"{key}:{amp}"))
    for amp in data.masked:
        columns.append((f"masked {amp} [%]", f"masked:{amp}"))
    means = {
        f"{key}:{amp}": run_means(points)
        for key, (_, _, series) in data.series.items()
        for amp, points in series.items()
    }
    rows = []
    for run in sorted(data.runs, reverse=True):
        tag, status, n_images, _ref = data.documents.get(run, ("", "none", 0, None))
        cells: list[tuple[str, str | None]] = []
        for _, column in columns:
            if column.startswith("masked:"):
                fraction = data.masked.get(column.split(":", 1)[1], {}).get(run)
                cells.append((format_value(100 * fraction) if fraction is not None else "", None))
            else:
                mean = means.get(column, {}).get(run)
                cells.append((format_value(mean[0], mean[1]), f"mean of {mean[2]} image(s)") if mean else ("", None))
        rows.append(
            {
                "run": run,
                "name": run_dir_name(run),
                "current": run == data.current,
                "tag": tag,
                "status": status,
                "images": n_images,
                "cells": cells,
            }
        )
    figures = []
    for key, path in plots.items():
        title = "masked fraction" if key == "masked_fraction" else labels.get(key, key)
        me = data.series.get(key, ("",))[0]
        figures.append((key, path.name, f"{title} ({me})" if me else title))
    return render(
        "history.html.j2",
        title=f"DQM history (run {data.current:03d})",
        current=data.current,
        n_runs=len(data.runs),
        figures=figures,
        missing=[t.label for t in trends if t.key not in data.series],
        headers=[h for h, _ in columns],
        rows=rows,
        interactive=interactive,
    )


def write_history(
    document: Mapping[str, Any],
    store: RunStore | None,
    run_dir: Path,
    cache: PlotCache,
    trends: Sequence[Trend] = TRENDS,
) -> tuple[Path, dict[str, Path]]:
    """Write ``report/history.html`` and its plots; return the page and the plots."""
    from .common import write_text

    data = collect_history(document, store, Path(run_dir).parent, trends)
    plots = history_plots(data, cache, trends)
    path = cache.directory / "history.html"
    interactive = (cache.directory / "interactive.html").is_file()
    write_text(path, render_history(data, plots, trends, interactive=interactive))
    return path, plots
