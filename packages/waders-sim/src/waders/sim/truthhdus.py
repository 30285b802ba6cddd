"""Monte-Carlo-truth HDUs of simulated images (CreateFitsImage), the layout ``waders ana --mct`` reads.

Two image HDUs of the shape of the image's pixels (rows x columns of the file, for raw
multi-skip files too) are appended to the FITS file:

* ``MonteCarloTruth``: simulated (deposited) energy per pixel, eV;
* ``MCT_ID``: the true cluster of the pixel, the 1-based number of its event in the image
  (``mct_id`` in the ``.truth.json`` table); where events overlap the highest number wins,
  as in PasteClusterProcess's images; 0 = no simulated charge.

:mod:`waders.ana.clusters.truth` matches the reconstructed clusters to them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["append_truth_hdus", "truth_images"]


def truth_images(
    shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, energy_ev: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Energy (eV) and id images from simulated pixels (0-based file rows and columns).

    Parameters
    ----------
    shape : (int, int)
        Rows and columns of the image.
    rows, cols : ndarray of int
        File coordinates of the simulated pixels (inside the image).
    energy_ev : ndarray
        Deposited energy of each pixel (eV); a pixel may repeat (several events).
    ids : ndarray of int
        True-cluster id (>= 1) of each pixel.
    """
    energy = np.zeros(shape, dtype=np.float64)
    mct_id = np.zeros(shape, dtype=np.int32)
    np.add.at(energy, (rows, cols), energy_ev)
    np.maximum.at(mct_id, (rows, cols), np.asarray(ids, dtype=np.int32))
    return energy, mct_id


def append_truth_hdus(
    path: str | Path, shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, energy_ev: np.ndarray, ids: np.ndarray
) -> None:
    """Append ``MonteCarloTruth`` and ``MCT_ID`` (:func:`truth_images`) to the FITS file ``path``."""
    from astropy.io import fits

    energy, mct_id = truth_images(shape, rows, cols, energy_ev, ids)
    fits.append(path, energy, header=fits.Header([("EXTNAME", "MonteCarloTruth"), ("BUNIT", "eV")]))
    fits.append(path, mct_id, header=fits.Header([("EXTNAME", "MCT_ID")]))
