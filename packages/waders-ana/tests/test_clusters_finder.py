from __future__ import annotations

import json
import math

import awkward as ak
import numpy as np
import pytest
from scipy.special import ndtr
from scipy.stats import poisson

from waders.ana.calibration import CalibrationProcess
from waders.ana.clusters import (
    ApplySelectionCuts,
    BuildClusterMask,
    ClusterFinder,
    find_clusters,
    keep_seeded,
    label_candidates,
    resolve_threshold,
)
from waders.ana.compress import CompressSkipperProcess
from waders.ana.pedestal import PedestalSubtractionProcess
from waders.core import Detector, Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry
from waders.data import DAMICM_IMAGE
from waders.data import path as data_path
from waders.io.synthetic import cluster_deposits, make_raw_image

E2EV = 3.74  # eV per electron (analysis default)
GAIN, NOISE, NSKIPS = 10.0, 2.0, 10  # ADU/e-, ADU per skip: one averaged pixel has 0.063 e- of noise
PS_E = "mean_compressed_pedestal_subtracted_e"


def context() -> RunContext:
    return RunContext(seed=1, detector=Detector.for_domain("ana"))


def reconstruct(image: SkipperImage, *extra, **finder) -> ak.Array:
    """Compress, subtract the pedestal (mean per row on the overscan), calibrate, find clusters."""
    steps = [
        CompressSkipperProcess(func_to_compress=["mean"]),
        PedestalSubtractionProcess(method="mean", in_overscan=True, axis="row"),
        CalibrationProcess(gain=GAIN),
        *extra,
        ClusterFinder(**finder),
    ]
    Pipeline(steps).run(image, context())
    return image.results["ClusterFinder"]["clusters"]


def electron_image(arrays: dict, geometries: dict | None = None, header: dict | None = None) -> SkipperImage:
    return SkipperImage.from_arrays(arrays, geometries=geometries, product=PS_E, header=header)


# --- truth-based reconstruction ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amplifiers", "binning", "method", "neighbours"),
    [(("L",), 1, 0, 1), (("L", "U"), 1, 0, 1), (("L", "U"), 2, 1, 2), (("L",), 3, 1, 1)],
)
def test_every_separated_cluster_is_found_with_its_position_and_energy(amplifiers, binning, method, neighbours):
    """Clouds of 500-4000 e- on a 16-pixel grid, sigma 0.5-1.5 px, read with 0.063 e- of noise.

    Error budget of one cluster: noise sqrt(Npix) * 0.063 e- < 1 e-; per-row pedestal error
    0.063 / sqrt(30) e- per pixel; dark current 0.01 e-/pixel over ~60 pixels adds ~0.6 +- 0.8 e-
    (< 0.5 % of 500 e-) and moves the centroid by ~0.6 e- * 5 px / 500 e- = 0.006 px.  Limits:
    1 % in energy, 0.1 px in position.
    """
    rng = np.random.default_rng(7)
    nrows, ncols, prescan, overscan = 120, 130, 4, 30
    grid_r, grid_c = np.meshgrid(np.arange(10, 110, 16), np.arange(prescan + 10, ncols - overscan - 6, 16))
    centres = np.column_stack([grid_r.ravel(), grid_c.ravel()]) + rng.uniform(-0.5, 0.5, (grid_r.size, 2))
    charge = rng.integers(500, 4000, grid_r.size)
    deposits, truth = cluster_deposits(rng, centres, charge, rng.uniform(0.5, 1.5, grid_r.size), shape=(nrows, ncols))
    image, _ = make_raw_image(
        amplifiers=amplifiers,
        nrows=nrows,
        ncols=ncols,
        prescan=prescan,
        overscan=overscan,
        nskips=NSKIPS,
        gain=GAIN,
        noise=NOISE,
        dark_current=0.01,
        row_binning=binning,
        col_binning=binning,
        deposits=deposits,
        seed=5,
    )
    clusters = reconstruct(image, method=method, max_nearest_neighbor=neighbours)
    for index, amp in enumerate(image.amplifiers.values()):
        mine = clusters[clusters.amplifier == index]
        pos_x, pos_y = ak.to_numpy(mine.PosX), ak.to_numpy(mine.PosY)
        energy = ak.to_numpy(mine.Energy)
        expected_x = amp.geometry.to_file_columns(truth.col) + 1.0  # 1-based file coordinates
        expected_y = amp.geometry.to_file_rows(truth.row) + 1.0
        assert (energy > 100 * E2EV / 1000).sum() == len(charge)  # one big cluster per cloud, no splitting
        for k in range(len(charge)):
            near = np.hypot(pos_x - expected_x[k], pos_y - expected_y[k]) < 3
            assert near.any(), f"cloud {k} of amplifier {amp.name} not found"
            best = np.flatnonzero(near)[np.argmax(energy[near])]
            assert math.hypot(pos_x[best] - expected_x[k], pos_y[best] - expected_y[k]) < 0.1
            assert energy[best] == pytest.approx(truth.electrons[k] * E2EV / 1000, rel=0.01)
    if len(amplifiers) == 2:  # U is read mirrored: its clusters sit at mirrored file columns
        left, right = clusters[clusters.amplifier == 0], clusters[clusters.amplifier == 1]
        assert ak.min(right.minX) > ncols >= ak.max(left.maxX)
    assert ak.all(clusters.cluster_id == np.arange(1, len(clusters) + 1))
    assert ak.all(ak.num(clusters.pixels_x) == clusters.Npix)
    assert ak.all(ak.flatten(clusters.pixels_z) == -1)


def test_blank_image_false_rate_at_the_default_threshold():
    """Blank image (Poisson dark current 0.05 e-/pixel), default threshold [null, 3, 4].

    A seeded cluster without any true electron needs a noise fluctuation above 4 sigma:
    expected number N_active * Q(4 sigma_hat / sigma_eff), with sigma_eff including the
    per-row pedestal error (sigma / sqrt(n_overscan)).  That is 3e-5 per pixel, ~1000x less
    than the dark-current rate.  Condition for *no* spurious cluster: N_active * Q(n_seed) << 1
    (checked with n_seed = 5: 3e-7 per pixel).  Every dark-current electron is found.
    """
    nrows, ncols, overscan = 150, 150, 40
    image, truth = make_raw_image(
        nrows=nrows, ncols=ncols, overscan=overscan, nskips=NSKIPS, gain=GAIN, noise=NOISE, dark_current=0.05, seed=21
    )
    clusters = reconstruct(image)
    result = image["L"].results["ClusterFinder"]
    sigma_true = NOISE / math.sqrt(NSKIPS) / GAIN
    assert result["sigma_e"] == pytest.approx(sigma_true, rel=0.05)
    assert result["q_cut_e"] == pytest.approx(3 * result["sigma_e"]) and result["q_seed_e"] == pytest.approx(
        4 * result["sigma_e"]
    )
    electrons = truth.electrons["L"]
    true_charge = np.array(
        [
            electrons[np.asarray(y) - 1, np.asarray(x) - 1].sum()
            for x, y in zip(ak.to_list(clusters.pixels_x), ak.to_list(clusters.pixels_y), strict=True)
        ]
    )
    seeded = ak.to_numpy(clusters.has_seed)
    n_active = electrons[image["L"].geometry.region("active")].size
    sigma_eff = sigma_true * math.sqrt(1 + 1 / overscan)
    expected = n_active * ndtr(-4 * result["sigma_e"] / sigma_eff)
    false_seeded = int((seeded & (true_charge == 0)).sum())
    assert expected < 1.5
    assert poisson.sf(false_seeded - 1, expected) > 1e-4  # observed count compatible with the expected rate
    assert false_seeded / seeded.sum() < 0.01  # negligible next to the dark-current electrons
    found = np.zeros_like(electrons, dtype=bool)
    found[ak.to_numpy(ak.flatten(clusters.pixels_y)) - 1, ak.to_numpy(ak.flatten(clusters.pixels_x)) - 1] = True
    assert found[electrons > 0].all()  # a 1 e- pixel is 16 sigma above 0
    strict = ClusterFinder(spr_threshold=[None, 3, 5], only_cls_seed=True)
    strict.run(image, context())
    assert n_active * ndtr(-5 / math.sqrt(1 + 1 / overscan)) < 0.01
    strict_clusters = image.results["ClusterFinder"]["clusters"]
    for x, y in zip(ak.to_list(strict_clusters.pixels_x), ak.to_list(strict_clusters.pixels_y), strict=True):
        assert electrons[np.asarray(y) - 1, np.asarray(x) - 1].sum() > 0


# --- grouping ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("density", [0.05, 0.3, 0.6])
def test_method_1_with_n_1_is_8_connectivity(density):
    rng = np.random.default_rng(int(density * 100))
    for _ in range(5):
        candidates = rng.random((40, 50)) < density
        r0, c0, l0, n0 = label_candidates(candidates, method=0)
        r1, c1, l1, n1 = label_candidates(candidates, method=1, max_nearest_neighbor=1)
        assert n0 == n1
        np.testing.assert_array_equal(r0, r1)
        np.testing.assert_array_equal(c0, c1)
        np.testing.assert_array_equal(l0, l1)


def test_method_0_and_method_1_n_1_give_identical_clusters():
    rng = np.random.default_rng(3)
    charge = rng.poisson(0.4, (30, 40)).astype(float) * 3.0
    a = find_clusters(electron_image({"L": charge.copy()}), spr_threshold=[1.0, 3, 6], method=0)
    b = find_clusters(electron_image({"L": charge.copy()}), spr_threshold=[1.0, 3, 6], method=1)
    assert len(a) > 20 and a.fields == b.fields
    for name in a.fields:  # NaN-aware equality (time stamps are NaN here)
        np.testing.assert_array_equal(
            ak.to_numpy(ak.flatten(a[name], axis=None)), ak.to_numpy(ak.flatten(b[name], axis=None))
        )


@pytest.mark.parametrize(
    ("offset", "linked_for"),
    [
        ((0, 1), {1, 2, 3}),
        ((1, 1), {1, 2, 3}),
        ((0, 2), {2, 3}),
        ((2, 1), {2, 3}),
        ((2, 2), {2, 3}),
        ((0, 3), {3}),
        ((1, 4), {3}),
        ((3, 3), {3}),
        ((0, 5), set()),
        ((2, 4), set()),
    ],
)
def test_single_linkage_radius(offset, linked_for):
    """Radius sqrt(2) N: N = 2 links pixels one empty pixel apart (5 x 5), N = 3 is a disc, not a 7 x 7 box."""
    candidates = np.zeros((12, 12), dtype=bool)
    candidates[3, 3] = candidates[3 + offset[0], 3 + offset[1]] = True
    for n in (1, 2, 3):
        *_, count = label_candidates(candidates, method=1, max_nearest_neighbor=n)
        assert (count == 1) == (n in linked_for)


def test_keep_seeded_and_only_cls_seed():
    labels = np.array([0, 0, 1, 2, 2, 2])
    seeds = np.array([False, True, False, False, False, True])
    keep, new, kept = keep_seeded(labels, 3, seeds)
    assert kept == 2
    np.testing.assert_array_equal(keep, [True, True, False, True, True, True])
    np.testing.assert_array_equal(new, [0, 0, 1, 1, 1])
    charge = np.zeros((10, 10))
    charge[1, 1], charge[5, 5], charge[5, 6] = 10.0, 3.5, 5.0
    all_clusters = find_clusters(electron_image({"L": charge.copy()}), spr_threshold=[1.0, 3, 6])
    seeded = find_clusters(electron_image({"L": charge.copy()}), spr_threshold=[1.0, 3, 6], only_cls_seed=True)
    assert ak.to_list(all_clusters.has_seed) == [True, False]
    assert len(seeded) == 1 and seeded.Energy[0] == pytest.approx(10 * E2EV / 1000)


# --- quantities ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mirrored", [False, True])
def test_cluster_quantities_against_hand_computed_values(mirrored):
    charge = np.zeros((6, 6))
    charge[1, 1], charge[1, 2], charge[2, 2], charge[2, 3] = 10, 20, 30, 40  # cluster A
    charge[4, 4] = 5  # cluster B: no seed
    charge[4, 0] = 30  # cluster C
    if mirrored:  # the same file image, read by a mirrored amplifier at file columns 6..11
        geometry = AmplifierGeometry("U", 6, 6, mirrored=True, col_offset=6)
        image = electron_image({"U": charge[:, ::-1].copy()}, {"U": geometry})
    else:
        image = electron_image({"L": charge})
    clusters = find_clusters(image, spr_threshold=[1.0, 3, 25])
    shift = 6 if mirrored else 0
    a = clusters[clusters.Npix == 4][0]
    kev = E2EV / 1000
    assert ak.to_list(a.pixels_x) == [2 + shift, 3 + shift, 3 + shift, 4 + shift]  # row-major in the file
    assert ak.to_list(a.pixels_y) == [2, 2, 3, 3]
    assert ak.to_list(a.pixels_E) == pytest.approx([10 * kev, 20 * kev, 30 * kev, 40 * kev])
    expected = {
        "Energy": 100 * kev,
        "PosX": 3.3 + shift,
        "PosY": 2.7,
        "meanX": 3 + shift,
        "minX": 2 + shift,
        "maxX": 4 + shift,
        "DX": 3,
        "DY": 2,
        "RMSX": np.mean(np.array([2, 3, 3, 4]) + shift) ** 2 + 0.5,  # mean square: mean^2 + variance
        "RMSY": (4 + 4 + 9 + 9) / 4,
        "STD_X": math.sqrt(0.5),
        "STD_Y": 0.5,
        "STD_XY": math.sqrt(0.75),
        "wSTD_X": math.sqrt(0.41),
        "wSTD_Y": math.sqrt(0.21),
        "dwSTD_X": math.sqrt(0.41 / 4),
        "wSTD_XY": math.sqrt((0.41 + 0.21) / 2),
        "Qmax": 40 * kev,
        "QmaxX": 4 + shift,
        "QmaxY": 3,
        "sigma_seed_eV": E2EV,
        "qmin_cluster_seed": 25 * kev,
        "seed_nsig_min": 10,
        "seed_nsig_max": 40,
        "seed_nsig_delta": 30,
        "closest_cls_dist": math.hypot(2.3, 2.3),
        "closest_cls_dist_X": 2.3,
        "closest_cls_dist_Y": 2.3,
    }
    for name, value in expected.items():
        assert a[name] == pytest.approx(value, abs=1e-12), name
    assert a.Npix == 4 and a.has_seed and not a.excluded
    c = clusters[np.isclose(ak.to_numpy(clusters.Energy), 30 * kev)][0]
    assert a.closest_cls_id == c.cluster_id and c.closest_cls_id == a.cluster_id
    b = clusters[ak.to_numpy(clusters.Qmax) < 10 * kev][0]
    assert not b.has_seed and b.excluded and b.closest_cls_dist == -1 and b.closest_cls_id == -1


def test_closest_cluster_does_not_skip_clusters_sharing_a_coordinate():
    """pysimdamicm excluded every cluster with the same PosX or PosY as the cluster itself."""
    charge = np.zeros((20, 20))
    charge[5, 5] = charge[5, 9] = charge[15, 5] = 10.0
    clusters = find_clusters(electron_image({"L": charge}), spr_threshold=[1.0, 3, 4])
    assert ak.to_list(clusters.closest_cls_dist) == [4.0, 4.0, 10.0]
    assert ak.to_list(clusters.closest_cls_id) == [2, 1, 1]


def test_pixel_values_of_the_earlier_stages_and_identification():
    image, _ = make_raw_image(nrows=30, ncols=40, nskips=4, deposits=[(10, 12, 200.0)], dark_current=0.0, seed=2)
    image.meta.update(ccd=3, image=17, readout_end="2024-01-02T03:04:05")
    clusters = reconstruct(image)
    big = clusters[clusters.Energy > 100 * E2EV / 1000]
    assert len(big) == 1 and big.Npix[0] == 1
    assert big.ccd[0] == 3 and big.nfile[0] == 17
    assert big.readout_end[0] == pytest.approx(1704164645.0) and math.isnan(big.readout_start[0])
    assert big.Energy_PS[0] == pytest.approx(200 * GAIN, rel=0.01)
    assert big.Energy_AVG[0] - big.Energy_PS[0] == pytest.approx(1000 + 0.5 * 10, abs=2)  # the row's pedestal
    assert set(clusters.fields) >= {"pixels_E_AVG", "pixels_E_PS"}


# --- threshold semantics --------------------------------------------------------------------------------
def calibrated_amplifier(noise_adu=2.0, gain=8.0, sigma_row=None):
    image = electron_image({"L": np.zeros((5, 5))})
    amp = image["L"]
    amp.record("PedestalSubtractionProcess", noise_adu=noise_adu, sigma_row=np.asarray(sigma_row or [noise_adu]))
    amp.record("CalibrationProcess", gain_adu_per_e=gain)
    return image, amp


@pytest.mark.parametrize("in_electrons", [True, False])
def test_sigma_null_is_the_pedestal_noise_over_the_gain(in_electrons):
    image, amp = calibrated_amplifier(noise_adu=2.0, gain=8.0)
    t = resolve_threshold([None, 3, 4], image=image, amplifier=amp, in_electrons=in_electrons)
    assert t.sigma_e == pytest.approx(0.25) and t.source == "pedestal"
    unit = 1.0 if in_electrons else 8.0
    assert (t.q_cut, t.q_seed) == pytest.approx((0.75 * unit, 1.0 * unit))
    assert (t.q_cut_e, t.q_seed_e) == pytest.approx((0.75, 1.0))


def test_sigma_null_median_of_the_pedestal_sigmas():
    image, amp = calibrated_amplifier(noise_adu=3.0, gain=1.0, sigma_row=[1.0, 2.0, 6.0])
    assert resolve_threshold([None, 1, 1], image=image, amplifier=amp, in_electrons=True).sigma_e == 3.0
    median = resolve_threshold([None, 1, 1], image=image, amplifier=amp, in_electrons=True, sigma_mean=False)
    assert median.sigma_e == 2.0


def test_sigma_as_a_number_and_as_a_header_keyword():
    image, amp = calibrated_amplifier(gain=5.0)
    number = resolve_threshold([0.2, 3, 5], image=image, amplifier=amp, in_electrons=False)
    assert number.sigma_e == 0.2 and number.q_cut == pytest.approx(3.0) and number.q_seed_e == pytest.approx(1.0)
    image.header["RDNOISE"] = 1.5  # ADU
    header = resolve_threshold(["RDNOISE", 2, 4], image=image, amplifier=amp, in_electrons=True)
    assert header.sigma_e == pytest.approx(0.3) and header.q_cut == pytest.approx(0.6)
    assert header.source == "header:RDNOISE"
    amp.header["RDNOISE"] = 3.0  # the amplifier's own card wins
    assert resolve_threshold(["RDNOISE", 2, 4], image=image, amplifier=amp, in_electrons=True).sigma_e == 0.6
    plain = resolve_threshold(2.5, image=image, amplifier=amp, in_electrons=False)
    assert plain.q_cut == plain.q_seed == pytest.approx(12.5) and math.isnan(plain.sigma_e)
    none = resolve_threshold(None, image=image, amplifier=amp, in_electrons=True)
    assert none.q_cut == 0 and none.candidates(np.array([0.0, 1e-9])).tolist() == [False, True]


def test_threshold_edges_are_inclusive():
    charge = np.zeros((8, 8))
    charge[1, 1], charge[4, 4], charge[6, 1] = 3.0, 2.999, 6.0
    clusters = find_clusters(electron_image({"L": charge}), spr_threshold=[1.0, 3, 6])
    assert ak.to_list(clusters.Qmax) == pytest.approx([3 * E2EV / 1000, 6 * E2EV / 1000])
    assert ak.to_list(clusters.has_seed) == [False, True]


def test_missing_inputs_of_the_threshold_are_clear_errors():
    image = electron_image({"L": np.zeros((5, 5))})
    amp = image["L"]
    with pytest.raises(DataError, match="PedestalSubtractionProcess did not run"):
        resolve_threshold([None, 3, 4], image=image, amplifier=amp, in_electrons=True)
    amp.record("PedestalSubtractionProcess", noise_adu=2.0)
    with pytest.raises(DataError, match="CalibrationProcess did not run"):
        resolve_threshold([None, 3, 4], image=image, amplifier=amp, in_electrons=True)
    with pytest.raises(DataError, match="CalibrationProcess did not run"):
        resolve_threshold([0.2, 3, 4], image=image, amplifier=amp, in_electrons=False)
    amp.record("CalibrationProcess", gain_adu_per_e=10.0)
    with pytest.raises(DataError, match="header keyword 'NOISE'"):
        resolve_threshold(["NOISE", 3, 4], image=image, amplifier=amp, in_electrons=True)
    image.header["NOISE"] = "n/a"
    with pytest.raises(DataError, match="not a number"):
        resolve_threshold(["NOISE", 3, 4], image=image, amplifier=amp, in_electrons=True)
    with pytest.raises(DataError, match="image 'nothing' is not available"):
        find_clusters(image, spr_image="nothing")


@pytest.mark.parametrize(
    "value",
    [[0, 3, 4], [None, -1, 4], [None, 3], "abc", [None, "3", 4], [True, 3, 4], -1.0, {"L": [None, 3]}],
)
def test_invalid_thresholds_are_rejected(value):
    with pytest.raises(ConfigError, match="spr_threshold"):
        ClusterFinder(spr_threshold=value)


def test_per_amplifier_thresholds_with_aliases_and_null():
    finder = ClusterFinder(spr_threshold={"EXT1": [None, 3, 5], "U": None, "L": 2.0})
    assert finder.value_for("spr_threshold", ("A", "EXT1")) == [None, 3.0, 5.0]
    assert finder.value_for("spr_threshold", "U") is None
    assert finder.value_for("spr_threshold", "L") == 2.0
    image = electron_image({"X": np.zeros((4, 4))})
    with pytest.raises(ConfigError, match="no value for amplifier 'X'"):
        finder.run(image, context())


def test_skip_rows_and_columns_are_file_coordinates():
    charge = np.zeros((8, 8))
    charge[2, 1] = charge[5, 6] = 10.0
    geometry = AmplifierGeometry("U", 8, 8, mirrored=True, col_offset=8)
    image = electron_image({"U": charge[:, ::-1].copy()}, {"U": geometry})
    clusters = find_clusters(image, spr_threshold=[1.0, 3, 4], skip_cols={"U": [8 + 1]})
    assert ak.to_list(clusters.PosX) == [8 + 6 + 1]
    clusters = find_clusters(image, spr_threshold=[1.0, 3, 4], skip_rows=[[4, 7]])
    assert ak.to_list(clusters.PosX) == [8 + 1 + 1]


def test_only_the_active_region_is_clustered():
    charge = np.full((6, 10), 10.0)
    geometry = AmplifierGeometry("L", 6, 10, prescan_cols=2, overscan_cols=3, prescan_rows=1)
    clusters = find_clusters(electron_image({"L": charge}, {"L": geometry}), spr_threshold=[1.0, 3, 4])
    assert len(clusters) == 1 and clusters.Npix[0] == 5 * 5
    assert (clusters.minX[0], clusters.maxX[0], clusters.minY[0]) == (3, 7, 2)


def test_hot_regions_before_or_after_the_finder_agree():
    charge = np.zeros((10, 10))
    charge[2, 2] = charge[6, 7] = charge[8, 1] = 10.0
    charge[6, 8] = 2.0  # below the seed cut
    cuts = ApplySelectionCuts(cols=[[7, 7]], rows=[8])
    before = electron_image({"L": charge.copy()})
    Pipeline([cuts, ClusterFinder(spr_threshold=[0.5, 3, 8])]).run(before, context())
    after = electron_image({"L": charge.copy()})
    Pipeline([ClusterFinder(spr_threshold=[0.5, 3, 8]), cuts]).run(after, context())
    for image in (before, after):
        clusters = image.results["ClusterFinder"]["clusters"]
        assert ak.to_list(clusters.hotreg) == [False, True, True]
        assert ak.to_list(clusters.excluded) == [False, True, True]
        assert image["L"].results["ApplySelectionCuts"]["n_hot_columns"] == 1


def test_records_and_empty_images():
    image = electron_image({"L": np.zeros((5, 5)), "U": np.zeros((5, 5))})
    clusters = find_clusters(image, spr_threshold=[0.1, 3, 4])
    assert len(clusters) == 0 and "pixels_E" in clusters.fields
    assert str(clusters.type.content.contents[clusters.fields.index("pixels_x")]) == "var * int32"
    assert image.results["ClusterFinder"]["n_clusters"] == 0
    assert image.results["ClusterFinder"]["amplifiers"] == ["L", "U"]
    record = image["U"].results["ClusterFinder"]
    assert record["n_clusters"] == 0 and record["sigma_e"] == 0.1 and record["q_cut"] == pytest.approx(0.3)


def test_moskita_mode_is_rejected():
    with pytest.raises(ConfigError, match="MOSKITA"):
        ClusterFinder.from_mapping({"ismoskita": [True, "noise.csv"]})


# --- pysimdamicm configurations ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "panaSKImg_configuration.json",
        "img_5.json",
        "moduletest_lowtemp_image_8.json",
        "panaSKImg_config_ACM_ex.json",
        "panaSKImg_config_LBC_ex.json",
        "panaSKImg_config_LBC_science_recon.json",
        "panaSKImg_config_CCDTesting.json",
    ],
)
def test_pysimdamicm_sections_load(configs, name):
    sections = json.loads((configs / name).read_text())["process"]
    finder = ClusterFinder.from_mapping(sections["ClusterFinder"])
    BuildClusterMask.from_mapping(sections["BuildClusterMask"])
    ApplySelectionCuts.from_mapping(sections["ApplySelectionCuts"])
    if name == "panaSKImg_configuration.json":
        assert finder.value_for("spr_threshold", "U") == [0.21, 3.0, 4.0]
        assert finder.method == 0 and finder.max_nearest_neighbor == 1
        assert "spr_mask" in finder.ignored
        mask = BuildClusterMask.from_mapping(sections["BuildClusterMask"])
        assert (mask.N_col_post, mask.N_row_post, mask.cluster_E_min) == (20, 50, 550.0)
    if name == "img_5.json":
        assert finder.value_for("spr_threshold", ("CCD1", "EXT3")) == [None, 3.0, 5.0]
        assert finder.only_cls_seed and finder.max_nearest_neighbor == 2


def test_adu_image_gives_the_same_clusters():
    rng = np.random.default_rng(4)
    deposits, _ = cluster_deposits(rng, [[12.2, 20.7], [30.5, 30.1]], [800, 300], 1.0)
    image, _ = make_raw_image(nrows=45, ncols=50, nskips=NSKIPS, gain=GAIN, noise=NOISE, deposits=deposits, seed=9)
    in_e = reconstruct(image)
    in_adu = find_clusters(image, spr_image="mean_compressed_pedestal_subtracted")
    assert image["L"].results["ClusterFinder"]["q_cut"] == pytest.approx(3 * GAIN * in_e.sigma_seed_eV[0] / E2EV)
    for name in ("Energy", "PosX", "PosY", "Npix", "has_seed"):
        np.testing.assert_allclose(ak.to_numpy(in_adu[name]), ak.to_numpy(in_e[name]), rtol=1e-9)


def test_real_damicm_image(configs):
    """pysimdamicm finds 120-150 clusters per extension of this image with [null, 15, 50] (PROVENANCE.md)."""
    from waders.core import load_config
    from waders.io import read_image

    config = load_config(configs / "img_5.json", kind="analysis")
    image = read_image(data_path(DAMICM_IMAGE), config.input)
    steps = [config.configured[name] for name in ("PedestalSubtractionProcess", "CalibrationProcess")]
    finder = config.configured["ClusterFinder"].replace(spr_threshold=[None, 15, 50])
    Pipeline([*steps, finder]).run(image, RunContext(seed=1, detector=config.detector))
    counts = [amp.results["ClusterFinder"]["n_clusters"] for amp in image.amplifiers.values()]
    assert all(100 <= n <= 200 for n in counts), counts
    clusters = image.results["ClusterFinder"]["clusters"]
    assert ak.all(clusters.has_seed) and len(clusters) == sum(counts)  # img_5.json keeps seeded clusters only
