"""The output contract: every analysis process declares what it makes, and the sinks write what is declared."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import numpy as np
import pytest
import uproot

from waders.ana import analyse
from waders.ana.plotting import keep_figure, new_figure
from waders.ana.runner import AnalysisOptions, analyse_file
from waders.ana.sinks import OutputJob, write_outputs
from waders.core import Process, Product, RunContext, SkipperImage
from waders.core.plugins import process_registry
from waders.core.products import KINDS, declared
from waders.core.versions import waders_versions
from waders.io import write_raw_image
from waders.io.synthetic import make_raw_image

#: Processes run on the generated image besides the default chain (cheap, no extra inputs needed).
STUDIES = [
    "ApplySelectionCuts",
    "GaussianFitProcess",
    "MeanPixelChargePerAxis",
    "FitDarkCurrentPerRow",
    "FitCalibrationConstant",
    "CorrectElectronicColumnTransient",
    "RNvsNskipsPlot",
]
DEFAULT = [
    "CompressSkipperProcess",
    "PedestalSubtractionProcess",
    "FitDarkCurrentProcess",
    "CalibrationProcess",
    "ClusterFinder",
    "BuildClusterMask",
]


def ana_processes() -> dict[str, type]:
    return {key: cls for key, cls in process_registry().load_all().items() if cls.domain == "ana"}


def test_every_registered_analysis_process_declares_its_products():
    processes = ana_processes()
    assert set(DEFAULT + STUDIES) <= set(processes)
    for name, cls in processes.items():
        assert cls.products, f"{name} declares no products"
        assert all(isinstance(p, Product) and p.kind in KINDS and p.doc for p in cls.products), name
    assert [(p.name, d.kind) for p, d in declared([processes["ClusterFinder"]()], "table")] == [
        ("ClusterFinder", "table")
    ]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Any:
    """The default chain and a few studies on a generated raw image with two X-ray-like deposits."""
    image, _ = make_raw_image(
        amplifiers=("L", "U"), nrows=120, ncols=160, overscan=40, nskips=4, gain=10.0, noise=2.0 * 2,
        dark_current=0.2, pedestal=3000.0, deposits=[(40, 60, 400.0), (80, 100, 250.0)], seed=31,
    )  # fmt: skip
    file = write_raw_image(tmp_path_factory.mktemp("products") / "generated_1.fits", image)
    return analyse(file, sequence=DEFAULT + STUDIES, plots=True)


def _made(result: Any, process: Any, product: Product) -> bool:
    image = result.image
    if product.kind == "image":
        return all(amp.has(product.name) for amp in image.amplifiers.values())
    if product.kind == "figure":
        return bool(result.figures_by_process.get(process.name))
    holders = (
        [amp.results.get(process.name, {}) for amp in image.amplifiers.values()]
        if product.per_amplifier
        else [image.results.get(process.name, {})]
    )
    if product.kind == "table" and product.columns:
        return all(set(product.columns) <= set(h) for h in holders)
    return all(product.name in h for h in holders)


def test_declared_products_are_made_and_what_is_made_is_declared(analysed):
    missing = [
        f"{process.name}: {product.kind} {product.name}"
        for process, product in declared(analysed.processes)
        if not (product.switch and not getattr(process, product.switch))  # switched off: not made
        and not _made(analysed, process, product)
    ]
    assert not missing, missing
    # every image product of an amplifier comes from a declaration (or is an input)
    declared_images = {d.name for _, d in declared(analysed.processes, "image")}
    for amp in analysed.image.amplifiers.values():
        assert set(amp.products) - {"raw"} <= declared_images
    # every process that drew declares figures, and the figures are matplotlib Figures
    drawing = set(analysed.figures_by_process)
    assert drawing and drawing <= {p.name for p, _ in declared(analysed.processes, "figure")}
    from matplotlib.figure import Figure

    assert all(isinstance(f, Figure) for f in analysed.figures.values())
    assert "FitDarkCurrentProcess_L" in analysed.figures
    assert len(analysed.clusters) >= 2 and "ClusterFinder.clusters" in analysed.tables()


def test_the_result_writes_its_figures_and_tables_with_the_sinks(analysed, tmp_path):
    outputs = analysed.write(tmp_path)
    assert set(outputs) == {"clusters", "summary", "plots"}
    plots = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {f"generated_1_{key}.png" for key in analysed.figures} == plots
    summary = json.loads(Path(outputs["summary"]).read_text())
    assert summary["amplifiers"]["L"]["n_clusters"] == analysed.amplifiers["L"]["n_clusters"]
    assert set(summary["studies"]) == set(STUDIES) - {"ApplySelectionCuts"}


def test_a_switched_table_is_written_only_when_its_switch_is_on(tmp_path):
    image, _ = make_raw_image(nrows=80, ncols=100, overscan=20, nskips=4, gain=10.0, noise=4.0, seed=5)
    file = write_raw_image(tmp_path / "slices_2.fits", image)
    sequence = ["CompressSkipperProcess", "PedestalSubtractionProcess", "FitDarkCurrentPerRow"]
    for on in (False, True):
        result = analyse(
            file, sequence=sequence, FitDarkCurrentPerRow__save_results=on, FitDarkCurrentPerRow__calibration=10.0
        )
        out = tmp_path / str(on)
        result.write(out)
        csv = out / "slices_2_FitDarkCurrentPerRow_L.csv"
        assert csv.exists() == on
    header, *rows = csv.read_text().splitlines()
    product = next(d for d in result.processes[-1].products if d.kind == "table")
    assert header.split(",") == list(product.columns)
    assert len(rows) == len(result.image["L"].results["FitDarkCurrentPerRow"]["slice_start"])


# --- a lab's own process ---------------------------------------------------------------------------------
class LabFinder(Process):
    """A third-party finder: one 'cluster' per amplifier at its brightest pixel, and a figure."""

    domain: ClassVar[str] = "ana"
    products = (
        Product("clusters", "table", "keV", "one record per brightest pixel"),
        Product("n_clusters", "result", doc="always 1"),
        Product("brightest", "figure", doc="the brightest pixel's row"),
    )

    def run(self, data: SkipperImage, context: RunContext) -> None:
        rows = []
        for amp in data.amplifiers.values():
            values = np.nan_to_num(np.asarray(amp.get("mean_compressed"), dtype=float), nan=-np.inf)
            row, col = np.unravel_index(int(np.argmax(values)), values.shape)
            rows.append({"x": int(col) + 1, "y": int(row) + 1, "Energy": float(values[row, col]) * 1e-3})
            amp.record(self.name, n_clusters=1)
            if context.save_plots:
                fig, ax = new_figure(f"{self.name} {amp.name}")
                ax.plot(values[row])
                keep_figure(context, self.name, "brightest", amp, fig)
        data.record(self.name, clusters=ak.Array(rows))


class Scribbler(Process):
    """Draws a figure but declares none: its figure is not written."""

    domain: ClassVar[str] = "ana"
    products = (Product("nothing", "result", doc="records nothing"),)

    def run(self, data: SkipperImage, context: RunContext) -> None:
        fig, _ = new_figure("undeclared")
        keep_figure(context, self.name, "scribble", None, fig)


def test_a_lab_process_declaring_a_clusters_table_and_a_figure_gets_them_written(tmp_path, caplog):
    image, _ = make_raw_image(amplifiers=("L", "U"), nrows=40, ncols=50, nskips=3, seed=8)
    file = write_raw_image(tmp_path / "lab_3.fits", image)
    result = analyse(file, sequence=["CompressSkipperProcess"])
    assert result.clusters is None
    context = RunContext(seed=0, save_plots=True)
    lab, scribbler = LabFinder(), Scribbler()
    lab.run(result.image, context)
    scribbler.run(result.image, context)
    options = AnalysisOptions(output_dir=tmp_path / "out", save_plots=True)
    options.output_dir.mkdir()
    processes = [*result.processes, lab, scribbler]
    job = OutputJob(file, result.image, result.config, processes, options, waders_versions(), context.figures)
    with caplog.at_level(logging.WARNING):
        outputs = write_outputs(job)
    assert "Scribbler drew 1 figure(s) but declares no figure product" in caplog.text
    with uproot.open(outputs["clusters"]) as root:
        energies = root["clustersRec"]["Energy"].array()
    assert ak.to_list(energies) == [ak.to_list(result.image.results["LabFinder"]["clusters"]["Energy"])]
    plots = sorted(p.name for p in (tmp_path / "out" / "plots").iterdir())
    assert plots == ["lab_3_LabFinder_brightest_L.png", "lab_3_LabFinder_brightest_U.png"]
    summary = json.loads(Path(outputs["summary"]).read_text())
    assert summary["studies"]["LabFinder"]["amplifiers"]["U"] == {"n_clusters": 1}


def test_analyse_file_writes_no_clusters_file_without_a_declared_clusters_table(tmp_path):
    image, _ = make_raw_image(nrows=40, ncols=50, nskips=3, seed=9)
    file = write_raw_image(tmp_path / "plain_4.fits", image)
    from waders.ana import analysis_config

    outputs = analyse_file(file, analysis_config(sequence=["CompressSkipperProcess"]), AnalysisOptions(tmp_path))
    assert set(outputs) == {"summary"}
