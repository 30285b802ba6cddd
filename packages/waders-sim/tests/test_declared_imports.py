"""waders-sim imports only the waders packages it declares (issue 15: it once imported waders-ana)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PACKAGE = Path(__file__).resolve().parents[1]


def test_every_waders_import_is_a_declared_dependency():
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    declared = {m.group(1) for r in project["dependencies"] if (m := re.match(r"waders-(\w+)", r))} | {"sim"}
    used: dict[str, set[str]] = {}
    sources = list((PACKAGE / "src" / "waders" / "sim").rglob("*.py"))
    assert len(sources) > 10
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):  # imports inside functions count too
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "waders" and len(parts) > 1:
                    used.setdefault(parts[1], set()).add(source.name)
    assert {"core", "io"} <= set(used)  # the scan sees the imports
    undeclared = {pkg: files for pkg, files in used.items() if pkg not in declared}
    assert not undeclared, f"waders-sim imports undeclared waders packages: {undeclared}"
