"""Summary of a ROOT file for ``waders info``: its trees, their entries and branches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._files import list_trees, open_root

__all__ = ["describe_root"]


def describe_root(path: str | Path) -> dict[str, Any]:
    """Describe the trees (and other objects) of a ROOT file.

    Parameters
    ----------
    path : path
        ROOT file.

    Returns
    -------
    dict
        ``{"format": "root", "trees": [{"name", "entries", "branches", "types"}],
        "objects": [{"name", "class"}]}``: one item per TTree or RNTuple (name with
        its directory path; ``branches`` the branch names in file order; ``types``
        the C++ type of each branch, e.g. ``"double[]"`` for a counted array), and
        the other objects of the file (e.g. ``TObjString``).

    Raises
    ------
    InputFileError
        If the file is missing, not a ROOT file, or damaged.
    """
    with open_root(path) as file:
        trees = []
        tree_names = list_trees(file)
        for name in tree_names:
            tree = file[name]
            if hasattr(tree, "branches"):
                branches = list(tree.keys())
                types = {key: tree[key].typename for key in branches}
            else:  # RNTuple
                branches = list(tree.keys())
                types = {}
            trees.append({"name": name, "entries": int(tree.num_entries), "branches": branches, "types": types})
        objects = [
            {"name": name, "class": classname}
            for name, classname in file.classnames(recursive=True, cycle=False).items()
            if name not in tree_names and classname != "TDirectory"
        ]
    return {"format": "root", "trees": trees, "objects": objects}
