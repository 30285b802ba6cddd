"""Declared parameters: one declaration drives validation, units, CLI and help.

A class deriving from :class:`Configurable` declares its parameters as class
attributes::

    class PedestalSubtractionProcess(Process):
        method = Param("gauss_fit", Choice(["gauss_fit", "median", "mean"]), doc="estimator of the pedestal")
        n_sigma_to_mask = Param(-1.0, doc="mask pixels beyond n MAD before estimating (<= 0: off)")

Each :class:`Param` knows its name, default (in its declared unit), unit, kind,
one-line doc and whether it may be given per amplifier (``{"L": 10.0, "U": 10.7}``).
Reading an instance attribute returns the value in internal units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, ClassVar

from .errors import ConfigError, UnknownNameError
from .kinds import JSON, Kind, Optional, kind_for_default
from .units import parse_unit

__all__ = ["Configurable", "Param", "ParamInfo"]


class Param:
    """Declaration of one parameter of a :class:`Configurable` class.

    Parameters
    ----------
    default : object
        Default value, in the declared ``unit``.
    kind : Kind, optional
        Value kind; inferred from ``default`` if omitted.
    unit : str, optional
        Unit expression in which values are given (e.g. ``"um*um"``); values are
        stored in internal units (:mod:`waders.core.units`).
    doc : str
        One-line description (shown by ``--list-processes NAME``).
    per_amplifier : bool
        Whether the value may be a mapping amplifier name -> value.
    aliases : iterable of str
        Other accepted key names (e.g. pysimdamicm spellings).
    """

    def __init__(
        self,
        default: Any,
        kind: Kind | None = None,
        *,
        unit: str | None = None,
        doc: str = "",
        per_amplifier: bool = False,
        aliases: Iterable[str] = (),
    ) -> None:
        self.kind = kind if kind is not None else kind_for_default(default)
        if default is None and not isinstance(self.kind, Optional | JSON):
            self.kind = Optional(self.kind)
        self.default = default
        self.unit = unit
        self.doc = doc
        self.per_amplifier = per_amplifier
        self.aliases = tuple(aliases)
        self.name = ""
        if unit is not None:
            parse_unit(unit)  # fail at import time on a bad declaration

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Configurable | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance._values[self.name]

    def __set__(self, instance: Configurable, value: Any) -> None:
        raise AttributeError(f"parameter {self.name!r} is read-only; use .replace({self.name}=...)")

    def convert(self, value: Any, where: str) -> Any:
        """Validate a user value and return it in internal units."""
        label = f"{where}.{self.name}"
        if self.per_amplifier and isinstance(value, Mapping):
            return {str(amp): self.kind.convert(v, f"{label}.{amp}", self.unit) for amp, v in value.items()}
        return self.kind.convert(value, label, self.unit)

    def to_declared(self, value: Any) -> Any:
        """Express an internal value in the declared unit (JSON-compatible)."""
        if self.per_amplifier and isinstance(value, dict):
            return {amp: self.kind.to_declared(v, self.unit) for amp, v in value.items()}
        return self.kind.to_declared(value, self.unit)

    def info(self) -> ParamInfo:
        """Describe the parameter for help and documentation."""
        return ParamInfo(
            name=self.name,
            default=self.default,
            unit=self.unit,
            kind=self.kind.description + (" (or per amplifier)" if self.per_amplifier else ""),
            doc=self.doc,
            aliases=self.aliases,
        )


@dataclass(frozen=True)
class ParamInfo:
    """Plain description of a declared parameter (for help text and documentation)."""

    name: str
    default: Any
    unit: str | None
    kind: str
    doc: str
    aliases: tuple[str, ...] = ()


class Configurable:
    """Base class of everything configured by declared :class:`Param` attributes.

    Parameters
    ----------
    **values
        Parameter values in declared units (or strings with units); unknown names
        raise :class:`~waders.core.errors.UnknownNameError`.

    Attributes
    ----------
    ignored_keys : dict
        Keys accepted for compatibility and ignored, mapped to the reason (logged).
    """

    _params: ClassVar[dict[str, Param]] = {}
    _aliases: ClassVar[dict[str, str]] = {}
    ignored_keys: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params: dict[str, Param] = {}
        ignored: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            params.update({k: v for k, v in vars(klass).items() if isinstance(v, Param)})
            ignored.update(vars(klass).get("ignored_keys", {}))
        cls._params = params
        cls.ignored_keys = ignored
        cls._aliases = {alias: p.name for p in params.values() for alias in p.aliases}
        for param in params.values():  # defaults must be valid: fail at import, not at run time
            param.convert(param.default, cls.label())

    def __init__(self, **values: Any) -> None:
        self._values: dict[str, Any] = {
            name: param.convert(param.default, self.label()) for name, param in self._params.items()
        }
        self.ignored: dict[str, Any] = {}
        for key, value in values.items():
            self._set(key, value)

    @classmethod
    def label(cls) -> str:
        """Name used in error messages (the class name)."""
        return cls.__name__

    @classmethod
    def params(cls) -> list[Param]:
        """Return the declared parameters in declaration order (base classes first)."""
        return list(cls._params.values())

    @classmethod
    def resolve_key(cls, key: str) -> str:
        """Map a key (or alias) to the parameter name, or raise with a suggestion."""
        if key in cls._params:
            return key
        if key in cls._aliases:
            return cls._aliases[key]
        names = list(cls._params) + list(cls._aliases)
        close = get_close_matches(key, names, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{cls._aliases.get(close[0], close[0])}'?"
            raise UnknownNameError(f"unknown parameter '{key}' in {cls.label()} ({hint})")
        known = ", ".join(sorted(cls._params)) or "none"
        raise UnknownNameError(f"unknown parameter '{key}' in {cls.label()}", hint=f"known parameters: {known}")

    def _set(self, key: str, value: Any) -> None:
        if key in self.ignored_keys and key not in self._params:
            self.ignored[key] = value
            return
        name = self.resolve_key(key)
        self._values[name] = self._params[name].convert(value, self.label())

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], **kwargs: Any) -> Configurable:
        """Build an instance from a JSON object (keys are parameter names or aliases)."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{cls.label()}: expected a JSON object of parameters, got {mapping!r}")
        instance = cls(**kwargs)
        for key, value in mapping.items():
            instance._set(str(key), value)
        return instance

    def replace(self, **changes: Any) -> Configurable:
        """Return a copy with some parameters changed (values in declared units)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._values = dict(self._values)
        clone.ignored = dict(self.ignored)
        for key, value in changes.items():
            clone._set(key, value)
        return clone

    def value_for(self, name: str, amplifier: str | Sequence[str], default: Any = ...) -> Any:
        """Return the value of a per-amplifier parameter for one amplifier.

        Parameters
        ----------
        name : str
            Parameter name.
        amplifier : str or sequence of str
            Amplifier name, or its name and aliases (the first one found is used).
        default : object, optional
            Returned when a per-amplifier mapping has no entry for the amplifier;
            without it a missing entry raises :class:`ConfigError`.
        """
        value = self._values[name]
        if not isinstance(value, dict) or not self._params[name].per_amplifier:
            return value
        names = (amplifier,) if isinstance(amplifier, str) else tuple(amplifier)
        for candidate in names:
            if candidate in value:
                return value[candidate]
        if default is not ...:
            return default
        given = ", ".join(value) or "none"
        raise ConfigError(
            f"{self.label()}.{name} has no value for amplifier '{names[0]}' (given for: {given})",
            hint=f'add "{names[0]}": ... to {name}',
        )

    def to_dict(self) -> dict[str, Any]:
        """Return all parameter values in their declared units (JSON-compatible)."""
        return {name: self._params[name].to_declared(value) for name, value in self._values.items()}

    def __repr__(self) -> str:
        changed = {
            name: value
            for name, value in self.to_dict().items()
            if value != self._params[name].to_declared(self._params[name].convert(self._params[name].default, ""))
        }
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"
