"""What ``waders ana`` reports about one image: the summary JSON and the ROOT info/config trees.

The summary (``<stem>.summary.json``) is what the data-quality monitor builds on::

    {"input", "waders_version", "config", "amplifiers": {NAME: {"pedestal_adu", "noise_adu",
     "pedestal_region", "pedestal_fits_invalid", "gain_adu_per_e", "gain_source", "gain_err",
     "sigma_e", "lambda_e_per_pixel", "lambda_err", "mu0_adu", "fit_chi2_ndf", "fit_valid",
     "fit_status", "fit_reasons", "fit_seeded_from_data", "fit_seed_source", "n_clusters", ...}},
     "timings_s": {PROCESS: seconds}, "warnings": [...], "studies": {PROCESS: {...}}}

Keys are absent when the process that computes them did not run.  ``fit_valid`` is the verdict
of :mod:`waders.ana.fitting.quality` on the dark-current fit and ``fit_reasons`` lists why it is
not valid; ``gain_source`` says where the calibration gain comes from (``"dark-current fit"``,
``"configuration"``, ``"conditions #ID"``, or ``"configuration (fallback: <reason>)"`` when the
fit could not be used).

The summary names no process: each process contributes its part.  A process with a
``summary_part(image)`` method returns a :class:`SummaryPart` (its per-amplifier numbers, its
warnings, its ``studies`` entry); any other gets :func:`study_part` (its recorded scalars under
``studies.<process>``).  Parts are merged in the order of the processes' ``summary_order``
(then the chain order): the first value of a key wins, except that a :class:`Fallback` value
(the fitted gain when a calibration gives one) gives way to a plain value.  The warnings of an
amplifier are listed in the order of ``warning_order`` (default: ``summary_order``).  The ROOT ``info``
tree is assembled the same way from the processes' ``info_part(image)`` columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from waders.core.config import Config
from waders.core.image import SkipperImage

__all__ = [
    "FIT_COLUMNS",
    "Fallback",
    "SummaryPart",
    "finite_or_zero",
    "info_columns",
    "json_ready",
    "merge_numbers",
    "process_config_columns",
    "study_part",
    "summarise",
    "summary_parts",
]

#: info-tree columns ``<A>_<short>`` and ``<A>_<short>_err`` of every amplifier (0 when no
#: process contributes them): (short name, summary key of the value).
FIT_COLUMNS = (("gain", "gain_adu_per_e"), ("dc", "lambda_e_per_pixel"), ("sig", "sigma_adu"), ("mu0", "mu0_adu"))


@dataclass(frozen=True)
class Fallback:
    """A value a process offers unless another process gives the key a plain value.

    In :func:`merge_numbers` a plain value replaces a Fallback, a Fallback never replaces
    anything, and otherwise the first value of a key wins.
    """

    value: Any


@dataclass
class SummaryPart:
    """What one process contributes to the summary of an image (its ``summary_part(image)``).

    Attributes
    ----------
    amplifiers : dict
        ``{amplifier name: {summary key: value}}``, the process's per-amplifier numbers
        (keys and units of ``docs/outputs.md``); values may be :class:`Fallback`.
    warnings : dict
        ``{amplifier name: [message, ...]}``: problems to list under ``warnings``.
    study : dict, optional
        The process's entry under ``studies`` (``{"image": {...}, "amplifiers": {...}}``).
    """

    amplifiers: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    study: dict[str, Any] | None = None


def json_ready(value: Any) -> Any:
    """Convert numpy values and NaN/inf (to null) so that ``json.dumps`` writes valid JSON."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def merge_numbers(target: dict[str, Any], part: dict[str, Any]) -> None:
    """Merge one process's numbers into ``target`` (see :class:`Fallback` for the precedence)."""
    for key, value in part.items():
        if key not in target or (isinstance(target[key], Fallback) and not isinstance(value, Fallback)):
            target[key] = value


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Fallback) else value


def study_part(process: Any, image: SkipperImage) -> SummaryPart:
    """The default part of a process: its reportable results under ``studies``.

    Scalars, strings and short lists of numbers the process recorded for the image and per
    amplifier (not images, not tables).
    """
    entry: dict[str, Any] = {}
    image_values = _reportable(image.results.get(process.name, {}))
    if image_values:
        entry["image"] = image_values
    per_amp = {
        name: _reportable(amp.results[process.name])
        for name, amp in image.amplifiers.items()
        if process.name in amp.results
    }
    if per_amp:
        entry["amplifiers"] = per_amp
    return SummaryPart(study=entry or None)


def summary_parts(processes: Sequence[Any], image: SkipperImage) -> list[tuple[Any, SummaryPart]]:
    """``(process, part)`` of every process, ordered by ``summary_order`` (then chain order).

    A process with a ``summary_part(image)`` method gives its own part; any other its
    :func:`study_part`.
    """
    ordered = sorted(processes, key=lambda p: getattr(p, "summary_order", 100))
    out = []
    for process in ordered:
        hook = getattr(process, "summary_part", None)
        out.append((process, hook(image) if callable(hook) else study_part(process, image)))
    return out


def _amplifier_numbers(parts: list[tuple[Any, SummaryPart]], name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _, part in parts:
        merge_numbers(out, part.amplifiers.get(name, {}))
    out = {k: _unwrap(v) for k, v in out.items()}
    if "sigma_e" not in out and out.get("noise_adu") is not None and out.get("gain_adu_per_e"):
        out["sigma_e"] = out["noise_adu"] / out["gain_adu_per_e"]
    return {k: v for k, v in out.items() if v is not None}


def summarise(
    image: SkipperImage,
    config: Config,
    *,
    input_path: str,
    versions: dict[str, str],
    processes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Build the summary of one analysed image (see the module docstring).

    Every process contributes its part (:func:`summary_parts`); ``processes`` defaults to
    the configured sequence.
    """
    parts = summary_parts(config.steps if processes is None else processes, image)
    warnings = list(image.meta.get("warnings", []))
    by_warning = sorted(
        parts, key=lambda item: getattr(item[0], "warning_order", getattr(item[0], "summary_order", 100))
    )
    for name in image.amplifiers:
        for _, part in by_warning:
            warnings += part.warnings.get(name, [])
    studies: dict[str, Any] = {}
    for process in config.steps if processes is None else processes:  # chain order
        study = next((part.study for p, part in parts if p is process), None)
        if study:
            studies[process.name] = study
    summary = {
        "input": input_path,
        "waders_version": versions.get("waders-ana", versions.get("waders-core")),
        "versions": versions,
        "run": image.meta.get("run"),
        "image": image.meta.get("image"),
        "ccd": image.meta.get("ccd"),
        "geometry": image.geometry.describe(),
        "times": {k: image.meta[k] for k in ("exposure_start", "readout_start", "readout_end") if k in image.meta},
        "config": config.to_dict(),
        "amplifiers": {name: _amplifier_numbers(parts, name) for name in image.amplifiers},
        "timings_s": image.provenance.timings if image.provenance else {},
        "warnings": warnings,
    }
    if studies:
        summary["studies"] = studies
    return json_ready(summary)


#: Longest list of numbers copied into the summary.
_MAX_LIST = 10_000


def _reportable(values: dict[str, Any]) -> dict[str, Any]:
    """Scalars, strings and lists of numbers (not images, not awkward arrays) of a result dictionary."""
    return {key: value for key, value in values.items() if _is_reportable(value)}


def _is_reportable(value: Any) -> bool:
    if isinstance(value, bool | int | float | str | np.generic) or value is None:
        return True
    if isinstance(value, np.ndarray):
        return value.ndim <= 2 and value.size <= _MAX_LIST
    return isinstance(value, list | tuple) and len(value) <= _MAX_LIST


def process_config_columns(config: Config, versions: dict[str, str], e2eV: float) -> dict[str, Any]:
    """One entry of the ``process_config`` tree: ``<Process>_<param>`` numbers (pysimdamicm layout)."""
    columns: dict[str, Any] = {
        "id": 0,
        "waders_version": versions.get("waders-ana", ""),
        "waders_commit": "",
        "e2eV": float(e2eV),
    }
    for position, process in enumerate(config.steps):
        columns[f"{process.name}_sequence_id"] = position
        for key, value in process.to_dict().items():
            _flatten(columns, f"{process.name}_{key}", value)
    return columns


def _flatten(columns: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if not (isinstance(value, float) and math.isnan(value)):
            columns[key] = value
    elif isinstance(value, dict):
        for sub, item in value.items():
            _flatten(columns, f"{key}_{sub}", item)


def info_columns(image: SkipperImage, processes: Sequence[Any] = ()) -> dict[str, Any]:
    """One entry of the ``info`` tree for an image (pysimdamicm's names where they exist).

    The image's identifiers and times; per amplifier the columns each process gives with its
    ``info_part(image)`` method (``{amplifier name: {column: value}}``, values may be
    :class:`Fallback`) in chain order, and the ``<A>_gain``, ``<A>_dc``, ``<A>_sig``,
    ``<A>_mu0`` columns and their ``_err`` (0 when no process gives them, :data:`FIT_COLUMNS`);
    ``readout_time_<axis>``; then the image-level columns (key None of the parts).
    """
    geometry = image.geometry
    exposure = geometry.exposure_time if math.isfinite(geometry.exposure_time) else 0.0
    read = geometry.read_time if math.isfinite(geometry.read_time) else 0.0
    columns: dict[str, Any] = {
        "RUNID": int(image.meta.get("run") or 0),
        "nfile": int(image.meta.get("image") or 0),
        "idccd": int(image.meta.get("ccd") or 0),
        "total_exposure": exposure + read,
        "exposure_time": exposure,
        "read_time": read,
        "readout_start": str(image.meta.get("exposure_start", "")),
        "readout_end": str(image.meta.get("readout_end", "")),
    }
    parts = [hook(image) for hook in (getattr(p, "info_part", None) for p in processes) if callable(hook)]
    for name in image.amplifiers:
        contributed: dict[str, Any] = {}
        for part in parts:
            merge_numbers(contributed, part.get(name, {}))
        for short, _ in FIT_COLUMNS:
            for key in (f"{name}_{short}", f"{name}_{short}_err"):
                contributed.setdefault(key, 0.0)
        columns.update({k: _unwrap(v) for k, v in contributed.items()})
    for axis in ("row", "col"):
        sizes = [np.size(v) for k, v in columns.items() if k.endswith(f"_pedestal_mu_{axis}_ADU")]
        if sizes:
            columns[f"readout_time_{axis}"] = np.linspace(0.0, 1.0, sizes[0])
    image_level: dict[str, Any] = {}
    for part in parts:
        merge_numbers(image_level, part.get(None, {}))
    columns.update({k: _unwrap(v) for k, v in image_level.items()})
    return columns


def finite_or_zero(value: Any) -> float:
    """``float(value)``, or 0.0 for None, NaN and inf (the info tree has no missing values)."""
    return float(value) if value is not None and math.isfinite(value) else 0.0
