"""Exceptions raised for bad user input.

Every error a user can fix (a typo in a configuration key, a missing file, a wrong
unit, an unknown process) derives from :class:`WadersError`.  The command-line
interface prints such errors as a single line and exits with code 2; anything else
is a bug in waders and is reported as an internal error.
"""

from __future__ import annotations

__all__ = [
    "OUTPUT_HINT",
    "ConfigError",
    "DataError",
    "InputFileError",
    "ProcessError",
    "UnitError",
    "UnknownNameError",
    "WadersError",
    "environment_error",
    "failure_message",
]

#: What to check when the file system refuses to write (permissions, free space, a path that is not a folder).
OUTPUT_HINT = "check that the output folder can be written (permissions, free space, not a file or /proc)"


class WadersError(Exception):
    """Base class of all errors caused by user input.

    Parameters
    ----------
    message : str
        What is wrong, in one line.
    hint : str, optional
        How to fix it; appended to the message after ``"; "``.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return the message and the hint as a single line."""
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return " ".join(text.split())


class ConfigError(WadersError):
    """A configuration file or a command-line override is invalid."""


class UnitError(ConfigError):
    """A unit expression cannot be parsed or has the wrong dimension."""


class UnknownNameError(ConfigError):
    """A process, monitor element, parameter or section name is not known.

    Parameters
    ----------
    message : str
        What is unknown.
    hint : str, optional
        How to fix it.
    suggestion : str, optional
        The closest known name, shown as ``(did you mean '...'?)``.
    """

    def __init__(self, message: str, *, hint: str | None = None, suggestion: str | None = None) -> None:
        self.bare = message
        self.suggestion = suggestion
        if suggestion:
            message = f"{message} (did you mean '{suggestion}'?)"
        super().__init__(message, hint=hint)


class InputFileError(WadersError):
    """An input file is missing, unreadable or not of the expected format."""


class DataError(WadersError):
    """The data do not allow a process to run (e.g. a missing image product)."""


class ProcessError(WadersError):
    """A process cannot run with the given parameters on the given data."""


def environment_error(err: OSError) -> WadersError:
    """A :class:`WadersError` for a file-system failure (read-only folder, disk full, ``/proc/...``).

    Such failures are caused by the environment, not by a bug in waders: they are
    reported in one line naming the path, with exit code 2.
    """
    where = err.filename if err.filename is not None else ""
    reason = err.strerror or type(err).__name__
    text = f"{where}: {reason}" if where else reason
    if err.filename2:
        text += f" ({err.filename2})"
    return WadersError(f"cannot read or write {text}", hint=OUTPUT_HINT)


def failure_message(err: BaseException, source: object) -> str:
    """One line describing why input ``source`` failed, always naming it.

    :class:`WadersError` and :class:`OSError` are the user's to fix; anything else is
    reported as an internal error (a bug in waders).
    """
    name = str(source)
    if isinstance(err, OSError) and not isinstance(err, WadersError):
        err = environment_error(err)
    if isinstance(err, WadersError):
        text = err.one_line()
        return text if name in text else f"{name}: {text}"
    detail = " ".join(str(err).split())
    return (
        f"{name}: internal error {type(err).__name__}: {detail} (a bug in waders; rerun with --debug for the traceback)"
    )
