"""Generated skipper images with known noise, gain and dark current for the DQM tests.

Loaded by the tests with ``importlib`` (the tests run in importlib mode): raw images of one
or two amplifiers (``make_raw_image`` + ``write_raw_image``) and four-extension averaged
images (``write_averaged_image``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from waders.core import AmplifierGeometry, SkipperImage
from waders.data import PYSIMDAMICM_CONFIGS
from waders.data import path as data_path
from waders.io import write_averaged_image, write_raw_image
from waders.io.synthetic import make_raw_image

#: Truth of the default generated images.
GAIN = 10.0
NOISE = 4.0  # ADU per skip
NSKIPS = 16
DARK_CURRENT = 0.05  # e-/pixel
EXT_NAMES = ("CCD_A", "CCD_B", "CCD_C", "CCD_D")
DQM_JSON = data_path(PYSIMDAMICM_CONFIGS) / "dqmSKImg_configuration.json"


def raw_file(
    path: Path,
    *,
    amplifiers: tuple[str, ...] = ("L",),
    noise: float = NOISE,
    gain: float = GAIN,
    dark_current: float = DARK_CURRENT,
    nrows: int = 60,
    ncols: int = 110,
    nskips: int = NSKIPS,
    prescan: int = 4,
    overscan: int = 16,
    seed: int = 0,
) -> Path:
    """Write a raw multi-skip image; the averaged noise is ``noise / sqrt(nskips)`` ADU."""
    image, _ = make_raw_image(
        amplifiers=amplifiers,
        nrows=nrows,
        ncols=ncols,
        nskips=nskips,
        prescan=prescan,
        overscan=overscan,
        gain=gain,
        noise=noise,
        dark_current=dark_current,
        pedestal=1000.0,
        pedestal_slope=0.2,
        seed=seed,
    )
    return write_raw_image(path, image)


def averaged_file(
    path: Path,
    *,
    names: tuple[str, ...] = EXT_NAMES,
    noise: float = 1.0,
    gain: float = GAIN,
    dark_current: float = DARK_CURRENT,
    nrows: int = 80,
    ncols: int = 160,
    prescan: int = 4,
    overscan: int = 24,
    seed: int = 0,
) -> Path:
    """Write a multi-extension averaged image (one HDU per amplifier) with averaged noise ``noise`` ADU."""
    arrays, geometries = {}, {}
    for i, name in enumerate(names):
        single, _ = make_raw_image(
            nrows=nrows,
            ncols=ncols,
            nskips=1,
            prescan=prescan,
            overscan=overscan,
            gain=gain,
            noise=noise,
            dark_current=dark_current,
            pedestal=-40.0 + i,
            pedestal_slope=0.01,
            seed=seed * 100 + i,
        )
        arrays[name] = single["L"].raw[:, :, 0]
        geometries[name] = AmplifierGeometry(
            name, nrows, ncols, prescan_cols=prescan, overscan_cols=overscan, extension=i + 1
        )
    image = SkipperImage.from_arrays(
        arrays,
        geometries=geometries,
        product="mean_compressed",
        layout="multi-extension",
        nskips_averaged=500,
        exposure_time=3600.0,
    )
    return write_averaged_image(path, image)


def read_summary(run_dir: Path, run: int) -> dict:
    """The run summary written by ``waders dqm run``."""
    return json.loads((run_dir / f"summary_run{run:03d}.json").read_text())


def values(document: dict, me: str, amplifier: str) -> np.ndarray:
    """The values of an ME over the images of a run document."""
    return np.array(
        [img["me"][me][amplifier]["value"] for img in document["images"].values() if me in img["me"]], dtype=float
    )
