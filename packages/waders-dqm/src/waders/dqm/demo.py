"""``waders demo``: simulate -> analyse -> monitor a built-in example, and compare with the truth.

The example input (``demo_g4.root`` of waders-data, made by :func:`make_demo_input`) is a small
Geant4-layout file: 150 Fe-55 X-rays (5.9 keV, absorbed within about 29 um of the back
surface) and 150 low-energy deposits (50-500 eV at uniform depths) on a 600 x 1000 pixel CCD.
The demo simulates raw multi-skip images of two amplifiers (gain 10 ADU/e-, 8 ADU of noise
per sample and 16 skips, i.e. 0.2 e-, dark current 0.1 e-/pixel), analyses them with the
default ``waders ana`` chain, monitors them as run 1 with ``waders dqm run`` and prints where
every output is, the measured numbers next to the simulated truth and the DQM verdict of
the run (pass, warn or fail) with the reasons of anything but a pass.  The configurations
it used are written next to the outputs (``sim.json``, ``ana.json``) with the three commands
that redo its steps one by one.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["DEMO_SIMULATION", "TRUTH", "demo", "demo_commands", "make_demo_input", "run_demo"]

#: What the demo simulates (the numbers the analysis must give back).
TRUTH = {"gain_adu_per_e": 10.0, "sigma_e": 8.0 / math.sqrt(16) / 10.0, "lambda_e_per_pixel": 0.1, "xray_kev": 5.9}

#: Simulation configuration of the demo (waders layout).
DEMO_SIMULATION: dict[str, Any] = {
    "format": "waders-1",
    "detector_response": {
        "Diffusion": {"model": "gauss", "A": 216.2, "B": 0.000886, "fanofactor": 0.119, "active": 1},
        "PixelizeSignal": {"active": 1},
        "CreateFitsImage": {
            "raw": True, "n_events": 100, "nskips": 16, "noise_adu": 8.0, "gain": TRUTH["gain_adu_per_e"],
            "pedestal_adu": 5000.0, "amplifiers": 2, "prescan": 8, "overscan": 40,
            "darkcurrent": TRUTH["lambda_e_per_pixel"], "exp_time": 1.0, "active": 1,
        },
    },
    "reconstruction": {"ClusterFinder": {"method": 1, "max_nearest_neighbor": 2, "active": 1}},
    "detector": {"ccd_shape": [600, 1000], "e2eV": 3.74, "ccd_thickness": 0.675},
}  # fmt: skip


def make_demo_input(path: str | Path, seed: int = 2026) -> Path:
    """Write the demo's Geant4-layout input (the shipped ``demo_g4.root`` is this, with the default seed)."""
    import numpy as np

    from waders.core.hits import HitCollection
    from waders.io.root import write_geant4

    rng = np.random.default_rng(seed)
    n_xray, n_low, thickness = 150, 150, 0.675
    n = n_xray + n_low
    x = rng.uniform(0.3, 1000 * 0.015 - 0.3, n)
    y = rng.uniform(0.3, 600 * 0.015 - 0.3, n)
    from_back = np.concatenate([np.minimum(rng.exponential(0.029, n_xray), thickness), rng.uniform(0.05, 0.6, n_low)])
    hits = {
        "x": x, "y": y, "z": thickness - from_back, "time": np.zeros(n),
        "edep": np.concatenate([np.full(n_xray, TRUTH["xray_kev"] * 1000.0), rng.uniform(50, 500, n_low)]),
        "ccd": np.ones(n, np.int32), "pdg": np.where(np.arange(n) < n_xray, 22, 11).astype(np.int32),
    }  # fmt: skip
    order = rng.permutation(n)
    hits = {k: v[order] for k, v in hits.items()}
    collection = HitCollection.from_arrays(np.arange(n), np.ones(n, dtype=int), hits)
    info = {"NEvts": n, "Seed": seed, "primaryParticle": "demo: Fe-55 X-rays and low-energy deposits"}
    return write_geant4(Path(path), collection, run_info=info)


def _xray_peak(cluster_files: list[Path]) -> tuple[float, int]:
    """Median energy (keV) of clusters between 5 and 7 keV, and how many there are."""
    import numpy as np

    from waders.io import read_clusters

    energies = []
    for path in cluster_files:
        for entry in read_clusters(path).tolist():
            energies += [c["Energy"] for c in entry["clusters"] if 5.0 < c["Energy"] < 7.0]
    return (float(np.median(energies)) if energies else float("nan")), len(energies)


def demo_commands(output: Path, seed: int) -> list[str]:
    """The ``waders`` commands that redo the demo's three steps (the configurations are in ``output``)."""
    out = shlex.quote(str(output))
    images = shlex.quote(str(output / "sim" / "*.fits"))
    return [
        f"waders sim --json {out}/sim.json --g4file {out}/input/demo_g4.root -o {out}/sim --seed {seed}",
        f"waders ana --json {out}/ana.json -o {out}/ana --save-img --save-plots --seed {seed} {images}",
        f"waders dqm run --run 1 -o {out}/dqm --seed {seed} {images}",
    ]


def run_demo(output: Path, seed: int = 1, echo: Any = print) -> dict[str, Any]:
    """Run the whole example into ``output``; return the measured numbers and the outputs."""
    import numpy as np

    if importlib.util.find_spec("waders.sim") is None:  # an optional package (the [test] extra)
        from waders.core.errors import ConfigError

        raise ConfigError("waders demo needs waders-sim", hint="pip install waders-sim")
    from waders.ana.cli import default_config
    from waders.ana.runner import AnalysisOptions, analyse_files
    from waders.core import load_config
    from waders.data import GEANT4_DEMO
    from waders.data import path as data_path
    from waders.sim.driver import SimOptions, simulate_file

    from .run import RunOptions, monitor_run

    start = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    g4file = output / "input" / "demo_g4.root"
    g4file.parent.mkdir(exist_ok=True)
    shutil.copyfile(data_path(GEANT4_DEMO), g4file)
    sim_json, ana_json = output / "sim.json", output / "ana.json"
    sim_json.write_text(json.dumps(DEMO_SIMULATION, indent=2) + "\n")
    ana_json.write_text(json.dumps(default_config(), indent=2) + "\n")
    commands = demo_commands(output, seed)
    echo(f"1/3 simulating {g4file} ...  ({commands[0]})")
    sim = simulate_file(g4file, load_config(sim_json, kind="simulation"), SimOptions(output / "sim", seed))
    images = [Path(p) for p in sim.extra_outputs["CreateFitsImage"]["images"]]
    echo(f"2/3 analysing {len(images)} raw images ...  ({commands[1]})")
    config = load_config(ana_json, kind="analysis")
    options = AnalysisOptions(output_dir=output / "ana", save_images=True, save_plots=True, seed=seed)
    analysis = analyse_files(images, config, options)
    echo(f"3/3 monitoring them as run 1 ...  ({commands[2]})")
    dqm_dir = output / "dqm"
    monitor = monitor_run(images, RunOptions(run=1, output_dir=dqm_dir, store_uri=dqm_dir / "dqm.sqlite", seed=seed))
    summaries = [json.loads(Path(o["summary"]).read_text()) for o in analysis.outputs.values()]
    amps = [a for s in summaries for a in s["amplifiers"].values()]
    measured = {
        key: float(np.mean([a[key] for a in amps if a.get(key) is not None]))
        for key in ("gain_adu_per_e", "sigma_e", "lambda_e_per_pixel")
    }
    peak, n_xray = _xray_peak([Path(o["clusters"]) for o in analysis.outputs.values() if "clusters" in o])
    measured["xray_kev"] = peak
    report = monitor.run_dir / "report" / "index.html"
    outputs = {
        "geant4 input": g4file,
        "simulation configuration": sim_json,
        "analysis configuration": ana_json,
        "simulation (ROOT: clustersRec, clustersTrue, pixelizedEvent)": sim.output,
        "raw FITS images and truth tables": output / "sim",
        "analysis summaries (JSON)": output / "ana",
        "clusters (ROOT)": output / "ana",
        "processed FITS images": output / "ana",
        "plots (PNG)": output / "ana" / "plots",
        "DQM run summary": monitor.run_dir / "summary_run001.json",
        "DQM HTML report": report,
    }
    echo("")
    echo("outputs:")
    for what, path in outputs.items():
        echo(f"  {what:<60} {path}")
    echo("")
    echo(f"{'quantity':<36}{'measured':>12}{'truth':>12}")
    rows = [
        ("gain (ADU/e-)", "gain_adu_per_e", "{:.3f}"),
        ("readout noise (e-)", "sigma_e", "{:.3f}"),
        ("dark current (e-/pixel)", "lambda_e_per_pixel", "{:.3f}"),
        ("Fe-55 peak (keV)", "xray_kev", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        echo(f"{label:<36}{fmt.format(measured[key]):>12}{fmt.format(TRUTH[key]):>12}")
    echo(f"{'clusters between 5 and 7 keV':<36}{n_xray:>12}{'150':>12}")
    echo("(the dark current includes the 1-e- diffusion tails of the simulated clusters; mask them for a pure value)")
    verdict = monitor.document.get("status", "fail")
    reasons = list(monitor.document.get("reasons") or [])
    failed = len(analysis.failures) + len(monitor.failures)
    echo("")
    echo(f"DQM verdict of run 1: {verdict.upper()}" + (f" ({failed} input(s) failed)" if failed else ""))
    for reason in reasons:
        echo(f"  {reason}")
    echo("")
    echo("the three steps again, one by one:")
    for command in commands:
        echo(f"  {command}")
    echo(f"done in {time.perf_counter() - start:.0f} s; open {report}")
    return {
        "commands": commands,
        "measured": measured,
        "truth": TRUTH,
        "n_xray_clusters": n_xray,
        "outputs": outputs,
        "dqm_status": verdict,
        "dqm_reasons": reasons,
    }


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("waders-example"),
    show_default=True,
    help="Where the example writes everything.",
)
@click.option("--seed", type=int, default=1, show_default=True)
def demo(output: Path, seed: int) -> None:
    """Simulate, analyse and monitor a built-in example and compare the results with the truth."""
    run_demo(output, seed, echo=click.echo)
