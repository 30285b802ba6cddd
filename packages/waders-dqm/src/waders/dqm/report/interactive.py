"""The interactive page of one run (``runNNN/report/interactive.html``).

Every monitor element in one table that sorts by any column and filters by status,
amplifier, image and name; one zoomable plot per ME and amplifier with the reference run
overlaid (scalar MEs: value per image over the reference run's values and band; curve MEs:
the curve of every image over the reference run's curves); and the history trends, whose
points tell their run and image on hover.

The plots are drawn in the browser by plotly.js.  Dependency choice: the ``plotly`` Python
package ships ``plotly.min.js`` (zoom, pan, hover, error bars, all offline), which is
copied next to the page into ``report/assets/`` with the page's own script, so the page
works from a published folder with no network at all (altair/vega would load its
libraries from a CDN; bokeh would need its server-side document model for the same
plots).  Nothing of plotly is imported at run time: only its JS file is read.

The page is rendered from the jinja2 template ``templates/interactive.html.j2`` with
autoescaping on; the data for the plots go in a ``<script type="application/json">``
block through jinja2's ``tojson`` (which escapes ``<``, ``>``, ``&`` and quotes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .common import as_mapping, format_value, status_of, write_text
from .history import TRENDS, HistoryData, Trend, run_means
from .templating import render
from .view import MEView, RunView, run_dir_name

__all__ = ["ASSETS", "PAGE", "copy_assets", "interactive_data", "render_interactive", "write_interactive"]

#: File name of the interactive page in ``report/``.
PAGE = "interactive.html"
#: Directory (in ``report/``) of the scripts the page loads.
ASSETS = "assets"
#: At most this many curves of the run (evenly spread over its images) are drawn per plot.
MAX_CURVES = 30
#: At most this many reference curves are overlaid per plot (they are drawn in grey).
MAX_REFERENCE_CURVES = 25


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _numbers(values: Any) -> list[float | None] | None:
    if not isinstance(values, list):
        return None
    return [_number(v) for v in values]


def _scalar_points(me: MEView | None) -> list[list[Any]]:
    """[image, value, error, stem] of the images with a value."""
    if me is None:
        return []
    out = []
    for position, (row, entry) in enumerate(me.rows):
        value = _number(entry.get("value"))
        if value is None:
            continue
        image = row.number if row.number is not None else position
        out.append([image, value, _number(entry.get("error")), row.stem])
    return out


def _spread(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` items, evenly spread (first and last included)."""
    if len(items) <= limit:
        return items
    picks = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in picks]


def _curve_points(me: MEView | None) -> list[dict[str, Any]]:
    """{image, stem, x, y, yerr} of the images with a curve."""
    if me is None:
        return []
    out = []
    for position, (row, entry) in enumerate(me.rows):
        y = _numbers(entry.get("y"))
        if not y:
            continue
        x = _numbers(entry.get("x")) or [float(i) for i in range(len(y))]
        out.append(
            {
                "image": row.number if row.number is not None else position,
                "stem": row.stem,
                "x": x[: len(y)],
                "y": y,
                "yerr": _numbers(entry.get("yerr")),
            }
        )
    return out


def _labels(me: MEView) -> tuple[str, str]:
    for _, entry in me.rows:
        if entry.get("xlabel") or entry.get("ylabel"):
            return str(entry.get("xlabel") or ""), str(entry.get("ylabel") or "")
    return "", ""


def _plots(view: RunView, reference: RunView | None) -> list[dict[str, Any]]:
    ref_index = {(m.name, m.amplifier): m for m in reference.mes} if reference is not None else {}
    out = []
    for amp in view.amplifiers:
        for me in view.by_amplifier(amp):
            ref = ref_index.get((me.name, amp))
            xlabel, ylabel = _labels(me)
            plot: dict[str, Any] = {
                "id": me.anchor,
                "me": me.name,
                "amp": amp,
                "unit": me.unit,
                "status": me.status,
                "xlabel": xlabel,
                "ylabel": ylabel,
                "reference_run": reference.run if reference is not None else None,
            }
            if me.has_curves:  # per row, per column, histograms: the curve of each image (its value is in the table)
                curves = _curve_points(me)
                plot["kind"] = "curve"
                plot["curves"] = _spread(curves, MAX_CURVES)
                plot["note"] = f"{len(plot['curves'])} of {len(curves)} images" if len(curves) > MAX_CURVES else ""
                plot["reference"] = _spread(_curve_points(ref), MAX_REFERENCE_CURVES)
            elif me.has_values:
                plot["kind"] = "scalar"
                plot["points"] = _scalar_points(me)
                plot["reference"] = _scalar_points(ref)
                plot["note"] = ""
            else:
                continue
            out.append(plot)
    return out


def _history(data: HistoryData | None, trends: Sequence[Trend]) -> dict[str, Any]:
    if data is None:
        return {"runs": [], "current": None, "trends": []}
    labels = {t.key: t.label for t in trends}
    out = []
    for key, (me, unit, series) in data.series.items():
        amps = {}
        for amp, points in series.items():
            if not points:
                continue
            means = run_means(points)
            amps[amp] = {
                "points": [[int(p[0]), p[1], _number(p[2]), _number(p[3])] for p in points],
                "means": [[r, _number(m[0]), _number(m[1]), m[2]] for r, m in sorted(means.items())],
            }
        out.append({"key": key, "label": labels.get(key, key), "me": me, "unit": unit, "amps": amps})
    if data.masked:
        amps = {
            amp: {"points": [], "means": [[r, 100 * f, None, 1] for r, f in sorted(values.items())]}
            for amp, values in data.masked.items()
        }
        out.append({"key": "masked_fraction", "label": "masked fraction", "me": "", "unit": "%", "amps": amps})
    return {"runs": list(data.runs), "current": data.current, "trends": out}


def _rows(view: RunView) -> list[dict[str, Any]]:
    """One table row per ME, amplifier and image (and per run-level entry)."""
    rows = []
    for me in view.mes:
        entries: list[tuple[Any, str, Mapping[str, Any]]] = [(row.number, row.stem, e) for row, e in me.rows]
        if me.run_level is not None:
            entries.append(("run", "(run level)", me.run_level))
        for image, stem, entry in entries:
            quality = as_mapping(entry.get("quality"))
            value = _number(entry.get("value"))
            if value is not None:
                text = format_value(value, entry.get("error"), entry.get("unit"))
            elif isinstance(entry.get("y"), list):
                text = f"{len(entry['y'])} points"
            else:
                text = "n/a"
            status = status_of(quality.get("status"))
            rows.append(
                {
                    "me": me.name,
                    "amp": me.amplifier,
                    "anchor": me.anchor,
                    "image": "" if image is None else str(image),
                    "stem": stem,
                    "value": "" if value is None else repr(value),
                    "text": text,
                    "status": status,
                    "test": str(quality.get("test") or ""),
                    "detail": str(quality.get("detail") or ""),
                }
            )
    return rows


def interactive_data(
    view: RunView, reference: Mapping[str, Any] | None, history: HistoryData | None, trends: Sequence[Trend] = TRENDS
) -> dict[str, Any]:
    """The JSON data the page's script draws: ``plots`` (per ME and amplifier) and ``history``."""
    ref_view = None
    if reference is not None:
        with contextlib.suppress(Exception):
            ref_view = RunView(reference)
    return {"run": view.run, "plots": _plots(view, ref_view), "history": _history(history, trends)}


def render_interactive(
    view: RunView,
    reference: Mapping[str, Any] | None,
    history: HistoryData | None,
    *,
    links: Sequence[tuple[str, str]] = (),
    trends: Sequence[Trend] = TRENDS,
) -> str:
    """The HTML of the interactive page (scripts loaded from ``assets/``)."""
    rows = _rows(view)
    images = sorted({r["image"] for r in rows if r["image"] not in ("", "run")}, key=lambda s: (len(s), s))
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("fail", "warn", "pass", "none")}
    return render(
        "interactive.html.j2",
        title=f"DQM run {view.run:03d}" + (f" ({view.tag})" if view.tag else ""),
        view=view,
        rows=rows,
        images=images,
        counts=counts,
        links=list(links),
        data=interactive_data(view, reference, history, trends),
        assets=ASSETS,
    )


def copy_assets(report_dir: Path) -> list[Path]:
    """Copy ``plotly.min.js`` (from the plotly package) and ``dqm.js`` into ``report_dir/assets/``.

    A file already there with the same size is kept (the copy of plotly.js is 4.8 MB).
    """
    target = Path(report_dir) / ASSETS
    target.mkdir(parents=True, exist_ok=True)
    sources = [
        resources.files("plotly") / "package_data" / "plotly.min.js",
        resources.files("waders.dqm.report") / "templates" / "dqm.js",
    ]
    out = []
    for source in sources:
        data = source.read_bytes()
        path = target / source.name
        with contextlib.suppress(OSError):
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                out.append(path)
                continue
        from waders.io.atomic import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        out.append(path)
    return out


def write_interactive(
    view: RunView,
    report_dir: Path,
    reference: Mapping[str, Any] | None,
    history: HistoryData | None,
    *,
    history_page: str | None = "history.html",
    trends: Sequence[Trend] = TRENDS,
) -> Path:
    """Write ``report_dir/interactive.html`` and its scripts; return the page."""
    copy_assets(report_dir)
    links = [("Table", "#mes"), ("Plots", "#plots"), ("History", "#history"), ("Static page", "index.html")]
    if history_page:
        links.append(("History (static)", history_page))
    if view.reference_run is not None:
        name = run_dir_name(view.reference_run)
        if (Path(report_dir).parent.parent / name / "report" / PAGE).is_file():
            links.append((f"Reference run {view.reference_run:03d}", f"../../{name}/report/{PAGE}"))
    path = Path(report_dir) / PAGE
    write_text(path, render_interactive(view, reference, history, links=links, trends=trends))
    return path
