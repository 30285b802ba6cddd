"""Exceptions raised for bad user input.

Every error a user can fix (a typo in a configuration key, a missing file, a wrong
unit, an unknown process) derives from :class:`WadersError`.  The command-line
interface prints such errors as a single line and exits with code 2; anything else
is a bug in waders and is reported as an internal error.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "InputFileError",
    "ProcessError",
    "UnitError",
    "UnknownNameError",
    "WadersError",
]


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
