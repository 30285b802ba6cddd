from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution

import click
import pytest

from waders.core.cli.main import cli, main
from waders.core.errors import ConfigError


def installed(dist: str) -> bool:
    try:
        distribution(dist)
    except PackageNotFoundError:
        return False
    return True


@pytest.fixture
def extra_commands():
    """Temporarily add commands that fail in the three ways a command can fail."""

    @click.command("bad-config")
    def bad_config():
        raise ConfigError("unknown parameter 'x' in P", hint="fix it")

    @click.command("crash")
    def crash():
        raise RuntimeError("boom\nsecond line")

    for command in (bad_config, crash):
        cli.add_command(command)
    yield
    for name in ("bad-config", "crash"):
        cli.commands.pop(name, None)


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: waders" in out and "--debug" in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("waders-core ")


def test_user_errors_are_one_line_with_exit_code_2(capsys, extra_commands):
    assert main(["bad-config"]) == 2
    err = capsys.readouterr().err
    assert err == "error: unknown parameter 'x' in P; fix it\n"
    assert main(["--no-such-option"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_unknown_command_suggests(capsys):
    assert main(["infoo" if installed("waders-io") else "nothing-like-this"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no command") and err.count("\n") == 1


def test_family_commands_appear_only_when_installed(capsys):
    main(["--help"])
    listed = capsys.readouterr().out.split("Commands:")[-1]
    for command, dist in (("ana", "waders-ana"), ("sim", "waders-sim"), ("dqm", "waders-dqm")):
        if installed(dist):
            assert f"  {command} " in listed
        else:
            assert f"  {command} " not in listed
            assert main([command]) == 2
            assert f"pip install {dist}" in capsys.readouterr().err


def test_internal_errors_are_short_unless_debug(capsys, extra_commands):
    assert main(["crash"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: boom second line" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "crash"])


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "waders.core", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "waders-core" in result.stdout


@pytest.mark.parametrize(
    ("args", "level"),
    [
        (["level"], "WARNING"),
        (["-v", "level"], "INFO"),
        (["level", "-v"], "INFO"),
        (["level", "-vv"], "DEBUG"),
        (["level", "--verbose", "--verbose"], "DEBUG"),
        (["level", "--debug"], "DEBUG"),
        (["level", "--", "-v"], "WARNING"),  # after '--' an argument of the command, not the option
    ],
)
def test_verbosity_and_debug_also_after_the_subcommand(capsys, args, level):
    """'waders ana -v ...' works like 'waders -v ana ...'."""
    import logging

    @click.command("level")
    @click.argument("rest", nargs=-1)
    def show_level(rest):
        click.echo(logging.getLevelName(logging.getLogger("waders").level))

    cli.add_command(show_level)
    try:
        assert main(args) == 0
    finally:
        cli.commands.pop("level", None)
    assert capsys.readouterr().out == f"{level}\n"


def test_debug_after_the_subcommand_shows_the_traceback(extra_commands):
    with pytest.raises(RuntimeError, match="boom"):
        main(["crash", "--debug"])
