"""waders info: what a file is."""

from __future__ import annotations

import json
import subprocess
import sys

from waders.io import write_raw_image
from waders.io.synthetic import make_raw_image


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=120)


def test_info_json_of_a_raw_two_amplifier_image(tmp_path):
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=20, ncols=30, nskips=6, prescan=3, overscan=7, col_binning=2)
    path = write_raw_image(tmp_path / "raw.fits", image)
    result = waders("info", "--json", str(path))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] == "fits"
    assert info["exposure_s"] == 3600.0
    assert [
        (a["name"], a["nrows"], a["ncols"], a["nskips"], a["averaged"], a["prescan_cols"], a["overscan_cols"])
        for a in info["amplifiers"]
    ] == [("L", 20, 30, 6, False, 3, 7), ("U", 20, 30, 6, False, 3, 7)]
    assert info["amplifiers"][1]["mirrored"] is True
    assert info["amplifiers"][0]["col_binning"] == 2


def test_info_text_and_bad_files(tmp_path):
    image, _ = make_raw_image(nskips=4)
    good = write_raw_image(tmp_path / "good.fits", image)
    bad = tmp_path / "bad.fits"
    bad.write_text("garbage")
    result = waders("info", str(good), str(bad), str(tmp_path / "missing.fits"))
    assert result.returncode == 2
    assert "good.fits: FITS, single, raw, 4 skips" in result.stdout
    assert "  L " in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {bad}: not a readable FITS file")
    assert errors[1] == f"error: {tmp_path / 'missing.fits'}: no such file"


def test_info_of_the_real_damicm_file(data_dir):
    result = waders("info", "--json", str(data_dir / "damicm" / "avg_Image_5_Low_Temp_109_20250807_170213_15.fz"))
    info = json.loads(result.stdout)
    assert [a["name"] for a in info["amplifiers"]] == ["CCD_A", "CCD_B", "CCD_D", "CCD_C"]
    assert {(a["nrows"], a["ncols"], a["nskips"], a["averaged"]) for a in info["amplifiers"]} == {(320, 640, 500, True)}
    assert info["exposure_s"] == 500.0


def test_info_json_of_a_root_file(tmp_path):
    import awkward as ak
    import numpy as np

    from waders.io.root import open_output, write_clusters_tree

    path = tmp_path / "clusters.root"
    with open_output(path) as out:
        clusters = ak.Array([[{"Energy": 1.5, "Npix": 2}], []])
        write_clusters_tree(out, "clustersRec", np.array([7, 8], dtype=np.int32), clusters)
    info = json.loads(waders("info", "--json", str(path)).stdout)
    assert info["format"] == "root"
    (tree,) = info["trees"]
    assert (tree["name"], tree["entries"]) == ("clustersRec", 2)
    assert {"RUNID", "Nclusters", "Energy", "Npix"} <= set(tree["branches"])


def test_info_of_waders_own_processed_output(tmp_path):
    """<stem>_waders.fits keeps the raw input's header (NDCMS=6): info describes its products, not 6 skips of them."""
    import numpy as np

    from waders.io import write_processed

    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=20, ncols=30, nskips=6, prescan=3, overscan=7)
    raw = write_raw_image(tmp_path / "raw.fits", image)
    from waders.io import read_image

    image = read_image(raw)
    for amp in image.amplifiers.values():
        amp.set("mean_compressed", np.zeros(amp.geometry.shape))
        amp.set("mask_clusters", np.zeros(amp.geometry.shape, bool))
    path = write_processed(tmp_path / "raw_waders.fits", image)
    result = waders("info", str(path))
    assert result.returncode == 0, result.stderr
    assert "processed images written by waders ana from raw.fits (two-amplifier, raw, 6 skips); 2 product(s)" in (
        result.stdout
    )
    info = json.loads(waders("info", "--json", str(path)).stdout)
    assert info["layout"] == "waders output"
    assert [(p["name"], p["product"], p["nrows"], p["ncols"], p["amplifiers"]) for p in info["products"]] == [
        ("MEAN", "mean_compressed", 20, 60, "L,U"),  # the two amplifiers side by side, as in the input
        ("FULLMASK", "mask_clusters", 20, 60, "L,U"),
    ]
    assert info["input_geometry"]["nskips"] == 6
