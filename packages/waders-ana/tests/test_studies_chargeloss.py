"""ChargeLossPlot and ChargeLossSkewnessProcess: injected charge loss recovered from raw skips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.sinks import write_run
from waders.ana.studies.chargeloss import ChargeLossPlot, ChargeLossSkewnessProcess, charge_loss_model, kcl_statistics
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.io.synthetic import make_raw_image

NSKIPS = 100
GAIN = 10.0
NOISE = 2.0  # ADU per sample: differences have sigma_D = sqrt(2) * 2 = 2.83 ADU


def lossy_image(p: float, *, seed: int = 3, n_charged: int = 2000) -> tuple[SkipperImage, int]:
    """Raw image with ~2000 pixels of 50-300 e- that lose one electron per skip with probability p q.

    The loss is simulated skip by skip (vectorised over the pixels): the charge of skip k
    is added to the samples of skip k, then every pixel loses an electron with
    probability ``p * q``.
    """
    image, _ = make_raw_image(nrows=200, ncols=110, nskips=NSKIPS, gain=GAIN, noise=NOISE, seed=seed)
    rng = np.random.default_rng(seed + 100)
    amp = image["L"]
    raw = amp.raw
    rows, cols = amp.geometry.region("active")
    r = rng.integers(rows.start, rows.stop, n_charged)
    c = rng.integers(cols.start, cols.stop, n_charged)
    key = np.unique(r * raw.shape[1] + c)
    r, c = key // raw.shape[1], key % raw.shape[1]
    q = rng.integers(50, 300, r.size).astype(np.float64)
    for k in range(NSKIPS):
        raw[r, c, k] += GAIN * q
        q -= rng.random(q.size) < p * q
    return image, r.size


def test_charge_loss_coefficient_recovered_and_kcl_negative():
    p_true = 2e-4
    image, n = lossy_image(p_true)
    ChargeLossSkewnessProcess(skip_step=10).run(image, RunContext(seed=1))
    res = image["L"].results["ChargeLossSkewnessProcess"]
    assert res["n_pixels_charged"] >= n
    # each pixel loses ~p q 99 = 3.5 e- (binomial spread ~1.9 e- = 19 ADU) on top of 2.8 ADU of noise:
    # sum D / sum Q is known to ~2 %, so 10 % is > 4 sigma; the fitted error must agree (pull < 3)
    p, err = res["charge_loss_per_e_per_skip"], res["charge_loss_per_e_per_skip_err"]
    assert abs(p - p_true) < 0.10 * p_true
    assert abs(p - p_true) < 3 * err
    assert err < 0.05 * p_true
    assert 0.3 < res["charge_loss_chi2_ndf"] < 3.0
    # the loss makes a negative tail: thousands of pixels below -3.2 sigma, k_CL ~ -1
    assert res["summary_skip"] == NSKIPS - 1
    assert res["k_cl"] < -0.8 and res["k_cl"] < -10 * res["k_cl_err"]
    assert res["skewness"] < -10 * res["skewness_err"]
    # skip 0 is before the reference skip 1: the difference carries the loss with the other sign
    assert res["skips"][0] == 0 and res["k_cl_per_skip"][0] > 0
    model = charge_loss_model(p, res["skips"], res["reference_skip"], NSKIPS)
    pulls = (res["charge_loss_fraction"] - model) / res["charge_loss_fraction_err"]
    assert np.all(np.abs(pulls) < 4)


def test_no_charge_loss_is_compatible_with_zero():
    image, _ = lossy_image(0.0, seed=4)
    ChargeLossSkewnessProcess(skip_step=20).run(image, RunContext(seed=1))
    res = image["L"].results["ChargeLossSkewnessProcess"]
    # symmetric Gaussian differences: k_CL, skewness and p are zero within their errors
    assert np.all(np.abs(res["k_cl_per_skip"]) < 3.5 * res["k_cl_err_per_skip"])
    assert np.all(np.abs(res["skewness_per_skip"]) < 3.5 * res["skewness_err_per_skip"])
    assert abs(res["charge_loss_per_e_per_skip"]) < 3 * res["charge_loss_per_e_per_skip_err"]
    # the core width is sqrt(2) x the sample noise (1e4 pixels: ~1 % precision)
    assert np.allclose(res["sigma_adu"], np.sqrt(2) * NOISE, rtol=0.04)
    assert np.all(np.abs(res["centre_adu"]) < 0.15)


def test_kcl_statistics_counts_an_injected_tail():
    rng = np.random.default_rng(7)
    n, tail = 100_000, 800
    d = np.concatenate([rng.normal(0.3, 2.0, n), np.full(tail, -15.0)])[None, :].astype(np.float32)
    stats = kcl_statistics(d, 3.2, 8.0)
    # Gaussian tails beyond 3.2 sigma: n * 6.87e-4 = 68.7 per side (Poisson error ~8.3)
    gauss_tail = n * 6.871e-4
    assert abs(stats["n_above"][0] - gauss_tail) < 4 * np.sqrt(gauss_tail)
    assert abs(stats["n_below"][0] - tail - gauss_tail) < 4 * np.sqrt(gauss_tail)
    expected = -tail / (tail + 2 * gauss_tail)
    assert abs(stats["k_cl"][0] - expected) < 4 * stats["k_cl_err"][0]
    assert abs(stats["centre"][0] - 0.3) < 0.03  # core mean, error 2 / sqrt(1e5) = 0.006 (+ tail pull)
    assert abs(stats["sigma"][0] - 2.0) < 0.03


def test_core_width_of_integer_differences():
    # raw ADC samples are integers: D = round(a) - round(b) has sigma^2 = 2 (1.5^2 + 1/12), i.e. 2.160;
    # 1e5 values give a width known to ~0.3 %; a plain MAD would give 1.48 or 2.97
    rng = np.random.default_rng(11)
    a, b = rng.normal(1000.0, 1.5, (2, 3, 100_000))
    d = (np.round(a) - np.round(b)).astype(np.float32)
    stats = kcl_statistics(d, 3.2, 8.0)
    assert np.allclose(stats["sigma"], np.sqrt(2 * (1.5**2 + 1 / 12)), rtol=0.015)
    assert np.all(np.abs(stats["centre"]) < 0.03)
    assert np.all(np.abs(stats["k_cl"]) < 3.5 * stats["k_cl_err"])


def test_selected_skips_and_parameters():
    image, _ = make_raw_image(nrows=20, ncols=30, nskips=60)
    process = ChargeLossSkewnessProcess(id_skip_reference=1, id_skip_start=0, skip_step=20)
    skips, reference = process.selected_skips(image, 60)
    assert reference == 1
    assert skips.tolist() == [0, 20, 40, 59]  # the step is honoured, the last skip is added
    skips, reference = ChargeLossSkewnessProcess(id_skip_reference=-1, skip_step=50).selected_skips(image, 60)
    assert reference == 59 and skips.tolist() == [0, 50]
    assert ChargeLossSkewnessProcess(kcl_n_sig=8).kcl_n_sig == 8.0  # no hidden factor 8
    plot = ChargeLossPlot(skip_id_list=[0, 45])
    assert plot.listed_skips(image, 60) == ([0, 45, 59], 59)


def test_plot_records_skip_statistics_and_products():
    image, truth = make_raw_image(nrows=60, ncols=50, nskips=12, gain=GAIN, noise=NOISE, seed=9)
    ChargeLossPlot(skip_id_list=[0, 5], save_image=True).run(image, RunContext(seed=1))
    amp = image["L"]
    res = amp.results["ChargeLossPlot"]
    rows, cols = amp.geometry.region("active")
    expected = (truth.pedestal["L"][rows, None] + GAIN * truth.electrons["L"][rows, cols]).mean()
    n = res["n_pixels"]
    # single-skip mean = mean pedestal + gain x mean charge, within noise / sqrt(n) ~ 0.04 ADU
    assert np.allclose(res["skip_mean_adu"], expected, atol=5 * NOISE / np.sqrt(n))
    assert res["diff_mean_adu"][res["baseline_skip"]] == 0
    assert np.allclose(res["diff_std_adu"][:-1], np.sqrt(2) * NOISE, rtol=0.1)  # 1900 pixels: ~2 % each
    assert np.all(np.abs(res["diff_mean_adu"]) < 5 * np.sqrt(2) * NOISE / np.sqrt(n))
    raw = np.asarray(amp.raw)
    assert np.array_equal(amp.get("raw_skip_5"), raw[:, :, 5])
    assert np.allclose(amp.get("raw_skip_0_minus_11"), raw[:, :, 0] - raw[:, :, 11])
    other, _ = make_raw_image(nrows=20, ncols=30, nskips=5)
    ChargeLossPlot().run(other, RunContext(seed=1))
    assert not any(name.startswith("raw_skip") for name in other["L"].products)


def test_pipeline_writes_plots(tmp_path):
    from waders.ana.compress import CompressSkipperProcess
    from waders.ana.pedestal import PedestalSubtractionProcess

    image, _ = make_raw_image(nrows=40, ncols=50, nskips=30, seed=2, dark_current=0.3)
    steps = [
        CompressSkipperProcess(),
        PedestalSubtractionProcess(method="median"),
        ChargeLossPlot(save_plots=True),
        ChargeLossSkewnessProcess(save_plots=True, skip_step=10),
    ]
    context = RunContext(seed=1, save_plots=True)
    Pipeline(steps).run(image, context)
    write_run(image, steps, context, tmp_path)
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    for what in ("ChargeLossPlot_images", "ChargeLossPlot_skips", "ChargeLossSkewnessProcess_kcl"):
        assert f"image_{what}_L.png" in names
    assert "k_cl" in image["L"].results["ChargeLossSkewnessProcess"]


def test_bad_inputs():
    image, _ = make_raw_image(nrows=20, ncols=30, nskips=5)
    with pytest.raises(ConfigError, match="id_skip_reference"):
        ChargeLossSkewnessProcess(id_skip_reference=7).run(image, RunContext(seed=1))
    with pytest.raises(ConfigError, match="no skip to compare"):
        ChargeLossSkewnessProcess(id_skip_reference=2, id_skip_start=2, id_skip_end=3).run(image, RunContext(seed=1))
    with pytest.raises(ConfigError, match="skip_id_baseline"):
        ChargeLossPlot(skip_id_baseline=9).run(image, RunContext(seed=1))
    averaged = SkipperImage.from_arrays({"L": np.zeros((10, 10))}, product="mean_compressed")
    for process in (ChargeLossPlot(), ChargeLossSkewnessProcess()):
        with pytest.raises(DataError, match="raw skip samples"):
            process.run(averaged, RunContext(seed=1))


def test_pysimdamicm_sections_load(configs):
    configs = sorted((configs).glob("*.json"))
    loaded = 0
    for path in configs:
        process = json.loads(path.read_text()).get("process", {})
        for cls in (ChargeLossPlot, ChargeLossSkewnessProcess):
            if cls.name in process:
                instance = cls.from_mapping(process[cls.name])
                loaded += 1
                if cls is ChargeLossSkewnessProcess:
                    assert instance.kcl_n_sig == 8.0 and instance.skip_step == 20
    assert loaded >= 2
