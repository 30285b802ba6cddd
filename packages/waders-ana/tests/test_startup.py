"""Start-up imports of ``waders ana`` (issue 18): help imports nothing heavy; a run only what it uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from waders.core.testing import heavy_imports, startup_imports
from waders.io import write_raw_image
from waders.io.synthetic import make_raw_image


@pytest.mark.parametrize(
    "args",
    [["ana", "--help"], ["energy-threshold", "--help"], ["hot-regions", "--help"], ["image-grid", "--help"]],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    modules = startup_imports(args)
    assert "waders.ana.cli" in modules or "waders.ana.tools.commands" in modules
    assert heavy_imports(modules) == set()


@pytest.mark.slow
def test_run_without_clusters_or_plots_imports_no_root_fit_or_plot_stack(tmp_path: Path) -> None:
    image, _ = make_raw_image(nrows=20, ncols=60, nskips=4)
    path = tmp_path / "tiny.fits"
    write_raw_image(path, image)
    out = tmp_path / "out"
    modules = startup_imports(["ana", "-o", str(out), "-s", "CompressSkipperProcess", str(path)])
    assert (out / "tiny.summary.json").is_file()
    heavy = heavy_imports(modules)
    assert {"numpy", "astropy"} <= heavy  # the image is read and compressed
    # no clusters file, no fit, no plot, no report: none of their libraries
    assert heavy.isdisjoint({"uproot", "iminuit", "matplotlib", "jinja2", "plotly", "dask", "tqdm"})
    assert "scipy.stats" not in modules
