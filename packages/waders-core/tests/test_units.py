from __future__ import annotations

import math

import pytest

from waders.core import units as u
from waders.core.errors import UnitError


def test_base_units_are_mm_ev_s():
    assert u.mm == u.eV == u.s == 1.0
    assert u.um == pytest.approx(1e-3)
    assert u.keV == pytest.approx(1e3)
    assert u.day == pytest.approx(86400.0)
    assert 15 * u.um == pytest.approx(0.015)


@pytest.mark.parametrize(
    ("expr", "factor", "dimension"),
    [
        ("um*um", 1e-6, "length^2"),
        ("um^2", 1e-6, "length^2"),
        ("um**2", 1e-6, "length^2"),
        ("1/um", 1e3, "length^-1"),
        ("um^-1", 1e3, "length^-1"),
        ("e/pixel/day", 1 / 86400, "time^-1*charge*pixel^-1"),
        ("s/pixel", 1.0, "time*pixel^-1"),
        ("ADU", 1.0, "adu"),
        ("ADC", 1.0, "adu"),
        ("ADU/e", 1.0, "charge^-1*adu"),
        ("e-/pixel", 1.0, "charge*pixel^-1"),
        ("keV", 1e3, "energy"),
        ("pixel/eVee", 1.0, "energy^-1*pixel"),
        ("deg", math.pi / 180, "angle"),
        ("(mm/s)^2", 1.0, "length^2*time^-2"),
        ("1", 1.0, "dimensionless"),
    ],
)
def test_parse_unit(expr, factor, dimension):
    unit = u.parse_unit(expr)
    assert unit.factor == pytest.approx(factor)
    assert unit.dimension_name() == dimension


def test_unknown_unit_suggests_the_closest():
    with pytest.raises(UnitError, match=r"unknown unit 'umm'.*did you mean"):
        u.parse_unit("umm*um")


@pytest.mark.parametrize("bad", ["", "um*", "um^x", "(um", "um)", "um % s"])
def test_malformed_unit_expressions(bad):
    with pytest.raises(UnitError):
        u.parse_unit(bad)


def test_parse_quantity_converts_and_checks_dimension():
    assert u.parse_quantity("216.2 um*um", "um*um") == pytest.approx(216.2e-6)
    assert u.parse_quantity("2 cm", "um") == pytest.approx(20.0)
    assert u.parse_quantity("3", "um") == pytest.approx(3e-3)  # bare number: declared unit
    assert u.parse_quantity("1e-3 e/pixel/s", "e/pixel/day") == pytest.approx(1e-3)
    with pytest.raises(UnitError, match=r"wrong unit 's' \(time\).*length"):
        u.parse_quantity("3 s", "um")
    with pytest.raises(UnitError, match="not a number"):
        u.parse_quantity("fast", "um")


def test_convert():
    assert u.convert(1.0, "day", "hour") == pytest.approx(24.0)
    assert u.convert(216.2, "um^2", "mm^2") == pytest.approx(216.2e-6)
    with pytest.raises(UnitError, match="cannot convert"):
        u.convert(1.0, "e", "ADU")  # a gain is not a unit conversion
