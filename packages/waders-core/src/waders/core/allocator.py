"""One glibc malloc arena for the ``waders`` command.

glibc gives every thread that allocates (waders' row reader, profile fits, ROOT
compression, dask/thread pools) its own malloc arena, which keeps the memory it freed for
that thread.  Large NumPy temporaries freed in one arena are then not reused by another:
the process touches fresh pages again (slow on virtual machines) and its peak memory grows.
With one arena the freed memory is reused by every thread.  Measured on the 3.2 GB raw
image of ``benchmarks/ana_chain.py`` (stress occupancy): peak RSS 0.94-0.98 -> 0.90 GB, wall
time 4.6-5.0 -> 4.1-4.3 s.  A ``MALLOC_ARENA_MAX`` in the environment wins; elsewhere than
glibc (macOS, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["use_one_malloc_arena"]

#: glibc's mallopt parameter number of M_ARENA_MAX (malloc.h).
_M_ARENA_MAX = -8


def use_one_malloc_arena() -> bool:
    """Ask glibc's malloc for a single arena (call before threads start); return True if it took effect."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(_M_ARENA_MAX, 1) == 1
