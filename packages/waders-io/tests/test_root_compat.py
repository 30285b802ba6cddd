"""ROOT itself reads every tree waders writes (run by ``nox -s root``; skipped without PyROOT)."""

from __future__ import annotations

import array
import warnings
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from waders.io.root import (
    describe_root,
    open_output,
    read_geant4,
    write_clusters_tree,
    write_geant4,
    write_records_tree,
)

pytestmark = pytest.mark.root

with warnings.catch_warnings():  # the PyPI 'root' package warns that it is an alpha release
    warnings.simplefilter("ignore")
    ROOT = pytest.importorskip("ROOT")
ROOT.gROOT.SetBatch(True)

ROOT.gInterpreter.Declare(
    """
    // read a char* (/C) branch the way a C++ macro does
    std::vector<std::string> waders_read_strings(TTree* tree, const char* branch) {
        char buffer[4096];
        std::vector<std::string> out;
        tree->SetBranchAddress(branch, buffer);
        for (Long64_t i = 0; i < tree->GetEntries(); ++i) { tree->GetEntry(i); out.push_back(buffer); }
        tree->ResetBranchAddresses();
        return out;
    }
    """
)

N_CLUSTERS = [2, 0, 1, 3]
LONG_TEXT = "CCDSensor_PV_" + ";".join(f"volume{i}" for i in range(60))  # > 255 characters


def make_clusters(n_clusters, seed):
    rng = np.random.default_rng(seed)
    total = sum(n_clusters)
    npix = rng.integers(1, 5, total)
    npix[0] = 1
    n_pixels = int(npix.sum())
    pixels = ak.unflatten(
        ak.unflatten(
            ak.zip(
                {
                    "pixels_x": rng.integers(1, 6000, n_pixels).astype(np.int32),
                    "pixels_y": rng.integers(1, 4000, n_pixels).astype(np.int32),
                    "pixels_E": rng.uniform(0, 10, n_pixels),
                }
            ),
            npix,
        ),
        n_clusters,
    )
    clusters = ak.unflatten(
        ak.zip(
            {
                "Energy": ak.to_numpy(ak.sum(ak.flatten(pixels.pixels_E, axis=1), axis=1)),
                "PosX": rng.uniform(0, 6000, total),
                "has_seed": rng.integers(0, 2, total).astype(bool),
                "ccd": rng.integers(1, 5, total).astype(np.int32),
            }
        ),
        n_clusters,
    )
    return clusters, pixels


def root_tree(file, name: str, entries: int):
    tree = file.Get(name)
    assert tree, f"ROOT cannot find tree {name}"
    assert tree.GetEntries() == entries, name
    return tree


def check_clusters_in_root(file, name: str, id_branch: str, ids, clusters, pixels, count_branch="Nclusters"):
    tree = root_tree(file, name, len(ids))
    first_field = clusters.fields[0]
    for i in range(len(ids)):
        tree.GetEntry(i)
        assert getattr(tree, id_branch) == ids[i]
        assert getattr(tree, count_branch) == len(clusters[i])
        for field in clusters.fields:
            expected = ak.values_astype(clusters[i][field], np.float64).tolist()
            assert [float(v) for v in getattr(tree, field)] == expected, field
        npix = list(tree.Npix)
        assert npix == ak.num(pixels[i], axis=1).tolist()
        assert tree.Npixels == sum(npix)
        for field in pixels.fields:
            assert list(getattr(tree, field)) == ak.flatten(pixels[i][field]).tolist(), field
    n_clusters, n_pixels = int(ak.sum(ak.num(clusters, axis=1))), int(ak.sum(ak.num(pixels, axis=2)))
    assert tree.Draw(first_field, "", "goff") == n_clusters
    assert tree.Draw("pixels_E", "", "goff") == n_pixels
    values = np.array([tree.GetV1()[k] for k in range(n_pixels)])
    assert values.tolist() == ak.flatten(pixels.pixels_E, axis=None).tolist()
    frame = ROOT.RDataFrame(name, file.GetName()).AsNumpy([id_branch, count_branch, first_field])
    assert frame[id_branch].tolist() == list(ids)
    assert [list(v) for v in frame[first_field]] == clusters[first_field].tolist()


def read_string(tree, branch: str) -> list[str]:
    via_macro = [str(s) for s in ROOT.waders_read_strings(tree, branch)]
    via_leaf = []
    for i in range(tree.GetEntries()):
        tree.GetEntry(i)
        via_leaf.append(str(tree.GetLeaf(branch).GetValueString()))
    assert via_macro == via_leaf
    return via_macro


def test_analysis_trees(tmp_path: Path):
    clusters, pixels = make_clusters(N_CLUSTERS, 1)
    ids = [101, 102, 103, 104]
    path = tmp_path / "ana.root"
    with open_output(path) as out:
        write_clusters_tree(out, "clustersRec", ids, clusters, pixels)
        write_records_tree(
            out,
            "info",
            {
                "RUNID": np.array(ids, dtype=np.int32),
                "total_exposure": np.array([1.5, 2.5, 3.5, 4.5]),
                "L_pedestal_mu_row_ADU": ak.Array([[1.0, 2.0], [], [3.0], [4.0, 5.0, 6.0]]),
            },
        )
        write_records_tree(
            out, "process_config", {"id": 0, "waders_version": "0.1.0", "e2eV": 3.74, "note": LONG_TEXT, "flag": True}
        )
    file = ROOT.TFile.Open(str(path))
    check_clusters_in_root(file, "clustersRec", "RUNID", ids, clusters, pixels)
    tree = file.Get("clustersRec")
    assert tree.Draw("Energy", "has_seed==1", "goff") == int(ak.sum(clusters.has_seed))
    info = root_tree(file, "info", 4)
    frame = ROOT.RDataFrame("info", str(path)).AsNumpy(["RUNID", "total_exposure"])
    assert frame["RUNID"].tolist() == ids and frame["total_exposure"].tolist() == [1.5, 2.5, 3.5, 4.5]
    arrays = []
    for i in range(4):
        info.GetEntry(i)
        arrays.append(list(info.L_pedestal_mu_row_ADU))
    assert arrays == [[1.0, 2.0], [], [3.0], [4.0, 5.0, 6.0]]
    assert info.Draw("L_pedestal_mu_row_ADU", "", "goff") == 6
    config = root_tree(file, "process_config", 1)
    assert read_string(config, "waders_version") == ["0.1.0"]
    assert read_string(config, "note") == [LONG_TEXT]
    config.GetEntry(0)
    assert config.id == 0 and config.e2eV == 3.74 and config.flag == 1
    file.Close()


def test_simulation_trees(tmp_path: Path):
    clusters, pixels = make_clusters(N_CLUSTERS, 2)
    true_clusters, true_pixels = make_clusters(N_CLUSTERS, 3)
    events = [0, 3, 4, 8]
    collections = ak.Array([[{"ccd": 1}, {"ccd": 2}], [{"ccd": 1}], [], [{"ccd": 4}]])
    pix = ak.Array(
        [
            [
                [{"pixels_x": 1, "pixels_Edep": 0.5}],
                [{"pixels_x": 2, "pixels_Edep": 1.0}, {"pixels_x": 3, "pixels_Edep": 2.0}],
            ],
            [[{"pixels_x": 4, "pixels_Edep": 4.0}]],
            [],
            [[{"pixels_x": 5, "pixels_Edep": 8.0}]],
        ]
    )
    path = tmp_path / "sim.root"
    with open_output(path) as out:
        write_clusters_tree(out, "clustersRec", events, clusters, pixels, id_branch="event")
        write_clusters_tree(out, "clustersTrue", events, true_clusters, true_pixels, id_branch="event")
        write_clusters_tree(
            out, "pixelizedEvent", events, collections, pix, id_branch="event", count_branch="Ncollections"
        )
        write_records_tree(
            out, "geant4_config", {"id": 0, "Nfile": 1, "NEvts": 1000, "pp_gps": "neutron", "ccd_mass": 0.0021}
        )
        write_records_tree(out, "process_config", {"id": 0, "Diffusion_A": 2.162e-4, "waders_version": "0.1.0"})
    file = ROOT.TFile.Open(str(path))
    check_clusters_in_root(file, "clustersRec", "event", events, clusters, pixels)
    check_clusters_in_root(file, "clustersTrue", "event", events, true_clusters, true_pixels)
    tree = root_tree(file, "pixelizedEvent", 4)
    assert tree.Draw("pixels_Edep", "", "goff") == 5
    assert tree.Draw("ccd", "", "goff") == 4
    tree.GetEntry(0)
    assert tree.Ncollections == 2 and list(tree.Npix) == [1, 2] and list(tree.pixels_Edep) == [0.5, 1.0, 2.0]
    g4 = root_tree(file, "geant4_config", 1)
    g4.GetEntry(0)
    assert g4.Nfile == 1 and g4.NEvts == 1000 and g4.ccd_mass == 0.0021
    assert read_string(g4, "pp_gps") == ["neutron"]
    config = root_tree(file, "process_config", 1)
    config.GetEntry(0)
    assert config.Diffusion_A == 2.162e-4
    assert read_string(config, "waders_version") == ["0.1.0"]
    file.Close()


# --- Geant4 layout -------------------------------------------------------------------

HITS = [2, 0, 3, 1]
EVENT_IDS = [5, 6, 7, 8]
RUN_INFO = {"NEvts": 100, "NCCDs": 4, "Seed": 42, "primaryParticle": "neutron", "volumeMass": [0.5, 1.5]}


def geant4_truth():
    rng = np.random.default_rng(5)
    total = sum(HITS)
    columns = {"EventID": np.array(EVENT_IDS, dtype=np.int32)}
    for name in ("CCDid", "pdg"):
        columns[name] = ak.unflatten(rng.integers(0, 4, total).astype(np.int32), HITS)
    for name in ("posx", "posy", "posz", "time", "Edep"):
        columns[name] = ak.unflatten(rng.uniform(0, 0.6, total), HITS)
    primaries = {"EventID": np.array([8, 5, 6], dtype=np.int32)}
    for k, name in enumerate(("posx", "posy", "posz", "momx", "momy", "momz", "energy")):
        primaries[name] = ak.Array([[1.0 + k], [2.0 + k, 3.0 + k], [4.0 + k]])
    return columns, primaries


def test_geant4_layout_written_by_waders(tmp_path: Path):
    columns, primaries = geant4_truth()
    path = write_geant4(tmp_path / "g4.root", columns, primaries, RUN_INFO)
    file = ROOT.TFile.Open(str(path))
    ccd = root_tree(file, "CCDOut", 4)
    for i in range(4):
        ccd.GetEntry(i)
        assert ccd.EventID == EVENT_IDS[i]
        for name in ("CCDid", "pdg", "posx", "posy", "posz", "time", "Edep"):
            assert list(getattr(ccd, name)) == columns[name][i].tolist(), name
    assert ccd.Draw("Edep", "", "goff") == sum(HITS)
    assert ccd.Draw("Edep", "CCDid==1", "goff") == int(ak.sum(columns["CCDid"] == 1))
    events = root_tree(file, "EventOut", 3)
    assert events.Draw("energy", "", "goff") == 4
    run = root_tree(file, "RunInfo", 1)
    run.GetEntry(0)
    assert run.NEvts == 100 and run.Seed == 42 and list(run.volumeMass) == [0.5, 1.5]
    assert read_string(run, "primaryParticle") == ["neutron"]
    file.Close()


def write_std_vector_file(path: Path, columns, primaries) -> None:
    """The layout DAMICG4 writes: std::vector branches and std::string RunInfo."""
    file = ROOT.TFile(str(path), "RECREATE")
    ccd = ROOT.TTree("CCDOut", "CCDOut")
    event_id = array.array("i", [0])
    ccd.Branch("EventID", event_id, "EventID/I")
    vectors = {
        name: ROOT.std.vector("int" if name in ("CCDid", "pdg") else "double")()
        for name in columns
        if name != "EventID"
    }
    for name, vector in vectors.items():
        ccd.Branch(name, vector)
    for i, eid in enumerate(columns["EventID"]):
        event_id[0] = int(eid)
        for name, vector in vectors.items():
            vector.clear()
            for value in columns[name][i].tolist():
                vector.push_back(value)
        ccd.Fill()
    out = ROOT.TTree("EventOut", "EventOut")
    out_id = array.array("i", [0])
    out.Branch("EventID", out_id, "EventID/I")
    prim = {name: ROOT.std.vector("double")() for name in primaries if name != "EventID"}
    for name, vector in prim.items():
        out.Branch(name, vector)
    for i, eid in enumerate(primaries["EventID"]):
        out_id[0] = int(eid)
        for name, vector in prim.items():
            vector.clear()
            for value in primaries[name][i].tolist():
                vector.push_back(value)
        out.Fill()
    run = ROOT.TTree("RunInfo", "RunInfo")
    ints = {key: array.array("i", [RUN_INFO[key]]) for key in ("NEvts", "NCCDs", "Seed")}
    for key, value in ints.items():
        run.Branch(key, value, f"{key}/I")
    particle = ROOT.std.string(RUN_INFO["primaryParticle"])
    run.Branch("primaryParticle", particle)
    mass = ROOT.std.vector("double")()
    for value in RUN_INFO["volumeMass"]:
        mass.push_back(value)
    run.Branch("volumeMass", mass)
    run.Fill()
    file.Write()
    file.Close()


def test_std_vector_layout_reads_like_counted_layout(tmp_path: Path):
    columns, primaries = geant4_truth()
    vector_path = tmp_path / "damicg4.root"
    write_std_vector_file(vector_path, columns, primaries)
    types = {t["name"]: t["types"] for t in describe_root(vector_path)["trees"]}
    assert types["CCDOut"]["Edep"] == "std::vector<double>" and types["CCDOut"]["CCDid"] == "std::vector<int32_t>"
    assert types["RunInfo"]["primaryParticle"] == "std::string"
    counted = read_geant4(write_geant4(tmp_path / "counted.root", columns, primaries, RUN_INFO))
    vector = read_geant4(vector_path)
    assert vector.events.tolist() == counted.events.tolist()
    assert vector.primaries.tolist() == counted.primaries.tolist()
    assert vector.run_info == counted.run_info == RUN_INFO
    assert ak.type(vector.events) == ak.type(counted.events)
    assert vector.events.edep.tolist() == columns["Edep"].tolist()


def test_large_baskets_compressed_in_two_frames(tmp_path: Path):
    """Baskets over PARALLEL_MIN_BYTES are two zstd frames: ROOT decompresses them like one."""
    from waders.io.root.compression import PARALLEL_MIN_BYTES

    rng = np.random.default_rng(5)
    counts = rng.integers(0, 6, 200_000)
    values = np.round(rng.normal(0.0, 3.0, int(counts.sum())), 3)
    assert values.nbytes > 2 * PARALLEL_MIN_BYTES
    path = tmp_path / "big.root"
    with open_output(path) as out:
        write_records_tree(out, "big", {"E": ak.unflatten(values, counts), "n": counts.astype(np.int32)})
    file = ROOT.TFile.Open(str(path))
    frame = ROOT.RDataFrame("big", str(path)).AsNumpy(["E", "n"])
    assert frame["n"].tolist() == counts.tolist()
    assert np.array_equal(np.concatenate([np.asarray(v) for v in frame["E"]]), values)
    file.Close()
