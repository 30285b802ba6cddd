"""The summary file follows the JSON schema shipped with waders-ana (format waders-summary-1)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from waders.ana import SUMMARY_FORMAT, analysis_config, summary_schema
from waders.ana.runner import AnalysisOptions, analyse_file
from waders.data import DAMICM_IMAGE, path
from waders.io import write_raw_image
from waders.io.synthetic import make_raw_image


@pytest.fixture(scope="module")
def validator():
    schema = summary_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _summary(image_path, out):
    outputs = analyse_file(image_path, analysis_config(), AnalysisOptions(output_dir=out, save_images=True))
    return json.loads(Path(outputs["summary"]).read_text())


@pytest.fixture(scope="module")
def summaries(tmp_path_factory):
    """summary.json of the default chain on the real DAMIC-M image and on a synthetic raw image."""
    out = tmp_path_factory.mktemp("out")
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=120, ncols=200, overscan=40, nskips=9, noise=3.0, seed=2)
    synthetic = write_raw_image(out / "synthetic.fits", image)
    return {"damicm": _summary(path(DAMICM_IMAGE), out), "synthetic": _summary(synthetic, out)}


@pytest.mark.parametrize("which", ["damicm", "synthetic"])
def test_real_outputs_follow_the_schema(validator, summaries, which):
    summary = summaries[which]
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(summary)]
    assert errors == []
    assert summary["format"] == SUMMARY_FORMAT == summary_schema()["properties"]["format"]["const"]
    amplifier_keys = set(summary_schema()["properties"]["amplifiers"]["additionalProperties"]["properties"])
    for name, numbers in summary["amplifiers"].items():  # every key is documented (with its unit)
        assert set(numbers) <= amplifier_keys, (name, set(numbers) - amplifier_keys)
        assert numbers["fit_valid"] in (True, False)
        assert np.isfinite(numbers["gain_adu_per_e"])


def test_the_schema_rejects_what_it_must(validator, summaries):
    good = summaries["synthetic"]
    for broken in (
        {k: v for k, v in good.items() if k != "format"},
        {**good, "format": "waders-summary-0"},
        {**good, "unexpected": 1},
        {**good, "amplifiers": {"L": {**good["amplifiers"]["L"], "gain_adu_per_e": "ten"}}},
        {**good, "timings_s": {"ClusterFinder": -1.0}},
    ):
        assert not validator.is_valid(copy.deepcopy(broken))


def test_every_schema_property_has_a_description_with_units():
    schema = summary_schema()
    amplifier = schema["properties"]["amplifiers"]["additionalProperties"]["properties"]
    assert all(p.get("description") for p in schema["properties"].values())
    for key, prop in amplifier.items():
        if key.endswith("_adu") or key.startswith("gain_adu"):
            assert "ADU" in prop["description"], key
        if key.endswith("_e"):
            assert "(e-)" in prop["description"] or "electron" in prop["description"], key
