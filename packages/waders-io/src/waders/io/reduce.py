"""Reduce raw samples over skips, by row blocks, with bounded memory.

:func:`reduce_skips` computes, for every amplifier of an image, per-pixel statistics over
a range of skips (mean, std, median or any numpy reduction with an ``axis`` argument). It
reads the raw rows of each HDU once per block for all the amplifiers it holds, so peak
memory is two row blocks whatever the number of skips or the size of the file: the next
block is read (in a thread) while the current one is reduced. Rows stored as they are used
(no scaling, no correction) are mapped from the file rather than read
(:meth:`~waders.io.fits.raw.RowSource.mapped_rows`): the reduction runs on the page cache,
with no copy. When a reduction that propagates non-finite values (mean, sum, std, var)
covers every sample of the rows, corrupt (inf/NaN) samples are found in its result instead
of by a second pass over the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from waders.core.errors import ConfigError
from waders.core.image import SkipperImage

from .fits.raw import FitsRawSamples

__all__ = ["DEFAULT_BLOCK_BYTES", "reduce_skips", "resolve_range", "skip_reduction"]

#: Default size of one block of raw samples (float64) held in memory.
DEFAULT_BLOCK_BYTES = 128 << 20

#: Reduce plain rows mapped from the file (``RowSource.mapped_rows``) rather than read into buffers: no copy,
#: 0.1 s less CPU per 800 MB, which the imports running beside the first image's reduction use.
MAP_ROWS = True

#: Reductions whose result is inf or NaN whenever one reduced sample is (float64 sums of the samples).
_PROPAGATING = ("mean", "sum", "std", "var")


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
        source = sources[key]
        witness = _finite_witness(source, amps, functions, (lo, hi))
        for start, stop, raw_rows in _row_blocks(source, nrows, step, check=witness is None):
            for name, amp in zip(names, amps, strict=True):
                samples = amp.raw.from_rows(raw_rows) if raw_rows is not None else np.asarray(amp.raw[start:stop])  # type: ignore[union-attr]
                window = samples[:, :, lo:hi]
                with np.errstate(invalid="ignore" if witness else None):  # a corrupt sample raises below
                    for fname, reduce in reducers.items():
                        results[name][fname][start:stop] = reduce(window)
            hidden = witness is not None and raw_rows.dtype.kind == "f"  # type: ignore[union-attr]
            if hidden and not all(np.isfinite(results[n][witness][start:stop]).all() for n in names):
                source.check_finite(raw_rows, start, stop)  # raises, with the count of bad samples
        out.update(results)
    return out


def _finite_witness(source: Any, amps: Sequence[Any], functions: Sequence[str], window: tuple[int, int]) -> str | None:
    """A reduction whose results reveal any non-finite raw sample of the rows, or None (check the samples).

    Only for plain FITS rows whose every sample is reduced: all the skips, and amplifiers covering the row.
    """
    if source is None or not source.plain:
        return None
    nskips = amps[0].raw.nskips
    if window != (0, nskips):
        return None
    covered = np.zeros(source.shape[1] // nskips if source.shape[1] % nskips == 0 else 0, dtype=bool)
    for amp in amps:
        covered[amp.raw.first_col : amp.raw.first_col + amp.raw.ncols] = True
    if covered.size == 0 or not covered.all() or covered.size * nskips != source.shape[1]:
        return None
    return next((f for f in functions if f in _PROPAGATING), None)


def _row_blocks(source: Any, nrows: int, step: int, *, check: bool) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """(start, stop, rows) of every block of ``step`` rows; rows are read one block ahead in a thread.

    ``rows`` is None for samples that are not read from a FITS file (the amplifiers are sliced instead).
    """
    bounds = [(start, min(start + step, nrows)) for start in range(0, nrows, step)]
    if source is None:
        for start, stop in bounds:
            yield start, stop, None
        return

    # plain rows are mapped (block i + 1 while block i is reduced: a file not yet in the page cache is read then),
    # or else read into two buffers in turn: the same memory for every block, so pages are touched once (fresh
    # pages can cost as much as the reading)
    mapped = source.plain and MAP_ROWS
    largest = (bounds[0][1] - bounds[0][0]) * source.shape[1]  # the first block is the largest
    buffers = [np.empty(largest, source.memmap_info[1]) for _ in bounds[:2]] if source.plain and not mapped else []

    def read(i: int) -> np.ndarray:
        start, stop = bounds[i]
        if mapped:
            return source.mapped_rows(start, stop, check=check)
        if source.plain:
            return source.stored_rows(start, stop, check=check, out=buffers[i % 2])
        return source.rows(start, stop)

    if len(bounds) == 1:
        yield *bounds[0], read(0)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="waders-read") as pool:
        pending = pool.submit(read, 0)
        for i, (start, stop) in enumerate(bounds):
            rows = pending.result()
            if i + 1 < len(bounds):
                pending = pool.submit(read, i + 1)
            yield start, stop, rows  # the caller is done with ``rows`` when it asks for the next block
