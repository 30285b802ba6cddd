"""Publishing replaces a run directory in one step: a reader never finds it missing or half-written."""

from __future__ import annotations

import sys
import threading

import pytest

from waders.dqm.report import swap


def _write(directory, version):
    directory.mkdir()
    (directory / "index.html").write_text(f"version {version}")
    (directory / "plot.png").write_bytes(bytes([version % 256]) * 1000)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux-only")
def test_readers_always_see_a_complete_directory(tmp_path):
    final = tmp_path / "run001"
    _write(final, 0)
    misses, seen = [], set()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                text = (final / "index.html").read_text()
                assert (final / "plot.png").stat().st_size == 1000
                seen.add(text)
            except (OSError, AssertionError) as err:
                misses.append(repr(err))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 301):
            staging = tmp_path / f".run001.new-{version}"
            _write(staging, version)
            swap.replace_directory(staging, final)
    finally:
        stop.set()
        thread.join(10)
    assert misses == []
    assert len(seen) > 1  # the reader did see the directory change
    assert (final / "index.html").read_text() == "version 300"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run001"]  # nothing left behind


def test_fallback_without_an_atomic_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(swap, "_exchange", lambda a, b: False)
    final = tmp_path / "run001"
    _write(final, 1)
    staging = tmp_path / "staging"
    _write(staging, 2)
    swap.replace_directory(staging, final)
    assert (final / "index.html").read_text() == "version 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run001"]
