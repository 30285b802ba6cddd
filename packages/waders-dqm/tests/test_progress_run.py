"""``waders dqm run`` shows a progress bar of the images on a terminal, also with worker processes."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from waders.core.cli.main import main

_spec = importlib.util.spec_from_file_location("_dqm_run_fixtures", Path(__file__).with_name("_run_fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    me_json = d / "me.json"
    me_json.write_text(json.dumps({"monitoring_elements": {"MEOVSPedestalSigma": {"active": 1}}}))
    return me_json, [str(fx.raw_file(d / f"img_{i}.fits", seed=i)) for i in range(3)]


@pytest.mark.parametrize("flag", [[], ["--no-progress"]])
def test_bar_of_the_images_with_worker_processes(images, tmp_path, monkeypatch, flag):
    me_json, files = images
    stderr = FakeTTY()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.delenv("WADERS_NO_PROGRESS", raising=False)
    args = ["dqm", "run", "--run", "7", "-o", str(tmp_path), "--me-json", str(me_json), "--image-plots", "none"]
    code = main([*flag, *args, "--executor", "processes", "--workers", "2", "--files-per-task", "1", *files])
    assert code == 0
    text = stderr.getvalue()
    if flag:
        assert text == ""
    else:
        assert "run 7" in text and "3/3" in text and "image" in text
        assert "1/3" in text or "2/3" in text  # updated as the images finish, not only at the end
