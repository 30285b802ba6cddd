"""Columns handed to uproot's TTree writer: storage types and basket sizes.

Storage types (what ROOT sees):

* booleans -> ``int32`` (``/I``; flags such as ``has_seed`` were C++ ``int`` in
  pysimdamicm, and uproot's 8-bit jagged leaves have had ROOT read problems);
* 8- and 16-bit integers -> ``int32``; other integers keep their type
  (``int32`` -> ``/I``, ``int64`` -> ``/L``, unsigned -> ``/i``, ``/l``);
* floating point -> ``float64`` (``/D``);
* strings (entry-level only) -> ``char*`` leaves (``/C``).

A column is either *flat* (one value per entry), a *string* column (one string
per entry) or *jagged* (``var * T``: one variable-length array per entry, written
as a counted array ``name[counter]``).  Anything deeper cannot be a TTree leaf
written by uproot and raises :class:`~waders.core.errors.DataError`.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from waders.core.errors import DataError

__all__ = ["chunk_bounds", "column", "storage_dtype"]

#: ``var * float64`` (awkward type objects: parsing datashape strings is slow).
_JAGGED_FLOAT = ak.types.ListType(ak.types.NumpyType("float64"))


def storage_dtype(dtype: Any, name: str) -> np.dtype:
    """Return the dtype a column of ``dtype`` is stored with (see the module docstring)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.dtype(np.int32)
    if dtype.kind in "iu":
        return np.dtype(np.int32) if dtype.itemsize < 4 else dtype.newbyteorder("=")
    if dtype.kind == "f":
        return np.dtype(np.float64)
    raise DataError(f"column '{name}' has type {dtype}, which a ROOT tree cannot store", hint="use numbers or strings")


def _content_type(array: ak.Array) -> ak.types.Type:
    return array.type.content if isinstance(array.type, ak.types.ArrayType) else array.type


def column(name: str, values: Any, *, allow_strings: bool = True) -> np.ndarray | ak.Array:
    """Convert ``values`` to a column uproot can write as one branch.

    Parameters
    ----------
    name : str
        Branch name (for error messages).
    values : array-like
        numpy array (1-D, or 2-D for a fixed-length array per entry), awkward array
        (``N * T``, ``N * var * T`` or ``N * string``) or list.
    allow_strings : bool
        Whether a string column is acceptable.

    Returns
    -------
    numpy.ndarray or ak.Array
        A 1-D numpy array (flat column), an awkward string array, or an awkward
        ``var * T`` array (jagged column).

    Raises
    ------
    DataError
        For types a ROOT tree cannot store (doubly-jagged arrays, missing values,
        records, complex numbers, strings where not allowed).
    """
    if isinstance(values, np.ndarray) and values.dtype.kind not in "OUS":
        if values.ndim == 1:
            return values.astype(storage_dtype(values.dtype, name), copy=False)
        if values.ndim == 2:
            values = ak.from_regular(ak.from_numpy(values, regulararray=True), axis=1)
        else:
            raise DataError(f"column '{name}' has {values.ndim} dimensions", hint="give at most one array per entry")
    try:
        array = values if isinstance(values, ak.Array) else ak.Array(values)
    except (TypeError, ValueError) as err:
        raise DataError(f"column '{name}' cannot be stored ({str(err).splitlines()[0]})") from None
    kind = _content_type(array)
    if isinstance(kind, ak.types.OptionType):
        raise DataError(f"column '{name}' has missing values (None)", hint="fill them, e.g. with -1")
    if kind.parameter("__array__") == "string":
        if not allow_strings:
            raise DataError(f"column '{name}' holds strings, which this tree cannot store", hint="store numbers")
        return array
    if isinstance(kind, ak.types.NumpyType | ak.types.UnknownType):
        flat = ak.to_numpy(array) if isinstance(kind, ak.types.NumpyType) else np.zeros(len(array))
        return flat.astype(storage_dtype(flat.dtype, name), copy=False)
    if isinstance(kind, ak.types.ListType | ak.types.RegularType):
        inner = kind.content
        if isinstance(inner, ak.types.UnknownType):
            return ak.enforce_type(ak.from_regular(array, axis=1), _JAGGED_FLOAT)
        if isinstance(inner, ak.types.NumpyType):
            target = storage_dtype(inner.primitive, name)
            array = ak.from_regular(array, axis=1)
            return ak.values_astype(array, target) if np.dtype(inner.primitive) != target else array
    raise DataError(
        f"column '{name}' has type {kind}, which uproot cannot write as a TTree branch",
        hint="give numbers, strings or one flat array of numbers per entry",
    )


def chunk_bounds(n_entries: int, counts: np.ndarray | None, max_entries: int, max_items: int) -> list[tuple[int, int]]:
    """Split ``n_entries`` entries into consecutive ranges for separate baskets.

    Parameters
    ----------
    n_entries : int
        Number of entries.
    counts : array of int, optional
        Number of jagged items (hits, pixels) of each entry.
    max_entries : int
        Maximum entries per range.
    max_items : int
        Maximum items per range (a single larger entry gets a range of its own).

    Returns
    -------
    list of (start, stop)
        Ranges covering ``0..n_entries``; empty if there are no entries.
    """
    max_entries = max(1, int(max_entries))
    cumulative = None if counts is None else np.cumsum(np.asarray(counts, dtype=np.int64))
    bounds = []
    start = 0
    while start < n_entries:
        stop = min(start + max_entries, n_entries)
        if cumulative is not None:
            before = cumulative[start - 1] if start else 0
            stop = min(stop, int(np.searchsorted(cumulative, before + max_items, side="right")))
            stop = max(stop, start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds
