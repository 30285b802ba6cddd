"""The static HTML page of one run (``runNNN/report/index.html``).

The page is self-contained: inline CSS, no scripts or fonts from the network, images
referenced by relative paths (``../me/...png`` for the ME plots, ``overlay_...png`` for
the reference overlays made next to it).  A tiny inline script marks
``<body data-images-ok="true">`` once every image has loaded, which the browser test
(and a curious shifter's developer tools) can check.

The page is rendered from the jinja2 template ``templates/run.html.j2`` (autoescaped);
this module only arranges the run document into what the template shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import as_mapping, format_value, status_of
from .templating import render
from .view import MEView, RunView, run_dir_name

__all__ = ["render_run_page"]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _figure(run_dir: Path, relpath: Any, prefix: str, alt: str, caption: str | None = None) -> dict[str, Any] | None:
    """A figure for ``relpath`` (relative to the run directory), a "missing" note, or None without a path."""
    if not isinstance(relpath, str) or not relpath:
        return None
    if not (run_dir / relpath).is_file():
        return {"missing": relpath}
    return {"missing": None, "url": prefix + relpath, "alt": alt, "caption": caption}


def _quality(entry: Mapping[str, Any]) -> dict[str, str]:
    quality = as_mapping(entry.get("quality"))
    return {
        "status": status_of(quality.get("status")),
        "test": str(quality.get("test") or ""),
        "detail": str(quality.get("detail") or ""),
    }


def _meta(view: RunView, reference_href: str | None) -> list[tuple[str, str, str | None]]:
    """(label, text, link) of the header; an empty text shows a dash."""
    items: list[tuple[str, str, str | None]] = [("tag", view.tag, None)]
    reference = f"run {view.reference_run:03d}" if view.reference_run is not None else ""
    items.append(("reference", reference, reference_href if reference else None))
    items.append(("images", str(len(view.images)), None))
    items.append(("amplifiers", ", ".join(view.amplifiers), None))
    if view.masked_fraction:
        masked = ", ".join(
            f"{a} {format_value(100 * float(f), None, '%')}"
            for a, f in view.masked_fraction.items()
            if isinstance(f, int | float)
        )
        items.append(("masked", masked, None))
    items.append(("updated", view.updated, None))
    return items


def _overview(view: RunView) -> list[tuple[str, list[dict[str, Any] | None]]]:
    """ME-by-amplifier cells: worst status, count of failing/warning images, link to the section."""
    names = list(dict.fromkeys(me.name for me in view.mes))
    index = {(me.name, me.amplifier): me for me in view.mes}
    rows = []
    for name in names:
        cells: list[dict[str, Any] | None] = []
        for amp in view.amplifiers:
            me = index.get((name, amp))
            if me is None:
                cells.append(None)
                continue
            bad = sum(1 for _, e in me.rows if _quality(e)["status"] in ("warn", "fail"))
            cells.append({"anchor": me.anchor, "status": me.status, "bad": bad, "total": len(me.rows)})
        rows.append((name, cells))
    return rows


def _images(view: RunView) -> list[dict[str, Any]]:
    out = []
    for row in view.images:
        file = str(row.entry.get("file") or "")
        out.append(
            {
                "status": row.status,
                "stem": row.stem,
                "number": _text(row.number),
                "start": _text(row.entry.get("start") or ""),
                "file": file,
                "filename": Path(file).name,
                "problems": row.problems,
            }
        )
    return out


def _article(view: RunView, me: MEView, run_dir: Path, overlay: str | None) -> dict[str, Any]:
    article: dict[str, Any] = {"anchor": me.anchor, "name": me.name, "status": me.status, "run_level": None}
    figures = []
    if me.run_level is not None:
        quality = _quality(me.run_level)
        if quality["status"] != "none":
            article["run_level"] = quality
        figures.append(_figure(run_dir, me.run_level.get("plot"), "../", f"{me.name} run {view.run}", "run level"))
    if overlay and view.reference_run is not None:
        figures.append(
            {
                "missing": None,
                "url": overlay,
                "alt": f"{me.name} reference overlay",
                "caption": f"reference run {view.reference_run:03d} overlay",
            }
        )
    article["figures"] = [f for f in figures if f]
    rows, plots = [], []
    for row, entry in me.rows:
        quality = _quality(entry)
        value = format_value(entry.get("value"), entry.get("error"), entry.get("unit"))
        if entry.get("value") is None and isinstance(entry.get("y"), list):
            value = f"{len(entry['y'])} points"
        plot = entry.get("plot")
        exists = isinstance(plot, str) and (run_dir / plot).is_file()
        rows.append(
            {
                "number": _text(row.number),
                "stem": row.stem,
                "value": value,
                **quality,
                "plot": "../" + plot if exists else None,
            }
        )
        figure = _figure(run_dir, plot, "../", f"{me.name} {me.amplifier} image {row.number}", f"image {row.number}")
        if figure:
            plots.append(figure)
    article["rows"] = rows
    article["plots"] = plots
    return article


def render_run_page(
    document: Mapping[str, Any] | RunView,
    run_dir: Path,
    *,
    overlays: Mapping[tuple[str, str], str] | None = None,
    history: str | None = "history.html",
    pdf: str | None = None,
    reference_href: str | None = None,
) -> str:
    """The HTML of the run page.

    Parameters
    ----------
    document : Mapping or RunView
        The run document.
    run_dir : Path
        The run directory (plots are looked up under it; missing ones are reported on the page).
    overlays : Mapping, optional
        (ME, amplifier) → reference overlay PNG, relative to the report directory.
    history, pdf : str, optional
        Links (relative to the report directory) to the history page and the PDF report.
    reference_href : str, optional
        Link to the reference run's page.

    Returns
    -------
    str
        The complete HTML document.
    """
    view = document if isinstance(document, RunView) else RunView(document)
    run_dir = Path(run_dir)
    overlays = overlays or {}
    links = [("Overview", "#overview"), ("Images", "#images")]
    if (run_dir / "report" / "interactive.html").is_file():
        links.insert(0, ("Interactive page", "interactive.html"))
    links += [(f"Amplifier {a}", f"#amp-{a}") for a in view.amplifiers]
    if history:
        links.append(("History", history))
    if pdf:
        links.append(("PDF", pdf))
    summary = f"summary_{run_dir_name(view.run)}.json"
    if (run_dir / summary).is_file():
        links.append(("Summary (JSON)", f"../{summary}"))
    sections = [
        (amp, [_article(view, me, run_dir, overlays.get((me.name, amp))) for me in view.by_amplifier(amp)])
        for amp in view.amplifiers
    ]
    return render(
        "run.html.j2",
        title=f"DQM run {view.run:03d}" + (f" ({view.tag})" if view.tag else ""),
        view=view,
        meta=_meta(view, reference_href),
        links=links,
        overview=_overview(view),
        images=_images(view),
        sections=sections,
    )
