"""Atomic file output: write to a temporary file in the target directory, then rename.

An interrupted run (crash, kill, full disk) never leaves a truncated file under the
final name: either the old file (if any) or the complete new one is there.

The temporary name carries the host and process id of its writer
(``.<name>.<host>-<pid>.<random><suffix>``).  A ``kill -9`` leaves it behind; the next
write of the same final name removes the temporaries of writers on this host that are
no longer running (never those of a live concurrent writer).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from waders.core.errors import InputFileError
from waders.core.paths import remove_stale, temporary_tag

__all__ = ["atomic_path", "remove_stale_temporaries"]


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove temporaries of ``final`` left by killed writers on this host; return them.

    Only names written by :func:`atomic_path` (``.<name>.<host>-<pid>.*``) whose process
    is gone are removed; a live concurrent writer's temporary stays.
    """
    return remove_stale(final.parent, f".{final.name}.")


#: Suffixes that writers (astropy, uproot) read as a compression request: kept last on the temporary file.
_COMPRESSION_SUFFIXES = (".gz", ".bz2")


def _temporary_suffix(final: Path) -> str:
    """``.fits.tmp`` style, but ``....tmp.bz2`` for compressed names so the writer still compresses."""
    if final.suffix.lower() in _COMPRESSION_SUFFIXES:
        return ".tmp" + final.suffix
    return final.suffix + ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    Parameters
    ----------
    path : path
        Final file name.  Its directory is created if needed.
    suffix : str, optional
        Suffix of the temporary file (default: the final suffix, so that libraries
        that look at it, e.g. for compression, behave the same).

    Raises
    ------
    InputFileError
        If the directory cannot be created or written.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final)
        fd, tmp_name = tempfile.mkstemp(
            dir=final.parent,
            prefix=f".{final.name}.{temporary_tag()}.",
            suffix=suffix if suffix is not None else _temporary_suffix(final),
        )
    except OSError as err:
        raise InputFileError(f"cannot write {final}: {err.strerror}", hint="check the output directory") from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as astropy refuse to overwrite; they create the file themselves
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
