"""The static HTML page of one run (``runNNN/report/index.html``).

The page is self-contained: inline CSS, no scripts or fonts from the network, images
referenced by relative paths (``../me/...png`` for the ME plots, ``overlay_...png`` for
the reference overlays made next to it).  A tiny inline script marks
``<body data-images-ok="true">`` once every image has loaded, which the browser test
(and a curious shifter's developer tools) can check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .common import as_mapping, badge, esc, format_value, href, status_of
from .view import MEView, RunView, run_dir_name

__all__ = ["CSS", "page", "render_run_page"]

CSS = """
:root { --pass:#1a7f37; --warn:#b35900; --fail:#cf222e; --none:#6e7781; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Liberation Sans", Arial, sans-serif;
       color: #1f2328; background: #fff; }
header.top { background: #0d3b7a; color: #fff; padding: 14px 24px 10px; }
header.top h1 { margin: 0 0 6px; font-size: 22px; font-weight: 600; }
header.top a { color: #cfe3ff; }
dl.meta { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; }
dl.meta div { display: flex; gap: 6px; }
dl.meta dt { opacity: .75; } dl.meta dd { margin: 0; font-weight: 600; }
nav.links { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 14px; }
main { padding: 8px 24px 40px; max-width: 1500px; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 28px; }
h3 { margin: 0 0 8px; font-size: 16px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td { background: #ffebe9; } tr.warn td { background: #fff8c5; }
.badge { display: inline-block; min-width: 44px; text-align: center; padding: 1px 7px; border-radius: 10px;
         color: #fff; font-size: 11px; font-weight: 700; letter-spacing: .03em; vertical-align: middle; }
.badge.pass { background: var(--pass); } .badge.warn { background: var(--warn); }
.badge.fail { background: var(--fail); } .badge.none { background: var(--none); }
article.me { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin: 12px 0;
             background: #fff; }
article.me.fail { border-left: 6px solid var(--fail); } article.me.warn { border-left: 6px solid var(--warn); }
article.me.pass { border-left: 6px solid var(--pass); }
.figures { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; } figure img { max-width: 560px; width: 100%; border: 1px solid var(--line); background: #fff; }
figcaption { font-size: 12px; color: #57606a; }
details > summary { cursor: pointer; color: #0969da; margin: 4px 0; }
.detail { color: #57606a; font-size: 12px; }
.missing { color: var(--fail); font-size: 12px; }
img.broken { outline: 3px solid var(--fail); }
.scroll { overflow-x: auto; max-width: 100%; }
footer { color: #57606a; font-size: 12px; padding: 12px 24px; border-top: 1px solid var(--line); }
"""

#: Marks ``<body data-images-ok>`` once all images have loaded (checked by the browser test).
SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
  broken.forEach(function (img) { img.classList.add("broken"); });
  document.body.dataset.images = String(images.length);
  document.body.dataset.imagesOk = broken.length === 0 ? "true" : "false";
});
"""


def page(title: str, body: str, *, footer: str = "") -> str:
    """A complete HTML document with the report style and the image check."""
    from waders.dqm import __version__

    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="waders-dqm {esc(__version__)}">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<footer>{footer}waders-dqm {esc(__version__)}</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _img(run_dir: Path, relpath: Any, prefix: str, alt: str, caption: str | None = None) -> str:
    """A figure for ``relpath`` (relative to the run directory), or a note when the file is missing."""
    if not isinstance(relpath, str) or not relpath:
        return ""
    if not (run_dir / relpath).is_file():
        return f'<p class="missing">plot not found: {esc(relpath)}</p>'
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    url = href(prefix + relpath)
    return f'<figure><a href="{url}"><img src="{url}" alt="{esc(alt)}"></a>{cap}</figure>'


def _quality(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    quality = as_mapping(entry.get("quality"))
    return status_of(quality.get("status")), str(quality.get("test") or ""), str(quality.get("detail") or "")


def _header(view: RunView, links: Sequence[tuple[str, str]], reference_href: str | None) -> str:
    items = [("tag", esc(view.tag) or "&mdash;")]
    if view.reference_run is not None:
        ref = f"run {view.reference_run:03d}"
        items.append(("reference", f'<a href="{esc(reference_href)}">{ref}</a>' if reference_href else ref))
    else:
        items.append(("reference", "&mdash;"))
    items.append(("images", str(len(view.images))))
    items.append(("amplifiers", esc(", ".join(view.amplifiers)) or "&mdash;"))
    if view.masked_fraction:
        masked = ", ".join(
            f"{esc(a)} {format_value(100 * float(f), None, '%')}"
            for a, f in view.masked_fraction.items()
            if isinstance(f, int | float)
        )
        items.append(("masked", masked or "&mdash;"))
    items.append(("updated", esc(view.updated) or "&mdash;"))
    meta = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
    nav = "".join(f'<a href="{esc(target)}">{esc(text)}</a>' for text, target in links)
    return (
        f'<header class="top"><h1>DQM run {view.run:03d} {badge(view.status)}</h1>'
        f'<dl class="meta">{meta}</dl><nav class="links">{nav}</nav></header>'
    )


def _overview(view: RunView) -> str:
    """ME-by-amplifier table: worst status, count of failing/warning images, link to the section."""
    names = list(dict.fromkeys(me.name for me in view.mes))
    index = {(me.name, me.amplifier): me for me in view.mes}
    head = "".join(f"<th>{esc(a)}</th>" for a in view.amplifiers)
    rows = []
    for name in names:
        cells = []
        for amp in view.amplifiers:
            me = index.get((name, amp))
            if me is None:
                cells.append("<td></td>")
                continue
            bad = sum(1 for _, e in me.rows if _quality(e)[0] in ("warn", "fail"))
            note = f" {bad}/{len(me.rows)} images" if bad else ""
            cells.append(f'<td><a href="#{esc(me.anchor)}">{badge(me.status)}</a>{note}</td>')
        rows.append(f"<tr><th>{esc(name)}</th>{''.join(cells)}</tr>")
    if not rows:
        return '<section id="overview"><h2>Overview</h2><p>No monitor element in this run.</p></section>'
    return (
        f'<section id="overview"><h2>Overview</h2><table><tr><th>monitor element</th>{head}</tr>'
        f"{''.join(rows)}</table></section>"
    )


def _images_table(view: RunView) -> str:
    rows = []
    for row in view.images:
        entry = row.entry
        problems = ", ".join(
            f'<a href="#me-{esc(me)}-{esc(amp)}">{esc(me)} {esc(amp)}</a> ({status})'
            for me, amp, status in row.problems
        )
        file = str(entry.get("file") or "")
        rows.append(
            f'<tr class="{row.status}" id="image-{esc(row.stem)}"><td class="num">{esc(row.number)}</td>'
            f"<td>{esc(row.stem)}</td><td>{esc(entry.get('start') or '')}</td>"
            f'<td title="{esc(file)}">{esc(Path(file).name)}</td><td>{badge(row.status)}</td><td>{problems}</td></tr>'
        )
    if not rows:
        return '<section id="images"><h2>Images</h2><p>No image processed yet.</p></section>'
    return (
        '<section id="images"><h2>Images</h2><table><tr><th>image</th><th>stem</th><th>start</th><th>file</th>'
        f"<th>status</th><th>warnings and failures</th></tr>{''.join(rows)}</table></section>"
    )


def _me_article(view: RunView, me: MEView, run_dir: Path, overlay: str | None) -> str:
    parts = [f'<article class="me {me.status}" id="{esc(me.anchor)}"><h3>{esc(me.name)} {badge(me.status)}</h3>']
    figures = []
    if me.run_level is not None:
        status, test, detail = _quality(me.run_level)
        if status != "none":
            parts.append(
                f'<p>run level: {badge(status, detail)} <span class="detail">{esc(test)} {esc(detail)}</span></p>'
            )
        figures.append(_img(run_dir, me.run_level.get("plot"), "../", f"{me.name} run {view.run}", "run level"))
    if overlay:
        figures.append(
            f'<figure><a href="{href(overlay)}"><img src="{href(overlay)}" alt="{esc(me.name)} reference overlay"></a>'
            f"<figcaption>reference run {view.reference_run:03d} overlay</figcaption></figure>"
        )
    if any(figures):
        parts.append(f'<div class="figures">{"".join(figures)}</div>')
    if me.rows:
        rows = []
        plots = []
        for row, entry in me.rows:
            status, test, detail = _quality(entry)
            value = format_value(entry.get("value"), entry.get("error"), entry.get("unit"))
            if entry.get("value") is None and isinstance(entry.get("y"), list):
                value = f"{len(entry['y'])} points"
            plot = entry.get("plot")
            link = (
                f'<a href="{href("../" + plot)}">plot</a>'
                if isinstance(plot, str) and (run_dir / plot).is_file()
                else ""
            )
            rows.append(
                f'<tr class="{status}"><td class="num">{esc(row.number)}</td><td>{esc(row.stem)}</td>'
                f'<td class="num">{esc(value)}</td><td>{badge(status, detail)}</td><td>{esc(test)}</td>'
                f'<td class="detail">{esc(detail)}</td><td>{link}</td></tr>'
            )
            plots.append(
                _img(run_dir, plot, "../", f"{me.name} {me.amplifier} image {row.number}", f"image {row.number}")
            )
        parts.append(
            "<table><tr><th>image</th><th>stem</th><th>value</th><th>status</th><th>test</th><th>detail</th>"
            f"<th></th></tr>{''.join(rows)}</table>"
        )
        plots = [p for p in plots if p]
        if plots:
            parts.append(
                f'<details><summary>plots per image ({len(plots)})</summary><div class="figures">{"".join(plots)}</div>'
                "</details>"
            )
    parts.append("</article>")
    return "".join(parts)


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
    overlays = overlays or {}
    links = [("Overview", "#overview"), ("Images", "#images")]
    if (Path(run_dir) / "report" / "interactive.html").is_file():
        links.insert(0, ("Interactive page", "interactive.html"))
    links += [(f"Amplifier {a}", f"#amp-{a}") for a in view.amplifiers]
    if history:
        links.append(("History", history))
    if pdf:
        links.append(("PDF", pdf))
    summary = f"summary_{run_dir_name(view.run)}.json"
    if (Path(run_dir) / summary).is_file():
        links.append(("Summary (JSON)", f"../{summary}"))
    body = [_header(view, links, reference_href), "<main>", _overview(view), _images_table(view)]
    for amp in view.amplifiers:
        articles = [_me_article(view, me, run_dir, overlays.get((me.name, amp))) for me in view.by_amplifier(amp)]
        body.append(f'<section id="amp-{esc(amp)}"><h2>Amplifier {esc(amp)}</h2>{"".join(articles)}</section>')
    body.append("</main>")
    title = f"DQM run {view.run:03d}" + (f" ({view.tag})" if view.tag else "")
    return page(title, "\n".join(body))
