"""Reports of DQM runs: a static HTML page per run, a history page, an optional PDF.

:func:`build_report` writes, under ``runNNN/report/``:

* ``interactive.html`` (with ``assets/plotly.min.js`` and ``assets/dqm.js``): the same
  run with a sortable, filterable table of all MEs, zoomable plots with the reference
  run overlaid and history trends that show runs and images on hover (:mod:`.interactive`);
* ``index.html``: the run page (header, overview, images table, MEs by amplifier with
  values, quality badges, plots and reference overlays);
* ``history.html`` and ``history_*.png``: trends of noise, gain, dark current and
  masked fraction across all runs;
* ``overlay_<ME>_<amp>.png``: the reference-run overlays;
* ``report_runNNN.pdf`` (``pdf=True``): summary table and one page per ME plot.

Everything is written atomically, and plots whose input data did not change are kept
(``.plots.json`` holds their hashes), so re-building after each new image is cheap.
``waders dqm publish`` and ``waders dqm serve`` (:mod:`.commands`) put the reports on
the web.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waders.core.errors import InputFileError
from waders.core.lazy import lazy_getattr

if TYPE_CHECKING:  # pragma: no cover
    from .history import RunStore

# Public names, imported on first use: ``waders dqm --help`` loads the ``publish``/``serve``
# commands from this package without numpy, matplotlib or jinja2 (issue 18).
_EXPORTS = {
    **dict.fromkeys(("TRENDS", "DirectoryStore", "RunStore", "Trend"), ".history"),
    "pdf_name": ".pdf",
    "run_dir_name": ".view",
}

__all__ = ["TRENDS", "DirectoryStore", "RunStore", "Trend", "build_report", "pdf_name", "run_dir_name"]

log = logging.getLogger(__name__)


def build_report(
    run_dir: Path | str, document: Mapping[str, Any], store: RunStore | None = None, *, pdf: bool = False
) -> dict[str, Path]:
    """Write the report of one run into ``run_dir/report/``.

    Parameters
    ----------
    run_dir : Path
        The run directory (``OUTDIR/runNNN``); the ME plot paths of the document are
        relative to it.
    document : Mapping
        The run document (the content of ``summary_runNNN.json``).
    store : RunStore, optional
        The DQM store (``runs``, ``get_run``, ``history``) for the history page and the
        reference run.  Without it the run documents of the sibling run directories
        are used.
    pdf : bool
        Also write ``report/report_runNNN.pdf``.

    Returns
    -------
    dict of str to Path
        ``"index"``, ``"interactive"``, ``"history"``, ``"pdf"`` (if written) and every plot the report
        made, keyed by its file stem (``"history_noise"``, ``"overlay_MEFitDCLambda_L"``...).

    Raises
    ------
    DataError
        If the document has no run number.
    InputFileError
        If the report directory cannot be written.
    """
    from .common import PlotCache, write_text
    from .history import collect_history, write_history
    from .html import render_run_page
    from .interactive import write_interactive
    from .overlay import load_reference, make_overlays
    from .pdf import write_pdf
    from .view import RunView, run_dir_name

    run_dir = Path(run_dir)
    view = RunView(document)
    report_dir = run_dir / "report"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputFileError(f"cannot write {report_dir}: {err.strerror}", hint="check the output directory") from None
    cache = PlotCache(report_dir)
    reference = load_reference(view, store, run_dir)
    overlays = make_overlays(view, reference, cache)
    outputs: dict[str, Path] = {}
    history_data = collect_history(document, store, run_dir.parent)
    outputs["interactive"] = write_interactive(view, report_dir, reference, history_data)
    history_path, trend_plots = write_history(document, store, run_dir, cache)
    if pdf:
        outputs["pdf"] = write_pdf(view, run_dir, cache, overlays)
    reference_href = None
    if view.reference_run is not None:
        name = run_dir_name(view.reference_run)
        if (run_dir.parent / name / "report" / "index.html").is_file():
            reference_href = f"../../{name}/report/index.html"
    html = render_run_page(
        view,
        run_dir,
        overlays={key: path.name for key, path in overlays.items()},
        history=history_path.name,
        pdf=outputs["pdf"].name if pdf else None,
        reference_href=reference_href,
    )
    index = report_dir / "index.html"
    write_text(index, html)
    cache.save()
    log.info(
        "report of run %d: %d plot(s) drawn, %d unchanged, in %s",
        view.run,
        len(cache.drawn),
        len(cache.skipped),
        report_dir,
    )
    outputs = {"index": index, "history": history_path, **outputs}
    for path in [*overlays.values(), *trend_plots.values()]:
        outputs[path.stem] = path
    return outputs


def __getattr__(name: str) -> Any:
    return lazy_getattr(globals(), __name__, name, _EXPORTS, {})


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
