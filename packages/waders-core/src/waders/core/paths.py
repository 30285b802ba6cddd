"""Safe file names and bounded reads: where user data meets the file system.

* :func:`check_regular_file` refuses inputs that cannot be read with a bound (a named
  pipe waits for ever, ``/dev/zero`` never ends);
* :func:`safe_name` turns a name that comes from data (a FITS ``EXTNAME``, a run
  label, a tag) into one path component, so that ``../`` in a header never writes
  outside the output folder;
* :func:`unique_stems` finds inputs whose outputs would overwrite each other;
* :func:`inside` checks that a path stays below a folder;
* :func:`temporary_tag` and :func:`remove_stale` name temporaries by host and process,
  so that those a ``kill -9`` leaves behind are removed by the next run (never those of
  a live concurrent writer).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import InputFileError

__all__ = [
    "check_regular_file",
    "inside",
    "read_text_bounded",
    "remove_stale",
    "safe_name",
    "temporary_tag",
    "unique_stems",
]

#: Characters kept in a path component built from data (also safe in a URL); everything else becomes '_'.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Longest path component written (most file systems allow 255 bytes).
_MAX_COMPONENT = 120


def check_regular_file(path: str | Path, what: str = "a file") -> Path:
    """Return ``path`` if it is a readable regular file; otherwise raise.

    Parameters
    ----------
    path : path
        The input.
    what : str
        What the file should be, for the message (``"a FITS file"``).

    Raises
    ------
    InputFileError
        If the file is missing, a directory, a named pipe, a device or unreadable.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror or err})") from None
    if stat.S_ISDIR(mode):
        raise InputFileError(f"{path}: is a directory, not {what}")
    if not stat.S_ISREG(mode):
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputFileError(f"{path}: is {kind}, not a regular file", hint=f"give {what} stored on disk")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{path}: permission denied")
    return path


def read_text_bounded(path: str | Path, what: str, limit: int = 64 << 20) -> str:
    """Read a small UTF-8 text file (configuration, list of names) with a size bound.

    Raises
    ------
    InputFileError
        If the file is not a regular file, larger than ``limit`` bytes or not UTF-8 text.
    """
    path = check_regular_file(path, what)
    size = path.stat().st_size
    if size > limit:
        raise InputFileError(f"{path}: {size} bytes is too large for {what} (limit {limit})")
    try:
        return path.read_bytes()[:limit].decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{path}: not UTF-8 text (byte {err.start}); is it {what}?") from None
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror or err})") from None


def safe_name(name: object, default: str = "unnamed") -> str:
    """Return ``name`` as a single, harmless path component.

    Separators, ``..``, control and other unusual characters become ``_``; leading
    dots are removed (no hidden files, no ``..``); the length is bounded.

    Examples
    --------
    >>> safe_name("../../etc/x")
    'etc_x'
    >>> safe_name("CCD_A")
    'CCD_A'
    """
    text = re.sub(r"\.{2,}", "_", _UNSAFE.sub("_", str(name)))
    text = re.sub(r"_+", "_", text).strip("._-")
    return text[:_MAX_COMPONENT] or default


def inside(path: str | Path, folder: str | Path) -> bool:
    """True when ``path`` (resolved) lies below ``folder`` (resolved)."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True


def unique_stems(paths: Iterable[Path], stem_of: object = None) -> dict[str, list[Path]]:
    """Return the output stems shared by more than one input (stem -> inputs).

    Parameters
    ----------
    paths : iterable of Path
        Inputs.
    stem_of : callable, optional
        Stem of the outputs of one input (default: ``Path.stem`` without ``.fits``/``.fz``).
    """
    stems: dict[str, list[Path]] = {}
    for path in paths:
        stem = stem_of(path) if callable(stem_of) else _default_stem(path)
        stems.setdefault(stem, []).append(path)
    return {stem: group for stem, group in stems.items() if len(group) > 1}


def _default_stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bz2", ".fz", ".fits", ".fit", ".fts", ".root"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


_HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"


def temporary_tag() -> str:
    """``<host>-<pid>``: put in the names of temporary files and folders (see :func:`remove_stale`)."""
    return f"{_HOST}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def remove_stale(folder: str | Path, prefix: str) -> list[Path]:
    """Remove the temporaries ``<prefix><host>-<pid>...`` in ``folder`` left by dead processes of this host.

    Parameters
    ----------
    folder : path
        Where the temporaries are.
    prefix : str
        Their name up to the :func:`temporary_tag` (e.g. ``".img.fits."``).

    Returns
    -------
    list of Path
        The files and folders removed.
    """
    pattern = re.compile(re.escape(f"{prefix}{_HOST}-") + r"(\d+)\b")
    removed: list[Path] = []
    try:
        candidates = list(Path(folder).iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.match(candidate.name)
        if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate)
            else:
                candidate.unlink()
            removed.append(candidate)
    return removed
