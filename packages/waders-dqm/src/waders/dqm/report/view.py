"""A read-only view of a run document (``summary_runNNN.json``) arranged for the report.

The document follows the DQM run data model: ``images`` → ``<stem>`` → ``me`` →
``<MEName>`` → ``<amp>`` → {value, error, unit, x, y, yerr, plot, quality}, and
``run_level`` → ``<MEName>`` → ``<amp>`` → {x, y, yerr, unit, plot, quality}.  Missing or
malformed parts are treated as absent, so a partly written run still gives a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waders.core.errors import DataError

from .common import as_mapping, status_of, worst

__all__ = ["ImageRow", "MEView", "RunView", "run_dir_name"]


def run_dir_name(run: int) -> str:
    """``run012``: the directory of a run (number zero-padded to 3 digits)."""
    return f"run{int(run):03d}"


@dataclass(frozen=True)
class ImageRow:
    """One processed image of the run.

    Attributes
    ----------
    stem : str
        Output stem of the image (key of ``images``).
    number : int or None
        Image number within the run.
    entry : Mapping
        The document's entry of the image.
    problems : list of (str, str, str)
        (ME, amplifier, status) of every ME entry that warned or failed.
    """

    stem: str
    number: int | None
    entry: Mapping[str, Any]
    problems: list[tuple[str, str, str]]

    @property
    def status(self) -> str:
        """Status of the image (the document's, else the worst of its MEs)."""
        given = self.entry.get("status")
        return status_of(given) if given is not None else worst(p[2] for p in self.problems)


@dataclass
class MEView:
    """One monitor element for one amplifier, across the images of the run.

    Attributes
    ----------
    name, amplifier : str
        ME name and amplifier.
    rows : list of (ImageRow, Mapping)
        The ME entry of every image that has one, in image order.
    run_level : Mapping or None
        The run-level entry (``run_level[name][amplifier]``), if any.
    """

    name: str
    amplifier: str
    rows: list[tuple[ImageRow, Mapping[str, Any]]] = field(default_factory=list)
    run_level: Mapping[str, Any] | None = None

    @property
    def anchor(self) -> str:
        """HTML id of the ME's section."""
        return f"me-{self.name}-{self.amplifier}"

    @property
    def status(self) -> str:
        """Worst quality status of the run-level entry and of all image entries."""
        statuses = [as_mapping(e.get("quality")).get("status") for _, e in self.rows]
        if self.run_level is not None:
            statuses.append(as_mapping(self.run_level.get("quality")).get("status"))
        return worst(statuses)

    @property
    def unit(self) -> str:
        """The unit of the values (first one given)."""
        for _, entry in self.rows:
            if entry.get("unit"):
                return str(entry["unit"])
        return str(self.run_level.get("unit") or "") if self.run_level else ""

    @property
    def has_values(self) -> bool:
        """True if at least one image has a scalar value."""
        return any(entry.get("value") is not None for _, entry in self.rows)

    @property
    def has_curves(self) -> bool:
        """True if at least one image has x/y arrays."""
        return any(isinstance(entry.get("y"), list) and entry.get("y") for _, entry in self.rows)


def _image_number(entry: Mapping[str, Any]) -> int | None:
    try:
        return int(entry["image"])
    except (KeyError, TypeError, ValueError):
        return None


class RunView:
    """The run document arranged by image and by amplifier.

    Parameters
    ----------
    document : Mapping
        The run document.

    Raises
    ------
    DataError
        If the document has no integer ``run``.
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        if not isinstance(document, Mapping):
            raise DataError("the run document is not a JSON object", hint="pass the content of summary_runNNN.json")
        try:
            self.run = int(document["run"])
        except (KeyError, TypeError, ValueError):
            raise DataError("the run document has no run number", hint="it needs a 'run' integer") from None
        self.document = document
        self.tag = document.get("tag") or ""
        self.status = status_of(document.get("status"))
        reference = document.get("reference_run")
        self.reference_run = int(reference) if isinstance(reference, int | float) else None
        self.updated = document.get("updated") or ""
        images = as_mapping(document.get("images"))
        rows = []
        for stem, entry in images.items():
            entry = as_mapping(entry)
            problems = []
            for me_name, per_amp in as_mapping(entry.get("me")).items():
                for amp, me_entry in as_mapping(per_amp).items():
                    status = status_of(as_mapping(as_mapping(me_entry).get("quality")).get("status"))
                    if status in ("warn", "fail"):
                        problems.append((str(me_name), str(amp), status))
            rows.append(ImageRow(str(stem), _image_number(entry), entry, problems))
        big = 1 << 62
        self.images = sorted(rows, key=lambda r: (r.number if r.number is not None else big, r.stem))
        self.run_level = as_mapping(document.get("run_level"))
        self.masked_fraction = as_mapping(document.get("masked_fraction"))
        self.mes = self._group()
        declared = [str(a) for a in document.get("amplifiers") or []]
        extra = sorted({me.amplifier for me in self.mes} - set(declared))
        self.amplifiers = declared + extra

    def _group(self) -> list[MEView]:
        views: dict[tuple[str, str], MEView] = {}
        for row in self.images:
            for me_name, per_amp in as_mapping(row.entry.get("me")).items():
                for amp, me_entry in as_mapping(per_amp).items():
                    key = (str(me_name), str(amp))
                    views.setdefault(key, MEView(*key)).rows.append((row, as_mapping(me_entry)))
        for me_name, per_amp in self.run_level.items():
            for amp, entry in as_mapping(per_amp).items():
                key = (str(me_name), str(amp))
                views.setdefault(key, MEView(*key)).run_level = as_mapping(entry)
        return list(views.values())

    def by_amplifier(self, amplifier: str) -> list[MEView]:
        """The MEs of one amplifier, in the order they first appear in the document."""
        return [me for me in self.mes if me.amplifier == amplifier]

    def plots(self, run_dir: Path, levels: tuple[str, ...] = ("run", "image")) -> list[tuple[str, str]]:
        """Every existing ME plot of the document: (caption, path relative to the run directory).

        Parameters
        ----------
        run_dir : Path
            The run directory; plots whose file is missing are left out.
        levels : tuple of str
            ``"run"`` for the run-level plots, ``"image"`` for the plots of every image (per
            amplifier and ME, in image order).  Duplicate paths are listed once.
        """
        seen: set[str] = set()
        out: list[tuple[str, str]] = []

        def add(caption: str, relpath: Any) -> None:
            if isinstance(relpath, str) and relpath and relpath not in seen and (run_dir / relpath).is_file():
                seen.add(relpath)
                out.append((caption, relpath))

        if "run" in levels:
            for me in self.mes:
                if me.run_level is not None:
                    add(f"{me.name} (run {self.run}, amplifier {me.amplifier})", me.run_level.get("plot"))
        if "image" in levels:
            for amp in self.amplifiers:
                for me in self.by_amplifier(amp):
                    for row, entry in me.rows:
                        add(f"{me.name}, amplifier {amp}, image {row.number} ({row.stem})", entry.get("plot"))
        return out
