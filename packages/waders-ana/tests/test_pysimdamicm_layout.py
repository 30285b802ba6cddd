"""``waders ana --layout pysimdamicm``: pysimdamicm's file names, vector<vector<T>> branches read by a C++ macro.

Run by ``nox -s root`` (needs the PyPI ``root`` package); without ROOT only the
one-line error is checked.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits

from waders.io import read_clusters, write_raw_image
from waders.io.root.pysimdamicm import require_pyroot
from waders.io.synthetic import cluster_deposits, make_raw_image

MACRO = r"""
// the loop of a pysimdamicm-era analysis macro
std::vector<double> waders_pysimdamicm_sums(const char* path) {
  TFile file(path);
  auto* tree = static_cast<TTree*>(file.Get("clustersRec"));
  std::vector<std::vector<int>>* x = nullptr;
  std::vector<std::vector<int>>* y = nullptr;
  std::vector<std::vector<double>>* e = nullptr;
  std::vector<double>* energy = nullptr;
  std::vector<int>* npix = nullptr;
  int nclusters = 0;
  tree->SetBranchAddress("pixels_x", &x);
  tree->SetBranchAddress("pixels_y", &y);
  tree->SetBranchAddress("pixels_E", &e);
  tree->SetBranchAddress("Energy", &energy);
  tree->SetBranchAddress("Npix", &npix);
  tree->SetBranchAddress("Nclusters", &nclusters);
  double clusters = 0, pixels = 0, sum_e = 0, sum_energy = 0, sum_xy = 0;
  for (Long64_t i = 0; i < tree->GetEntries(); ++i) {
    tree->GetEntry(i);
    clusters += nclusters;
    for (std::size_t c = 0; c < e->size(); ++c) {
      sum_energy += energy->at(c);
      pixels += npix->at(c);
      for (std::size_t j = 0; j < e->at(c).size(); ++j) {
        sum_e += e->at(c).at(j);
        sum_xy += x->at(c).at(j) + 1000.0 * y->at(c).at(j);
      }
    }
  }
  return {clusters, pixels, sum_e, sum_energy, sum_xy};
}
"""


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=600)


def _root():
    with warnings.catch_warnings():  # the PyPI 'root' package warns that it is an alpha release
        warnings.simplefilter("ignore")
        try:
            import ROOT  # type: ignore[import-not-found]
        except ImportError:
            return None
    return ROOT


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory):
    rng = np.random.default_rng(11)
    deposits, _ = cluster_deposits(rng, [(40.3, 60.7), (120.2, 150.4)], [900, 2500], [0.9, 1.4])
    image, _ = make_raw_image(
        amplifiers=("L",), nrows=200, ncols=250, prescan=8, overscan=40, nskips=16, noise=10.0, gain=10.0,
        dark_current=0.05, deposits=deposits, seed=4,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("data") / "skp_run3_img21.fits"
    write_raw_image(path, image)
    return path


@pytest.mark.skipif(_root() is not None, reason="ROOT is installed")
def test_without_root_the_pysimdamicm_layout_is_a_one_line_error(raw_file, tmp_path):
    result = waders("ana", "-o", str(tmp_path), "--layout", "pysimdamicm", str(raw_file))
    assert result.returncode == 2
    assert "pip install root" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.root
def test_a_pysimdamicm_macro_reads_the_same_numbers(raw_file, tmp_path):
    root = _root()
    if root is None:
        pytest.skip("needs ROOT (nox -s root)")
    default, legacy = tmp_path / "default", tmp_path / "legacy"
    for out, layout in ((default, "waders"), (legacy, "pysimdamicm")):
        result = waders("ana", "-o", str(out), "--save-img", "--layout", layout, str(raw_file))
        assert result.returncode == 0, result.stderr
    root_file = legacy / "panaSKImg_clustersRec_skp_run3_img21_ext0.root"  # spec A.8 / B.14.2
    assert sorted(p.name for p in legacy.glob("*.root")) == [root_file.name]
    (entry,) = read_clusters(default / "skp_run3_img21_clusters.root").tolist()
    clusters = entry["clusters"]
    assert len(clusters) >= 2  # the two clouds, plus dark-current electrons

    tfile = root.TFile.Open(str(root_file))
    tree = tfile.Get("clustersRec")
    assert tree.GetBranch("pixels_x").GetClassName() == "vector<vector<int> >"
    assert tree.GetBranch("pixels_E").GetClassName() == "vector<vector<double> >"
    assert tree.GetBranch("Energy").GetClassName() == "vector<double>"
    assert tfile.Get("info").GetEntries() == 1 and tfile.Get("process_config").GetEntries() == 1
    tfile.Close()
    require_pyroot()  # reading vector<vector<int>> needs its dictionary, as with pysimdamicm's own files
    if not hasattr(root, "waders_pysimdamicm_sums"):
        root.gInterpreter.Declare(MACRO)
    sums = list(root.waders_pysimdamicm_sums(str(root_file)))
    pixels = [p for c in clusters for p in c["pixels"]]
    expected = [
        len(clusters),
        sum(c["Npix"] for c in clusters),
        sum(p["pixels_E"] for p in pixels),
        sum(c["Energy"] for c in clusters),
        sum(p["pixels_x"] + 1000.0 * p["pixels_y"] for p in pixels),
    ]
    assert sums == pytest.approx(expected, rel=1e-12)

    # processed FITS as pysimdamicm wrote it: the calibrated image in the primary HDU, NDCMS = 1
    with (
        fits.open(legacy / "skp_run3_img21_EXT0_waders.fits") as hdul,
        fits.open(default / "skp_run3_img21_waders.fits") as reference,
    ):
        assert hdul[0].header["NDCMS"] == 1
        assert hdul[0].header["EXTNAME"] == "CALIBRATED"
        np.testing.assert_array_equal(hdul[0].data, reference["CALIBRATED"].data)
        assert "CALIBRATED" not in [h.name for h in hdul[1:]]
        assert reference[0].header["NDCMS"] != 1 or reference[0].data is None


def test_seed_nsig_pixels_are_pixel_energies_in_units_of_the_known_noise(raw_file, tmp_path):
    result = waders("ana", "-o", str(tmp_path), str(raw_file))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(tmp_path / "skp_run3_img21_clusters.root").tolist()
    sigma_ev = 10.0 / np.sqrt(16) / 10.0 * 3.74  # 10 ADU per skip, 16 skips, 10 ADU/e-: 0.25 e- = 0.935 eV
    for cluster in entry["clusters"]:
        # the fitted noise of about 40000 pixels is within a few per cent of the generated one
        assert cluster["sigma_seed_eV"] == pytest.approx(sigma_ev, rel=0.05)
        nsig = [p["seed_nsig_pixels"] for p in cluster["pixels"]]
        energies = [p["pixels_E"] * 1000.0 / cluster["sigma_seed_eV"] for p in cluster["pixels"]]
        assert nsig == pytest.approx(energies, rel=1e-12)
        assert max(nsig) == pytest.approx(cluster["seed_nsig_max"], rel=1e-12)


def test_oroot_writes_one_file_with_one_entry_per_image(raw_file, tmp_path):
    second = tmp_path / "skp_run3_img22.fits"
    image, _ = make_raw_image(amplifiers=("L",), nrows=200, ncols=250, prescan=8, overscan=40, nskips=16,
                              noise=10.0, gain=10.0, dark_current=0.05, seed=9)  # fmt: skip
    write_raw_image(second, image)
    out = tmp_path / "out"
    result = waders("ana", "-o", str(out), "--oroot", "all.root", "--run", "3", str(raw_file), str(second))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.root")) == ["all.root"]
    assert not (out / ".waders-oroot-parts").exists()
    data = read_clusters(out / "all.root")
    assert len(data) == 2 and data["RUNID"].tolist() == [3, 3]
    # the entries are the images' own clusters: the same as analysing each image alone
    for entry, path in zip(data.tolist(), (raw_file, second), strict=True):
        alone = tmp_path / path.stem
        assert waders("ana", "-o", str(alone), "--run", "3", str(path)).returncode == 0
        (single,) = read_clusters(alone / f"{path.stem}_clusters.root").tolist()
        assert [c["Energy"] for c in entry["clusters"]] == [c["Energy"] for c in single["clusters"]]
    from waders.io.root import read_records

    assert len(read_records(out / "all.root", "info")) == 2
    assert len(read_records(out / "all.root", "process_config")) == 1


def test_column_transient_corrected_energies_are_stored(raw_file, tmp_path):
    """pixels_E_ECTS/Energy_ECTS: the corrected image differs from the pedestal-subtracted one only before col_end."""
    sequence = (
        "CompressSkipperProcess,PedestalSubtractionProcess,CorrectElectronicColumnTransient,"
        "FitDarkCurrentProcess,CalibrationProcess,ClusterFinder"
    )
    result = waders("ana", "-o", str(tmp_path), "-s", sequence, str(raw_file))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(tmp_path / "skp_run3_img21_clusters.root").tolist()
    pixels = [p for c in entry["clusters"] for p in c["pixels"]]
    late = [p for p in pixels if p["pixels_x"] > 50]  # col_end = 50 columns (1-based pixels_x)
    assert late and all(p["pixels_E_ECTS"] == p["pixels_E_PS"] for p in late)
    for cluster in entry["clusters"]:
        assert cluster["Energy_ECTS"] == pytest.approx(sum(p["pixels_E_ECTS"] for p in cluster["pixels"]), rel=1e-12)
    from waders.io.root import read_records

    (info,) = read_records(tmp_path / "skp_run3_img21_clusters.root", "info").tolist()
    assert len(info["ect_mu"]) == len(info["ect_amplitude"]) >= 1 and info["ect_chi"] > 0
    rows = info["readout_time_row"]  # 0 for the first row read, 1 for the last
    assert len(rows) == len(info["L_pedestal_mu_row_ADU"]) == 200 and rows[0] == 0.0 and rows[-1] == 1.0


def test_ppcol_of_moskita_headers(raw_file, tmp_path):
    path = tmp_path / "skp_moskita_img1.fits"
    path.write_bytes(raw_file.read_bytes())
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["PPCOL"] = 2.5e-34
    result = waders("ana", "-o", str(tmp_path), str(path))
    assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(tmp_path / "skp_moskita_img1_clusters.root").tolist()
    assert entry["clusters"] and all(c["ppcol"] == pytest.approx(2.5) for c in entry["clusters"])
    assert waders("ana", "-o", str(tmp_path / "plain"), str(raw_file)).returncode == 0
    (plain,) = read_clusters(tmp_path / "plain" / "skp_run3_img21_clusters.root").tolist()
    assert "ppcol" not in plain["clusters"][0]  # only for images with the card


EXTRAS_MACRO = r"""
// pysimdamicm's optional branches: saturation flags (--mask) distances and the constants of process_config
std::vector<double> waders_pysimdamicm_extras(const char* path) {
  TFile file(path);
  auto* tree = static_cast<TTree*>(file.Get("clustersRec"));
  std::vector<std::vector<int>>* saturated = nullptr;
  std::vector<double>* npix_sat = nullptr;
  std::vector<double>* dmin = nullptr;
  std::vector<double>* dmax = nullptr;
  tree->SetBranchAddress("pixels_saturated", &saturated);
  tree->SetBranchAddress("Npix_sat", &npix_sat);
  tree->SetBranchAddress("dist_mask_min", &dmin);
  tree->SetBranchAddress("dist_mask_max", &dmax);
  double flagged = 0, sum_npix_sat = 0, sum_min = 0, sum_max = 0;
  for (Long64_t i = 0; i < tree->GetEntries(); ++i) {
    tree->GetEntry(i);
    for (std::size_t c = 0; c < saturated->size(); ++c) {
      sum_npix_sat += npix_sat->at(c);
      sum_min += dmin->at(c);
      sum_max += dmax->at(c);
      for (int s : saturated->at(c)) flagged += s;
    }
  }
  auto* config = static_cast<TTree*>(file.Get("process_config"));
  double adc2e = 0, adc2ev = 0, exp_time = 0;
  config->SetBranchAddress("ADC2e", &adc2e);
  config->SetBranchAddress("ADC2eV", &adc2ev);
  config->SetBranchAddress("img_exp_time", &exp_time);
  config->GetEntry(0);
  return {flagged, sum_npix_sat, sum_min, sum_max, adc2e, adc2ev, exp_time};
}
"""


@pytest.mark.root
def test_a_macro_reads_the_saturation_mask_and_constant_branches(tmp_path):
    root = _root()
    if root is None:
        pytest.skip("needs ROOT (nox -s root)")
    rng = np.random.default_rng(12)
    deposits, _ = cluster_deposits(rng, [(40.3, 60.7), (120.2, 150.4)], [900, 2500], [0.9, 1.4])
    image, _ = make_raw_image(
        amplifiers=("L",), nrows=200, ncols=250, prescan=8, overscan=40, nskips=16, noise=10.0, gain=10.0,
        dark_current=0.05, deposits=deposits, seed=5,
    )  # fmt: skip
    image["L"].raw[120, 150, :] = 65535.0  # an ADC-clipped pixel in the second cloud
    raw = write_raw_image(tmp_path / "skp_run3_img30.fits", image)
    mask = np.zeros((200, 250), dtype=np.int16)
    mask[:, 100] = 1
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(mask)]).writeto(tmp_path / "mask.fits")
    default, legacy = tmp_path / "default", tmp_path / "legacy"
    for out, layout in ((default, "waders"), (legacy, "pysimdamicm")):
        args = ("ana", "-o", str(out), "--layout", layout, "--mask", str(tmp_path / "mask.fits"), str(raw))
        result = waders(*args)
        assert result.returncode == 0, result.stderr
    (entry,) = read_clusters(default / "skp_run3_img30_clusters.root").tolist()
    clusters = entry["clusters"]
    from waders.io.root import read_records

    (config,) = read_records(default / "skp_run3_img30_clusters.root", "process_config").tolist()
    expected = [
        sum(p["pixels_saturated"] for c in clusters for p in c["pixels"]),
        sum(c["Npix_sat"] for c in clusters),
        sum(c["dist_mask_min"] for c in clusters),
        sum(c["dist_mask_max"] for c in clusters),
        config["ADC2e"],
        config["ADC2eV"],
        config["img_exp_time"],
    ]
    assert expected[0] == expected[1] == 1  # the clipped pixel
    require_pyroot()
    if not hasattr(root, "waders_pysimdamicm_extras"):
        root.gInterpreter.Declare(EXTRAS_MACRO)
    sums = list(root.waders_pysimdamicm_extras(str(legacy / "panaSKImg_clustersRec_skp_run3_img30_ext0.root")))
    assert sums == pytest.approx(expected, rel=1e-12)
