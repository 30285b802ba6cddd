"""CorrectElectronicColumnTransient: an injected exponential transient is recovered and removed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.ana.sinks import save_figures
from waders.ana.studies.transient import CorrectElectronicColumnTransient, transient_model
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.io.synthetic import make_raw_image

IMAGE = "mean_compressed_pedestal_subtracted"


def transient_image(amplitudes, mus, *, seed: int = 0, nrows: int = 300, ncols: int = 200) -> SkipperImage:
    """Raw L/U image (4 skips, 2 ADU per sample, no dark current) with a transient in the first columns read.

    The transient ``sum A_i exp(-mu_i x)`` (x = readout column) is added to every sample, then the
    image is compressed and pedestal-subtracted (per-row median of the overscan).  The column
    medians have an error of 1.2533 x 1 ADU / sqrt(300 rows) = 0.072 ADU.
    """
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=nrows, ncols=ncols, nskips=4, seed=seed, dark_current=0.0)
    for amp in image.amplifiers.values():  # amplifiers are in readout order, U included
        amp.raw += transient_model(np.arange(ncols), np.asarray(amplitudes), np.asarray(mus))[None, :, None]
    Pipeline([CompressSkipperProcess(), PedestalSubtractionProcess(method="median")]).run(image, RunContext(seed=1))
    return image


def test_transient_recovered_and_removed_in_both_amplifiers():
    amplitude, mu = 6.0, 0.25
    image = transient_image([amplitude], [mu])
    process = CorrectElectronicColumnTransient(col_end=40)
    process.run(image, RunContext(seed=1))
    for name in ("L", "U"):
        res = image[name].results[process.name]
        # errors ~0.1 ADU on A and ~0.005 on mu: pulls below 3
        assert abs(res["ect_A0"] - amplitude) < 3 * res["ect_amplitude_err"][0]
        assert abs(res["ect_mu0"] - mu) < 3 * res["ect_mu_err"][0]
        assert res["ect_valid"] and 0.4 < res["ect_chi2_ndf"] < 2.0
        assert res["ect_ndf"] == 39 - 2
        corrected = image[name].get(f"{IMAGE}_correct_cols")
        medians = np.median(corrected[:, 1:40], axis=0) - res["ect_baseline"]
        errors = np.asarray(res["column_median_err"][1:40])
        assert np.all(np.abs(medians) < 4 * errors)  # removed: the first columns sit on the baseline
        assert ((medians / errors) ** 2).mean() < 2.0
        original = image[name].get(IMAGE)
        assert np.array_equal(corrected[:, 40:], original[:, 40:])
        assert np.array_equal(corrected[:, 0], original[:, 0])  # column 0 < col_start is left alone


def test_each_column_is_paired_with_its_own_index():
    # pysimdamicm paired x = 1 with column 0: its amplitude came out as A exp(mu) (here x 2.7)
    image = transient_image([10.0], [1.0], seed=3)
    CorrectElectronicColumnTransient(col_start=0, col_end=20).run(image, RunContext(seed=1))
    res = image["L"].results["CorrectElectronicColumnTransient"]
    assert abs(res["ect_A0"] - 10.0) < 3 * res["ect_amplitude_err"][0]
    assert abs(res["ect_mu0"] - 1.0) < 3 * res["ect_mu_err"][0]


def test_two_exponentials():
    image = transient_image([20.0, 3.0], [1.0, 0.08], seed=1)
    process = CorrectElectronicColumnTransient(col_start=0, col_end=80, n_exp=2, mu=[0.5, 0.05], amplitude=[10, 1])
    process.run(image, RunContext(seed=1))
    res = image["U"].results[process.name]
    values = res["ect_amplitude"] + res["ect_mu"]
    errors = res["ect_amplitude_err"] + res["ect_mu_err"]
    for value, error, truth in zip(values, errors, [20.0, 3.0, 1.0, 0.08], strict=True):
        assert abs(value - truth) < 3.5 * error


def test_options():
    image = transient_image([6.0], [0.25], seed=2, nrows=100)
    CorrectElectronicColumnTransient(col_end=30, correct_image=False, subtract_median=False).run(
        image, RunContext(seed=1)
    )
    res = image["L"].results["CorrectElectronicColumnTransient"]
    assert res["ect_baseline"] == 0.0 and not image["L"].has(f"{IMAGE}_correct_cols")
    assert abs(res["ect_A0"] - 6.0) < 3 * res["ect_amplitude_err"][0]


def test_pipeline_writes_plots(tmp_path):
    image = transient_image([6.0], [0.25], seed=4, nrows=60, ncols=120)
    process = CorrectElectronicColumnTransient(col_end=30, save_plots=True)
    context = RunContext(seed=1, save_plots=True)
    Pipeline([process]).run(image, context)
    names = {p.name for p in save_figures(context.figures, tmp_path, "image")}
    assert {
        "image_CorrectElectronicColumnTransient_columns_L.png",
        "image_CorrectElectronicColumnTransient_columns_U.png",
    } <= names


def test_bad_inputs():
    image = SkipperImage.from_arrays({"L": np.zeros((20, 30))}, product=IMAGE)
    with pytest.raises(ConfigError, match="col_start"):
        CorrectElectronicColumnTransient(col_end=30).run(image, RunContext(seed=1))
    with pytest.raises(DataError, match="not available"):
        CorrectElectronicColumnTransient(image="nothing", col_end=10).run(image, RunContext(seed=1))
    nan_image = SkipperImage.from_arrays({"L": np.full((20, 30), np.nan)}, product=IMAGE)
    with pytest.raises(DataError, match="usable columns"):
        CorrectElectronicColumnTransient(col_end=10).run(nan_image, RunContext(seed=1))


def test_pysimdamicm_sections_load(configs):
    loaded = 0
    for path in sorted((configs).glob("*.json")):
        section = json.loads(path.read_text()).get("process", {}).get("CorrectElectronicColumnTransient")
        if section is not None:
            process = CorrectElectronicColumnTransient.from_mapping(section)
            assert process.col_end == 10 and process.n_exp == 1 and "fit_options" in process.ignored
            loaded += 1
    assert loaded >= 1
