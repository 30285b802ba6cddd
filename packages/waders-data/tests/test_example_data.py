"""waders example-data: the example inputs of the documentation, written safely."""

from __future__ import annotations

import subprocess
import sys

from waders.data import DAMICM_IMAGE, GEANT4_DEMO, PYSIMDAMICM_CONFIGS, path
from waders.data.examples import example_files


def waders(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_writes_every_example_under_the_documented_names(tmp_path):
    result = waders("example-data", str(tmp_path / "ex"))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "ex").iterdir())
    expected = [
        "avg_Image_5_Low_Temp_109_20250807_170213_15.fz", "cal_1_6_ave.fits", "demo_g4.root",
        "image_lta_2_ave.fits", *sorted(p.name for p in path(PYSIMDAMICM_CONFIGS).glob("*.json")),
    ]  # fmt: skip
    assert names == sorted(expected)
    assert (tmp_path / "ex" / "demo_g4.root").read_bytes() == path(GEANT4_DEMO).read_bytes()
    assert (tmp_path / "ex" / "img_5.json").exists()
    assert result.stdout.splitlines()[-1] == f"{len(expected)} example files in {tmp_path / 'ex'}"
    # again: nothing to do, every file unchanged
    again = waders("example-data", str(tmp_path / "ex"))
    assert again.returncode == 0 and again.stdout.count("unchanged") == len(expected)


def test_default_folder_is_the_current_one(tmp_path):
    assert waders("example-data", cwd=tmp_path).returncode == 0
    assert (tmp_path / "avg_Image_5_Low_Temp_109_20250807_170213_15.fz").read_bytes() == path(DAMICM_IMAGE).read_bytes()


def test_a_different_file_is_not_replaced_without_force(tmp_path):
    mine = tmp_path / "img_5.json"
    mine.write_text('{"mine": 1}')
    result = waders("example-data", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {mine} exists and differs from the example file; "
        "pass --force to replace it, or choose another folder\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img_5.json"]  # nothing written
    assert mine.read_text() == '{"mine": 1}'
    forced = waders("example-data", "--force", str(tmp_path))
    assert forced.returncode == 0, forced.stderr
    assert "replaced  img_5.json" in forced.stdout
    assert mine.read_bytes() == (path(PYSIMDAMICM_CONFIGS) / "img_5.json").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_file_in_place_of_the_folder_is_a_one_line_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = waders("example-data", str(target))
    assert result.returncode == 2
    assert result.stderr == f"error: cannot write the examples into {target}: {target} is not a folder\n"


def test_every_example_is_described():
    for example in example_files():
        assert example.source.is_file() and example.what
