"""Per-amplifier values keyed by amplifier name, extension number or a declared mapping, on the real DAMIC-M file.

The file (waders.data DAMICM_IMAGE) has four one-amplifier extensions, HDUs 1 to 4, named
CCD_A, CCD_B, CCD_D, CCD_C.  pysimdamicm's img_5.json (waders.data PYSIMDAMICM_CONFIGS)
keys its gains EXT1..EXT4 = 1.26, 1.32, 1.34, 1.31 ADU/e-.  The chain here is cut to
compress -> pedestal -> calibration with the configured gains, so the gain every amplifier
used is exactly the configured one and shows which key reached which amplifier.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from waders.ana.runner import AnalysisOptions, analyse_file
from waders.core import load_config
from waders.core.errors import ConfigError
from waders.data import DAMICM_IMAGE, PYSIMDAMICM_CONFIGS, path

IMAGE = path(DAMICM_IMAGE)
STEM = "avg_Image_5_Low_Temp_109_20250807_170213_15"
#: img_5.json's gains by HDU number; HDU 3 is CCD_D and HDU 4 is CCD_C.
GAINS = {"CCD_A": 1.26, "CCD_B": 1.32, "CCD_D": 1.34, "CCD_C": 1.31}
SEQUENCE = "CompressSkipperProcess;PedestalSubtractionProcess;CalibrationProcess"


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=300)


def img5(keys: dict[str, str] | None = None, amplifiers: dict[str, str] | None = None) -> dict:
    """img_5.json with the EXTn keys renamed by ``keys`` and an optional input.amplifiers block."""
    text = (path(PYSIMDAMICM_CONFIGS) / "img_5.json").read_text()
    for old, new in (keys or {}).items():
        text = text.replace(f'"{old}"', f'"{new}"')
    config = json.loads(text)
    config["process"]["sequence"] = SEQUENCE
    config["process"]["CalibrationProcess"]["from_dc_fit"] = False
    if amplifiers is not None:
        config["input"]["amplifiers"] = amplifiers
    return config


def gains_used(config: dict, tmp_path: Path) -> dict[str, float]:
    options = AnalysisOptions(output_dir=tmp_path)
    outputs = analyse_file(IMAGE, load_config(config, kind="analysis"), options)
    summary = json.loads(Path(outputs["summary"]).read_text())
    return {name: amp["gain_adu_per_e"] for name, amp in summary["amplifiers"].items()}


def test_keyed_by_extension_number_as_pysimdamicm(tmp_path):
    assert gains_used(img5(), tmp_path) == GAINS


def test_keyed_by_extension_name(tmp_path):
    keys = {"EXT1": "CCD_A", "EXT2": "CCD_B", "EXT3": "CCD_D", "EXT4": "CCD_C"}
    assert gains_used(img5(keys), tmp_path) == GAINS


def test_keyed_by_names_declared_in_input_amplifiers(tmp_path):
    keys = {"EXT1": "A", "EXT2": "B", "EXT3": "D", "EXT4": "C"}
    mapping = {"A": "CCD_A", "B": "CCD_B", "C": "EXT4", "D": "CCD_D"}  # targets: names or extension numbers
    assert gains_used(img5(keys, mapping), tmp_path) == GAINS


def test_legacy_left_upper_keys_are_a_configuration_error_before_any_processing(tmp_path):
    config = tmp_path / "lu.json"
    config.write_text(json.dumps(img5({"EXT1": "L", "EXT2": "U", "EXT3": "U", "EXT4": "L"})))
    out = tmp_path / "out"
    for args in (["--check", str(IMAGE)], ["-o", str(out), str(IMAGE)]):
        result = waders("ana", "--json", str(config), *args)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert lines[0] == (
            f"error: {config}: CalibrationProcess.gain has values for L, U but {IMAGE.name} has "
            "amplifiers CCD_A, CCD_B, CCD_D, CCD_C (key them by amplifier name, by extension number EXT1..EXT4, "
            "or map them in input.amplifiers)"
        )
    assert not out.exists() or not any(out.iterdir())  # nothing was processed
    # without a file, --check cannot know the amplifiers
    assert waders("ana", "--json", str(config), "--check").returncode == 0


def test_a_mapping_to_an_amplifier_the_file_does_not_have(tmp_path):
    config = img5({"EXT1": "A", "EXT2": "B", "EXT3": "D", "EXT4": "C"}, {"A": "CCD_A", "B": "CCD_B", "C": "CCD_C"})
    config["input"]["amplifiers"]["D"] = "CCD_E"
    with pytest.raises(ConfigError, match=r"input.amplifiers.D: .* has no amplifier 'CCD_E' \(amplifiers: CCD_A"):
        gains_used(config, tmp_path)
    config["input"]["amplifiers"] = {"CCD_B": "CCD_A"}
    with pytest.raises(ConfigError, match="'CCD_B' already names amplifier CCD_B"):
        gains_used(config, tmp_path)


def test_unmatched_key_names_the_unmatched_keys_only(tmp_path):
    config = img5({"EXT4": "EXT5"})
    with pytest.raises(ConfigError, match=r"has values for EXT5 but .* has amplifiers CCD_A, CCD_B, CCD_D, CCD_C"):
        gains_used(config, tmp_path)


def test_a_row_or_column_range_beyond_the_image_is_an_error(tmp_path):
    """The extensions have 320 rows and 640 columns; a range end beyond them is named with the file."""
    config = img5()
    config["input"]["image"]["id_col_end"] = 700
    with pytest.raises(ConfigError, match=rf"input.image.id_col_end = 700 is beyond the 640 cols of {IMAGE.name}"):
        gains_used(config, tmp_path)
    config = img5()
    config["process"]["PedestalSubtractionProcess"]["id_row_end"] = 321
    with pytest.raises(ConfigError, match=r"PedestalSubtractionProcess.id_row_end = 321 is beyond the 320 rows"):
        gains_used(config, tmp_path)
    config["process"]["PedestalSubtractionProcess"]["id_row_end"] = 320  # the last row is fine
    assert gains_used(config, tmp_path) == GAINS
