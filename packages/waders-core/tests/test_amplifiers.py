"""Keys of per-amplifier values against the amplifiers of a file: names, EXT<n>, input.amplifiers."""

from __future__ import annotations

import pytest

from waders.core.amplifiers import apply_amplifier_map, check_amplifier_keys
from waders.core.errors import ConfigError, UnknownNameError
from waders.core.geometry import AmplifierGeometry
from waders.core.inputs import InputConfig
from waders.core.kinds import Float
from waders.core.parameters import Configurable, Param


class Scaled(Configurable):
    factor = Param(1.0, Float(min=0), per_amplifier=True, doc="scale")
    rows = Param([], per_amplifier=True, doc="rows")


def acm() -> dict[str, AmplifierGeometry]:
    """Four one-amplifier extensions in the order of the DAMIC-M file (HDU 3 is CCD_D)."""
    names = ("CCD_A", "CCD_B", "CCD_D", "CCD_C")
    return {n: AmplifierGeometry(n, 4, 6, extension=i + 1, aliases=(f"EXT{i + 1}",)) for i, n in enumerate(names)}


def test_names_and_extension_numbers_match():
    step = Scaled.from_mapping({"factor": {"CCD_A": 1.0, "EXT2": 2.0, "CCD_D": 3.0, "EXT4": 4.0}})
    check_amplifier_keys([step], acm().values(), "f.fz")
    assert [step.value_for("factor", g.names) for g in acm().values()] == [1.0, 2.0, 3.0, 4.0]


def test_an_unmatched_key_names_keys_amplifiers_and_the_ways_to_key_them():
    step = Scaled.from_mapping({"factor": 2.0, "rows": {"L": [0], "U": [1]}})
    with pytest.raises(ConfigError) as err:
        check_amplifier_keys([step], acm().values(), "f.fz", "cfg.json")
    assert err.value.one_line() == (
        "cfg.json: Scaled.rows has values for L, U but f.fz has amplifiers CCD_A, CCD_B, CCD_D, CCD_C "
        "(key them by amplifier name, by extension number EXT1..EXT4, or map them in input.amplifiers)"
    )
    check_amplifier_keys([Scaled.from_mapping({"factor": 2.0})], acm().values(), "f.fz")  # one value for all: fine


def test_declared_names_become_aliases():
    mapped = apply_amplifier_map(acm(), {"A": "CCD_A", "D": "EXT3"}, "f.fz")
    assert mapped["CCD_A"].names == ("CCD_A", "EXT1", "A") and mapped["CCD_D"].names == ("CCD_D", "EXT3", "D")
    step = Scaled.from_mapping({"factor": {"A": 5.0, "D": 6.0, "CCD_B": 1.0, "CCD_C": 1.0}})
    check_amplifier_keys([step], mapped.values(), "f.fz")
    assert step.value_for("factor", mapped["CCD_D"].names) == 6.0
    with pytest.raises(ConfigError, match=r"input.amplifiers.E: f.fz has no amplifier 'CCD_E' \(amplifiers: CCD_A,"):
        apply_amplifier_map(acm(), {"E": "CCD_E"}, "f.fz")
    with pytest.raises(ConfigError, match="'EXT2' already names amplifier CCD_B"):
        apply_amplifier_map(acm(), {"EXT2": "CCD_A"}, "f.fz")
    two = {
        "CCD_A_L": AmplifierGeometry("CCD_A_L", 4, 6, aliases=("L",)),
        "CCD_B_L": AmplifierGeometry("CCD_B_L", 4, 6, aliases=("L",)),
    }
    with pytest.raises(ConfigError, match="'L' names several amplifiers"):
        apply_amplifier_map(two, {"left": "L"}, "f.fz")


def test_the_input_block_is_validated():
    assert InputConfig.from_mapping({"amplifiers": {"A": "CCD_A"}}).amplifiers == {"A": "CCD_A"}
    with pytest.raises(ConfigError, match=r"input.amplifiers.A: expected a string, got 1"):
        InputConfig.from_mapping({"amplifiers": {"A": 1}})
    with pytest.raises(ConfigError, match="empty name"):
        InputConfig.from_mapping({"amplifiers": {"A": " "}})
    with pytest.raises(UnknownNameError, match="did you mean 'amplifiers'"):
        InputConfig.from_mapping({"amplifier": {"A": "CCD_A"}})
