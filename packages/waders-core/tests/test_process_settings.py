"""Process-level settings of the waders command: one malloc arena, and a fast exit once the work is done."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from waders.core.allocator import use_one_malloc_arena; print(use_one_malloc_arena())"


def run(env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True)
    return result.stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_one_arena_on_glibc_unless_the_environment_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert run(env) == "True"
    assert run({**env, "MALLOC_ARENA_MAX": "4"}) == "False"  # the user's setting wins


@pytest.mark.parametrize("with_thread", [False, True])
def test_exit_now_flushes_runs_exit_handlers_and_waits_for_threads(tmp_path, with_thread):
    code = f"""
import atexit, pathlib, threading, time
from waders.core.cli.main import exit_now
folder = pathlib.Path({str(tmp_path)!r})
atexit.register(lambda: (folder / "atexit").write_text("ran"))
def work():
    time.sleep(0.3)
    (folder / "thread").write_text("done")
if {with_thread}:
    threading.Thread(target=work).start()
print("unflushed output", end="")
exit_now(3)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "unflushed output"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").exists() == with_thread
