"""Exact NaN-ignoring medians of the rows of a 2-D array, without numpy's per-row Python loop.

``numpy.nanmedian(a, axis=1)`` on an array with NaNs calls a Python function per row
(``apply_along_axis``): slow for the thousands of rows of an image.  :func:`nanmedian_rows`
sorts the rows once (NaNs sort last) and picks the middle value(s) of the non-NaN ones, giving
the same numbers: the middle value, or the mean ``(a + b) / 2`` of the two middle values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nanmedian_rows"]


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """Median of every row ignoring NaNs, like ``numpy.nanmedian(values, axis=1)`` (without its warnings).

    Parameters
    ----------
    values : numpy.ndarray
        2-D array of floats (any unit); NaN marks a missing value.

    Returns
    -------
    numpy.ndarray
        One median per row (float64, the unit of ``values``), NaN for rows without a value.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"nanmedian_rows needs a 2-D array, not {values.ndim}-D")
    if values.size == 0:
        return np.full(values.shape[0], np.nan)
    missing = np.isnan(values)
    used_columns = ~missing.all(axis=0)
    if not used_columns.all():  # e.g. everything but the overscan is masked: sort only what is there
        values, missing = values[:, used_columns], missing[:, used_columns]
    counts = values.shape[1] - np.count_nonzero(missing, axis=1)
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    ordered = np.sort(values, axis=1)
    low = np.maximum(counts - 1, 0) // 2
    high = counts // 2
    a = np.take_along_axis(ordered, low[:, None], axis=1)[:, 0]
    b = np.take_along_axis(ordered, np.minimum(high, values.shape[1] - 1)[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore", over="ignore"):
        median = np.where(counts % 2 == 1, a, (a + b) / 2)
    median[counts == 0] = np.nan
    return median
