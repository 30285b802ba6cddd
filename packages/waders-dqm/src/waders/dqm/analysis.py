"""Analyse one image for the DQM and hand back the analysed image and its summary, in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waders.ana.runner import AnalysisOptions, analyse_file
from waders.core.config import Config
from waders.core.image import SkipperImage

__all__ = ["analyse_image"]


def analyse_image(
    path: Path, analysis: Config, *, output_dir: Path, run: int, seed: int, position: int = 0
) -> tuple[SkipperImage, dict[str, Any]]:
    """Analyse ``path`` with :func:`waders.ana.runner.analyse_file`; return ``(image, summary)``.

    The outputs of the analysis (``<stem>.summary.json``, the clusters file) go into
    ``output_dir``; the monitor elements are evaluated on the returned image and summary
    document (the content of ``<stem>.summary.json``), never on the file read back.

    Parameters
    ----------
    path : Path
        The FITS file.
    analysis : Config
        The analysis configuration (with the processes the monitor elements need).
    output_dir : Path
        Where the analysis writes its outputs (``runNNN/recon``).
    run : int
        Run number (recorded in the outputs).
    seed : int
        Seed of the analysis' random streams.
    position : int
        Index of the file among the run's inputs (its random stream).

    Raises
    ------
    WadersError
        For bad input.
    """
    options = AnalysisOptions(output_dir=output_dir, seed=seed, run=run)
    kept: list[tuple[SkipperImage, dict[str, Any]]] = []
    analyse_file(path, analysis, options, position=position, on_result=lambda image, s: kept.append((image, s)))
    return kept[0]
