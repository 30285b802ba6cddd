from __future__ import annotations

import math
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from waders.core.detector import Detector
from waders.core.errors import DataError, InputFileError
from waders.core.hits import HitCollection
from waders.io.root import (
    count_geant4_events,
    describe_root,
    iter_geant4,
    read_geant4,
    read_run_info,
    write_geant4,
)

# hits per event: events 11 and 14 have none; event 16 has hits in four CCDs
N_HITS = [3, 0, 1, 4, 0, 2, 5]
EVENT_IDS = [10, 11, 12, 13, 14, 15, 16]
RUN_INFO = {
    "NEvts": 1000,
    "NCCDs": 4,
    "Seed": 12345,
    "primaryParticle": "neutron",
    "primaryIon": "",
    "simulatedVolume": "CCDSensor_PV",
    "concatedVolumeNames": "CCDSensor_PV_0;CCDSensor_PV_1;World",
    "volumeMass": [0.0021, 0.0021, 10.5],
    "volumeDensity": [2.33, 2.33, 1.2],
}


def truth(seed: int = 1) -> dict[str, ak.Array | np.ndarray]:
    """Point deposits at known positions, energies and depths (Geant4 frame, mm/eV/s)."""
    rng = np.random.default_rng(seed)
    total = sum(N_HITS)
    flat = {
        "CCDid": (np.arange(total) % 4).astype(np.int32),
        "pdg": rng.choice([11, 22, 2112, 1000140280], total).astype(np.int32),
        "posx": rng.uniform(0, 90, total),
        "posy": rng.uniform(0, 60, total),
        "posz": rng.uniform(0, 0.675, total),
        "time": rng.uniform(0, 1e-3, total),
        "Edep": rng.uniform(1, 5e4, total),
    }
    columns: dict[str, ak.Array | np.ndarray] = {"EventID": np.array(EVENT_IDS, dtype=np.int32)}
    columns.update({name: ak.unflatten(values, N_HITS) for name, values in flat.items()})
    return columns


def primaries_truth() -> dict[str, ak.Array | np.ndarray]:
    """EventOut in a different order than CCDOut, without event 12 and with an extra event 99."""
    ids = [16, 99, 10, 15, 11, 13, 14]
    n = [2, 1, 1, 1, 3, 1, 1]
    total = sum(n)
    columns: dict[str, ak.Array | np.ndarray] = {"EventID": np.array(ids, dtype=np.int32)}
    for k, name in enumerate(["posx", "posy", "posz", "momx", "momy", "momz", "energy"]):
        columns[name] = ak.unflatten(np.arange(total, dtype=np.float64) + 100 * k + 0.5, n)
    return columns


@pytest.fixture
def g4file(tmp_path: Path) -> Path:
    return write_geant4(tmp_path / "g4.root", truth(), primaries_truth(), RUN_INFO)


def expected_z(posz: ak.Array, detector: Detector) -> ak.Array:
    return detector.ccd_thickness - posz if detector.invert_ccd_z_values else posz


def check_hits(hits: HitCollection, columns: dict, start: int = 0, stop: int | None = None, detector=None) -> None:
    detector = detector or Detector()
    sel = slice(start, stop)
    assert hits.event_id.tolist() == np.asarray(columns["EventID"])[sel].tolist()
    assert hits.n_hits.tolist() == N_HITS[sel]
    for branch, field in [("CCDid", "ccd"), ("pdg", "pdg"), ("posx", "x"), ("posy", "y"), ("time", "time")]:
        assert hits.events[field].tolist() == columns[branch][sel].tolist(), field
    assert hits.events.edep.tolist() == columns["Edep"][sel].tolist()
    assert hits.events.z.tolist() == expected_z(columns["posz"][sel], detector).tolist()
    assert str(ak.type(hits.events.ccd)).endswith("int32") and str(ak.type(hits.events.edep)).endswith("float64")


def test_read_geant4_gives_every_value(g4file):
    hits = read_geant4(g4file)
    assert isinstance(hits, HitCollection) and len(hits) == 7
    check_hits(hits, truth())
    assert hits.total_energy().tolist() == pytest.approx([sum(e) for e in truth()["Edep"].tolist()], rel=1e-15)
    assert count_geant4_events(g4file) == 7


@pytest.mark.parametrize("step_size", [1, 2, 3, 6, 7, 100])
def test_chunks_do_not_depend_on_step_size(g4file, step_size):
    chunks = list(iter_geant4(g4file, step_size=step_size))
    assert len(chunks) == math.ceil(7 / step_size)
    assert all(len(chunk) <= step_size for chunk in chunks)
    merged = HitCollection(
        ak.concatenate([c.events for c in chunks]), ak.concatenate([c.primaries for c in chunks]), chunks[0].run_info
    )
    check_hits(merged, truth())
    whole = read_geant4(g4file)
    assert merged.events.tolist() == whole.events.tolist()
    assert merged.primaries.tolist() == whole.primaries.tolist()


@pytest.mark.parametrize(("start", "stop", "step"), [(2, 6, 3), (0, 1, 5), (5, None, 1), (3, 3, 2)])
def test_entry_range(g4file, start, stop, step):
    chunks = list(iter_geant4(g4file, step_size=step, entry_start=start, entry_stop=stop))
    events = [e for c in chunks for e in c.event_id.tolist()]
    assert events == EVENT_IDS[start:stop]
    assert all(len(c) <= step for c in chunks)
    if events:
        check_hits(read_geant4(g4file, entry_start=start, entry_stop=stop), truth(), start, stop)


@pytest.mark.parametrize(
    "detector",
    [Detector(), Detector(ccd_thickness=1.0), Detector(invert_ccd_z_values=False)],
    ids=["default", "thick", "no-inversion"],
)
def test_depth_convention(g4file, detector):
    posz = truth()["posz"]
    hits = read_geant4(g4file, detector=detector)
    assert hits.events.z.tolist() == expected_z(posz, detector).tolist()
    for chunk_start, chunk in zip(range(0, 7, 2), iter_geant4(g4file, step_size=2, detector=detector), strict=True):
        check_hits(chunk, truth(), chunk_start, chunk_start + 2, detector)


@pytest.mark.parametrize("step_size", [1, 2, 100])
def test_primaries_are_aligned_by_event_id(g4file, step_size):
    prim = primaries_truth()
    by_id = {
        int(eid): {k: prim[k][i].tolist() for k in prim if k != "EventID"} for i, eid in enumerate(prim["EventID"])
    }
    chunks = list(iter_geant4(g4file, step_size=step_size))
    primaries = ak.concatenate([c.primaries for c in chunks])
    assert primaries.event_id.tolist() == EVENT_IDS
    for record in primaries.tolist():
        eid = record.pop("event_id")
        if eid in by_id:
            assert record == by_id[eid]
        else:  # event 12 has no EventOut entry
            assert eid == 12 and all(v == [] for v in record.values())
    assert set(primaries.fields) == {"event_id", "posx", "posy", "posz", "momx", "momy", "momz", "energy"}


def test_run_info(g4file):
    hits = read_geant4(g4file)
    assert hits.run_info == RUN_INFO
    assert read_run_info(g4file) == RUN_INFO
    for chunk in iter_geant4(g4file, step_size=3):
        assert chunk.run_info == RUN_INFO


def test_trees_of_written_file(g4file):
    info = describe_root(g4file)
    trees = {t["name"]: t for t in info["trees"]}
    assert list(trees) == ["CCDOut", "EventOut", "RunInfo"]
    assert trees["CCDOut"]["entries"] == 7 and trees["EventOut"]["entries"] == 7 and trees["RunInfo"]["entries"] == 1
    assert trees["CCDOut"]["types"]["Edep"] == "double[]" and trees["CCDOut"]["types"]["CCDid"] == "int32_t[]"
    with uproot.open(g4file) as f:
        assert f["CCDOut"]["posx"].title == "posx[Nhits]/D"
        assert f["RunInfo"]["primaryParticle"].typename == "char*"


def test_optional_trees_absent(tmp_path):
    path = write_geant4(tmp_path / "bare.root", truth())
    hits = read_geant4(path)
    check_hits(hits, truth())
    assert hits.primaries is None and hits.run_info == {}


def test_uproot_default_counted_layout(tmp_path):
    """The layout uproot writes by default (one counter nX per branch) reads the same."""
    columns = truth()
    path = tmp_path / "uproot_default.root"
    with uproot.recreate(path) as f:
        f.mktree("CCDOut", columns)
        f.mktree("EventOut", primaries_truth())
    with uproot.open(path) as f:
        assert "nposx" in set(f["CCDOut"].keys()) and f["CCDOut"]["posx"].title == "posx[nposx]/D"
    hits = read_geant4(path)
    check_hits(hits, columns)
    assert (
        hits.primaries.tolist()
        == read_geant4(write_geant4(tmp_path / "w.root", columns, primaries_truth())).primaries.tolist()
    )


def test_scalar_primaries_and_double_pdg(tmp_path):
    """One primary per event stored as scalars, pdg stored as double: both accepted."""
    columns = truth()
    columns["pdg"] = ak.values_astype(columns["pdg"], np.float64)
    primaries = {"EventID": np.array(EVENT_IDS), "energy": np.arange(7, dtype=np.float64)}
    hits = read_geant4(write_geant4(tmp_path / "s.root", columns, primaries))
    assert hits.events.pdg.tolist() == truth()["pdg"].tolist()
    assert str(ak.type(hits.events.pdg)).endswith("int32")
    assert hits.primaries.energy.tolist() == [[float(i)] for i in range(7)]


def test_many_events_many_baskets(tmp_path):
    n = 5000
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 6, n)
    total = int(counts.sum())
    columns = {"EventID": np.arange(n, dtype=np.int32)}
    for name in ["CCDid", "pdg"]:
        columns[name] = ak.unflatten(rng.integers(0, 10, total).astype(np.int32), counts)
    for name in ["posx", "posy", "posz", "time", "Edep"]:
        columns[name] = ak.unflatten(rng.uniform(0, 0.6, total), counts)
    path = write_geant4(tmp_path / "big.root", columns, max_items=2000)
    with uproot.open(path) as f:
        assert f["CCDOut"]["Edep"].num_baskets >= total // 2000
    chunks = list(iter_geant4(path, step_size=777))
    assert [len(c) for c in chunks] == [777] * 6 + [n - 6 * 777]
    edep = ak.concatenate([c.events.edep for c in chunks])
    assert edep.tolist() == columns["Edep"].tolist()


def test_hit_collection_round_trip(tmp_path):
    detector = Detector(invert_ccd_z_values=False)
    hits = read_geant4(write_geant4(tmp_path / "a.root", truth(), primaries_truth(), RUN_INFO), detector=detector)
    again = read_geant4(write_geant4(tmp_path / "b.root", hits, detector=detector), detector=detector)
    assert again.events.tolist() == hits.events.tolist()
    assert again.primaries.tolist() == hits.primaries.tolist()
    assert again.run_info == hits.run_info
    # with the default inversion the depth survives up to rounding of thickness - (thickness - z)
    default = read_geant4(write_geant4(tmp_path / "c.root", read_geant4(tmp_path / "a.root")))
    assert ak.all(abs(default.events.z - read_geant4(tmp_path / "a.root").events.z) < 1e-15)


# --- errors ------------------------------------------------------------------------


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError) as err:
        read_geant4(tmp_path / "nope.root")
    assert one_line(err) == f"{tmp_path / 'nope.root'}: file not found; check the path"


def test_not_a_root_file(tmp_path):
    path = tmp_path / "text.root"
    path.write_text("hello, this is not ROOT\n")
    with pytest.raises(InputFileError) as err:
        count_geant4_events(path)
    assert one_line(err).startswith(f"{path}: not a ROOT file (first bytes b'hell')")


def test_truncated_root_file(tmp_path, g4file):
    path = tmp_path / "truncated.root"
    path.write_bytes(g4file.read_bytes()[:200])
    with pytest.raises(InputFileError) as err:
        read_geant4(path)
    assert one_line(err).startswith(f"{path}: damaged or truncated ROOT file")


def test_missing_tree(tmp_path):
    path = tmp_path / "norun.root"
    with uproot.recreate(path) as f:
        f.mktree("RunInfo", {"NEvts": np.array([3], dtype=np.int32)})
        f.mktree("Other", {"a": np.array([1.0])})
    with pytest.raises(InputFileError) as err:
        iter_geant4(path)  # raises at once, not at the first chunk
    assert one_line(err) == (
        f"{path} has no tree 'CCDOut' (trees: RunInfo, Other); check that this is the right kind of ROOT file"
    )


def test_missing_branches(tmp_path):
    columns = truth()
    del columns["pdg"], columns["Edep"]
    path = write_geant4(tmp_path / "nobranch.root", columns)
    with pytest.raises(InputFileError) as err:
        read_geant4(path)
    assert one_line(err).startswith(f"{path}: tree CCDOut lacks branches pdg, Edep; its branches are EventID, Nhits,")


def test_eventout_without_eventid(tmp_path):
    path = write_geant4(tmp_path / "noid.root", truth(), {"energy": ak.Array([[1.0]] * 7)})
    with pytest.raises(InputFileError, match=r"tree EventOut lacks branches EventID"):
        read_geant4(path)


def test_per_hit_branches_of_different_lengths(tmp_path):
    path = tmp_path / "ragged.root"
    columns = truth()
    columns["time"] = ak.Array([[0.0]] * 7)
    with uproot.recreate(path) as f:
        f.mktree("CCDOut", columns)
    with pytest.raises(InputFileError) as err:
        read_geant4(path)
    assert one_line(err).startswith(f"{path}: tree CCDOut event 10 has time and Edep of different lengths")


def test_non_jagged_hit_branch(tmp_path):
    columns = truth()
    columns["Edep"] = np.ones(7)
    path = write_geant4(tmp_path / "flat.root", columns)
    with pytest.raises(InputFileError, match=r"branch CCDOut\.Edep has type float64, expected one number per hit"):
        read_geant4(path)


def test_writer_rejects_ragged_hits(tmp_path):
    columns = truth()
    columns["time"] = ak.Array([[0.0]] * 7)
    with pytest.raises(DataError, match="share the counter Nhits"):
        write_geant4(tmp_path / "bad.root", columns)
    assert list(tmp_path.iterdir()) == []


def test_writer_is_atomic(tmp_path, g4file):
    before = g4file.read_bytes()
    with pytest.raises(DataError):  # RunInfo fails after CCDOut and EventOut were written
        write_geant4(g4file, truth(), primaries_truth(), {"NEvts": 3, "bad": {"nested": 1}})
    assert g4file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g4.root"]


def test_bad_step_size(g4file):
    with pytest.raises(ValueError, match="step_size"):
        iter_geant4(g4file, step_size=0)
