"""Replace a directory by another in one step, so a web reader sees the old or the new one, never none.

On Linux ``renameat2(RENAME_EXCHANGE)`` swaps the two directories atomically; elsewhere (or
on a file system without it) the old directory is renamed away and the new one renamed in,
which leaves a moment of a few microseconds without the directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["replace_directory"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.lru_cache(maxsize=1)
def _renameat2() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically; False if the system cannot."""
    function = _renameat2()
    if function is None:
        return False
    result = function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not supported by this kernel or file system
        return False
    raise OSError(error, os.strerror(error), str(b))


def replace_directory(new: Path, final: Path) -> None:
    """Put directory ``new`` at ``final`` (replacing what is there) and delete the old content.

    Parameters
    ----------
    new : Path
        The fully written directory (on the same file system as ``final``).
    final : Path
        Where it goes.
    """
    new, final = Path(new), Path(final)
    if not final.exists():
        os.rename(new, final)
        return
    if _exchange(new, final):
        shutil.rmtree(new, ignore_errors=True)  # now the old content
        return
    old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
    os.rename(final, old / final.name)
    os.rename(new, final)
    shutil.rmtree(old, ignore_errors=True)
