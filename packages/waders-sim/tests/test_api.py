"""waders.sim as users call it from Python: simulate(), SimulationResult, processes from waders.sim."""

from __future__ import annotations

import subprocess
import sys

import awkward as ak
import numpy as np
import pytest

import waders.sim
from waders.core import process_registry
from waders.core.errors import ConfigError, InputFileError
from waders.data import GEANT4_DEMO, path
from waders.io import read_clusters
from waders.sim import DEFAULT_SIMULATION, simulate, simulation_config
from waders.sim.driver import SimOptions, simulate_file


def test_every_process_is_importable_from_waders_sim():
    registry = process_registry()
    for name in waders.sim.PROCESSES:
        assert getattr(waders.sim, name) is registry.get(name, domain="sim")
        assert name in waders.sim.__all__ and name in dir(waders.sim)
    from waders.sim import ClusterFinder, Diffusion

    assert Diffusion.name == "Diffusion"
    assert ClusterFinder is registry.get("ClusterFinder", domain="sim")  # the simulation variant
    code = "import sys, waders.sim; print(sorted(m for m in ('numpy', 'awkward', 'uproot') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_simulate_matches_the_driver_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g4 = path(GEANT4_DEMO)
    result = simulate(g4, events=(0, 60), seed=4)
    assert list(tmp_path.iterdir()) == []
    assert (result.events_read, result.events_kept) == (60, 60)
    # the same code as 'waders sim': its ROOT file holds the same clusters
    out = tmp_path / "cli"
    run = simulate_file(g4, simulation_config(), SimOptions(output_dir=out, seed=4, entry_start=0, entry_stop=60))
    written = read_clusters(run.output, "clustersRec")
    assert ak.to_list(written) == ak.to_list(result.events)
    clusters = result.clusters
    assert len(clusters) == int(ak.sum(ak.num(written.clusters, axis=1)))
    assert np.array_equal(np.unique(ak.to_numpy(clusters.event)), np.unique(ak.to_numpy(written.event)))
    assert ak.all(clusters.Energy > 0) and len(result.true_clusters) >= len(clusters) > 0
    assert len(repr(result)) < 300 and repr(result).startswith("<SimulationResult demo_g4.root: 60 events read")
    assert result.config.names == ["Diffusion", "PixelizeSignal", "ClusterFinder"]
    assert DEFAULT_SIMULATION["reconstruction"]["ClusterFinder"]["active"] == 1


def test_simulate_keeps_files_and_reads_images_back(tmp_path):
    result = simulate(
        path(GEANT4_DEMO),
        events=(0, 20),
        output_dir=tmp_path,
        CreateFitsImage__active=1,
        CreateFitsImage__n_events=20,
        CreateFitsImage__n_rows=100,
        CreateFitsImage__n_cols=150,
        **{"CreateFitsImage.noise_adu": 0.0},
    )
    assert result.files["root"].endswith("_demo_g4.root")
    [image_file] = result.files["CreateFitsImage"]["images"]
    assert (tmp_path / image_file).exists() or (tmp_path / image_file.split("/")[-1]).exists()
    [image] = result.images
    assert image.amplifiers["L"].geometry.shape[0] == 100


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown keyword seeds=3"):
        simulate(path(GEANT4_DEMO), seeds=3)
    with pytest.raises(InputFileError, match="no such file"):
        simulate("missing_g4.root")
