"""Options and help shared by the ``waders ana``, ``waders sim`` and ``waders dqm`` commands.

The help for processes is generated from their declared parameters, so it never
drifts from what the code accepts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from ..config import Config, load_config
from ..plugins import Registry, process_registry

__all__ = [
    "config_options",
    "describe_process",
    "executor_options",
    "list_processes_option",
    "list_processes_text",
    "load_cli_config",
    "show_processes",
]


def _format_default(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def list_processes_text(
    domain: str | None,
    registry: Registry | None = None,
    *,
    plural: str = "processes",
    option: str = "--list-processes",
) -> str:
    """One line per installed process of ``domain`` (``"ana"``, ``"sim"``; None = all)."""
    registry = registry or process_registry()
    rows = []
    for key, cls in registry.load_all().items():
        if domain is not None and getattr(cls, "domain", domain) != domain:
            continue
        summary = cls.summary() if hasattr(cls, "summary") else (cls.__doc__ or "").strip().split("\n")[0]
        rows.append((key.split("@")[0], summary, registry.distribution(key), products_line(cls)))
    if not rows:
        return f"no {plural} installed"
    width = max(len(row[0]) for row in rows)
    lines = []
    for name, summary, dist, makes in rows:
        lines.append(f"{name:<{width}}  {summary}  [{dist}]")
        if makes:
            lines.append(f"{'':<{width}}    makes: {makes}")
    lines.append("")
    lines.append(f"Show the parameters of one of them with {option} NAME.")
    return "\n".join(lines)


def products_line(cls: type) -> str:
    """The declared products of a process class grouped by kind: ``image a, b; table clusters; ...``."""
    groups: dict[str, list[str]] = {}
    for product in getattr(cls, "products", ()):
        groups.setdefault(product.kind, []).append(product.name)
    return "; ".join(f"{kind} {', '.join(names)}" for kind, names in groups.items())


def describe_process(name: str, registry: Registry | None = None, domain: str | None = None) -> str:
    """Help text of one process: summary, description, and every declared parameter."""
    registry = registry or process_registry()
    cls = registry.get(name, domain)
    doc = (cls.__doc__ or "").strip()
    lines = [f"{name}  [{registry.distribution(registry.key(name, domain))}]"]
    if doc:
        lines += ["", *("  " + line.strip() if line.strip() else "" for line in doc.splitlines())]
    lines += ["", "Parameters (--set NAME.PARAM=VALUE; numbers in the unit shown, or a string like '15 um'):"]
    for info in (p.info() for p in cls.params()):
        unit = f" [{info.unit}]" if info.unit else ""
        aliases = f" (also: {', '.join(info.aliases)})" if info.aliases else ""
        lines.append(f"  {info.name} = {_format_default(info.default)}{unit}  <{info.kind}>{aliases}")
        if info.doc:
            lines.append(f"      {info.doc}")
    products = getattr(cls, "products", ())
    if products:
        lines += ["", "Products (what it makes; the writers follow these declarations):"]
        lines += [f"  {product.describe()}" for product in products]
    ignored = getattr(cls, "ignored_keys", {})
    if ignored:
        lines += ["", "Accepted for compatibility and ignored: " + ", ".join(sorted(ignored))]
    return "\n".join(lines)


def config_options(kind: str, *, sequence: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``--json``, ``--set`` (and ``-s/--sequence``) to a command.

    Parameters
    ----------
    kind : {"analysis", "simulation", "dqm"}
        Configuration kind the command reads.
    sequence : bool
        Whether to add ``-s/--sequence`` (analysis).
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="PROCESS.PARAM=VALUE",
            help="Override a parameter of the configuration (repeatable; VALUE is JSON or text).",
        )(func)
        if sequence:
            func = click.option(
                "-s",
                "--sequence",
                default=None,
                metavar="A,B,...",
                help="Processes to run, in order (replaces the configuration's sequence).",
            )(func)
        func = click.option(
            "-j",
            "--json",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help=f"{kind.capitalize()} configuration file (waders or pysimdamicm layout).",
        )(func)
        return func

    return decorate


def load_cli_config(
    kind: str,
    config_path: Path | None,
    overrides: Sequence[str] = (),
    sequence: str | None = None,
    default: dict[str, Any] | None = None,
) -> Config:
    """Load the configuration named on the command line (or ``default``) and apply overrides."""
    source: Any = config_path if config_path is not None else default
    return load_config(source, kind=kind, overrides=overrides, sequence=sequence)


def executor_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--executor``, ``--workers``, ``--scheduler`` and ``--files-per-task`` to a command."""
    from ..executors import EXECUTORS

    func = click.option(
        "--files-per-task", type=int, default=None, help="Inputs per task (default: several per worker)."
    )(func)
    func = click.option(
        "--scheduler", default=None, metavar="ADDRESS", help="Existing dask scheduler, e.g. tcp://host:8786."
    )(func)
    func = click.option("--workers", type=int, default=1, show_default=True, help="Local worker processes.")(func)
    func = click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        default="serial",
        show_default=True,
        help="Run tasks here, in local processes, or on dask.distributed.",
    )(func)
    return func


def list_processes_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``--list-processes [NAME]`` (``what``: "analysis" or "simulation") to a command."""
    return click.option(
        "--list-processes",
        "list_processes",
        is_flag=False,
        flag_value="*",
        default=None,
        metavar="[NAME]",
        help=f"List the installed {what} processes, or show the parameters of NAME, and exit.",
    )


def show_processes(selection: str, domain: str) -> None:
    """Print what ``--list-processes [NAME]`` asked for."""
    click.echo(list_processes_text(domain) if selection == "*" else describe_process(selection, domain=domain))
