"""Build the report of a run after its document is stored; a broken report never hides the written summary."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from waders.core.errors import WadersError

__all__ = ["dispatch_report"]

log = logging.getLogger(__name__)


def dispatch_report(run_dir: Path, document: Mapping[str, Any], store: Any, *, pdf: bool = False) -> str:
    """Write ``run_dir/report/`` with :func:`waders.dqm.report.build_report`.

    Returns
    -------
    str
        ``"written"``, or ``"report: <one-line error>"`` when the report could not be built
        (the run summary and the store are already written).
    """
    from .report import build_report

    try:
        build_report(run_dir, document, store, pdf=pdf)
    except WadersError as err:
        return f"report: {err.one_line()}"
    except Exception as err:  # the run summary is written: a broken report must not hide it
        log.debug("report failed", exc_info=True)
        return f"report: internal error {type(err).__name__}: {' '.join(str(err).split())}"
    return "written"
