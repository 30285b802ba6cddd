"""``waders dqm watch``: images arriving in a directory are monitored once each and published."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path

from waders.core.cli.main import main
from waders.dqm.watch import STATE, ready_files

_spec = importlib.util.spec_from_file_location("_dqm_run_fixtures", Path(__file__).with_name("_run_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

FEW = {"monitoring_elements": {"MEOVSPedestalSigma": {"active": 1}}}


def test_ready_files_wait_until_a_file_is_left_alone(tmp_path):
    old = fx.raw_file(tmp_path / "a.fits", seed=1)
    new = fx.raw_file(tmp_path / "b.fits", seed=2)
    (tmp_path / "notes.txt").write_text("not an image")
    now = time.time()
    os.utime(old, (now - 60, now - 60))
    assert ready_files(tmp_path, "*.fits*", {}, settle=5, now=now) == [old]  # b.fits was just written
    assert ready_files(tmp_path, "*.fits*", {}, settle=0, now=now) == [old, new]
    stamp = [old.stat().st_size, old.stat().st_mtime_ns]
    assert ready_files(tmp_path, "*.fits*", {"a.fits": stamp}, settle=0, now=now) == [new]


def test_watch_adds_new_images_and_keeps_the_site_current(tmp_path, capsys):
    incoming, out, web = tmp_path / "incoming", tmp_path / "dqm", tmp_path / "web"
    incoming.mkdir()
    me_json = tmp_path / "me.json"
    me_json.write_text(json.dumps(FEW))
    base = ["--no-progress", "dqm", "watch", str(incoming), "--run", "9", "-o", str(out), "--me-json", str(me_json)]
    base += ["--publish", str(web), "--settle", "0", "--interval", "0", "--image-plots", "none", "--cycles", "2"]
    for i in range(2):
        fx.raw_file(incoming / f"img_{i}.fits", seed=i)
    assert main(base) == 0
    assert "run 9: +2 file(s), 2 image(s) in the run" in capsys.readouterr().out
    # a later look finds one more image: only that one is monitored, the published run follows
    fx.raw_file(incoming / "img_2.fits", seed=2)
    assert main(base) == 0
    output = capsys.readouterr().out
    assert "run 9: +1 file(s), 3 image(s) in the run" in output
    assert output.count("file(s)") == 1
    assert sorted(json.loads((out / "run009" / STATE).read_text())) == ["img_0.fits", "img_1.fits", "img_2.fits"]
    published = json.loads((web / "run009" / "summary_run009.json").read_text())
    assert len(published["images"]) == 3
    assert re.search(r'href="run009/report/index.html"', (web / "index.html").read_text())
    # nothing new: nothing done
    assert main(base) == 0
    assert "file(s)" not in capsys.readouterr().out


def test_watch_a_missing_directory_is_a_one_line_error(tmp_path, capsys):
    assert main(["dqm", "watch", str(tmp_path / "nope"), "--run", "1", "--cycles", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no directory") and err.count("\n") == 1
