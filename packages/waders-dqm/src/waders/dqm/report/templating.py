"""The jinja2 environment of the report pages (templates in ``templates/``, autoescaping on).

Filters: ``url`` (a relative file path quoted for ``src``/``href``; the quoted text is then
escaped like any other) and ``status`` (a normalised status, :func:`waders.dqm.status.status_of`).
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

import jinja2

from ..status import status_of

__all__ = ["environment", "render"]


def _url(path: Any) -> str:
    return quote(str(path), safe="/._-~")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment (templates are loaded from the package; escaping is on for every template)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("waders.dqm.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["url"] = _url
    env.filters["status"] = status_of
    return env


def render(name: str, **context: Any) -> str:
    """Render the template ``name`` with ``context`` (and the waders-dqm ``version``)."""
    from waders.dqm import __version__

    return environment().get_template(name).render(version=__version__, **context)
