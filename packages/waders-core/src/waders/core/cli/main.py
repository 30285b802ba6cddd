"""The ``waders`` umbrella command.

Subcommands come from the entry-point group ``waders.commands`` and are imported
only when used, so ``waders --help`` lists ``ana``, ``sim``, ``dqm`` (and ``info``)
exactly when the packages providing them are installed.

Errors caused by user input (:class:`~waders.core.errors.WadersError` and click's
usage errors) are printed as one line on stderr with exit code 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading
from collections.abc import Sequence
from difflib import get_close_matches
from importlib.metadata import entry_points
from typing import Any

import click

from ..allocator import use_one_malloc_arena
from ..errors import WadersError, environment_error
from ..log import setup_logging
from ..plugins import COMMANDS_GROUP
from ..progress import configure as configure_progress
from ..versions import waders_versions

__all__ = ["cli", "main"]

#: Commands of the waders family and the package that provides each.
KNOWN_COMMANDS = {
    "ana": "waders-ana",
    "sim": "waders-sim",
    "dqm": "waders-dqm",
    "demo": "waders-dqm",
    "info": "waders-io",
    "example-data": "waders-data",
}
#: The successors of pysimdamicm's scripts (docs/howto/tools.md).
KNOWN_COMMANDS.update(
    {
        "dm": "waders-sim",
        "energy-threshold": "waders-ana",
        "hot-regions": "waders-ana",
        "cluster-topology": "waders-ana",
        "image-grid": "waders-ana",
    }
)


class LazyGroup(click.Group):
    """A click group whose subcommands are entry points, loaded on demand."""

    def _entry_points(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._entry_points()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        ep = self._entry_points().get(cmd_name)
        if ep is None:
            return None
        try:
            command = ep.load()
        except Exception as err:
            dist = ep.dist.name if ep.dist else "its package"
            raise WadersError(f"command '{cmd_name}' failed to load: {err}", hint=f"reinstall {dist}") from err
        if not isinstance(command, click.Command):
            raise WadersError(f"entry point '{cmd_name}' of group {COMMANDS_GROUP} is not a click command")
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            if name in KNOWN_COMMANDS:
                raise click.UsageError(
                    f"'waders {name}' is not installed; install it with: pip install {KNOWN_COMMANDS[name]}"
                )
            close = get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            available = ", ".join(self.list_commands(ctx)) or "none"
            raise click.UsageError(f"no command '{name}'{hint}; commands installed: {available}")
        return super().resolve_command(ctx, args)


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for dist, version in waders_versions().items():
        click.echo(f"{dist} {version}")
    ctx.exit(0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show the versions of the installed waders packages and exit.",
)
@click.option("-v", "--verbose", count=True, help="Print progress (-v) or debug messages (-vv).")
@click.option("--debug", is_flag=True, help="Debug messages, and tracebacks instead of one-line errors.")
@click.option(
    "--no-progress",
    is_flag=True,
    envvar="WADERS_NO_PROGRESS",
    help="No progress bars (they are shown only on a terminal anyway; or set $WADERS_NO_PROGRESS=1).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool, no_progress: bool = False) -> None:
    """waders: simulate, analyse and monitor skipper-CCD images.

    Run 'waders COMMAND --help' for the options of a command.
    """
    setup_logging(verbose, debug)
    configure_progress(not no_progress)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


#: Options of the umbrella command accepted anywhere on the line (``waders ana -v ...``).
_GLOBAL_FLAG = re.compile(r"-v+|--verbose|--debug")


def hoist_global_flags(args: Sequence[str]) -> list[str]:
    """Move ``-v``/``-vv``/``--verbose``/``--debug`` written after the subcommand in front of it.

    Arguments after ``--`` are left alone; no subcommand defines these options itself.
    """
    args = list(args)
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if _GLOBAL_FLAG.fullmatch(a)]
    return flags + [a for a in args[:end] if not _GLOBAL_FLAG.fullmatch(a)] + args[end:]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``waders`` command; return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).
    """
    args = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="waders", standalone_mode=False)
    except WadersError as err:
        if debug:
            raise
        click.echo(f"error: {err.one_line()}", err=True)
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.ClickException as err:
        if debug:
            raise
        click.echo(f"error: {_one_line(err.format_message())}", err=True)
        return 2 if isinstance(err, click.UsageError | click.BadParameter) else err.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("error: interrupted", err=True)
        return 130
    except OSError as err:  # the file system refused (read-only, disk full, /proc/...): not a bug
        if debug:
            raise
        wrapped = environment_error(err)
        click.echo(f"error: {wrapped.one_line()}", err=True)
        return wrapped.exit_code
    except Exception as err:
        if debug:
            raise
        click.echo(
            f"error: internal error {type(err).__name__}: {_one_line(str(err))} "
            "(a bug in waders; rerun with --debug for the traceback and report it)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    use_one_malloc_arena()  # before any thread starts (see waders.core.allocator)
    exit_now(main())


def exit_now(code: int) -> None:
    """End the process with ``code`` without tearing the interpreter down.

    The work is done and written: the exit handlers run and the output streams are flushed,
    then the process ends (``os._exit``) instead of freeing every module and object one by
    one, which takes 0.1-0.2 s after an analysis (large arrays, awkward, uproot, scipy).
    With a non-daemon thread still running, the normal exit waits for it.
    """
    atexit._run_exitfuncs()  # e.g. thread pools of waders and of libraries shut down here
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken pipe: nothing more can be written
            stream.flush()
    os._exit(code)
