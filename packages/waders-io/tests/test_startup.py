"""Start-up imports of ``waders info`` (issue 18): only what the file kind needs."""

from __future__ import annotations

from pathlib import Path

from waders.core.testing import heavy_imports, startup_imports
from waders.io import write_raw_image
from waders.io.synthetic import make_raw_image


def test_info_help_imports_nothing_heavy() -> None:
    assert heavy_imports(startup_imports(["info", "--help"])) == set()


def test_info_of_a_fits_file_imports_no_root_stack(tmp_path: Path) -> None:
    image, _ = make_raw_image(nrows=4, ncols=30, nskips=2)
    path = tmp_path / "tiny.fits"
    write_raw_image(path, image)
    heavy = heavy_imports(startup_imports(["info", str(path)]))
    # the FITS reader is used (and seen: this is the check that the import list is read) ...
    assert {"numpy", "astropy"} <= heavy
    # ... the ROOT stack, fits and plots are not
    assert heavy.isdisjoint({"uproot", "awkward", "iminuit", "scipy", "matplotlib", "jinja2"})
