"""``waders dqm watch``: monitor the images of a run as they arrive in a directory, and publish.

Every ``interval`` seconds the input directory is listed; files matching the pattern that
are new or changed since they were monitored, and untouched for ``settle`` seconds (so a
file still being written is left for the next look), are added to the run with
:func:`~waders.dqm.run.monitor_run`, and the reports are published (``publish``) after
each addition.  What was monitored is kept in ``runNNN/.watched.json`` (name, size,
modification time), so a restarted watch does not monitor a file twice; a file that could
not be analysed is tried again only once it changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from waders.core.errors import InputFileError

from .document import run_directory
from .options import RunOptions
from .run import RunResult, monitor_run

__all__ = ["STATE", "ready_files", "watch"]

log = logging.getLogger(__name__)

#: Name of the file (in the run directory) listing the monitored inputs.
STATE = ".watched.json"


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def ready_files(indir: Path, pattern: str, seen: Mapping[str, Any], settle: float, now: float) -> list[Path]:
    """Files of ``indir`` matching ``pattern``, new or changed since ``seen``, unmodified for ``settle`` s.

    Parameters
    ----------
    indir : Path
        The directory the images arrive in.
    pattern : str
        File-name glob (``*.fits*``).
    seen : Mapping
        File name → [size, mtime_ns] when it was monitored.
    settle : float
        Seconds a file must be left untouched before it is taken (s).
    now : float
        The current time (``time.time()``, s).
    """
    out = []
    for path in sorted(indir.iterdir()):
        if not path.is_file() or not fnmatch(path.name, pattern):
            continue
        with contextlib.suppress(OSError):
            stamp = _stamp(path)
            if seen.get(path.name) != stamp and now - stamp[1] / 1e9 >= settle:
                out.append(path)
    return out


def watch(
    indir: Path | str,
    options: RunOptions,
    *,
    publish: Path | str | None = None,
    pattern: str = "*.fits*",
    interval: float = 10.0,
    settle: float = 5.0,
    cycles: int | None = None,
    on_update: Callable[[RunResult, list[Path]], None] | None = None,
) -> int:
    """Watch ``indir`` and add its new images to run ``options.run``; return the number of files monitored.

    Parameters
    ----------
    indir : Path
        Directory the images of the run arrive in.
    options : RunOptions
        The run (number, output directory ``options.output_dir``, configurations, ...),
        as for :func:`monitor_run`.
    publish : Path, optional
        Web directory to publish the reports into after each update.
    pattern : str
        File-name glob of the images.
    interval : float
        Seconds between two looks at the directory (s).
    settle : float
        Seconds a file must be left untouched before it is monitored (s).
    cycles : int, optional
        Stop after this many looks (default: until interrupted).
    on_update : callable, optional
        Called with the result of :func:`monitor_run` and the files it was given.

    Raises
    ------
    InputFileError
        If ``indir`` is not a directory.
    """
    indir, output_dir = Path(indir), options.output_dir
    if not indir.is_dir():
        raise InputFileError(f"no directory {indir} to watch", hint="pass the directory the images arrive in")
    state_path = run_directory(output_dir, options.run) / STATE
    try:
        seen: dict[str, Any] = json.loads(state_path.read_text())
    except (OSError, ValueError):
        seen = {}
    monitored = 0
    look = 0
    while cycles is None or look < cycles:
        if look:
            time.sleep(interval)
        look += 1
        files = ready_files(indir, pattern, seen, settle, time.time())
        if not files:
            continue
        stamps = {p.name: _stamp(p) for p in files}
        result = monitor_run(files, options)
        seen.update(stamps)  # failed files too: tried again once they change
        state_path.write_text(json.dumps(seen, indent=1, sort_keys=True) + "\n")
        monitored += len(files)
        if publish is not None:
            from .report.web import publish_runs

            publish_runs(output_dir, publish)
        if on_update is not None:
            on_update(result, files)
    return monitored
