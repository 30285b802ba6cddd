"""``waders sim --layout pysimdamicm``: pysimdamicm's file name and vector<vector<T>> branches read by a C++ macro.

Run by ``nox -s root`` (needs the PyPI ``root`` package); without ROOT only the
one-line error is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from waders.core.hits import HitCollection
from waders.core.versions import waders_versions
from waders.io.root import read_clusters, write_geant4

PITCH = 0.015  # mm

MACRO = r"""
// the loop of a pysimdamicm-era macro over psimulCCDimg output
std::vector<double> waders_psimul_sums(const char* path, const char* name, const char* energy_branch) {
  TFile file(path);
  auto* tree = static_cast<TTree*>(file.Get(name));
  std::vector<std::vector<int>>* x = nullptr;
  std::vector<std::vector<double>>* e = nullptr;
  int event = 0;
  tree->SetBranchAddress("pixels_x", &x);
  tree->SetBranchAddress(energy_branch, &e);
  tree->SetBranchAddress("event", &event);
  double lists = 0, pixels = 0, sum_e = 0, sum_x = 0, events = 0;
  for (Long64_t i = 0; i < tree->GetEntries(); ++i) {
    tree->GetEntry(i);
    events += event;
    for (std::size_t c = 0; c < e->size(); ++c) {
      lists += 1;
      for (std::size_t j = 0; j < e->at(c).size(); ++j) {
        pixels += 1;
        sum_e += e->at(c).at(j);
        sum_x += x->at(c).at(j);
      }
    }
  }
  return {events, lists, pixels, sum_e, sum_x};
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


@pytest.fixture
def inputs(tmp_path):
    """Ten events of 1 to 3 deposits of 2 to 20 keV at 0.1-0.6 mm depth (diffused over several pixels)."""
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 4, 10)
    n = int(counts.sum())
    hits = {
        "x": rng.uniform(0.3, 4.0, n), "y": rng.uniform(0.3, 2.5, n), "z": rng.uniform(0.1, 0.6, n),
        "time": np.zeros(n), "edep": rng.uniform(2000.0, 20000.0, n),
        "ccd": np.ones(n, dtype=np.int32), "pdg": np.full(n, 11, dtype=np.int32),
    }  # fmt: skip
    g4 = tmp_path / "g4_electrons.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(10), counts, hits), run_info={"NEvts": 10, "Seed": 7})
    config = {
        "detector_response": {"Diffusion": {"active": 1}, "PixelizeSignal": {"active": 1}},
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
        "CF": {"ccd_shape": [200, 300], "e2eV": 3.77, "ccd_thickness": 0.675},
    }
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(config))
    return g4, path


@pytest.mark.skipif(_root() is not None, reason="ROOT is installed")
def test_without_root_the_pysimdamicm_layout_is_a_one_line_error(inputs, tmp_path):
    g4, config = inputs
    out = tmp_path / "out"
    result = waders("sim", str(config), "--g4file", str(g4), "-o", str(out), "--layout", "pysimdamicm")
    assert result.returncode == 2
    assert "pip install root" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or not list(out.iterdir())  # nothing half-written


@pytest.mark.root
def test_a_pysimdamicm_macro_reads_the_same_numbers(inputs, tmp_path):
    root = _root()
    if root is None:
        pytest.skip("needs ROOT (nox -s root)")
    from waders.io.root.pysimdamicm import require_pyroot

    g4, config = inputs
    default, legacy = tmp_path / "default", tmp_path / "legacy"
    for out, layout in ((default, "waders"), (legacy, "pysimdamicm")):
        result = waders("sim", str(config), "--g4file", str(g4), "-o", str(out), "--layout", layout)
        assert result.returncode == 0, result.stderr
    version = waders_versions()["waders-sim"]
    legacy_file = legacy / f"waders_sim_{version}_g4_electrons.root"  # <prefix>_<commit>_<input name> (spec E.2)
    assert [p.name for p in legacy.glob("*.root")] == [legacy_file.name]
    default_file = default / "waders_sim_g4_electrons.root"
    require_pyroot()  # reading vector<vector<int>> needs its dictionary, as with pysimdamicm's own files
    if not hasattr(root, "waders_psimul_sums"):
        root.gInterpreter.Declare(MACRO)
    for tree, counter, energy in (
        ("clustersRec", "Nclusters", "pixels_E"),
        ("pixelizedEvent", "Ncollections", "pixels_Edep"),
    ):
        data = read_clusters(default_file, tree, count_branch=counter)
        clusters = [c for entry in data.tolist() for c in entry["clusters"]]
        pixels = [p for c in clusters for p in c["pixels"]]
        assert len(clusters) >= 10 and len(pixels) > 5 * len(clusters)  # diffused clouds of several pixels
        expected = [
            float(np.sum(data["event"])), len(clusters), len(pixels),
            sum(p[energy] for p in pixels), sum(p["pixels_x"] for p in pixels),
        ]  # fmt: skip
        sums = list(root.waders_psimul_sums(str(legacy_file), tree, energy))
        assert sums == pytest.approx(expected, rel=1e-12), tree
    tfile = root.TFile.Open(str(legacy_file))
    assert tfile.Get("clustersRec").GetBranch("pixels_E").GetClassName() == "vector<vector<double> >"
    assert tfile.Get("geant4_config").GetEntries() == 1 and tfile.Get("process_config").GetEntries() == 1
    tfile.Close()


DM_MACRO = r"""
// dmSKImg's truth of every cluster: vector<vector<double>> Edep_MCT, posx_MCT, posy_MCT, posz_MCT
std::vector<double> waders_dm_truth_sums(const char* path) {
  TFile file(path);
  auto* tree = static_cast<TTree*>(file.Get("clustersRec"));
  std::vector<std::vector<double>>* edep = nullptr;
  std::vector<std::vector<double>>* posx = nullptr;
  std::vector<std::vector<double>>* posz = nullptr;
  tree->SetBranchAddress("Edep_MCT", &edep);
  tree->SetBranchAddress("posx_MCT", &posx);
  tree->SetBranchAddress("posz_MCT", &posz);
  double deposits = 0, sum_e = 0, sum_x = 0, sum_z = 0;
  for (Long64_t i = 0; i < tree->GetEntries(); ++i) {
    tree->GetEntry(i);
    for (std::size_t c = 0; c < edep->size(); ++c) {
      for (std::size_t j = 0; j < edep->at(c).size(); ++j) {
        deposits += 1;
        sum_e += edep->at(c).at(j);
        sum_x += posx->at(c).at(j);
        sum_z += posz->at(c).at(j);
      }
    }
  }
  return {deposits, sum_e, sum_x, sum_z};
}
"""


@pytest.mark.root
def test_a_macro_reads_the_dm_truth_branches(tmp_path):
    root = _root()
    if root is None:
        pytest.skip("needs ROOT (nox -s root)")
    from waders.io.root.pysimdamicm import convert_to_pysimdamicm, require_pyroot

    rates = tmp_path / "rates.csv"
    rates.write_text("energies,rates\n800,1\n2000,1\n")
    out = tmp_path / "out"
    result = waders("dm", str(rates), "--nevts", "40", "-o", str(out), "--set", "CF.ccd_shape=[200,300]", "--no-images")
    assert result.returncode == 0, result.stderr
    (output,) = out.glob("waders_dm_*.root")
    data = read_clusters(output).tolist()
    truth = [m for entry in data for c in entry["clusters"] for m in c["MCT"]]
    expected = [
        len(truth),
        sum(m["Edep_MCT"] for m in truth),
        sum(m["posx_MCT"] for m in truth),
        sum(m["posz_MCT"] for m in truth),
    ]
    assert expected[0] == sum(len(entry["clusters"]) for entry in data) >= 30  # one deposit per cluster
    convert_to_pysimdamicm(output)  # what waders sim --layout pysimdamicm does
    require_pyroot()
    if not hasattr(root, "waders_dm_truth_sums"):
        root.gInterpreter.Declare(DM_MACRO)
    assert list(root.waders_dm_truth_sums(str(output))) == pytest.approx(expected, rel=1e-12)
