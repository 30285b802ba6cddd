"""The skipper image container: raw samples, named image products and results per amplifier.

Image products are named as in pysimdamicm so configurations keep working: the raw
samples are ``"raw"``; compressing gives ``"mean_compressed"`` (and ``"std_compressed"``,
...); each later process appends its suffix to its input name, e.g.
``"mean_compressed" -> "mean_compressed_pedestal_subtracted" ->
"mean_compressed_pedestal_subtracted_e"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import DataError
from .geometry import AmplifierGeometry, ImageGeometry

__all__ = ["MAX_REPR", "RAW", "Amplifier", "RawSamples", "SkipperImage", "iter_row_blocks", "short_repr"]

#: Name of the raw-sample product.
RAW = "raw"


class RawSamples(Protocol):
    """Raw samples of one amplifier, shape (rows, cols, skips), possibly read lazily.

    A numpy array satisfies this protocol; waders-io provides file-backed sources
    that read only the requested rows (for images larger than memory).
    """

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def __getitem__(self, key: Any) -> np.ndarray: ...


def iter_row_blocks(samples: RawSamples, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, block)`` with blocks of at most ``block_rows`` rows.

    Parameters
    ----------
    samples : RawSamples
        Array-like of shape (rows, cols, skips).
    block_rows : int
        Maximum rows per block (at least 1).
    """
    nrows = samples.shape[0]
    step = max(1, int(block_rows))
    for start in range(0, nrows, step):
        yield start, np.asarray(samples[start : min(start + step, nrows)])


@dataclass
class Amplifier:
    """Data of one amplifier: raw samples, 2-D image products and per-process results.

    Parameters
    ----------
    geometry : AmplifierGeometry
        Layout of the amplifier's pixels (readout order).
    raw : RawSamples, optional
        Samples of shape (rows, cols, skips), skips in time order; None for averaged inputs.
    products : dict
        Named 2-D images of shape ``geometry.shape``.
    header : dict
        Header cards specific to this amplifier (e.g. its FITS extension header).
    """

    geometry: AmplifierGeometry
    raw: RawSamples | None = None
    products: dict[str, np.ndarray] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Amplifier name."""
        return self.geometry.name

    @property
    def names(self) -> tuple[str, ...]:
        """Amplifier name and aliases (for per-amplifier parameters)."""
        return self.geometry.names

    def has(self, name: str) -> bool:
        """Return True if the product ``name`` (or ``"raw"``) is available."""
        return (name == RAW and self.raw is not None) or name in self.products

    def available(self) -> list[str]:
        """Names of the available products (``"raw"`` first when present)."""
        return ([RAW] if self.raw is not None else []) + list(self.products)

    def get(self, name: str) -> Any:
        """Return a product by name.

        Raises
        ------
        DataError
            If the product does not exist, naming the ones that do.
        """
        if name == RAW:
            if self.raw is None:
                raise DataError(
                    f"amplifier {self.name} has no raw samples (the input is an averaged image)",
                    hint="start the chain from 'mean_compressed'",
                )
            return self.raw
        try:
            return self.products[name]
        except KeyError:
            have = ", ".join(self.available()) or "none"
            raise DataError(
                f"image '{name}' is not available for amplifier {self.name} (available: {have})",
                hint="run the process that produces it earlier in the sequence, or fix the 'image' parameter",
            ) from None

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __repr__(self) -> str:
        rows, cols = self.geometry.shape
        products = ", ".join(self.available()) or "none"
        results = ", ".join(self.results) or "none"
        return short_repr(f"<Amplifier {self.name}: {rows}x{cols} pixels; products: {products}; results: {results}>")

    def set(self, name: str, array: np.ndarray) -> None:
        """Store a 2-D product; its shape must match the amplifier geometry."""
        array = np.asarray(array)
        if array.shape[:2] != self.geometry.shape:
            raise DataError(
                f"image '{name}' has shape {array.shape}, expected {self.geometry.shape} for amplifier {self.name}"
            )
        self.products[name] = array

    def record(self, process: str, **values: Any) -> None:
        """Add numbers computed by ``process`` for this amplifier."""
        self.results.setdefault(process, {}).update(values)


@dataclass
class SkipperImage:
    """A skipper-CCD image: its amplifiers, geometry, header and results.

    Parameters
    ----------
    amplifiers : dict
        :class:`Amplifier` per name, in processing order.
    geometry : ImageGeometry
        Geometry shared by the amplifiers and the readout settings.
    header : dict
        Primary header cards (key -> value).
    source : Path, optional
        File the image was read from.
    meta : dict
        Run number, image number, CCD id, time stamps, ... (``"run"``, ``"image"``, ``"ccd"``).
    """

    amplifiers: dict[str, Amplifier]
    geometry: ImageGeometry
    header: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    header_cards: dict[str, tuple[Any, str]] = field(default_factory=dict)
    provenance: Any = None

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        *,
        geometries: Mapping[str, AmplifierGeometry] | None = None,
        product: str = RAW,
        header: Mapping[str, Any] | None = None,
        **geometry_kwargs: Any,
    ) -> SkipperImage:
        """Build an image from in-memory arrays, one per amplifier (readout order).

        Parameters
        ----------
        arrays : mapping
            Amplifier name -> array; 3-D (rows, cols, skips) for ``product="raw"``,
            else 2-D.
        geometries : mapping, optional
            Geometry per amplifier; default: no prescan or overscan.
        product : str
            Name under which the arrays are stored.
        header : mapping, optional
            Header cards.
        **geometry_kwargs
            Passed to :class:`ImageGeometry` (``exposure_time``, ``layout``, ...).
        """
        amplifiers: dict[str, Amplifier] = {}
        nskips = 1
        for name, array in arrays.items():
            array = np.asarray(array)
            if product == RAW and array.ndim != 3:
                raise DataError(f"raw samples of amplifier {name} must be 3-D (rows, cols, skips)")
            geom = (geometries or {}).get(name) or AmplifierGeometry(name, array.shape[0], array.shape[1])
            amp = Amplifier(geom)
            if product == RAW:
                amp.raw = array
                nskips = array.shape[2]
            else:
                amp.set(product, array)
            amplifiers[name] = amp
        geometry_kwargs.setdefault("nskips", nskips)
        geometry_kwargs.setdefault("averaged", product != RAW)
        geometry = ImageGeometry({n: a.geometry for n, a in amplifiers.items()}, **geometry_kwargs)
        return cls(amplifiers, geometry, header=dict(header or {}))

    def __getitem__(self, name: str) -> Amplifier:
        try:
            return self.amplifiers[name]
        except KeyError:
            raise DataError(
                f"no amplifier '{name}' in {self.label} (amplifiers: {', '.join(self.amplifiers)})"
            ) from None

    def __repr__(self) -> str:
        amps = ", ".join(f"{n} {a.geometry.shape[0]}x{a.geometry.shape[1]}" for n, a in self.amplifiers.items())
        first = next(iter(self.amplifiers.values()), None)
        products = (", ".join(first.available()) if first is not None else "") or "none"
        skips = f", {self.geometry.nskips} skips" if self.geometry.nskips > 1 else ""
        return short_repr(f"<SkipperImage {self.label}: amplifiers {amps or 'none'}{skips}; products: {products}>")

    @property
    def label(self) -> str:
        """Short name of the image for messages and plot titles."""
        return self.source.name if self.source else "<in-memory image>"

    def record(self, process: str, **values: Any) -> None:
        """Add image-level numbers computed by ``process``."""
        self.results.setdefault(process, {}).update(values)

    def add_header_card(self, key: str, value: Any, comment: str = "") -> None:
        """Queue a header card for output files (replaces pysimdamicm's global ``_tohdr``)."""
        self.header_cards[key] = (value, comment)


#: Longest repr of images and amplifiers (notebooks print them; arrays are never shown).
MAX_REPR = 300


def short_repr(text: str) -> str:
    """``text`` cut to :data:`MAX_REPR` characters (keeping the closing ``>``)."""
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 5] + "...>"
