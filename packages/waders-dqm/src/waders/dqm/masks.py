"""The masks of a run: per-image masks (``recon/<stem>.dqm_masks.npz``) and ``mask_runNNN.fits`` built from them."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.geometry import AmplifierGeometry
from waders.core.image import SkipperImage
from waders.io.atomic import atomic_path

from .document import image_order
from .monitor import MonitorElement

__all__ = ["DEFECTS", "load_masks", "masks_path", "save_masks", "write_run_mask"]

log = logging.getLogger(__name__)

#: The MEs whose ``candidates`` are the defects mask (the first active one makes the run mask).
DEFECTS = ("MEDefectsMask", "MEMaskedPixels")


def masks_path(run_dir: Path, stem: str) -> Path:
    """``runNNN/recon/<stem>.dqm_masks.npz``."""
    return run_dir / "recon" / f"{stem}.dqm_masks.npz"


def save_masks(path: Path, masks: Mapping[str, np.ndarray], image: SkipperImage) -> None:
    """Write the masks of one image (keys ``defects/<amp>``, ``clusters/<amp>``) with its geometry."""
    arrays = {key: np.packbits(mask, axis=None) for key, mask in masks.items()}
    geometry = json.dumps(image.geometry.describe()["amplifiers"])
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, geometry=np.array(geometry), **arrays)


def load_masks(path: Path) -> tuple[dict[str, AmplifierGeometry], dict[str, np.ndarray]]:
    """The amplifier geometries and the masks written by :func:`save_masks`."""
    with np.load(path) as data:
        described = json.loads(str(data["geometry"]))
        geometries = {
            g["name"]: AmplifierGeometry(
                g["name"],
                g["nrows"],
                g["ncols"],
                prescan_cols=g["prescan_cols"],
                overscan_cols=g["overscan_cols"],
                prescan_rows=g["prescan_rows"],
                overscan_rows=g["overscan_rows"],
                mirrored=g["mirrored"],
            )
            for g in described
        }
        masks = {}
        for key in data.files:
            if key == "geometry":
                continue
            amp = key.split("/", 1)[1]
            shape = geometries[amp].shape
            masks[key] = np.unpackbits(data[key], count=shape[0] * shape[1]).reshape(shape).astype(bool)
    return geometries, masks


def write_run_mask(
    run_dir: Path, document: Mapping[str, Any], monitors: Mapping[str, MonitorElement]
) -> dict[str, float]:
    """Rebuild ``mask_runNNN.fits`` from the per-image masks; return the masked fraction per amplifier.

    The defects masks when a defects ME is active (its thresholds make the run mask from
    the frequency), else the union of the cluster masks.
    """
    from astropy.io import fits

    defects_me = next((monitors[n] for n in DEFECTS if n in monitors), None)
    kind = "defects" if defects_me is not None else "clusters"
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    geometries: dict[str, AmplifierGeometry] = {}
    for stem in image_order(document["images"]):
        path = masks_path(run_dir, stem)
        if not path.exists():
            continue
        found, masks = load_masks(path)
        for key, mask in masks.items():
            what, amp = key.split("/", 1)
            if what != kind:
                continue
            if amp in sums and sums[amp].shape != mask.shape:
                log.warning(
                    "%s: amplifier %s has another size than in the other images; left out of the mask", stem, amp
                )
                continue
            geometries.setdefault(amp, found[amp])
            rows, cols = found[amp].region("active")
            in_active = np.zeros(mask.shape, dtype=bool)
            in_active[rows, cols] = mask[rows, cols]
            sums[amp] = sums.get(amp, 0) + in_active
            counts[amp] = counts.get(amp, 0) + 1
    if not sums:
        return {}
    run = int(document["run"])
    header = fits.Header()
    header["RUN"] = (run, "run number")
    header["NFILES"] = (max(counts.values()), "images in the mask")
    header["MASKTYPE"] = (kind, "defects (MEDefectsMask) or clusters")
    if defects_me is not None:
        header["FPIX"] = (defects_me.hot_pixel_fraction, "hot pixel: fraction of images above")
        header["FPPROW"] = (defects_me.hot_rows_fraction, "hot row: fraction of hot columns above")
        header["FPPCOL"] = (defects_me.hot_cols_fraction, "hot column: fraction of hot rows above")
    hdul = fits.HDUList([fits.PrimaryHDU(header=header)])
    fractions = {}
    for amp, total in sums.items():
        geometry = geometries[amp]
        frequency = total / counts[amp]
        mask = defects_me.run_mask(frequency, geometry) if defects_me is not None else frequency > 0
        rows, cols = geometry.region("active")
        fractions[amp] = float(mask[rows, cols].mean())
        for label, data, dtype in (("MASK", mask, np.uint8), ("FREQ", frequency, np.float32)):
            hdu = fits.ImageHDU(geometry.to_file_layout(data).astype(dtype), name=f"{label}_{amp}"[:68])
            hdu.header["AMP"] = (amp, "amplifier")
            hdu.header["NIMAGES"] = (counts[amp], "images")
            hdul.append(hdu)
    with atomic_path(run_dir / f"mask_run{run:03d}.fits") as tmp:
        hdul.writeto(tmp)
    return fractions
