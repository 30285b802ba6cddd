"""Physical units of image products, written as the FITS ``BUNIT`` card.

``astropy.nddata.CCDData.read(path, hdu=N)`` reads the unit back.  Products in
electrons end in ``_e`` (CalibrationProcess) or ``_e2d`` (TwoDGaussProcess); flags,
masks and cluster ids have no unit (no ``BUNIT`` card); every other product, raw
samples included, is in ADU.
"""

from __future__ import annotations

__all__ = ["ELECTRON", "FLAG_PRODUCTS", "product_unit"]

#: FITS/astropy spelling of the units of image products.
ADU = "adu"
ELECTRON = "electron"
#: Products that are flags, masks or ids (no physical unit).
FLAG_PRODUCTS = frozenset({"saturated_pixels", "xtalk", "mask_clusters", "mask_clusters_only", "mask_clusters_ids"})


def product_unit(product: str) -> str | None:
    """Unit of an image product (``"adu"``, ``"electron"``), or None for flags and masks.

    Examples
    --------
    >>> product_unit("mean_compressed_pedestal_subtracted_e")
    'electron'
    >>> product_unit("mean_compressed")
    'adu'
    >>> product_unit("mask_clusters") is None
    True
    """
    if product in FLAG_PRODUCTS or product.startswith("mask"):
        return None
    if product.endswith(("_e", "_e2d")):
        return ELECTRON
    return ADU
