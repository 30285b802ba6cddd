"""Simulation output branches of pysimdamicm's dictionary (spec C.14): times, image windows, flags, ADC2e."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from waders.core.hits import HitCollection
from waders.io.root import read_clusters, read_records, write_geant4

PITCH = 0.015  # mm
E2EV = 3.77
IMG_EXP_TIME = 10.0  # s


def test_pixel_times_image_windows_and_flags(tmp_path):
    """Two equal deposits in one pixel at 20 s and 30 s (event 0); one at 3 s by a neutron (event 1)."""
    x = np.array([10.5, 10.5, 40.5]) * PITCH
    y = np.array([5.5, 5.5, 7.5]) * PITCH
    hits = {
        "x": x, "y": y, "z": np.full(3, 0.2), "time": np.array([20.0, 30.0, 3.0]), "edep": np.full(3, 5000.0),
        "ccd": np.ones(3, dtype=np.int32), "pdg": np.array([11, 11, 2112], dtype=np.int32),
    }  # fmt: skip
    g4 = tmp_path / "g4.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(2), np.array([2, 1]), hits), run_info={"NEvts": 2})
    config = {
        "detector_response": {"PixelizeSignal": {"active": 1}},
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
        "CF": {"ccd_shape": [100, 100], "e2eV": E2EV, "img_exp_time": IMG_EXP_TIME, "ADC2eV": 0.75},
    }
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "waders.core", "sim", str(path), "--g4file", str(g4), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = out / "waders_sim_g4.root"
    rec = read_clusters(output).tolist()
    (first,), (second,) = (entry["clusters"] for entry in rec)
    (pixel,) = first["pixels"]
    assert pixel["pixels_time"] == pytest.approx(25.0)  # energy-weighted mean
    assert pixel["pixels_std_time"] == pytest.approx(5.0)  # population std of 20 s and 30 s
    assert pixel["pixels_img_time"] == 2  # int(25 s / 10 s)
    assert first["img_time"] == 2.0
    (neutron,) = second["pixels"]
    assert neutron["pixels_img_time"] == 0 and neutron["pixels_std_time"] == 0.0
    assert second["isneutron"] == 1 and first["isneutron"] == 0
    pixelized = read_clusters(output, "pixelizedEvent", count_branch="Ncollections").tolist()
    flags = [p["pixels_neutron"] for entry in pixelized for c in entry["clusters"] for p in c["pixels"]]
    assert flags == [0.0, 1.0]
    assert all(
        p["pixels_sigma_xy"] == 0.0 for e in pixelized for c in e["clusters"] for p in c["pixels"]
    )  # no diffusion
    (process,) = read_records(output, "process_config").tolist()
    assert process["ADC2eV"] == 0.75
    assert process["ADC2e"] == pytest.approx(0.75 / E2EV)
    assert process["img_exp_time"] == IMG_EXP_TIME


def test_pasted_pixels_carry_their_placement_in_pixelized_event(tmp_path):
    from astropy.io import fits

    from waders.core.detector import Detector
    from waders.core.pipeline import RunContext
    from waders.sim.driver import _pixelized_entries
    from waders.sim.events import SimEvents
    from waders.sim.paste import PasteClusterProcess
    from waders.sim.random import CounterRNG

    blanks = tmp_path / "blanks"
    blanks.mkdir()
    fits.PrimaryHDU(np.random.default_rng(1).normal(0.0, 2.0, (100, 150))).writeto(blanks / "blank_0.fits")
    hits = {k: np.zeros(2) for k in ("x", "y", "z", "time", "edep")}
    hits |= {"ccd": np.ones(2, dtype=np.int32), "pdg": np.full(2, 11, dtype=np.int32)}
    det = Detector(ccd_shape=[1000, 4000], e2eV=E2EV, ADC2eV=0.72)
    data = SimEvents(HitCollection.from_arrays(np.arange(2), np.ones(2, dtype=np.int64), hits), CounterRNG(4), det)
    edep = np.array([100.0, 250.0, 80.0, 400.0, 120.0])
    data.set_pixels(
        {
            "event": np.array([0, 0, 0, 1, 1]), "ccd": np.ones(5, dtype=np.int32),
            "row": np.array([500, 501, 501, 700, 700], dtype=np.int32),
            "col": np.array([1000, 1000, 1001, 20, 21], dtype=np.int32),
            "edep": edep, "charge": np.rint(edep / E2EV).astype(np.int32), "z": np.full(5, 0.1),
            "time": np.zeros(5), "pdg": np.full(5, 11, dtype=np.int32),
        }
    )  # fmt: skip
    process = PasteClusterProcess(blank_outdir=str(tmp_path / "out"), blank_dir=str(blanks / "*.fits"), calibration=2.0)
    process.run(data, RunContext(seed=4, detector=det, output_dir=tmp_path))
    (written,) = process.finish(RunContext(seed=4, detector=det, output_dir=tmp_path))["images"]
    truth = json.loads((tmp_path / "out" / f"{written.rsplit('/', 1)[-1][:-5]}.truth.json").read_text())
    _, _, pixel_lists = _pixelized_entries(data)
    for entry, paste in zip(pixel_lists.tolist(), truth["pastes"], strict=True):
        (pixels,) = entry
        rows = np.array([p["rnd_rows"] for p in pixels])
        cols = np.array([p["rnd_cols"] for p in pixels])
        energy = np.array([p["rnd_Edep"] for p in pixels])
        assert energy.sum() == pytest.approx(paste["energy_eV"] / 1000.0)
        # the pasted pixels keep the event's shape: offsets relative to the event's own pixels are constant
        assert len(set(rows - np.array([p["pixels_y"] for p in pixels]))) == 1
        assert len(set(cols - np.array([p["pixels_x"] for p in pixels]))) == 1
        assert np.average(rows + 1, weights=energy) == pytest.approx(paste["row"], abs=1e-9)


def test_primary_particles_are_copied_to_every_cluster_and_collection(tmp_path):
    """Event 0: one primary; event 1: two primaries; each event makes one cluster (spec C.14 pp_*)."""
    import awkward as ak

    hits = {
        "x": np.array([10.5, 60.5]) * PITCH, "y": np.array([5.5, 30.5]) * PITCH, "z": np.full(2, 0.2),
        "time": np.zeros(2), "edep": np.full(2, 5000.0), "ccd": np.ones(2, dtype=np.int32),
        "pdg": np.full(2, 11, dtype=np.int32),
    }  # fmt: skip
    primaries = {
        "EventID": np.array([0, 1]),
        "posx": ak.Array([[1.5], [2.5, -3.0]]), "posy": ak.Array([[0.1], [0.2, 0.3]]),
        "posz": ak.Array([[0.4], [0.5, 0.6]]), "momx": ak.Array([[1.0], [0.0, 0.6]]),
        "momy": ak.Array([[0.0], [1.0, 0.8]]), "momz": ak.Array([[0.0], [0.0, 0.0]]),
        "energy": ak.Array([[5.0], [2.0, 3.0]]),
    }  # fmt: skip
    g4 = tmp_path / "g4.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(2), np.array([1, 1]), hits), primaries=primaries)
    config = {
        "detector_response": {"PixelizeSignal": {"active": 1}},
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
        "CF": {"ccd_shape": [100, 100], "e2eV": E2EV},
    }
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "waders.core", "sim", str(path), "--g4file", str(g4), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = out / "waders_sim_g4.root"
    for tree, counter in (("clustersRec", "Nclusters"), ("pixelizedEvent", "Ncollections")):
        entries = read_clusters(output, tree, count_branch=counter).tolist()
        assert [e["event"] for e in entries] == [0, 1]
        for entry, k in zip(entries, (0, 1), strict=True):
            (cluster,) = entry["clusters"]
            for name in ("posx", "momy", "energy"):
                assert [p[f"pp_{name}"] for p in cluster["pp"]] == primaries[name][k].tolist(), (tree, name)


def test_geant4_config_describes_the_source_volume(tmp_path):
    hits = {
        "x": np.array([10.5]) * PITCH, "y": np.array([5.5]) * PITCH, "z": np.full(1, 0.2), "time": np.zeros(1),
        "edep": np.full(1, 5000.0), "ccd": np.ones(1, dtype=np.int32), "pdg": np.full(1, 11, dtype=np.int32),
    }  # fmt: skip
    run_info = {
        "NEvts": 1, "NCCD": 4, "Seed": 9, "primaryParticle": "ion", "primaryIon": "Pb210",
        "simulatedVolume": "Bolt", "concatedVolumeNames": "CCDSensor_PV;Bolt_0;Bolt_1;BoltHead",
        "volumeDensity": [2.33, 8.0, 8.0, 7.0], "volumeMass": [0.01, 0.2, 0.3, 0.5],
        "volumeVolume": [4.3, 25.0, 37.5, 71.4], "volumeSurface": [20.0, 30.0, 40.0, 50.0],
    }  # fmt: skip
    g4 = tmp_path / "g4.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(1), np.array([1]), hits), run_info=run_info)
    config = {"detector_response": {"PixelizeSignal": {"active": 1}}, "CF": {"ccd_shape": [100, 100]}}
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "waders.core", "sim", str(path), "--g4file", str(g4), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (g4config,) = read_records(tmp_path / "out" / "waders_sim_g4.root", "geant4_config").tolist()
    assert g4config["NCCDs"] == 4 and g4config["pp_gps"] == "ion" and g4config["pp_ion"] == "Pb210"
    assert g4config["pp_vol_n"] == 2 and g4config["pp_vol_pvnames"] == "Bolt_0;Bolt_1"  # not BoltHead
    assert g4config["pp_vol_mass"] == pytest.approx(0.5)
    assert g4config["pp_vol_volume"] == pytest.approx(62.5)
    assert g4config["pp_vol_surface"] == pytest.approx(70.0)
    assert g4config["pp_vol_density"] == pytest.approx(8.0)
    # the CCD: the detector's detector_name (CCDSensor_PV), one volume
    assert g4config["ccd_vol_n"] == 1
    assert (g4config["ccd_mass"], g4config["ccd_vol"]) == (pytest.approx(0.01), pytest.approx(4.3))
    assert g4config["ccd_density"] == pytest.approx(2.33) and g4config["ccd_surface"] == 20


def test_ccd_volume_of_replicated_sensors():
    from waders.sim.volumes import ccd_volume

    run_info = {
        "concatedVolumeNames": "CCDSensor_PV_0;CCDSensor_PV_1;CCDSensor_PV_Frame;Cu",
        "volumeDensity": [2.33, 2.33, 8.9, 8.9], "volumeMass": [0.0102, 0.0098, 1.0, 2.0],
        "volumeVolume": [4.4, 4.2, 100.0, 200.0], "volumeSurface": [30.9, 30.5, 1.0, 2.0],
    }  # fmt: skip
    ccd = ccd_volume(run_info, "CCDSensor_PV")
    assert ccd["ccd_vol_n"] == 2  # not the frame
    assert ccd["ccd_mass"] == pytest.approx(0.0100) and ccd["ccd_vol"] == pytest.approx(4.3)
    assert ccd["ccd_density"] == pytest.approx(2.33) and ccd["ccd_surface"] == 30  # truncated, as pysimdamicm
    missing = ccd_volume(run_info, "Sensor")
    assert missing["ccd_vol_n"] == 0 and missing["ccd_mass"] == 0.0
    assert ccd_volume({}, "CCDSensor_PV") == {}


def test_saturated_pixels_keep_their_true_energy(tmp_path):
    """5 keV and 0.5 keV in two neighbouring pixels; saturation at 1000 ADU x 0.72 eV/ADU = 720 eV."""
    hits = {
        "x": np.array([10.5, 11.5]) * PITCH, "y": np.array([5.5, 5.5]) * PITCH, "z": np.full(2, 0.2),
        "time": np.zeros(2), "edep": np.array([5000.0, 500.0]), "ccd": np.ones(2, dtype=np.int32),
        "pdg": np.full(2, 11, dtype=np.int32),
    }  # fmt: skip
    g4 = tmp_path / "g4.root"
    write_geant4(g4, HitCollection.from_arrays(np.arange(1), np.array([2]), hits))
    config = {
        "detector_response": {"PixelizeSignal": {"active": 1}, "PixelSaturation": {"active": 1, "saturation": 1000}},
        "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
        "CF": {"ccd_shape": [100, 100], "e2eV": E2EV, "ADC2eV": 0.72},
    }
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "waders.core", "sim", str(path), "--g4file", str(g4), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ((cluster,),) = (e["clusters"] for e in read_clusters(tmp_path / "out" / "waders_sim_g4.root").tolist())
    assert cluster["Npix_sat"] == 1 and cluster["Npix_MCT"] == 2
    assert [p["pixels_saturated"] for p in cluster["pixels"]] == [1, 0]
    assert [p["pixels_E"] for p in cluster["pixels"]] == pytest.approx([0.72, 0.5])
    assert [p["pixels_E_MCT"] for p in cluster["pixels"]] == pytest.approx([5.0, 0.5])
    assert cluster["Energy_MCT"] == pytest.approx(5.5)
