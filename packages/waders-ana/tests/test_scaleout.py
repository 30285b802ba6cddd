"""Scale-out: the same outputs from a serial run, local processes and a real dask LocalCluster."""

from __future__ import annotations

import json

import numpy as np
import pytest

from waders.ana.runner import AnalysisOptions, analyse_files
from waders.core import load_config
from waders.core.executors import run_tasks
from waders.io import read_clusters, write_raw_image
from waders.io.synthetic import cluster_deposits, make_raw_image

CONFIG = {
    "process": {
        "sequence": "CompressSkipperProcess;PedestalSubtractionProcess;CalibrationProcess;ClusterFinder",
        "CalibrationProcess": {"gain": 10.0},
        "ClusterFinder": {"spr_threshold": [None, 3, 4]},
    }
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    directory = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(5):
        rng = np.random.default_rng(i)
        deposits, _ = cluster_deposits(rng, [(20.0 + i, 30.5)], [400], [1.0])
        image, _ = make_raw_image(nrows=60, ncols=80, overscan=20, nskips=9, deposits=deposits, seed=i)
        paths.append(write_raw_image(directory / f"img_{i}.fits", image))
    bad = directory / "img_9.fits"
    bad.write_text("not a FITS file")
    return [*paths[:3], bad, *paths[3:]]


def outputs_of(result, directory):
    """Everything an analysis wrote that must not depend on where it ran (not the timings)."""
    summaries = {}
    for path in sorted(directory.glob("*.summary.json")):
        summary = json.loads(path.read_text())
        summaries[path.name] = (summary["amplifiers"], summary["image"])
    # json text compares NaN (unknown time stamps) equal to NaN, and floats bit for bit
    clusters = {p.name: json.dumps(read_clusters(p).tolist()) for p in sorted(directory.glob("*_clusters.root"))}
    return summaries, clusters, sorted(result.failures)


def run(images, tmp_path, name, **executor):
    config = load_config(CONFIG, kind="analysis")
    out = tmp_path / name
    result = analyse_files(images, config, AnalysisOptions(output_dir=out), **executor)
    return outputs_of(result, out)


def test_processes_and_dask_give_the_serial_results_bit_for_bit(images, tmp_path):
    serial = run(images, tmp_path, "serial")
    assert len(serial[0]) == 5 and serial[2] == [str(images[3])]  # the bad file is reported, the others ran
    assert run(images, tmp_path, "processes", executor="processes", workers=2, files_per_task=2) == serial
    dask = run(images, tmp_path, "dask", executor="dask", workers=2, files_per_task=2)  # a real LocalCluster
    assert dask == serial


def _flaky(item):
    import os

    marker = item["marker"]
    if not os.path.exists(marker):  # the first attempt crashes (a lost worker, a full disk, ...)
        open(marker, "w").close()
        raise RuntimeError("transient failure")
    return item["value"] * 2


def test_a_crashed_task_is_retried_and_a_hopeless_one_reported(tmp_path):
    items = [{"marker": str(tmp_path / f"m{i}"), "value": i} for i in range(3)]
    outcomes = run_tasks(_flaky, items, executor="processes", workers=2, retries=1)
    assert [o.value for o in outcomes] == [0, 2, 4]
    assert all(o.error is None for o in outcomes)
    items = [{"marker": str(tmp_path / "never" / "m"), "value": 1}]  # cannot create the marker: fails every time
    (outcome,) = run_tasks(_flaky, items, executor="serial", retries=2)
    assert outcome.error is not None and outcome.attempts == 3
