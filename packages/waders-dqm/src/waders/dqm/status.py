"""The DQM status vocabulary: ``none`` < ``pass`` < ``warn`` < ``fail``.

A leaf module (no waders import) shared by the quality tests, the ME plots and the
reports, so that none of them imports another for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["STATUSES", "status_of", "worst"]

#: Quality statuses, from best to worst ("none": no test applies).
STATUSES = ("none", "pass", "warn", "fail")

_RANK = {name: rank for rank, name in enumerate(STATUSES)}


def status_of(value: Any) -> str:
    """Normalise a status: one of :data:`STATUSES` (unknown or missing values give ``"none"``)."""
    text = str(value).lower() if value is not None else "none"
    return text if text in _RANK else "none"


def worst(statuses: Iterable[Any]) -> str:
    """The worst of several statuses (``"none"`` when there are none; unknown values count as ``"none"``)."""
    result = "none"
    for status in statuses:
        status = status_of(status)
        if _RANK[status] > _RANK[result]:
            result = status
    return result
