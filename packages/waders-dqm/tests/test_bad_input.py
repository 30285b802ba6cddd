"""waders dqm run on bad input: stores, run numbers, hostile names, identical images, unwritable folders."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

import waders.data
from waders.core.errors import ConfigError
from waders.core.testing import assert_clean_outcome, files_outside, property_settings, run_cli
from waders.dqm.document import reference_document
from waders.dqm.report.common import format_value
from waders.dqm.store import MongoStore
from waders.io.fits.writer import write_raw_image
from waders.io.synthetic import make_raw_image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw, _ = make_raw_image(nrows=30, ncols=60, nskips=4, dark_current=0.1, seed=2)
    return write_raw_image(tmp_path_factory.mktemp("img") / "img_1.fits", raw)


@property_settings(max_examples=300)
@given(
    value=st.floats(allow_nan=True, allow_infinity=True),
    error=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_format_value_always_returns(value, error):
    # identical values of three images gave an error of ~1e-17 and the formatter recursed without end
    text = format_value(value, error, "e-")
    assert isinstance(text, str) and text


def test_format_value_of_identical_values():
    assert format_value(5.0, 1e-17) == "5 ± 1.0e-17"
    assert format_value(0.1623, 0.0041, "e-") == "0.1623 ± 0.0041 e-"


def test_three_identical_images_keep_their_report(image, tmp_path):
    copies = []
    for number in (1, 2, 3):
        copies.append(tmp_path / f"img_{number}.fits")
        shutil.copy(image, copies[-1])
    outcome = run_cli(["dqm", "run", "--run", "4", "-o", str(tmp_path / "dqm"), *map(str, copies)])
    assert outcome.code in (0, 2), outcome.stderr
    assert "report" not in outcome.stderr and "internal error" not in outcome.stderr
    assert (tmp_path / "dqm" / "run004" / "report").is_dir()
    assert any((tmp_path / "dqm" / "run004" / "report").iterdir())


def test_a_store_that_is_not_sqlite(image, tmp_path):
    store = tmp_path / "dqm.sqlite"
    store.write_bytes(b"not a database " * 100)
    outcome = run_cli(["dqm", "run", "--run", "1", "--store", str(store), "-o", str(tmp_path), str(image)])
    assert_clean_outcome(outcome, [str(store)])
    assert outcome.code == 2 and "file is not a database" in outcome.errors[0]
    assert store.read_bytes() == b"not a database " * 100


@pytest.mark.parametrize("run", [str(2**63), str(10**30)])
def test_run_numbers_beyond_the_store(image, tmp_path, run):
    outcome = run_cli(["dqm", "run", "--run", run, "-o", str(tmp_path), str(image)])
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and "out of range" in outcome.errors[0]


@pytest.mark.parametrize("folder", ["/proc/waders_dqm_out", "FILE/sub"])
def test_an_output_folder_that_cannot_be_written(image, tmp_path, folder):
    (tmp_path / "FILE").write_text("a file")
    target = folder.replace("FILE", str(tmp_path / "FILE"))
    outcome = run_cli(["dqm", "run", "--run", "1", "-o", target, str(image)])
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and "cannot read or write" in outcome.errors[0]


def test_hostile_amplifier_names_and_unicode_file_names(tmp_path):
    path = tmp_path / "in" / "évil_5.fits"
    path.parent.mkdir()
    with fits.open(waders.data.path(waders.data.DAMICM_IMAGE)) as hdul:
        for i, hdu in enumerate(hdul[1:]):
            hdu.header["EXTNAME"] = f"../../../escaped{i}/../x"
        hdul.writeto(path)
    before = {p.resolve() for p in tmp_path.rglob("*")}
    out = tmp_path / "dqm"
    outcome = run_cli(["dqm", "run", "--run", "2", "--image-plots", "all", "-o", str(out), str(path)])
    assert_clean_outcome(outcome, [str(path)])
    assert not files_outside(out, before, tmp_path)
    summary = json.loads((out / "run002" / "summary_run002.json").read_text())
    plots = [e["plot"] for me in summary["images"]["évil_5"]["me"].values() for e in me.values() if e.get("plot")]
    assert plots and all(".." not in p and p.count("/") == 1 for p in plots)


def test_colliding_names_and_one_line_per_bad_file(image, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(image, tmp_path / folder / "img_1.fits")
    outcome = run_cli(
        ["dqm", "run", "--run", "1", "-o", str(tmp_path / "dqm"), str(tmp_path / "a" / "img_1.fits"),
         str(tmp_path / "b" / "img_1.fits")]
    )  # fmt: skip
    assert_clean_outcome(outcome)
    assert outcome.code == 2 and "would overwrite each other" in outcome.errors[0]
    assert not (tmp_path / "dqm").exists()
    bad = tmp_path / "bad_3.fits"
    bad.write_bytes(b"garbage" * 1000)
    outcome = run_cli(["dqm", "run", "--run", "1", "-o", str(tmp_path / "dqm"), str(bad)])
    assert outcome.code == 2 and outcome.stderr.count(str(bad)) == 1 and len(outcome.errors) == 1


def test_a_failed_reference_lookup_hides_the_password(tmp_path):
    mongomock = pytest.importorskip("mongomock")
    store = MongoStore("mongodb://alice:s3cret@db.example.org/dqm", client=mongomock.MongoClient())
    with pytest.raises(ConfigError) as caught:
        reference_document(store, tmp_path, 12)
    assert "s3cret" not in caught.value.one_line() and "alice:***@db.example.org" in caught.value.one_line()


def test_non_finite_values_are_formatted(tmp_path):
    assert format_value(math.nan) == "n/a" and format_value(1.0, math.inf) == "1"


def test_staging_folders_of_a_killed_publisher_are_removed(tmp_path):
    import subprocess
    import sys

    from waders.core.paths import remove_stale, temporary_tag

    host = temporary_tag().rsplit("-", 1)[0]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".run003.{host}-{int(dead.stdout)}.new-x1"
    (stale / "report").mkdir(parents=True)
    mine = tmp_path / f".run003.{temporary_tag()}.new-x2"  # this (live) process: kept
    mine.mkdir()
    assert remove_stale(tmp_path, ".run003.") == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name]
