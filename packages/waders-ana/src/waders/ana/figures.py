"""Figures of an analysed image, drawn from the recorded results and returned (not written).

:meth:`waders.ana.AnalysisResult.plot` calls these; each returns a
:class:`matplotlib.figure.Figure` in the style of the plots ``waders ana --save-plots``
writes (:mod:`waders.ana.plotting`), which a notebook shows inline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from waders.core.errors import DataError
from waders.core.image import Amplifier, SkipperImage

from .plotting import figure_title, image_view, new_figure

__all__ = ["KINDS", "cluster_figure", "image_figure", "pcd_figure", "pedestal_figure"]

_FIT = "FitDarkCurrentProcess"
_PEDESTAL = "PedestalSubtractionProcess"


def default_product(amplifier: Amplifier) -> str:
    """The most processed product of an amplifier: calibrated, else pedestal-subtracted, else the last one."""
    names = [n for n in amplifier.products if not n.startswith("mask") and amplifier.products[n].ndim == 2]
    for suffix in ("_pedestal_subtracted_e", "_pedestal_subtracted", "_compressed"):
        found = [n for n in names if n.endswith(suffix)]
        if found:
            return found[0]
    if not names:
        raise DataError(f"amplifier {amplifier.name} has no 2-D image product to draw")
    return names[-1]


def image_figure(image: SkipperImage, amplifier: Amplifier, product: str | None = None) -> Any:
    """One image product of an amplifier, with a robust colour scale (1st to 99th percentile).

    Parameters
    ----------
    image, amplifier : SkipperImage, Amplifier
        The analysed image and the amplifier drawn.
    product : str, optional
        Product name (default: :func:`default_product`).
    """
    from waders.io.fits.bunit import product_unit

    product = product or default_product(amplifier)
    data = np.asarray(amplifier.get(product), dtype=np.float64)
    unit = {"adu": "ADU", "electron": "e-"}.get(product_unit(product) or "", "flag")
    fig, ax = new_figure(figure_title(image, product, amplifier))
    image_view(ax, data, label=f"charge ({unit})" if unit != "flag" else "value")
    return fig


def pcd_figure(image: SkipperImage, amplifier: Amplifier, *, unit: str = "ADU") -> Any:
    """Pixel-charge distribution and the dark-current fit of FitDarkCurrentProcess.

    The histogram is the one fitted (``pcd_edges``, ``pcd_counts``); the red steps are the
    fitted expectation per bin (``pcd_expected``).  ``unit`` is that of the fitted image
    (``"ADU"``, or ``"e-"`` when the fit ran on a calibrated image).
    """
    results = amplifier.results.get(_FIT)
    if not results:
        raise DataError(
            f"amplifier {amplifier.name} has no {_FIT} results", hint=f"add {_FIT} to the sequence to plot 'pcd'"
        )
    edges, counts = np.asarray(results["pcd_edges"]), np.asarray(results["pcd_counts"])
    width = float(edges[1] - edges[0]) if edges.size > 1 else 1.0
    fig, ax = new_figure(figure_title(image, _FIT, amplifier))
    if "pcd_counts_unmasked" in results:
        ax.stairs(results["pcd_counts_unmasked"], edges, color="0.6", label="before the cluster mask")
    ax.stairs(counts, edges, color="k", label="pixels")
    expected = np.asarray(results.get("pcd_expected", []), dtype=np.float64)
    fit_edges = np.asarray(results.get("pcd_fit_edges", []), dtype=np.float64)
    if expected.size and fit_edges.size == expected.size + 1 and np.isfinite(expected).all():
        label = "fit" if results.get("valid") else f"fit ({results.get('status')})"
        ax.stairs(expected, fit_edges, color="tab:red", label=label)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5)
    ax.set_xlabel(f"pixel charge ({unit})")
    ax.set_ylabel(f"pixels / {width:.3g} {unit}")
    text = (
        f"gain = {results['gain_adu_per_e']:.4g} ± {results['gain_err']:.2g} {unit}/e-\n"
        f"$\\sigma$ = {results['sigma_e']:.3g} e-\n"
        f"$\\lambda$ = {results['lambda_e_per_pixel']:.4g} ± {results['lambda_err']:.2g} e-/pixel\n"
        f"$\\chi^2$/ndf = {results['chi2_ndf']:.3g}, valid: {results['valid']}"
    )
    ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def pedestal_figure(image: SkipperImage, amplifier: Amplifier) -> Any:
    """Pedestal and noise per row (or column) of PedestalSubtractionProcess, in ADU."""
    results = amplifier.results.get(_PEDESTAL)
    axes = [a for a in ("row", "col") if f"pedestal_{a}" in (results or {})]
    if not axes:
        raise DataError(
            f"amplifier {amplifier.name} has no per-row or per-column pedestal",
            hint=f"run {_PEDESTAL} with axis 'row', 'col' or 'both' to plot 'pedestal'",
        )
    fig, ax = new_figure(figure_title(image, _PEDESTAL, amplifier), nrows=2, ncols=len(axes), size=(7, 6))
    ax = np.asarray(ax).reshape(2, len(axes))
    for i, axis in enumerate(axes):
        pedestal = np.asarray(results[f"pedestal_{axis}"], dtype=np.float64)
        position = np.arange(pedestal.size)
        ax[0, i].errorbar(position, pedestal, yerr=results.get(f"pedestal_err_{axis}"), fmt=".")
        ax[0, i].set_ylabel("pedestal (ADU)")
        ax[1, i].plot(position, results[f"sigma_{axis}"], ".")
        ax[1, i].set_ylabel("noise sigma (ADU)")
        ax[1, i].set_xlabel("row" if axis == "row" else "column")
    return fig


def cluster_figure(image: SkipperImage, clusters: Any, *, bins: int = 100, log: bool = True) -> Any:
    """Energy spectrum of the clusters (keV), one histogram for all amplifiers given."""
    import awkward as ak

    if clusters is None or "Energy" not in ak.fields(clusters):
        raise DataError("no clusters to plot", hint="add ClusterFinder to the sequence to plot 'clusters'")
    energy = ak.to_numpy(clusters["Energy"]).astype(np.float64)
    fig, ax = new_figure(figure_title(image, "ClusterFinder"))
    if energy.size:
        hi = float(np.percentile(energy, 99.5))
        ax.hist(energy, bins=bins, range=(0.0, max(hi, 1e-3)), histtype="step", color="k")
    ax.set_xlabel("cluster energy (keV)")
    ax.set_ylabel("clusters per bin")
    if log and energy.size:
        ax.set_yscale("log")
    ax.set_title(f"{energy.size} clusters", fontsize=9)
    return fig


#: Kinds of :meth:`waders.ana.AnalysisResult.plot` and what they draw.
KINDS = {
    "image": "an image product of one amplifier (product=NAME; default: the most processed one)",
    "pcd": "pixel-charge distribution and the dark-current fit of one amplifier",
    "pedestal": "pedestal and noise per row/column of one amplifier",
    "clusters": "energy spectrum of the clusters (keV) of one amplifier, or of all when amplifier=None",
}
