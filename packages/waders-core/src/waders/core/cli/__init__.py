"""The ``waders`` command-line interface: the umbrella command and shared options."""

from __future__ import annotations

from .main import cli, main
from .options import (
    config_options,
    describe_process,
    executor_options,
    list_processes_option,
    list_processes_text,
    load_cli_config,
    show_processes,
)

__all__ = [
    "cli",
    "config_options",
    "describe_process",
    "executor_options",
    "list_processes_option",
    "list_processes_text",
    "load_cli_config",
    "main",
    "show_processes",
]
