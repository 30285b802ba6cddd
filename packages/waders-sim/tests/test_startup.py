"""Start-up imports of ``waders sim`` (issue 18): help imports nothing heavy."""

from __future__ import annotations

import pytest

from waders.core.testing import heavy_imports, startup_imports


@pytest.mark.parametrize("args", [["sim", "--help"], ["dm", "--help"]], ids=" ".join)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    modules = startup_imports(args)
    assert "waders.sim.cli" in modules or "waders.sim.dmcommand" in modules
    assert heavy_imports(modules) == set()
