"""Names of amplifiers in per-amplifier parameters, checked against the amplifiers of a file.

A per-amplifier value (``"gain": {"CCD_A": 1.26, ...}``) may be keyed by

* the amplifier's name: the extension name of a one-amplifier-per-extension file
  (``CCD_A``), ``L``/``U`` for the two amplifiers of a Leach image (``<EXTNAME>_L`` when
  several extensions have two amplifiers each);
* the FITS extension number, ``EXT<n>`` for HDU ``n`` (as pysimdamicm named the
  extensions of its ACM mode: for DAMIC-M files, whose data start in HDU 1, ``EXT1`` is
  the first amplifier); for a two-amplifier extension also ``L``/``U``;
* a name declared once in ``input.amplifiers`` (``{"A": "CCD_A", "B": "CCD_B"}``), whose
  values are any of the names above.

:func:`apply_amplifier_map` adds the declared names to the amplifiers of an image and
:func:`check_amplifier_keys` raises a :class:`~waders.core.errors.ConfigError` naming the
keys and the amplifiers when a key matches no amplifier of the file, before anything runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError
from .geometry import AmplifierGeometry

__all__ = ["amplifier_key_hint", "apply_amplifier_map", "check_amplifier_keys", "per_amplifier_keys"]


def _names(geometries: Iterable[AmplifierGeometry]) -> str:
    return ", ".join(g.name for g in geometries)


def amplifier_key_hint(geometries: Iterable[AmplifierGeometry]) -> str:
    """How per-amplifier values can be keyed for these amplifiers (for error messages)."""
    geometries = list(geometries)
    numbered = [a for g in geometries for a in g.aliases if a.startswith("EXT") and a[3:].isdigit()]
    by_number = ""
    if numbered:
        first, last = numbered[0], numbered[-1]
        by_number = f", by extension number {first}..{last}" if first != last else f", by extension number {first}"
    return f"key them by amplifier name{by_number}, or map them in input.amplifiers"


def apply_amplifier_map(
    geometries: Mapping[str, AmplifierGeometry], mapping: Mapping[str, str], source: str
) -> dict[str, AmplifierGeometry]:
    """Return the geometries with the names declared in ``input.amplifiers`` added as aliases.

    Parameters
    ----------
    geometries : mapping
        Geometry per amplifier name (in file order).
    mapping : mapping
        ``input.amplifiers``: name used in the configuration -> name of an amplifier of the
        file (its name or one of its aliases, e.g. ``EXT1``).
    source : str
        File name for messages.

    Raises
    ------
    ConfigError
        A target that is no amplifier of the file, or a declared name that is already the
        name of another amplifier.
    """
    out = dict(geometries)
    for key, target in mapping.items():
        owners = [name for name, g in out.items() if target in g.names]
        if not owners:
            raise ConfigError(
                f"input.amplifiers.{key}: {source} has no amplifier '{target}' "
                f"(amplifiers: {_names(geometries.values())})",
                hint="map the name to one of them",
            )
        if len(owners) > 1:
            raise ConfigError(
                f"input.amplifiers.{key}: '{target}' names several amplifiers of {source} ({', '.join(owners)})",
                hint="map the name to one of them by its full name",
            )
        taken = [name for name, g in out.items() if key in g.names and name != owners[0]]
        if taken:
            raise ConfigError(
                f"input.amplifiers.{key}: '{key}' already names amplifier {taken[0]} of {source}",
                hint="declare another name",
            )
        geometry = out[owners[0]]
        if key not in geometry.names:
            out[owners[0]] = dataclasses.replace(geometry, aliases=(*geometry.aliases, key))
    return out


def per_amplifier_keys(steps: Iterable[Any]) -> list[tuple[str, list[str]]]:
    """``("Process.param", [keys])`` of every per-amplifier value given as a mapping."""
    found = []
    for step in steps:
        params = getattr(type(step), "_params", {})
        values = getattr(step, "_values", {})
        for name, param in params.items():
            value = values.get(name)
            if param.per_amplifier and isinstance(value, dict):
                found.append((f"{step.label()}.{name}", list(value)))
    return found


def check_amplifier_keys(
    steps: Iterable[Any], geometries: Iterable[AmplifierGeometry], source: str, config_source: str | None = None
) -> None:
    """Raise if a per-amplifier value of ``steps`` has a key that names no amplifier of the file.

    Parameters
    ----------
    steps : iterable of Configurable
        The processes (or monitor elements) that will run.
    geometries : iterable of AmplifierGeometry
        The amplifiers of the file (after :func:`apply_amplifier_map`).
    source : str
        File name for messages.
    config_source : str, optional
        Configuration file name, prefixed to the message.

    Raises
    ------
    ConfigError
        ``cfg.json: CalibrationProcess.gain has values for L, U but FILE has amplifiers
        CCD_A, CCD_B, ...`` with how to key them.
    """
    geometries = list(geometries)
    known = {name for g in geometries for name in g.names}
    for where, keys in per_amplifier_keys(steps):
        unknown = [k for k in keys if k not in known]
        if unknown:
            prefix = f"{config_source}: " if config_source else ""
            raise ConfigError(
                f"{prefix}{where} has values for {', '.join(unknown)} but {source} has amplifiers "
                f"{_names(geometries)} ({amplifier_key_hint(geometries)})"
            )
