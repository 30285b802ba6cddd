"""``waders dqm run --publish WEBDIR`` keeps a published site current, run after run."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from waders.core.cli.main import main

_spec = importlib.util.spec_from_file_location("_dqm_run_fixtures", Path(__file__).with_name("_run_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

FEW = {"monitoring_elements": {"MEOVSPedestalSigma": {"active": 1}, "MEFitDCSigma": {"active": 1}}}


def embedded_data(page: Path) -> dict:
    """The JSON the interactive page draws (its <script id="dqm-data"> block)."""
    match = re.search(r'<script type="application/json" id="dqm-data">(.*?)</script>', page.read_text(), re.S)
    assert match, page
    return json.loads(match.group(1))


def test_three_runs_keep_the_published_site_current(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    me_json = tmp_path / "me.json"
    me_json.write_text(json.dumps(FEW))
    out, web = tmp_path / "dqm", tmp_path / "web"
    for run in (1, 2, 3):
        files = [str(fx.raw_file(raw / f"run{run}_img{i}.fits", seed=10 * run + i)) for i in range(2)]
        args = ["--no-progress", "dqm", "run", "--run", str(run), "-o", str(out), "--me-json", str(me_json)]
        code = main([*args, "--image-plots", "none", "--publish", str(web), *files])
        assert code == 0, capsys.readouterr().err
        assert f"run {run}: published in {web}" in capsys.readouterr().out
        index = (web / "index.html").read_text()
        # the index lists every run so far, newest first, each linked to its page
        listed = [int(n) for n in re.findall(r'href="run(\d{3})/report/index.html"', index)]
        assert listed == list(range(run, 0, -1))
        # no staging directory is left behind
        assert sorted(p.name for p in web.iterdir()) == ["index.html", *(f"run{r:03d}" for r in range(1, run + 1))]
    page = web / "run003" / "report" / "interactive.html"
    assert (web / "run003" / "report" / "assets" / "plotly.min.js").is_file()
    history = embedded_data(page)["history"]
    assert history["runs"] == [1, 2, 3]
    noise = next(t for t in history["trends"] if t["key"] == "noise")
    means = noise["amps"]["L"]["means"]
    assert [m[0] for m in means] == [1, 2, 3]  # three points, one per run
    assert [m[3] for m in means] == [2, 2, 2]  # each the mean of the run's two images
    truth = fx.NOISE / fx.NSKIPS**0.5 / fx.GAIN  # e-: the generated noise of an averaged pixel
    for _, mean, _, _ in means:
        assert mean == pytest.approx(truth, rel=0.1)
    # the run-3 history on the static page agrees: three runs
    assert "Trends over 3 run(s)" in (web / "run003" / "report" / "history.html").read_text()
    # a run published again unchanged is not copied again
    code = main(["--no-progress", "dqm", "publish", "--to", str(web), "--from", str(out)])
    assert code == 0
    assert capsys.readouterr().out.count("unchanged") == 3


def test_publish_into_an_unwritable_place_is_a_one_line_error(tmp_path, capsys):
    raw = fx.raw_file(tmp_path / "img.fits")
    me_json = tmp_path / "me.json"
    me_json.write_text(json.dumps(FEW))
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(
        ["dqm", "run", "--run", "5", "-o", str(tmp_path / "dqm"), "--me-json", str(me_json),
         "--image-plots", "none", "--publish", str(blocker / "web"), str(raw)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: cannot publish into") and err.count("\n") == 1
