"""Copy the waders log records of a run into ``runNNN/logs/dqm_runNNN.log`` (INFO and above)."""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["RunLog", "run_log_path"]


def run_log_path(run_dir: Path, run: int) -> Path:
    """``runNNN/logs/dqm_runNNN.log``."""
    return run_dir / "logs" / f"dqm_run{int(run):03d}.log"


class RunLog:
    """Inside ``with``, the ``waders`` loggers also write INFO and above into ``path``.

    The console keeps showing what it showed before (WARNING and above by default).

    Parameters
    ----------
    path : Path
        The log file (appended to).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> RunLog:
        self.logger = logging.getLogger("waders")
        self.handler = logging.FileHandler(self.path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self.level = self.logger.level
        self.others = [(h, h.level) for h in self.logger.handlers]
        if self.level == logging.NOTSET or self.level > logging.INFO:
            shown = self.level if self.level != logging.NOTSET else logging.WARNING
            for handler, level in self.others:
                handler.setLevel(max(level, shown))
            self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        self.logger.setLevel(self.level)
        for handler, level in self.others:
            handler.setLevel(level)
