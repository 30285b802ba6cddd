"""EvalCTIProcess and EvalHaloProcess: truth-based tests on calibrated images with injected tails and halos."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest

from waders.ana.clusters import ClusterFinder
from waders.ana.clusters.mask import to_readout_columns
from waders.ana.studies.cti import EvalCTIProcess, EvalHaloProcess, quadrant_staircase
from waders.core import Detector, Pipeline, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.geometry import AmplifierGeometry
from waders.io.synthetic import cluster_deposits

PS_E = "mean_compressed_pedestal_subtracted_e"
NOISE = 0.05  # e-: a 1-e pixel is in (0.75, 1.5) e- with probability 1 - 3e-7
THRESHOLD = [NOISE, 40, 60]  # candidates >= 2 e-, seeds >= 3 e-: single electrons are never clustered
QRANGE = (0.75, 1.5)


def context(**kwargs) -> RunContext:
    return RunContext(seed=1, detector=Detector.for_domain("ana"), **kwargs)


def geometries(names, nrows, ncols, prescan=0, overscan=0):
    return {
        name: AmplifierGeometry(
            name, nrows, ncols, prescan_cols=prescan, overscan_cols=overscan, mirrored=i == 1, col_offset=i * ncols
        )
        for i, name in enumerate(names)
    }


def image_of(arrays, prescan=0, overscan=0) -> SkipperImage:
    """Calibrated image (e-), arrays in readout order."""
    nrows, ncols = next(iter(arrays.values())).shape
    return SkipperImage.from_arrays(
        arrays, geometries=geometries(list(arrays), nrows, ncols, prescan, overscan), product=PS_E
    )


def find(image, *processes):
    Pipeline([ClusterFinder(spr_threshold=THRESHOLD), *processes]).run(image, context())
    return image.results["ClusterFinder"]["clusters"]


def cluster_pixels(image, cluster):
    """Readout (rows, cols) of one cluster record."""
    g = list(image.amplifiers.values())[cluster["amplifier"]].geometry
    rows = np.asarray(cluster["pixels_y"]) - 1
    return rows, to_readout_columns(g, np.asarray(cluster["pixels_x"]) - 1)


def clouds(rng, shape, spacing, margin, electrons=3000, sigma=0.5):
    """Compact Gaussian clouds on a grid; pixels below 2 e- are dropped so every cloud pixel is clustered."""
    centres = np.array([(r, c) for r in range(margin, shape[0] - margin, spacing)
                        for c in range(margin, shape[1] - margin, spacing)], dtype=float)  # fmt: skip
    centres += rng.uniform(-0.5, 0.5, centres.shape)
    _, truth = cluster_deposits(rng, centres, electrons, sigma, shape=shape)
    charge = truth.image(shape)
    return np.where(charge >= 2, charge, 0.0)


# --- brute-force references (explicit pixel sets, loops over clusters) ------------------------
def _indicators(amp, qrange=QRANGE):
    q = amp.get(PS_E)
    valid = ~amp.geometry.mask("active") & np.isfinite(q)
    return valid & (q > qrange[0]) & (q < qrange[1]), valid


def reference_cti(image, clusters, vd, hd, cumulative):
    """Per cluster (hits, valid) of the vertical and horizontal windows, pixel by pixel."""
    amps = list(image.amplifiers.values())
    maps = [_indicators(a) for a in amps]
    out = {key: np.zeros((len(clusters), len(d))) for key, d in (("vh", vd), ("vv", vd), ("hh", hd), ("hv", hd))}
    for i, cl in enumerate(ak.to_list(clusters)):
        hit, valid = maps[cl["amplifier"]]
        rows, cols = cluster_pixels(image, cl)
        for k, d in enumerate(vd):
            first = 1 if cumulative else d - (vd[1] - vd[0] if len(vd) > 1 else vd[0]) + 1
            for c in np.unique(cols):
                top = rows[cols == c].max()
                r = np.arange(top + first, top + d + 1)
                r = r[r < hit.shape[0]]
                out["vh"][i, k] += hit[r, c].sum()
                out["vv"][i, k] += valid[r, c].sum()
        for k, d in enumerate(hd):
            first = 1 if cumulative else d - (hd[1] - hd[0] if len(hd) > 1 else hd[0]) + 1
            for r in np.unique(rows):
                last = cols[rows == r].max()
                c = np.arange(last + first, last + d + 1)
                c = c[c < hit.shape[1]]
                out["hh"][i, k] += hit[r, c].sum()
                out["hv"][i, k] += valid[r, c].sum()
    return out


def reference_halo(image, clusters, radii, cumulative, maps=None):
    """Per seeded cluster (hits, valid) of strips below/before the cluster and the quarter disc (annulus)."""
    amps = list(image.amplifiers.values())
    maps = maps or [_indicators(a) for a in amps]
    step = radii[1] - radii[0] if len(radii) > 1 else radii[0]
    hits = np.zeros((len(clusters), len(radii)))
    valids = np.zeros_like(hits)
    for i, cl in enumerate(ak.to_list(clusters)):
        if not cl["has_seed"]:
            continue
        hit, valid = maps[cl["amplifier"]]
        rows, cols = cluster_pixels(image, cl)
        r0, c0 = rows.min(), cols.min()
        for k, d in enumerate(radii):
            near = 1 if cumulative else d - step + 1
            pix = []
            for c in np.unique(cols):
                low = rows[cols == c].min()
                pix += [(r, c) for r in range(low - d, low - near + 1) if r >= 0]
            for r in np.unique(rows):
                first = cols[rows == r].min()
                pix += [(r, c) for c in range(first - d, first - near + 1) if c >= 0]
            dy, dx = np.mgrid[1 : d + 1, 1 : d + 1]
            rho2 = dx**2 + dy**2
            inside = (rho2 <= d * d) & (cumulative or (rho2 > (d - step) ** 2))
            qr, qc = r0 - dy[inside], c0 - dx[inside]
            ok = (qr >= 0) & (qc >= 0)
            pix += list(zip(qr[ok], qc[ok], strict=True))
            if pix:
                rr, cc = np.array(pix).T
                hits[i, k] = hit[rr, cc].sum()
                valids[i, k] = valid[rr, cc].sum()
    return hits, valids


def rate(hits, valid):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid > 0, hits / np.maximum(valid, 1), np.nan)


# --- random images for the exact comparisons ------------------------------------------------------
def busy_image(names, seed, shape=(60, 70)):
    """Clouds, isolated charges and a 2 % single-electron background, with prescan and overscan."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in names:
        q = clouds(rng, shape, 17, 6, electrons=rng.integers(200, 2000), sigma=0.8)
        q += rng.random(shape) < 0.02
        q += np.where(rng.random(shape) < 0.01, rng.integers(2, 9, shape), 0)
        arrays[name] = q + rng.normal(0.0, NOISE, shape)
    return image_of(arrays, prescan=3, overscan=6)


@pytest.mark.parametrize("names", [("L",), ("L", "U")])
@pytest.mark.parametrize("cumulative", [True, False])
def test_rates_equal_the_pixel_by_pixel_reference(names, cumulative):
    image = busy_image(names, seed=len(names) + 7 * cumulative)
    vcti, hcti, radius = [13, 4], [10, 3], [12, 4]
    clusters = find(
        image,
        EvalCTIProcess(VCTI=vcti, HCTI=hcti, cumulative=cumulative),
        EvalHaloProcess(radius=radius, cumulative=cumulative),
    )
    assert len(clusters) > 20 and 0 < ak.sum(clusters.has_seed) < len(clusters)
    vd, hd, radii = np.arange(4, 13, 4), np.arange(3, 10, 3), np.arange(4, 12, 4)
    ref = reference_cti(image, clusters, vd, hd, cumulative)
    np.testing.assert_array_equal(ak.to_numpy(clusters.vcti_pix), np.broadcast_to(vd, (len(clusters), vd.size)))
    np.testing.assert_array_equal(ak.to_numpy(clusters.hcti_pix)[0], hd)
    np.testing.assert_allclose(ak.to_numpy(clusters.vcti_rate), rate(ref["vh"], ref["vv"]), rtol=1e-12)
    np.testing.assert_allclose(ak.to_numpy(clusters.hcti_rate), rate(ref["hh"], ref["hv"]), rtol=1e-12)
    hits, valid = reference_halo(image, clusters, radii, cumulative)
    expected = rate(hits, valid)
    expected[~ak.to_numpy(clusters.has_seed)] = np.nan
    np.testing.assert_allclose(ak.to_numpy(clusters.halo_rate), expected, rtol=1e-12)
    np.testing.assert_array_equal(ak.to_numpy(clusters.halo_pix)[0], radii)
    # summaries: pooled over clusters (all clusters for CTI, seeded ones for the halo)
    cti, halo = image.results["EvalCTIProcess"], image.results["EvalHaloProcess"]
    np.testing.assert_allclose(cti["vcti_rate"], ref["vh"].sum(0) / ref["vv"].sum(0), rtol=1e-12)
    np.testing.assert_array_equal(cti["hcti_pixels"], ref["hv"].sum(0))
    seeded = ak.to_numpy(clusters.has_seed)
    np.testing.assert_allclose(halo["halo_rate"], hits[seeded].sum(0) / valid[seeded].sum(0), rtol=1e-12)
    assert cti["n_clusters"] == len(clusters) and halo["n_clusters"] == seeded.sum()
    for name, amp in image.amplifiers.items():
        mine = ak.to_numpy(clusters.amplifier) == list(image.amplifiers).index(name)
        per_amp = amp.results["EvalCTIProcess"]
        np.testing.assert_array_equal(per_amp["vcti_hits"], ref["vh"][mine].sum(0))
        hit, valid_map = _indicators(amp)
        assert per_amp["background_rate"] == pytest.approx(hit.sum() / valid_map.sum(), rel=1e-12)


def test_quadrant_staircase_lists_every_offset_of_the_quarter_disc():
    radii = np.array([1, 4, 7, 10])
    dy, width, bounds = quadrant_staircase(radii)
    for k, r in enumerate(radii):
        rows = slice(bounds[k], bounds[k + 1])
        n_pixels = sum(1 for y in range(1, r + 1) for x in range(1, r + 1) if x * x + y * y <= r * r)
        assert width[rows].sum() == n_pixels
        assert np.all(width[rows] ** 2 + dy[rows] ** 2 <= r * r)
        assert np.all((width[rows] + 1) ** 2 + dy[rows] ** 2 > r * r)


# --- truth: injected charge-transfer tails ------------------------------------------------------------
P_V = 0.30 * np.exp(-np.arange(30) / 6.0)  # probability of a deferred electron k = 1, 2, ... rows behind
P_H = 0.20 * np.exp(-np.arange(30) / 4.0)  # ... k readout columns behind
BACKGROUND = 0.003  # flat single-electron probability per pixel


def test_injected_tails_are_recovered():
    """L has vertical tails, U horizontal tails (in its readout direction), both a flat background.

    Deferred electrons are drawn behind the clusters found on the deposit-only image, so the
    windows start exactly where the tails do.  Expected cumulative rate at distance d:
    (1/d) sum_{k<=d} P1(k) with P1 = p_k + b - 2 p_k b (exactly one electron).  Its statistical
    error is sqrt(sum P1 (1 - P1)) / pixels (binomial), about 3 % at d = 3; tolerance 4 sigma.
    """
    rng = np.random.default_rng(11)
    shape = (400, 400)
    base = {name: clouds(rng, shape, 50, 25) for name in ("L", "U")}
    found = find(image_of({k: v + rng.normal(0.0, NOISE, shape) for k, v in base.items()}))
    trail = {name: np.zeros(shape) for name in base}
    for cl in ak.to_list(found):
        name = "LU"[cl["amplifier"]]
        rows, cols = cluster_pixels(image_of(base), cl)
        lines, edges, probs, vertical = (cols, rows, P_V, True) if name == "L" else (rows, cols, P_H, False)
        for line in np.unique(lines):
            edge = edges[lines == line].max()
            k = np.arange(1, probs.size + 1)
            pos = edge + k
            keep = pos < shape[0]
            if vertical:
                trail[name][pos[keep], line] = probs[keep]
            else:
                trail[name][line, pos[keep]] = probs[keep]
    arrays = {}
    for name, q in base.items():
        electrons = (rng.random(shape) < trail[name]).astype(float) + (rng.random(shape) < BACKGROUND)
        arrays[name] = q + electrons + rng.normal(0.0, NOISE, shape)
    image = image_of(arrays)
    vcti = [31, 3]
    find(image, EvalCTIProcess(VCTI=vcti, HCTI=vcti, summary_q_min_e=1000.0))
    assert len(found) == 98  # (a deferred and a background electron in one pixel may add 2-e clusters)
    d = np.arange(3, 31, 3)
    k = np.arange(1, 31)
    p1 = {"L": P_V + BACKGROUND - 2 * P_V * BACKGROUND, "U": P_H + BACKGROUND - 2 * P_H * BACKGROUND}
    for name, prefix in (("L", "vcti"), ("U", "hcti")):
        res = image[name].results["EvalCTIProcess"]
        expected = np.array([p1[name][k <= dd].mean() for dd in d])
        sigma = np.sqrt(np.array([(p1[name] * (1 - p1[name]))[k <= dd].mean() for dd in d]) / res[f"{prefix}_pixels"])
        assert res["n_clusters"] == 49
        np.testing.assert_array_less(np.abs(res[f"{prefix}_rate"] - expected), 4 * sigma)
        # the other direction sees (almost) only the background: far from the tail rates
        other = res["hcti_rate" if prefix == "vcti" else "vcti_rate"]
        assert other[-1] < 0.3 * expected[-1]
        assert res["background_rate"] == pytest.approx(BACKGROUND + trail[name].sum() / trail[name].size, rel=0.1)


def test_non_cumulative_windows_follow_the_tail_shape():
    """Windows of one step: rate(d) = mean of P1 over k = d-step+1..d; far away only the background."""
    rng = np.random.default_rng(5)
    shape = (300, 300)
    q = clouds(rng, shape, 60, 20)
    found = find(image_of({"L": q + rng.normal(0.0, NOISE, shape)}))
    prob = np.full(shape, BACKGROUND)
    for cl in ak.to_list(found):
        rows, cols = cluster_pixels(image_of({"L": q}), cl)
        for c in np.unique(cols):
            top = rows[cols == c].max()
            prob[top + 1 : top + 31, c] = P_V[: shape[0] - top - 1] + BACKGROUND - 2 * P_V[: shape[0] - top - 1] * 0.003
    image = image_of({"L": q + (rng.random(shape) < prob) + rng.normal(0.0, NOISE, shape)})
    find(image, EvalCTIProcess(VCTI=[46, 5], HCTI=[11, 5], cumulative=False))
    res = image.results["EvalCTIProcess"]
    k = np.arange(1, 46)
    p1 = np.concatenate([P_V + BACKGROUND - 2 * P_V * BACKGROUND, np.full(15, BACKGROUND)])
    expected = np.array([p1[(k > d - 5) & (k <= d)].mean() for d in res["vcti_distance_px"]])
    sigma = np.sqrt(expected * (1 - expected) / res["vcti_pixels"])
    np.testing.assert_array_less(np.abs(res["vcti_rate"] - expected), 4 * sigma + 1e-3)
    assert res["vcti_rate"][0] > 10 * res["vcti_rate"][-1]


# --- truth: injected halo -------------------------------------------------------------------------------
def test_injected_halo_is_recovered():
    """Halo: probability 4 % within 15 pixels (Chebyshev) of the cluster box, 0.3 % elsewhere.

    Every window at distance <= 15 lies in the halo zone (rate 0.04); windows of one step at
    distances 26..35 lie outside it (rate 0.003).  Errors are binomial; tolerance 4 sigma.
    """
    rng = np.random.default_rng(3)
    shape = (480, 480)
    q = clouds(rng, shape, 80, 40)
    found = find(image_of({"L": q + rng.normal(0.0, NOISE, shape)}))
    prob = np.full(shape, BACKGROUND)
    for cl in ak.to_list(found):
        rows, cols = cluster_pixels(image_of({"L": q}), cl)
        prob[max(rows.min() - 15, 0) : rows.max() + 16, max(cols.min() - 15, 0) : cols.max() + 16] = 0.04
    charge = q + np.where(q > 0, 0.0, rng.random(shape) < prob) + rng.normal(0.0, NOISE, shape)
    for cumulative, distances, value in ((True, [5, 10, 15], 0.04), (False, [30, 35], BACKGROUND)):
        image = image_of({"L": charge})
        clusters = find(image, EvalHaloProcess(radius=[40, 5], cumulative=cumulative))
        assert len(clusters) == 25 and ak.all(clusters.has_seed)
        res = image["L"].results["EvalHaloProcess"]
        pick = np.isin(res["halo_radius_px"], distances)
        sigma = np.sqrt(value * (1 - value) / res["halo_pixels"][pick])
        np.testing.assert_array_less(np.abs(res["halo_rate"][pick] - value), 4 * sigma)
        assert res["background_rate"] < 0.04


# --- edges, masks and windows --------------------------------------------------------------------------
def test_windows_are_clipped_to_the_active_region_and_normalised_by_the_pixels_inside():
    nrows, ncols, overscan = 20, 30, 5  # active columns 0..24
    q = np.zeros((nrows, ncols))
    q[16:19, 10:13] = 50.0  # top row 18: one row (19) above it in the image
    q[19, 10:12] = 1.0  # 2 of the 3 pixels above are single electrons
    q[5:8, 22:25] = 50.0  # last active column 24: no active column behind it
    q[5:8, 25:] = 1.0  # single electrons in the overscan are not counted
    q[19, 0:3] = 50.0  # in the last row: nothing above it
    q[0, 27] = 9.0  # overscan pixels are never clustered
    image = image_of({"L": q}, overscan=overscan)
    clusters = find(image, EvalCTIProcess(VCTI=[10, 3], HCTI=[10, 3]), EvalHaloProcess(radius=[7, 3]))
    assert len(clusters) == 3
    order = np.argsort(ak.to_numpy(clusters.minY))
    middle, low, top = (clusters[int(i)] for i in order)
    np.testing.assert_allclose(ak.to_numpy(low.vcti_rate), [2 / 3] * 3)
    assert np.all(np.isnan(ak.to_numpy(middle.hcti_rate)))  # behind the last active column: only overscan
    assert np.all(np.isnan(ak.to_numpy(top.vcti_rate)))
    # halo of the cluster at the first column: only the strips below it (rows 12..18, 3 columns)
    np.testing.assert_allclose(ak.to_numpy(top.halo_rate), [0.0, 0.0])
    res = image["L"].results["EvalCTIProcess"]
    assert res["vcti_pixels"].tolist() == [3 + 3 * 3, 3 + 3 * 6, 3 + 3 * 9]  # the middle one sees rows 8..16
    assert res["background_rate"] == pytest.approx(2 / (nrows * (ncols - overscan)))


def test_id_window_and_masked_pixels_are_not_counted():
    q = np.zeros((20, 20))
    q[5:7, 5:7] = 50.0
    q[7:12, 5:7] = 1.0  # every pixel above the cluster holds one electron
    q[9, 5] = np.nan  # not a valid pixel
    image = image_of({"L": q})
    clusters = find(image, EvalCTIProcess(VCTI=[6, 5], HCTI=[6, 5], id_row_end=10))
    # rows 7..9 of 2 columns are in the id window, one of them NaN: 5 valid pixels, all single electrons
    assert ak.to_list(clusters.vcti_rate) == [[1.0]]
    assert image["L"].results["EvalCTIProcess"]["vcti_pixels"].tolist() == [5]


def test_no_clusters_and_single_amplifier_edge_cases():
    image = image_of({"L": np.zeros((10, 10))})
    clusters = find(image, EvalCTIProcess(VCTI=[5, 2]), EvalHaloProcess(radius=[5, 2]))
    assert len(clusters) == 0
    assert str(ak.type(clusters.vcti_rate)) == "0 * var * float64"
    assert np.isnan(image.results["EvalCTIProcess"]["vcti_rate"]).all()
    assert image.results["EvalHaloProcess"]["background_rate"] == 0.0


def test_unseeded_clusters_have_nan_halo_rates():
    q = np.zeros((30, 30))
    q[10:12, 10:12] = 2.5  # candidates (>= 2 e-) without a seed (>= 3 e-)
    q[20:22, 20:22] = 10.0
    image = image_of({"L": q})
    clusters = find(image, EvalHaloProcess(radius=[10, 3]))
    seeded = ak.to_numpy(clusters.has_seed)
    assert seeded.tolist() == [False, True]
    assert np.isnan(ak.to_numpy(clusters.halo_rate)[0]).all()
    assert ak.to_list(clusters.halo_rate[1]) == [0.0, 0.0, 0.0]


# --- configuration, errors, outputs -----------------------------------------------------------------------
def test_pysimdamicm_sections_load(configs):
    sections = json.loads((configs / "panaSKImg_config_ACM_ex.json").read_text())["process"]
    cti = EvalCTIProcess.from_mapping(sections["EvalCTIProcess"])
    halo = EvalHaloProcess.from_mapping(sections["EvalHaloProcess"])
    assert cti.VCTI == [100, 5] and cti.Qrange_e == [0.75, 5.75] and cti.cumulative
    assert halo.radius == [100, 5]
    full = EvalCTIProcess.from_mapping({"image": PS_E, "VCTI": [155, 10], "HCTI": [155, 10], "__display__": False})
    assert full.HCTI == [155, 10]


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (EvalCTIProcess, {"Qrange_e": [1.5, 0.75]}, "low < high"),
        (EvalCTIProcess, {"VCTI": [10, 10]}, "gives no distance"),
        (EvalCTIProcess, {"HCTI": [10, 0]}, "HCTI"),
        (EvalHaloProcess, {"radius": [5]}, "radius"),
        (EvalHaloProcess, {"halo_radius": [5, 1]}, "unknown parameter"),
    ],
)
def test_bad_parameters(cls, params, match):
    with pytest.raises(ConfigError, match=match):
        cls.from_mapping(params)


def test_clusters_are_required():
    image = image_of({"L": np.zeros((10, 10))})
    for process in (EvalCTIProcess(), EvalHaloProcess()):
        with pytest.raises(DataError, match="run ClusterFinder before"):
            process.run(image, context())


def test_plots_summary_and_root_output(tmp_path):
    from waders.ana.sinks import save_figures
    from waders.ana.summary import json_ready
    from waders.io.root import open_output, read_clusters, write_clusters_tree

    image = busy_image(("L", "U"), seed=3)
    run_context = context(output_dir=tmp_path, save_plots=True)
    Pipeline(
        [
            ClusterFinder(spr_threshold=THRESHOLD),
            EvalCTIProcess(VCTI=[20, 5], HCTI=[20, 5], save_plots=True),
            EvalHaloProcess(radius=[20, 5], save_plots=True),
        ]
    ).run(image, run_context)
    assert not (tmp_path / "plots").exists()  # processes write nothing: the figures are in the run context
    save_figures(run_context.figures, tmp_path, "image")
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["image_EvalCTIProcess_rates.png", "image_EvalHaloProcess_rates.png"]
    text = json.dumps(json_ready(image.results["EvalCTIProcess"]), allow_nan=False)
    assert "vcti_rate" in text
    # what the runner must pass to write_clusters_tree: per-cluster lists grouped by prefix in lists=
    clusters = image.results["ClusterFinder"]["clusters"]
    pixel_fields = [f for f in clusters.fields if f.startswith("pixels_") or f == "seed_nsig_pixels"]
    list_fields = [f for f in clusters.fields if f not in pixel_fields and clusters[f].ndim == 2]
    scalar_fields = [f for f in clusters.fields if f not in pixel_fields + list_fields]
    cti_fields = [f for f in list_fields if not f.startswith("projection")]  # ClusterFinder's projectionX...
    assert cti_fields == ["vcti_pix", "vcti_rate", "hcti_pix", "hcti_rate", "halo_pix", "halo_rate"]
    counts = np.array([len(clusters)])
    groups: dict[str, list[str]] = {}
    for name in list_fields:
        groups.setdefault(name.split("_")[0], []).append(name)
    lists = {g: ak.unflatten(ak.zip({f: clusters[f] for f in fs}), counts) for g, fs in groups.items()}
    path = tmp_path / "clusters.root"
    with open_output(path) as out:
        write_clusters_tree(
            out,
            "clustersRec",
            np.array([1], dtype=np.int32),
            ak.unflatten(clusters[scalar_fields], counts),
            ak.unflatten(ak.zip({f: clusters[f] for f in pixel_fields}), counts),
            lists=lists,
        )
    back = read_clusters(path).clusters[0]
    np.testing.assert_array_equal(
        ak.to_numpy(ak.flatten(back.vcti.vcti_rate)), ak.to_numpy(ak.flatten(clusters.vcti_rate))
    )
    assert ak.to_list(back.halo.halo_pix) == ak.to_list(clusters.halo_pix)
