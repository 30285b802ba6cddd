"""The versioned JSON schema of the summary file (``<stem>.summary.json``) of ``waders ana``.

The schema (JSON Schema draft 2020-12) ships with waders-ana as
``waders/ana/data/summary.schema.json``; every summary names its format in the
``format`` key (:data:`SUMMARY_FORMAT`).  A new format name is used when a key changes
meaning or unit; keys may be added within a format.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

__all__ = ["SUMMARY_FORMAT", "summary_schema"]

#: Value of the ``format`` key of every summary written by this version.
SUMMARY_FORMAT = "waders-summary-1"


def summary_schema() -> dict[str, Any]:
    """The JSON schema of the summary file, as a dictionary.

    Examples
    --------
    >>> summary_schema()["properties"]["format"]["const"]
    'waders-summary-1'
    """
    return json.loads(files("waders.ana").joinpath("data/summary.schema.json").read_text())
