"""Monte-Carlo truth of reconstructed clusters in simulated or pasted images (``waders ana --mct``).

Images written by waders-sim's PasteClusterProcess (and pysimdamicm's) carry two truth
HDUs next to the data: ``MonteCarloTruth`` (simulated energy per pixel, eV) and
``MCT_ID`` (the true cluster, i.e. paste number, of every pixel; 0 = none).  Every
reconstructed cluster is matched to the true clusters by **pixel overlap**: its pixels
are looked up in both truth images (pixel coordinates are 1-based file coordinates,
``pixels_x = column + 1``), which gives pysimdamicm's branches (spec B.10, C.14.1):

* ``pixels_E_MCT`` (keV): true energy of each pixel; ``Energy_MCT`` (keV): their sum;
* ``Npix_MCT``: pixels with true energy > 0;
* ``pixels_MCT_cls_id``: true cluster id of each pixel (0: none);
* ``MCT_pileup``: 1 if the cluster holds pixels of more than one true cluster;
  ``MCT_pileup_Ncls``: the number of true clusters in it;
* ``MCT_id`` (waders): the true cluster contributing most true energy (0: none), to
  find the reconstructed cluster of a true one.

Deliberate difference from pysimdamicm: the truth HDUs are found by name (pysimdamicm's
``--MCT N`` gave the HDU index, the ids being at N+1), and they are never read as
amplifiers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waders.core.errors import InputFileError
from waders.core.lazy import lazy_module

ak = lazy_module("awkward")

__all__ = ["TRUTH_ENERGY", "TRUTH_ID", "match_truth", "read_truth"]

#: EXTNAME of the true energy per pixel (eV).
TRUTH_ENERGY = "MonteCarloTruth"
#: EXTNAME of the true cluster id per pixel.
TRUTH_ID = "MCT_ID"


def read_truth(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the truth images of a simulated/pasted FITS file.

    Returns
    -------
    energy_ev : numpy.ndarray
        True energy per pixel (eV).
    ids : numpy.ndarray of int
        True cluster id per pixel (0 = none).

    Raises
    ------
    InputFileError
        If the file has no ``MonteCarloTruth``/``MCT_ID`` HDUs, or they differ in shape.
    """
    from astropy.io import fits

    with fits.open(path) as hdul:
        names = [hdu.name.upper() for hdu in hdul]
        missing = [name for name in (TRUTH_ENERGY, TRUTH_ID) if name.upper() not in names]
        if missing:
            raise InputFileError(
                f"{path}: no {' and no '.join(missing)} HDU for --mct",
                hint="analyse images written by waders sim (PasteClusterProcess), or drop --mct",
            )
        energy = np.asarray(hdul[TRUTH_ENERGY].data, dtype=np.float64)
        ids = np.asarray(hdul[TRUTH_ID].data).astype(np.int64)
    if energy.shape != ids.shape or energy.ndim != 2:
        raise InputFileError(f"{path}: {TRUTH_ENERGY} and {TRUTH_ID} are not 2-D images of the same shape")
    return energy, ids


def match_truth(clusters: ak.Array, energy_ev: np.ndarray, ids: np.ndarray) -> ak.Array:
    """Add the Monte-Carlo-truth branches (module docstring) to the clusters of one image.

    Parameters
    ----------
    clusters : ak.Array
        Clusters of one image (``image.results["ClusterFinder"]["clusters"]``), with
        ``pixels_x``/``pixels_y`` (1-based file coordinates).
    energy_ev, ids : numpy.ndarray
        Truth images (:func:`read_truth`); pixels outside them have no truth.

    Returns
    -------
    ak.Array
        The clusters with the truth fields added.
    """
    if len(clusters) == 0:
        return clusters
    npix = ak.to_numpy(ak.num(clusters["pixels_x"], axis=1))
    rows = ak.to_numpy(ak.flatten(clusters["pixels_y"])).astype(np.int64) - 1
    cols = ak.to_numpy(ak.flatten(clusters["pixels_x"])).astype(np.int64) - 1
    inside = (rows >= 0) & (rows < energy_ev.shape[0]) & (cols >= 0) & (cols < energy_ev.shape[1])
    r, c = np.where(inside, rows, 0), np.where(inside, cols, 0)
    pixel_e = np.where(inside, energy_ev[r, c], 0.0) / 1000.0  # keV
    pixel_id = np.where(inside, ids[r, c], 0)
    cluster = np.repeat(np.arange(len(npix)), npix)
    n = len(npix)
    energy_mct = np.bincount(cluster, weights=pixel_e, minlength=n)
    npix_mct = np.bincount(cluster, weights=pixel_e > 0, minlength=n).astype(np.int32)
    # distinct true ids per cluster, and the one with the most true energy
    tagged = pixel_id > 0
    pairs, inverse = np.unique(np.stack([cluster[tagged], pixel_id[tagged]]), axis=1, return_inverse=True)
    n_true = np.bincount(pairs[0], minlength=n).astype(np.int32)
    pair_energy = np.bincount(inverse.ravel(), weights=pixel_e[tagged], minlength=pairs.shape[1])
    best = np.zeros(n, dtype=np.int32)
    if pairs.shape[1]:
        order = np.lexsort((-pair_energy, pairs[0]))  # per cluster, the most energetic pair first
        first = order[np.r_[True, pairs[0][order][1:] != pairs[0][order][:-1]]]
        best[pairs[0][first]] = pairs[1][first]
    out = ak.with_field(clusters, ak.unflatten(pixel_e, npix), "pixels_E_MCT")
    out = ak.with_field(out, ak.unflatten(pixel_id.astype(np.int32), npix), "pixels_MCT_cls_id")
    for name, values in (
        ("Energy_MCT", energy_mct),
        ("Npix_MCT", npix_mct),
        ("MCT_pileup", (n_true > 1).astype(np.int32)),
        ("MCT_pileup_Ncls", n_true),
        ("MCT_id", best),
    ):
        out = ak.with_field(out, values, name)
    return out
