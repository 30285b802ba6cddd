"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(function: Callable[[], Any], repeats: int, *, warmup: bool = False) -> float:
    """Smallest wall time (s) of ``repeats`` calls of ``function``; optionally one untimed call first."""
    if warmup:
        function()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)
