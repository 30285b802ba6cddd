"""The E.5 tools (energy-threshold, hot-regions, cluster-topology, image-grid) on data of known truth."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib

import awkward as ak
import numpy as np
import pytest
from astropy.io import fits
from scipy.stats import norm, poisson

from waders.ana.tools.grid import draw_image_grid
from waders.ana.tools.hotregions import find_hot_regions
from waders.ana.tools.threshold import f1_curve, optimal_threshold
from waders.ana.tools.topology import cluster_shapes, topology_map
from waders.core.errors import ConfigError, DataError
from waders.io.root import ClustersTreeWriter, open_output


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=300)


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]  # a valid IHDR chunk
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- energy threshold -----------------------------------------------------------------------------
def test_threshold_maximises_the_f1_of_simulated_pixels():
    """Pixels drawn from Gauss x Poisson: the empirical F1 peaks where the kernel says."""
    mu0, sigma, gain, lam = 100.0, 2.0, 10.0, 0.05
    rng = np.random.default_rng(11)
    n = 2_000_000
    k = rng.poisson(lam, n)
    x = mu0 + gain * k + rng.normal(0, sigma, n)
    result = optimal_threshold(mu0, sigma, gain, lam)
    cuts = np.linspace(mu0 + 2, mu0 + 9, 71)
    charged = k >= 1
    above = x[None, :] >= cuts[:, None]
    tp = (above & charged).sum(axis=1)
    fp = (above & ~charged).sum(axis=1)
    fn = charged.sum() - tp
    f1 = 2 * tp / (2 * tp + fp + fn)
    # the model curve agrees with the simulation within binomial errors (F1 ~ 0.97, n_charged ~ 1e5)
    model = f1_curve(cuts, mu0, sigma, gain, lam)["f1"]
    err = np.sqrt(f1 * (1 - f1) / charged.sum())
    assert np.all(np.abs(f1 - model) < 5 * err + 1e-4)
    # the empirical optimum lies within the flat top around the kernel's threshold
    best = cuts[np.argmax(f1)]
    assert abs(best - result.threshold) < 0.5
    assert f1.max() - np.interp(result.threshold, cuts, f1) < 5 * err.max()
    assert result.threshold_e == pytest.approx((result.threshold - mu0) / gain)
    assert 0.5 < result.threshold_e < 1.0


def test_threshold_limits():
    # equal 0e and 1e populations with negligible 2e: the F1 optimum is below the mid point (recall counts twice)
    r = optimal_threshold(0.0, 0.2, 1.0, 0.01)
    assert 0.5 < r.threshold < 0.8  # few charged pixels: the cut moves up towards the 1e peak
    low_noise = optimal_threshold(0.0, 0.05, 1.0, 0.01)
    assert low_noise.f1 > 0.999 and r.f1 < low_noise.f1
    with pytest.raises(ConfigError, match="positive"):
        optimal_threshold(0.0, 0.0, 1.0, 0.01)


def test_energy_threshold_command(tmp_path):
    out = tmp_path / "thr.csv"
    result = waders(
        "energy-threshold", "--dcfit", "0", "0.16", "1", "0.01", "--scan-lam", "0.001", "0.1", "3", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("threshold,") and len(lines) == 4
    bad = waders("energy-threshold", "--dcfit", "0", "-1", "1", "0.01")
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1


# --- hot regions ----------------------------------------------------------------------------------
def hot_stack(n_images=16, shape=(120, 200), seed=3):
    """Images in e-: Poisson dark current 0.02 e-/pix + noise 0.15 e-, hot columns, a hot row and hot pixels."""
    rng = np.random.default_rng(seed)
    lam = np.full(shape, 0.02)
    hot_cols, hot_row, hot_pix = [37, 150], 90, [(10, 10), (60, 121), (100, 5)]
    lam[:, hot_cols] += 0.3
    lam[hot_row, :] += 0.3
    for r, c in hot_pix:
        lam[r, c] = 1.5
    images = rng.poisson(lam, (n_images, *shape)) + rng.normal(0, 0.15, (n_images, *shape))
    return images, hot_cols, hot_row, hot_pix


def test_injected_hot_columns_rows_and_pixels_are_found():
    images, hot_cols, hot_row, hot_pix = hot_stack()
    found = find_hot_regions(images, qrange=(0.5, 3.5), nsigma=5)
    assert found.columns.hot.tolist() == hot_cols
    assert found.rows.hot.tolist() == [hot_row]
    assert sorted(map(tuple, found.pixels.tolist())) == hot_pix

    # the continuum of ordinary columns: P(0.5 <= k + noise < 3.5) for Poisson k, 119 rows at 0.02 e-, one at 0.32
    def fires(lam):
        k = np.arange(0, 30)
        window = norm.cdf((3.5 - k) / 0.15) - norm.cdf((0.5 - k) / 0.15)
        return float((poisson.pmf(k, lam) * window).sum())

    ordinary = np.setdiff1d(np.arange(200), hot_cols)
    density = found.columns.expected[ordinary] / found.columns.available[ordinary]
    truth = (119 * fires(0.02) + fires(0.32)) / 120
    n_fired = found.columns.counts[ordinary].sum()
    assert density.mean() == pytest.approx(truth, rel=4 / np.sqrt(n_fired))
    # significance of ordinary columns is standard normal-ish (no fake hot columns)
    z = found.columns.significance[ordinary]
    assert abs(z.mean()) < 0.5 and 0.6 < z.std() < 1.5


def test_mask_hides_a_hot_column_and_single_images_skip_pixels():
    images, hot_cols, *_ = hot_stack()
    mask = np.zeros(images.shape[1:], dtype=bool)
    mask[:, hot_cols[0]] = True
    found = find_hot_regions(images, qrange=(0.5, 3.5), mask=mask)
    assert found.columns.hot.tolist() == hot_cols[1:]
    assert found.columns.available[hot_cols[0]] == 0
    single = find_hot_regions(images[0], qrange=(0.5, 3.5))
    assert single.pixels.shape == (0, 2) and single.notes
    with pytest.raises(DataError, match="shape"):
        find_hot_regions(images, mask=mask[:10])


def test_hot_regions_command_with_bz2_inputs_and_mask(tmp_path):
    images, hot_cols, hot_row, hot_pix = hot_stack()
    names = []
    for i, image in enumerate(images):
        path = tmp_path / f"img_{i}.fits.bz2"  # pysimdamicm --bz2 outputs are read directly
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU((image * 10).astype(np.float32), name="CALIBRATED")]).writeto(
            path
        )
        names.append(str(path))
    mask = np.zeros(images.shape[1:], dtype=np.int16)
    mask[hot_row, :] = 1
    # the first image of the mask file masks nothing: --mask-ext picks the CLSMASK extension
    fits.HDUList([fits.PrimaryHDU(np.zeros_like(mask)), fits.ImageHDU(mask, name="CLSMASK")]).writeto(
        tmp_path / "mask.fits"
    )
    out = tmp_path / "hot.json"
    result = waders(
        "hot-regions", *names, "-e", "CALIBRATED", "--gain", "10", "-q", "0.5", "3.5",
        "--mask", str(tmp_path / "mask.fits"), "--mask-ext", "CLSMASK", "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(out.read_text())
    assert found["hot_columns"] == hot_cols and found["hot_rows"] == []
    assert sorted(map(tuple, found["hot_pixels"])) == hot_pix
    # a window keeps full-image coordinates
    window = waders("hot-regions", *names, "-e", "CALIBRATED", "--gain", "10", "-q", "0.5", "3.5", "-c", "100", "200",
                    "-o", str(out))  # fmt: skip
    assert window.returncode == 0, window.stderr
    assert json.loads(out.read_text())["hot_columns"] == [150]
    bad = waders("hot-regions", names[0], "-e", "NOPE")
    assert bad.returncode == 2 and "no extension 'NOPE'" in bad.stderr and not (tmp_path / "x.json").exists()


# --- cluster topology -----------------------------------------------------------------------------
def shapes_fixture():
    """A point, a horizontal line of 5, a vertical line of 4, a diagonal track of 8 and a 3x3 blob."""
    clusters = [
        [(10, 10, 2.0)],
        [(20 + i, 5, 1.0) for i in range(5)],
        [(40, 30 + i, 1.0) for i in range(4)],
        [(60 + i, 60 + i, 1.0) for i in range(8)] + [(61 + i, 60 + i, 0.2) for i in range(7)],
        [(80 + i, 80 + j, 4.0 if (i, j) == (1, 1) else 1.0) for i in range(3) for j in range(3)],
    ]
    counts = np.array([len(c) for c in clusters])
    x, y, e = (np.array([p[k] for c in clusters for p in c], dtype=float) for k in range(3))
    return clusters, counts, x, y, e


def test_cluster_shapes_of_known_clusters():
    _, counts, x, y, e = shapes_fixture()
    s = cluster_shapes(counts, x, y, e)
    assert s["shape"].tolist() == ["point", "horizontal", "vertical", "track", "blob"]
    assert s["npix"].tolist() == [1, 5, 4, 15, 9]
    assert s["nx"].tolist() == [1, 5, 1, 8, 3] and s["ny"].tolist() == [1, 1, 4, 8, 3]
    assert s["sigma_x"][1] == pytest.approx(np.sqrt(2.0))  # uniform line of 5: variance 2
    assert s["sigma_y"][1] == 0 and np.isinf(s["elongation"][1])
    assert s["angle"][3] == pytest.approx(45.0, abs=3.0)
    assert s["mean_x"][4] == pytest.approx(81.0) and s["mean_y"][4] == pytest.approx(81.0)
    assert s["elongation"][4] == pytest.approx(1.0)
    assert s["energy"][4] == pytest.approx(12.0)


def test_topology_map_stacks_on_the_brightest_pixel():
    _, counts, x, y, e = shapes_fixture()
    keep = np.array([False, False, False, False, True])
    stacked, n = topology_map(counts[keep], x[-9:], y[-9:], e[-9:], padx=2, pady=2)
    assert n == 1
    assert stacked[2, 2] == 4.0 and stacked[1:4, 1:4].sum() == 12.0 and stacked.sum() == 12.0


def test_cluster_topology_command(tmp_path):
    clusters, *_ = shapes_fixture()
    path = tmp_path / "clusters.root"
    with open_output(path) as out:
        writer = ClustersTreeWriter(out, "clustersRec")
        scalars = ak.Array([[{"Energy": sum(p[2] for p in c), "has_seed": i != 1} for i, c in enumerate(clusters)]])
        pixels = ak.Array(
            [
                [
                    {"pixels_x": [p[0] for p in c], "pixels_y": [p[1] for p in c], "pixels_E": [p[2] for p in c]}
                    for c in clusters
                ]
            ]
        )
        writer.extend(np.array([1], dtype=np.int32), scalars, pixels)
    table, image = tmp_path / "shapes.csv", tmp_path / "map.png"
    result = waders("cluster-topology", str(path), "-o", str(table), "--map", str(image), "--padx", "3", "--pady", "2")
    assert result.returncode == 0, result.stderr
    rows = table.read_text().splitlines()
    assert len(rows) == 1 + 4  # the unseeded horizontal line is left out
    assert [r.split(",")[-1] for r in rows[1:]] == ["point", "vertical", "track", "blob"]
    assert png_size(image) == (400, 300)
    everything = waders("cluster-topology", str(path), "--all", "--emin", "3")
    assert "4 clusters selected of 5" in everything.stdout and "point: 0" in everything.stdout  # E = 2 keV
    none = waders("cluster-topology", str(path), "--emin", "100", "--map", str(tmp_path / "none.png"))
    assert none.returncode == 2 and "no cluster selected" in none.stderr and not (tmp_path / "none.png").exists()


# --- image grid -----------------------------------------------------------------------------------
def test_image_grid_png_has_one_panel_per_image(tmp_path):
    rng = np.random.default_rng(0)
    panels = [(f"amp {i}", rng.normal(size=(30, 40))) for i in range(5)]
    info = draw_image_grid(panels, tmp_path / "g.png", panel_size=(3.0, 2.0), dpi=50)
    assert (info.nrows, info.ncols) == (2, 3)
    assert png_size(tmp_path / "g.png") == (3 * 150, 2 * 100)
    info = draw_image_grid(panels, tmp_path / "g.png", ncols=5, panel_size=(3.0, 2.0), dpi=50)
    assert png_size(tmp_path / "g.png") == (5 * 150, 100)
    with pytest.raises(DataError, match="no panel"):
        draw_image_grid([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_image_grid_command_all_extensions_and_zoom(tmp_path):
    rng = np.random.default_rng(1)
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(rng.normal(size=(50, 60)).astype(np.float32)) for _ in range(4)]
    fits.HDUList(hdus).writeto(tmp_path / "acm.fits")
    out = tmp_path / "amps.png"
    result = waders("image-grid", str(tmp_path / "acm.fits"), "--all-ext", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "4 panels (2 x 2)" in result.stdout and png_size(out) == (800, 600)
    zoom = waders("image-grid", str(tmp_path / "acm.fits"), "-e", "1", "-e", "3", "-r", "0", "10", "-c", "5", "15",
                  "-o", str(tmp_path / "zoom.png"))  # fmt: skip
    assert zoom.returncode == 0, zoom.stderr
    assert png_size(tmp_path / "zoom.png") == (800, 300)
    bad = waders("image-grid", str(tmp_path / "acm.fits"), "-r", "0", "500", "-o", str(tmp_path / "bad.png"))
    assert bad.returncode == 2 and "outside the image" in bad.stderr and not (tmp_path / "bad.png").exists()


# --- the shipped DAMIC-M image ---------------------------------------------------------------------
@pytest.mark.slow
def test_tools_on_the_real_damicm_image(tmp_path):
    """The shipped 4-CCD DAMIC-M image analysed with the default configuration (values measured 2026-12-04).

    With the cluster mask of the analysis no CCD has a hot column in its active columns 10-600 (rows are
    320 per CCD); cluster topology classifies every seeded cluster; the grid has one panel per product.
    """
    from waders.data import DAMICM_IMAGE, path

    out = tmp_path / "out"
    result = waders("ana", "--save-img", "-o", str(out), str(path(DAMICM_IMAGE)))
    assert result.returncode == 0, result.stderr
    (processed,) = out.glob("*_waders.fits")
    (clusters,) = out.glob("*_clusters.root")
    for ccd in range(4):
        rows = [str(ccd * 320), str(ccd * 320 + 320)]
        hot = tmp_path / f"hot{ccd}.json"
        run = waders(
            "hot-regions", str(processed), "-e", "CALIBRATED", "-q", "0.5", "3.5", "-r", *rows, "-c", "10", "600",
            "--mask", str(processed), "--mask-ext", "CLSMASK", "-o", str(hot),
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        found = json.loads(hot.read_text())
        assert found["hot_columns"] == []
        assert len(found["hot_rows"]) <= 3  # measured: 2, 1, 0, 2
    table = tmp_path / "shapes.csv"
    topo = waders("cluster-topology", str(clusters), "-o", str(table))
    assert topo.returncode == 0, topo.stderr
    lines = table.read_text().splitlines()
    n = int(topo.stdout.split()[0])
    assert len(lines) == n + 1 and n > 1000  # measured: 8896 seeded clusters of 8925
    shapes = [line.rsplit(",", 1)[1] for line in lines[1:]]
    # 0.72 e-/pixel of dark current (the default chain's fit, as the tuned img_5.json): half the pixels hold an
    # electron, so neighbouring single electrons make as many small blobs as isolated points (measured 3790 and
    # 4046); tracks are the few long clusters
    assert shapes.count("point") > 1000 and shapes.count("blob") > 1000
    assert 0 < shapes.count("track") < shapes.count("point")
    grid = waders("image-grid", str(processed), "--all-ext", "-o", str(tmp_path / "grid.png"))
    assert grid.returncode == 0, grid.stderr
    assert png_size(tmp_path / "grid.png") == (3 * 400, 2 * 300)  # 5 image HDUs on a 2 x 3 grid
