"""What :func:`waders.ana.analyse` returns: the analysed image, its numbers, clusters and figures."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.config import Config
from waders.core.errors import DataError
from waders.core.image import Amplifier, SkipperImage, short_repr

__all__ = ["AmplifierResult", "AnalysisResult"]

#: Short names and units of the per-amplifier numbers shown by ``repr``.
_SHOWN = (
    ("gain_adu_per_e", "gain", "ADU/e-"),
    ("noise_adu", "noise", "ADU"),
    ("sigma_e", "noise", "e-"),
    ("lambda_e_per_pixel", "dark current", "e-/pixel"),
    ("n_clusters", "clusters", ""),
)


class AmplifierResult(Mapping[str, Any]):
    """Numbers of one amplifier: a read-only mapping with the keys of the summary file.

    ``result.amplifiers["CCD_A"]["gain_adu_per_e"]`` is the gain in ADU per electron;
    the keys and their units are those of ``amplifiers`` in the summary (see the
    "Outputs and units" page).  :attr:`results` holds everything each process
    recorded (including arrays such as the per-row pedestals).
    """

    def __init__(self, amplifier: Amplifier, values: Mapping[str, Any]) -> None:
        self._amplifier = amplifier
        self._values = dict(values)

    @property
    def name(self) -> str:
        """Amplifier name."""
        return self._amplifier.name

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        """Everything recorded per process for this amplifier (numbers and arrays)."""
        return self._amplifier.results

    @property
    def products(self) -> list[str]:
        """Names of the image products of this amplifier."""
        return list(self._amplifier.products)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            have = ", ".join(self._values) or "none"
            raise KeyError(f"amplifier {self.name} has no {key!r} (it has: {have})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = [
            f"{label} {self._values[key]:.4g}{' ' + unit if unit else ''}"
            for key, label, unit in _SHOWN
            if isinstance(self._values.get(key), int | float)
        ]
        if self._values.get("fit_valid") is False:
            shown.append("fit NOT valid")
        return short_repr(f"<AmplifierResult {self.name}: " + ", ".join(shown or ["no numbers"]) + ">")


@dataclass(repr=False)
class AnalysisResult:
    """The analysis of one image, in memory (nothing is written until :meth:`write`).

    Attributes
    ----------
    path : Path
        The analysed file.
    config : Config
        The configuration that ran.
    image : SkipperImage
        The analysed image: products per amplifier (``image["CCD_A"]["mean_compressed"]``,
        numpy arrays) and everything the processes recorded.
    summary : dict
        What ``<stem>.summary.json`` holds (format ``waders-summary-1``, see
        :func:`waders.ana.schema.summary_schema`), without the ``outputs`` key.
    processes : list of Process
        The chain that ran (its declared products: ``products()``, :mod:`waders.core.products`).
    figures_by_process : dict
        ``{process name: {figure name: matplotlib Figure}}`` drawn with ``analyse(..., plots=True)``.
    """

    path: Path
    config: Config
    image: SkipperImage
    summary: dict[str, Any]
    options: Any = None
    processes: list[Any] = field(default_factory=list)
    figures_by_process: dict[str, dict[str, Any]] = field(default_factory=dict)
    _amplifiers: dict[str, AmplifierResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.processes = list(self.processes or self.config.steps)
        numbers = self.summary.get("amplifiers", {})
        self._amplifiers = {n: AmplifierResult(a, numbers.get(n, {})) for n, a in self.image.amplifiers.items()}

    @property
    def amplifiers(self) -> dict[str, AmplifierResult]:
        """Numbers per amplifier name (:class:`AmplifierResult`)."""
        return self._amplifiers

    @property
    def clusters(self) -> Any:
        """The ``clusters`` table (ClusterFinder's), an awkward Array (one record per cluster), or None.

        Energies are in keV, positions in 1-based file pixels (``docs/outputs.md``).
        """
        from .sinks import clusters_table

        return clusters_table(self.image, self.processes)

    @property
    def figures(self) -> dict[str, Any]:
        """Figures drawn with ``analyse(..., plots=True)``: ``{"<process>_<name>": Figure}`` (empty otherwise).

        The keys are the plot file names of ``waders ana --save-plots`` without the stem and suffix,
        e.g. ``"FitDarkCurrentProcess_CCD_A"``.
        """
        from .sinks import flat_figures

        return flat_figures(self.figures_by_process)

    def tables(self) -> dict[str, Any]:
        """Every declared table that was made: ``{"<process>.<table>": table}`` (image tables only)."""
        from waders.core.products import declared

        out = {}
        for process, product in declared(self.processes, "table"):
            value = self.image.results.get(process.name, {}).get(product.name)
            if value is not None:
                out[f"{process.name}.{product.name}"] = value
        return out

    @property
    def warnings(self) -> list[str]:
        """Problems met during the analysis (failed fits, ...)."""
        return list(self.summary.get("warnings", []))

    def products(self, amplifier: str | None = None) -> list[str]:
        """Image products of one amplifier (default: the first)."""
        return self._amplifier(amplifier).available()

    def array(self, product: str, amplifier: str | None = None) -> np.ndarray:
        """One image product of one amplifier (default: the first) as a numpy array (readout order)."""
        return np.asarray(self._amplifier(amplifier).get(product))

    def ccddata(self, product: str, amplifier: str | None = None) -> Any:
        """One image product as :class:`astropy.nddata.CCDData` with its unit (``adu``, ``electron``).

        Masks and flags have no unit (``dimensionless``).  The header holds the image's
        header cards and ``PRODUCT``/``AMPLIFIER`` cards.
        """
        import astropy.units as u
        from astropy.nddata import CCDData

        from waders.io.fits.bunit import product_unit

        amp = self._amplifier(amplifier)
        unit = product_unit(product)
        meta = {k: v for k, v in self.image.header.items() if isinstance(v, str | int | float | bool)}
        meta.update({"PRODUCT": product, "AMPLIFIER": amp.name})
        data = np.asarray(amp.get(product), dtype=np.float64)
        return CCDData(data, unit=u.Unit(unit) if unit else u.dimensionless_unscaled, meta=meta)

    def plot(self, kind: str = "image", amplifier: str | None = None, **options: Any) -> Any:
        """Draw one figure and return it (a :class:`matplotlib.figure.Figure`; a notebook shows it).

        Parameters
        ----------
        kind : {"image", "pcd", "pedestal", "clusters"}
            What to draw (:data:`waders.ana.figures.KINDS`).
        amplifier : str, optional
            Amplifier name (default: the first; for ``"clusters"``: all amplifiers).
        **options
            ``product=NAME`` for ``"image"``; ``bins``, ``log`` for ``"clusters"``.
        """
        from . import figures

        if kind == "clusters":
            clusters = self.clusters
            if amplifier is not None and clusters is not None:
                clusters = clusters[self._cluster_amplifier(clusters) == self._amplifier(amplifier).name]
            return figures.cluster_figure(self.image, clusters, **options)
        draw = {"image": figures.image_figure, "pcd": figures.pcd_figure, "pedestal": figures.pedestal_figure}
        if kind not in draw:
            raise DataError(f"unknown plot kind {kind!r}", hint=f"use one of {', '.join(figures.KINDS)}")
        if kind == "pcd":
            fit = next((p for p in self.config.steps if p.name == "FitDarkCurrentProcess"), None)
            options.setdefault("unit", fit.unit if fit is not None else "ADU")
        return draw[kind](self.image, self._amplifier(amplifier), **options)

    def write(self, directory: str | Path, *, save_images: bool = False) -> dict[str, str]:
        """Write the outputs ``waders ana`` writes into ``directory``; return ``{kind: path}``.

        The same sinks as ``waders ana`` (:mod:`waders.ana.sinks`): the summary, the clusters
        ROOT file (when a process declares a ``clusters`` table), with ``save_images``
        ``<stem>_waders.fits`` with the image products (BUNIT cards), and the :attr:`figures`
        under ``plots/`` when there are any.
        """
        from dataclasses import replace

        from waders.core.versions import waders_versions

        from .runner import AnalysisOptions
        from .sinks import OutputJob, write_outputs

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        options = replace(self.options or AnalysisOptions(), output_dir=directory, save_images=save_images)
        options.save_plots = bool(self.figures_by_process)
        job = OutputJob(
            self.path, self.image, self.config, self.processes, options, waders_versions(), self.figures_by_process
        )
        return write_outputs(job)

    def _amplifier(self, name: str | None) -> Amplifier:
        if name is None:
            return next(iter(self.image.amplifiers.values()))
        return self.image[name]

    def _cluster_amplifier(self, clusters: Any) -> np.ndarray:
        import awkward as ak

        names = list(self.image.amplifiers)
        for field_name in ("amp", "ampl", "amplifier"):
            if field_name in ak.fields(clusters):
                values = ak.to_numpy(clusters[field_name])
                if values.dtype.kind in "iu":
                    return np.asarray(names, dtype=object)[values]
                return values.astype(str)
        raise DataError("the clusters do not say their amplifier", hint="plot 'clusters' with amplifier=None")

    def _repr_html_(self) -> str:
        """Jupyter display: the short repr and a table of the numbers per amplifier (units in the header)."""
        from html import escape

        columns = [(key, f"{label} ({unit})" if unit else label) for key, label, unit in _SHOWN]
        head = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
        rows = []
        for name, amp in self.amplifiers.items():
            cells = "".join(
                f"<td>{amp[key]:.4g}</td>" if isinstance(amp.get(key), int | float) else "<td></td>"
                for key, _ in columns
            )
            valid = {True: "yes", False: "<b>NO</b>"}.get(amp.get("fit_valid"), "")
            rows.append(f"<tr><th>{escape(name)}</th>{cells}<td>{valid}</td></tr>")
        return (
            f"<p>{escape(repr(self))}</p><table><tr><th>amplifier</th>{head}<th>fit valid</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    def __repr__(self) -> str:
        amps = ", ".join(self.image.amplifiers)
        clusters = self.clusters
        n_clusters = f", {len(clusters)} clusters" if clusters is not None else ""
        warnings = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return short_repr(
            f"<AnalysisResult {self.path.name}: amplifiers {amps}; "
            f"{' -> '.join(self.config.names)}{n_clusters}{warnings}>"
        )
