"""Lazy imports: public names of the waders packages, heavy modules, and imports ahead of use.

* A package's processes are listed once, as its ``waders.processes`` entry points; its
  ``__init__`` exposes them by name with :func:`lazy_getattr`, importing a module only when
  a name is first used (``import waders.ana`` does not import numpy, scipy or matplotlib).
* A module that needs a heavy dependency (scipy, awkward, uproot) only inside its functions
  binds it with :func:`lazy_module`: ``ak = lazy_module("awkward")`` at the top, ``ak.Array``
  in the code; awkward is imported at the first attribute access.  Listing the processes or
  validating a configuration then imports none of them (issue 18).
* :func:`prefetch` imports such modules in a background thread while the main thread reads
  and reduces an image (numpy and file reads release the GIL): the import time is hidden
  behind I/O instead of added to it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

__all__ = ["LazyModule", "entry_point_classes", "lazy_getattr", "lazy_module", "prefetch"]

log = logging.getLogger(__name__)


class LazyModule:
    """Stand-in for module ``name``, imported at the first attribute access.

    Attribute lookups go to the real module (``sys.modules`` caches it), so the stand-in
    behaves like the module for ``ak.Array``, ``special.ndtr(x)`` or ``isinstance(x, ak.Array)``.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(import_module(self._name), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        raise AttributeError(f"cannot set {attribute!r} on the lazy module {self._name!r}")

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """Module ``name`` imported at its first use (see :class:`LazyModule`)."""
    return LazyModule(name)


def prefetch(names: Iterable[str]) -> threading.Thread | None:
    """Import ``names`` in a background thread; return the thread (None if all are imported).

    Meant to run while the main thread reads data: the modules are ready (or being
    finished) when a step first uses them.  Python's per-module import locks make a main
    thread that needs a module still being imported wait for it, so the result is the same
    as importing in order.  A module that fails to import is left for its user to import
    (and report) again.  Start it after the main thread's own imports (numpy, astropy),
    not while it is importing modules that the prefetched ones import too.
    """
    missing = [name for name in dict.fromkeys(names) if name not in sys.modules]
    if not missing:
        return None

    def run() -> None:
        for name in missing:
            try:
                import_module(name)
            except Exception as err:  # the step that needs it imports it again and reports
                log.debug("prefetch of %s failed: %s", name, err)

    thread = threading.Thread(target=run, name="waders-prefetch", daemon=True)
    thread.start()
    return thread


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
