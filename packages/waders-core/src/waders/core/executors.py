"""Run independent tasks serially, in local processes, or on a dask.distributed cluster.

``waders ana``, ``waders sim`` and ``waders dqm run`` split their work by file (several
small files per task) and hand the tasks to :func:`run_tasks`.  Results come back in
task order whatever the executor, so outputs are identical to a serial run; every
random draw is seeded per image or per event, never per worker.  A task that raises an
unexpected error is retried (dask: ``retries``); a task that fails for a user reason
(:class:`~waders.core.errors.WadersError`) is reported and the others go on.

For clusters, start a dask scheduler with dask-jobqueue (Slurm, HTCondor, ...) and pass
its address: ``--executor dask --scheduler tcp://host:8786``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, WadersError

__all__ = ["EXECUTORS", "TaskOutcome", "run_tasks"]

log = logging.getLogger(__name__)

#: Executor names accepted by ``--executor``.
EXECUTORS = ("serial", "processes", "dask")


@dataclass
class TaskOutcome:
    """Result of one task: its value, or the one-line error that stopped it."""

    index: int
    value: Any = None
    error: str | None = None
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def _call(func: Callable[[Any], Any], item: Any) -> tuple[Any, str | None]:
    """Run one task, turning user errors into messages (so workers never lose them)."""
    try:
        return func(item), None
    except WadersError as err:
        return None, err.one_line()


def run_tasks(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    executor: str = "serial",
    workers: int = 1,
    scheduler: str | None = None,
    retries: int = 1,
    progress: Callable[[TaskOutcome], None] | None = None,
) -> list[TaskOutcome]:
    """Run ``func(item)`` for every item; return the outcomes in item order.

    Parameters
    ----------
    func : callable
        A picklable function (module level) of one argument.
    items : sequence
        Task inputs.
    executor : {"serial", "processes", "dask"}
        Where tasks run: this process, a local process pool, or dask.distributed.
    workers : int
        Local worker processes (processes, and dask without a scheduler).
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:8786``).
    retries : int
        Extra attempts of a task that crashed (not of user errors).
    progress : callable, optional
        Called with each outcome as it completes (any order).
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}", hint=f"use one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if executor == "serial" or (executor == "processes" and workers == 1) or len(items) == 0:
        return _serial(func, items, retries, progress)
    if executor == "processes":
        return _processes(func, items, workers, retries, progress)
    return _dask(func, items, workers, scheduler, retries, progress)


def _finish(outcome: TaskOutcome, progress: Callable[[TaskOutcome], None] | None) -> TaskOutcome:
    if progress is not None:
        progress(outcome)
    return outcome


def _serial(func: Callable, items: Sequence[Any], retries: int, progress: Callable | None) -> list[TaskOutcome]:
    outcomes = []
    for index, item in enumerate(items):
        for attempt in range(1, retries + 2):
            try:
                value, error = _call(func, item)
                outcome = TaskOutcome(index, value, error, attempt)
                break
            except Exception as err:  # a crash: retry, then report
                outcome = TaskOutcome(index, None, f"task {index} failed: {type(err).__name__}: {err}", attempt)
                log.warning("task %d attempt %d failed: %s", index, attempt, err)
        outcomes.append(_finish(outcome, progress))
    return outcomes


def _processes(
    func: Callable, items: Sequence[Any], workers: int, retries: int, progress: Callable | None
) -> list[TaskOutcome]:
    _preload(func)
    outcomes: dict[int, TaskOutcome] = {}
    attempts = dict.fromkeys(range(len(items)), 0)
    pending = list(range(len(items)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        while pending:
            futures = {pool.submit(_call, func, items[i]): i for i in pending}
            pending = []
            for future in as_completed(futures):
                index = futures[future]
                attempts[index] += 1
                try:
                    value, error = future.result()
                    outcomes[index] = _finish(TaskOutcome(index, value, error, attempts[index]), progress)
                except Exception as err:
                    if attempts[index] <= retries:
                        log.warning("task %d failed (%s); retrying", index, err)
                        pending.append(index)
                    else:
                        message = f"task {index} failed after {attempts[index]} attempts: {type(err).__name__}: {err}"
                        outcomes[index] = _finish(TaskOutcome(index, None, message, attempts[index]), progress)
    return [outcomes[i] for i in range(len(items))]


def _preload(func: Callable) -> None:
    """Import the task's module tree in the parent so that forked workers start warm."""
    preload = getattr(func, "preload", ())
    for name in preload:
        try:
            __import__(name)
        except ImportError:
            log.debug("cannot preload %s", name)


def _dask(
    func: Callable,
    items: Sequence[Any],
    workers: int,
    scheduler: str | None,
    retries: int,
    progress: Callable | None,
) -> list[TaskOutcome]:
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ConfigError("--executor dask needs dask.distributed", hint="pip install 'dask[distributed]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        # the dashboard on a free loopback port: dashboard_address=None still binds 8787 first, which fails (and
        # warns) when another cluster on the machine has it
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0")
        client = Client(cluster)
    try:
        futures = client.map(_call, [func] * len(items), list(items), retries=retries, pure=False)
        index_of = {future.key: i for i, future in enumerate(futures)}
        outcomes: dict[int, TaskOutcome] = {}
        for future in dask_completed(futures):
            index = index_of[future.key]
            try:
                value, error = future.result()
                outcomes[index] = _finish(TaskOutcome(index, value, error), progress)
            except Exception as err:
                message = f"task {index} failed after {retries + 1} attempts: {type(err).__name__}: {err}"
                outcomes[index] = _finish(TaskOutcome(index, None, message, retries + 1), progress)
        return [outcomes[i] for i in range(len(items))]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
