"""Python interface of waders-ana: :func:`analyse` one image as ``waders ana`` does, in memory.

Examples
--------
>>> from waders.ana import analyse  # doctest: +SKIP
>>> result = analyse("image.fits", gain=10.0)  # doctest: +SKIP
>>> result.amplifiers  # doctest: +SKIP
>>> result.plot("pcd", amplifier="CCD_A")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from waders.core.config import Config, load_config
from waders.core.errors import ConfigError, InputFileError

from .result import AnalysisResult

__all__ = ["analyse", "analysis_config", "override_strings"]

#: Keyword shortcuts of :func:`analyse` (the ``waders ana`` options) -> configuration key.
SHORTCUTS = {
    "gain": "CalibrationProcess.gain",
    "skip_start": "input.image.id_skip_start",
    "skip_end": "input.image.id_skip_end",
    "row_start": "input.image.id_row_start",
    "row_end": "input.image.id_row_end",
    "col_start": "input.image.id_col_start",
    "col_end": "input.image.id_col_end",
}


def override_strings(overrides: Mapping[str, Any]) -> list[str]:
    """Turn keyword overrides into the ``--set PROCESS.PARAM=VALUE`` strings of the command line.

    A key is a shortcut of :data:`SHORTCUTS` (``gain=10.0`` is ``CalibrationProcess.gain``),
    a dotted key (``**{"PedestalSubtractionProcess.method": "median"}``) or the same with a
    double underscore for the dot (``PedestalSubtractionProcess__method="median"``).  Values
    are written as JSON, so lists, numbers, booleans and None keep their type.

    Examples
    --------
    >>> override_strings({"gain": 9.5, "PedestalSubtractionProcess__method": "median"})
    ['CalibrationProcess.gain=9.5', 'PedestalSubtractionProcess.method="median"']
    """
    out = []
    for key, value in overrides.items():
        dotted = SHORTCUTS.get(key, key.replace("__", "."))
        if "." not in dotted:
            raise ConfigError(
                f"unknown keyword {key}={value!r}",
                hint=f"use PROCESS__PARAM=VALUE (e.g. PedestalSubtractionProcess__method='median') "
                f"or one of {', '.join(SHORTCUTS)}",
            )
        out.append(f"{dotted}={json.dumps(value)}")
    return out


def analysis_config(
    config: str | Path | Mapping[str, Any] | Config | None = None,
    *,
    sequence: str | Sequence[str] | None = None,
    **overrides: Any,
) -> Config:
    """The validated configuration :func:`analyse` runs (the default chain of ``waders ana`` when None).

    Parameters
    ----------
    config : path, dict, Config or None
        A JSON file, its content as a dict, a validated :class:`~waders.core.config.Config`
        (used as it is), or None for the default chain (``waders ana`` without ``--json``).
    sequence : str or list of str, optional
        Replaces the sequence of processes (``-s`` of ``waders ana``).
    **overrides
        Parameter values (see :func:`override_strings`).
    """
    if isinstance(config, Config):
        if sequence is not None or overrides:
            raise ConfigError(
                "a validated Config cannot take overrides",
                hint="pass the configuration as a path or dict to override its values",
            )
        return config
    from .cli import default_config

    source = default_config() if config is None else config
    return load_config(source, kind="analysis", overrides=override_strings(overrides), sequence=sequence)


def analyse(
    path: str | Path,
    config: str | Path | Mapping[str, Any] | Config | None = None,
    *,
    sequence: str | Sequence[str] | None = None,
    seed: int | None = 0,
    run: int | None = None,
    image: int | None = None,
    ccd: int | None = None,
    conditions: str | Path | None = None,
    plots: bool = False,
    **overrides: Any,
) -> AnalysisResult:
    """Analyse one image as ``waders ana`` does and return the result in memory.

    The same code runs as for ``waders ana`` (:func:`waders.ana.runner.run_image`); nothing
    is written to disk (call :meth:`AnalysisResult.write` for the files of the command line).

    Parameters
    ----------
    path : str or Path
        FITS file (raw multi-skip or averaged).
    config : path, dict, Config or None
        Analysis configuration; None runs the default chain of ``waders ana`` (compression,
        pedestal per row from the overscan, dark-current fit, calibration, clusters).
    sequence : str or list of str, optional
        Replaces the sequence of processes, e.g. ``["CompressSkipperProcess",
        "PedestalSubtractionProcess"]``.
    seed : int or None
        Seed of the random streams (the same seed gives the same result).
    run, image, ccd : int, optional
        Identifiers (default: the header, then the file name; see ``waders ana --help``).
    conditions : path, optional
        Conditions database for parameters set to ``"conditions"``.
    plots : bool
        Let every process draw its plots (``--save-plots``): ``result.figures`` holds them as
        matplotlib Figures, :meth:`AnalysisResult.write` writes them under ``plots/``.
    **overrides
        Parameter values: ``gain=10.0`` (CalibrationProcess.gain, ADU per electron),
        ``skip_start``/``row_end``/... (input ranges) or any ``PROCESS__PARAM=VALUE``
        (``**{"PROCESS.PARAM": VALUE}`` works too); see :func:`override_strings`.

    Returns
    -------
    AnalysisResult
        Per-amplifier numbers, the image products, the clusters, the summary and plots.

    Raises
    ------
    ConfigError
        For a bad configuration or override (the message names it and the fix).
    InputFileError
        When the file cannot be read.
    """
    from waders.core.versions import waders_versions

    from .runner import AnalysisOptions, output_stem, run_chain
    from .sinks import OutputJob, summary_document

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file", hint="give the path of a FITS image")
    validated = analysis_config(config, sequence=sequence, **overrides)
    options = AnalysisOptions(
        seed=seed,
        run=run,
        image=image,
        ccd=ccd,
        conditions=Path(conditions) if conditions is not None else None,
        save_plots=plots,
    )
    # no output directory: nothing is written (figures stay in memory)
    options.output_dir = None  # type: ignore[assignment]
    analysed, processes, context = run_chain(path, validated, options)
    options.output_dir = Path(".")
    analysed.meta.setdefault("stem", output_stem(path))
    job = OutputJob(path, analysed, validated, processes, options, waders_versions(), context.figures)
    return AnalysisResult(path, validated, analysed, summary_document(job), options, processes, context.figures)
