"""GaussianFitProcess, MeanPixelChargePerAxis, GaussianNoiseProcess and AddBKGComponent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.sinks import write_run
from waders.ana.studies.gaussfit import GaussianFitProcess
from waders.ana.studies.injection import AddBKGComponent, GaussianNoiseProcess
from waders.ana.studies.profiles import MeanPixelChargePerAxis
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry

PRODUCT = "mean_compressed_pedestal_subtracted"
ROWS, COLS, PRESCAN, OVERSCAN = 300, 140, 4, 36


def two_amp_image(seed=0, *, mu=(0.4, -0.3), sigma=(1.5, 2.2), charge=0.0):
    """L and U (mirrored), ROWS x COLS: Gaussian(mu, sigma) everywhere plus Poisson charge (x10) in the active area."""
    rng = np.random.default_rng(seed)
    arrays, geometries = {}, {}
    for i, name in enumerate(("L", "U")):
        geometry = AmplifierGeometry(
            name, ROWS, COLS, prescan_cols=PRESCAN, overscan_cols=OVERSCAN, mirrored=i == 1, col_offset=i * COLS
        )
        values = rng.normal(mu[i], sigma[i], (ROWS, COLS))
        rows, cols = geometry.region("active")
        values[rows, cols] += 10.0 * rng.poisson(charge, values[rows, cols].shape)
        arrays[name], geometries[name] = values, geometry
    return SkipperImage.from_arrays(arrays, geometries=geometries, product=PRODUCT, layout="two-amplifier")


# --- GaussianFitProcess ---------------------------------------------------------------------------
@pytest.mark.parametrize("trim", [True, False])
def test_gaussian_fit_recovers_mu_and_sigma(trim):
    # 300 x 36 = 10 800 overscan pixels: mu to sigma/104, sigma to sigma/147 (the recorded errors)
    image = two_amp_image(charge=0.5)
    GaussianFitProcess(in_trim_mean=trim, n_sigma=4).run(image, RunContext(seed=1))
    for name, mu, sigma in (("L", 0.4, 1.5), ("U", -0.3, 2.2)):
        result = image.amplifiers[name].results["GaussianFitProcess"]
        assert result["region"] == "overscan" and result["n_pixels"] == ROWS * OVERSCAN
        assert result["mu_err"] == pytest.approx(sigma / np.sqrt(ROWS * OVERSCAN), rel=0.2)
        assert abs(result["mu_adu"] - mu) < 4 * result["mu_err"]
        assert abs(result["sigma_adu"] - sigma) < 4 * result["sigma_err"]
        assert result["valid"] and 0.3 < result["chi2_ndf"] < 2.5
        assert result["hist_counts"].sum() == result["n_in_range"]
        assert image.header_cards[f"GFSIG{name}"][0] == result["sigma_adu"]
        assert image.header_cards[f"GFESIG{name}"][0] == result["sigma_err"]
        assert image.header_cards[f"GFCHI2{name}"][0] == result["chi2_ndf"]


def test_gaussian_fit_skip_cols_are_file_columns_and_active_region(tmp_path):
    image = two_amp_image(seed=2)
    # spoil file columns 200..209: readout columns 69..60 of the mirrored U amplifier (file column 140 + 139 - c)
    u = image.amplifiers["U"].products[PRODUCT]
    u[:, 60:70] += 1000.0
    image.amplifiers["L"].products[PRODUCT][:10, :] -= 1000.0  # rows 0..9 of L
    process = GaussianFitProcess(
        in_overscan=False, skip_cols={"U": [[200, 209]]}, skip_rows={"L": [[0, 9]]}, save_plots=True
    )
    context = RunContext(seed=1)
    Pipeline([process]).run(image, context)
    write_run(image, [process], context, tmp_path)
    assert (tmp_path / "plots" / "image_GaussianFitProcess_fit_U.png").stat().st_size > 0
    for name, mu, sigma, n_pixels in (("L", 0.4, 1.5, 290 * 100), ("U", -0.3, 2.2, 300 * 90)):
        result = image.amplifiers[name].results["GaussianFitProcess"]
        assert result["region"] == "active" and result["n_pixels"] == n_pixels
        assert abs(result["mu_adu"] - mu) < 4 * result["mu_err"]
        assert abs(result["sigma_adu"] - sigma) < 4 * result["sigma_err"]


@pytest.mark.parametrize("method", ["freedman", "sturge", "default", "manual"])
def test_gaussian_fit_binning_rules(method):
    image = two_amp_image(seed=3)
    GaussianFitProcess(hist_nbins_method=method, hist_nbins=40).run(image, RunContext(seed=1))
    result = image.amplifiers["L"].results["GaussianFitProcess"]
    if method == "manual":
        assert len(result["hist_counts"]) == 40
    if method == "sturge":
        assert len(result["hist_counts"]) == 1 + int(np.ceil(np.log2(result["n_in_range"])))
    assert abs(result["sigma_adu"] - 1.5) < 4 * result["sigma_err"]


def test_gaussian_fit_errors_and_configs(configs):
    image = two_amp_image()
    with pytest.raises(DataError, match="usable pixels"):
        GaussianFitProcess(skip_rows=[[0, ROWS]]).run(image, RunContext(seed=1))
    for config in ("img_5.json", "panaSKImg_config_CCDTesting.json", "panaSKImg_config_ACM_ex.json"):
        sections = json.loads((configs / config).read_text())["process"]
        process = GaussianFitProcess.from_mapping(sections["GaussianFitProcess"])
        assert process.n_sigma == sections["GaussianFitProcess"]["n_sigma"]
    assert GaussianFitProcess.from_mapping({"show_outliers": True}).ignored == {"show_outliers": True}


# --- MeanPixelChargePerAxis -----------------------------------------------------------------------
@pytest.mark.parametrize(("function", "axis"), [("mean", "col"), ("median", "row"), ("std", "col"), ("max", "row")])
def test_profile_matches_numpy(function, axis):
    image = two_amp_image(charge=0.3)
    MeanPixelChargePerAxis(function=function, axis=axis).run(image, RunContext(seed=1))
    for name, amp in image.amplifiers.items():
        result = amp.results["MeanPixelChargePerAxis"]
        rows, cols = amp.geometry.region("active")
        active = amp.get(PRODUCT)[rows, cols]
        expected = getattr(np, function)(active, axis=1 if axis == "row" else 0)
        assert np.allclose(result["profile"], expected)
        assert np.all(result["n_pixels"] == (100 if axis == "row" else ROWS))
        if axis == "col":
            assert list(result["position"]) == list(range(PRESCAN, COLS - OVERSCAN))
            if name == "U":  # mirrored: readout column c is file column 2 COLS - 1 - c
                assert list(result["file_position"]) == [2 * COLS - 1 - c for c in result["position"]]


def test_profile_mask_and_window(tmp_path):
    image = two_amp_image(charge=0.3)
    process = MeanPixelChargePerAxis(mask=True, charge=5.0, axis="row", id_row_end=100, save_plots=True)
    context = RunContext(seed=1)
    Pipeline([process]).run(image, context)
    write_run(image, [process], context, tmp_path)
    amp = image.amplifiers["L"]
    result = amp.results["MeanPixelChargePerAxis"]
    cols = amp.geometry.region("active")[1]
    active = amp.get(PRODUCT)[:100, cols]
    expected = np.nanmean(np.where(active > 5.0, np.nan, active), axis=1)
    assert len(result["profile"]) == 100 and np.allclose(result["profile"], expected)
    assert np.all(result["n_pixels"] == (active <= 5.0).sum(axis=1))
    assert (tmp_path / "plots" / "image_MeanPixelChargePerAxis_mean_per_row_L.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="unknown numpy reduction"):
        MeanPixelChargePerAxis(function="nosuchthing")


# --- GaussianNoiseProcess -------------------------------------------------------------------------
def test_gaussian_noise_has_the_right_sigma_and_is_reproducible():
    image = two_amp_image()
    image.amplifiers["L"].products[PRODUCT][0, 0] = np.nan
    process = GaussianNoiseProcess(image=PRODUCT, sigma={"L": 0.5, "U": 2.0})
    Pipeline([process]).run(image, RunContext(seed=42))
    outputs = {}
    for name, sigma in (("L", 0.5), ("U", 2.0)):
        amp = image.amplifiers[name]
        added = amp.get(f"{PRODUCT}_wgnoise") - amp.get(PRODUCT)
        finite = np.isfinite(added)
        # 42 000 pixels: the standard deviation is known to 1/sqrt(2 * 42 000) = 0.35 %
        assert added[finite].std() == pytest.approx(sigma, rel=0.015)
        assert abs(added[finite].mean()) < 4 * sigma / np.sqrt(finite.sum())
        assert amp.results["GaussianNoiseProcess"]["sigma"] == sigma
        outputs[name] = amp.get(f"{PRODUCT}_wgnoise")
    assert np.isnan(outputs["L"][0, 0])
    again = two_amp_image()
    again.amplifiers["L"].products[PRODUCT][0, 0] = np.nan
    Pipeline([process]).run(again, RunContext(seed=42))
    assert np.array_equal(again.amplifiers["U"].get(f"{PRODUCT}_wgnoise"), outputs["U"])
    other = two_amp_image()
    Pipeline([process]).run(other, RunContext(seed=43))
    assert not np.allclose(other.amplifiers["U"].get(f"{PRODUCT}_wgnoise"), outputs["U"])


# --- AddBKGComponent ------------------------------------------------------------------------------
def test_uniform_background_goes_to_the_active_region_only():
    image = two_amp_image()
    originals = {name: amp.get(PRODUCT).copy() for name, amp in image.amplifiers.items()}
    AddBKGComponent(image=PRODUCT, value=0.25).run(image, RunContext(seed=1))
    for name, amp in image.amplifiers.items():
        assert np.array_equal(amp.get(f"{PRODUCT}_woExtraDC"), originals[name])
        difference = amp.get(PRODUCT) - originals[name]
        expected = np.where(amp.geometry.mask("active"), 0.0, 0.25)
        assert np.allclose(difference, expected, rtol=0, atol=1e-12)
        result = amp.results["AddBKGComponent"]
        assert result["n_pixels_changed"] == ROWS * 100 and result["injected_total"] == pytest.approx(0.25 * ROWS * 100)


def test_linear_background_injects_exactly_the_recorded_clusters():
    image = two_amp_image()
    originals = {name: amp.get(PRODUCT).copy() for name, amp in image.amplifiers.items()}
    a, b = 0.005, 0.004
    process = AddBKGComponent(image=PRODUCT, function="linear", Ncls=20_000, density_intercept=a, density_slope=b)
    Pipeline([process]).run(image, RunContext(seed=5))
    for name, amp in image.amplifiers.items():
        result = amp.results["AddBKGComponent"]
        rows, cols, charges = result["cluster_rows"], result["cluster_cols"], result["cluster_charges"]
        expected = np.zeros((ROWS, COLS))
        np.add.at(expected, (rows, cols), charges)
        assert np.allclose(amp.get(PRODUCT) - originals[name], expected, rtol=0, atol=1e-12)
        assert not (amp.geometry.mask("active")[rows, cols]).any()
        assert charges.min() >= 0.04 and charges.max() < 0.15
        assert result["injected_total"] == pytest.approx(charges.sum())
        # rows follow the density a + b r: mean row sum(r w) / sum(w), std / sqrt(N) = 80 / 141 = 0.6 rows
        r = np.arange(ROWS)
        weight = a + b * (r + 0.5)
        mean = (r * weight).sum() / weight.sum()
        spread = np.sqrt(((r - mean) ** 2 * weight).sum() / weight.sum())
        assert abs(rows.mean() - mean) < 4 * spread / np.sqrt(rows.size)
    first = image.amplifiers["U"].results["AddBKGComponent"]["cluster_rows"].copy()
    again = two_amp_image()
    Pipeline([process]).run(again, RunContext(seed=5))
    assert np.array_equal(again.amplifiers["U"].results["AddBKGComponent"]["cluster_rows"], first)


def test_background_errors():
    image = two_amp_image()
    with pytest.raises(ConfigError, match="'dc' is not provided"):
        AddBKGComponent(image=PRODUCT, function="dc").run(image, RunContext(seed=1))
    with pytest.raises(ConfigError, match="negative or zero"):
        AddBKGComponent(image=PRODUCT, function="linear", density_intercept=0.1, density_slope=-0.01).run(
            image, RunContext(seed=1)
        )
    with pytest.raises(ConfigError, match="below Emin"):
        AddBKGComponent(image=PRODUCT, function="linear", Emin=1.0, Emax=0.5).run(image, RunContext(seed=1))
    with pytest.raises(DataError, match="not available"):
        AddBKGComponent().run(image, RunContext(seed=1))
