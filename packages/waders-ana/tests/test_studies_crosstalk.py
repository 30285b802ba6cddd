"""CrossTalkProcess: injected crosstalk recovered, null test, correction and the common-outlier flag."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.sinks import save_figures
from waders.ana.studies.crosstalk import CrossTalkProcess, robust_median_ratio
from waders.core import Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry
from waders.io.synthetic import make_raw_image

IMAGE = "mean_compressed_pedestal_subtracted_e"
NAMES = "ABCD"


def crosstalk_image(
    alpha: np.ndarray, *, n_seeds: int = 300, shape=(300, 400), seed: int = 0, truth: dict | None = None
) -> SkipperImage:
    """Calibrated images (e-) of len(alpha) amplifiers read together, with dst += alpha[dst, src] src.

    Each amplifier: Poisson dark current (0.05 e-), ``n_seeds`` bright pixels of 400 + Exp(800) e-
    (capped at 4900 e-, inside the default qrange), then the crosstalk, then 0.2 e- of Gaussian noise.
    Amplifier B is mirrored (as the U amplifier of a two-amplifier CCD): readout order is what counts.
    ``truth`` (if given) receives the images without crosstalk.
    """
    rng = np.random.default_rng(seed)
    n = alpha.shape[0]
    clean = rng.poisson(0.05, (n, *shape)).astype(np.float64)
    for img in clean:
        r = rng.integers(0, shape[0], n_seeds)
        c = rng.integers(10, shape[1] - 10, n_seeds)
        img[r, c] += np.minimum(400.0 + rng.exponential(800.0, n_seeds), 4900.0)
    without = clean + rng.normal(0.0, 0.2, clean.shape)
    mixed = without + np.einsum("ds,srk->drk", alpha, clean)
    geometries = {
        name: AmplifierGeometry(
            name, shape[0], shape[1], prescan_cols=4, overscan_cols=6, col_offset=i * shape[1], mirrored=i == 1
        )
        for i, name in enumerate(NAMES[:n])
    }
    arrays = {name: mixed[i] for i, name in enumerate(NAMES[:n])}
    if truth is not None:
        truth.update({name: without[i] for i, name in enumerate(NAMES[:n])})
    image = SkipperImage.from_arrays(arrays, geometries=geometries, product=IMAGE)
    for name in arrays:  # a flat skip-spread map for the flag
        image[name].set("std_compressed", rng.normal(2.0, 0.1, shape))
    return image


def matrices(image: SkipperImage, *keys: str) -> list[np.ndarray]:
    res = image.results["CrossTalkProcess"]
    return [np.array(res[k], dtype=np.float64) for k in keys]


ALPHA4 = np.zeros((4, 4))
ALPHA4[1, 0], ALPHA4[0, 1], ALPHA4[3, 2], ALPHA4[2, 3] = 2e-3, 5e-4, 2e-3, 5e-4


def test_alpha_matrix_recovered_with_null_test_and_correction():
    truth: dict[str, np.ndarray] = {}
    image = crosstalk_image(ALPHA4, truth=truth)
    CrossTalkProcess().run(image, RunContext(seed=1))
    res = image.results["CrossTalkProcess"]
    assert res["amplifiers"] == ["A", "B", "C", "D"] and res["image_unit"] == "e-"
    alpha, err, null, null_err = matrices(image, "alpha", "alpha_err", "alpha_null", "alpha_null_err")
    off = ~np.eye(4, dtype=bool)
    assert np.all(np.isnan(alpha[~off])) and res["n_seeds"][0][0] is None
    seeds = np.array([[v for v in row if v is not None] for row in res["n_seeds"]])
    assert np.all((seeds > 280) & (seeds <= 300))  # a few seeds may coincide or sit on the image edge
    # the error of a median of 300 ratios with spread 0.2 e- / ~1000 e- is ~1.5e-5: the injected
    # values are recovered within 5 % or 3 standard errors, the bootstrap error agrees with that estimate
    pulls = (alpha - ALPHA4)[off] / err[off]
    assert np.all((np.abs(pulls) < 3) | (np.abs(alpha - ALPHA4)[off] < 0.05 * ALPHA4[off]))
    assert np.all((err[off] > 5e-6) & (err[off] < 4e-5))
    assert np.all(np.abs(null[off]) < 3 * null_err[off])  # random positions: no crosstalk
    # the correction subtracts it: compared with the images made without crosstalk, what is left is what
    # the errors of alpha - alpha_null allow (each ~2e-5, i.e. ~7 % of the 5e-4 couplings)
    net_err2 = np.where(off, err**2 + null_err**2, 0.0)
    power = np.array([(image[name].get(IMAGE) ** 2).mean() for name in "ABCD"])
    for dst, name in enumerate("ABCD"):
        injected = image[name].get(IMAGE) - truth[name]
        left = image[name].get(f"{IMAGE}_xtcorr") - truth[name]
        expected = np.sqrt(net_err2[dst] @ power)
        assert np.sqrt((left**2).mean()) < 3 * expected
        assert np.sqrt((left**2).mean()) < 0.2 * np.sqrt((injected**2).mean())
    # and measured again on the corrected images, alpha is compatible with 0
    again = CrossTalkProcess(image=f"{IMAGE}_xtcorr", correct=False, flag=False)
    again.run(image, RunContext(seed=2))
    residual, residual_err = matrices(image, "alpha", "alpha_err")
    assert np.all(np.abs(residual[off]) < 3 * residual_err[off])


def test_cluster_seeds_give_the_same_alpha():
    from waders.ana.clusters.finder import find_clusters

    alpha = np.array([[0.0, 1e-3], [3e-3, 0.0]])
    image = crosstalk_image(alpha, n_seeds=250, shape=(200, 300), seed=5)
    CrossTalkProcess(flag=False, correct=False).run(image, RunContext(seed=1))
    pixel_alpha, pixel_seeds = matrices(image, "alpha", "n_seeds")
    find_clusters(image, spr_threshold=[1.0, 50, 100])  # only the bright seeds are clusters
    CrossTalkProcess(flag=False, correct=False, only_cluster_seeds=True).run(image, RunContext(seed=1))
    cluster_alpha, cluster_seeds, err = matrices(image, "alpha", "n_seeds", "alpha_err")
    # single-pixel seeds: the same pixels (the mirrored amplifier B included), except that touching seeds
    # make one cluster: 250 seeds on 58000 pixels give 250^2 / 2 x 8 / 58000 = 4.3 +- 2 touching pairs
    for dst, src in ((0, 1), (1, 0)):
        assert 0 <= pixel_seeds[dst, src] - cluster_seeds[dst, src] <= 12
    assert abs(cluster_alpha[1, 0] - 3e-3) < 3 * err[1, 0] and abs(cluster_alpha[0, 1] - 1e-3) < 3 * err[0, 1]
    assert abs(cluster_alpha[1, 0] - pixel_alpha[1, 0]) < err[1, 0]


def test_flag_finds_common_std_outliers():
    image = crosstalk_image(np.zeros((2, 2)), n_seeds=10, shape=(100, 120))
    rng = np.random.default_rng(3)
    rows, cols = image["A"].geometry.region("active")
    flat = rng.choice((rows.stop - rows.start) * (cols.stop - cols.start), 60, replace=False)
    r, c = rows.start + flat // (cols.stop - cols.start), cols.start + flat % (cols.stop - cols.start)
    common, only_a, only_b = slice(0, 20), slice(20, 40), slice(40, 60)
    for name, picks in (("A", (common, only_a)), ("B", (common, only_b))):
        std = image[name].get("std_compressed")
        for pick in picks:
            std[r[pick], c[pick]] = 4.0  # 20 trimmed sigmas above the 2.0 +- 0.1 core
    CrossTalkProcess(alpha_matrix=False).run(image, RunContext(seed=1))
    flag = image["A"].get("xtalk")
    assert flag.dtype == np.uint8 and np.array_equal(flag, image["B"].get("xtalk"))
    expected = np.zeros(flag.shape, dtype=bool)
    expected[r[common], c[common]] = True
    assert np.array_equal(flag.astype(bool), expected)
    assert image.results["CrossTalkProcess"]["n_xtalk"] == 20
    # per amplifier, 5 trimmed sigmas (the 5-95 % trimmed std is 0.79 sigma) = 3.9 sigma: ~1 false outlier
    assert 40 <= image["A"].results["CrossTalkProcess"]["n_std_outliers"] <= 46
    assert abs(image["A"].results["CrossTalkProcess"]["std_trimmed_mean"] - 2.0) < 0.01


def test_bootstrap_error_of_the_median():
    rng = np.random.default_rng(0)
    values = rng.normal(1.0, 1.0, 400)
    median, error, kept = robust_median_ratio(values, 5.0, 2000, np.random.default_rng(1))
    assert kept == 400
    assert abs(error - 1.2533 / np.sqrt(400)) < 0.2 * 1.2533 / np.sqrt(400)  # asymptotic error of a median
    again = robust_median_ratio(values, 5.0, 2000, np.random.default_rng(1))
    assert again == (median, error, kept)  # reproducible with the same stream
    with_outliers = np.append(values, np.full(20, 1e3))
    assert robust_median_ratio(with_outliers, 5.0, 10, np.random.default_rng(1))[2] == 400


def test_raw_chain_with_plots(tmp_path):
    from waders.ana.calibration import CalibrationProcess
    from waders.ana.compress import CompressSkipperProcess
    from waders.ana.pedestal import PedestalSubtractionProcess

    image, truth = make_raw_image(amplifiers=("L", "U"), nrows=150, ncols=220, nskips=4, seed=4)
    rng = np.random.default_rng(8)
    signal = {}
    for name, amp in image.amplifiers.items():  # 200 bright pixels per amplifier, at different positions
        rows, cols = amp.geometry.region("active")
        r, c = rng.integers(rows.start, rows.stop, 200), rng.integers(cols.start, cols.stop, 200)
        charge = np.zeros(amp.geometry.shape)
        charge[r, c] = 400.0 + rng.exponential(800.0, 200)
        amp.raw += truth.gain * charge[:, :, None]
        signal[name] = truth.gain * (truth.electrons[name] + charge)
    alpha_ul, alpha_lu = 2e-3, 1e-3  # U <- L and L <- U, on every sample (ADU; same gain, so also in e-)
    image["U"].raw += alpha_ul * signal["L"][:, :, None]
    image["L"].raw += alpha_lu * signal["U"][:, :, None]
    steps = [
        CompressSkipperProcess(),
        PedestalSubtractionProcess(method="median"),
        CalibrationProcess(gain=truth.gain),
        CrossTalkProcess(save_plots=True, n_boot=200),
    ]
    context = RunContext(seed=1, save_plots=True)
    Pipeline(steps).run(image, context)
    save_figures(context.figures, tmp_path, "image")
    alpha, err = matrices(image, "alpha", "alpha_err")
    assert abs(alpha[1, 0] - alpha_ul) < max(3 * err[1, 0], 0.05 * alpha_ul)
    assert abs(alpha[0, 1] - alpha_lu) < max(3 * err[0, 1], 0.05 * alpha_lu)
    assert image["L"].has(f"{IMAGE}_xtcorr") and image["L"].has("xtalk")
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"image_CrossTalkProcess_alpha_matrix.png", "image_CrossTalkProcess_scatter.png"} <= names


def test_bad_inputs():
    single = crosstalk_image(np.zeros((1, 1)), n_seeds=5, shape=(20, 30))
    with pytest.raises(DataError, match="two or more amplifiers"):
        CrossTalkProcess().run(single, RunContext(seed=1))
    image = crosstalk_image(np.zeros((2, 2)), n_seeds=5, shape=(20, 30))
    del image["A"].products["std_compressed"]
    with pytest.raises(DataError, match="std_compressed"):
        CrossTalkProcess().run(image, RunContext(seed=1))
    with pytest.raises(DataError, match="no clusters"):
        CrossTalkProcess(flag=False, only_cluster_seeds=True).run(image, RunContext(seed=1))
    with pytest.raises(ConfigError, match="qrange"):
        CrossTalkProcess(flag=False, qrange=[10, 1]).run(image, RunContext(seed=1))
    with pytest.raises(DataError, match="not available"):
        CrossTalkProcess(flag=False, image="nothing").run(image, RunContext(seed=1))


def test_pysimdamicm_section_loads(configs):
    path = configs / "panaSKImg_config_ACM_ex.json"
    section = json.loads(path.read_text())["process"]["CrossTalkProcess"]
    process = CrossTalkProcess.from_mapping(section)
    assert process.n_sig == 1.0 and process.percentile == [5.0, 95.0]
    assert process.std_pattern == ["avg_skips_contrun", "var_skips_contrun"]
