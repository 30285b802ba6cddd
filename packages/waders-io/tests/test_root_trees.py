from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from waders.core.errors import DataError, InputFileError
from waders.io.root import (
    ClustersTreeWriter,
    RecordsTreeWriter,
    describe_root,
    open_output,
    read_clusters,
    read_records,
    write_clusters_tree,
    write_records_tree,
)

# clusters per image: image 2 has none, image 3 has one cluster of one pixel
N_CLUSTERS = [2, 3, 0, 1, 4]
RUN_IDS = [101, 102, 103, 104, 105]


def make_clusters(n_clusters=N_CLUSTERS, seed: int = 7, npix_one: bool = True):
    """Per-cluster records and per-pixel records with exact known values."""
    rng = np.random.default_rng(seed)
    total = sum(n_clusters)
    npix = rng.integers(1, 6, total)
    if npix_one and total:
        npix[sum(n_clusters[:3])] = 1  # the cluster of image 3 has one pixel
    n_pixels = int(npix.sum())
    pixel_flat = {
        "pixels_x": rng.integers(1, 6000, n_pixels).astype(np.int32),
        "pixels_y": rng.integers(1, 4000, n_pixels).astype(np.int32),
        "pixels_E": rng.uniform(0, 10, n_pixels),
    }
    pixels = ak.unflatten(ak.unflatten(ak.zip(pixel_flat), npix), n_clusters)
    energy = ak.to_numpy(ak.sum(ak.unflatten(pixel_flat["pixels_E"], npix), axis=1))
    cluster_flat = {
        "Energy": energy,
        "PosX": rng.uniform(0, 6000, total),
        "PosY": rng.uniform(0, 4000, total),
        "RMSX": rng.uniform(0, 1e7, total),
        "RMSY": rng.uniform(0, 1e7, total),
        "Qmax": rng.uniform(0, 10, total),
        "has_seed": rng.integers(0, 2, total).astype(bool),
        "ccd": rng.integers(1, 5, total).astype(np.int32),
        "cluster_id": np.concatenate([np.arange(1, n + 1) for n in n_clusters]).astype(np.int32)
        if total
        else np.zeros(0, np.int32),
    }
    clusters = ak.unflatten(ak.zip(cluster_flat), n_clusters)
    return clusters, pixels


def as_stored(array: ak.Array) -> list:
    """Python values as waders stores them (booleans as int32)."""
    return ak.to_list(ak.values_astype(array, np.int32) if "bool" in str(array.type) else array)


def check_round_trip(data: ak.Array, ids, clusters, pixels, id_branch="RUNID"):
    assert data[id_branch].tolist() == list(ids)
    assert ak.num(data.clusters, axis=1).tolist() == ak.num(clusters, axis=1).tolist()
    for field in clusters.fields:
        assert data.clusters[field].tolist() == as_stored(clusters[field]), field
    if pixels is not None:
        assert data.clusters.Npix.tolist() == ak.num(pixels, axis=2).tolist()
        for field in pixels.fields:
            assert data.clusters.pixels[field].tolist() == pixels[field].tolist(), field


@pytest.fixture
def analysis_file(tmp_path: Path) -> Path:
    clusters, pixels = make_clusters()
    path = tmp_path / "panaSKImg_clustersRec.root"
    with open_output(path) as out:
        write_clusters_tree(out, "clustersRec", RUN_IDS, clusters, pixels)
        write_records_tree(
            out,
            "info",
            {
                "RUNID": RUN_IDS,
                "nfile": np.arange(5, dtype=np.int32),
                "total_exposure": np.linspace(1, 5, 5),
                "L_pedestal_mu_row_ADU": ak.Array([[1.0, 2.0], [3.0], [], [4.0, 5.0, 6.0], [7.0]]),
                "readout_time_row": np.tile(np.linspace(0, 1, 4), (5, 1)),
                "l_gain": np.full(5, 0.0),
            },
        )
        write_records_tree(
            out,
            "process_config",
            {
                "id": 0,
                "waders_version": "0.1.0",
                "waders_commit": "90a2e9b",
                "e2eV": 3.74,
                "PedestalSubtractionProcess_n_sigma_to_mask": -1.0,
                "ClusterFinderProcess_max_nearest_neighbor": 1,
                "ClusterFinderProcess_sequence_id": np.int32(7),
            },
        )
    return path


def test_analysis_clusters_round_trip(analysis_file):
    clusters, pixels = make_clusters()
    data = read_clusters(analysis_file)
    check_round_trip(data, RUN_IDS, clusters, pixels)
    assert data.fields == ["RUNID", "clusters"]
    assert data.clusters.fields == [*clusters.fields, "Npix", "pixels"]
    assert data.clusters[2].tolist() == []  # an image without clusters
    one = data.clusters[3][0]
    assert one.Npix == 1 and len(one.pixels) == 1


def test_branch_layout_matches_pysimdamicm_names(analysis_file):
    with uproot.open(analysis_file) as f:
        tree = f["clustersRec"]
        assert tree.keys()[:2] == ["RUNID", "Nclusters"]
        assert tree["RUNID"].typename == "int32_t" and tree["Nclusters"].typename == "int32_t"
        assert tree["Energy"].title == "Energy[Nclusters]/D"
        assert tree["has_seed"].title == "has_seed[Nclusters]/I"
        assert tree["Npix"].title == "Npix[Nclusters]/I"
        assert tree["pixels_E"].title == "pixels_E[Npixels]/D"
        assert tree["pixels_x"].title == "pixels_x[Npixels]/I"
        assert tree["Nclusters"].array().tolist() == N_CLUSTERS
        npix = tree["Npix"].array()
        assert tree["Npixels"].array().tolist() == ak.sum(npix, axis=1).tolist()


def test_records_round_trip(analysis_file):
    info = read_records(analysis_file, "info")
    assert info.fields == ["RUNID", "nfile", "total_exposure", "L_pedestal_mu_row_ADU", "readout_time_row", "l_gain"]
    assert info.RUNID.tolist() == RUN_IDS
    assert info.L_pedestal_mu_row_ADU.tolist() == [[1.0, 2.0], [3.0], [], [4.0, 5.0, 6.0], [7.0]]
    assert info.readout_time_row.tolist() == [np.linspace(0, 1, 4).tolist()] * 5
    config = read_records(analysis_file, "process_config")
    assert config.tolist() == [
        {
            "id": 0,
            "waders_version": "0.1.0",
            "waders_commit": "90a2e9b",
            "e2eV": 3.74,
            "PedestalSubtractionProcess_n_sigma_to_mask": -1.0,
            "ClusterFinderProcess_max_nearest_neighbor": 1,
            "ClusterFinderProcess_sequence_id": 7,
        }
    ]
    with uproot.open(analysis_file) as f:
        assert f["process_config"]["waders_version"].typename == "char*"
        assert f["process_config"]["ClusterFinderProcess_sequence_id"].typename == "int32_t"
        assert f["process_config"]["id"].typename == "int64_t"  # Python ints are int64 (as given)
        assert f["info"]["L_pedestal_mu_row_ADU"].title == "L_pedestal_mu_row_ADU[N_L_pedestal_mu_row_ADU]/D"


def test_long_and_empty_strings(tmp_path):
    texts = ["", "x", "a" * 254, "b" * 255, "c" * 1000, "unicode: \u00b5m, \u03c3"]
    with open_output(tmp_path / "s.root") as out:
        write_records_tree(out, "process_config", {"id": np.arange(len(texts)), "text": ak.Array(texts)})
    assert read_records(tmp_path / "s.root", "process_config").text.tolist() == texts


def test_simulation_trees(tmp_path):
    clusters, pixels = make_clusters(seed=1)
    true_clusters, true_pixels = make_clusters(seed=2)
    events = [0, 5, 6, 9, 12]
    pp = ak.Array([[[{"pp_posx": 1.0, "pp_energy": 2.0}]] * n for n in N_CLUSTERS])
    collections = ak.Array([[{"ccd": 1, "img": 0}, {"ccd": 3, "img": 0}], [{"ccd": 2, "img": 1}], [], [], []])
    pix_event = ak.Array(
        [
            [
                [{"pixels_x": 0, "pixels_Edep": 1.5}],
                [{"pixels_x": 4, "pixels_Edep": 0.5}, {"pixels_x": 5, "pixels_Edep": 2.0}],
            ],
            [[{"pixels_x": 7, "pixels_Edep": 3.0}]],
            [],
            [],
            [],
        ]
    )
    path = tmp_path / "sim.root"
    with open_output(path) as out:
        write_clusters_tree(out, "clustersRec", events, clusters, pixels, lists={"pp": pp}, id_branch="event")
        write_clusters_tree(out, "clustersTrue", events, true_clusters, true_pixels, id_branch="event")
        write_clusters_tree(
            out, "pixelizedEvent", events, collections, pix_event, id_branch="event", count_branch="Ncollections"
        )
        write_records_tree(out, "geant4_config", {"id": 0, "Nfile": 1, "NEvts": 1000, "pp_gps": "neutron"})
        write_records_tree(out, "process_config", {"id": 0, "Diffusion_A": 2.162e-4, "waders_version": "0.1.0"})
    rec = read_clusters(path)
    check_round_trip(rec, events, clusters, pixels, id_branch="event")
    assert rec.clusters.pp.tolist() == pp.tolist()
    check_round_trip(read_clusters(path, "clustersTrue"), events, true_clusters, true_pixels, id_branch="event")
    pe = read_clusters(path, "pixelizedEvent", count_branch="Ncollections")
    check_round_trip(pe, events, collections, pix_event, id_branch="event")
    with uproot.open(path) as f:
        assert f["clustersRec"]["pp_posx"].title == "pp_posx[N_pp_total]/D"
        assert f["clustersRec"]["N_pp"].title == "N_pp[Nclusters]/I"
        assert f["pixelizedEvent"]["pixels_Edep"].title == "pixels_Edep[Npixels]/D"
    assert [t["name"] for t in describe_root(path)["trees"]] == [
        "clustersRec",
        "clustersTrue",
        "pixelizedEvent",
        "geant4_config",
        "process_config",
    ]


def test_streaming_writer_equals_one_shot(tmp_path):
    clusters, pixels = make_clusters([3, 0, 2, 5, 1, 0, 4, 2] * 5, seed=4, npix_one=False)
    ids = np.arange(40)
    with open_output(tmp_path / "stream.root") as out:
        writer = ClustersTreeWriter(out, "clustersRec", max_entries=3, max_items=7)
        for start in range(0, 40, 6):
            writer.extend(ids[start : start + 6], clusters[start : start + 6], pixels[start : start + 6])
        assert writer.num_entries == 40
    with open_output(tmp_path / "once.root") as out:
        write_clusters_tree(out, "clustersRec", ids, clusters, pixels)
    a, b = read_clusters(tmp_path / "stream.root"), read_clusters(tmp_path / "once.root")
    assert a.tolist() == b.tolist()
    check_round_trip(a, ids, clusters, pixels)
    with uproot.open(tmp_path / "stream.root") as f:
        assert f["clustersRec"]["pixels_E"].num_baskets > 10
    part = read_clusters(tmp_path / "stream.root", entry_start=5, entry_stop=9)
    assert part.tolist() == a[5:9].tolist()


def test_empty_first_chunk_then_data(tmp_path):
    clusters, pixels = make_clusters()
    with open_output(tmp_path / "e.root") as out:
        writer = ClustersTreeWriter(out, "clustersRec")
        writer.extend([100], clusters[2:3], pixels[2:3])  # one image without clusters
        writer.extend(RUN_IDS, clusters, pixels)
    data = read_clusters(tmp_path / "e.root")
    check_round_trip(data[1:], RUN_IDS, clusters, pixels)
    assert data[0].tolist() == {"RUNID": 100, "clusters": []}


def test_only_empty_images(tmp_path):
    clusters, pixels = make_clusters([0, 0, 0])
    with open_output(tmp_path / "z.root") as out:
        write_clusters_tree(out, "clustersRec", [1, 2, 3], clusters, pixels)
    data = read_clusters(tmp_path / "z.root")
    assert data.RUNID.tolist() == [1, 2, 3] and data.clusters.tolist() == [[], [], []]


def test_mapping_input_and_given_npix(tmp_path):
    clusters, pixels = make_clusters()
    columns = {field: clusters[field] for field in clusters.fields}
    columns["Npix"] = ak.num(pixels, axis=2)
    with open_output(tmp_path / "m.root") as out:
        write_clusters_tree(out, "clustersRec", RUN_IDS, columns, {f: pixels[f] for f in pixels.fields})
    check_round_trip(read_clusters(tmp_path / "m.root"), RUN_IDS, clusters, pixels)


def test_later_chunk_types_are_cast_or_rejected(tmp_path):
    clusters, pixels = make_clusters()
    with open_output(tmp_path / "c.root") as out:
        writer = ClustersTreeWriter(out, "clustersRec")
        writer.extend(RUN_IDS, clusters, pixels)
        # int PosX where float was written first: cast without loss
        again = ak.with_field(clusters, ak.values_astype(clusters.ccd, np.int64), "PosX")
        writer.extend(RUN_IDS, again, pixels)
        # float ccd where int32 was written first: refused
        bad = ak.with_field(clusters, clusters.PosX, "ccd")
        with pytest.raises(DataError, match=r"column 'ccd' is jagged float64 but was jagged int32"):
            writer.extend(RUN_IDS, bad, pixels)
        with pytest.raises(DataError, match=r"columns differ from the first entries \(missing: Qmax; new: -\)"):
            writer.extend(RUN_IDS, clusters[[f for f in clusters.fields if f != "Qmax"]], pixels)
    data = read_clusters(tmp_path / "c.root")
    assert data.clusters.PosX[5:].tolist() == ak.values_astype(clusters.ccd, np.float64).tolist()


# --- errors --------------------------------------------------------------------------


def test_inconsistent_inputs_are_data_errors(tmp_path):
    clusters, pixels = make_clusters()
    with open_output(tmp_path / "bad.root") as out:
        with pytest.raises(DataError, match="5 ids but 4 entries"):
            write_clusters_tree(out, "a", RUN_IDS, clusters[:4], pixels[:4])
        with pytest.raises(DataError, match="'pixels_x' has a different number of clusters"):
            write_clusters_tree(out, "b", RUN_IDS, clusters, pixels[[1, 0, 2, 3, 4]])
        wrong = ak.with_field(clusters, ak.num(pixels, axis=2) + 1, "Npix")
        with pytest.raises(DataError, match="cluster field 'Npix' disagrees with the number of pixels entries"):
            write_clusters_tree(out, "c", RUN_IDS, wrong, pixels)
        with pytest.raises(DataError, match="branch names used twice: RUNID"):
            write_clusters_tree(out, "d", RUN_IDS, ak.with_field(clusters, clusters.ccd, "RUNID"), pixels)
        names = ak.Array([["a"] * n for n in N_CLUSTERS])
        with pytest.raises(DataError, match=r"column .e\.name. has type var \* string, which uproot cannot write"):
            write_clusters_tree(out, "e", RUN_IDS, ak.with_field(clusters, names, "name"), pixels)
        with pytest.raises(DataError, match="missing values"):
            write_records_tree(out, "f", {"x": ak.Array([1.0, None])})
        with pytest.raises(DataError, match="which uproot cannot write as a TTree branch"):
            write_records_tree(out, "g", {"x": ak.Array([[[1.0]], [[2.0, 3.0]]])})
        with pytest.raises(DataError, match="different numbers of entries"):
            write_records_tree(out, "h", {"x": [1.0, 2.0], "y": [1.0]})
        with pytest.raises(DataError, match="must be a 1-D array of integers"):
            write_clusters_tree(out, "i", [1.5] * 5, clusters, pixels)
        with pytest.raises(DataError, match="share the counter Nhits but differ in length"):
            RecordsTreeWriter(out, "j", counters={"a": "Nhits", "b": "Nhits"}).extend(
                {"a": ak.Array([[1.0]]), "b": ak.Array([[1.0, 2.0]])}
            )


def test_describe_root(analysis_file, tmp_path):
    info = describe_root(analysis_file)
    assert set(info) >= {"format", "trees"} and info["format"] == "root"
    trees = {t["name"]: t for t in info["trees"]}
    assert list(trees) == ["clustersRec", "info", "process_config"]
    assert trees["clustersRec"]["entries"] == 5 and trees["process_config"]["entries"] == 1
    assert trees["clustersRec"]["branches"][:3] == ["RUNID", "Nclusters", "Energy"]
    assert trees["clustersRec"]["types"]["pixels_E"] == "double[]"
    assert set(trees["info"]) == {"name", "entries", "branches", "types"}
    with uproot.recreate(tmp_path / "obj.root") as f:
        f["note"] = "a TObjString"
        f.mkdir("sub").mktree("t", {"a": np.arange(3)})
    other = describe_root(tmp_path / "obj.root")
    assert other["trees"] == [{"name": "sub/t", "entries": 3, "branches": ["a"], "types": {"a": "int64_t"}}]
    assert other["objects"] == [{"name": "note", "class": "TObjString"}]


@pytest.mark.parametrize("reader", [describe_root, read_clusters, lambda p: read_records(p, "info")])
def test_bad_files(tmp_path, reader):
    with pytest.raises(InputFileError, match=r"missing\.root: file not found; check the path$"):
        reader(tmp_path / "missing.root")
    (tmp_path / "a.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 100)
    with pytest.raises(InputFileError, match=r"a\.fits: not a ROOT file \(first bytes b'SIMP'\)"):
        reader(tmp_path / "a.fits")
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputFileError, match=r"dir: not a file"):
        reader(tmp_path / "dir")


def test_missing_tree(analysis_file):
    with pytest.raises(InputFileError) as err:
        read_clusters(analysis_file, "clustersTrue")
    assert str(err.value) == (
        f"{analysis_file} has no tree 'clustersTrue' (trees: clustersRec, info, process_config); "
        "check that this is the right kind of ROOT file"
    )
    with pytest.raises(InputFileError, match="tree info lacks branches Nclusters"):
        read_clusters(analysis_file, "info")


# --- atomic output -------------------------------------------------------------------


def test_failed_writer_leaves_no_file(tmp_path):
    clusters, pixels = make_clusters()
    path = tmp_path / "out" / "clusters.root"

    def crash():
        with open_output(path) as out:
            write_clusters_tree(out, "clustersRec", RUN_IDS, clusters, pixels)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        crash()
    assert list(path.parent.iterdir()) == []


def test_failed_writer_keeps_previous_file(analysis_file):
    before = analysis_file.read_bytes()
    with pytest.raises(DataError), open_output(analysis_file) as out:
        write_records_tree(out, "info", {"x": ak.Array([1.0, None])})
    assert analysis_file.read_bytes() == before
    assert [p.name for p in analysis_file.parent.iterdir()] == [analysis_file.name]


def test_large_baskets_are_two_zstd_frames_read_back_exactly(tmp_path):
    import cramjam
    import uproot

    from waders.io.root.compression import PARALLEL_MIN_BYTES, ParallelZSTD

    data = np.round(np.random.default_rng(4).normal(0.0, 3.0, 3 * PARALLEL_MIN_BYTES // 8), 3).tobytes()
    packed = ParallelZSTD(1).compress(data)
    assert bytes(packed).count(b"\x28\xb5\x2f\xfd") == 2  # two frames
    assert bytes(cramjam.zstd.decompress(packed, output_len=len(data))) == data
    small = data[: PARALLEL_MIN_BYTES // 2]
    assert bytes(ParallelZSTD(1).compress(small)) == bytes(uproot.ZSTD(1).compress(small))  # one frame
    counts = np.random.default_rng(5).integers(0, 6, 300_000)
    values = np.random.default_rng(6).normal(size=int(counts.sum()))
    path = tmp_path / "big.root"
    with open_output(path) as out:
        write_records_tree(out, "big", {"E": ak.unflatten(values, counts)})
    back = uproot.open(path)["big"]["E"].array()
    assert np.array_equal(ak.to_numpy(ak.flatten(back)), values)
    assert ak.to_list(ak.num(back)) == counts.tolist()
