from __future__ import annotations

import pytest

from waders.core import Param, Process
from waders.core.errors import ConfigError, UnitError, UnknownNameError
from waders.core.kinds import Choice, Float, Int, ListOf, Optional, Str, Union


class Example(Process):
    """A process with one parameter of every kind."""

    A = Param(216.2, Float(min=0), unit="um*um", doc="amplitude")
    n_sigma_to_mask = Param(-1.0, doc="clipping")
    n_peaks = Param(3, Int(min=1), per_amplifier=True, doc="peaks")
    method = Param("gauss_fit", Choice(["gauss_fit", "median", "mean"], aliases={"gaus_fit": "gauss_fit"}))
    funcs = Param(["mean"], ListOf(Choice(["mean", "std", "median"]), separator=";"), aliases=("func_to_compress",))
    threshold = Param([None, 3, 4], ListOf(Optional(Union(Float(), Str())), length=3))
    gain = Param(10.0, unit="ADU/e", per_amplifier=True)
    in_overscan = Param(True)
    exposure = Param(None, Optional(Float(min=0)), unit="day")


def test_defaults_are_converted_to_internal_units():
    p = Example()
    assert pytest.approx(216.2e-6) == p.A  # mm^2
    assert p.n_peaks == 3
    assert p.funcs == ["mean"]
    assert p.exposure is None
    assert p.to_dict()["A"] == pytest.approx(216.2)  # declared unit again


def test_values_with_units_and_wrong_units():
    assert pytest.approx(216.2e-6) == Example(A="2.162e-4 mm^2").A
    assert Example(exposure="12 hour").exposure == pytest.approx(43200.0)
    with pytest.raises(UnitError, match=r"Example\.A: wrong unit 's'"):
        Example(A="3 s")


def test_unknown_parameter_suggests_the_right_name():
    with pytest.raises(UnknownNameError) as err:
        Example.from_mapping({"n_sigma_to_msk": 3})
    assert err.value.one_line() == ("unknown parameter 'n_sigma_to_msk' in Example (did you mean 'n_sigma_to_mask'?)")
    with pytest.raises(UnknownNameError, match="known parameters: A, .*threshold"):
        Example.from_mapping({"zzz": 1})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("A", "big", "Example.A: "),
        ("A", -1.0, "below the minimum 0"),
        ("n_peaks", 2.5, "expected an integer"),
        ("n_peaks", True, "expected an integer"),
        ("in_overscan", "maybe", "expected true or false"),
        ("method", "gaussian", "did you mean 'gauss_fit'"),
        ("threshold", [1, 2], "list of 3"),
        ("funcs", ["mean", "mode"], "Example.funcs\\[1\\]"),
    ],
)
def test_wrong_values_are_rejected_with_the_parameter_name(key, value, message):
    with pytest.raises(ConfigError, match=message):
        Example.from_mapping({key: value})


def test_compatibility_spellings():
    p = Example.from_mapping(
        {"method": "gaus_fit", "func_to_compress": "mean;std", "in_overscan": 0, "threshold": [None, 3, 4]}
    )
    assert p.method == "gauss_fit"
    assert p.funcs == ["mean", "std"]
    assert p.in_overscan is False
    assert p.threshold == [None, 3.0, 4.0]


def test_per_amplifier_values():
    p = Example.from_mapping({"gain": {"L": 10.0, "U": 10.7}, "n_peaks": 5})
    assert p.value_for("gain", "U") == pytest.approx(10.7)
    assert p.value_for("n_peaks", "anything") == 5
    with pytest.raises(ConfigError, match=r"no value for amplifier 'EXT1' \(given for: L, U\)"):
        p.value_for("gain", "EXT1")
    assert p.value_for("gain", "EXT1", default=1.0) == 1.0
    # an amplifier known under several names (CCD_A is pysimdamicm's EXT1) finds its value
    assert p.value_for("gain", ("CCD_A", "U")) == pytest.approx(10.7)
    with pytest.raises(ConfigError, match=r"Example\.n_peaks\.U"):
        Example.from_mapping({"n_peaks": {"L": 3, "U": 0}})


def test_legacy_keys_are_accepted_and_ignored():
    p = Example.from_mapping({"__DEBUG__": True, "__verbose__": False, "__sequence_id__": 3})
    assert set(p.ignored) == {"__DEBUG__", "__verbose__", "__sequence_id__"}


def test_parameters_are_read_only_and_replace_copies():
    p = Example()
    with pytest.raises(AttributeError, match="read-only"):
        p.A = 3.0
    q = p.replace(A=100.0)
    assert pytest.approx(100e-6) == q.A
    assert pytest.approx(216.2e-6) == p.A
    assert "A=100.0" in repr(q)


def test_bad_default_fails_at_class_creation():
    with pytest.raises(ConfigError):

        class Broken(Process):
            n = Param(0, Int(min=1))


def test_help_info_comes_from_the_declaration():
    infos = {p.name: p.info() for p in Example.params()}
    assert infos["A"].unit == "um*um"
    assert infos["A"].doc == "amplitude"
    assert infos["gain"].kind.endswith("(or per amplifier)")
    assert infos["funcs"].aliases == ("func_to_compress",)
    # the base class contributes the common parameters first
    assert [p.name for p in Example.params()][:2] == ["save_plots", "save_image"]
