"""waders ana on bad input: mutated headers and configurations, hostile names, colliding outputs, bad folders.

Every outcome is exit 0 or exit 2 with one ``error:`` line naming the file (never an
internal error or a hang), nothing is written outside the output folder and nothing is
overwritten silently.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

import waders.data
from waders.core.testing import (
    HEADER_VALUES,
    assert_clean_outcome,
    card_offsets,
    files_outside,
    property_settings,
    replace_card,
    run_cli,
)
from waders.io.fits.writer import write_raw_image
from waders.io.synthetic import make_raw_image

#: The users' analysis configuration (pysimdamicm layout) that the configuration mutations start from.
USER_CONFIG = waders.data.path(waders.data.PYSIMDAMICM_CONFIGS) / "panaSKImg_configuration.json"
#: Header keywords the analysis uses (skips, geometry, binning, exposure, structure).
KEYWORDS = ("NDCMS", "AMPL", "NPBIN", "NSBIN", "WPRESCAN", "WCCDCOLS", "WPRROWS", "WOVROWS", "MEXP", "NAXIS1")
#: JSON values put in place of a configuration value.
JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.sampled_from([0, -1, 10**18, 0.0, -0.5, 1e300, math.nan, math.inf, -math.inf]),
    st.floats(-1e4, 1e4),
    st.text(max_size=12),
    st.sampled_from(["../../x", "conditions", "10 keV", "3 e", "", "nan", "L", "mean;std"]),
    st.lists(st.one_of(st.none(), st.integers(-3, 50)), max_size=4),
    st.just({"L": 1.0, "U": "x"}),
)


@pytest.fixture(scope="module")
def raw_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small two-amplifier raw image (4 skips) with dark current and a few deposits."""
    image, _ = make_raw_image(
        amplifiers=("L", "U"), nrows=16, ncols=40, nskips=4, dark_current=0.2, deposits=[(5, 12, 40.0)], seed=4
    )
    return write_raw_image(tmp_path_factory.mktemp("raw") / "raw_4.fits", image)


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(value, list) and value and all(isinstance(v, dict | list) for v in value):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _replace(config: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(config) if isinstance(config, dict) else list(config)
    copy[path[0]] = _replace(copy[path[0]], path[1:], value)
    return copy


# --- property-based ---------------------------------------------------------------------------------------
@property_settings(max_examples=50)
@given(data=st.data())
def test_mutated_configurations_never_give_an_internal_error(raw_image, data):
    config = json.loads(USER_CONFIG.read_text())
    leaves = _leaves(config)
    for _ in range(data.draw(st.integers(1, 2), label="changes")):
        where = leaves[data.draw(st.integers(0, len(leaves) - 1), label="leaf")]
        config = _replace(config, where, data.draw(JSON_VALUES, label=f"value of {'.'.join(map(str, where))}"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.json"
        path.write_text(json.dumps(config))
        out = Path(tmp) / "out"
        outcome = run_cli(["ana", "--json", str(path), "-o", str(out), str(raw_image)], timeout=60)
        assert_clean_outcome(outcome, [str(path), str(raw_image)])
        assert not files_outside(out, {path.resolve()}, tmp)


@property_settings(max_examples=50)
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(KEYWORDS), st.sampled_from((*HEADER_VALUES, "4", "8", "80", "160"))),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_headers_never_give_an_internal_error(raw_image, edits):
    content = raw_image.read_bytes()
    for key, value in edits:
        for offset in card_offsets(content, key):
            content = replace_card(content, offset, value)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw_4.fits"
        path.write_bytes(content)
        outcome = run_cli(["ana", "-o", str(Path(tmp) / "out"), "--save-img", str(path)], timeout=60)
    assert_clean_outcome(outcome, [str(path)])


# --- hostile names, collisions, folders -------------------------------------------------------------------
def test_hostile_amplifier_names_write_nothing_outside_the_output_folder(tmp_path):
    path = tmp_path / "in" / "evil_5.fits"
    path.parent.mkdir()
    with fits.open(waders.data.path(waders.data.DAMICM_IMAGE)) as hdul:
        for i, hdu in enumerate(hdul[1:]):
            hdu.header["EXTNAME"] = f"../../escaped{i}/x" if i else "/tmp/../../escaped"
        hdul.writeto(path)
    before = {p.resolve() for p in tmp_path.rglob("*")}
    out = tmp_path / "a" / "b" / "out"
    outcome = run_cli(["ana", "--save-plots", "-o", str(out), str(path)])
    assert_clean_outcome(outcome, [str(path)])
    assert outcome.code == 0
    assert not files_outside(out, before, tmp_path)
    assert not list(Path("/tmp").glob("escaped*"))
    assert len(list((out / "plots").glob("evil_5_*escaped*"))) >= 4  # the plots are there, with safe names


def test_two_inputs_with_the_same_name_are_refused_before_anything_is_written(raw_image, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "raw_4.fits").write_bytes(raw_image.read_bytes())
    out = tmp_path / "out"
    outcome = run_cli(["ana", "-o", str(out), str(tmp_path / "a" / "raw_4.fits"), str(tmp_path / "b" / "raw_4.fits")])
    assert_clean_outcome(outcome, ["raw_4.fits"])
    assert outcome.code == 2 and "their outputs would overwrite each other" in outcome.errors[0]
    assert not out.exists()


@pytest.mark.parametrize("folder", ["/proc/waders_test_out", "FILE/sub"])
def test_an_output_folder_that_cannot_be_written(raw_image, tmp_path, folder):
    (tmp_path / "FILE").write_text("a file, not a folder")
    target = folder.replace("FILE", str(tmp_path / "FILE"))
    outcome = run_cli(["ana", "--save-img", "-o", target, str(raw_image)])
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and "cannot read or write" in outcome.errors[0]


def test_non_ascii_file_names_are_analysed(raw_image, tmp_path):
    path = tmp_path / "ünïcode_4.fits"
    path.write_bytes(raw_image.read_bytes())
    outcome = run_cli(["ana", "--save-img", "-o", str(tmp_path / "out"), str(path)])
    assert outcome.code == 0, outcome.stderr
    with fits.open(tmp_path / "out" / "ünïcode_4_waders.fits") as hdul:
        assert hdul[0].header["FILE"] == "\\xfcn\\xefcode_4.fits"  # escaped: FITS cards are ASCII


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--adu2e", "0"], "CalibrationProcess.gain"),
        (["--cal", "0"], "FitDarkCurrentProcess.calibration"),
        (["--set", "PedestalSubtractionProcess.n_sigma_to_mask=NaN"], "n_sigma_to_mask"),
        (["--set", "ClusterFinder.spr_threshold=[1, 0, 4]"], "spr_threshold"),
        (["--set", "detector.e2eV=0"], "e2eV: must be greater than 0"),
    ],
)
def test_non_physical_values_are_errors(raw_image, tmp_path, args, message):
    # issue 12: these were taken as numbers (a gain of 0, a NaN threshold)
    outcome = run_cli(["ana", "-o", str(tmp_path), *args, str(raw_image)])
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and message in outcome.errors[0]
    assert not list(tmp_path.iterdir())


def test_one_bad_file_is_one_line_and_a_batch_names_each_file(raw_image, tmp_path):
    bad = tmp_path / "bad_1.fits"
    bad.write_bytes(b"SIMPLE  =" + b" " * 5000)
    one = run_cli(["ana", "-o", str(tmp_path / "o1"), str(bad)])
    assert_clean_outcome(one, [str(bad)])
    assert one.code == 2 and one.stderr.count("\n") == 1
    batch = run_cli(["ana", "-o", str(tmp_path / "o2"), str(bad), str(raw_image)])
    assert batch.code == 2 and [str(bad) in line for line in batch.errors] == [True]
    assert "1 of 2 file(s)" in batch.stdout
