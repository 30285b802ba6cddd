"""Run independent tasks serially, in local processes, or on a dask.distributed cluster.

``waders ana``, ``waders sim`` and ``waders dqm run`` split their work by file (several
small files per task) and hand the tasks to :func:`run_tasks`.  Results come back in
task order whatever the executor, so outputs are identical to a serial run; every
random draw is seeded per image or per event, never per worker.  A task that raises an
unexpected error is retried (dask: ``retries``); a task that fails for a user reason
(:class:`~waders.core.errors.WadersError`) is reported and the others go on.

A command that calls :func:`run_tasks` several times opens an :func:`executor_session`
first, so that its process pool or local dask cluster starts once.  Local dask workers
have one thread each, are forked on Linux with the task modules imported, and keep
glibc's default malloc tuning.

For clusters, start a dask scheduler with dask-jobqueue (Slurm, HTCondor, ...) and pass
its address: ``--executor dask --scheduler tcp://host:8786`` (docs/howto/cluster.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, WadersError

__all__ = ["EXECUTORS", "TaskOutcome", "check_executor", "executor_session", "run_tasks"]

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

    Inside :func:`executor_session` with the same executor options, the session's process
    pool or dask cluster is used (one cluster for a whole batch); otherwise one is started
    for this call and closed at its end.

    Parameters
    ----------
    func : callable
        A picklable function (module level) of one argument.  Its optional attribute
        ``preload`` (module names) is imported by the workers as they start.
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
    check_executor(executor, workers)
    if executor == "serial" or (executor == "processes" and workers == 1) or len(items) == 0:
        return _serial(func, items, retries, progress)
    session = _ACTIVE[-1] if _ACTIVE and _ACTIVE[-1].matches(executor, workers, scheduler) else None
    if session is None:
        with executor_session(executor, workers=workers, scheduler=scheduler):
            return run_tasks(
                func, items, executor=executor, workers=workers, scheduler=scheduler, retries=retries, progress=progress
            )
    if executor == "processes":
        return _processes(session, func, items, retries, progress)
    return _dask(session, func, items, retries, progress)


def check_executor(executor: str, workers: int) -> None:
    """Refuse an unknown executor or fewer than one worker.

    Raises
    ------
    ConfigError
        With the accepted names.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}", hint=f"use one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if executor == "dask":
        _require_distributed()


def _require_distributed() -> None:
    """Refuse ``--executor dask`` before any work when dask.distributed is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError("--executor dask needs dask.distributed", hint="pip install 'dask[distributed]'") from None


@dataclass
class _Session:
    """A process pool or a dask client (and local cluster), started at first use."""

    executor: str
    workers: int
    scheduler: str | None
    preload: tuple[str, ...] = ()
    pool: ProcessPoolExecutor | None = None
    client: Any = None
    cluster: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    def matches(self, executor: str, workers: int, scheduler: str | None) -> bool:
        return (self.executor, self.workers, self.scheduler) == (executor, workers, scheduler)

    def process_pool(self, func: Callable) -> ProcessPoolExecutor:
        if self.pool is None:
            _preload((*self.preload, *getattr(func, "preload", ())))  # forked workers start warm
            self.pool = ProcessPoolExecutor(max_workers=self.workers)
        return self.pool

    def replace_broken_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = ProcessPoolExecutor(max_workers=self.workers)

    def dask_client(self, func: Callable) -> Any:
        if self.client is None:
            start = time.perf_counter()
            self.client, self.cluster = _start_dask(
                self.workers, self.scheduler, (*self.preload, *getattr(func, "preload", ()))
            )
            self.timings["dask_start_s"] = time.perf_counter() - start
            log.debug("dask client ready in %.2f s", self.timings["dask_start_s"])
        return self.client

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.pool = self.client = self.cluster = None


#: Open sessions, innermost last.
_ACTIVE: list[_Session] = []


@contextmanager
def executor_session(
    executor: str = "serial",
    *,
    workers: int = 1,
    scheduler: str | None = None,
    preload: Sequence[str] = (),
) -> Iterator[None]:
    """Keep one process pool or dask cluster for every :func:`run_tasks` call of the block.

    A batch that calls :func:`run_tasks` several times (``waders sim`` on several files,
    ``waders dqm run``: images, then plots) starts its workers once.  The pool or cluster
    is started at the first call that needs it (never for serial runs) and closed at the
    end of the block.

    Parameters
    ----------
    executor, workers, scheduler : str, int, str
        As for :func:`run_tasks`; calls with other options start their own workers.
    preload : sequence of str
        Modules the workers import as they start (besides each task function's ``preload``).
    """
    check_executor(executor, workers)
    session = _Session(executor, workers, scheduler, tuple(preload))
    _ACTIVE.append(session)
    try:
        yield
    finally:
        _ACTIVE.remove(session)
        session.close()


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
    session: _Session, func: Callable, items: Sequence[Any], retries: int, progress: Callable | None
) -> list[TaskOutcome]:
    outcomes: dict[int, TaskOutcome] = {}
    attempts = dict.fromkeys(range(len(items)), 0)
    pending = list(range(len(items)))
    while pending:
        pool = session.process_pool(func)
        futures = {pool.submit(_call, func, items[i]): i for i in pending}
        pending = []
        broken = False
        for future in as_completed(futures):
            index = futures[future]
            attempts[index] += 1
            try:
                value, error = future.result()
                outcomes[index] = _finish(TaskOutcome(index, value, error, attempts[index]), progress)
            except Exception as err:
                broken = broken or isinstance(err, BrokenProcessPool)
                if attempts[index] <= retries:
                    log.warning("task %d failed (%s); retrying", index, err)
                    pending.append(index)
                else:
                    message = f"task {index} failed after {attempts[index]} attempts: {type(err).__name__}: {err}"
                    outcomes[index] = _finish(TaskOutcome(index, None, message, attempts[index]), progress)
        if broken:  # a worker died: the pool takes no more tasks
            session.replace_broken_pool()
    return [outcomes[i] for i in range(len(items))]


def _preload(names: Sequence[str]) -> None:
    """Import modules (here: in the parent, so that forked workers start warm)."""
    for name in dict.fromkeys(names):
        try:
            importlib.import_module(name)
        except ImportError:
            log.debug("cannot preload %s", name)


def _start_dask(workers: int, scheduler: str | None, preload: Sequence[str]) -> tuple[Any, Any]:
    """A client of ``scheduler``, or of a new local cluster of ``workers`` single-threaded processes."""
    import dask  # installed: executor_session refused --executor dask otherwise (check_executor)
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    # Local workers: one thread each (the analysis is single-threaded numpy), the waders modules imported as
    # they start (in parallel, instead of by the first task), and glibc's default malloc tuning: dask's nanny
    # sets MALLOC_TRIM_THRESHOLD_, which also turns off the adaptive mmap threshold, so that every large
    # array is a fresh mmap and page-faulted again (20 to 50 % more time for image analysis).
    # The dashboard on a free loopback port: dashboard_address=None still binds 8787 first, which fails (and
    # warns) when another cluster on the machine has it.
    # On Linux the workers are forked, like those of --executor processes, from this process with the modules
    # already imported: no worker imports distributed, numpy, scipy and waders again (about 1.5 s of CPU each).
    settings: dict[str, Any] = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    if _fork_workers(dask.config.get("distributed.worker.multiprocessing-method")):
        _preload(preload)
        settings["distributed.worker.multiprocessing-method"] = "fork"
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            preload=[name for name in dict.fromkeys(preload) if _importable(name)],
        )
    try:
        return Client(cluster), cluster
    except Exception:
        cluster.close()
        raise


def _fork_workers(method: str) -> bool:
    """Whether local dask workers are forked: on Linux, unless dask is configured otherwise than its default."""
    return sys.platform == "linux" and method == "spawn" and "fork" in multiprocessing.get_all_start_methods()


def _importable(name: str) -> bool:
    """Whether the top-level package of module ``name`` is installed (a worker fails to start otherwise)."""
    return importlib.util.find_spec(name.partition(".")[0]) is not None


def _dask(
    session: _Session, func: Callable, items: Sequence[Any], retries: int, progress: Callable | None
) -> list[TaskOutcome]:
    from distributed import as_completed as dask_completed

    client = session.dask_client(func)
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
        future.release()
    return [outcomes[i] for i in range(len(items))]
