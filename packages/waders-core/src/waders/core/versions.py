"""Versions of the installed waders packages."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["WADERS_DISTRIBUTIONS", "waders_versions"]

#: The distributions of the waders family, in dependency order.
WADERS_DISTRIBUTIONS = ("waders-core", "waders-io", "waders-sim", "waders-ana", "waders-dqm")


def waders_versions() -> dict[str, str]:
    """Return ``{distribution: version}`` for every installed waders package."""
    found = {}
    for dist in WADERS_DISTRIBUTIONS:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found
