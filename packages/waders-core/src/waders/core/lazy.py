"""Lazy public names of the waders packages: processes importable from ``waders.ana``/``waders.sim``.

A package's processes are listed once, as its ``waders.processes`` entry points; its
``__init__`` exposes them by name with :func:`lazy_getattr`, importing a module only when
a name is first used (``import waders.ana`` does not import numpy, scipy or matplotlib).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

__all__ = ["entry_point_classes", "lazy_getattr"]

PROCESSES_GROUP = "waders.processes"


def entry_point_classes(dist_name: str, group: str = PROCESSES_GROUP) -> dict[str, str]:
    """``{name: "module:attribute"}`` of the entry points of one distribution in ``group``.

    A domain variant such as ``ClusterFinder@sim`` is listed under its plain name
    (``ClusterFinder``): within its package the variant is the process of that name.
    """
    try:
        points = distribution(dist_name).entry_points
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled source tree
        return {}
    return {ep.name.split("@")[0]: ep.value for ep in points if ep.group == group}


def lazy_getattr(
    namespace: dict[str, Any], module: str, name: str, exports: dict[str, str], classes: dict[str, str]
) -> Any:
    """Module ``__getattr__``: import ``name`` from ``exports`` (relative module) or ``classes``.

    The value is cached in ``namespace`` (the module's globals), so it is looked up once.

    Raises
    ------
    AttributeError
        For a name that is neither (with the close matches, as Python does).
    """
    if name in exports:
        value = getattr(import_module(exports[name], module), name)
    elif name in classes:
        target, _, attribute = classes[name].partition(":")
        value = getattr(import_module(target), attribute)
    else:
        from difflib import get_close_matches

        close = get_close_matches(name, [*exports, *classes], n=1)
        hint = f". Did you mean: {close[0]!r}?" if close else ""
        raise AttributeError(f"module {module!r} has no attribute {name!r}{hint}")
    namespace[name] = value
    return value
