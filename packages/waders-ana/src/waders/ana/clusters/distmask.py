"""Distance of the clusters to masked pixels (``waders ana --mask FILE``, pysimdamicm's ``--mask``).

The mask is a FITS image of the shape of the analysed image's HDUs (its first 2-D image,
pysimdamicm's extension 1 of files with an empty primary HDU): a nonzero or NaN value masks
the pixel.  For every pixel of the image the Euclidean distance (pixels) to the nearest
masked pixel is computed once (an exact distance transform); a cluster gets

* ``dist_mask_min``: the smallest distance of its pixels (0 if it touches a masked pixel);
* ``dist_mask_max``: the largest distance of its pixels,

pysimdamicm's branches (spec B.10, C.14.1).  Without any masked pixel both are -1.

Deliberate difference from pysimdamicm: the cluster pixels (1-based ``pixels_x``,
``pixels_y``) are compared with the mask in the same 0-based file coordinates (pysimdamicm
mixed 1-based cluster and 0-based mask coordinates, so its distances were off by up to
sqrt(2) pixels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waders.core.errors import InputFileError
from waders.core.image import SkipperImage
from waders.core.lazy import lazy_module

ak = lazy_module("awkward")

__all__ = ["add_mask_distances", "cluster_mask_distances", "distance_to_mask", "hdu_shape", "read_cluster_mask"]


def read_cluster_mask(path: str | Path) -> np.ndarray:
    """Read a ``--mask`` file: True = masked (nonzero or NaN).

    Raises
    ------
    InputFileError
        Missing or unreadable file, or no 2-D image in it (one-line message, exit code 2).
    """
    from ..tools.fitsinput import read_mask

    return read_mask(path)


def hdu_shape(image: SkipperImage) -> tuple[int, int]:
    """Shape (rows, columns) of the image's HDUs: the extent of its amplifiers in file coordinates."""
    geometries = [amp.geometry for amp in image.amplifiers.values()]
    rows = max(g.row_offset + g.nrows for g in geometries)
    cols = max(g.col_offset + g.ncols for g in geometries)
    return int(rows), int(cols)


def distance_to_mask(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) of every pixel to the nearest masked pixel; -1 everywhere without one.

    Parameters
    ----------
    mask : ndarray of bool
        True = masked.
    """
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.full(mask.shape, -1.0)
    return np.asarray(distance_transform_edt(~mask), dtype=np.float64)


def cluster_mask_distances(clusters: ak.Array, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dist_mask_min`` and ``dist_mask_max`` (pixels) of every cluster.

    Parameters
    ----------
    clusters : ak.Array
        Clusters with ``pixels_x``/``pixels_y`` (1-based file coordinates).
    distance : ndarray
        :func:`distance_to_mask` of the mask.

    Raises
    ------
    InputFileError
        If a cluster pixel lies outside the mask.
    """
    n = len(clusters)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    npix = ak.to_numpy(ak.num(clusters["pixels_x"], axis=1))
    rows = ak.to_numpy(ak.flatten(clusters["pixels_y"])).astype(np.int64) - 1
    cols = ak.to_numpy(ak.flatten(clusters["pixels_x"])).astype(np.int64) - 1
    inside = (rows >= 0) & (rows < distance.shape[0]) & (cols >= 0) & (cols < distance.shape[1])
    if not inside.all():
        raise InputFileError(f"clusters lie outside the mask of shape {distance.shape}")
    values = distance[rows, cols]
    starts = np.concatenate([[0], np.cumsum(npix)[:-1]])
    return np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)


def add_mask_distances(
    clusters: ak.Array, mask: np.ndarray | str | Path, image: SkipperImage, source: str = ""
) -> ak.Array:
    """Add ``dist_mask_min``/``dist_mask_max`` to the clusters of one image.

    Parameters
    ----------
    clusters : ak.Array
        Clusters of the image (1-based file coordinates).
    mask : ndarray of bool, or path
        The mask (True = masked) or its ``--mask`` file.
    image : SkipperImage
        The analysed image (its HDU shape must be the mask's).
    source : str
        Name of the mask file for messages.

    Raises
    ------
    InputFileError
        If the mask does not have the shape of the image's HDUs.
    """
    if not isinstance(mask, np.ndarray):
        source = source or str(mask)
        mask = read_cluster_mask(mask)
    shape = hdu_shape(image)
    if mask.shape != shape:
        raise InputFileError(
            f"{source or 'mask'}: the mask has shape {mask.shape}, the image {image.label} {shape}",
            hint="give a mask made for these images",
        )
    low, high = cluster_mask_distances(clusters, distance_to_mask(mask))
    out = ak.with_field(clusters, low, "dist_mask_min")
    return ak.with_field(out, high, "dist_mask_max")
