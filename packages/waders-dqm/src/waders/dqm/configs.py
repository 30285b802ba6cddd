"""The configurations of a DQM run: the active monitor elements and the analysis they need."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from waders.core.config import Config, load_config
from waders.core.errors import ConfigError, WadersError
from waders.core.process import Process

from .monitor import MonitorElement, active_monitors

__all__ = ["DEFAULT_MONITORS", "analysis_for", "check_against_first", "load_analysis", "load_monitors"]

log = logging.getLogger(__name__)

#: The monitor elements ``waders dqm run`` evaluates without ``--me-json``.
DEFAULT_MONITORS: dict[str, Any] = {
    "description": "Default monitor elements of waders dqm run: noise, pedestal, dark current, gain, defects.",
    "monitoring_elements": {
        name: {"active": 1}
        for name in (
            "MEQmeanDiffSingleSkips",
            "MEReadoutnoiseNDCM",
            "MEMeanPixelChargePerRow",
            "MESTDPixelChargePerRow",
            "MESlopeFromMeanPCPerRow",
            "MEMedianPixelChargePerCol",
            "MENpixQ1ePerCol",
            "MEOVSPedestalSigmaPerRow",
            "MEOVSPedestalMu",
            "MEOVSPedestalSigma",
            "MEOVSPCD",
            "MEPCD",
            "MEFitDC",
            "MEFitDCMu0",
            "MEFitDCSigma",
            "MEFitDCLambda",
            "MEFitDCCalibration",
            "MEDefectsMask",
        )
    },
}


def _load(
    source: Config | Mapping[str, Any] | str | Path | None,
    kind: str,
    default: Mapping[str, Any],
    overrides: Sequence[str] = (),
) -> Config:
    if isinstance(source, Config):
        if source.kind != kind:
            raise ConfigError(f"expected a {kind} configuration, got a {source.kind} one")
        return source
    return load_config(default if source is None else source, kind=kind, overrides=overrides)


def load_monitors(
    me_config: Config | Mapping[str, Any] | str | Path | None, overrides: Sequence[str] = ()
) -> list[MonitorElement]:
    """The active MEs of a DQM configuration (default: :data:`DEFAULT_MONITORS`), in evaluation order."""
    from .monitors import register_builtin

    register_builtin()
    config = _load(me_config, "dqm", DEFAULT_MONITORS, overrides)
    monitors = active_monitors(config.steps)
    if not monitors:
        raise ConfigError("no active monitor element", hint='set "active": 1 for some monitoring_elements')
    return monitors


def load_analysis(config: Config | Mapping[str, Any] | str | Path | None, monitors: Sequence[MonitorElement]) -> Config:
    """The analysis configuration (default: waders ana's default analysis) plus what ``monitors`` need."""
    from waders.ana.cli import default_config

    return analysis_for(_load(config, "analysis", default_config() if config is None else {}), monitors)


def analysis_for(config: Config, monitors: Sequence[MonitorElement]) -> Config:
    """The analysis configuration plus what the MEs need.

    A process an ME reads is appended to the sequence when missing (with the ME's
    parameters); a configured one gets the parameters the MEs set.  ``mask_clusters`` set
    by an ME is dropped, with a warning, when no BuildClusterMask runs before the fit.
    """
    steps: list[Process] = list(config.steps)
    configured = dict(config.configured)
    requested: dict[str, tuple[type[Process], dict[str, Any], dict[str, Any], list[str]]] = {}
    for me in monitors:
        for step in me.analysis_steps():
            name = step.process.name
            cls, params, defaults, owners = requested.setdefault(name, (step.process, {}, {}, []))
            for key, value in step.params.items():
                if key in params and params[key] != value:
                    log.warning(
                        "%s.%s is set by %s and %s; %s's value is used", name, key, owners[-1], me.name, me.name
                    )
                params[key] = value
            defaults.update(step.defaults)
            owners.append(me.name)
    names = [type(s).name for s in steps]
    for name, (cls, params, defaults, owners) in requested.items():
        position = names.index(name) if name in names else None
        if params.get("mask_clusters"):
            before = names[:position] if position is not None else names
            if "BuildClusterMask" not in before:
                log.warning(
                    "%s: mask_clusters is ignored: the analysis builds no cluster mask before %s", owners[0], name
                )
                params = {k: v for k, v in params.items() if k != "mask_clusters"}
        if position is not None:
            if params:
                steps[position] = steps[position].replace(**params)
                log.info("analysis: %s parameters %s set by %s", name, ", ".join(sorted(params)), ", ".join(owners))
        else:
            steps.append(cls(**{**defaults, **params}))
            names.append(name)
            log.info("analysis: %s added for %s", name, ", ".join(owners))
        configured[name] = steps[names.index(name)]
    return dataclasses.replace(config, steps=steps, configured=configured)


def check_against_first(analysis: Config, path: Path) -> None:
    """Stop before any processing when the configuration does not fit the run's files (checked on the first)."""
    from waders.ana.runner import check_config_against

    try:
        check_config_against(analysis, path)
    except ConfigError:
        raise
    except WadersError:
        pass  # an unreadable file is reported with the others, as a failed input
