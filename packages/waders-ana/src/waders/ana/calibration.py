"""CalibrationProcess: convert an image from ADU to electrons with a gain per amplifier."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError
from waders.core.image import Amplifier
from waders.core.kinds import Choice, Float, Union

from .base import AnalysisProcess
from .summary import Fallback, SummaryPart, finite_or_zero

__all__ = ["CalibrationProcess"]

log = logging.getLogger(__name__)

#: Process whose fitted gain ``from_dc_fit`` uses.
DC_FIT = "FitDarkCurrentProcess"


class CalibrationProcess(AnalysisProcess):
    """Divide by the gain of each amplifier (ADU/e-): ``<image>_e`` is in electrons.

    The gain is the configured one (a number, or one per amplifier), ``"conditions"``
    (the constant of type ``gain`` valid for the image's CCD, run and time in the
    conditions database: ``waders ana --conditions DB`` or ``$WADERS_CONDITIONS``), or with
    ``from_dc_fit`` the gain fitted by FitDarkCurrentProcess earlier in the sequence
    for that image.  A dark-current fit that is not valid (by
    :mod:`waders.ana.fitting.quality`: bad goodness of fit, a parameter at a limit, too few
    pixels, no single-electron resolution, ...) is never used: the configured gain is,
    with a one-line warning naming the file, amplifier and reason, and the recorded
    ``gain_source`` says so (``"configuration (fallback: <reason>)"``, also in
    ``fallback_reason``).  Unlike pysimdamicm, an amplifier missing from a per-amplifier
    gain is an error, not a silent gain of 1.
    """

    order: ClassVar[int] = 25
    per_amplifier: ClassVar[bool] = True
    summary_order: ClassVar[int] = 20
    products = (
        Product("mean_compressed_pedestal_subtracted_e", "image", "e-", "<image>_e: the input divided by the gain"),
        Product("gain_adu_per_e", "result", "ADU/e-", "gain used"),
        Product("gain_source", "result", doc="where the gain comes from (fit, configuration, conditions, fallback)"),
    )

    image = Param("mean_compressed_pedestal_subtracted", doc="input image product (ADU)")
    gain = Param(
        5.3,
        Union(Choice(["conditions"]), Float(positive=True)),
        unit="ADU/e",
        per_amplifier=True,
        doc="gain (ADU per electron), or 'conditions' to look it up in the conditions database",
    )
    from_dc_fit = Param(False, doc="use the gain fitted by FitDarkCurrentProcess for this image")

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """The gain used and its source per amplifier; a warning when the configured gain replaced the fit."""
        part = SummaryPart()
        for name, amp in image.amplifiers.items():
            calibration = amp.results.get(self.name)
            if not calibration:
                continue
            part.amplifiers[name] = {
                "gain_adu_per_e": calibration["gain_adu_per_e"],
                "gain_source": calibration.get("gain_source"),
            }
            if calibration.get("fallback_reason"):
                part.warnings[name] = [f"{name}: {self.name}: {calibration['gain_source']}"]
        return part

    def info_part(self, image: SkipperImage) -> dict[str | None, dict[str, Any]]:
        """``<A>_gain`` for the ROOT info tree, unless a fit gives it."""
        return {
            name: {f"{name}_gain": Fallback(finite_or_zero(amp.results[self.name].get("gain_adu_per_e")))}
            for name, amp in image.amplifiers.items()
            if self.name in amp.results and "gain_adu_per_e" in amp.results[self.name]
        }

    def gain_for(
        self, amplifier: Amplifier, image: SkipperImage | None = None, context: RunContext | None = None
    ) -> tuple[float, str]:
        """The gain to use for an amplifier and where it comes from."""
        fallback = ""
        if self.from_dc_fit:
            fit = amplifier.results.get(DC_FIT)
            fitted = (fit or {}).get("gain_adu_per_e")
            if fit and fit.get("valid") and fitted and fitted > 0:
                return round(float(fitted), 4), "dark-current fit"
            if not fit:
                fallback = f"{DC_FIT} did not run before {self.name}"
            else:
                fallback = f"dark-current fit invalid: {fit.get('status', 'unknown status')}"
        configured = self.value_for("gain", amplifier.names)
        if configured == "conditions":
            gain, source = self._from_conditions(amplifier, image, context)
        else:
            gain, source = float(configured), "configuration"
            if gain <= 0:
                raise ConfigError(f"{self.name}.gain must be positive for amplifier {amplifier.name}")
        if fallback:
            label = image.label if image is not None else "image"
            log.warning(
                "%s, amplifier %s: %s: %s; the %s gain %.4g ADU/e- is used",
                label,
                amplifier.name,
                self.name,
                fallback,
                source,
                gain,
            )
            source = f"{source} (fallback: {fallback})"
        return gain, source

    @staticmethod
    def _from_conditions(
        amplifier: Amplifier, image: SkipperImage | None, context: RunContext | None
    ) -> tuple[float, str]:
        from waders.core.conditions import ConditionsDB

        meta = image.meta if image is not None else {}
        db = ConditionsDB((context.options.get("conditions") if context is not None else None) or None)
        constant = db.get(
            "gain",
            str(meta.get("ccd", 1)),
            amplifier.names,
            run=meta.get("run"),
            when=meta.get("exposure_start"),
        )
        return float(constant.value), f"conditions #{constant.id}"

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        gain, source = self.gain_for(amplifier, image, context)
        amplifier.set(f"{self.image}_e", self.input_image(amplifier) / gain)
        fallback = source.partition(" (fallback: ")[2].removesuffix(")")
        amplifier.record(self.name, gain_adu_per_e=gain, gain_source=source, fallback_reason=fallback or None)
        image.add_header_card(f"GAIN_{amplifier.name}", gain, "calibration constant ADU/e")
