"""The example inputs of the documentation, and writing them into a folder.

Every command in waders' README and guide runs as printed in a folder where
``waders example-data .`` was run: the files are written flat, under the names the
documentation uses.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import DAMICM_IMAGE, GEANT4_DEMO, LTA_CAL_IMAGE, LTA_IMAGE, PYSIMDAMICM_CONFIGS, path

__all__ = ["ExampleFile", "example_files", "write_examples"]


@dataclass(frozen=True)
class ExampleFile:
    """One example input: its name in the target folder, the shipped file and what it is."""

    name: str
    source: Path
    what: str


def example_files() -> list[ExampleFile]:
    """The example inputs, in the order they are listed."""
    examples = [
        ExampleFile(Path(DAMICM_IMAGE).name, path(DAMICM_IMAGE), "real DAMIC-M image (4 amplifiers, fpack, averaged)"),
        ExampleFile(Path(LTA_IMAGE).name, path(LTA_IMAGE), "real SENSEI LTA image (4 amplifiers, 500 skips averaged)"),
        ExampleFile(Path(LTA_CAL_IMAGE).name, path(LTA_CAL_IMAGE), "real SENSEI LTA image (15 skips averaged)"),
        ExampleFile(
            Path(GEANT4_DEMO).name, path(GEANT4_DEMO), "Geant4-layout events: Fe-55 X-rays and low-energy hits"
        ),
    ]
    for config in sorted(path(PYSIMDAMICM_CONFIGS).glob("*.json")):
        examples.append(ExampleFile(config.name, config, "pysimdamicm 7.2 configuration"))
    return examples


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file in the same folder (no half-written file)."""
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_examples(directory: str | Path, *, force: bool = False) -> list[tuple[ExampleFile, str]]:
    """Write the example inputs into ``directory`` (created if needed).

    Parameters
    ----------
    directory : str or Path
        Target folder.
    force : bool
        Replace files of the same name that differ from the examples.

    Returns
    -------
    list of (ExampleFile, str)
        Each example and what happened to it: "written", "replaced" or "unchanged".

    Raises
    ------
    FileExistsError
        If a file of the same name exists and differs (without ``force``); nothing is written then.
    NotADirectoryError
        If ``directory`` (or an example's name in it) is not usable.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a folder")
    examples = example_files()
    plan = []
    for example in examples:
        target = directory / example.name
        if not target.exists():
            plan.append((example, "written"))
        elif not target.is_file():
            raise NotADirectoryError(f"{target} exists and is not a file")
        elif filecmp.cmp(example.source, target, shallow=False):
            plan.append((example, "unchanged"))
        elif force:
            plan.append((example, "replaced"))
        else:
            raise FileExistsError(f"{target} exists and differs from the example file")
    directory.mkdir(parents=True, exist_ok=True)
    for example, action in plan:
        if action != "unchanged":
            _copy_atomically(example.source, directory / example.name)
    return plan
