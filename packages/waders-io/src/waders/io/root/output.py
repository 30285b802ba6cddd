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
from .compression import ParallelZSTD

__all__ = ["DEFAULT_COMPRESSION", "open_output"]

#: Compression of the ROOT files waders writes: zstd level 1, large baskets compressed on two processors.
DEFAULT_COMPRESSION = ParallelZSTD(1)


@contextlib.contextmanager
def open_output(path: str | Path, *, compression: Any = "default") -> Iterator[Any]:
    """Create (or replace) a ROOT file atomically.

    Parameters
    ----------
    path : path
        Final file name; its directory is created if needed.
    compression : uproot compression, optional
        Default ``uproot.ZSTD(1)`` (:class:`waders.io.root.compression.ParallelZSTD`: large
        baskets compressed on two processors): 2-3 times faster to write than zlib and smaller,
        read by ROOT 6.20 and later.  ``uproot.ZLIB(1)`` for older ROOT versions,
        ``None`` for no compression.

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
    if compression == "default":
        compression = DEFAULT_COMPRESSION
    with atomic_path(path) as tmp, uproot.recreate(tmp, compression=compression) as file:
        yield file
