"""The options of one ``waders dqm run`` call (:class:`RunOptions`), validated once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waders.core.config import Config
from waders.core.errors import ConfigError
from waders.core.executors import EXECUTORS

__all__ = ["DEFAULT_PRODUCTS", "IMAGE_PLOTS", "MAX_RUN", "RunOptions"]

#: Image products written into ``avgimg/<stem>_waders.fits`` (those present).
DEFAULT_PRODUCTS = ("mean_compressed_pedestal_subtracted_e", "mask_clusters")
#: Choices of :attr:`RunOptions.image_plots`.
IMAGE_PLOTS = ("none", "problems", "all")
#: Largest run number: the store keeps run numbers as 64-bit integers.
MAX_RUN = 2**63 - 1

ConfigSource = Config | Mapping[str, Any] | str | Path | None


def _integer(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{label} must be an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{label} must be an integer, got {value!r}") from None


def _strings(label: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str | Path):
        value = [value]
    try:
        return tuple(str(v) for v in value)
    except TypeError:
        raise ConfigError(f"{label} must be a list of strings, got {value!r}") from None


@dataclass(frozen=True)
class RunOptions:
    """What :func:`waders.dqm.run.monitor_run` does with its inputs (``waders dqm run``'s options).

    Validated when made: a bad value raises a one-line :class:`~waders.core.errors.ConfigError`.
    Lists are kept as tuples, the output directory as a :class:`~pathlib.Path`.

    Attributes
    ----------
    run : int
        Run number (0 to :data:`MAX_RUN`).
    output_dir : Path
        DQM output root; the run goes into ``output_dir/runNNN``.
    config : Config, mapping or path, optional
        Analysis configuration (default: waders ana's default analysis).
    me_config : Config, mapping or path, optional
        Monitor-element configuration (pysimdamicm's ``dqmSKImg`` layout accepted; default
        :data:`waders.dqm.configs.DEFAULT_MONITORS`).
    store_uri : str or Path, optional
        Store (default ``output_dir/dqm.sqlite``; ``mongodb://...`` for MongoDB).
    reference_run : int, optional
        Run to compare with (default: the run's previous reference, if any); not ``run``.
    tag : str, optional
        Run tag (kept from earlier updates when not given).
    pdf : bool
        Also a PDF report.
    image_hr : tuple of str
        File-name patterns of images plotted in full (every ME).
    image_plots : {"none", "problems", "all"}
        Per-image plots: none, those of failing or warning MEs (and image MEs), or all.
    skip : tuple of str
        Leave out inputs whose name contains one of these (a ``.txt`` file lists more).
    me_overrides : tuple of str
        ``ME.PARAM=VALUE`` overrides of the ME configuration.
    products : tuple of str
        Image products written into ``avgimg/<stem>_waders.fits``.
    plots : bool
        Draw plots at all (False: ``plot`` is null everywhere, for quick checks).
    report : bool
        Build the report.
    seed : int
        Seed of the analysis' random streams.
    executor : {"serial", "processes", "dask"}
        Where the images are analysed (see :func:`waders.core.executors.run_tasks`).
    workers : int
        Local worker processes (at least 1).
    scheduler : str, optional
        Address of an existing dask scheduler.
    files_per_task : int, optional
        Images per task (None or 0: about four tasks per worker; one when serial).
    """

    run: int
    output_dir: Path = Path(".")
    config: ConfigSource = None
    me_config: ConfigSource = None
    store_uri: str | Path | None = None
    reference_run: int | None = None
    tag: str | None = None
    pdf: bool = False
    image_hr: tuple[str, ...] = ()
    image_plots: str = "problems"
    skip: tuple[str, ...] = ()
    me_overrides: tuple[str, ...] = ()
    products: tuple[str, ...] = DEFAULT_PRODUCTS
    plots: bool = True
    report: bool = True
    seed: int = 0
    executor: str = "serial"
    workers: int = 1
    scheduler: str | None = None
    files_per_task: int | None = None

    def __post_init__(self) -> None:
        run = _integer("run number", self.run)
        reference = None if self.reference_run is None else _integer("reference run number", self.reference_run)
        if run < 0:
            raise ConfigError(f"run number must not be negative, got {run}")
        for label, number in (("run", run), ("reference run", reference)):
            if number is not None and not 0 <= number <= MAX_RUN:
                raise ConfigError(f"{label} number {number} is out of range", hint=f"use 0 to {MAX_RUN}")
        if reference == run:
            raise ConfigError(f"run {run} cannot be its own reference", hint="use --ref with another run")
        if self.image_plots not in IMAGE_PLOTS:
            raise ConfigError(f"image_plots must be one of {', '.join(IMAGE_PLOTS)}, got {self.image_plots!r}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}", hint=f"use one of {', '.join(EXECUTORS)}")
        workers = _integer("workers", self.workers)
        if workers < 1:
            raise ConfigError("--workers must be at least 1")
        per_task = _integer("files per task", self.files_per_task) if self.files_per_task else None  # 0: default
        if per_task is not None and per_task < 0:
            raise ConfigError(f"--files-per-task must not be negative, got {per_task}")
        fixed = {
            "run": run,
            "reference_run": reference,
            "output_dir": Path(self.output_dir),
            "seed": _integer("seed", self.seed),
            "workers": workers,
            "files_per_task": per_task,
            "image_hr": _strings("image_hr", self.image_hr),
            "skip": _strings("skip", self.skip),
            "me_overrides": _strings("me_overrides", self.me_overrides),
            "products": _strings("products", self.products),
        }
        for name, value in fixed.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)
