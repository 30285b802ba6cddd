"""nanmedian_rows gives numpy.nanmedian(axis=1)'s numbers, without its per-row loop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from waders.ana.medians import nanmedian_rows


def _reference(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        return np.nanmedian(values, axis=1)


@pytest.mark.parametrize("seed", range(40))
def test_equals_numpy_nanmedian(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nrows, ncols = (int(n) for n in rng.integers(1, 40, 2))
    values = rng.normal(0.0, 1.0, (nrows, ncols))
    if seed % 3 == 0:  # ties
        values = np.round(values * 3)
    values[rng.random((nrows, ncols)) < rng.random()] = np.nan
    if seed % 4 == 0:
        values[rng.random((nrows, ncols)) < 0.1] = np.inf
        values[rng.random((nrows, ncols)) < 0.1] = -np.inf
    if seed % 5 == 0:
        values[:, int(rng.integers(0, ncols))] = np.nan
        values[int(rng.integers(0, nrows)), :] = np.nan
    np.testing.assert_array_equal(nanmedian_rows(values), _reference(values))


def test_masked_image_like_an_overscan() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(5000.0, 2.0, (300, 500))
    values[:, :400] = np.nan  # only the overscan columns are used
    median = nanmedian_rows(values)
    np.testing.assert_array_equal(median, np.median(values[:, 400:], axis=1))


def test_empty_and_wrong_shape() -> None:
    assert nanmedian_rows(np.zeros((3, 0))).shape == (3,)
    assert np.isnan(nanmedian_rows(np.full((2, 4), np.nan))).all()
    with pytest.raises(ValueError, match="2-D"):
        nanmedian_rows(np.zeros(4))
