"""Configuration files: reading, validation against declared parameters, overrides.

Three kinds of JSON configuration exist, in the layout of pysimdamicm (whose files
are accepted unchanged) and in the waders layout (the same sections, plus a few
conveniences such as ``"sequence"`` as a list and values with units, ``"15 um"``):

analysis (``waders ana``)
    ``input`` (blocks ``image``, ``datetime``, ``convention``, ``scp``) and
    ``process`` with an ordered ``sequence`` (a list, or pysimdamicm's
    ``"A;B;C"`` string) and one section of parameters per process.  A process
    named in the sequence without a section runs with its defaults.
simulation (``waders sim``)
    ``detector_response`` and ``reconstruction`` with one section per process and
    an ``active`` flag; active processes run in their default order.  Detector
    constants go in ``detector`` (or pysimdamicm's ``CF``); ``in_root`` and
    ``out_root`` hold file options.
dqm (``waders dqm``)
    ``monitoring_elements`` with one section per monitor element and ``active``.

Everything is validated when the file is loaded: an unknown section, process or
parameter, a wrong type or a wrong unit raises :class:`~waders.core.errors.ConfigError`
with the file name and a suggestion.  ``units``/``unit`` keys of pysimdamicm files
are informative (pysimdamicm ignored them too) and are skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, ClassVar

from .detector import Detector
from .errors import ConfigError, InputFileError, UnknownNameError, WadersError
from .inputs import InputConfig
from .kinds import Bool, Optional, Str
from .parameters import Configurable, Param
from .paths import read_text_bounded
from .plugins import PYSIMDAMICM_PROCESSES, RETIRED_PROCESSES, Registry, monitor_registry, process_registry

__all__ = [
    "KINDS",
    "Config",
    "ConfigDocument",
    "StepSpec",
    "build_config",
    "load_config",
    "parse_document",
    "parse_override",
    "read_json",
]

log = logging.getLogger(__name__)

#: Configuration kinds and the command that uses each.
KINDS = ("analysis", "simulation", "dqm")
_DOMAIN = {"analysis": "ana", "simulation": "sim"}
_STEP_SECTIONS = {
    "analysis": ("process",),
    "simulation": ("detector_response", "reconstruction"),
    "dqm": ("monitoring_elements",),
}
_OTHER_SECTIONS = {
    "analysis": ("input", "detector", "CF"),
    "simulation": ("in_root", "out_root", "detector", "CF"),
    "dqm": (),
}
_COMMON_SECTIONS = ("format", "description")
_INFORMATIVE_KEYS = ("units", "unit")
FORMAT = "waders-1"
_NO_FILE = "<configuration>"


class InRoot(Configurable):
    """Simulation input options (``in_root``), kept for pysimdamicm files."""

    in_dir_path = Param(".", doc="directory of the Geant4 files (the command line gives the files)")
    root_file_name = Param(None, Optional(Str()), doc="Geant4 file name (the command line gives the files)")

    @classmethod
    def label(cls) -> str:
        return "in_root"


class OutRoot(Configurable):
    """Simulation output options (``out_root``)."""

    out_dir_path = Param(".", doc="output directory (overridden by -o)")
    prefix_root_name = Param("out_simulCCDimg", doc="prefix of the output ROOT file name")
    store_pixel_info = Param(True, Bool(), doc="write the pixelizedEvent tree")
    save_CCDimg = Param(False, Bool(), doc="also write FITS images (same as --image)")

    @classmethod
    def label(cls) -> str:
        return "out_root"


_SECTION_CLASSES: dict[str, type[Configurable]] = {"in_root": InRoot, "out_root": OutRoot}


@dataclass
class StepSpec:
    """One process (or monitor-element) section as written in the file."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    active: bool = False
    section: str = "process"


@dataclass
class ConfigDocument:
    """A configuration file parsed into sections, before validation."""

    kind: str
    path: Path | None = None
    steps: dict[str, StepSpec] = field(default_factory=dict)
    sequence: list[str] | None = None
    input: dict[str, Any] = field(default_factory=dict)
    detector: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """File name for messages."""
        return str(self.path) if self.path else _NO_FILE


@contextmanager
def _located(source: str) -> Iterator[None]:
    """Prefix configuration errors with the file they come from."""
    try:
        yield
    except WadersError as err:
        if source == _NO_FILE or err.message.startswith(source):
            raise
        raise type(err)(f"{source}: {err.message}", hint=err.hint) from None


def _pairs_hook(source: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                log.warning("%s: key %r appears twice in one object; the last value is used", source, key)
            out[key] = value
        return out

    return hook


#: Bounds of a configuration file: real ones are a few kB and 4-5 levels deep.
_MAX_CONFIG_BYTES = 16 << 20
_MAX_CONFIG_DEPTH = 32


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value (iterative: a hostile file cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > _MAX_CONFIG_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON configuration file.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable or not valid JSON (with line and column).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        text = read_text_bounded(path, "a JSON configuration", limit=_MAX_CONFIG_BYTES)
    except InputFileError as err:
        raise ConfigError(f"configuration file {err.message}", hint=err.hint) from None
    try:
        data = json.loads(text, object_pairs_hook=_pairs_hook(str(path)))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply to be a configuration") from None
    if _depth(data) > _MAX_CONFIG_DEPTH:
        raise ConfigError(f"{path}: JSON nested deeper than {_MAX_CONFIG_DEPTH} levels; not a configuration")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a configuration must be a JSON object")
    return data


def detect_kind(data: Mapping[str, Any]) -> str | None:
    """Guess the configuration kind from its sections (None if unclear)."""
    for kind in KINDS:
        if any(section in data for section in _STEP_SECTIONS[kind]):
            return kind
    if "input" in data:
        return "analysis"
    return None


def _split_sequence(value: Any, source: str) -> list[str]:
    if isinstance(value, str):
        parts = value.replace(",", ";").split(";")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        raise ConfigError(f"{source}: process.sequence must be a list of process names or a 'A;B;C' string")
    names = [p.strip() for p in parts if p.strip()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: process {', '.join(duplicates)} appears twice in the sequence")
    return names


def _step_params(name: str, section: Any, source: str) -> tuple[dict[str, Any], Any]:
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: the section of {name} must be a JSON object, got {section!r}")
    params = {k: v for k, v in section.items() if k not in _INFORMATIVE_KEYS and k != "active"}
    return params, section.get("active")


def parse_document(
    data: Mapping[str, Any], *, kind: str | None = None, path: str | Path | None = None
) -> ConfigDocument:
    """Split a configuration into sections and process specs (no validation of parameters).

    Parameters
    ----------
    data : mapping
        The JSON object.
    kind : {"analysis", "simulation", "dqm"}, optional
        Expected kind; detected from the sections if omitted.
    path : path, optional
        File name for messages.
    """
    source = str(path) if path else "<configuration>"
    detected = detect_kind(data)
    kind = kind or detected
    if kind not in KINDS:
        raise ConfigError(
            f"{source}: cannot tell what this configuration is for",
            hint="an analysis file has 'input'/'process', a simulation file 'detector_response', "
            "a DQM file 'monitoring_elements'",
        )
    if detected is not None and detected != kind:
        raise ConfigError(f"{source}: this is a {detected} configuration, but a {kind} configuration is expected")
    doc = ConfigDocument(kind=kind, path=Path(path) if path else None)
    allowed = (*_STEP_SECTIONS[kind], *_OTHER_SECTIONS[kind], *_COMMON_SECTIONS)
    for key, value in data.items():
        if key not in allowed:
            close = get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"sections of a {kind} file: {', '.join(allowed)}"
            raise UnknownNameError(f"{source}: unknown section '{key}' ({hint})")
        if key in _COMMON_SECTIONS:
            continue
        if key in _STEP_SECTIONS[kind]:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: section '{key}' must be a JSON object")
            for name, section in value.items():
                if name == "sequence" and kind == "analysis":
                    doc.sequence = _split_sequence(section, source)
                    continue
                if name in _INFORMATIVE_KEYS:
                    continue
                params, active = _step_params(name, section, source)
                if name in doc.steps:
                    raise ConfigError(f"{source}: {name} is configured in two sections")
                flag = bool(Bool().convert(active, f"{name}.active", None)) if active is not None else False
                doc.steps[name] = StepSpec(name, params, flag, key)
        elif key == "input":
            doc.input = dict(value) if isinstance(value, Mapping) else value
        elif key in ("detector", "CF"):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: section '{key}' must be a JSON object")
            doc.detector.update(value)
        else:
            doc.sections[key] = value
    if kind == "analysis":
        for name in doc.sequence or []:
            doc.steps.setdefault(name, StepSpec(name, {}, True, "process"))
        for name, step in doc.steps.items():
            in_sequence = name in (doc.sequence or [])
            if step.active and not in_sequence and doc.sequence is not None:
                log.warning("%s: %s has active=true but is not in the sequence; it does not run", source, name)
            step.active = in_sequence
    return doc


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``"PROCESS.PARAM=VALUE"`` (VALUE is JSON, or a plain string).

    Returns
    -------
    (path, value)
        The dotted key split into parts and the value.
    """
    key, sep, raw = text.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not sep or len(parts) < 2:
        raise ConfigError(
            f"bad --set {text!r}",
            hint="write PROCESS.PARAM=VALUE, e.g. --set PedestalSubtractionProcess.method=median",
        )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return parts, value


def apply_overrides(doc: ConfigDocument, overrides: Sequence[str]) -> None:
    """Apply ``--set`` overrides to a parsed document (they win over the file)."""
    for text in overrides:
        parts, value = parse_override(text)
        head = parts[0]
        if head == "input":
            if len(parts) != 3:
                raise ConfigError(f"bad --set {text!r}", hint="write input.BLOCK.KEY=VALUE, e.g. input.image.n_amp=1")
            block = doc.input.setdefault(parts[1], {})
            if not isinstance(block, dict):
                raise ConfigError(f"bad --set {text!r}: input.{parts[1]} is not a block")
            block[parts[2]] = value
        elif head in ("detector", "CF"):
            doc.detector[".".join(parts[1:])] = value
        elif head in _SECTION_CLASSES:
            doc.sections.setdefault(head, {})[".".join(parts[1:])] = value
        else:
            if len(parts) != 2:
                raise ConfigError(f"bad --set {text!r}", hint="write PROCESS.PARAM=VALUE")
            section = _STEP_SECTIONS[doc.kind][0]
            step = doc.steps.setdefault(head, StepSpec(head, {}, False, section))
            if parts[1] == "active" and doc.kind != "analysis":
                step.active = bool(Bool().convert(value, f"{head}.active", None))
            else:
                step.params[parts[1]] = value


@dataclass
class Config:
    """A validated configuration.

    Attributes
    ----------
    kind : str
        ``"analysis"``, ``"simulation"`` or ``"dqm"``.
    steps : list
        Instances of the active processes (or monitor elements), in run order.
    configured : dict
        Instances of every configured process, active or not (all validated).
    detector : Detector
        Detector constants.
    input : InputConfig, optional
        The ``input`` section (analysis).
    sections : dict
        Other validated sections (``in_root``, ``out_root``).
    """

    kind: str
    steps: list[Any]
    configured: dict[str, Any]
    detector: Detector
    input: InputConfig | None = None
    sections: dict[str, Configurable] = field(default_factory=dict)
    path: Path | None = None
    retired: dict[str, str] = field(default_factory=dict)
    step_sections: dict[str, str] = field(default_factory=dict)

    FORMAT: ClassVar[str] = FORMAT

    @property
    def processes(self) -> list[Any]:
        """Alias of :attr:`steps` for process configurations."""
        return self.steps

    @property
    def names(self) -> list[str]:
        """Names of the active steps in run order."""
        return [type(step).name for step in self.steps]

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration in waders layout, every value explicit (declared units)."""
        out: dict[str, Any] = {"format": FORMAT}
        if self.kind == "analysis":
            out["input"] = self.input.to_dict() if self.input else {}
            process: dict[str, Any] = {"sequence": self.names}
            process.update({name: inst.to_dict() for name, inst in self.configured.items()})
            out["process"] = process
            out["detector"] = self.detector.to_dict()
        elif self.kind == "simulation":
            for name, inst in self.configured.items():
                section = self.step_sections.get(name, "detector_response")
                out.setdefault(section, {})[name] = {**inst.to_dict(), "active": inst in self.steps}
            out["detector"] = self.detector.to_dict()
            out.update({key: sec.to_dict() for key, sec in self.sections.items()})
        else:
            out["monitoring_elements"] = {
                name: {**inst.to_dict(), "active": inst in self.steps} for name, inst in self.configured.items()
            }
        return out


def _registry_for(kind: str) -> Registry:
    return monitor_registry() if kind == "dqm" else process_registry()


def build_config(doc: ConfigDocument, registry: Registry | None = None) -> Config:
    """Validate a parsed document against the installed processes or monitor elements.

    Raises
    ------
    ConfigError
        For any unknown name, wrong type or wrong unit, prefixed with the file name.
    """
    registry = registry or _registry_for(doc.kind)
    domain = _DOMAIN.get(doc.kind)
    with _located(doc.source):
        if doc.kind == "analysis" and doc.sequence is None:
            raise ConfigError("process.sequence is missing", hint="list the processes to run, or pass -s A,B,C")
        configured: dict[str, Any] = {}
        retired: dict[str, str] = {}
        skipped: dict[str, str] = {}
        for name, spec in doc.steps.items():
            if name in RETIRED_PROCESSES and not registry.has(name, domain):
                if spec.active:
                    raise ConfigError(f"process '{name}' is active but no longer exists: {RETIRED_PROCESSES[name]}")
                retired[name] = RETIRED_PROCESSES[name]
                log.info("%s: inactive section %s ignored (%s)", doc.source, name, RETIRED_PROCESSES[name])
                continue
            if not spec.active and name in PYSIMDAMICM_PROCESSES and not registry.has(name, domain):
                skipped[name] = "not installed"
                log.warning("%s: inactive section %s skipped: that process is not installed", doc.source, name)
                continue
            try:
                cls = registry.get(name, domain)
            except UnknownNameError as err:
                where = "in the sequence" if doc.kind == "analysis" and spec.active else f"in section '{spec.section}'"
                raise UnknownNameError(f"{err.bare} {where}", hint=err.hint, suggestion=err.suggestion) from None
            cls_domain = getattr(cls, "domain", None)
            if domain and cls_domain and cls_domain != domain:
                other = "simulation" if cls_domain == "sim" else "analysis"
                raise ConfigError(f"{name} is a {other} process and cannot be used in a {doc.kind} configuration")
            configured[name] = cls.from_mapping(spec.params)
        active = [name for name, spec in doc.steps.items() if spec.active and name in configured]
        if doc.kind == "analysis":
            active = [name for name in doc.sequence or [] if name in configured]
        else:
            active.sort(key=lambda n: getattr(type(configured[n]), "order", 0))  # stable: file order on ties
        detector = Detector.for_domain(domain or "ana", doc.detector)
        input_config = InputConfig.from_mapping(doc.input) if doc.kind == "analysis" else None
        sections = {key: _SECTION_CLASSES[key].from_mapping(value) for key, value in doc.sections.items()}
    return Config(
        kind=doc.kind,
        steps=[configured[name] for name in active],
        configured=configured,
        detector=detector,
        input=input_config,
        sections=sections,
        path=doc.path,
        retired={**retired, **skipped},
        step_sections={name: spec.section for name, spec in doc.steps.items()},
    )


def load_config(
    source: str | Path | Mapping[str, Any] | None,
    *,
    kind: str,
    overrides: Sequence[str] = (),
    sequence: Sequence[str] | str | None = None,
    registry: Registry | None = None,
) -> Config:
    """Read, override and validate a configuration.

    Parameters
    ----------
    source : path or mapping or None
        JSON file, an already-parsed JSON object, or None for an empty configuration.
    kind : {"analysis", "simulation", "dqm"}
        What the configuration is for.
    overrides : sequence of str
        ``"PROCESS.PARAM=VALUE"`` strings from ``--set``; they win over the file.
    sequence : sequence of str or str, optional
        Replaces the analysis sequence (``-s``; commas or semicolons).
    registry : Registry, optional
        Where to look processes up (default: installed entry points).

    Returns
    -------
    Config
        The validated configuration.
    """
    if source is None:
        data: Mapping[str, Any] = {}
        path = None
    elif isinstance(source, Mapping):
        data, path = source, None
    else:
        path = Path(source)
        data = read_json(path)
    doc = parse_document(data, kind=kind, path=path)
    if sequence is not None:
        doc.sequence = _split_sequence(sequence if isinstance(sequence, str) else list(sequence), doc.source)
        for name, step in doc.steps.items():
            step.active = name in doc.sequence
        for name in doc.sequence:
            doc.steps.setdefault(name, StepSpec(name, {}, True, "process"))
    apply_overrides(doc, overrides)
    return build_config(doc, registry)
