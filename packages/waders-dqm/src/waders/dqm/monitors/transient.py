"""Electronic column transient monitor elements, from CorrectElectronicColumnTransient.

The first columns read after the start of a row carry a baseline offset that decays as
``A exp(-mu x)``.  MEColTransient shows the column medians (minus the baseline) and the
fitted transient; MEColTransientMu and MEColTransientAmplitude follow ``mu`` and ``A`` over a
run.  The DQM adds CorrectElectronicColumnTransient to the analysis when missing, with
``correct_image`` off (the monitor only measures).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from waders.core.errors import DataError
from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Int, Optional
from waders.core.parameters import Param

from ..monitor import AnalysisStep, MEResult, MonitorElement, NotApplicable

__all__ = ["MEColTransient", "MEColTransientAmplitude", "MEColTransientMu"]

PROCESS = "CorrectElectronicColumnTransient"


def _results(amplifier: Amplifier) -> dict[str, Any]:
    results = amplifier.results.get(PROCESS)
    if not results:
        raise NotApplicable(f"{PROCESS} did not run")
    if not results.get("ect_valid", False):
        raise DataError("the column-transient fit did not converge")
    return results


class _TransientME(MonitorElement):
    unit: ClassVar[str] = "ADU"

    def analysis_steps(self) -> list[AnalysisStep]:
        from waders.ana.studies.transient import CorrectElectronicColumnTransient

        return [
            AnalysisStep(
                CorrectElectronicColumnTransient, self.given(["col_start", "col_end"]), {"correct_image": False}
            )
        ]

    def given(self, names: Any) -> dict[str, Any]:
        return super().given([n for n in names if n in self._params])


class MEColTransient(_TransientME):
    """Median of the first columns read minus the baseline (image units) and the fitted transient."""

    order: ClassVar[int] = 90
    kind: ClassVar[str] = "profile"
    title: ClassVar[str] = "column transient"
    xlabel: ClassVar[str] = "column (readout order)"
    ylabel: ClassVar[str] = "column median - baseline"

    col_start = Param(None, Optional(Int(min=0)), doc=f"{PROCESS}.col_start; null = as configured")
    col_end = Param(None, Optional(Int(min=1)), doc=f"{PROCESS}.col_end; null = as configured")

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        from waders.ana.studies.transient import transient_model

        results = _results(amplifier)
        start, end = int(results["col_start"]), int(results["col_end"])
        columns = np.arange(start, end)
        median = np.asarray(results["column_median"], dtype=np.float64)[columns] - results["ect_baseline"]
        error = np.asarray(results["column_median_err"], dtype=np.float64)[columns]
        model = transient_model(columns, np.asarray(results["ect_amplitude"]), np.asarray(results["ect_mu"]))
        return MEResult(results["ect_A0"], results["ect_amplitude_err"][0], columns + 1.0, median, error, model)


class MEColTransientMu(_TransientME):
    """Decay constant mu of the column transient (per column)."""

    order: ClassVar[int] = 91
    unit: ClassVar[str] = "1/column"
    title: ClassVar[str] = "column transient: decay constant"
    ylabel: ClassVar[str] = "mu"

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        results = _results(amplifier)
        return MEResult(results["ect_mu0"], results["ect_mu_err"][0])


class MEColTransientAmplitude(_TransientME):
    """Amplitude A of the column transient (image units)."""

    order: ClassVar[int] = 92
    title: ClassVar[str] = "column transient: amplitude"
    ylabel: ClassVar[str] = "amplitude"

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        results = _results(amplifier)
        return MEResult(results["ect_A0"], results["ect_amplitude_err"][0])
