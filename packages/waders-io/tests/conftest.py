from __future__ import annotations

from pathlib import Path

import pytest

from waders.data import path


@pytest.fixture
def data_dir() -> Path:
    """The folder of the real data files shipped with waders-data (see its PROVENANCE.md)."""
    return path(".")
