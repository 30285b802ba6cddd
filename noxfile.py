"""Test sessions of the waders monorepo.

``nox`` runs the default sessions: the tests of every package (each in a fresh
environment holding only that package and its declared waders dependencies, so an
undeclared import fails), ``lint``, ``isolation``, ``root`` (PyROOT reads every
tree waders writes), ``browser``, ``docs`` and ``doc-commands`` (every shell command
of README.md and docs/ runs as printed).  ``nox -l`` lists them all.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parent
PACKAGES = ("data", "core", "io", "sim", "ana", "dqm")

nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["tests", "lint", "isolation", "root", "browser", "docs", "doc-commands"]
nox.options.error_on_missing_interpreters = False


def _waders_dependencies(package: str, *, test: bool = False) -> list[str]:
    """The package and, recursively, the waders packages it declares as dependencies.

    With ``test``, the waders packages of its ``test`` extra count too (waders-sim's tests
    analyse simulated images with waders-ana).
    """
    project = tomllib.loads((ROOT / "packages" / f"waders-{package}" / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    if test:
        requirements += project.get("optional-dependencies", {}).get("test", [])
    found = []
    for requirement in requirements:
        match = re.match(r"waders-(\w+)", requirement)
        if match:
            for dep in _waders_dependencies(match.group(1)):
                if dep not in found:
                    found.append(dep)
    return [*found, package] if package not in found else found


def _install(session: nox.Session, packages: list[str], extra_for: str | None = None) -> None:
    """Install local waders packages (not editable: the tests see what users get)."""
    args = []
    for package in packages:
        path = f"./packages/waders-{package}"
        args.append(f"{path}[test]" if package == extra_for else path)
    session.install(*args)


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests in an environment with only its declared dependencies.

    First the package is installed with its declared *runtime* dependencies only and
    ``tests/smoke_declared.py`` imports every module (and runs a tiny ``waders sim`` with
    an active ClusterFinder for waders-sim): the test extra may pull in other waders
    packages (waders-sim's tests use waders-ana) that would hide an undeclared import.
    """
    _install(session, _waders_dependencies(package))
    session.run("python", "tests/smoke_declared.py", package)
    _install(session, _waders_dependencies(package, test=True), extra_for=package)
    session.run(
        "pytest",
        f"packages/waders-{package}/tests",
        "-c",
        "pyproject.toml",
        "--rootdir",
        ".",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def isolation(session: nox.Session) -> None:
    """Only core, io and ana installed: 'waders ana' works and 'waders sim' does not exist."""
    _install(session, ["core", "io", "ana"])
    session.run("waders", "--help")
    session.run("waders", "ana", "--help")
    session.run("waders", "ana", "--list-processes")
    session.run(
        "python",
        "-c",
        "import subprocess, sys\n"
        "for cmd in ('sim', 'dqm'):\n"
        "    r = subprocess.run(['waders', cmd], capture_output=True, text=True)\n"
        "    assert r.returncode == 2, (cmd, r.returncode, r.stdout, r.stderr)\n"
        "    assert f'pip install waders-{cmd}' in r.stderr, r.stderr\n"
        "out = subprocess.run(['waders', '--help'], capture_output=True, text=True, check=True).stdout\n"
        "commands = out.split('Commands:')[1]\n"
        "assert '  ana ' in commands and '  sim ' not in commands and '  dqm ' not in commands, commands\n"
        "print('isolation ok: waders ana present, waders sim and waders dqm absent')",
    )


@nox.session
def root(session: nox.Session) -> None:
    """ROOT itself reads every tree waders writes (installs the PyPI 'root' package, about 240 MB)."""
    _install(session, ["data", "core", "io", "sim", "ana"], extra_for="io")
    session.install("root")
    session.run(
        "python",
        "-c",
        "import warnings; warnings.simplefilter('ignore'); import ROOT; print('ROOT', ROOT.gROOT.GetVersion())",
    )
    session.run(
        "pytest",
        "packages/waders-io/tests/test_root_compat.py",
        "packages/waders-ana/tests/test_pysimdamicm_layout.py",
        "packages/waders-sim/tests/test_pysimdamicm_layout.py",
        "-c",
        "pyproject.toml",
        "--rootdir",
        ".",
        "-m",
        "root",
        *session.posargs,
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with MkDocs, warnings as errors, reference pages generated from the code."""
    _install(session, list(PACKAGES))
    session.install("mkdocs>=1.5", "mkdocstrings[python]>=0.24")
    build = ROOT / "build"
    session.run("python", "docs/gen_reference.py", "docs", str(build / "docs"))
    config = (
        (ROOT / "mkdocs.yml")
        .read_text()
        .replace("docs_dir: docs", "docs_dir: docs")
        .replace("site_dir: build/site", "site_dir: site")
    )
    (build / "mkdocs.yml").write_text(config)
    session.run("mkdocs", "build", "--strict", "--config-file", str(build / "mkdocs.yml"))


@nox.session
def browser(session: nox.Session) -> None:
    """The DQM HTML report rendered by a real headless Chromium (Debian package, installed here)."""
    if not Path("/usr/bin/chromium").exists():
        session.run("apt-get", "update", "-qq", external=True)
        session.run(
            "apt-get", "install", "-y", "-qq", "chromium", external=True, env={"DEBIAN_FRONTEND": "noninteractive"}
        )
    _install(session, _waders_dependencies("dqm", test=True), extra_for="dqm")
    session.run(
        "pytest",
        "packages/waders-dqm/tests/test_report_browser.py",
        "packages/waders-dqm/tests/test_interactive_browser.py",
        "-c",
        "pyproject.toml",
        "--rootdir",
        ".",
        "-m",
        "browser",
        *session.posargs,
        env={"WADERS_REQUIRE_BROWSER": "1"},
    )


@nox.session(name="doc-commands")
def doc_commands(session: nox.Session) -> None:
    """Every shell command of README.md and docs/ runs as printed (in a temporary folder, after waders example-data)."""
    _install(session, list(PACKAGES))
    session.install("pytest>=8", "./packages/waders-core[dask]")  # docs/howto/cluster.md runs --executor dask
    session.run("pytest", "tests/test_doc_commands.py", "-c", "pyproject.toml", "--rootdir", ".", *session.posargs)
