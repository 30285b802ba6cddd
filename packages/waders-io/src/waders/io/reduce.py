"""Reduce raw samples over skips, by row blocks, with bounded memory.

:func:`reduce_skips` computes, for every amplifier of an image, per-pixel statistics
over a range of skips (mean, std, median or any numpy reduction with an ``axis``
argument).  It reads the raw rows of each HDU once per block for all the
amplifiers it holds, so peak memory is one row block whatever the number of skips
or the size of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from waders.core.errors import ConfigError
from waders.core.image import SkipperImage

from .fits.raw import FitsRawSamples

__all__ = ["DEFAULT_BLOCK_BYTES", "reduce_skips", "resolve_range", "skip_reduction"]

#: Default size of one block of raw samples (float64) held in memory.
DEFAULT_BLOCK_BYTES = 128 << 20


def resolve_range(start: int | None, end: int | None, length: int, what: str) -> tuple[int, int]:
    """Resolve a (start, end) range as pysimdamicm configurations write it.

    ``start`` None means 0; ``end`` None **or any negative value** means "up to the
    last" (pysimdamicm's convention: ``-1`` and ``-10`` both keep everything).

    Raises
    ------
    ConfigError
        If the range is empty or outside ``[0, length]``.
    """
    lo = 0 if start is None else int(start)
    hi = length if end is None or end < 0 else int(end)
    if lo < 0 or lo >= length or hi > length or hi <= lo:
        raise ConfigError(
            f"{what} range [{start}, {end}) is empty or outside the {length} available",
            hint=f"use a start in 0..{length - 1} and an end in start+1..{length} (or -1 for all)",
        )
    return lo, hi


def skip_reduction(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Return the function reducing a (rows, cols, skips) block along skips for a numpy name."""
    func = getattr(np, name, None)
    if name.startswith("_") or not callable(func):
        raise ConfigError(f"unknown reduction '{name}'", hint="use a numpy function such as mean, std, median")

    def reduce(block: np.ndarray) -> np.ndarray:
        if block.dtype != np.float64:
            try:  # accumulate in float64 without converting the block (mean, std, var, sum)
                return np.asarray(func(block, axis=2, dtype=np.float64), dtype=np.float64)
            except TypeError:
                block = block.astype(np.float64)
        return np.asarray(func(block, axis=2), dtype=np.float64)

    return reduce


def _rows_per_block(ncols: int, nskips: int, block_bytes: int) -> int:
    return max(1, int(block_bytes // max(1, ncols * nskips * 8)))


def reduce_skips(
    image: SkipperImage,
    functions: Sequence[str] = ("mean",),
    skips: tuple[int | None, int | None] = (None, None),
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> dict[str, dict[str, np.ndarray]]:
    """Compute per-pixel reductions over skips for every amplifier.

    Parameters
    ----------
    image : SkipperImage
        An image with raw samples.
    functions : sequence of str
        numpy reductions, e.g. ``("mean", "std")``.
    skips : (start, end)
        Skip range; see :func:`resolve_range`.
    block_bytes : int
        Memory for one block of float64 samples.

    Returns
    -------
    dict
        ``{amplifier: {function: 2-D array}}``.
    """
    reducers = {name: skip_reduction(name) for name in functions}
    out: dict[str, dict[str, np.ndarray]] = {}
    groups: dict[int, list[str]] = {}
    sources: dict[int, Any] = {}
    for name, amp in image.amplifiers.items():
        raw = amp.get("raw")
        key = id(raw.source) if isinstance(raw, FitsRawSamples) else id(raw)
        groups.setdefault(key, []).append(name)
        sources[key] = raw.source if isinstance(raw, FitsRawSamples) else None
    for key, names in groups.items():
        amps = [image.amplifiers[n] for n in names]
        nrows, _, nskips = amps[0].raw.shape  # type: ignore[union-attr]
        lo, hi = resolve_range(skips[0], skips[1], nskips, "skip")
        width = sum(a.raw.shape[1] for a in amps)  # type: ignore[union-attr]
        step = _rows_per_block(width, nskips, block_bytes)
        results = {n: {f: np.empty(image.amplifiers[n].geometry.shape) for f in functions} for n in names}
        for start in range(0, nrows, step):
            stop = min(start + step, nrows)
            source = sources[key]
            if source is None:
                raw_rows = None
            else:
                raw_rows = source.stored_rows(start, stop) if source.plain else source.rows(start, stop)
            for name, amp in zip(names, amps, strict=True):
                samples = amp.raw.from_rows(raw_rows) if raw_rows is not None else np.asarray(amp.raw[start:stop])  # type: ignore[union-attr]
                window = samples[:, :, lo:hi]
                for fname, reduce in reducers.items():
                    results[name][fname][start:stop] = reduce(window)
        out.update(results)
    return out
