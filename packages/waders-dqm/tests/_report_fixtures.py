"""Hand-built DQM run directories (documents following the run data model, real PNG plots).

Loaded by the report tests with ``load_fixtures()`` (the tests run in importlib mode).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

AMPS = ("L", "U")
#: (ME, unit, base value, error, range) of the scalar MEs of the fake runs.
SCALARS = (
    ("MEFitDCLambda", "e-/pix", 0.0512, 0.0031, (0.0, 0.2)),
    ("MEFitDCCalibration", "ADU/e-", 10.71, 0.052, (9.0, 12.0)),
    ("MEFitDCSigma", "e-", 0.1623, 0.0041, (0.0, 0.3)),
)


_PNGS: dict[int, bytes] = {}


def png(path: Path, seed: int) -> str:
    """Write a small real PNG plot; return its path relative to the run directory.

    Only a few distinct plots are drawn (``seed % 4``); the others are copies, which keeps the tests fast.
    """
    key = seed % 4
    if key not in _PNGS:
        import io

        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3, 2), dpi=50)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot(np.arange(20), np.random.default_rng(key).normal(size=20).cumsum(), color=f"C{key}")
        ax.set_title(f"plot {key}", fontsize=8)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        _PNGS[key] = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_PNGS[key])
    return f"{path.parent.name}/{path.name}"


def scalar_value(run: int, image: int, amp: str, base: float) -> float:
    return round(base * (1 + 0.01 * (run % 7) + 0.003 * image + (0.02 if amp == "U" else 0.0)), 6)


def make_run(
    outdir: Path,
    run: int,
    *,
    images: int = 2,
    reference_run: int | None = None,
    fail: tuple[int, str, str] | None = None,
    tag: str = "SR1",
    plots: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Create ``outdir/runNNN`` with ME plots and ``summary_runNNN.json``; return (run_dir, document).

    ``fail`` = (image, amplifier, ME) gives that entry a failing range test.
    """
    run_dir = outdir / f"run{run:03d}"
    (run_dir / "me").mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "run": run,
        "tag": tag,
        "updated": "2024-05-01T12:00:00Z",
        "reference_run": reference_run,
        "status": "pass",
        "amplifiers": list(AMPS),
        "images": {},
        "run_level": {},
        "masked_fraction": {"L": 0.0123 + 0.001 * run, "U": 0.0201},
    }
    for image in range(1, images + 1):
        stem = f"skp_run{run:03d}_img{image:03d}"
        me: dict[str, Any] = {}
        status = "pass"
        for name, unit, base, error, (lo, hi) in SCALARS:
            me[name] = {}
            for amp in AMPS:
                value = scalar_value(run, image, amp, base)
                quality = {"status": "pass", "test": "range", "detail": f"{lo} <= {value} <= {hi}"}
                if fail == (image, amp, name):
                    value = round(hi * 1.5, 6)
                    quality = {"status": "fail", "test": "range", "detail": f"{value} outside [{lo}, {hi}]"}
                    status = "fail"
                plot = png(run_dir / "me" / f"{stem}_{name}_{amp}.png", run + image) if plots else None
                me[name][amp] = {
                    "value": value,
                    "error": error,
                    "unit": unit,
                    "x": None,
                    "y": None,
                    "yerr": None,
                    "xlabel": "",
                    "ylabel": "",
                    "plot": plot,
                    "quality": quality,
                }
        me["MEMeanPixelChargePerRow"] = {}
        for amp in AMPS:
            rows = list(range(1, 11))
            y = [round(0.05 + 0.001 * r + 0.002 * image + 0.001 * run, 5) for r in rows]
            me["MEMeanPixelChargePerRow"][amp] = {
                "value": None,
                "error": None,
                "unit": "e-/pix",
                "x": rows,
                "y": y,
                "yerr": [0.001] * len(rows),
                "xlabel": "row",
                "ylabel": "mean pixel charge [e-/pix]",
                "plot": None,
                "quality": {"status": "none", "test": None, "detail": ""},
            }
        doc["images"][stem] = {
            "file": f"/data/run{run:03d}/{stem}.fits.fz",
            "image": image,
            "start": f"2024-05-01T{image:02d}:00:00",
            "summary": f"recon/{stem}.summary.json",
            "status": status,
            "me": me,
        }
        if status == "fail":
            doc["status"] = "fail"
    doc["run_level"]["MEFitDCLambda"] = {}
    plot = png(run_dir / "me" / "run_MEFitDCLambda.png", run) if plots else None
    for amp in AMPS:
        xs = list(range(1, images + 1))
        doc["run_level"]["MEFitDCLambda"][amp] = {
            "x": xs,
            "y": [scalar_value(run, i, amp, 0.0512) for i in xs],
            "yerr": [0.0031] * images,
            "unit": "e-/pix",
            "plot": plot,
            "quality": {"status": "pass", "test": "chi2", "detail": "chi2/ndf 0.8 <= 5"},
        }
    (run_dir / f"summary_run{run:03d}.json").write_text(json.dumps(doc, indent=1))
    return run_dir, doc


class FakeStore:
    """The three store methods the report uses, over in-memory documents."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = {int(d["run"]): d for d in documents}
        self.calls: list[str] = []

    def runs(self) -> list[int]:
        self.calls.append("runs")
        return sorted(self.documents)

    def get_run(self, run: int) -> dict[str, Any]:
        self.calls.append(f"get_run {run}")
        return self.documents[run]

    def history(self, me: str, amplifier: str) -> list[tuple[int, int, float, float]]:
        self.calls.append(f"history {me} {amplifier}")
        out = []
        for run in sorted(self.documents):
            for entry in self.documents[run]["images"].values():
                item = entry["me"].get(me, {}).get(amplifier)
                if item and item.get("value") is not None:
                    out.append((run, entry["image"], item["value"], item["error"]))
        return out
