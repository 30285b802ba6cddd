"""Serialise the updates of one run directory between processes (``runNNN/.dqm.lock``, advisory, POSIX)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["RunLock"]


class RunLock:
    """An exclusive advisory lock on ``path`` held inside ``with`` (no lock where there is no ``fcntl``).

    Parameters
    ----------
    path : Path
        The lock file (created when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    def __enter__(self) -> RunLock:
        if os.name != "posix":  # no fcntl: no lock
            return self
        import fcntl

        self.handle = open(self.path, "a")  # held until __exit__
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
