"""Value kinds of declared parameters: validation, conversion and unit handling.

A *kind* turns a value read from JSON or the command line into the value a
process uses, or raises :class:`~waders.core.errors.ConfigError` with a message
that names the parameter.  Numeric kinds apply the parameter's unit: a bare
number is taken in the declared unit, a string such as ``"15 um"`` is parsed with
its own unit (which must have the same dimension), and the result is stored in
internal units (see :mod:`waders.core.units`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from difflib import get_close_matches
from typing import Any

from .errors import ConfigError, UnitError
from .units import parse_quantity, unit_factor

__all__ = [
    "JSON",
    "Bool",
    "Choice",
    "Float",
    "Int",
    "Kind",
    "ListOf",
    "MappingOf",
    "Optional",
    "Str",
    "Union",
    "kind_for_default",
]


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


class Kind:
    """Base class of value kinds."""

    #: Short description used in error messages and help, e.g. ``"a number"``.
    description = "a value"

    def convert(self, value: Any, where: str, unit: str | None) -> Any:
        """Validate ``value`` and return it in internal units."""
        raise NotImplementedError

    def to_declared(self, value: Any, unit: str | None) -> Any:
        """Return an internal value expressed in the declared unit (for help, provenance)."""
        return value

    def matches(self, value: Any) -> bool:
        """Return True if an internal ``value`` is of this kind (used to undo units)."""
        return True

    def error(self, where: str, value: Any) -> ConfigError:
        """Build the error for a value of the wrong type."""
        return ConfigError(f"{where}: expected {self.description}, got {_show(value)}")


class Bool(Kind):
    """``true``/``false``; also ``0``/``1`` and the strings true/false/yes/no (pysimdamicm files use 0/1)."""

    description = "true or false"
    _words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}

    def matches(self, value: Any) -> bool:
        return isinstance(value, bool)

    def convert(self, value: Any, where: str, unit: str | None) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in self._words:
            return self._words[value.strip().lower()]
        raise self.error(where, value)


class Float(Kind):
    """A real number, optionally bounded, with a unit.

    Parameters
    ----------
    min, max : float, optional
        Inclusive bounds, in the declared unit.
    positive : bool
        The value must be strictly greater than 0 (conversion factors such as a gain
        or ``e2eV``, thresholds): ``0`` would divide by zero or select everything.
    finite : bool
        NaN and infinities are refused (the default: a parameter that is not a number
        is a mistake, not a setting).
    """

    description = "a number"

    def __init__(
        self, min: float | None = None, max: float | None = None, *, positive: bool = False, finite: bool = True
    ) -> None:
        self.min, self.max = min, max
        self.positive, self.finite = positive, finite
        if positive:
            self.description = "a positive " + self.description.removeprefix("a ").removeprefix("an ")

    def _number(self, value: Any, where: str, unit: str | None) -> float:
        if isinstance(value, bool) or value is None:
            raise self.error(where, value)
        if isinstance(value, int | float):
            return float(value) * unit_factor(unit)
        if isinstance(value, str):
            try:
                return parse_quantity(value, unit)
            except UnitError as err:
                raise type(err)(f"{where}: {err.message}", hint=err.hint) from None
        raise self.error(where, value)

    def _check_bounds(self, number: float, where: str, unit: str | None) -> None:
        declared = number / unit_factor(unit)
        unit_text = f" {unit}" if unit else ""
        if self.finite and not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {declared:g}")
        if self.positive and not declared > 0:
            raise ConfigError(f"{where}: must be greater than 0, got {declared:g}{unit_text}")
        if self.min is not None and declared < self.min:
            raise ConfigError(f"{where}: {declared:g}{unit_text} is below the minimum {self.min:g}{unit_text}")
        if self.max is not None and declared > self.max:
            raise ConfigError(f"{where}: {declared:g}{unit_text} is above the maximum {self.max:g}{unit_text}")

    def convert(self, value: Any, where: str, unit: str | None) -> float:
        number = self._number(value, where, unit)
        if math.isnan(number) and not self.finite:
            return number
        self._check_bounds(number, where, unit)
        return number

    def to_declared(self, value: Any, unit: str | None) -> Any:
        return value / unit_factor(unit) if isinstance(value, float) else value

    def matches(self, value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)


class Int(Float):
    """An integer (an integral float such as ``5.0`` is accepted)."""

    description = "an integer"

    def convert(self, value: Any, where: str, unit: str | None) -> int:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise self.error(where, value) from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(where, value)
        if isinstance(value, float) and not value.is_integer():  # also NaN and infinities
            raise self.error(where, value)
        number = int(value)
        self._check_bounds(float(number), where, None)
        return number

    def to_declared(self, value: Any, unit: str | None) -> Any:
        return value

    def matches(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)


class Str(Kind):
    """A string."""

    description = "a string"

    def convert(self, value: Any, where: str, unit: str | None) -> str:
        if not isinstance(value, str):
            raise self.error(where, value)
        return value

    def matches(self, value: Any) -> bool:
        return isinstance(value, str)


class Choice(Str):
    """One string out of a fixed set, with optional aliases (``{"gaus_fit": "gauss_fit"}``).

    Parameters
    ----------
    choices : sequence of str
        The allowed values.
    aliases : mapping, optional
        Other accepted spellings and the choice each one means.
    case_sensitive : bool
        Whether ``"Row"`` is different from ``"row"``.
    """

    def __init__(
        self,
        choices: Sequence[str],
        aliases: Mapping[str, str] | None = None,
        case_sensitive: bool = False,
    ) -> None:
        self.choices = tuple(choices)
        self.aliases = dict(aliases or {})
        self.case_sensitive = case_sensitive
        self.description = "one of " + ", ".join(f"'{c}'" for c in self.choices)

    def convert(self, value: Any, where: str, unit: str | None) -> str:
        if not isinstance(value, str):
            raise self.error(where, value)
        lookup = {}
        for name in (*self.choices, *self.aliases):
            lookup[name if self.case_sensitive else name.lower()] = self.aliases.get(name, name)
        key = value if self.case_sensitive else value.lower()
        if key in lookup:
            return lookup[key]
        close = get_close_matches(key, list(lookup), n=1)
        hint = f"did you mean '{lookup[close[0]]}'?" if close else None
        raise ConfigError(f"{where}: {value!r} is not {self.description}", hint=hint)


class Optional(Kind):
    """``null`` or a value of ``kind``."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.description = f"{kind.description} or null"

    def convert(self, value: Any, where: str, unit: str | None) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        return self.kind.convert(value, where, unit)

    def to_declared(self, value: Any, unit: str | None) -> Any:
        return None if value is None else self.kind.to_declared(value, unit)

    def matches(self, value: Any) -> bool:
        return value is None or self.kind.matches(value)


class ListOf(Kind):
    """A list of values of one kind.

    Parameters
    ----------
    kind : Kind
        Kind of every element.
    separator : str, optional
        Also accept a single string split on this separator
        (pysimdamicm writes ``"mean;std"`` for ``["mean", "std"]``).
    length : int, optional
        Required number of elements.
    """

    def __init__(self, kind: Kind, separator: str | None = None, length: int | None = None) -> None:
        self.kind = kind
        self.separator = separator
        self.length = length
        size = f"{length} " if length else ""
        self.description = f"a list of {size}{kind.description}"

    def convert(self, value: Any, where: str, unit: str | None) -> list[Any]:
        if isinstance(value, str) and self.separator is not None:
            value = [part.strip() for part in value.split(self.separator) if part.strip()]
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise self.error(where, value)
        if self.length is not None and len(value) != self.length:
            raise ConfigError(f"{where}: expected {self.description}, got {len(value)} elements")
        return [self.kind.convert(item, f"{where}[{i}]", unit) for i, item in enumerate(value)]

    def to_declared(self, value: Any, unit: str | None) -> Any:
        return [self.kind.to_declared(item, unit) for item in value]

    def matches(self, value: Any) -> bool:
        return isinstance(value, list)


class MappingOf(Kind):
    """A JSON object whose values are all of one kind."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.description = f"an object of {kind.description}"

    def convert(self, value: Any, where: str, unit: str | None) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(where, value)
        return {str(k): self.kind.convert(v, f"{where}.{k}", unit) for k, v in value.items()}

    def to_declared(self, value: Any, unit: str | None) -> Any:
        return {k: self.kind.to_declared(v, unit) for k, v in value.items()}

    def matches(self, value: Any) -> bool:
        return isinstance(value, dict)


class Union(Kind):
    """A value of the first of several kinds that accepts it."""

    def __init__(self, *kinds: Kind) -> None:
        self.kinds = kinds
        self.description = " or ".join(kind.description for kind in kinds)

    def convert(self, value: Any, where: str, unit: str | None) -> Any:
        for kind in self.kinds:
            try:
                return kind.convert(value, where, unit)
            except UnitError:
                raise
            except ConfigError:
                continue
        raise self.error(where, value)

    def to_declared(self, value: Any, unit: str | None) -> Any:
        for kind in self.kinds:
            if kind.matches(value):
                return kind.to_declared(value, unit)
        return value

    def matches(self, value: Any) -> bool:
        return any(kind.matches(value) for kind in self.kinds)


class JSON(Kind):
    """Any JSON value, passed through unchanged."""

    description = "a JSON value"

    def convert(self, value: Any, where: str, unit: str | None) -> Any:
        return value


def kind_for_default(default: Any) -> Kind:
    """Infer the kind of a parameter from its default value."""
    if isinstance(default, bool):
        return Bool()
    if isinstance(default, int):
        return Int()
    if isinstance(default, float):
        return Float()
    if isinstance(default, str):
        return Str()
    if isinstance(default, list | tuple):
        return ListOf(JSON())
    raise TypeError(f"cannot infer the kind of a parameter from default {default!r}; pass kind=")
