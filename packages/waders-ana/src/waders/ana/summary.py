"""What ``waders ana`` reports about one image: the summary JSON and the ROOT info/config trees.

The summary (``<stem>.summary.json``) is what the data-quality monitor builds on::

    {"input", "waders_version", "config", "amplifiers": {NAME: {"pedestal_adu", "noise_adu",
     "pedestal_region", "pedestal_fits_invalid", "gain_adu_per_e", "gain_source", "gain_err",
     "sigma_e", "lambda_e_per_pixel", "lambda_err", "mu0_adu", "fit_chi2_ndf", "fit_valid",
     "fit_status", "fit_reasons", "fit_seeded_from_data", "fit_seed_source", "n_clusters", ...}},
     "timings_s": {PROCESS: seconds}, "warnings": [...], "studies": {PROCESS: {...}}}

Keys are absent when the process that computes them did not run.  ``fit_valid`` is the verdict
of :mod:`waders.ana.fitting.quality` on the dark-current fit and ``fit_reasons`` lists why it is
not valid; ``gain_source`` says where the calibration gain comes from (``"dark-current fit"``,
``"configuration"``, ``"conditions #ID"``, or ``"configuration (fallback: <reason>)"`` when the
fit could not be used).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from waders.core.config import Config
from waders.core.image import SkipperImage

__all__ = ["info_columns", "json_ready", "process_config_columns", "summarise"]

_FIT = "FitDarkCurrentProcess"
#: info-tree columns from the dark-current fit: (suffix, result key, error key).
_FIT_COLUMNS = (
    ("gain", "gain_adu_per_e", "gain_err"),
    ("dc", "lambda_e_per_pixel", "lambda_err"),
    ("sig", "sigma_adu", "sigma_err"),
    ("mu0", "mu0_adu", "mu0_err"),
)


def json_ready(value: Any) -> Any:
    """Convert numpy values and NaN/inf (to null) so that ``json.dumps`` writes valid JSON."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _amplifier_summary(image: SkipperImage, name: str) -> dict[str, Any]:
    results = image.amplifiers[name].results
    out: dict[str, Any] = {}
    pedestal = results.get("PedestalSubtractionProcess")
    if pedestal:
        out["pedestal_adu"] = pedestal.get("pedestal_adu")
        out["noise_adu"] = pedestal.get("noise_adu")
        out["pedestal_region"] = pedestal.get("region")
        invalid = sum(
            int(np.count_nonzero(~np.asarray(pedestal[key]) & np.isfinite(pedestal[f"pedestal_{key[10:]}"])))
            for key in pedestal
            if key.startswith("fit_valid_")
        )
        if any(key.startswith("fit_valid_") for key in pedestal):
            out["pedestal_fits_invalid"] = invalid
    calibration = results.get("CalibrationProcess")
    if calibration:
        out["gain_adu_per_e"] = calibration["gain_adu_per_e"]
        out["gain_source"] = calibration.get("gain_source")
    fit = results.get(_FIT)
    if fit:
        if not calibration:
            out["gain_adu_per_e"] = fit.get("gain_adu_per_e")
        out["gain_err"] = fit.get("gain_err")
        out["sigma_e"] = fit.get("sigma_e")
        out["lambda_e_per_pixel"] = fit.get("lambda_e_per_pixel")
        out["lambda_err"] = fit.get("lambda_err")
        out["lambda_e_per_pixel_per_day"] = fit.get("lambda_e_per_pixel_per_day")
        out["mu0_adu"] = fit.get("mu0_adu")
        out["fit_chi2_ndf"] = fit.get("chi2_ndf")
        out["fit_valid"] = fit.get("valid")
        out["fit_status"] = fit.get("status")
        out["fit_reasons"] = [] if fit.get("valid") else str(fit.get("status", "unknown")).split("; ")
        out["fit_seeded_from_data"] = fit.get("seeded_from_data")
        out["fit_seed_source"] = fit.get("seed_source")
    gain_fit = results.get("FitCalibrationConstant")
    if gain_fit and "gain_err" not in out:
        out.setdefault("gain_adu_per_e", gain_fit.get("gain_adu_per_e"))
        out["gain_err"] = gain_fit.get("gain_err")
    if "sigma_e" not in out and out.get("noise_adu") is not None and out.get("gain_adu_per_e"):
        out["sigma_e"] = out["noise_adu"] / out["gain_adu_per_e"]
    finder = results.get("ClusterFinder")
    if finder:
        out["n_clusters"] = finder.get("n_clusters")
    return {k: v for k, v in out.items() if v is not None}


def summarise(image: SkipperImage, config: Config, *, input_path: str, versions: dict[str, str]) -> dict[str, Any]:
    """Build the summary of one analysed image (see the module docstring)."""
    warnings = list(image.meta.get("warnings", []))
    for name, amp in image.amplifiers.items():
        fit = amp.results.get(_FIT)
        if fit and not fit.get("valid", True):
            warnings.append(f"{name}: {_FIT}: fit invalid ({fit.get('status', 'unknown status')})")
        invalid = _amplifier_summary(image, name).get("pedestal_fits_invalid")
        if invalid:
            warnings.append(f"{name}: PedestalSubtractionProcess: {invalid} Gaussian fit(s) of the pedestal invalid")
        drift = amp.results.get("PedestalSubtractionProcess", {}).get("drift_warning")
        if drift:
            warnings.append(f"{name}: PedestalSubtractionProcess: {drift}")
        reason = amp.results.get("CalibrationProcess", {}).get("fallback_reason")
        if reason:
            warnings.append(f"{name}: CalibrationProcess: {amp.results['CalibrationProcess']['gain_source']}")
    studies: dict[str, Any] = {}
    for process in config.steps:
        if process.name in _CHAIN:
            continue
        entry: dict[str, Any] = {}
        image_values = _reportable(image.results.get(process.name, {}))
        if image_values:
            entry["image"] = image_values
        per_amp = {
            name: _reportable(amp.results[process.name])
            for name, amp in image.amplifiers.items()
            if process.name in amp.results
        }
        if per_amp:
            entry["amplifiers"] = per_amp
        if entry:
            studies[process.name] = entry
    summary = {
        "input": input_path,
        "waders_version": versions.get("waders-ana", versions.get("waders-core")),
        "versions": versions,
        "run": image.meta.get("run"),
        "image": image.meta.get("image"),
        "ccd": image.meta.get("ccd"),
        "geometry": image.geometry.describe(),
        "times": {k: image.meta[k] for k in ("exposure_start", "readout_start", "readout_end") if k in image.meta},
        "config": config.to_dict(),
        "amplifiers": {name: _amplifier_summary(image, name) for name in image.amplifiers},
        "timings_s": image.provenance.timings if image.provenance else {},
        "warnings": warnings,
    }
    if studies:
        summary["studies"] = studies
    return json_ready(summary)


#: Processes whose numbers are the per-amplifier summary (not repeated under "studies").
_CHAIN = frozenset(
    {"CompressSkipperProcess", "PedestalSubtractionProcess", "CalibrationProcess", _FIT, "ClusterFinder",
     "BuildClusterMask", "ApplySelectionCuts"}
)  # fmt: skip
#: Longest list of numbers copied into the summary.
_MAX_LIST = 10_000


def _reportable(values: dict[str, Any]) -> dict[str, Any]:
    """Scalars, strings and lists of numbers (not images, not awkward arrays) of a result dictionary."""
    return {key: value for key, value in values.items() if _is_reportable(value)}


def _is_reportable(value: Any) -> bool:
    if isinstance(value, bool | int | float | str | np.generic) or value is None:
        return True
    if isinstance(value, np.ndarray):
        return value.ndim <= 2 and value.size <= _MAX_LIST
    return isinstance(value, list | tuple) and len(value) <= _MAX_LIST


def process_config_columns(config: Config, versions: dict[str, str], e2eV: float) -> dict[str, Any]:
    """One entry of the ``process_config`` tree: ``<Process>_<param>`` numbers (pysimdamicm layout)."""
    columns: dict[str, Any] = {
        "id": 0,
        "waders_version": versions.get("waders-ana", ""),
        "waders_commit": "",
        "e2eV": float(e2eV),
    }
    for position, process in enumerate(config.steps):
        columns[f"{process.name}_sequence_id"] = position
        for key, value in process.to_dict().items():
            _flatten(columns, f"{process.name}_{key}", value)
    return columns


def _flatten(columns: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if not (isinstance(value, float) and math.isnan(value)):
            columns[key] = value
    elif isinstance(value, dict):
        for sub, item in value.items():
            _flatten(columns, f"{key}_{sub}", item)


def info_columns(image: SkipperImage) -> dict[str, Any]:
    """One entry of the ``info`` tree for an image (pysimdamicm's names where they exist)."""
    geometry = image.geometry
    exposure = geometry.exposure_time if math.isfinite(geometry.exposure_time) else 0.0
    read = geometry.read_time if math.isfinite(geometry.read_time) else 0.0
    columns: dict[str, Any] = {
        "RUNID": int(image.meta.get("run") or 0),
        "nfile": int(image.meta.get("image") or 0),
        "idccd": int(image.meta.get("ccd") or 0),
        "total_exposure": exposure + read,
        "exposure_time": exposure,
        "read_time": read,
        "readout_start": str(image.meta.get("exposure_start", "")),
        "readout_end": str(image.meta.get("readout_end", "")),
    }
    for name, amp in image.amplifiers.items():
        pedestal = amp.results.get("PedestalSubtractionProcess", {})
        for axis in ("row", "col"):
            if f"pedestal_{axis}" in pedestal:
                mu = np.asarray(pedestal[f"pedestal_{axis}"], dtype=np.float64)
                sigma = np.asarray(pedestal[f"sigma_{axis}"], dtype=np.float64)
                columns[f"{name}_pedestal_mu_{axis}_ADU"] = mu
                columns[f"{name}_pedestal_sigma_{axis}_ADU"] = sigma
                columns[f"{name}_pedestal_mu_{axis}_mean_ADU"] = float(np.nanmean(mu)) if np.isfinite(mu).any() else 0.0
                columns[f"{name}_pedestal_sigma_{axis}_mean_ADU"] = (
                    float(np.nanmean(sigma)) if np.isfinite(sigma).any() else 0.0
                )
        fit = amp.results.get(_FIT, {})
        calibration = amp.results.get("CalibrationProcess", {})
        for short, key, err_key in _FIT_COLUMNS:
            value = fit.get(key, calibration.get(key))
            error = fit.get(err_key)
            columns[f"{name}_{short}"] = float(value) if value is not None and math.isfinite(value) else 0.0
            columns[f"{name}_{short}_err"] = float(error) if error is not None and math.isfinite(error) else 0.0
    columns.update(_readout_and_transient_columns(image, columns))
    return columns


def _readout_and_transient_columns(image: SkipperImage, columns: dict[str, Any]) -> dict[str, Any]:
    """The ``readout_time_<axis>`` (0..1 over the rows/columns read) and ``ect_*`` of the info tree.

    ``ect_mu``, ``ect_amplitude`` (per exponential) and ``ect_chi`` (chi2/ndf) come from
    CorrectElectronicColumnTransient; with several corrected amplifiers they are prefixed ``<A>_``.
    """
    out: dict[str, Any] = {}
    for axis in ("row", "col"):
        sizes = [np.size(v) for k, v in columns.items() if k.endswith(f"_pedestal_mu_{axis}_ADU")]
        if sizes:
            out[f"readout_time_{axis}"] = np.linspace(0.0, 1.0, sizes[0])
    corrected = {
        name: amp.results["CorrectElectronicColumnTransient"]
        for name, amp in image.amplifiers.items()
        if "CorrectElectronicColumnTransient" in amp.results
    }
    for name, ect in corrected.items():
        prefix = "" if len(corrected) == 1 else f"{name}_"
        out[f"{prefix}ect_mu"] = np.asarray(ect.get("ect_mu", []), dtype=np.float64)
        out[f"{prefix}ect_amplitude"] = np.asarray(ect.get("ect_amplitude", []), dtype=np.float64)
        chi = ect.get("ect_chi2_ndf")
        out[f"{prefix}ect_chi"] = float(chi) if chi is not None and math.isfinite(chi) else 0.0
    return out
