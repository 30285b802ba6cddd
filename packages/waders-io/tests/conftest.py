from __future__ import annotations

from pathlib import Path

import pytest

#: Real public data beside the project (see ../shared/data/PROVENANCE.md).
SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SHARED_CONFIGS = SHARED_DATA.parent / "configs" / "pysimdamicm"


@pytest.fixture
def shared_data() -> Path:
    """Directory of the real data files; skips the test when ../shared is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
