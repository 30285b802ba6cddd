"""``python -m waders.core`` runs the ``waders`` command."""

from __future__ import annotations

from .cli.main import run

if __name__ == "__main__":
    run()
