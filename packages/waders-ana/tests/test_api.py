"""The Python interface as users call it: analyse(), AnalysisResult, processes from waders.ana."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import waders.ana
from waders.ana import AnalysisResult, analyse
from waders.ana.runner import AnalysisOptions, analyse_file
from waders.core import load_config, process_registry
from waders.core.errors import ConfigError, DataError, InputFileError
from waders.data import DAMICM_IMAGE, path
from waders.io import write_raw_image
from waders.io.synthetic import cluster_deposits, make_raw_image

GAIN, NOISE_PER_SKIP, NSKIPS, DARK = 10.0, 3.0, 9, 0.05
SIGMA_E = NOISE_PER_SKIP / np.sqrt(NSKIPS) / GAIN  # 0.1 e-


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory):
    """A raw two-amplifier image with known gain, noise and dark current, and three charge clouds."""
    rng = np.random.default_rng(5)
    deposits, _ = cluster_deposits(rng, [(50.3, 100.7), (150.2, 60.4), (220.0, 200.5)], [800, 1500, 3000], [1, 1, 1])
    image, _ = make_raw_image(
        amplifiers=("L", "U"), nrows=300, ncols=400, prescan=8, overscan=60, nskips=NSKIPS,
        noise=NOISE_PER_SKIP, gain=GAIN, dark_current=DARK, deposits=deposits, seed=3,
    )  # fmt: skip
    return write_raw_image(tmp_path_factory.mktemp("data") / "run7_img12.fits", image)


@pytest.fixture(scope="module")
def synthetic(raw_file):
    return analyse(raw_file)


@pytest.fixture(scope="module")
def damicm():
    return analyse(path(DAMICM_IMAGE))


def test_every_process_is_importable_from_waders_ana_and_listed():
    registry = process_registry()
    for name in waders.ana.PROCESSES:
        assert getattr(waders.ana, name) is registry.get(name, domain="ana")
        assert name in waders.ana.__all__ and name in dir(waders.ana)
    assert {"PedestalSubtractionProcess", "FitDarkCurrentProcess", "ClusterFinder"} <= set(waders.ana.PROCESSES)
    from waders.ana import PedestalSubtractionProcess  # the import of the issue

    assert PedestalSubtractionProcess.name == "PedestalSubtractionProcess"
    with pytest.raises(AttributeError, match="Did you mean: 'PedestalSubtractionProcess'"):
        _ = waders.ana.PedestalSubtractionProces


def test_import_waders_ana_is_cheap():
    code = "import sys, waders.ana; print(sorted(m for m in ('numpy', 'scipy', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_analyse_recovers_the_truth_and_matches_the_command_line(synthetic, raw_file, tmp_path):
    assert isinstance(synthetic, AnalysisResult)
    assert list(synthetic.amplifiers) == ["L", "U"]
    for name, amp in synthetic.amplifiers.items():
        # about 100000 active pixels: the statistical errors are far below these tolerances
        assert amp["gain_adu_per_e"] == pytest.approx(GAIN, rel=0.01), name
        assert amp["sigma_e"] == pytest.approx(SIGMA_E, rel=0.03), name
        assert amp["lambda_e_per_pixel"] == pytest.approx(DARK, rel=0.05), name
        assert amp["fit_valid"] is True
    # the same code as 'waders ana': the summary.json of analyse_file holds the same numbers
    config = load_config(waders.ana.api.analysis_config().to_dict(), kind="analysis")
    analyse_file(raw_file, config, AnalysisOptions(output_dir=tmp_path))
    written = json.loads((tmp_path / "run7_img12.summary.json").read_text())
    assert written["amplifiers"] == synthetic.summary["amplifiers"]
    assert written["format"] == synthetic.summary["format"] == "waders-summary-1"
    assert synthetic.clusters is not None and len(synthetic.clusters) >= 6
    assert {"Energy", "Npix", "PosX", "PosY"} <= set(synthetic.clusters.fields)


def test_analyse_writes_nothing_until_asked(raw_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = analyse(raw_file, sequence="CompressSkipperProcess,PedestalSubtractionProcess")
    assert list(tmp_path.iterdir()) == []
    outputs = result.write(tmp_path / "out", save_images=True)
    assert set(outputs) == {"summary", "images"}  # no ClusterFinder: no clusters file
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run7_img12.summary.json", "run7_img12_waders.fits"]


def test_overrides_reuse_the_set_machinery(raw_file):
    result = analyse(
        raw_file,
        sequence=["CompressSkipperProcess", "PedestalSubtractionProcess", "CalibrationProcess"],
        gain=8.0,
        PedestalSubtractionProcess__method="mean",
        **{"CalibrationProcess.from_dc_fit": False},
    )
    steps = {p.name: p for p in result.config.steps}
    assert steps["PedestalSubtractionProcess"].method == "mean"
    assert result.amplifiers["L"]["gain_adu_per_e"] == 8.0
    assert result.config.names == ["CompressSkipperProcess", "PedestalSubtractionProcess", "CalibrationProcess"]
    with pytest.raises(ConfigError, match="unknown keyword nonsense=1"):
        analyse(raw_file, nonsense=1)
    with pytest.raises(ConfigError, match="PedestalSubtractionProcess"):
        analyse(raw_file, PedestalSubtractionProcess__methd="mean")
    with pytest.raises(InputFileError, match="no such file"):
        analyse(raw_file.parent / "missing.fits")


def test_products_arrays_and_ccddata_with_units(synthetic):
    amp = synthetic.image["L"]
    assert synthetic.products("L") == amp.available()
    electrons = synthetic.ccddata("mean_compressed_pedestal_subtracted_e", "L")
    assert str(electrons.unit) == "electron"
    np.testing.assert_array_equal(electrons.data, synthetic.array("mean_compressed_pedestal_subtracted_e", "L"))
    assert str(synthetic.ccddata("mean_compressed", "U").unit) == "adu"
    assert synthetic.ccddata("mask_clusters", "L").unit.is_equivalent("")  # a mask has no unit
    with pytest.raises(DataError, match="no amplifier 'X'"):
        synthetic.array("mean_compressed", "X")


def test_fits_outputs_have_bunit_and_history_read_by_ccddata(synthetic, tmp_path):
    from astropy.io import fits
    from astropy.nddata import CCDData

    written = synthetic.write(tmp_path, save_images=True)["images"]
    with fits.open(written) as hdus:
        units = {h.header.get("PRODUCT"): h.header.get("BUNIT") for h in hdus[1:]}
        history = [str(h) for h in hdus[0].header["HISTORY"]]
        index = {h.header.get("PRODUCT"): i for i, h in enumerate(hdus)}
    assert units["mean_compressed"] == "adu"
    assert units["mean_compressed_pedestal_subtracted_e"] == "electron"
    assert "mask_clusters" in units and units["mask_clusters"] is None  # flags: no BUNIT
    assert [h.split(". ", 1)[1] for h in history[1:]] == synthetic.config.names
    calibrated = CCDData.read(written, hdu=index["mean_compressed_pedestal_subtracted_e"])
    assert str(calibrated.unit) == "electron"
    assert calibrated.shape == (300, 800)  # L and U side by side in the file layout
    assert "CalibrationProcess" in " ".join(str(h) for h in calibrated.header["HISTORY"])


@pytest.mark.parametrize("kind", ["image", "pcd", "pedestal", "clusters"])
def test_plot_returns_a_figure_and_leaves_no_pyplot_figure(synthetic, kind):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig = synthetic.plot(kind, amplifier="U")
    assert isinstance(fig, Figure)
    assert fig.axes and "U" in fig._suptitle.get_text() if kind != "clusters" else fig.axes
    assert plt.get_fignums() == []


def test_plot_axes_have_units(synthetic):
    pcd = synthetic.plot("pcd", amplifier="L").axes[0]
    assert pcd.get_xlabel() == "pixel charge (ADU)"
    assert synthetic.plot("clusters").axes[0].get_xlabel() == "cluster energy (keV)"
    image = synthetic.plot("image", amplifier="L", product="mean_compressed_pedestal_subtracted_e")
    assert image.axes[-1].get_ylabel() == "charge (e-)"  # the colour bar
    with pytest.raises(DataError, match="unknown plot kind 'spectrum'"):
        synthetic.plot("spectrum")


def test_short_reprs(synthetic, damicm):
    for obj in (synthetic, damicm, damicm.image, damicm.image["CCD_A"], *damicm.amplifiers.values()):
        text = repr(obj)
        assert len(text) < 300, text
        assert "array(" not in text and "[[" not in text
    assert repr(damicm.amplifiers["CCD_A"]).startswith("<AmplifierResult CCD_A: gain ")


def test_real_damicm_image(damicm):
    """The real DAMIC-M module-test image (4 amplifiers, 320x640, averaged over 500 skips).

    The API runs the default chain: it must reach what the user's tuned pysimdamicm configuration
    ``img_5.json`` gives on this image (the gains of ``TUNED_DAMICM`` in test_default_chain.py,
    1.33-1.40 ADU/e-; noise about 0.155 e-; dark current 0.72-0.76 e-/pixel), with valid fits.
    """
    assert list(damicm.amplifiers) == ["CCD_A", "CCD_B", "CCD_D", "CCD_C"]
    tuned_gain = {"CCD_A": 1.3524, "CCD_B": 1.4000, "CCD_D": 1.3270, "CCD_C": 1.3457}
    for name, amp in damicm.amplifiers.items():
        assert amp["fit_valid"] is True
        assert amp["gain_adu_per_e"] == pytest.approx(tuned_gain[name], rel=0.02)
        assert 0.14 < amp["sigma_e"] < 0.17
        assert 0.65 < amp["lambda_e_per_pixel"] < 0.80
    # with 0.16 e- noise the [null, 3, 4] sigma threshold finds the single electrons of the 0.7 e-/pixel dark
    # current: about 2000-2500 clusters per amplifier
    assert sum(amp["n_clusters"] for amp in damicm.amplifiers.values()) == len(damicm.clusters)
    assert 6000 < len(damicm.clusters) < 12000
    for name, amp in damicm.amplifiers.items():  # the clusters plot of one amplifier shows its clusters
        assert damicm.plot("clusters", amplifier=name).axes[0].get_title() == f"{amp['n_clusters']} clusters"


def test_clusters_tree_title_states_the_units(synthetic, tmp_path):
    import uproot

    from waders.io.root.titles import CLUSTERS_REC_TITLE

    with uproot.open(synthetic.write(tmp_path)["clusters"]) as file:
        title = file["clustersRec"].title
    assert title == CLUSTERS_REC_TITLE
    assert "Energy, Qmax, pixels_E, qmin_cluster_seed in keV" in title


def test_pcd_plot_of_a_fit_on_electrons_is_labelled_in_electrons(raw_file):
    result = analyse(
        raw_file,
        sequence="CompressSkipperProcess,PedestalSubtractionProcess,CalibrationProcess,FitDarkCurrentProcess",
        gain=GAIN,
        CalibrationProcess__from_dc_fit=False,
        FitDarkCurrentProcess__image="mean_compressed_pedestal_subtracted_e",
    )
    assert result.plot("pcd", amplifier="L").axes[0].get_xlabel() == "pixel charge (e-)"


def test_jupyter_shows_a_table_of_the_numbers(damicm):
    html = damicm._repr_html_()
    assert html.count("<tr>") == 1 + len(damicm.amplifiers)
    assert "gain (ADU/e-)" in html and "dark current (e-/pixel)" in html
    gain = damicm.amplifiers["CCD_B"]["gain_adu_per_e"]
    assert f"<td>{gain:.4g}</td>" in html
    n_invalid = sum(amp["fit_valid"] is False for amp in damicm.amplifiers.values())
    assert html.count("<b>NO</b>") == n_invalid
