"""The DQM store: round trip, history, a killed writer, concurrent writers, MongoDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from waders.core.errors import ConfigError
from waders.dqm.store import MongoStore, SQLiteStore, from_mongo, open_store, to_mongo

AMPS = ("L", "U")


def document(run: int, n_images: int = 3, scale: float = 1.0, tag: str = "test") -> dict:
    """A run document of the shared layout with two MEs per image and amplifier."""
    images = {}
    for i in range(n_images):
        me = {
            "MEFitDCSigma": {
                amp: {
                    "value": scale * (0.16 + 0.001 * i),
                    "error": 0.004,
                    "unit": "e-",
                    "x": None,
                    "y": None,
                    "yerr": None,
                    "xlabel": "image",
                    "ylabel": "sigma",
                    "plot": None,
                    "quality": {"status": "pass", "test": "reldiff", "detail": "ok"},
                }
                for amp in AMPS
            },
            "MEOVSPCD": {
                amp: {
                    "value": 0.2,
                    "error": None,
                    "unit": "e-",
                    "x": [0.0, 0.5],
                    "y": [10.0, 3.0],
                    "yerr": None,
                    "xlabel": "q",
                    "ylabel": "pixels",
                    "plot": f"me/img.v1_{i}_MEOVSPCD_{amp}.png",
                    "quality": {"status": "none", "test": None, "detail": ""},
                }
                for amp in AMPS
            },
        }
        images[f"img.v1_{i}"] = {
            "file": f"/data/img.v1_{i}.fits",
            "image": i,
            "start": None,
            "summary": f"recon/img.v1_{i}.summary.json",
            "status": "pass",
            "me": me,
        }
    return {
        "run": run,
        "tag": tag,
        "updated": "2026-01-01T00:00:00+00:00",
        "reference_run": None,
        "status": "pass",
        "amplifiers": list(AMPS),
        "images": images,
        "run_level": {"MEFitDCSigma": {a: {"x": [0, 1], "y": [0.16, 0.161], "yerr": None, "unit": "e-", "plot": None,
                                           "quality": {"status": "none", "test": None, "detail": ""}} for a in AMPS}},
        "masked_fraction": {"L": 0.01, "U": 0.02},
    }  # fmt: skip


def test_sqlite_round_trip_and_history(tmp_path):
    with open_store(None, tmp_path) as store:
        assert isinstance(store, SQLiteStore) and store.path == tmp_path / "dqm.sqlite"
        assert store.runs() == [] and store.get_run(3) is None
        store.put_run(document(3))
        store.put_run(document(1, n_images=2))
        assert store.runs() == [1, 3]
        assert store.get_run(3) == document(3)
        history = store.history("MEFitDCSigma", "U")
        assert [(r, i) for r, i, _, _ in history] == [(1, 0), (1, 1), (3, 0), (3, 1), (3, 2)]
        assert history[2][2:] == (0.16, 0.004)
        store.put_run(document(3, n_images=1, scale=2.0))  # an update replaces the run: no stale rows
        assert [(r, i, v) for r, i, v, _ in store.history("MEFitDCSigma", "U")][-1] == (3, 0, 0.32)
        assert len(store.history("MEFitDCSigma", "U")) == 3
    with open_store(f"sqlite:///{tmp_path / 'dqm.sqlite'}") as again:
        assert again.get_run(3)["images"].keys() == {"img.v1_0"}
    with open_store(tmp_path) as again:  # a directory means its dqm.sqlite
        assert again.runs() == [1, 3]
    with pytest.raises(ConfigError, match="unknown DQM store"):
        open_store("ftp://host/x")


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


_WRITER = """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from waders.dqm.store import open_store
    from test_store import document
    store = open_store(sys.argv[1])
    original = store._write_values

    def slow(run, rows):
        original(run, rows)
        print("in transaction", flush=True)
        time.sleep(60)

    store._write_values = slow
    store.put_run(document(7, n_images=5, scale=3.0, tag="new"))
"""


def test_a_killed_writer_leaves_the_previous_document(tmp_path):
    path = tmp_path / "dqm.sqlite"
    with open_store(path) as store:
        store.put_run(document(7, tag="old"))
    writer = _python(_WRITER.format(tests=os.path.dirname(__file__)), str(path))
    try:
        line = writer.stdout.readline()
        assert line.strip() == "in transaction", writer.stderr.read()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.stdout.close()
        writer.stderr.close()
    with open_store(path) as store:
        kept = store.get_run(7)
        assert kept["tag"] == "old" and len(kept["images"]) == 3
        assert len(store.history("MEFitDCSigma", "L")) == 3
        store.put_run(document(7, n_images=4, tag="after"))  # the database is writable again
        assert store.get_run(7)["tag"] == "after"


_CONCURRENT = """
    import sys
    sys.path.insert(0, {tests!r})
    from waders.dqm.store import open_store
    from test_store import document
    run = int(sys.argv[2])
    with open_store(sys.argv[1]) as store:
        for k in range(15):
            store.put_run(document(run, n_images=1 + k % 4, scale=1.0 + k))
    print("done", flush=True)
"""


def test_two_processes_write_different_runs_at_once(tmp_path):
    path = tmp_path / "dqm.sqlite"
    code = _CONCURRENT.format(tests=os.path.dirname(__file__))
    writers = [_python(code, str(path), str(run)) for run in (21, 22)]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert out.strip() == "done"
    with open_store(path) as store:
        assert store.runs() == [21, 22]
        for run in (21, 22):
            final = store.get_run(run)
            assert len(final["images"]) == 1 + 14 % 4
            assert final["images"]["img.v1_0"]["me"]["MEFitDCSigma"]["L"]["value"] == pytest.approx(0.16 * 15)


def test_mongo_layout_round_trip():
    doc = document(5)
    stored = to_mongo(doc)
    assert stored["_id"] == 5
    image = stored["images"][0]
    assert image["stem"] == "img.v1_0" and image["amplifiers"][0]["name"] == "L"
    assert [m["name"] for m in image["amplifiers"][0]["mes"]] == ["MEFitDCSigma", "MEOVSPCD"]
    assert all("." not in key for key in _keys(stored))  # file stems never become keys
    assert from_mongo(stored) == doc


def _keys(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _exercise(store):
    store.put_run(document(2))
    store.put_run(document(1, n_images=1))
    store.put_run(document(2, n_images=2, scale=2.0))
    assert store.runs() == [1, 2]
    assert store.get_run(2) == document(2, n_images=2, scale=2.0)
    assert store.get_run(9) is None
    history = store.history("MEFitDCSigma", "L")
    assert [(r, i) for r, i, _, _ in history] == [(1, 0), (2, 0), (2, 1)]
    assert history[1][2] == pytest.approx(0.32)


def test_mongo_store_with_mongomock():
    mongomock = pytest.importorskip("mongomock")
    _exercise(MongoStore("mongodb://localhost/dqmtest", client=mongomock.MongoClient()))


@pytest.mark.skipif(not os.environ.get("WADERS_TEST_MONGODB_URI"), reason="WADERS_TEST_MONGODB_URI is not set")
def test_mongo_store_on_a_server():
    pytest.importorskip("pymongo")
    base = os.environ["WADERS_TEST_MONGODB_URI"]
    database = f"waders_dqm_test_{uuid.uuid4().hex[:8]}"
    scheme, rest = base.split("://", 1)
    host = rest.split("?", 1)[0].split("/", 1)[0]
    query = f"?{base.split('?', 1)[1]}" if "?" in base else ""
    uri = f"{scheme}://{host}/{database}{query}"
    store = open_store(uri)
    try:
        _exercise(store)
    finally:
        store._client.drop_database(database)
        store.close()
