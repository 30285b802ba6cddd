"""Helpers shared by the report writers: number formatting, atomic text, cached plots.

Plots made by the report (reference overlays, history trends) are re-drawn only when their
input data change: the hash of the data of every plot is kept in ``report/.plots.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..status import STATUSES, status_of, worst

__all__ = [
    "CACHE_NAME",
    "STATUSES",
    "PlotCache",
    "as_mapping",
    "data_hash",
    "format_value",
    "new_figure",
    "plot_style",
    "status_of",
    "worst",
    "write_text",
]

#: Name of the plot-hash file in the report directory.
CACHE_NAME = ".plots.json"
#: Version of the drawing code; changing it re-draws every cached plot.
PLOT_VERSION = "1"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_value(value: Any, error: Any = None, unit: str | None = None) -> str:
    """Format ``value ± error unit`` with the error rounded to two significant digits.

    Parameters
    ----------
    value : float or None
        The measured value (``None`` or NaN gives ``"n/a"``).
    error : float or None
        Its uncertainty (same unit); omitted when missing or not positive.
    unit : str, optional
        Unit appended after a space.

    Returns
    -------
    str
        For example ``"0.1623 ± 0.0041 e-"``, ``"10.710 ± 0.050"`` or ``"(3.2 ± 0.4)e-05 e-/pix"``.
    """
    number = _finite(value)
    if number is None:
        return "n/a"
    sigma = _finite(error)
    suffix = f" {unit}" if unit else ""
    if sigma is None or sigma <= 0:
        return f"{number:.4g}{suffix}"
    decimals = 1 - math.floor(math.log10(sigma))
    scale = max(abs(number), sigma)
    if decimals > 6 or scale >= 1e6:
        exponent = math.floor(math.log10(scale))
        factor = 10.0**exponent
        inner = sigma / factor if 0 < factor < math.inf else 0.0
        if not inner > 0 or 1 - math.floor(math.log10(inner)) > 6:  # error below 1e-6 of the value: no recursion
            return f"{number:.6g} ± {sigma:.1e}{suffix}"
        inner = format_value(number / factor, sigma / factor)
        return f"({inner})e{exponent:+03d}{suffix}"
    if decimals > 0:
        return f"{number:.{decimals}f} ± {sigma:.{decimals}f}{suffix}"
    return f"{round(number, decimals):.0f} ± {round(sigma, decimals):.0f}{suffix}"


def data_hash(*parts: Any) -> str:
    """A stable hash of JSON-like data (used to skip plots whose inputs did not change)."""
    text = json.dumps([PLOT_VERSION, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def write_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically, unless the file already holds exactly this text.

    Returns
    -------
    bool
        True if the file was (re)written.
    """
    from waders.io.atomic import atomic_path  # waders.io is slow to import; the web server does not need it

    data = text.encode("utf-8")
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True


def new_figure(size: tuple[float, float] = (7.0, 4.0)) -> Any:
    """A matplotlib figure on the Agg canvas (no pyplot state, safe in threads and servers)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=0.9)
    FigureCanvasAgg(fig)
    return fig


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """The waders plot style (shared with the plots of ``waders ana``)."""
    import matplotlib

    from waders.ana.plotting import STYLE

    with matplotlib.rc_context({k: v for k, v in STYLE.items() if k != "savefig.bbox"}):
        yield


class PlotCache:
    """PNG files in one directory, re-drawn only when the hash of their input data changes.

    Parameters
    ----------
    directory : Path
        Where the plots and the hash file (:data:`CACHE_NAME`) live.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CACHE_NAME
        self.drawn: list[str] = []
        self.skipped: list[str] = []
        try:
            loaded = json.loads(self.path.read_text())
            self._hashes: dict[str, str] = (
                {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
            )
        except (OSError, ValueError):
            self._hashes = {}

    def render(self, name: str, key: str, draw: Callable[[Any], None], size: tuple[float, float] = (7.0, 4.0)) -> Path:
        """Return ``directory/name``, drawing it with ``draw(figure)`` unless it is up to date.

        Parameters
        ----------
        name : str
            File name of the PNG.
        key : str
            Hash of everything the plot shows (:func:`data_hash`).
        draw : callable
            Draws on the figure it is given.
        size : tuple of float
            Figure size (inches).
        """
        from waders.io.atomic import atomic_path

        path = self.directory / name
        if self._hashes.get(name) == key and path.is_file():
            self.skipped.append(name)
            return path
        with plot_style():
            fig = new_figure(size)
            draw(fig)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png")
        self._hashes[name] = key
        self.drawn.append(name)
        return path

    def known(self, name: str, key: str) -> bool:
        """True if ``name`` exists and was made from data with hash ``key``."""
        return self._hashes.get(name) == key and (self.directory / name).is_file()

    def remember(self, name: str, key: str) -> None:
        """Record that ``name`` (written by the caller) was made from data with hash ``key``."""
        self._hashes[name] = key

    def save(self) -> None:
        """Write the hash file (atomically)."""
        write_text(self.path, json.dumps(dict(sorted(self._hashes.items())), indent=1) + "\n")


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one (documents are read defensively)."""
    return value if isinstance(value, Mapping) else {}
