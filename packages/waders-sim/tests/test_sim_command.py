"""waders sim end to end: Geant4-layout inputs with known deposits, outputs, determinism, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from waders.core.hits import HitCollection
from waders.data import PYSIMDAMICM_CONFIGS
from waders.data import path as data_path
from waders.io.root import describe_root, read_clusters, read_records, write_geant4

CONFIGS = data_path(PYSIMDAMICM_CONFIGS)
PITCH = 0.015  # mm
E2EV = 3.77


def waders(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waders.core", *args], capture_output=True, text=True, timeout=300)


def sim_config(tmp_path: Path, **extra: dict) -> Path:
    config = {
        "detector_response": {"PixelizeSignal": {"active": 1}, **extra},
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
        "CF": {"ccd_shape": [200, 300], "e2eV": E2EV, "ccd_thickness": 0.675},
    }
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def point_events(tmp_path):
    """Events with one or two point deposits at known pixels; event 3 lies outside the CCD."""
    rows = [(10, 20), (50, 60), (100, 150), (-5, 10), (199, 299)]
    counts = np.array([1, 2, 1, 1, 1])
    x, y, edep = [], [], []
    for (row, col), n in zip(rows, counts, strict=True):
        for k in range(n):
            x.append((col + 0.5) * PITCH + (k * 10 * PITCH))  # the second deposit 10 pixels away
            y.append((row + 0.5) * PITCH)
            edep.append(1000.0 * (k + 1))
    n = len(x)
    hits = {
        "x": np.array(x), "y": np.array(y), "z": np.full(n, 0.3), "time": np.zeros(n), "edep": np.array(edep),
        "ccd": np.ones(n, dtype=np.int32), "pdg": np.full(n, 11, dtype=np.int32),
    }  # fmt: skip
    path = tmp_path / "g4.root"
    write_geant4(path, HitCollection.from_arrays(np.arange(5), counts, hits), run_info={"NEvts": 5, "Seed": 7})
    return path


def test_point_deposits_become_clusters_at_their_pixels(tmp_path, point_events):
    config = sim_config(tmp_path)
    result = waders("sim", "--json", str(config), "--g4file", str(point_events), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "events outside the CCD" in result.stdout  # reported, not silently dropped
    (output,) = (tmp_path / "out").glob("*.root")
    trees = {t["name"]: t["entries"] for t in describe_root(output)["trees"]}
    assert {"clustersRec", "clustersTrue", "pixelizedEvent", "geant4_config", "process_config"} <= set(trees)
    rec = read_clusters(output).tolist()
    by_event = {e["event"]: e["clusters"] for e in rec}
    assert set(by_event) == {0, 1, 2, 4}
    assert len(by_event[1]) == 2  # two deposits 10 pixels apart: two clusters
    (first,) = by_event[0]
    assert (first["PosX"], first["PosY"]) == (21.0, 11.0)  # 1-based column / row of the deposit
    assert first["Energy"] == pytest.approx(1.0)  # keV: the deposit, no noise
    energies = sorted(c["Energy"] for c in by_event[1])
    assert energies == pytest.approx([1.0, 2.0])
    (corner,) = by_event[4]
    assert (corner["PosX"], corner["PosY"]) == (300.0, 200.0)  # the last pixel of the CCD is inside
    config_tree = read_records(output, "geant4_config").tolist()[0]
    assert config_tree["NEvts"] == 5


def test_results_do_not_depend_on_the_chunk_size(tmp_path, point_events):
    config = sim_config(tmp_path)
    outputs = []
    for chunk in (1, 2, 1000):
        out = tmp_path / f"out{chunk}"
        result = waders("sim", "--json", str(config), "--g4file", str(point_events), "-o", str(out),
                        "--chunk-size", str(chunk), "--seed", "3")  # fmt: skip
        assert result.returncode == 0, result.stderr
        (path,) = out.glob("*.root")
        outputs.append(read_clusters(path).tolist())
    assert outputs[0] == outputs[1] == outputs[2]


def test_bad_inputs_are_one_line_errors(tmp_path):
    not_root = tmp_path / "g4.root"
    not_root.write_text("nothing")
    config = sim_config(tmp_path)
    result = waders("sim", "--json", str(config), "--g4file", str(not_root), "-o", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert str(not_root) in result.stderr
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"detector_response": {"PixelizeSignal": {"shift_pixel_in_z": 0, "active": 1}}}))
    result = waders("sim", "--json", str(typo), "--check")
    assert result.returncode == 2
    assert "unknown parameter 'shift_pixel_in_z' in PixelizeSignal" in result.stderr


def test_the_pysimdamicm_simulation_configuration_loads_and_runs(tmp_path, point_events):
    config = CONFIGS / "psimulCCDimg_config_file.json"
    result = waders("sim", "--json", str(config), "--check")
    assert result.returncode == 0, result.stderr
    assert "PixelizeSignal -> ClusterFinder" in result.stdout
    result = waders("sim", "--json", str(config), "--g4file", str(point_events), "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr


def test_parallel_simulation_gives_the_serial_output(tmp_path, point_events):
    config = sim_config(tmp_path)
    trees = {}
    for executor in ("serial", "processes", "dask"):
        out = tmp_path / executor
        args = ["sim", "--json", str(config), "--g4file", str(point_events), "-o", str(out), "--seed", "5"]
        if executor != "serial":
            args += ["--executor", executor, "--workers", "2", "--files-per-task", "2"]  # 2 events per task
        result = waders(*args)
        assert result.returncode == 0, result.stderr
        (path,) = out.glob("*.root")
        trees[executor] = {
            name: json.dumps(read_clusters(path, name, count_branch=count).tolist())
            for name, count in (("clustersRec", "Nclusters"), ("clustersTrue", "Nclusters"),
                                ("pixelizedEvent", "Ncollections"))
        }  # fmt: skip
        assert not list(out.glob(".parts_*"))  # the part files are removed
    assert trees["processes"] == trees["serial"]
    assert trees["dask"] == trees["serial"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ElectronicNoise.active=1"], "ClusterFinder.spr_threshold is needed when noise processes are active"),
        (["DarkCurrent.active=1"], "ClusterFinder.spr_threshold is needed when noise processes are active"),
        (["PixelizeSignal.active=0"], "ClusterFinder needs PixelizeSignal earlier in the chain"),
        (["PixelSaturation.active=1"], "PixelSaturation needs detector.ADC2eV"),
        (["PasteClusterProcess.active=1"], "PasteClusterProcess.blank_dir is required"),
        (
            ["ElectronicNoise.active=1", "DarkCurrent.active=1", "DarkCurrent.mode=full-image",
             "ClusterFinder.spr_threshold=1"],
            "DarkCurrent.mode is 'full-image' but ElectronicNoise.mode is 'cropped-image'",
        ),
    ],
)  # fmt: skip
def test_check_refuses_what_the_run_refuses(tmp_path, point_events, overrides, message):
    """--check catches every chain the run would refuse later, with the same one-line error."""
    config = sim_config(tmp_path)
    sets = [arg for o in overrides for arg in ("--set", o)]
    checked = waders("sim", "--json", str(config), *sets, "--check")
    assert checked.returncode == 2
    assert checked.stderr.startswith(f"error: {message}") and len(checked.stderr.splitlines()) == 1
    run = waders("sim", "--json", str(config), *sets, "--g4file", str(point_events), "-o", str(tmp_path / "out"))
    assert run.returncode == 2
    assert run.stderr == checked.stderr
    assert not list((tmp_path / "out").glob("*.root")) if (tmp_path / "out").exists() else True


def test_events_beyond_the_file_is_a_warning(tmp_path, point_events):
    result = waders(
        "sim",
        "--json",
        str(sim_config(tmp_path)),
        "--g4file",
        str(point_events),
        "--events",
        "2:100",
        "-o",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"warning: {point_events} has 5 events (entries 0:5); --events 2:100 simulates 3 of them\n"
    assert "5 events read" not in result.stdout and "3 events read" in result.stdout


def test_help_examples_keep_their_lines():
    """The Examples block of the help is printed line by line (click's \\b marker, not a literal '\\b')."""
    out = waders("sim", "--help").stdout
    assert "\\b" not in out
    assert "\n  Examples (in a folder where 'waders example-data .' was run):\n    waders sim --json" in out


def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run ``waders ARGS`` with stderr on a pseudo-terminal (what a user sees); return (exit code, stderr)."""
    import os
    import pty

    main_fd, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "waders.core", *args], stdout=subprocess.DEVNULL, stderr=terminal, timeout=300
        )
    finally:
        os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the terminal is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    return result.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_progress_bar_of_the_events_on_a_terminal_only(tmp_path, point_events, executor):
    config = sim_config(tmp_path)
    args = ["sim", "--json", str(config), "--g4file", str(point_events), "-o", str(tmp_path / "out"), "--chunk-size"]
    args += ["2", "--executor", executor, "--workers", "2", "--files-per-task", "2"]
    code, shown = _on_a_terminal(*args)
    assert code == 0, shown
    assert "g4.root" in shown and "5/5" in shown and "event" in shown  # the bar, complete
    assert "2/5" in shown or "4/5" in shown  # and updated along the way (chunks or tasks of 2 events)
    # not a terminal (a pipe, a CI log): no bar; --no-progress: no bar either
    result = waders(*args)
    assert result.returncode == 0 and "5/5" not in result.stderr
    code, shown = _on_a_terminal("--no-progress", *args)
    assert code == 0 and "5/5" not in shown
