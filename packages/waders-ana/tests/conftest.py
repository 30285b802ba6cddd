from __future__ import annotations

from pathlib import Path

import pytest

from waders.core import Pipeline, RunContext
from waders.data import PYSIMDAMICM_CONFIGS, path


@pytest.fixture
def configs() -> Path:
    """The folder of pysimdamicm's configuration files (shipped with waders-data)."""
    return path(PYSIMDAMICM_CONFIGS)


@pytest.fixture
def run_chain():
    """Run processes on an image: run_chain(image, Process(...), ...)."""

    def run(image, *processes, seed=1, **context):
        Pipeline(list(processes)).run(image, RunContext(seed=seed, **context))
        return image

    return run
