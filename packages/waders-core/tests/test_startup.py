"""Start-up imports of the ``waders`` command (issue 18): help imports nothing heavy.

Each case runs ``python -m waders.core ...`` in a fresh interpreter and reads ``sys.modules``
afterwards, so an ``import numpy`` (or uproot, scipy...) added at the top of a
command module, or of anything the command path imports, fails here.
"""

from __future__ import annotations

import pytest

from waders.core.testing import HEAVY_MODULES, heavy_imports, startup_imports


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["conditions", "--help"]], ids=" ".join)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    modules = startup_imports(args)
    # the report is read: the command's own modules are in it
    assert {"click", "waders.core.cli.main"} <= modules
    assert heavy_imports(modules) == set()


def test_heavy_imports_names_top_level_packages() -> None:
    modules = {"numpy", "numpy.linalg", "scipy.special", "numpyro", "click", "waders.core"}
    assert heavy_imports(modules) == {"numpy", "scipy"}
    assert {"numpy", "scipy", "uproot", "awkward", "iminuit", "astropy", "matplotlib", "jinja2"} <= set(HEAVY_MODULES)
