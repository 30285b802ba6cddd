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
    assert heavy == {"numpy", "astropy"}  # the image is read and compressed; the configured ClusterFinder never ran
    # no clusters file, no fit, no plot, no report: none of their libraries
    assert heavy.isdisjoint({"uproot", "iminuit", "matplotlib", "jinja2", "plotly", "dask", "tqdm"})
    assert "scipy.stats" not in modules


def test_list_processes_imports_no_science_stack_beyond_numpy() -> None:
    """Every process class is imported (its summary and parameters are listed); its heavy modules are lazy."""
    modules = startup_imports(["ana", "--list-processes"])
    assert "waders.ana.clusters.finder" in modules  # the classes were imported
    assert heavy_imports(modules) <= {"numpy"}


@pytest.mark.slow
def test_the_default_chain_declares_the_heavy_modules_it_imports(tmp_path: Path) -> None:
    """What the default chain imports is what it prefetches while the image is read (plus numpy and astropy).

    A heavy module used by a process but missing from its ``imports`` would be imported on first
    use, after the read: slower, not wrong; this test keeps the declarations complete.
    """
    import subprocess
    import sys

    image, _ = make_raw_image(nrows=20, ncols=60, nskips=4)
    path = tmp_path / "tiny.fits"
    write_raw_image(path, image)
    ran = heavy_imports(startup_imports(["ana", "-o", str(tmp_path / "out"), str(path)]))
    listing = tmp_path / "prefetched.txt"
    code = (
        "import importlib, sys\n"
        "from waders.ana.runner import build_chain, chain_imports\n"
        "from waders.ana.cli import default_config\n"
        "from waders.core import load_config\n"
        "chain = build_chain(load_config(default_config(), kind='analysis'))\n"
        "for name in chain_imports(chain): importlib.import_module(name)\n"
        "import numpy, astropy.io.fits\n"
        f"open({str(listing)!r}, 'w').write(chr(10).join(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    prefetched = heavy_imports(set(listing.read_text().split()))
    assert {"scipy", "awkward", "uproot", "iminuit"} <= ran
    assert ran <= prefetched
