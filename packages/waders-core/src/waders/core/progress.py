"""Progress bars of the long loops of the commands (files, chunks, images), shown on a terminal only.

:func:`progress_bar` gives a bar with rate and ETA on ``stderr`` when ``stderr`` is a TTY,
and a do-nothing object otherwise (pipes, CI logs, ``waders --no-progress``,
``WADERS_NO_PROGRESS=1``), so the callers never test for it.  While a bar is shown, the
console log handlers are routed through :func:`tqdm.write`, so a log line is printed
above the bar instead of breaking it.

The bar is tqdm's: it is small, pure Python with no dependency of its own, and ships
``logging_redirect_tqdm``; rich would bring a whole console-rendering stack (and its own
log format) for one bar.

Examples
--------
>>> with progress_bar(total=3, desc="images", unit="image") as bar:
...     for _ in range(3):
...         bar.update(1)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["Progress", "configure", "progress_bar", "progress_enabled"]

#: Environment variable that turns the bars off (any value but "", "0").
ENV = "WADERS_NO_PROGRESS"

_enabled: bool = True


def configure(enabled: bool) -> None:
    """Allow (True, the default) or forbid (``--no-progress``) progress bars in this process."""
    global _enabled
    _enabled = bool(enabled)


def progress_enabled(stream: IO[str] | None = None) -> bool:
    """True if a bar would be shown on ``stream`` (default ``sys.stderr``): allowed, and a TTY."""
    stream = sys.stderr if stream is None else stream
    if not _enabled or os.environ.get(ENV, "") not in ("", "0"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed stream
        return False


class Progress:
    """A progress bar (or nothing): ``update(n)`` after each finished item, ``write(text)`` for a message.

    Attributes
    ----------
    shown : bool
        True if a bar is drawn.
    """

    def __init__(self, bar: Any = None) -> None:
        self._bar = bar
        self.shown = bar is not None

    def update(self, n: float = 1) -> None:
        """Advance by ``n`` items (files, events, images)."""
        if self._bar is not None:
            self._bar.update(n)

    def write(self, text: str) -> None:
        """Print ``text`` on the bar's stream above the bar (plain ``stderr`` without a bar)."""
        if self._bar is not None:
            self._bar.write(text, file=self._bar.fp)
        else:
            print(text, file=sys.stderr)


@contextlib.contextmanager
def progress_bar(
    total: float | None,
    desc: str = "",
    unit: str = "it",
    *,
    stream: IO[str] | None = None,
    enabled: bool | None = None,
) -> Iterator[Progress]:
    """A progress bar with rate and ETA for a loop of ``total`` items, on a terminal only.

    Parameters
    ----------
    total : float or None
        Number of items (files, events, images); None when unknown (no ETA).
    desc : str
        Label before the bar (e.g. the input file name).
    unit : str
        Name of one item (``"file"``, ``"event"``, ``"image"``).
    stream : file, optional
        Where the bar goes (default ``sys.stderr``); nothing is shown unless it is a TTY.
    enabled : bool, optional
        Force the bar on (True, still only on a TTY) or off (False); default: the setting of
        :func:`configure` and ``$WADERS_NO_PROGRESS``.

    Yields
    ------
    Progress
        Call ``update(n)`` after each finished item.
    """
    stream = sys.stderr if stream is None else stream
    show = progress_enabled(stream) if enabled is None else (enabled and progress_enabled(stream))
    if not show:
        yield Progress()
        return
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    logger = logging.getLogger("waders")  # the CLI's console handler lives there (setup_logging)
    consoles = [
        h for h in logger.handlers if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr)
    ]
    with (
        tqdm(total=total, desc=desc, unit=unit, file=stream, leave=True, **_size(stream)) as bar,
        logging_redirect_tqdm(loggers=[logger], tqdm_class=tqdm),
    ):
        # the replacement handler keeps the level of the console handler it stands for (e.g. WARNING
        # while a DQM run also logs INFO to its run log), so the bar shows no more than the console did
        for handler in logger.handlers:
            if handler not in consoles and consoles and type(handler).__name__ == "_TqdmLoggingHandler":
                handler.setLevel(max(h.level for h in consoles))
        yield Progress(bar)


def _size(stream: IO[str]) -> dict[str, Any]:
    """Size options of the bar: follow the terminal, or 80x24 when it reports no size (tqdm hides a bar on 0 rows)."""
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return {"dynamic_ncols": True}
    if columns > 0 and lines > 0:
        return {"dynamic_ncols": True}
    return {"ncols": columns or 80, "nrows": lines or 24}
