"""Opening ROOT files for reading, with one-line errors for every user mistake.

uproot reports a missing, empty, truncated or non-ROOT file with multi-line
messages about byte chunks; :func:`open_root` turns each case into an
:class:`~waders.core.errors.InputFileError` that names the file and the problem.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import uproot

from waders.core.errors import InputFileError
from waders.core.paths import check_regular_file

__all__ = ["counter_of", "list_trees", "open_root", "require_branches", "require_tree"]

#: The first four bytes of every ROOT file.
_MAGIC = b"root"
#: uproot class names of the tree-like objects (TTree and RNTuple).
_TREE_CLASSES = ("TTree", "ROOT::RNTuple")


def _check_file(path: Path) -> None:
    """Raise :class:`InputFileError` unless ``path`` is a readable file that starts like a ROOT file."""
    if not path.exists():
        raise InputFileError(f"{path}: file not found", hint="check the path")
    if path.is_dir():
        raise InputFileError(f"{path}: not a file", hint="give the path of a .root file")
    check_regular_file(path, "a .root file")  # a pipe or a device would never end
    try:
        with path.open("rb") as stream:
            magic = stream.read(len(_MAGIC))
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror})", hint="check the file permissions") from None
    if magic != _MAGIC:
        raise InputFileError(
            f"{path}: not a ROOT file (first bytes {magic!r})", hint="give a ROOT file written by ROOT or uproot"
        )


@contextlib.contextmanager
def open_root(path: str | Path) -> Iterator[Any]:
    """Open a ROOT file for reading and close it afterwards.

    Parameters
    ----------
    path : path
        File name.

    Yields
    ------
    uproot.ReadOnlyDirectory
        The file's top directory.

    Raises
    ------
    InputFileError
        If the file is missing, not a ROOT file, or truncated.
    """
    path = Path(path)
    _check_file(path)
    try:
        file = uproot.open(path)
    except (OSError, ValueError, uproot.deserialization.DeserializationError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputFileError(
            f"{path}: damaged or truncated ROOT file ({first_line})", hint="re-create or re-copy the file"
        ) from None
    with file:
        yield file


def list_trees(file: Any) -> list[str]:
    """Names (with directory path, without cycle) of the TTrees and RNTuples of an open file."""
    names: dict[str, None] = {}
    for key, classname in file.classnames(recursive=True, cycle=False).items():
        if classname in _TREE_CLASSES:
            names[key] = None
    return list(names)


def require_tree(file: Any, path: str | Path, name: str) -> Any:
    """Return the tree ``name`` of an open file, or raise a one-line :class:`InputFileError`."""
    trees = list_trees(file)
    if name not in trees:
        listing = ", ".join(trees) if trees else "none"
        raise InputFileError(
            f"{path} has no tree '{name}' (trees: {listing})", hint="check that this is the right kind of ROOT file"
        )
    return file[name]


def require_branches(tree: Any, path: str | Path, names: Iterable[str]) -> None:
    """Raise a one-line :class:`InputFileError` if the tree lacks some of ``names``."""
    present = set(tree.keys())
    missing = [name for name in names if name not in present]
    if missing:
        raise InputFileError(
            f"{path}: tree {tree.name} lacks branches {', '.join(missing)}",
            hint=f"its branches are {', '.join(tree.keys()) or 'none'}",
        )


def counter_of(branch: Any) -> str | None:
    """Name of the branch counting a counted-array branch (``Energy[Nclusters]`` -> ``"Nclusters"``), else None."""
    leaves = branch.member("fLeaves")
    if not leaves:
        return None
    count = leaves[0].member("fLeafCount")
    return None if count is None else count.member("fName")
