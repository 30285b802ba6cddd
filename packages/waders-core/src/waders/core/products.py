"""Product declarations: what a process makes, declared once on the class.

A process lists its outputs in ``products``::

    class ClusterFinder(Process):
        products = (
            Product("clusters", "table", doc="one record per cluster (energies in keV)"),
            Product("n_clusters", "result", doc="clusters found in the amplifier"),
        )

The kinds are

``image``
    an image product added to every amplifier (``amplifier.set(name, array)``);
``table``
    an awkward/numpy table recorded in the image results (``image.record(process, name=table)``),
    or per amplifier with ``per_amplifier=True``;
``result``
    a number or array recorded per amplifier (``amplifier.record(process, name=value)``), or for
    the whole image with ``per_amplifier=False``;
``figure``
    a matplotlib figure drawn when plots are requested (per amplifier by default).

The writers of a command (the sinks of ``waders ana``) are chosen from these declarations:
a ``clusters`` table is written to a ROOT file, a product with a ``switch`` (the name of a
boolean parameter of the process) is written only when that parameter is on, figures are
written as image files.  :func:`declared` selects declarations of a chain of processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Product", "check_products", "declared"]

#: Kinds of products (see the module docstring).
KINDS = ("image", "table", "result", "figure")

_DEFAULT = object()


@dataclass(frozen=True)
class Product:
    """One declared output of a process.

    Parameters
    ----------
    name : str
        Name of the product (image product name, result key, table name or figure name).
    kind : {"image", "table", "result", "figure"}
        What it is (:data:`KINDS`).
    unit : str
        Unit of its values ("ADU", "e-", "keV", ...; "" for none or mixed units).
    doc : str
        One-line description.
    per_amplifier : bool
        One per amplifier (default) or one per image (the default for tables).
    columns : sequence of str
        Column names of a table (informative).
    switch : str, optional
        Name of a boolean parameter of the process that turns writing this product to a
        file on (e.g. ``"save_results"``); None = written whenever its sink runs.
    """

    name: str
    kind: str
    unit: str = ""
    doc: str = ""
    per_amplifier: Any = _DEFAULT
    columns: Sequence[str] = ()
    switch: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"product {self.name!r}: unknown kind {self.kind!r} (use one of {', '.join(KINDS)})")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a product name must be a non-empty string, not {self.name!r}")
        if self.per_amplifier is _DEFAULT:
            object.__setattr__(self, "per_amplifier", self.kind != "table")
        object.__setattr__(self, "per_amplifier", bool(self.per_amplifier))
        object.__setattr__(self, "columns", tuple(self.columns))

    def describe(self) -> str:
        """One line: ``name  <kind[, per amplifier|per image]> [unit]  doc (written with switch)``."""
        where = ""
        if self.per_amplifier != (self.kind != "table"):  # only where it differs from the kind's default
            where = ", per amplifier" if self.per_amplifier else ", per image"
        text = f"{self.name}  <{self.kind}{where}>"
        if self.unit:
            text += f" [{self.unit}]"
        if self.doc:
            text += f"  {self.doc}"
        if self.switch:
            text += f" (written with {self.switch})"
        return text


def check_products(owner: str, products: Any) -> tuple[Product, ...]:
    """Validate the ``products`` of a process class; return them as a tuple.

    Raises
    ------
    TypeError
        If an entry is not a :class:`Product` or a (kind, name) appears twice.
    """
    items = tuple(products) if isinstance(products, Iterable) and not isinstance(products, str) else (products,)
    loose = [item for item in items if not isinstance(item, Product)]
    if loose:
        raise TypeError(f"{owner}.products must be Product declarations, not {loose[0]!r}")
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item.kind, item.name)
        if key in seen:
            raise TypeError(f"{owner} declares a (kind, name) twice: {key}")
        seen.add(key)
    return items


def declared(processes: Iterable[Any], kind: str | None = None, name: str | None = None) -> list[tuple[Any, Product]]:
    """``(process, product)`` pairs of a chain, in process order, optionally of one kind and/or name."""
    return [
        (process, product)
        for process in processes
        for product in getattr(process, "products", ())
        if (kind is None or product.kind == kind) and (name is None or product.name == name)
    ]
