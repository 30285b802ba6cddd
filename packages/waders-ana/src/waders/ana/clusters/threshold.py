"""Threshold semantics of pysimdamicm's ``spr_threshold``: ``[sigma, n_pix, n_seed]``.

``spr_threshold`` is given for all amplifiers or per amplifier (``{"L": [null, 3, 4], ...}``).
Each value is one of

* ``[sigma, n_pix, n_seed]``: candidate pixels have ``q >= n_pix * sigma``, seed pixels
  ``q >= n_seed * sigma``, where the noise ``sigma`` is

  - ``null``: the amplifier's pedestal noise measured by PedestalSubtractionProcess
    (``noise_adu``, the mean of its per-row/column sigmas; the median with
    ``spr_sigma_mean: false``) divided by the gain of CalibrationProcess, in e-;
  - a number: sigma in electrons;
  - a string: the header keyword holding sigma in ADU (divided by the gain);

* a number ``t`` (pysimdamicm's simulation form): candidates and seeds ``q >= t`` e-;
* ``null``: no threshold, every pixel with ``q > 0`` is a candidate and a seed.

The cuts are applied in the units of the clustered image: electrons if its name ends
with ``_e``, else ADU (the cuts in e- are multiplied by the gain).  Unlike pysimdamicm,
a pixel exactly at the cut is a candidate *and* is clustered (pysimdamicm listed it but
left it out of the labelling image), and a pixel exactly at the seed cut is a seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Kind

__all__ = ["CALIBRATION", "PEDESTAL", "Threshold", "ThresholdKind", "resolve_threshold"]

#: Process whose ``noise_adu`` is the noise of ``sigma = null``.
PEDESTAL = "PedestalSubtractionProcess"
#: Process whose ``gain_adu_per_e`` converts between ADU and electrons.
CALIBRATION = "CalibrationProcess"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ThresholdKind(Kind):
    """Kind of one ``spr_threshold`` value: ``[sigma, n_pix, n_seed]``, a number (e-) or null."""

    description = "[sigma, n_pix, n_seed] (sigma: null, a number in e- or a header keyword), a number in e-, or null"

    def convert(self, value: Any, where: str, unit: str | None) -> Any:
        if value is None:
            return None
        if _is_number(value):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{where}: a threshold must be a finite number > 0 e-, got {value}")
            return float(value)
        if isinstance(value, list | tuple) and len(value) == 3:
            sigma, n_pix, n_seed = value
            if isinstance(sigma, str) and sigma.strip().lower() in ("null", "none"):
                sigma = None
            if isinstance(sigma, str) and not sigma.strip():
                raise ConfigError(f"{where}[0]: empty header keyword")
            if _is_number(sigma):
                if not (math.isfinite(sigma) and sigma > 0):
                    raise ConfigError(f"{where}[0]: the noise sigma must be > 0 e-, got {sigma}")
                sigma = float(sigma)
            elif sigma is not None and not isinstance(sigma, str):
                raise ConfigError(f"{where}[0]: sigma must be null, a number (e-) or a header keyword, got {sigma!r}")
            for i, n in ((1, n_pix), (2, n_seed)):
                if not _is_number(n) or not (math.isfinite(n) and n > 0):
                    raise ConfigError(f"{where}[{i}]: expected a finite number of sigmas > 0, got {n!r}")
            return [sigma, float(n_pix), float(n_seed)]
        raise self.error(where, value)

    def matches(self, value: Any) -> bool:
        return value is None or _is_number(value) or (isinstance(value, list) and len(value) == 3)


@dataclass(frozen=True)
class Threshold:
    """Cuts resolved for one amplifier.

    Attributes
    ----------
    q_cut, q_seed : float
        Candidate and seed cuts in image units (e- or ADU): ``q >= q_cut`` and ``q >= q_seed``.
    to_electrons : float
        Factor converting image units to electrons (1, or 1/gain for ADU images).
    sigma_e : float
        Noise sigma in electrons (NaN when the threshold is not given in sigmas).
    sigma_e_spread : float
        Spread (standard deviation) of the pedestal sigmas behind ``sigma_e``, in e- (NaN if unknown).
    n_pix, n_seed : float
        Multiples of sigma (NaN when the threshold is not given in sigmas).
    gain : float
        ADU per electron used (NaN when not needed).
    source : str
        Where sigma came from: ``"pedestal"``, ``"configuration"``, ``"header:KEY"``, ``"plain"``, ``"none"``.
    """

    q_cut: float
    q_seed: float
    to_electrons: float
    sigma_e: float = math.nan
    sigma_e_spread: float = math.nan
    n_pix: float = math.nan
    n_seed: float = math.nan
    gain: float = math.nan
    source: str = "none"

    @property
    def q_cut_e(self) -> float:
        """Candidate cut in electrons."""
        return self.q_cut * self.to_electrons

    @property
    def q_seed_e(self) -> float:
        """Seed cut in electrons."""
        return self.q_seed * self.to_electrons

    def candidates(self, charge: np.ndarray) -> np.ndarray:
        """Boolean map of candidate pixels (``q >= q_cut`` and ``q > 0``; NaN is never a candidate)."""
        with np.errstate(invalid="ignore"):
            return (charge >= self.q_cut) & (charge > 0)

    def seeds(self, charge: np.ndarray) -> np.ndarray:
        """Boolean flags of seed pixels (``q >= q_seed``)."""
        with np.errstate(invalid="ignore"):
            return charge >= self.q_seed


def _gain(amplifier: Amplifier, process: str, why: str) -> float:
    gain = amplifier.results.get(CALIBRATION, {}).get("gain_adu_per_e")
    if gain is None or not np.isfinite(gain) or gain <= 0:
        raise DataError(
            f"{process}: amplifier {amplifier.name} has no gain ({why}): {CALIBRATION} did not run",
            hint=f"add {CALIBRATION} before {process} in the sequence",
        )
    return float(gain)


def _pedestal_noise(amplifier: Amplifier, process: str, use_mean: bool) -> tuple[float, float]:
    """(sigma, spread of the sigmas) in ADU from PedestalSubtractionProcess."""
    results = amplifier.results.get(PEDESTAL)
    if not results or "noise_adu" not in results:
        raise DataError(
            f"{process}: amplifier {amplifier.name} has no pedestal noise (spr_threshold sigma is null): "
            f"{PEDESTAL} did not run",
            hint=f"add {PEDESTAL} before {process}, or give sigma in e- in spr_threshold",
        )
    arrays = [
        np.atleast_1d(np.asarray(results[key], dtype=float))
        for key in ("sigma_row", "sigma_col", "sigma_none")
        if key in results
    ]
    values = np.concatenate(arrays) if arrays else np.array([results["noise_adu"]], dtype=float)
    values = values[np.isfinite(values)]
    sigma = float(results["noise_adu"]) if use_mean or values.size == 0 else float(np.median(values))
    spread = float(np.std(values)) if values.size else math.nan
    if not np.isfinite(sigma) or sigma <= 0:
        raise DataError(f"{process}: amplifier {amplifier.name} has an invalid pedestal noise ({sigma} ADU)")
    return sigma, spread


def _header_value(image: SkipperImage, amplifier: Amplifier, key: str, process: str) -> float:
    for header in (amplifier.header, image.header):
        if key in header:
            value = header[key]
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DataError(f"{process}: header keyword {key} is not a number ({value!r})") from None
            if not np.isfinite(number) or number <= 0:
                raise DataError(f"{process}: header keyword {key} is not a valid noise ({number} ADU)")
            return number
    raise DataError(
        f"{process}: header keyword {key!r} (spr_threshold sigma, ADU) not found for amplifier {amplifier.name}",
        hint="use null (pedestal noise) or a number in e-",
    )


def resolve_threshold(
    spec: Sequence[Any] | float | None,
    *,
    image: SkipperImage,
    amplifier: Amplifier,
    in_electrons: bool,
    sigma_mean: bool = True,
    process: str = "ClusterFinder",
) -> Threshold:
    """Resolve an ``spr_threshold`` value for one amplifier.

    Parameters
    ----------
    spec : list, float or None
        ``[sigma, n_pix, n_seed]``, a threshold in e-, or None (see the module docstring).
    image, amplifier : SkipperImage, Amplifier
        Where the pedestal noise, the gain and header keywords are read.
    in_electrons : bool
        Whether the clustered image is in electrons (else ADU).
    sigma_mean : bool
        With ``sigma = null``: the mean (True) or the median of the pedestal sigmas.
    process : str
        Name used in error messages.

    Returns
    -------
    Threshold

    Raises
    ------
    DataError
        If the noise or the gain it needs is not available.
    """
    is_list = isinstance(spec, list | tuple)
    if spec is not None and not _is_number(spec) and not (is_list and len(spec) == 3):
        raise ConfigError(f"{process}: invalid spr_threshold {spec!r} for amplifier {amplifier.name}")
    sigma = spec[0] if is_list else None
    sigma_adu = spread_adu = math.nan
    if is_list and sigma is None:
        sigma_adu, spread_adu = _pedestal_noise(amplifier, process, sigma_mean)
    elif isinstance(sigma, str):
        sigma_adu = _header_value(image, amplifier, sigma, process)
    gain = math.nan
    if not in_electrons:
        gain = _gain(amplifier, process, "the image is in ADU")
    elif is_list and (sigma is None or isinstance(sigma, str)):
        gain = _gain(amplifier, process, f"spr_threshold sigma is {'null' if sigma is None else sigma}")
    to_e = 1.0 if in_electrons else 1.0 / gain
    if spec is None:
        return Threshold(q_cut=0.0, q_seed=0.0, to_electrons=to_e, gain=gain, source="none")
    if _is_number(spec):
        cut = float(spec) / to_e
        return Threshold(q_cut=cut, q_seed=cut, to_electrons=to_e, gain=gain, source="plain")
    _, n_pix, n_seed = spec
    spread_e = spread_adu / gain
    if sigma is None:
        sigma_e, source = sigma_adu / gain, "pedestal"
    elif isinstance(sigma, str):
        sigma_e, source = sigma_adu / gain, f"header:{sigma}"
    else:
        sigma_e, source = float(sigma), "configuration"
    return Threshold(
        q_cut=float(n_pix) * sigma_e / to_e,
        q_seed=float(n_seed) * sigma_e / to_e,
        to_electrons=to_e,
        sigma_e=sigma_e,
        sigma_e_spread=spread_e,
        n_pix=float(n_pix),
        n_seed=float(n_seed),
        gain=gain,
        source=source,
    )
