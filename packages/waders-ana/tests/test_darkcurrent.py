from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.compress import CompressSkipperProcess
from waders.ana.darkcurrent import FitDarkCurrentPerCol, FitDarkCurrentPerRow, FitDarkCurrentProcess
from waders.ana.fitting.pcd import (
    PCDSettings,
    fit_pcd,
    fit_pcd_batch,
    fit_pcd_histogram,
    pcd_edges,
    pcd_histogram,
    slice_histograms,
)
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.core import SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry
from waders.io.synthetic import make_raw_image

GAIN, SIGMA = 10.0, 2.0  # ADU/e-, ADU (0.2 e-)
PRODUCT = "mean_compressed_pedestal_subtracted"
SETTINGS = PCDSettings(
    n_peaks=5, calibration=10.0, x_min=-10, x_max=50, binning_size=0.3, lambda_limits=(0, 5), gain_limits=(5, 20)
)
RESULT_KEYS = {
    "mu0_adu",
    "mu0_err",
    "sigma_adu",
    "sigma_err",
    "gain_adu_per_e",
    "gain_err",
    "lambda_e_per_pixel",
    "lambda_err",
    "lambda_e_per_pixel_per_day",
    "sigma_e",
    "mu0_e",
    "chi2_ndf",
    "valid",
    "status",
    "n_pixels",
    "fraction_used",
    "pcd_edges",
    "pcd_counts",
}


def pcd_values(shape=(400, 600), lam=0.2, mu0=0.0, sigma=SIGMA, gain=GAIN, seed=0):
    """Pedestal-subtracted-like charges: Poisson(lam) electrons x gain + Gaussian noise (ADU)."""
    rng = np.random.default_rng(seed)
    lam = np.broadcast_to(lam, shape)
    return mu0 + gain * rng.poisson(lam) + rng.normal(0.0, sigma, shape)


def image_of(arrays, *, prescan=0, overscan=0, row_binning=1, col_binning=1, **kwargs):
    """Image whose amplifiers hold ``arrays`` (active area) as the pedestal-subtracted product."""
    geometries, padded = {}, {}
    for name, array in arrays.items():
        rows = array.shape[0]
        full = np.concatenate([np.zeros((rows, prescan)), array, np.zeros((rows, overscan))], axis=1)
        geometries[name] = AmplifierGeometry(
            name,
            rows,
            full.shape[1],
            prescan_cols=prescan,
            overscan_cols=overscan,
            row_binning=row_binning,
            col_binning=col_binning,
        )
        padded[name] = full
    return SkipperImage.from_arrays(padded, geometries=geometries, product=PRODUCT, **kwargs)


def assert_recovers(value, error, truth, relative):
    """Pull below 4 and the required relative accuracy (or 4 errors if the statistics allow no better)."""
    assert np.isfinite(error) and error > 0
    assert abs(value - truth) < 4 * error, (value, error, truth)
    assert abs(value - truth) < max(relative * abs(truth), 4 * error)


# --- the fitters -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("lam", "mu0", "fit_gain"), [(0.1, 0.0, True), (0.3, 0.4, True), (0.2, -0.3, False)])
def test_single_fit_recovers_the_truth(lam, mu0, fit_gain):
    values = pcd_values(lam=lam, mu0=mu0, seed=int(lam * 10))
    fit = fit_pcd(values, PCDSettings(**{**SETTINGS.__dict__, "fit_gain": fit_gain}))
    assert fit.valid and fit.status == "ok"
    if fit_gain:
        assert_recovers(fit.gain, fit.gain_err, GAIN, 0.01)
    else:
        assert fit.gain == GAIN and fit.gain_err == 0.0
    assert_recovers(fit.sigma, fit.sigma_err, SIGMA, 0.03)
    assert_recovers(fit.lam, fit.lam_err, lam, 0.05)
    assert_recovers(fit.mu0, fit.mu0_err, mu0, 1.0)
    # 240 000 pixels: the statistical errors are far below the required accuracy
    assert fit.lam_err < 0.01 * lam and fit.sigma_err < 0.003 * SIGMA
    assert set(fit.minos) == ({"mu0", "sigma", "lam", "gain"} if fit_gain else {"mu0", "sigma", "lam"})
    # Baker-Cousins chi2 of ~100 degrees of freedom
    assert fit.ndf > 50 and abs(fit.chi2_ndf - 1) < 5 * np.sqrt(2 / fit.ndf)
    sigma_e, sigma_e_err = fit.in_electrons("sigma")
    assert_recovers(sigma_e, sigma_e_err, SIGMA / GAIN, 0.03)


def test_starting_values_and_clipped_range():
    values = pcd_values(lam=0.25, seed=3)
    fit = fit_pcd(values, SETTINGS)
    norm, mu0, sigma, lam, gain = fit.start
    assert abs(mu0) < 0.5 and sigma == pytest.approx(SIGMA, rel=0.2)
    assert lam == pytest.approx(0.25, rel=0.2) and gain == pytest.approx(GAIN, rel=0.05)
    assert norm == pytest.approx(values.size, rel=0.01)
    # 5 peaks modelled: the fit ends half a gain above the 4-electron peak, the histogram at x_max
    assert fit.edges[-1] == pytest.approx(4.5 * gain, abs=0.5)
    assert fit.hist_edges[-1] == 50


def test_gain_guess_far_from_the_truth_is_found_from_the_single_electron_peak():
    values = pcd_values(lam=0.1, gain=12.5, seed=4)
    settings = PCDSettings(**{**SETTINGS.__dict__, "x_max": 70.0})
    fit = fit_pcd(values, settings)
    assert fit.start[4] == pytest.approx(12.5, rel=0.05)
    assert fit.valid
    assert_recovers(fit.gain, fit.gain_err, 12.5, 0.01)


def test_batched_fit_agrees_with_the_iminuit_fit_on_the_same_histogram():
    values = pcd_values(lam=0.15, seed=5)
    single = fit_pcd(values, SETTINGS)
    batch = fit_pcd_batch(single.hist_edges, single.hist_counts[None], SETTINGS)
    assert batch.valid[0] and batch.status == ["ok"] and batch.converged[0]
    for name in ("mu0", "sigma", "lam", "gain"):
        value, error = getattr(single, name), getattr(single, f"{name}_err")
        assert abs(getattr(batch, name)[0] - value) < 0.05 * error, name
        assert getattr(batch, f"{name}_err")[0] == pytest.approx(error, rel=0.05), name
    assert batch.chi2_ndf[0] == pytest.approx(single.chi2_ndf, rel=1e-3)


@pytest.mark.parametrize("fit_gain", [False, True])
def test_batched_fit_pulls_have_unit_width(fit_gain):
    n_slices = 300
    values = pcd_values(shape=(n_slices, 3000), lam=0.2, seed=6)
    settings = PCDSettings(**{**SETTINGS.__dict__, "fit_gain": fit_gain})
    edges = pcd_edges(-10, 50, 0.3, 3000)
    counts = slice_histograms(values, np.repeat(np.arange(n_slices), 3000), n_slices, edges)
    assert counts.sum() == np.count_nonzero((values > -10) & (values < 50))
    fits = fit_pcd_batch(edges, counts, settings)
    assert fits.valid.all()
    for name, truth in (("lam", 0.2), ("sigma", SIGMA)) + ((("gain", GAIN),) if fit_gain else ()):
        pulls = (getattr(fits, name) - truth) / getattr(fits, f"{name}_err")
        # 300 pulls: mean within 4/sqrt(300), width within 4 sqrt(1/(2*300)) of 1
        assert abs(pulls.mean()) < 4 / np.sqrt(n_slices), name
        assert abs(pulls.std() - 1) < 4 / np.sqrt(2 * n_slices), name
    if not fit_gain:
        assert np.all(fits.gain == GAIN) and np.all(fits.gain_err == 0)


def test_histograms():
    edges = pcd_edges(-1.0, 1.0, 0.5, 0)
    np.testing.assert_array_equal(edges, [-1.0, -0.5, 0.0, 0.5, 1.0])
    values = np.array([-1.0, -0.9, -0.5, 0.1, 0.99, 1.0, np.nan, 5])  # range is open: -1 and 1 are out
    np.testing.assert_array_equal(pcd_histogram(values, edges), [1, 1, 1, 1])
    assert len(pcd_edges(-10, 10, -1, 10_000)) - 1 == 200  # 2 sqrt(N) bins
    with pytest.raises(ConfigError, match="bins"):
        pcd_edges(0, 1e6, 1e-3, 0)
    counts = slice_histograms(values, np.array([0, 0, 1, 1, 1, 0, 1, 1]), 2, edges)
    np.testing.assert_array_equal(counts, [[1, 0, 0, 0], [0, 1, 1, 1]])


def test_failures_are_reported_not_raised():
    rng = np.random.default_rng(7)
    noise = rng.normal(0, SIGMA, 100_000)
    fit = fit_pcd(noise, SETTINGS)  # no electrons at all, gain free
    assert not fit.valid and "gain" in fit.status
    fixed = fit_pcd(noise, PCDSettings(**{**SETTINGS.__dict__, "fit_gain": False}))
    assert fixed.lam < 1e-3 and "lambda" in fixed.status  # zero dark current with the gain fixed: at its limit
    empty = fit_pcd(np.array([100.0, np.nan]), SETTINGS)
    assert not empty.valid and empty.status.startswith("too few pixels")
    assert np.isnan(empty.gain)
    flat = fit_pcd_histogram(np.linspace(-10, 50, 201), np.full(200, 3.0), SETTINGS)
    assert not flat.valid and flat.status != "ok"
    counts = np.zeros((3, 200))
    counts[1] = np.histogram(pcd_values((50, 200), seed=8), np.linspace(-10, 50, 201))[0]
    batch = fit_pcd_batch(np.linspace(-10, 50, 201), counts, SETTINGS)
    assert list(batch.valid) == [False, True, False]
    assert batch.status[0].startswith("too few pixels") and np.isnan(batch.lam[0])


def test_settings_validation():
    with pytest.raises(ConfigError, match="mu_min"):
        PCDSettings(mu_limits=(1, -1))
    with pytest.raises(ConfigError, match="calibration"):
        PCDSettings(calibration=0)
    assert PCDSettings(x_min=None, x_max=float("nan"), n_peaks=3, calibration=2.0).fit_range() == (-2.0, 6.0)


# --- FitDarkCurrentProcess -------------------------------------------------------------------------------------
def test_process_records_results_and_header_cards(run_chain):
    values = pcd_values(lam=0.2, seed=9)
    image = image_of({"L": values}, row_binning=2, exposure_time=3600.0, read_time=600.0)
    image.meta.update(run=12, image=7)
    run_chain(image, FitDarkCurrentProcess())
    result = image["L"].results["FitDarkCurrentProcess"]
    assert set(result) >= RESULT_KEYS
    assert result["valid"] is True and result["status"] == "ok"
    assert result["n_pixels"] == values.size
    assert result["fraction_used"] == np.count_nonzero((values > -10) & (values < 50)) / values.size
    # per unbinned pixel: binning 2 x 1; per day: exposure + half the readout
    assert_recovers(result["lambda_e_per_pixel"], result["lambda_err"], 0.1, 0.05)
    days = (3600 + 300) / 86400
    assert result["lambda_e_per_pixel_per_day"] == pytest.approx(result["lambda_e_per_pixel"] / days)
    assert_recovers(result["gain_adu_per_e"], result["gain_err"], GAIN, 0.01)
    assert result["sigma_e"] == pytest.approx(result["sigma_adu"] / result["gain_adu_per_e"])
    assert result["pcd_counts"].sum() == np.count_nonzero((values > -10) & (values < 50))
    assert len(result["pcd_edges"]) == len(result["pcd_counts"]) + 1
    cards = image.header_cards
    for key in ("MEGAIN", "MEDC", "MESIG", "MEMU0", "EMEGAIN", "EMEDC", "EMESIG", "EMEMU0", "MEFRAC"):
        assert f"{key}L" in cards
    assert cards["MEGAINL"][0] == result["gain_adu_per_e"] and "ADU/e-" in cards["MEGAINL"][1]
    assert cards["MEDCL"][0] == result["lambda_e_per_pixel"]
    assert cards["MEIMGIDL"][0] == 7 and cards["MERUNIDL"][0] == 12
    json.dumps({k: v for k, v in result.items() if not isinstance(v, np.ndarray)})  # plain values


def test_unknown_exposure_gives_nan_per_day(run_chain):
    image = image_of({"L": pcd_values((100, 300), seed=10)})
    run_chain(image, FitDarkCurrentProcess(minos=False))
    assert np.isnan(image["L"].results["FitDarkCurrentProcess"]["lambda_e_per_pixel_per_day"])


def test_masks_change_the_pixel_count_exactly(run_chain):
    rows, cols, prescan, overscan = 120, 200, 4, 20
    values = pcd_values((rows, cols), seed=11)

    def n_pixels(image=None, **params):
        image = image or image_of({"L": values, "U": values}, prescan=prescan, overscan=overscan)
        run_chain(image, FitDarkCurrentProcess(minos=False, **params))
        return {a: image[a].results["FitDarkCurrentProcess"]["n_pixels"] for a in ("L", "U")}

    assert n_pixels() == {"L": rows * cols, "U": rows * cols}
    # rows [0, 5) and 10; columns (readout order, prescan = 0..3) [0, 10) -> active 4..9, and 20
    masked = n_pixels(rows_to_mask={"L": [[0, 5], 10], "U": []}, cols_to_mask={"L": [[0, 10], 20], "U": [[4, 6]]})
    assert masked == {"L": (rows - 6) * (cols - 7), "U": rows * (cols - 2)}
    assert n_pixels(in_overscan=True) == {"L": rows * overscan, "U": rows * overscan}
    assert n_pixels(id_row_start=20, id_col_end=prescan + 50) == {"L": 100 * 50, "U": 100 * 50}
    # the cluster mask (True = masked) removes exactly its pixels inside the region
    image = image_of({"L": values, "U": values}, prescan=prescan, overscan=overscan)
    rng = np.random.default_rng(12)
    for name in ("L", "U"):
        mask = rng.random(image[name].geometry.shape) < 0.1
        image[name].set("mask_clusters", mask)
    expected = {a: rows * cols - int(image[a].get("mask_clusters")[:, prescan : prescan + cols].sum()) for a in "LU"}
    assert n_pixels(image, mask_clusters=True) == expected
    missing = image_of({"L": values}, prescan=prescan, overscan=overscan)
    with pytest.raises(DataError, match="run ClusterFinder and BuildClusterMask first"):
        run_chain(missing, FitDarkCurrentProcess(mask_clusters=True))


def test_bad_fits_do_not_raise(run_chain):
    noise = np.random.default_rng(13).normal(0, SIGMA, (200, 300))
    image = image_of({"L": noise, "U": pcd_values((200, 300), seed=14)})
    run_chain(image, FitDarkCurrentProcess(minos=False, rows_to_mask={"L": [], "U": [[0, 1000]]}))
    pure_noise = image["L"].results["FitDarkCurrentProcess"]
    assert pure_noise["valid"] is False and "single-electron" in pure_noise["status"]
    all_masked = image["U"].results["FitDarkCurrentProcess"]
    assert all_masked["valid"] is False and all_masked["n_pixels"] == 0
    assert all_masked["status"].startswith("too few pixels") and np.isnan(all_masked["lambda_e_per_pixel"])
    assert np.isnan(all_masked["fraction_used"])


def test_per_amplifier_parameters_and_errors(run_chain):
    image = image_of({"L": pcd_values((100, 300), seed=15), "U": pcd_values((100, 300), gain=12.0, seed=16)})
    process = FitDarkCurrentProcess(minos=False, calibration={"L": 10.0, "U": 12.0}, x_max={"L": 50, "U": 60})
    run_chain(image, process)
    assert image["U"].results["FitDarkCurrentProcess"]["gain_adu_per_e"] == pytest.approx(12.0, rel=0.01)
    with pytest.raises(ConfigError, match="no value for amplifier 'U'"):
        run_chain(image_of({"U": pcd_values((50, 50))}), FitDarkCurrentProcess(calibration={"L": 10.0}))
    with pytest.raises(ConfigError, match="mu_min"):
        run_chain(image_of({"L": pcd_values((50, 50))}), FitDarkCurrentProcess(mu_min=2.0))


def test_end_to_end_from_raw_samples(run_chain, tmp_path):
    nskips, noise, overscan = 4, 4.0, 100
    image, truth = make_raw_image(
        amplifiers=("L", "U"), nrows=400, ncols=604 + overscan, prescan=4, overscan=overscan, nskips=nskips,
        noise=noise, gain=GAIN, dark_current=0.2, exposure_time=7200.0, seed=17,
    )  # fmt: skip
    run_chain(
        image,
        CompressSkipperProcess(func_to_compress=["mean"]),
        PedestalSubtractionProcess(method="mean", in_overscan=True, axis="row"),
        FitDarkCurrentProcess(save_plots=True),
        output_dir=tmp_path,
    )
    for name in ("L", "U"):
        amp = image[name]
        result = amp.results["FitDarkCurrentProcess"]
        assert result["valid"], result["status"]
        # the subtracted image is charge + noise + (true - estimated pedestal) of its row
        offsets = truth.pedestal[name] - amp.results["PedestalSubtractionProcess"]["pedestal_row"]
        sigma = np.sqrt(noise**2 / nskips + offsets.var())
        assert_recovers(result["gain_adu_per_e"], result["gain_err"], GAIN, 0.01)
        assert_recovers(result["sigma_adu"], result["sigma_err"], sigma, 0.03)
        assert_recovers(result["lambda_e_per_pixel"], result["lambda_err"], 0.2, 0.05)
        assert_recovers(result["mu0_adu"], result["mu0_err"], offsets.mean(), 1.0)
        assert (tmp_path / "plots" / f"image_FitDarkCurrentProcess_{name}.png").stat().st_size > 1000
        assert result["lambda_e_per_pixel_per_day"] == pytest.approx(result["lambda_e_per_pixel"] * 12)


# --- per-row and per-column fits ----------------------------------------------------------------------------------
def test_per_row_fits_recover_a_dark_current_gradient(run_chain, tmp_path):
    rows, cols, step = 400, 600, 20
    gradient = 0.05 + 0.25 * np.arange(rows) / rows
    image = image_of({"L": pcd_values((rows, cols), lam=gradient[:, None], seed=18)})
    run_chain(
        image,
        FitDarkCurrentPerRow(row_step=step, n_peaks=5, binning_size=0.3, x_min=-10, x_max=50, save_plots=True),
        output_dir=tmp_path,
    )
    result = image["L"].results["FitDarkCurrentPerRow"]
    np.testing.assert_array_equal(result["slice_start"], np.arange(0, rows, step))
    assert result["valid"].all() and result["n_valid"] == rows // step
    truth = gradient.reshape(-1, step).mean(axis=1)
    pulls = (result["lambda_e_per_pixel"] - truth) / result["lambda_err"]
    assert np.abs(pulls).max() < 4
    assert np.all(result["gain_adu_per_e"] == GAIN)  # fixed by default, as in pysimdamicm
    assert_recovers(result["lambda_slope"], result["lambda_slope_err"], 0.25 / rows, 0.05)
    assert_recovers(result["lambda_intercept"], result["lambda_intercept_err"], 0.05 - 0.25 * 0.5 / rows, 0.05)
    assert abs(result["sigma_slope"]) < 4 * result["sigma_slope_err"]
    np.testing.assert_array_equal(result["n_pixels"], np.full(rows // step, step * cols))
    assert (tmp_path / "plots" / "image_FitDarkCurrentPerRow_L.png").exists()


def test_per_row_slices_and_defaults(run_chain):
    image = image_of({"L": pcd_values((95, 400), seed=19)})
    run_chain(image, FitDarkCurrentPerRow(row_start=5, row_end=-1, row_step=10, q_threshold=25.0))
    result = image["L"].results["FitDarkCurrentPerRow"]
    np.testing.assert_array_equal(result["slice_start"], np.arange(5, 95, 10))
    np.testing.assert_array_equal(result["slice_stop"], [*range(15, 95, 10), 95])
    assert result["valid"].all()  # default NaN x range: (-calibration, n_peaks * calibration), no skipped slices
    assert result["n_pixels"][-1] == 400 * 10 and result["n_above_threshold"].sum() > 0
    run_chain(image, FitDarkCurrentPerRow(row_end=42, row_step=10))
    np.testing.assert_array_equal(image["L"].results["FitDarkCurrentPerRow"]["slice_stop"], [10, 20, 30, 40, 42])
    with pytest.raises(ConfigError, match="empty"):
        run_chain(image, FitDarkCurrentPerRow(row_start=200))


def test_per_column_fits_run_for_every_amplifier(run_chain, tmp_path):
    arrays = {"L": pcd_values((300, 200), lam=0.15, seed=20), "U": pcd_values((300, 200), lam=0.25, seed=21)}
    image = image_of(arrays, prescan=5)
    run_chain(
        image,
        FitDarkCurrentPerCol(col_step=50, x_min=-10, x_max=30, n_peaks=3, save_results=True),
        output_dir=tmp_path,
    )
    for name, lam in (("L", 0.15), ("U", 0.25)):
        result = image[name].results["FitDarkCurrentPerCol"]
        assert result["axis"] == "col" and not result["gain_fixed"]
        np.testing.assert_array_equal(result["n_pixels"], [45 * 300, 50 * 300, 50 * 300, 50 * 300, 5 * 300])
        good = result["valid"]
        assert good.sum() >= 4
        pulls = (result["lambda_e_per_pixel"][good] - lam) / result["lambda_err"][good]
        assert np.abs(pulls).max() < 4
        gain_pulls = (result["gain_adu_per_e"][good] - GAIN) / result["gain_err"][good]
        assert np.abs(gain_pulls).max() < 4
        assert abs(result["lambda_slope"]) < 4 * result["lambda_slope_err"]
        table = np.loadtxt(tmp_path / f"image_FitDarkCurrentPerCol_{name}.csv", delimiter=",", skiprows=1)
        assert table.shape == (5, 13)


def test_slices_of_pure_noise_are_invalid_not_errors(run_chain):
    image = image_of({"L": np.random.default_rng(22).normal(0, SIGMA, (100, 300))})
    run_chain(image, FitDarkCurrentPerCol(col_step=100, x_min=-10, x_max=30))
    result = image["L"].results["FitDarkCurrentPerCol"]
    assert not result["valid"].any() and all("single-electron" in s for s in result["status"])
    assert np.isnan(result["lambda_slope"])


# --- pysimdamicm configurations ----------------------------------------------------------------------------------
PROCESSES = {"FitDarkCurrentProcess": FitDarkCurrentProcess, "FitDarkCurrentPerRow": FitDarkCurrentPerRow}
PROCESSES["FitDarkCurrentPerCol"] = FitDarkCurrentPerCol


@pytest.mark.parametrize("config", ["panaSKImg_configuration.json", "img_5.json"])
def test_pysimdamicm_sections_load(configs, config):
    sections = json.loads((configs / config).read_text())["process"]
    loaded = {name: cls.from_mapping(sections[name]) for name, cls in PROCESSES.items()}
    fit = loaded["FitDarkCurrentProcess"]
    if config == "img_5.json":
        assert fit.value_for("rows_to_mask", ("EXT2",)) == [0, 1, 2]
        assert set(fit.ignored) == {"fit_options", "ratio_plot", "__DEBUG__", "__verbose__"}
        assert fit.binning_size == 0.01 and fit.dc_max == 20.0
    else:
        assert fit.value_for("sigma_max", ("U",)) == 3.0 and fit.value_for("gain_max", ("L",)) == 11.0
        assert fit.value_for("cols_to_mask", ("L",))[-1] == [272, 307] and fit.mask_clusters
        assert loaded["FitDarkCurrentPerCol"].value_for("cols_to_mask", ("U",)) == [[540, 560], 638, 639]
        assert loaded["FitDarkCurrentPerRow"].row_end == 840


def test_dqm_monitor_section_loads(configs):
    sections = json.loads((configs / "dqmSKImg_configuration.json").read_text())
    monitors = sections["monitoring_elements"]
    for name, cls in (("MEFitDC", FitDarkCurrentProcess), ("MEFitDCPerRow", FitDarkCurrentPerRow)):
        cls.from_mapping({k: v for k, v in monitors[name].items() if k != "active"})
    FitDarkCurrentPerCol.from_mapping({k: v for k, v in monitors["MEFitDCPerCol"].items() if k != "active"})


def test_default_configuration_fits_a_two_amplifier_image(configs, run_chain):
    section = json.loads((configs / "panaSKImg_configuration.json").read_text())
    process = FitDarkCurrentProcess.from_mapping(section["process"]["FitDarkCurrentProcess"])
    image = image_of({"L": pcd_values((300, 700), lam=0.1, seed=23), "U": pcd_values((300, 700), lam=0.1, seed=24)})
    for name in ("L", "U"):
        image[name].set("mask_clusters", np.zeros(image[name].geometry.shape, dtype=bool))
    run_chain(image, process.replace(minos=False))
    for name in ("L", "U"):
        result = image[name].results["FitDarkCurrentProcess"]
        assert result["valid"], result["status"]
        assert_recovers(result["gain_adu_per_e"], result["gain_err"], GAIN, 0.01)
        assert_recovers(result["lambda_e_per_pixel"], result["lambda_err"], 0.1, 0.05)
    assert image["L"].results["FitDarkCurrentProcess"]["n_pixels"] == (300 - 5) * (700 - 5 - 2 - 2 - 2 - 35)
