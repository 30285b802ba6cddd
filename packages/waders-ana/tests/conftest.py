from __future__ import annotations

from pathlib import Path

import pytest

from waders.core import Pipeline, RunContext

SHARED = Path(__file__).resolve().parents[3].parent / "shared"


@pytest.fixture
def shared() -> Path:
    """The ../shared directory (real data and configurations); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture
def run_chain():
    """Run processes on an image: run_chain(image, Process(...), ...)."""

    def run(image, *processes, seed=1, **context):
        Pipeline(list(processes)).run(image, RunContext(seed=seed, **context))
        return image

    return run
