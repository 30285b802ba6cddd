"""Start-up imports of ``waders dqm`` (issue 18): help imports nothing heavy (no numpy, no jinja2)."""

from __future__ import annotations

import pytest

from waders.core.testing import heavy_imports, startup_imports


@pytest.mark.parametrize(
    "args",
    [["dqm", "--help"], ["dqm", "run", "--help"], ["dqm", "publish", "--help"], ["demo", "--help"]],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    modules = startup_imports(args)
    assert "waders.dqm.cli" in modules or "waders.dqm.demo" in modules
    assert heavy_imports(modules) == set()
