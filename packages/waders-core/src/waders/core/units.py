"""The waders unit system (CLHEP style) and parsing of unit expressions.

Internally every quantity is a plain ``float`` in the base units **mm, eV, s**;
counters (pixel, electron, ADU) and angles (rad) are 1.  A value given in another
unit is multiplied by that unit's constant on the way in and divided by it on the
way out::

    >>> from waders.core import units as u
    >>> 15 * u.um                    # pixel pitch, stored in mm
    0.015
    >>> (2.0 * u.keV) / u.eV
    2000.0

Unit expressions such as ``"um*um"``, ``"1/um"``, ``"e/pixel/day"``, ``"s/pixel"``
or ``"ADU"`` are parsed by :func:`parse_unit`, which also tracks the *dimension*
of the expression so that a length cannot be given where a time is expected.
Electrons, pixels and ADU are separate dimensions for that check (a gain converts
between electrons and ADU; a unit conversion never does).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import UnitError

__all__ = [
    "ADC",
    "ADU",
    "GeV",
    "Hz",
    "MeV",
    "Unit",
    "cm",
    "convert",
    "day",
    "deg",
    "e",
    "eV",
    "eVee",
    "hour",
    "keV",
    "m",
    "minute",
    "mm",
    "ms",
    "nm",
    "ns",
    "parse_quantity",
    "parse_unit",
    "pixel",
    "rad",
    "s",
    "um",
    "unit_factor",
    "us",
]

# --- base units -------------------------------------------------------------------
mm = 1.0  #: millimetre (base unit of length)
eV = 1.0  #: electronvolt (base unit of energy)
s = 1.0  #: second (base unit of time)
pixel = 1.0  #: one pixel (counter)
e = 1.0  #: one electron (counter)
ADU = 1.0  #: one analog-to-digital unit (counter)
rad = 1.0  #: radian

# --- derived units ----------------------------------------------------------------
nm = 1e-6 * mm
um = 1e-3 * mm
cm = 10.0 * mm
m = 1e3 * mm
keV = 1e3 * eV
MeV = 1e6 * eV
GeV = 1e9 * eV
eVee = eV  #: electron-equivalent eV
ns = 1e-9 * s
us = 1e-6 * s
ms = 1e-3 * s
minute = 60.0 * s
hour = 3600.0 * s
day = 86400.0 * s
Hz = 1.0 / s
deg = math.pi / 180.0 * rad
ADC = ADU  #: pysimdamicm's name for ADU

_DIMENSIONS = ("length", "energy", "time", "charge", "pixel", "adu", "angle")


@dataclass(frozen=True)
class Unit:
    """A parsed unit expression: a conversion factor and a dimension.

    Parameters
    ----------
    factor : float
        Value of one of this unit in internal units.
    dims : tuple of int
        Exponents of (length, energy, time, charge, pixel, adu, angle).
    expression : str
        The text the unit was parsed from.
    """

    factor: float
    dims: tuple[int, ...]
    expression: str = ""

    def __mul__(self, other: Unit) -> Unit:
        dims = tuple(a + b for a, b in zip(self.dims, other.dims, strict=True))
        return Unit(self.factor * other.factor, dims)

    def __truediv__(self, other: Unit) -> Unit:
        dims = tuple(a - b for a, b in zip(self.dims, other.dims, strict=True))
        return Unit(self.factor / other.factor, dims)

    def __pow__(self, power: int) -> Unit:
        return Unit(self.factor**power, tuple(d * power for d in self.dims))

    def compatible(self, other: Unit) -> bool:
        """Return True if both units measure the same kind of quantity."""
        return self.dims == other.dims

    def dimension_name(self) -> str:
        """Describe the dimension in words, e.g. ``"length^2"`` or ``"dimensionless"``."""
        parts = []
        for name, power in zip(_DIMENSIONS, self.dims, strict=True):
            if power == 1:
                parts.append(name)
            elif power:
                parts.append(f"{name}^{power}")
        return "*".join(parts) or "dimensionless"


def _dims(**powers: int) -> tuple[int, ...]:
    return tuple(powers.get(name, 0) for name in _DIMENSIONS)


_L, _E, _T = _dims(length=1), _dims(energy=1), _dims(time=1)
_NAMES: dict[str, tuple[float, tuple[int, ...]]] = {
    "1": (1.0, _dims()),
    "nm": (nm, _L),
    "um": (um, _L),
    "µm": (um, _L),
    "micron": (um, _L),
    "mm": (mm, _L),
    "cm": (cm, _L),
    "m": (m, _L),
    "eV": (eV, _E),
    "eVee": (eVee, _E),
    "keV": (keV, _E),
    "keVee": (keV, _E),
    "MeV": (MeV, _E),
    "GeV": (GeV, _E),
    "ns": (ns, _T),
    "us": (us, _T),
    "µs": (us, _T),
    "ms": (ms, _T),
    "s": (s, _T),
    "sec": (s, _T),
    "min": (minute, _T),
    "minute": (minute, _T),
    "h": (hour, _T),
    "hour": (hour, _T),
    "day": (day, _T),
    "Hz": (Hz, _dims(time=-1)),
    "e": (e, _dims(charge=1)),
    "e-": (e, _dims(charge=1)),
    "electron": (e, _dims(charge=1)),
    "pixel": (pixel, _dims(pixel=1)),
    "pix": (pixel, _dims(pixel=1)),
    "px": (pixel, _dims(pixel=1)),
    "ADU": (ADU, _dims(adu=1)),
    "ADC": (ADU, _dims(adu=1)),
    "rad": (rad, _dims(angle=1)),
    "deg": (deg, _dims(angle=1)),
}

_TOKEN = re.compile(r"\s*(?:(e-)|(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([A-Za-zµ_][A-Za-z0-9_µ]*)|(\*\*|[*/^()\-]))")


def known_units() -> list[str]:
    """Return the unit names understood by :func:`parse_unit`."""
    return sorted(name for name in _NAMES if name != "1")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise UnitError(f"cannot parse unit {text!r} at {text[pos:]!r}")
        tokens.append(next(group for group in match.groups() if group is not None))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser: expr = factor (('*'|'/') factor)*; factor = atom ('^' int)?."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> str:
        token = self._peek()
        if token is None:
            raise UnitError(f"unit {self.text!r} ends unexpectedly")
        self.pos += 1
        return token

    def parse(self) -> Unit:
        if not self.tokens:
            raise UnitError("empty unit expression")
        unit = self._expr()
        if self._peek() is not None:
            raise UnitError(f"unexpected {self._peek()!r} in unit {self.text!r}")
        return unit

    def _expr(self) -> Unit:
        unit = self._factor()
        while self._peek() in ("*", "/"):
            op = self._next()
            rhs = self._factor()
            unit = unit * rhs if op == "*" else unit / rhs
        return unit

    def _factor(self) -> Unit:
        unit = self._atom()
        if self._peek() in ("^", "**"):
            self._next()
            sign = 1
            token = self._next()
            parenthesised = token == "("
            if parenthesised:
                token = self._next()
            if token == "-":
                sign, token = -1, self._next()
            if parenthesised:
                self._expect(")")
            try:
                power = int(token) * sign
            except ValueError:
                raise UnitError(f"exponent {token!r} in unit {self.text!r} is not an integer") from None
            unit = unit**power
        return unit

    def _expect(self, token: str) -> None:
        if self._next() != token:
            raise UnitError(f"expected {token!r} in unit {self.text!r}")

    def _atom(self) -> Unit:
        token = self._next()
        if token == "(":
            unit = self._expr()
            self._expect(")")
            return unit
        if token[0].isdigit():
            return Unit(float(token), _dims())
        if token in _NAMES:
            factor, dims = _NAMES[token]
            return Unit(factor, dims)
        from difflib import get_close_matches

        close = get_close_matches(token, known_units(), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known units: {', '.join(known_units())}"
        raise UnitError(f"unknown unit {token!r} in {self.text!r}", hint=hint)


def parse_unit(expression: str) -> Unit:
    """Parse a unit expression such as ``"e/pixel/day"`` or ``"um^2"``.

    Parameters
    ----------
    expression : str
        Unit names joined by ``*`` and ``/``, with optional integer powers
        (``^2`` or ``**2``) and parentheses.  ``"1"`` is dimensionless.

    Returns
    -------
    Unit
        Its factor in internal units (mm, eV, s) and its dimension.

    Raises
    ------
    UnitError
        If the expression cannot be parsed.
    """
    unit = _Parser(str(expression)).parse()
    return Unit(unit.factor, unit.dims, str(expression).strip())


def unit_factor(expression: str | None) -> float:
    """Return the internal value of one ``expression`` (1.0 for ``None``)."""
    return 1.0 if expression is None else parse_unit(expression).factor


_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def parse_quantity(text: str, expected: str | None = None) -> float:
    """Parse ``"216.2 um*um"`` into an internal-unit float.

    Parameters
    ----------
    text : str
        A number followed by an optional unit expression.
    expected : str, optional
        The unit the quantity must be compatible with; a bare number is taken to
        be in this unit.

    Returns
    -------
    float
        The value in internal units.

    Raises
    ------
    UnitError
        If the text is not a number with a unit, or the unit has a different
        dimension than ``expected``.
    """
    match = _QUANTITY.match(str(text))
    if not match:
        raise UnitError(f"{text!r} is not a number with a unit (e.g. '15 um')")
    value = float(match.group(1))
    unit_text = match.group(2)
    target = parse_unit(expected) if expected else Unit(1.0, _dims())
    if not unit_text:
        return value * target.factor
    unit = parse_unit(unit_text)
    if not unit.compatible(target):
        want = f"'{expected}' ({target.dimension_name()})" if expected else "a plain number"
        raise UnitError(
            f"wrong unit '{unit_text}' ({unit.dimension_name()}) in {text!r}",
            hint=f"give a value in {want}",
        )
    return value * unit.factor


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` from one unit expression to another of the same dimension.

    Raises
    ------
    UnitError
        If the two units have different dimensions.
    """
    source, target = parse_unit(from_unit), parse_unit(to_unit)
    if not source.compatible(target):
        raise UnitError(
            f"cannot convert '{from_unit}' ({source.dimension_name()}) to '{to_unit}' ({target.dimension_name()})"
        )
    return value * source.factor / target.factor
