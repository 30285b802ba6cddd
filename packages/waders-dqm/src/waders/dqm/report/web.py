"""Publishing run reports into a web directory, and serving it.

``publish_runs(OUTDIR, WEBDIR)`` copies, for every ``OUTDIR/runNNN`` that has a report,
the report pages, every file they reference inside the run directory (ME plots,
overlays, trends, PDF) and the run document into ``WEBDIR/runNNN/`` — the same layout,
so relative links keep working — and writes ``WEBDIR/index.html`` listing all published
runs.  Each run is staged in a hidden directory and swapped into place (:mod:`.swap`), so a
reader sees the old or the new run, never a half-copied one; unchanged runs are not copied again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from waders.core.errors import ConfigError, InputFileError
from waders.core.paths import remove_stale, temporary_tag

from .common import as_mapping, status_of, write_text
from .pdf import pdf_name
from .swap import replace_directory

__all__ = ["PublishResult", "make_server", "publish_runs", "referenced_files", "write_web_index"]

log = logging.getLogger(__name__)

_RUN = re.compile(r"run(\d{3,})")
MANIFEST = ".published.json"
#: Report pages published with their references.
PAGES = ("index.html", "interactive.html", "history.html")


@dataclass(frozen=True)
class PublishResult:
    """What happened to one run: ``action`` is "published", "unchanged" or "no report"."""

    run: int
    action: str
    files: int = 0


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.links.append(value)


def referenced_files(page_path: Path, root: Path) -> list[Path]:
    """Existing local files that an HTML page links to (``src``/``href``), inside ``root``."""
    parser = _Links()
    parser.feed(page_path.read_text(encoding="utf-8"))
    root = root.resolve()
    out = []
    for link in parser.links:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or not parts.path:
            continue
        target = (page_path.parent / unquote(parts.path)).resolve()
        if target.is_file() and target.is_relative_to(root):
            out.append(target)
    return out


def _run_dirs(source: Path) -> list[tuple[int, Path]]:
    """(run, directory) of the runs under ``source``, or of ``source`` itself if it is a run directory."""
    candidates = [source] if _RUN.fullmatch(source.name) else sorted(p for p in source.iterdir() if p.is_dir())
    out = []
    for directory in candidates:
        match = _RUN.fullmatch(directory.name)
        if match and (directory / f"summary_{directory.name}.json").is_file():
            out.append((int(match.group(1)), directory))
    return out


def _files_of(run_dir: Path) -> list[Path]:
    """Every file of a run that the web copy needs, relative to the run directory."""
    report = run_dir / "report"
    files = {run_dir / f"summary_{run_dir.name}.json"}
    for name in PAGES:
        if (report / name).is_file():
            files.add(report / name)
            files.update(referenced_files(report / name, run_dir))
    root = run_dir.resolve()
    return sorted(p.resolve().relative_to(root) for p in files)


def _manifest(run_dir: Path, files: Iterable[Path]) -> list[list[Any]]:
    out = []
    for rel in files:
        stat = (run_dir / rel).stat()
        out.append([rel.as_posix(), stat.st_size, stat.st_mtime_ns])
    return out


def _publish_run(run: int, run_dir: Path, target: Path) -> PublishResult:
    if not (run_dir / "report" / "index.html").is_file():
        return PublishResult(run, "no report")
    files = _files_of(run_dir)
    manifest = _manifest(run_dir, files)
    final = target / run_dir.name
    with contextlib.suppress(OSError, ValueError):
        if json.loads((final / MANIFEST).read_text()) == manifest:
            return PublishResult(run, "unchanged", len(files))
    remove_stale(target, f".{run_dir.name}.")  # staging folders of killed publishers
    staging = Path(tempfile.mkdtemp(dir=target, prefix=f".{run_dir.name}.{temporary_tag()}.new-"))
    try:
        for rel in files:
            destination = staging / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / rel, destination)
        (staging / MANIFEST).write_text(json.dumps(manifest) + "\n")
        staging.chmod(0o755)
        replace_directory(staging, final)  # one atomic swap where the system allows it
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PublishResult(run, "published", len(files))


def _published(target: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for run, directory in _run_dirs(target):
        try:
            document = json.loads((directory / f"summary_{directory.name}.json").read_text())
        except (OSError, ValueError):
            continue
        out.append((run, document if isinstance(document, dict) else {}))
    return sorted(out, key=lambda item: item[0], reverse=True)


def write_web_index(target: Path) -> Path:
    """Write ``target/index.html``: the published runs, newest first, with their status."""
    runs = _published(target)
    counts: dict[str, int] = {}
    rows = []
    for run, document in runs:
        name = f"run{run:03d}"
        status = status_of(document.get("status"))
        counts[status] = counts.get(status, 0) + 1
        links = []
        if (target / name / "report" / "interactive.html").is_file():
            links.append(("interactive", f"{name}/report/interactive.html"))
        if (target / name / "report" / "history.html").is_file():
            links.append(("history", f"{name}/report/history.html"))
        if (target / name / "report" / pdf_name(run)).is_file():
            links.append(("PDF", f"{name}/report/{pdf_name(run)}"))
        reference = document.get("reference_run")
        rows.append(
            {
                "run": run,
                "name": name,
                "status": status,
                "tag": document.get("tag") or "",
                "images": len(as_mapping(document.get("images"))),
                "reference": reference if reference is not None else "",
                "updated": document.get("updated") or "",
                "links": links,
            }
        )
    latest = f"run{runs[0][0]:03d}" if runs else None
    from .templating import render  # jinja2: only when a page is written (issue 18)

    html = render(
        "runs_index.html.j2",
        title="DQM runs",
        runs=rows,
        summary=", ".join(f"{counts[s]} {s}" for s in ("fail", "warn", "pass", "none") if counts.get(s)),
        latest=latest,
        latest_interactive=latest is not None and (target / latest / "report" / "interactive.html").is_file(),
    )
    path = target / "index.html"
    write_text(path, html)
    return path


def publish_runs(source: Path | str, target: Path | str) -> list[PublishResult]:
    """Copy the reports of the runs in ``source`` into the web directory ``target``.

    Parameters
    ----------
    source : Path
        DQM output directory (holding ``runNNN/``), or one run directory.
    target : Path
        Web directory (created if needed).

    Returns
    -------
    list of PublishResult
        One per run found in ``source``.

    Raises
    ------
    InputFileError
        If ``source`` has no run, or ``target`` cannot be written.
    """
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise InputFileError(f"no DQM output directory {source}", hint="pass --from OUTDIR")
    runs = _run_dirs(source)
    if not runs:
        below = sorted({d.parent for d in source.glob("*/run*") if _run_dirs(d)})
        hint = (
            f"pass the -o folder of 'waders dqm run' with --from, e.g. --from {below[0]}"
            if below
            else "run 'waders dqm run' first, and pass its -o folder with --from"
        )
        raise InputFileError(f"no run (runNNN/summary_runNNN.json) in {source}", hint=hint)
    try:
        target.mkdir(parents=True, exist_ok=True)
        results = [_publish_run(run, directory, target) for run, directory in runs]
        write_web_index(target)
    except OSError as err:
        raise InputFileError(
            f"cannot publish into {target}: {err.strerror or err}", hint="check the web directory"
        ) from None
    return results


class _Handler(SimpleHTTPRequestHandler):
    quiet = False

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def make_server(
    directory: Path | str, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False
) -> ThreadingHTTPServer:
    """An HTTP server (stdlib) of the files in ``directory``; call ``serve_forever()`` on it.

    Parameters
    ----------
    directory : Path
        The directory to serve (a published web directory).
    host : str
        Address to listen on (``127.0.0.1``: this machine only; ``0.0.0.0``: all).
    port : int
        Port; 0 picks a free one (see ``server.server_address``).
    quiet : bool
        Do not log the requests on stderr.

    Raises
    ------
    InputFileError
        If ``directory`` is not a directory.
    ConfigError
        If the server cannot listen on ``host:port``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputFileError(f"no directory {directory} to serve", hint="publish first: waders dqm publish --to DIR")
    handler = type("Handler", (_Handler,), {"quiet": quiet})
    server_class = _Server6 if ":" in host else ThreadingHTTPServer
    try:
        return server_class((host, port), functools.partial(handler, directory=str(directory)))
    except OSError as err:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {err.strerror or err}", hint="choose another --port"
        ) from None
