"""Helpers for the bad-input tests of the waders packages (used by their test suites).

:func:`run_cli` runs the ``waders`` command in this process (fast enough for
property-based tests with many examples) with a wall-clock bound, so that a hang is
a test failure and not a stuck CI job; :func:`assert_clean_outcome` states what every
bad input must give: exit 0, or exit 2 with one ``error:`` line naming the file, never
an internal error.  :func:`property_settings` is the bounded, deterministic
hypothesis profile of those tests.  :func:`startup_imports` lists the modules a
``waders`` command imports (start-up tests, issue 18).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HEADER_VALUES",
    "HEAVY_MODULES",
    "CliOutcome",
    "assert_clean_outcome",
    "card_offsets",
    "files_outside",
    "heavy_imports",
    "property_settings",
    "replace_card",
    "run_cli",
    "startup_imports",
]

#: Top-level packages that take tens to hundreds of ms to import: a command imports them only
#: when a step that uses them runs (help and listings import none of them).
HEAVY_MODULES = (
    "astropy",
    "awkward",
    "cramjam",
    "dask",
    "fsspec",
    "iminuit",
    "jinja2",
    "matplotlib",
    "numba",
    "numpy",
    "pandas",
    "PIL",
    "plotly",
    "pyarrow",
    "scipy",
    "tqdm",
    "uproot",
)

#: Broken header values (FITS value text): what a DAQ, a disk error or a hand edit writes.
HEADER_VALUES = (
    "nan", "'nan'", "inf", "'-inf'", "-1", "0", "1", "2", "9", "1.5", "1e9", "-1e300", "99999999999999999999",
    "'abc'", "''", "'   '", "T", "F", "'../../x'", "'a/b'", "'\u00e9'", "(1, 2)",
)  # fmt: skip


@dataclass
class CliOutcome:
    """Exit code and output of one ``waders`` call."""

    code: int | str
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        """The ``error:`` lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


class _Hang(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Hang


def run_cli(args: Sequence[str], timeout: float = 60.0) -> CliOutcome:
    """Run ``waders ARGS`` in this process; a call longer than ``timeout`` seconds is a hang.

    Returns
    -------
    CliOutcome
        ``code`` is the exit code, or ``"hang"`` when the call did not finish in time.
    """
    from .cli.main import main

    out, err = io.StringIO(), io.StringIO()
    use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
    previous = signal.signal(signal.SIGALRM, _alarm) if use_alarm else None
    if use_alarm:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: int | str = main(list(args))
    except _Hang:
        code = "hang"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return CliOutcome(code, out.getvalue(), err.getvalue())


def assert_clean_outcome(outcome: CliOutcome, names: Sequence[str] = ()) -> None:
    """Assert exit 0, or exit 2 with one ``error:`` line (naming one of ``names``), never a bug.

    Parameters
    ----------
    outcome : CliOutcome
        What :func:`run_cli` returned.
    names : sequence of str
        File names one of which the error line must contain (empty: not checked).
    """
    detail = f"exit {outcome.code}; stderr:\n{outcome.stderr}"
    assert outcome.code != "hang", f"the command hung; {detail}"
    assert "internal error" not in outcome.stderr, detail
    assert "Traceback" not in outcome.stderr, detail
    assert outcome.code in (0, 2), detail
    if outcome.code == 2:
        assert len(outcome.errors) == 1, detail
        if names:
            assert any(name in outcome.errors[0] for name in names), detail


def files_outside(folder: Any, before: set[Any], root: Any) -> set[Any]:
    """Files under ``root`` that are new since ``before`` and not inside ``folder`` (nor one of its parents)."""
    from pathlib import Path

    folder = Path(folder).resolve()
    now = {p.resolve() for p in Path(root).rglob("*")}
    return {p for p in now - before if folder not in p.parents and p != folder and p not in folder.parents}


def property_settings(max_examples: int) -> Any:
    """Hypothesis settings of the bad-input property tests: bounded and deterministic.

    ``derandomize`` and no example database make CI runs repeatable; the deadline is
    off because one example runs a whole command (its time is bounded by
    :func:`run_cli`'s timeout instead).
    """
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def card_offsets(data: bytes, key: str) -> list[int]:
    """Byte offsets of the header cards ``KEY = ...`` of a FITS file (cards are 80-byte aligned)."""
    prefix = f"{key:<8}= ".encode("ascii")
    offsets, start = [], 0
    while (found := data.find(prefix, start)) != -1:
        if found % 80 == 0:
            offsets.append(found)
        start = found + 1
    return offsets


def replace_card(data: bytes, offset: int, value: str) -> bytes:
    """Return ``data`` with the value field of the card at ``offset`` replaced by ``value`` (FITS text)."""
    text = value.encode("ascii", "replace")[:70].ljust(70)
    return data[: offset + 10] + text + data[offset + 80 :]


#: Child program of :func:`startup_imports`: run ``waders`` as ``python -m waders.core`` does,
#: then write the names in ``sys.modules`` (one a line) to the file named by argv[1].
_STARTUP_CHILD = """
import atexit, runpy, sys
out, sys.argv = sys.argv[1], ["waders", *sys.argv[2:]]

def write_modules():  # an exit handler: the waders command ends with os._exit after running them
    with open(out, "w", encoding="utf-8") as stream:
        stream.write("\\n".join(sorted(sys.modules)))

atexit.register(write_modules)
runpy.run_module("waders.core", run_name="__main__", alter_sys=True)
"""


def startup_imports(args: Sequence[str], timeout: float = 120.0) -> set[str]:
    """Every module in ``sys.modules`` after ``python -m waders.core ARGS`` ran (a fresh interpreter).

    ``sys.modules`` is read rather than a ``-X importtime`` report because modules loaded with
    :func:`importlib.import_module` (entry points, lazy names) are missing from that report.

    Parameters
    ----------
    args : sequence of str
        Arguments of the ``waders`` command, e.g. ``["ana", "--help"]``.
    timeout : float
        Wall-clock bound of the subprocess (s).

    Returns
    -------
    set of str
        Dotted module names (``"numpy"``, ``"numpy.linalg"``, ``"waders.core.cli.main"``...),
        including those ``python`` itself imports (``encodings``, ``site``...).

    Raises
    ------
    AssertionError
        If the command fails.
    """
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "modules.txt"
        done = subprocess.run(
            [sys.executable, "-c", _STARTUP_CHILD, str(listing), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={key: value for key, value in os.environ.items() if key != "PYTHONSTARTUP"},
            check=False,
        )
        assert done.returncode == 0, f"waders {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}"
        return set(listing.read_text(encoding="utf-8").split())


def heavy_imports(modules: set[str]) -> set[str]:
    """The :data:`HEAVY_MODULES` (top-level names) among ``modules``."""
    return {name.split(".")[0] for name in modules} & set(HEAVY_MODULES)
