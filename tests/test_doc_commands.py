"""Every shell command of README.md and docs/ runs as printed.

Each page's fenced ``bash`` blocks are run in order, one command line at a time (a line
ending in a backslash continues), by ``bash`` in a fresh temporary folder where
``waders example-data .`` was run first, so a page may use what an earlier command of the
same page wrote.  A command fails the test when its exit code is not 0.

Markers (an HTML comment on the line before a block, invisible in the rendered page):

``<!-- doc-test: skip REASON -->``
    the block is not run (e.g. it needs a dask scheduler); the reason is required.
``<!-- doc-test: exit N -->``
    every command of the block must exit with code N (blocks that show an error).

Commands that set up the environment the test already runs in (creating a virtual
environment, ``pip install``, ``source``) or run the test sessions themselves (``nox``,
``pytest``) are left out by :data:`NOT_RUN`, each with its reason.

Pages whose first line is ``<!-- doc-test: python -->`` are notebooks (the tutorial): their
fenced ``python`` blocks are cells, run in order in one Python session, in a fresh folder
where ``waders example-data .`` was run; a cell that raises fails the test, naming its line.

Run it with ``nox -s doc-commands`` (every package installed), or ``pytest -c pyproject.toml
--rootdir . tests/test_doc_commands.py`` in an environment with every waders package.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: Commands not run, with the reason (a regular expression searched in the command line).
NOT_RUN = {
    r"(^|\s)-m venv\b": "creates a virtual environment: the test runs in one that has every package",
    r"\bpip install\b": "installs packages: the test runs in an environment that has every package",
    r"^source\s": "activates a virtual environment: the test runs in one",
    r"\bnox\b": "runs the test sessions, of which this test is one",
    r"\bpytest\b": "runs the test suite, of which this test is part",
}

_BLOCK = re.compile(r"^(?:<!--\s*doc-test:\s*(?P<marker>.*?)\s*-->\n)?```bash\n(?P<body>.*?)^```", re.M | re.S)


@dataclass(frozen=True)
class Command:
    """One command line of a page: where it is, and the exit code it must give (None: not run)."""

    page: str
    line: int
    text: str
    exit_code: int | None
    reason: str = ""


def commands_of(page: Path) -> list[Command]:
    """The command lines of the ``bash`` blocks of a page, with their markers applied."""
    text = page.read_text()
    name = page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name
    found = []
    for block in _BLOCK.finditer(text):
        marker = block.group("marker") or ""
        skip = re.fullmatch(r"skip\s+(\S.*)", marker)
        expect = re.fullmatch(r"exit\s+(\d+)", marker)
        if marker and not (skip or expect):
            raise ValueError(f"{name}: unknown doc-test marker {marker!r} (use 'skip REASON' or 'exit N')")
        first = text[: block.start("body")].count("\n") + 1
        lines = block.group("body").split("\n")
        i = 0
        while i < len(lines):
            start, command = i, lines[i]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            i += 1
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            reason = skip.group(1) if skip else next((r for p, r in NOT_RUN.items() if re.search(p, command)), "")
            code = None if reason else int(expect.group(1)) if expect else 0
            found.append(Command(name, first + start, command.strip(), code, reason))
    return found


ALL = {page.relative_to(ROOT).as_posix(): commands_of(page) for page in PAGES}


def test_the_pages_have_commands_and_most_run():
    """The extraction finds the documented commands (a test that runs nothing proves nothing)."""
    commands = [c for page in ALL.values() for c in page]
    run = [c for c in commands if c.exit_code is not None]
    assert len(run) >= 25, [c.text for c in run]
    assert {c.page for c in run} >= {"README.md", "docs/quickstart.md", "docs/howto/analyse.md"}
    assert all(c.reason for c in commands if c.exit_code is None)


def test_markers_continuations_and_setup_commands(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```bash\nwaders info a.fits   # comment\n# only a comment\n\nwaders ana \\\n    -o out/ a.fits\n```\n"
        "<!-- doc-test: exit 2 -->\n```bash\nwaders ana --json nope.json\n```\n"
        "<!-- doc-test: skip needs a scheduler -->\n```bash\nwaders ana --executor dask x.fits\n```\n"
        "```bash\npython3 -m venv .venv && .venv/bin/pip install ./packages/waders-core\n```\n"
        "```\nerror: not a bash block\n```\n"
    )
    found = [(c.line, c.text, c.exit_code, c.reason) for c in commands_of(page)]
    assert found == [
        (3, "waders info a.fits   # comment", 0, ""),
        (6, "waders ana  -o out/ a.fits", 0, ""),
        (11, "waders ana --json nope.json", 2, ""),
        (15, "waders ana --executor dask x.fits", None, "needs a scheduler"),
        (
            18,
            "python3 -m venv .venv && .venv/bin/pip install ./packages/waders-core",
            None,
            NOT_RUN[r"(^|\s)-m venv\b"],
        ),
    ]
    page.write_text("<!-- doc-test: maybe -->\n```bash\nwaders\n```\n")
    with pytest.raises(ValueError, match="unknown doc-test marker 'maybe'"):
        commands_of(page)


@pytest.mark.parametrize("page", [name for name, commands in ALL.items() if commands])
def test_every_command_of_the_page_runs(page, tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("WADERS_CONDITIONS", None)  # the pages use ./conditions.sqlite
    setup = subprocess.run(
        ["waders", "example-data", "."], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert setup.returncode == 0, setup.stderr
    failures = []
    for command in ALL[page]:
        if command.exit_code is None:
            continue
        result = subprocess.run(
            ["bash", "-c", command.text], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        if result.returncode != command.exit_code:
            failures.append(
                f"{command.page}:{command.line}: exit {result.returncode} (expected {command.exit_code}): "
                f"{command.text}\n{result.stderr.strip()[-2000:]}"
            )
    assert not failures, "\n\n".join(failures)


# --- notebook pages: python cells ----------------------------------------------------------------------
_PYTHON_PAGE = "<!-- doc-test: python -->"
_CELL = re.compile(
    r"^(?:<!--[ \t]*doc-test:[ \t]*(?P<marker>[^\n]*?)[ \t]*-->\n)?```python\n(?P<body>.*?)^```", re.M | re.S
)
#: Runs the cells given as JSON [[line, code], ...] on stdin in one namespace; reports the failing one.
_CELL_RUNNER = """
import json, sys, traceback
page, cells = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for line, code in cells:
    try:
        exec(compile(code, f"{page}:{line}", "exec"), namespace)
    except Exception:
        print(f"{page}:{line}: the cell failed", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
print(f"{len(cells)} cells ran")
"""


def python_cells(page: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of the ``python`` blocks of a notebook page (none for other pages)."""
    text = page.read_text()
    if not text.startswith(_PYTHON_PAGE):
        return []
    cells = []
    for block in _CELL.finditer(text):
        marker = block.group("marker") or ""
        if marker and not re.fullmatch(r"skip\s+\S.*", marker):
            raise ValueError(f"{page.name}: unknown doc-test marker {marker!r} before a python cell (use skip REASON)")
        if not marker:
            cells.append((text[: block.start("body")].count("\n") + 1, block.group("body")))
    return cells


NOTEBOOKS = {page.relative_to(ROOT).as_posix(): python_cells(page) for page in PAGES if python_cells(page)}


def run_cells(page: str, cells: list[tuple[int, str]], folder: Path) -> subprocess.CompletedProcess:
    """Run the cells of a page in a new Python process in ``folder`` (after ``waders example-data .``)."""
    import json

    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    setup = subprocess.run(
        ["waders", "example-data", "."], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert setup.returncode == 0, setup.stderr
    return subprocess.run(
        [sys.executable, "-c", _CELL_RUNNER],
        input=json.dumps([page, cells]),
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_tutorial_is_a_notebook_of_many_cells():
    assert "docs/tutorial.md" in NOTEBOOKS
    assert len(NOTEBOOKS["docs/tutorial.md"]) >= 10


def test_a_failing_cell_is_reported_with_its_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        f"{_PYTHON_PAGE}\n# t\n```python\nx = 41\n```\n<!-- doc-test: skip not runnable here -->\n"
        "```python\nraise SystemExit(3)\n```\n```python\nassert x == 42, x\n```\n"
    )
    cells = python_cells(page)
    assert cells == [(4, "x = 41\n"), (11, "assert x == 42, x\n")]
    result = run_cells("page.md", cells, tmp_path)
    assert result.returncode == 1
    assert "page.md:11: the cell failed" in result.stderr and "AssertionError: 41" in result.stderr


@pytest.mark.parametrize("page", sorted(NOTEBOOKS))
def test_every_cell_of_the_notebook_runs(page, tmp_path):
    result = run_cells(page, NOTEBOOKS[page], tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"{len(NOTEBOOKS[page])} cells ran" in result.stdout
