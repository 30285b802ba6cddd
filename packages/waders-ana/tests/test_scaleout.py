"""Scale-out: the same outputs from a serial run, local processes, a real dask LocalCluster, and a dask
scheduler and worker started as separate processes (the recipe of docs/howto/cluster.md)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

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
    return (*written(directory), sorted(result.failures))


def written(directory):
    """The summaries (amplifiers and image sections) and cluster trees in ``directory``."""
    summaries = {}
    for path in sorted(directory.glob("*.summary.json")):
        summary = json.loads(path.read_text())
        summaries[path.name] = (summary["amplifiers"], summary["image"])
    # json text compares NaN (unknown time stamps) equal to NaN, and floats bit for bit
    clusters = {p.name: json.dumps(read_clusters(p).tolist()) for p in sorted(directory.glob("*_clusters.root"))}
    return summaries, clusters


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop a process and its children (dask's nanny and worker): SIGTERM, then SIGKILL to the group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):  # whatever is left of the group (an orphaned worker)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)


@pytest.fixture
def dask_scheduler(tmp_path):
    """``dask scheduler`` and one ``dask worker`` as separate processes; yields the scheduler address."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    logs = tmp_path / "dask_logs"
    logs.mkdir()
    dask = [sys.executable, "-m", "dask"]
    # an orphan (the test killed) goes away on its own: the scheduler after 15 idle minutes, the worker 2 minutes
    # after the scheduler
    commands = {
        "scheduler": [*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                      "--no-dashboard", "--idle-timeout", "900"],
        "worker": [*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                   "--local-directory", str(tmp_path / "dask_worker"), "--death-timeout", "120"],
    }  # fmt: skip
    processes = []
    try:
        for name, command in commands.items():
            with open(logs / f"{name}.log", "w") as log:  # the child keeps its own descriptor
                processes.append(
                    subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                )
        deadline = time.monotonic() + 120
        with Client(address, timeout="120s") as client:  # retries until the scheduler listens
            client.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
        yield address
    except Exception:
        for path in sorted(logs.iterdir()):
            print(f"--- {path.name}\n{path.read_text()}")
        raise
    finally:
        for process in reversed(processes):
            _stop(process)


def test_waders_ana_on_an_existing_dask_scheduler_and_worker(images, tmp_path, dask_scheduler):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    inputs = [str(path) for path in images]  # absolute: the worker runs in another folder

    def ana(name: str, *executor: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "waders.core", "ana", "--json", str(config), "-o", str(tmp_path / name)]
        return subprocess.run([*command, *executor, *inputs], capture_output=True, text=True, timeout=600)

    serial = ana("serial")
    remote = ana("remote", "--executor", "dask", "--scheduler", dask_scheduler, "--files-per-task", "2")
    for run in (serial, remote):  # the unreadable file is reported, the others analysed
        assert run.returncode == 2, run.stderr
        assert "img_9.fits" in run.stderr and "analysed 5 of 6 file(s)" in run.stdout
    assert len(written(tmp_path / "serial")[0]) == 5
    assert written(tmp_path / "remote") == written(tmp_path / "serial")


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_a_session_starts_its_workers_once_for_all_its_calls(executor):
    from waders.core.executors import executor_session

    def pids():  # os.readlink("/proc/self"): the worker's process id (a function dask's spawned workers can import)
        return {int(o.value) for o in run_tasks(os.readlink, ["/proc/self"] * 6, executor=executor, workers=2)}

    with executor_session(executor, workers=2):
        first, second = pids(), pids()
    assert os.getpid() not in first and len(first | second) <= 2  # the same two worker processes
    assert pids().isdisjoint(first)  # outside the session: new workers, closed at the end of the call


def test_executor_dask_without_distributed_is_a_one_line_error(images, tmp_path):
    """Without dask.distributed installed, ``--executor dask`` stops before any work: exit 2, install hint."""
    blocked = "import sys; sys.modules['distributed'] = None; from waders.core.cli.main import main; sys.exit(main())"
    command = [sys.executable, "-c", blocked, "ana", "-o", str(tmp_path), "--executor", "dask", "--workers", "2"]
    r = subprocess.run([*command, *map(str, images)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: --executor dask needs dask.distributed; pip install 'dask[distributed]'"
    ], r.stderr
    assert not list(tmp_path.iterdir())
