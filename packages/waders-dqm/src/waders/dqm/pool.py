"""Where the tasks of a DQM run go: :func:`waders.core.executors.run_tasks` with the run's executor options."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from waders.core.executors import run_tasks

__all__ = ["Pool", "batches"]


@dataclass(frozen=True)
class Pool:
    """The run's executor (see :func:`waders.core.executors.run_tasks`).

    Attributes
    ----------
    executor : {"serial", "processes", "dask"}
        Where tasks run.
    workers : int
        Local worker processes.
    scheduler : str, optional
        Address of an existing dask scheduler.
    """

    executor: str = "serial"
    workers: int = 1
    scheduler: str | None = None

    def map(
        self, func: Callable[[Any], Any], items: Sequence[Any], done: Callable[[int, str | None], None] | None = None
    ) -> list[tuple[Any, str | None]]:
        """``func(item)`` for every item: ``(value, None)`` or ``(None, one-line error)``, in item order.

        ``done(index, error)`` is called as each task finishes (any order).
        """

        def report(outcome: Any) -> None:
            if done is not None:
                done(outcome.index, outcome.error)

        outcomes = run_tasks(
            func, items, executor=self.executor, workers=self.workers, scheduler=self.scheduler, progress=report
        )
        return [(o.value, o.error) for o in outcomes]


def batches(items: Sequence[Any], pool: Pool, per_task: int | None) -> list[list[Any]]:
    """``items`` in tasks of ``per_task`` (default: one when serial, else about four tasks per worker)."""
    if pool.executor == "serial":
        size = 1
    else:
        size = per_task or max(1, math.ceil(len(items) / (4 * pool.workers)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
