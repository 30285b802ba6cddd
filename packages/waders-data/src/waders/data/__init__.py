"""Small real skipper-CCD data files and pysimdamicm configurations shipped with waders.

Every file is public data from a public repository (see ``PROVENANCE.md`` beside this
module); none was written by waders.  Tests and examples find them with :func:`path`::

    from waders.data import path

    image = path("damicm/avg_Image_5_Low_Temp_109_20250807_170213_15.fz")
    config = path("configs/pysimdamicm/img_5.json")
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DAMICM_IMAGE", "LTA_CAL_IMAGE", "LTA_IMAGE", "PYSIMDAMICM_CONFIGS", "files", "path"]

FILES = Path(__file__).resolve().parent / "files"

#: The real four-amplifier DAMIC-M module-test image (fpack, averaged over 500 skips).
DAMICM_IMAGE = "damicm/avg_Image_5_Low_Temp_109_20250807_170213_15.fz"
#: A real SENSEI LTA averaged image (4 amplifiers, 40 x 5000, NSAMP=500).
LTA_IMAGE = "lta/image_lta_2_ave.fits"
#: A real SENSEI LTA averaged image (4 amplifiers, 40 x 4700, NSAMP=15).
LTA_CAL_IMAGE = "lta/cal_1_6_ave.fits"
#: The folder of the configuration files shipped with pysimdamicm 7.2.
PYSIMDAMICM_CONFIGS = "configs/pysimdamicm"


def path(name: str) -> Path:
    """The absolute path of a shipped data file.

    Parameters
    ----------
    name : str
        Path relative to the data folder, e.g. ``"lta/image_lta_2_ave.fits"``.

    Returns
    -------
    pathlib.Path
        The file (or folder) inside the installed package.

    Raises
    ------
    FileNotFoundError
        If waders-data ships no such file; the message lists what it ships.
    """
    found = (FILES / name).resolve()
    if (FILES not in found.parents and found != FILES) or not found.exists():
        raise FileNotFoundError(f"waders-data ships no file {name!r}; it has: {', '.join(files())}")
    return found


def files() -> list[str]:
    """Names of every shipped file, relative to the data folder (sorted)."""
    return sorted(p.relative_to(FILES).as_posix() for p in FILES.rglob("*") if p.is_file())
