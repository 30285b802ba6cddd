"""The run document ``summary_runNNN.json``: where it lives, reading it, merging new images, the run-level evolution."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from waders.core.errors import ConfigError, InputFileError
from waders.io.atomic import atomic_path

from .monitor import MonitorElement

__all__ = [
    "build_run_level",
    "image_order",
    "merge_images",
    "new_document",
    "read_document",
    "reference_document",
    "run_directory",
    "summary_path",
    "write_document",
]

log = logging.getLogger(__name__)


def run_directory(output_dir: str | Path, run: int) -> Path:
    """``OUTDIR/runNNN`` (three digits at least)."""
    return Path(output_dir) / f"run{int(run):03d}"


def summary_path(run_dir: Path, run: int) -> Path:
    """``runNNN/summary_runNNN.json``."""
    return run_dir / f"summary_run{int(run):03d}.json"


def read_document(path: Path) -> dict[str, Any] | None:
    """The run document in ``path`` (None when there is none).

    Raises
    ------
    InputFileError
        If the file exists but cannot be read.
    """
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(
            f"{path}: cannot read the run summary ({err})", hint="delete it to start the run again"
        ) from None


def write_document(path: Path, document: Mapping[str, Any]) -> None:
    """Write the run document atomically (compact JSON, no NaN)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, separators=(",", ":"), allow_nan=False))


def reference_document(store: Any, output_dir: Path, run: int | None) -> dict[str, Any] | None:
    """The document of reference run ``run``: from the store, else from ``output_dir`` (None when no reference).

    Raises
    ------
    ConfigError
        If the reference run was never monitored.
    """
    if run is None:
        return None
    document = store.get_run(run)
    if document is None:
        document = read_document(summary_path(run_directory(output_dir, run), run))
    if document is None:
        raise ConfigError(
            f"reference run {run} is not in the DQM store {store.uri}", hint="monitor it first, or use another --ref"
        )
    return document


def image_order(images: Mapping[str, Any]) -> list[str]:
    """Stems of the run's images by image number (images without a number last, then by stem)."""

    def key(stem: str) -> tuple[Any, ...]:
        number = images[stem].get("image")
        return (number is None, number if number is not None else 0, stem)

    return sorted(images, key=key)


def new_document(
    run: int, tag: str | None, reference_run: int | None, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The run document before this call's images are added: the earlier images, failures and amplifiers kept."""
    previous = previous or {}
    return {
        "run": run,
        "tag": tag if tag is not None else previous.get("tag", ""),
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reference_run": int(reference_run) if reference_run is not None else None,
        "status": "pass",
        "amplifiers": list(previous.get("amplifiers") or []),
        "images": dict(previous.get("images") or {}),
        "failed_inputs": dict(previous.get("failed_inputs") or {}),
        "run_level": {},
        "masked_fraction": {},
    }


def merge_images(
    document: dict[str, Any], outcomes: Sequence[tuple[Path, dict[str, Any] | None, str | None]]
) -> tuple[dict[str, str], set[str]]:
    """Add the image tasks' outcomes ``(path, value, error)`` to ``document``.

    An image added again replaces its entry; a failed input replaces it by a
    ``failed_inputs`` entry.  Return the failures (input -> one-line error) and the stems
    of the images added.
    """
    from waders.ana.runner import output_stem

    failures: dict[str, str] = {}
    processed: set[str] = set()
    for path, value, error in outcomes:
        if error is not None or value is None:
            failures[str(path)] = str(error)
            document["failed_inputs"][output_stem(path)] = {"file": str(path), "error": error}
            document["images"].pop(output_stem(path), None)  # its earlier entry is no longer the file
            log.info("failed: %s", error)  # into the run log; the caller reports it on stderr
            continue
        stem = value["stem"]
        document["failed_inputs"].pop(stem, None)
        if stem in processed:
            log.warning("%s: another input of this call has the same stem %s; the last one is kept", path, stem)
        processed.add(stem)
        document["images"][stem] = value["entry"]
        document["amplifiers"] += [a for a in value["amplifiers"] if a not in document["amplifiers"]]
    document["images"] = {stem: document["images"][stem] for stem in image_order(document["images"])}
    return failures, processed


def build_run_level(document: Mapping[str, Any], monitors: Sequence[MonitorElement]) -> dict[str, Any]:
    """Evolution of every ME value over the images of the run (x: image numbers)."""
    images = document.get("images") or {}
    stems = image_order(images)
    by_name = {me.name: me for me in monitors}
    names = [me.name for me in monitors]
    for stem in stems:
        names += [n for n in images[stem].get("me", {}) if n not in names]
    run_level: dict[str, Any] = {}
    for name in names:
        per_amp: dict[str, Any] = {}
        keys: list[str] = []
        for stem in stems:
            keys += [k for k in images[stem].get("me", {}).get(name, {}) if k not in keys]
        for key in keys:
            xs, ys, errors, unit = [], [], [], ""
            for position, stem in enumerate(stems):
                entry = images[stem].get("me", {}).get(name, {}).get(key)
                if not entry or entry.get("value") is None:
                    continue
                number = images[stem].get("image")
                xs.append(number if number is not None else position)
                ys.append(entry["value"])
                errors.append(entry.get("error"))
                unit = entry.get("unit", unit)
            if ys:
                me = by_name.get(name)
                per_amp[key] = {
                    "x": xs,
                    "y": ys,
                    "yerr": errors if any(e is not None for e in errors) else None,
                    "unit": me.unit if me is not None else unit,
                    "plot": None,
                    "quality": {"status": "none", "test": None, "detail": ""},
                }
        if per_amp:
            run_level[name] = per_amp
    return run_level
