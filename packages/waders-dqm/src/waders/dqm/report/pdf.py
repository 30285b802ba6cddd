"""The PDF report of a run (``report/report_runNNN.pdf``), made with matplotlib only.

Page 1 holds the run summary (run, tag, status, reference, images) and the table of
monitor elements (continued on further pages when long); then comes one page per ME
plot: run-level plots, reference overlays, then the plots of every image.  No LaTeX.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .common import PlotCache, as_mapping, data_hash, format_value, plot_style, status_of
from .view import MEView, RunView, run_dir_name

__all__ = ["pdf_name", "summary_rows", "write_pdf"]

#: Table rows on the title page and on continuation pages.
ROWS_FIRST, ROWS_NEXT = 30, 44
_A4 = (8.27, 11.69)
_COLOURS = {"pass": "#dafbe1", "warn": "#fff8c5", "fail": "#ffebe9", "none": "#ffffff"}


def pdf_name(run: int) -> str:
    """``report_run012.pdf``."""
    return f"report_{run_dir_name(run)}.pdf"


def summary_rows(view: RunView) -> list[tuple[str, str, str, str, str]]:
    """One row per ME and amplifier: (ME, amplifier, last image value, status, warnings/failures)."""
    rows = []
    for amp in view.amplifiers:
        for me in view.by_amplifier(amp):
            rows.append((me.name, amp, _last_value(me), me.status, _bad_images(me)))
    return rows


def _last_value(me: MEView) -> str:
    for row, entry in reversed(me.rows):
        if entry.get("value") is not None:
            return f"{format_value(entry.get('value'), entry.get('error'), entry.get('unit'))} (image {row.number})"
    if me.run_level is not None and isinstance(me.run_level.get("y"), list):
        return f"{len(me.run_level['y'])} run-level points"
    return f"{len(me.rows)} image(s)"


def _bad_images(me: MEView) -> str:
    bad = [e for _, e in me.rows if status_of(as_mapping(e.get("quality")).get("status")) in ("warn", "fail")]
    return f"{len(bad)}/{len(me.rows)}" if me.rows else ""


def _table_page(pdf: Any, rows: Sequence[tuple[str, ...]], header: str | None) -> None:
    from .common import new_figure

    fig = new_figure(_A4)
    top = 0.96
    if header:
        title, _, rest = header.partition("\n")
        fig.text(0.06, top, title, va="top", ha="left", fontsize=16, weight="bold")
        top -= 0.035
        if rest.strip():
            fig.text(0.06, top, rest.strip("\n"), va="top", ha="left", fontsize=10, family="monospace")
            top -= 0.0175 * (rest.strip("\n").count("\n") + 1) + 0.03
    if rows:
        ax = fig.add_axes((0.04, 0.03, 0.92, top - 0.03))
        ax.set_axis_off()
        labels = ("monitor element", "amp", "value", "status", "warn/fail")
        cells = [[textwrap.shorten(str(c), 46) for c in row] for row in rows]
        colours = [[_COLOURS.get(row[3], "#ffffff")] * len(labels) for row in rows]
        table = ax.table(
            cellText=cells,
            colLabels=labels,
            cellColours=colours,
            loc="upper center",
            cellLoc="left",
            colWidths=(0.33, 0.07, 0.38, 0.1, 0.12),
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.scale(1, 1.25)
    pdf.savefig(fig)


def _image_page(pdf: Any, path: Path, caption: str) -> None:
    import matplotlib.image

    from .common import new_figure

    fig = new_figure((11.69, 8.27))
    fig.text(0.5, 0.97, caption, ha="center", va="top", fontsize=11)
    ax = fig.add_axes((0.03, 0.03, 0.94, 0.9))
    ax.set_axis_off()
    ax.imshow(matplotlib.image.imread(path), interpolation="none")
    pdf.savefig(fig)


def _title(view: RunView, n_plots: int) -> str:
    masked = ", ".join(
        f"{a} {100 * float(f):.3g} %" for a, f in view.masked_fraction.items() if isinstance(f, int | float)
    )
    lines = [
        f"DQM report, run {view.run:03d}",
        "",
        f"tag        {view.tag or '-'}",
        f"status     {view.status.upper()}",
        f"reference  {view.reference_run if view.reference_run is not None else '-'}",
        f"images     {len(view.images)}   amplifiers {', '.join(view.amplifiers) or '-'}",
        f"masked     {masked or '-'}",
        f"updated    {view.updated or '-'}",
        f"plots      {n_plots} (one per page after the summary)",
    ]
    bad = [f"  image {r.number} ({r.stem}): {r.status.upper()}" for r in view.images if r.status in ("warn", "fail")]
    if bad:
        lines += ["", "images with warnings or failures:", *bad[:8]]
        if len(bad) > 8:
            lines.append(f"  ... and {len(bad) - 8} more")
    return "\n".join(lines)


def write_pdf(
    view: RunView,
    run_dir: Path,
    cache: PlotCache,
    overlays: Mapping[tuple[str, str], Path] | None = None,
) -> Path:
    """Write the PDF report (skipped when the document and its plots did not change).

    Parameters
    ----------
    view : RunView
        The run.
    run_dir : Path
        The run directory (ME plot paths are relative to it).
    cache : PlotCache
        The report directory's plot cache (keeps the hash of the PDF's inputs).
    overlays : Mapping, optional
        (ME, amplifier) → reference overlay PNG.

    Returns
    -------
    Path
        ``report/report_runNNN.pdf``.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    from waders.io.atomic import atomic_path

    run_dir = Path(run_dir)
    plots: list[tuple[str, Path]] = [(c, run_dir / p) for c, p in view.plots(run_dir, ("run",))]
    plots += [
        (f"{name}, amplifier {amp}: reference run {view.reference_run} overlay", Path(path))
        for (name, amp), path in (overlays or {}).items()
        if Path(path).is_file()
    ]
    plots += [(c, run_dir / p) for c, p in view.plots(run_dir, ("image",))]
    name = pdf_name(view.run)
    path = cache.directory / name
    stats = [(c, str(p), p.stat().st_size, p.stat().st_mtime_ns) for c, p in plots]
    key = data_hash("pdf", view.document, stats)
    if cache.known(name, key):
        cache.skipped.append(name)
        return path
    rows = summary_rows(view)
    with plot_style(), atomic_path(path) as tmp:
        metadata = {"Title": f"DQM report run {view.run:03d}", "Creator": "waders-dqm", "Subject": str(view.tag)}
        with PdfPages(tmp, metadata=metadata) as pdf:
            _table_page(pdf, rows[:ROWS_FIRST], _title(view, len(plots)))
            for start in range(ROWS_FIRST, len(rows), ROWS_NEXT):
                _table_page(pdf, rows[start : start + ROWS_NEXT], f"run {view.run:03d}: monitor elements (continued)")
            for caption, plot in plots:
                _image_page(pdf, plot, caption)
    cache.remember(name, key)
    cache.drawn.append(name)
    return path


def page_count(view: RunView, run_dir: Path, n_overlays: int = 0) -> int:
    """Number of pages :func:`write_pdf` writes (summary pages plus one per plot)."""
    n_rows = len(summary_rows(view))
    extra = max(0, -(-(n_rows - ROWS_FIRST) // ROWS_NEXT))
    return 1 + extra + len(view.plots(Path(run_dir))) + n_overlays
