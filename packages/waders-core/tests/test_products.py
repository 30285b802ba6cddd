"""Product declarations: what a process makes, declared once and checked when the class is defined."""

from __future__ import annotations

import pytest

from waders.core import Process, Product
from waders.core.products import KINDS, declared


class Finder(Process):
    per_amplifier = True
    products = (
        Product("clusters", "table", "keV", "one record per cluster"),
        Product("n_clusters", "result", doc="clusters per amplifier"),
        Product("clusters", "figure", doc="energy spectrum"),
    )


class Silent(Process):
    per_amplifier = True


def test_kinds_and_where_they_live_default_per_amplifier():
    assert set(KINDS) == {"image", "table", "result", "figure"}
    table, result, figure = Finder.products
    assert (table.per_amplifier, result.per_amplifier, figure.per_amplifier) == (False, True, True)
    assert Product("slices", "table", per_amplifier=True, columns=["a", "b"]).columns == ("a", "b")
    assert Silent.products == () and Process.products == ()


def test_declared_selects_by_kind_and_name_in_process_order():
    finder, silent = Finder(), Silent()
    assert [(p.name, d.kind) for p, d in declared([silent, finder], name="clusters")] == [
        ("Finder", "table"),
        ("Finder", "figure"),
    ]
    assert declared([silent, finder], "image") == []
    assert [d.name for _, d in declared([finder], "result")] == ["n_clusters"]


def test_describe_shows_kind_unit_and_switch():
    assert Finder.products[0].describe() == "clusters  <table> [keV]  one record per cluster"
    slices = Product("slices", "table", per_amplifier=True, doc="per slice", switch="save_results")
    assert slices.describe() == "slices  <table, per amplifier>  per slice (written with save_results)"


def test_bad_declarations_fail_when_the_class_is_defined():
    with pytest.raises(ValueError, match="unknown kind 'plot'"):
        Product("x", "plot")
    with pytest.raises(TypeError, match="must be Product declarations"):

        class Loose(Process):
            products = ("clusters",)

    with pytest.raises(TypeError, match="declares a \\(kind, name\\) twice"):

        class Twice(Process):
            products = (Product("a", "image"), Product("a", "image"))
