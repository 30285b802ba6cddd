from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from waders.ana.clusters import ApplySelectionCuts, BuildClusterMask, ClusterFinder, box_mask
from waders.ana.clusters.mask import to_readout_columns
from waders.core import Detector, Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry

E2EV = 3.74
PS_E = "mean_compressed_pedestal_subtracted_e"
NROWS, NCOLS = 30, 40


def context() -> RunContext:
    return RunContext(seed=1, detector=Detector.for_domain("ana"))


def geometries(amplifiers):
    common = {"prescan_cols": 3, "overscan_cols": 5, "prescan_rows": 1}
    out = {"L": AmplifierGeometry("L", NROWS, NCOLS, **common)}
    if "U" in amplifiers:
        out["U"] = AmplifierGeometry("U", NROWS, NCOLS, mirrored=True, col_offset=NCOLS, **common)
    return out


def random_image(amplifiers, seed):
    """Sparse charges (e-) with many small clusters of 5 to a few hundred e-."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in amplifiers:
        hit = rng.random((NROWS, NCOLS)) < 0.05
        arrays[name] = np.where(hit, rng.exponential(60.0, (NROWS, NCOLS)), 0.0)
    return SkipperImage.from_arrays(arrays, geometries=geometries(amplifiers), product=PS_E)


def run(image, *processes):
    Pipeline([ClusterFinder(spr_threshold=[1.0, 3, 8]), *processes]).run(image, context())
    return image.results["ClusterFinder"]["clusters"]


def expand(items):
    """Indices of a list of indices and closed [a, b] ranges."""
    return [i for item in items for i in (range(item[0], item[1] + 1) if isinstance(item, list) else [item])]


def reference_masks(image, clusters, p):
    """pysimdamicm's BuildClusterMask, pixel by pixel, in file coordinates (U: pre/post swapped)."""
    below_on, below = p.get("mask_below_threshold", [False, 0.0])
    out = {}
    for index, amp in enumerate(image.amplifiers.values()):
        g = amp.geometry
        usable = g.to_file_layout(~g.mask("active")).copy()
        ids = np.zeros(g.shape)
        for cl in ak.to_list(clusters):
            energy = cl["Energy"] * 1000  # eV
            if cl["amplifier"] != index or not cl["has_seed"] or cl["Npix"] < p.get("cluster_size_min", 2):
                continue
            if energy <= p.get("cluster_E_min", 0.0) * E2EV and not (below_on and energy <= below * E2EV):
                continue
            if cl["DX"] < p.get("cluster_DX_min", 1) or cl["DY"] < p.get("cluster_DY_min", 1):
                continue
            big = energy > p.get("cluster_box_E_min", 100.0) * E2EV
            sizes = [p.get(k, 5) if big else 1 for k in ("N_row_pre", "N_row_post", "N_col_pre", "N_col_post")]
            row_pre, row_post, col_pre, col_post = sizes
            if g.mirrored:
                col_pre, col_post = col_post, col_pre
            for x, y, e in zip(cl["pixels_x"], cl["pixels_y"], cl["pixels_E"], strict=True):
                r, c = y - 1, x - 1 - g.col_offset
                if big and p.get("mask_cluster_column"):
                    post = p.get("N_col_post", 5)
                    lo, hi = (c - post, c) if g.mirrored else (c, c + post)
                    usable[:, max(0, lo) : min(hi, NCOLS - 1) + 1] = False
                elif big and p.get("mask_cluster_row"):
                    usable[r, :] = False
                else:
                    usable[max(0, r - row_pre) : min(r + row_post, NROWS - 1) + 1,
                           max(0, c - col_pre) : min(c + col_post, NCOLS - 1) + 1] = False  # fmt: skip
                q = e * 1000 / E2EV
                threshold = p.get("qmax_threshold", 0.5)
                if (q > threshold) if threshold > 1 else (e / cl["Qmax"] > threshold):
                    ids[r, c] = cl["cluster_id"] * 1e10 + q
        only = ~usable
        full = only.copy()
        for row in expand(p.get("hot_rows", {}).get(amp.name, [])):
            full[row, :] = True
        for col in expand(p.get("hot_cols", {}).get(amp.name, [])):
            full[:, col - g.col_offset] = True
        out[amp.name] = tuple(g.to_file_layout(a) for a in (only, full, ids))  # back to readout order
    return out


def test_box_mask_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        shape = tuple(rng.integers(1, 25, 2))
        n = rng.integers(0, 12)
        rows, cols = rng.integers(-3, shape[0] + 3, n), rng.integers(-3, shape[1] + 3, n)
        sizes = [rng.integers(0, 6, n) for _ in range(4)]
        expected = np.zeros(shape, dtype=bool)
        for r, c, a, b, d, e in zip(rows, cols, *sizes, strict=True):
            r0, r1, c0, c1 = max(0, r - a), min(r + b, shape[0] - 1), max(0, c - d), min(c + e, shape[1] - 1)
            if r0 <= r1 and c0 <= c1:
                expected[r0 : r1 + 1, c0 : c1 + 1] = True
        np.testing.assert_array_equal(box_mask(shape, rows, cols, *sizes), expected)


PARAMETER_SETS = [
    {},
    {"N_col_pre": 2, "N_col_post": 7, "N_row_pre": 1, "N_row_post": 4, "cluster_size_min": 3, "cluster_E_min": 30.0},
    {"cluster_box_E_min": 50.0, "cluster_DX_min": 2, "cluster_DY_min": 1, "hot_rows": {"L": [3, [10, 12]], "U": [0]}},
    {"mask_cluster_column": True, "N_col_post": 3, "cluster_box_E_min": 150.0,
     "hot_cols": {"L": [5], "U": [NCOLS + 2]}},
    {"mask_cluster_row": True, "cluster_box_E_min": 120.0, "cluster_size_min": 1, "mask_below_threshold": [True, 25.0],
     "cluster_E_min": 80.0},
    {"add_cluster_id": True, "qmax_threshold": 0.3, "cluster_size_min": 1},
    {"add_cluster_id": True, "qmax_threshold": 40.0, "N_row_pre": 0, "N_col_pre": 0},
]  # fmt: skip


@pytest.mark.parametrize("params", PARAMETER_SETS)
@pytest.mark.parametrize("amplifiers", [("L",), ("L", "U")])
def test_cluster_masks_equal_the_pysimdamicm_reference(params, amplifiers):
    for seed in range(3):
        image = random_image(amplifiers, seed)
        config = {**params}
        hot = {k: config.pop(k) for k in ("hot_rows", "hot_cols") if k in config}
        clusters = run(image, BuildClusterMask(**config, **hot))
        assert ak.sum(clusters.has_seed) > 10
        expected = reference_masks(image, clusters, params)
        for name in amplifiers:
            only, full, ids = expected[name]
            np.testing.assert_array_equal(image[name].get("mask_clusters_only"), only)
            np.testing.assert_array_equal(image[name].get("mask_clusters"), full)
            if params.get("add_cluster_id"):
                np.testing.assert_allclose(image[name].get("mask_clusters_ids"), ids, rtol=1e-15)
            else:
                assert not image[name].has("mask_clusters_ids")


def test_post_side_trails_along_the_readout_direction():
    """L reads towards larger file columns, the mirrored U towards smaller ones."""
    arrays = {name: np.zeros((NROWS, NCOLS)) for name in ("L", "U")}
    arrays["L"][10, 20] = arrays["U"][10, 20] = 500.0  # same readout position
    image = SkipperImage.from_arrays(arrays, geometries=geometries(("L", "U")), product=PS_E)
    run(image, BuildClusterMask(N_col_pre=1, N_col_post=4, N_row_pre=2, N_row_post=3, cluster_size_min=1))
    for name, first, last in (("L", 19, 24), ("U", NCOLS + 15, NCOLS + 20)):
        g = image[name].geometry
        near = image[name].get("mask_clusters_only") & ~g.mask("active")
        rows, cols = np.nonzero(near)
        file_cols = g.to_file_columns(cols)
        assert (rows.min(), rows.max()) == (8, 13)
        assert (file_cols.min(), file_cols.max()) == (first, last)
        np.testing.assert_array_equal(to_readout_columns(g, file_cols), cols)
    clusters = image.results["ClusterFinder"]["clusters"]
    assert ak.to_list(clusters.PosX) == [21.0, 2 * NCOLS - 20]


def test_circular_mask():
    image = random_image(("L", "U"), 4)
    radius = 2.5
    clusters = run(image, BuildClusterMask(circular_mask=True, radius=radius, cluster_size_min=1))
    for index, amp in enumerate(image.amplifiers.values()):
        chosen = clusters[(clusters.amplifier == index) & clusters.has_seed]
        g = amp.geometry
        expected = g.mask("active")
        rr, cc = np.indices(g.shape)
        for x, y in zip(ak.flatten(chosen.pixels_x), ak.flatten(chosen.pixels_y), strict=True):
            r, c = y - 1, to_readout_columns(g, x - 1)
            expected = expected | ((rr - r) ** 2 + (cc - c) ** 2 <= radius**2)
        np.testing.assert_array_equal(amp.get("mask_clusters_only"), expected)


def test_only_seeded_clusters_are_masked():
    charge = np.zeros((NROWS, NCOLS))
    charge[10, 10] = 5.0  # candidate (>= 3) without seed (< 8)
    charge[20, 30] = 9.0
    image = SkipperImage.from_arrays({"L": charge}, geometries=geometries(("L",)), product=PS_E)
    run(image, BuildClusterMask(cluster_size_min=1, N_col_pre=0, N_col_post=0, N_row_pre=0, N_row_post=0))
    mask = image["L"].get("mask_clusters_only")
    assert not mask[10, 10] and not mask[10, 11]
    assert mask[19:22, 29:32].all() and not mask[18, 30]  # small cluster: 1-pixel box on every side
    assert image["L"].results["BuildClusterMask"]["n_clusters_masked"] == 1


def test_mask_without_clusters_is_the_inactive_region_and_hot_lines():
    image = SkipperImage.from_arrays({"L": np.zeros((NROWS, NCOLS))}, geometries=geometries(("L",)), product=PS_E)
    run(image, BuildClusterMask(hot_rows=[[4, 5]], hot_cols={"L": [7]}))
    g = image["L"].geometry
    np.testing.assert_array_equal(image["L"].get("mask_clusters_only"), g.mask("active"))
    expected = g.mask("active")
    expected[4:6, :] = True
    expected[:, 7] = True
    np.testing.assert_array_equal(image["L"].get("mask_clusters"), expected)


def test_apply_selection_cuts_flags_in_readout_order():
    image = SkipperImage.from_arrays(
        {n: np.zeros((NROWS, NCOLS)) for n in ("L", "U")}, geometries=geometries(("L", "U")), product=PS_E
    )
    ApplySelectionCuts(cols=[1, [NCOLS + 1, NCOLS + 2]], rows={"L": [0], "U": [[2, 3]]}).run(image, context())
    left, right = (image[n].results["ApplySelectionCuts"] for n in ("L", "U"))
    assert np.flatnonzero(left["in_hot_columns"]).tolist() == [1]
    assert np.flatnonzero(right["in_hot_columns"]).tolist() == [NCOLS - 3, NCOLS - 2]  # mirrored
    assert np.flatnonzero(left["in_hot_rows"]).tolist() == [0]
    assert np.flatnonzero(right["in_hot_rows"]).tolist() == [2, 3]
    assert left["in_hot_columns"].shape == (NCOLS,) and left["in_hot_rows"].shape == (NROWS,)


def test_errors():
    image = SkipperImage.from_arrays({"L": np.zeros((5, 5))}, product=PS_E)
    with pytest.raises(DataError, match="run ClusterFinder before BuildClusterMask"):
        BuildClusterMask().run(image, context())
    with pytest.raises(ConfigError, match="mask_below_threshold"):
        BuildClusterMask(mask_below_threshold=[True])
    with pytest.raises(ConfigError, match="mask_below_threshold"):
        BuildClusterMask.from_mapping({"mask_below_threshold": "yes"})
    with pytest.raises(ConfigError, match="N_col_pre"):
        BuildClusterMask(N_col_pre=-1)
