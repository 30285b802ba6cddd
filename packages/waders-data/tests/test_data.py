from __future__ import annotations

import json

import pytest

from waders.data import DAMICM_IMAGE, LTA_CAL_IMAGE, LTA_IMAGE, PYSIMDAMICM_CONFIGS, files, path


def test_every_named_file_is_shipped():
    for name in (DAMICM_IMAGE, LTA_IMAGE, LTA_CAL_IMAGE):
        assert path(name).stat().st_size > 100_000
    configs = sorted(path(PYSIMDAMICM_CONFIGS).glob("*.json"))
    assert len(configs) == 9
    for config in configs:
        json.loads(config.read_text())


def test_files_lists_relative_names():
    names = files()
    assert DAMICM_IMAGE in names
    assert "PROVENANCE.md" in names


@pytest.mark.parametrize("name", ["nope.fits", "../../../etc/passwd"])
def test_unknown_file_is_a_clear_error(name):
    with pytest.raises(FileNotFoundError, match="waders-data ships no file"):
        path(name)
