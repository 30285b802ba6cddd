"""Lazy modules and import prefetch (issue 18), each in a fresh interpreter so that ``sys.modules`` is clean."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run_python(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_lazy_module_is_imported_at_its_first_attribute_access() -> None:
    run_python(
        """
        import sys
        from waders.core.lazy import lazy_module

        colorsys = lazy_module("colorsys")
        assert "colorsys" not in sys.modules
        assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
        assert "colorsys" in sys.modules
        assert colorsys.hls_to_rgb is sys.modules["colorsys"].hls_to_rgb
        """
    )


def test_a_lazy_module_refuses_assignment_and_reports_missing_names() -> None:
    from waders.core.lazy import lazy_module

    json = lazy_module("json")
    with pytest.raises(AttributeError, match="lazy module 'json'"):
        json.dumps = None
    with pytest.raises(AttributeError, match="no_such_function"):
        json.no_such_function  # noqa: B018
    assert repr(json) == "<lazy module 'json'>"
    with pytest.raises(ModuleNotFoundError):
        lazy_module("no_such_module_for_waders").anything  # noqa: B018


def test_prefetch_imports_in_a_background_thread_and_skips_what_fails() -> None:
    run_python(
        """
        import sys
        from waders.core.lazy import prefetch

        assert "colorsys" not in sys.modules and "wave" not in sys.modules
        thread = prefetch(["no_such_module_for_waders", "colorsys", "wave", "colorsys"])
        assert thread is not None and thread.name == "waders-prefetch"
        thread.join(30)
        assert "colorsys" in sys.modules and "wave" in sys.modules
        assert "no_such_module_for_waders" not in sys.modules
        assert prefetch(["colorsys", "wave"]) is None  # all imported: no thread
        """
    )
