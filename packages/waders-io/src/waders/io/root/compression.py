"""ZSTD compression of ROOT baskets on two processors.

uproot compresses the baskets of a file one after the other, in the writing thread.
:class:`ParallelZSTD` is uproot's ``ZSTD`` whose large blocks are cut in two halves
compressed at once (the compressor releases the GIL), written one after the other as
two zstd frames.  A zstd decoder decompresses concatenated frames as one stream: ROOT
(``ZSTD_decompressDCtx``) and uproot read the baskets as they read single-frame ones
(``nox -s root`` checks it with ROOT itself).  The output is a few bytes larger.
"""

from __future__ import annotations

import atexit
import os
from concurrent.futures import ThreadPoolExecutor

import cramjam
import uproot

__all__ = ["PARALLEL_MIN_BYTES", "ParallelZSTD"]

#: Blocks smaller than this are compressed as one frame (halves of small blocks gain nothing).
PARALLEL_MIN_BYTES = 256 << 10

_pool: ThreadPoolExecutor | None = None


def _helper() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waders-zstd")
        atexit.register(_pool.shutdown)
    return _pool


class ParallelZSTD(uproot.ZSTD):
    """uproot's ``ZSTD(level)``; blocks of :data:`PARALLEL_MIN_BYTES` or more become two frames made at once."""

    @property
    def code_pair(self) -> tuple[int, int]:
        """``(algorithm, level)`` of ROOT's ``fCompress``: those of ZSTD (uproot matches the exact class)."""
        return uproot.const.kZSTD, self.level

    def compress(self, data: bytes) -> bytes:
        """Compress one block (at most 16 MiB, uproot's limit) into one or two zstd frames."""
        if len(data) < PARALLEL_MIN_BYTES or (os.cpu_count() or 1) < 2:
            return super().compress(data)
        view = memoryview(data)
        half = len(view) // 2
        second = _helper().submit(cramjam.zstd.compress, view[half:], level=self.level)
        first = cramjam.zstd.compress(view[:half], level=self.level)
        return b"".join([first, second.result()])
