"""Real data: what the default chain of ``waders ana`` (no configuration) gives versus a tuned configuration.

For every amplifier of the real files shipped in waders-data -- the DAMIC-M module-test
image and the two SENSEI LTA images -- it runs the analysis twice:

* **default**: ``waders ana FILE`` (the configuration shipped with waders-ana);
* **tuned**: the DAMIC-M image with the user's pysimdamicm configuration ``img_5.json``
  (shipped in waders-data); the LTA images with the configuration tuned by hand in
  ``packages/waders-ana/tests/test_default_chain.py`` (pedestal per column or per row,
  gains of 100-5000 ADU/e- allowed);

and prints a Markdown table (gain, noise, lambda, chi2/ndf, fit_valid, gain source) for
docs/benchmarks.md.

Usage::

    python benchmarks/real_data_defaults.py > table.md
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from waders.ana.cli import default_config
from waders.ana.runner import AnalysisOptions, analyse_file
from waders.core.config import load_config
from waders.data import DAMICM_IMAGE, LTA_CAL_IMAGE, LTA_IMAGE, PYSIMDAMICM_CONFIGS, path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "waders-ana" / "tests"))
from test_default_chain import LTA_TUNED, _lta_config  # the hand-tuned LTA configuration


def summary(file: Path, config: Any, out: Path) -> dict[str, Any]:
    """Analyse one file and return its summary."""
    cfg = load_config(config, kind="analysis")
    outputs = analyse_file(file, cfg, AnalysisOptions(output_dir=out))
    return json.loads(Path(outputs["summary"]).read_text())


def fmt(value: Any, digits: int) -> str:
    """A number with ``digits`` significant digits, or a dash."""
    return "-" if value is None else f"{value:.{digits}g}"


def rows(name: str, default: dict[str, Any], tuned: dict[str, Any]) -> list[str]:
    """Table rows of one file."""
    out = []
    for amp, d in default["amplifiers"].items():
        t = tuned["amplifiers"][amp]
        out.append(
            f"| {Path(name).name} | {amp} "
            f"| {fmt(d.get('gain_adu_per_e'), 5)} | {fmt(t.get('gain_adu_per_e'), 5)} "
            f"| {fmt(d.get('noise_adu'), 4)} | {fmt(t.get('noise_adu'), 4)} "
            f"| {fmt(d.get('lambda_e_per_pixel'), 4)} | {fmt(t.get('lambda_e_per_pixel'), 4)} "
            f"| {fmt(d.get('fit_chi2_ndf'), 3)} | {fmt(t.get('fit_chi2_ndf'), 3)} "
            f"| {str(d.get('fit_valid')).lower()} | {str(t.get('fit_valid')).lower()} "
            f"| {d.get('gain_source', '-').split(' (fallback: ')[0]}"
            f"{' (fallback)' if 'fallback' in d.get('gain_source', '') else ''} |"
        )
    return out


def main() -> None:
    logging.disable(logging.WARNING)
    lines = [
        "| file | amplifier | gain default | gain tuned | noise default (ADU) | noise tuned (ADU) "
        "| lambda default (e-/pix) | lambda tuned (e-/pix) | chi2/ndf default | chi2/ndf tuned "
        "| fit_valid default | fit_valid tuned | default gain source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    reasons = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = {
            DAMICM_IMAGE: path(PYSIMDAMICM_CONFIGS) / "img_5.json",
            LTA_CAL_IMAGE: _lta_config(LTA_TUNED[LTA_CAL_IMAGE][0]),
            LTA_IMAGE: _lta_config(LTA_TUNED[LTA_IMAGE][0]),
        }
        for name, tuned_config in files.items():
            default = summary(path(name), default_config(), out / "default")
            tuned = summary(path(name), tuned_config, out / "tuned")
            lines += rows(name, default, tuned)
            for amp, d in default["amplifiers"].items():
                if not d.get("fit_valid"):
                    reasons.append(f"* {Path(name).name} {amp}: {d.get('fit_status')}")
    print("\n".join(lines))
    if reasons:
        print("\nWhy the default fit is not valid:\n")
        print("\n".join(reasons))


if __name__ == "__main__":
    main()
