from __future__ import annotations

import re
from importlib.metadata import requires, version
from pathlib import Path

import waders
import waders.core
import waders.io


def test_namespace_package_is_shared():
    # PEP 420: no waders/__init__.py, so every waders-* distribution can add a subpackage
    assert getattr(waders, "__file__", None) is None
    assert waders.core.__version__ == version("waders-core")


def test_version_and_dependencies_match_pyproject():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert waders.io.__version__ == re.search(r'^version = "(.+)"', text, re.M).group(1)
    declared = {re.split(r"[<>=!~;\[ ]", r)[0] for r in requires("waders-io")}  # "waders-core<0.2,>=0.1.0"
    assert "waders-core" in declared
    assert not declared & {"waders-ana", "waders-sim", "waders-dqm"}
