"""RunOptions: the options of 'waders dqm run', validated once with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from waders.core.errors import ConfigError
from waders.dqm.options import MAX_RUN, RunOptions


def test_defaults_and_normalised_values():
    options = RunOptions("7", output_dir="dqm", image_hr="img_1*", skip=["a", Path("b")], files_per_task=0)
    assert options.run == 7 and options.output_dir == Path("dqm")
    assert options.image_hr == ("img_1*",) and options.skip == ("a", "b")
    assert options.files_per_task is None  # 0: the default, as for 'waders ana'
    assert options.image_plots == "problems" and options.executor == "serial" and options.workers == 1
    with pytest.raises(AttributeError):
        options.run = 8  # frozen
    assert options.replace(tag="night").tag == "night" and options.tag is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"run": -1}, "run number must not be negative, got -1"),
        ({"run": MAX_RUN + 1}, "out of range"),
        ({"run": "twelve"}, "run number must be an integer"),
        ({"run": True}, "run number must be an integer"),
        ({"reference_run": -3}, "reference run number -3 is out of range"),
        ({"reference_run": 5}, "run 5 cannot be its own reference"),
        ({"image_plots": "some"}, "image_plots must be one of none, problems, all"),
        ({"executor": "threads"}, "unknown executor 'threads'"),
        ({"workers": 0}, "--workers must be at least 1"),
        ({"files_per_task": -2}, "--files-per-task must not be negative"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"skip": 3}, "skip must be a list of strings"),
    ],
)
def test_bad_values_are_one_line_config_errors(changes, message):
    options = {"run": 5, **changes}
    with pytest.raises(ConfigError) as caught:
        RunOptions(**options)
    text = caught.value.one_line()
    assert message in text and "\n" not in text
    assert caught.value.exit_code == 2
