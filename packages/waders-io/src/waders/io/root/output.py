"""Writing ROOT files atomically.

:func:`open_output` yields an uproot writable file that lives under a temporary
name until the ``with`` block ends without error; then it is renamed to the final
name.  A writer that fails half-way leaves no file (and no truncated file) under
the final name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uproot

from ..atomic import atomic_path

__all__ = ["open_output"]


@contextlib.contextmanager
def open_output(path: str | Path, *, compression: Any = "default") -> Iterator[Any]:
    """Create (or replace) a ROOT file atomically.

    Parameters
    ----------
    path : path
        Final file name; its directory is created if needed.
    compression : uproot compression, optional
        E.g. ``uproot.ZLIB(1)`` (uproot's default, readable by every ROOT version)
        or ``None`` for no compression.

    Yields
    ------
    uproot.WritableDirectory
        The new file; pass it to the ``write_*`` functions and tree writers of
        :mod:`waders.io.root`.  Always create TTrees with ``file.mktree`` (uproot's
        ``file[name] = data`` writes an RNTuple).

    Raises
    ------
    InputFileError
        If the output directory cannot be written.
    """
    options = {} if compression == "default" else {"compression": compression}
    with atomic_path(path) as tmp, uproot.recreate(tmp, **options) as file:
        yield file
