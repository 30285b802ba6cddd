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
    """Run processes on an image: run_chain(image, Process(...), ...).

    With ``output_dir=...`` the figures and switched tables are then written there, as the
    sinks of ``waders ana`` write them (:func:`waders.ana.sinks.write_run`).
    """

    def run(image, *processes, seed=1, **context):
        run_context = RunContext(seed=seed, **context)
        Pipeline(list(processes)).run(image, run_context)
        if run_context.output_dir is not None:
            from waders.ana.sinks import write_run

            write_run(image, processes, run_context, run_context.output_dir)
        return image

    return run
