"""Logging set-up for the command-line interface (the library itself only logs)."""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging"]


def setup_logging(verbosity: int = 0, debug: bool = False) -> None:
    """Send waders log records to stderr.

    Parameters
    ----------
    verbosity : int
        0: warnings, 1 (``-v``): progress information, 2 (``-vv``): debug messages.
    debug : bool
        Debug messages and timestamps (``--debug``).
    """
    level = logging.DEBUG if debug or verbosity >= 2 else logging.INFO if verbosity == 1 else logging.WARNING
    logger = logging.getLogger("waders")
    for handler in list(logger.handlers):
        if getattr(handler, "_waders", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._waders = True  # type: ignore[attr-defined]
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if debug else "%(levelname)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
