"""Saturated pixels of real images: the ``saturated_pixels`` map and the clusters' ``pixels_saturated``.

A pixel is saturated when the ADC clipped it.  Two rules (CompressSkipperProcess's
``saturation_adu``):

* ``None`` (pysimdamicm's rule, spec B.1 step 5, for raw images): the mean over the skips
  equals the largest mean of the image **and** the spread over the skips is 0 - every sample
  of a clipped pixel has the same value, which noise never gives to an unclipped pixel, so no
  ADC range needs to be known;
* a level ``L`` (ADU): pixels whose mean is at or above ``L`` (raw or averaged images).

The map (0/1, ``uint8``) is the product ``saturated_pixels`` of every amplifier (written
as the ``PIXSATURATION`` extension); ClusterFinder copies it to the clusters as
``pixels_saturated`` (0/1 per pixel) and ``Npix_sat`` (saturated pixels of the cluster),
pysimdamicm's branches (spec B.10, C.14.1).
"""

from __future__ import annotations

import numpy as np

from waders.core.image import Amplifier, SkipperImage

__all__ = ["PRODUCT", "flag_saturation", "saturated_at", "saturated_map"]

#: Product holding the saturation map (0/1) of an amplifier.
PRODUCT = "saturated_pixels"


def saturated_map(mean: np.ndarray, std: np.ndarray | None, level: float | None, top: float) -> np.ndarray:
    """Saturated pixels of one amplifier.

    Parameters
    ----------
    mean : ndarray
        Mean over the skips (ADU).
    std : ndarray or None
        Spread over the skips (ADU); needed when ``level`` is None.
    level : float or None
        Saturation level (ADU), or None for pysimdamicm's rule (module docstring).
    top : float
        Largest mean of the whole image (ADU), used when ``level`` is None.

    Returns
    -------
    ndarray of bool
    """
    mean = np.asarray(mean, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if level is not None:
            return mean >= level
        if std is None:
            return np.zeros(mean.shape, dtype=bool)
        return (mean == top) & (np.asarray(std) == 0)


def flag_saturation(image: SkipperImage, level: float | None) -> None:
    """Set the ``saturated_pixels`` product (0/1) of every amplifier and record ``n_saturated``.

    Parameters
    ----------
    image : SkipperImage
        Image with ``mean_compressed`` (and ``std_compressed`` when ``level`` is None).
    level : float or None
        Saturation level (ADU) or None (pysimdamicm's rule).
    """
    amplifiers = [a for a in image.amplifiers.values() if a.has("mean_compressed")]
    if not amplifiers:
        return
    means = [np.asarray(a.get("mean_compressed"), dtype=np.float64) for a in amplifiers]
    finite = [m[np.isfinite(m)] for m in means]
    top = max((float(f.max()) for f in finite if f.size), default=np.nan)
    for amp, mean in zip(amplifiers, means, strict=True):
        std = amp.get("std_compressed") if amp.has("std_compressed") else None
        saturated = saturated_map(mean, std, level, top)
        amp.set(PRODUCT, saturated.astype(np.uint8))
        amp.record("CompressSkipperProcess", n_saturated=int(saturated.sum()))


def saturated_at(amplifier: Amplifier, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """0/1 saturation flags of pixels (amplifier coordinates), or None without a saturation map."""
    if not amplifier.has(PRODUCT):
        return None
    return np.asarray(amplifier.get(PRODUCT))[rows, cols].astype(np.int32)
