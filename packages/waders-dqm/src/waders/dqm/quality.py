"""Quality tests of monitor elements: ranges, fit goodness and comparison with a reference run.

Every ME entry of a run summary gets ``quality = {"status", "test", "detail"}``:

``range``
    the value (every ``y`` of a profile) lies within the ME's ``qt_valid_range``;
``chi2``
    the chi2 of the ME's own fit is likely for its degrees of freedom (p-value above
    ``qt_fit_pvalue_warn``/``qt_fit_pvalue_fail``; the chi2 is taken over the bins where the
    model expects at least ``qt_fit_min_expected`` counts, with a relative model accuracy
    ``qt_fit_model_accuracy`` added to the Poisson variance), or, for fits that report only
    chi2/ndf, at most ``qt_fit_chi2_max`` (pysimdamicm's "QT:chi2"); against the reference,
    the chi2/ndf of a profile and the reference's mean profile;
``reldiff``
    a value against the mean of the reference run: it *passes* when the difference is
    within ``qt_reldiff_warn`` of the reference **or** within ``qt_nsigma_warn`` standard
    errors (so that values near zero are judged by their errors), and *fails* beyond both
    ``qt_reldiff_fail`` and ``qt_nsigma_fail``;
``ks``
    the Kolmogorov-Smirnov test of a histogram against the summed reference histograms (same
    bins): warn when the p-value is below ``qt_ks_warn`` **and** the distance D (largest
    difference of the cumulative distributions) above ``qt_ks_distance_warn``, fail likewise
    with ``qt_ks_fail`` and ``qt_ks_distance_fail`` (with a million pixels, any shift of the
    pedestal by a hundredth of the noise is significant: the distance says whether it matters).

The status of an entry is the worst of its tests (``none`` when no test applies); an
image's status is the worst of its entries, the run's the worst of its images and run-level
entries, and ``fail`` when no image could be analysed or an input of the run could not be
(``failed_inputs``): what was not analysed was not monitored.  ``reasons`` says why a run
is not a pass, each root cause once.  Standard errors of the reference include the spread of its images, so the
image-to-image scatter of a quantity never fails a run that is like its reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .monitor import MonitorElement
from .status import worst

__all__ = ["ReferenceStats", "compare", "reference_stats", "run_reasons"]  # the statuses: waders.dqm.status


@dataclass
class ReferenceStats:
    """What a reference run says about one ME and amplifier.

    Attributes
    ----------
    run : int or None
        Reference run number.
    n : int
        Images with a value.
    mean, spread, sem : float or None
        Mean of the values, their standard deviation (or the error of a single image) and the
        standard error of the mean.
    x, y, yerr : numpy.ndarray or None
        Mean profile and its error, or the summed histogram.
    excess : float
        Variance of a profile's points between the images beyond their stated errors (pooled
        over the points; e.g. the error of a row's pedestal in the mean charge of the row).
    """

    run: int | None
    n: int = 0
    mean: float | None = None
    spread: float | None = None
    sem: float | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    yerr: np.ndarray | None = None
    excess: float = 0.0
    histogram: bool = False

    def to_plot(self) -> dict[str, Any]:
        """Plain dictionary for the plot functions."""
        return {"run": self.run, "mean": self.mean, "spread": self.spread, "x": self.x, "y": self.y, "yerr": self.yerr}


def _array(values: Any) -> np.ndarray | None:
    if values is None:
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def reference_stats(
    reference: Mapping[str, Any] | None, monitors: Mapping[str, MonitorElement] | None = None
) -> dict[tuple[str, str], ReferenceStats]:
    """Statistics of every (ME, amplifier) of a reference run document."""
    if not reference:
        return {}
    run = reference.get("run")
    collected: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for image in (reference.get("images") or {}).values():
        for me_name, per_amp in (image.get("me") or {}).items():
            for amp, entry in per_amp.items():
                collected.setdefault((me_name, amp), []).append(entry)
    out = {}
    kinds: dict[str, str | None] = {}
    for key, entries in collected.items():
        if key[0] not in kinds:
            me = _monitor(key[0], monitors)
            kinds[key[0]] = me.kind if me is not None else None
        out[key] = _stats(run, entries, kinds[key[0]])
    return out


def _stats(run: int | None, entries: list[dict[str, Any]], kind: str | None) -> ReferenceStats:
    stats = ReferenceStats(run=run)
    values = [(e["value"], e.get("error")) for e in entries if e.get("value") is not None]
    if values:
        v = np.array([a for a, _ in values], dtype=np.float64)
        errors = np.array([np.nan if b is None else b for _, b in values], dtype=np.float64)
        stats.n = len(v)
        stats.mean = float(v.mean())
        if len(v) >= 2:
            stats.spread = float(v.std(ddof=1))
        elif np.isfinite(errors[0]):
            stats.spread = float(errors[0])
        stats.sem = stats.spread / math.sqrt(len(v)) if stats.spread is not None else None
        if len(v) >= 2 and np.isfinite(errors).all():  # never smaller than the typical error of one image
            typical = float(np.sqrt(np.mean(errors**2)))
            stats.spread = max(stats.spread or 0.0, typical)
            stats.sem = max(stats.sem or 0.0, typical / math.sqrt(len(v)))
    profiles = [e for e in entries if e.get("x") is not None and e.get("y") is not None]
    if profiles:
        x0 = profiles[0]["x"]
        same = [e for e in profiles if e["x"] == x0]
        ys = np.vstack([_array(e["y"]) for e in same])
        stats.x = _array(x0)
        stats.histogram = kind == "distribution"
        if stats.histogram:
            stats.y = np.nansum(ys, axis=0)
        else:
            with np.errstate(all="ignore"), _Quiet():
                stats.y = np.nanmean(ys, axis=0)
                errs = [_array(e["yerr"]) for e in same if e.get("yerr") is not None]
                if len(errs) == len(same):
                    typical = np.nanmean(np.vstack(errs) ** 2, axis=0)
                    if len(same) >= 2:  # scatter between images beyond the stated errors, pooled over the points
                        excess = np.nanmean(np.nanvar(ys, axis=0, ddof=1) - typical)
                        stats.excess = float(excess) if np.isfinite(excess) and excess > 0 else 0.0
                    stats.yerr = np.sqrt((typical + stats.excess) / len(same))
    return stats


class _Quiet:
    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def _monitor(name: str, monitors: Mapping[str, MonitorElement] | None) -> MonitorElement | None:
    if monitors and name in monitors:
        return monitors[name]
    from waders.core.plugins import monitor_registry

    from .monitors import builtin_monitors

    classes = builtin_monitors()
    try:
        cls = monitor_registry().get(name) if name in monitor_registry() else classes.get(name)
    except Exception:  # a broken plug-in: test with the defaults
        cls = None
    if cls is None:
        return None
    try:
        return cls()
    except Exception:
        return None


# --- single tests ---------------------------------------------------------------------------------
def _result(test: str, status: str, detail: str) -> tuple[str, str, str]:
    return test, status, detail


def _fmt(value: float | None) -> str:
    return "null" if value is None else f"{value:.4g}"


def range_test(me: MonitorElement, entry: Mapping[str, Any], amplifier: str, ccd: Any) -> tuple[str, str, str] | None:
    """``range``: the value (every y of a profile) within ``qt_valid_range``."""
    bounds = me.valid_range(amplifier, ccd)
    if bounds is None:
        return None
    lo, hi = bounds
    if me.kind == "profile" and entry.get("y") is not None:
        values = _array(entry["y"])
        values = values[np.isfinite(values)]
    elif entry.get("value") is not None:
        values = np.array([entry["value"]], dtype=np.float64)
    else:
        return None
    if values.size == 0:
        return None
    outside = np.zeros(values.size, dtype=bool)
    if lo is not None:
        outside |= values < lo
    if hi is not None:
        outside |= values > hi
    text = f"[{_fmt(lo)}, {_fmt(hi)}] {me.unit}".rstrip()
    if outside.any():
        what = f"{int(outside.sum())} of {values.size} points" if values.size > 1 else _fmt(float(values[0]))
        return _result("range", "fail", f"{what} outside {text}")
    return _result("range", "pass", f"within {text}")


def goodness_test(me: MonitorElement, entry: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """``chi2`` of the ME's own fit: its p-value for its ndf, else its chi2/ndf at most ``qt_fit_chi2_max``.

    A fit that gives ``chi2`` and ``ndf`` (:func:`~waders.dqm.monitor.histogram_chi2`) is
    judged by the probability of a chi2 at least as large for a correct model: warn below
    ``qt_fit_pvalue_warn``, fail below ``qt_fit_pvalue_fail``.  A flat chi2/ndf limit would
    pass a wrong model with few bins and fail a right one with many.
    """
    chi2, ndf = entry.get("chi2"), entry.get("ndf")
    if chi2 is not None and ndf:
        from scipy.stats import chi2 as chi2_distribution

        p_value = float(chi2_distribution.sf(chi2, ndf))
        detail = f"fit chi2 {chi2:.4g} for {ndf} degrees of freedom (chi2/ndf {chi2 / ndf:.3g}, p = {p_value:.2g})"
        if p_value < me.qt_fit_pvalue_fail:
            return _result("chi2", "fail", detail)
        if p_value < me.qt_fit_pvalue_warn:
            return _result("chi2", "warn", detail)
        return _result("chi2", "pass", detail)
    goodness = entry.get("goodness")
    if goodness is None:
        return None
    if goodness > me.qt_fit_chi2_max:
        return _result("chi2", "fail", f"fit chi2/ndf {goodness:.3g} > {me.qt_fit_chi2_max:g}")
    return _result("chi2", "pass", f"fit chi2/ndf {goodness:.3g}")


def difference_test(
    me: MonitorElement, value: float, sigma: float | None, ref_mean: float, ref_run: Any
) -> tuple[str, str, str]:
    """``reldiff``: ``value`` against the reference mean with the combined standard error ``sigma``."""
    delta = abs(value - ref_mean)
    scale = abs(ref_mean)
    sig = sigma if sigma is not None and math.isfinite(sigma) else 0.0
    warn_limit = max(me.qt_abs_tolerance, me.qt_reldiff_warn * scale, me.qt_nsigma_warn * sig)
    fail_limit = max(me.qt_abs_tolerance, me.qt_reldiff_fail * scale, me.qt_nsigma_fail * sig)
    relative = f"{100 * (value - ref_mean) / scale:+.3g}%" if scale > 0 else f"{value - ref_mean:+.3g}"
    pulls = f", {delta / sig:.2g} sigma" if sig > 0 else ""
    detail = f"{_fmt(value)} vs {_fmt(ref_mean)} in run {ref_run} ({relative}{pulls})"
    if delta > fail_limit:
        return _result("reldiff", "fail", detail)
    if delta > warn_limit:
        return _result("reldiff", "warn", detail)
    return _result("reldiff", "pass", detail)


def profile_chi2_test(me: MonitorElement, entry: Mapping[str, Any], ref: ReferenceStats) -> tuple[str, str, str] | None:
    """``chi2`` of a profile against the reference's mean profile (same x)."""
    if ref.x is None or ref.y is None or entry.get("x") is None or entry.get("y") is None:
        return None
    x, y = _array(entry["x"]), _array(entry["y"])
    if x.shape != ref.x.shape or not np.allclose(x, ref.x, equal_nan=True):
        return _result("chi2", "none", f"x of the profile differs from run {ref.run}: not compared")
    yerr = _array(entry.get("yerr"))
    if yerr is None or ref.yerr is None:
        return None
    variance = yerr**2 + ref.excess + ref.yerr**2
    good = np.isfinite(y) & np.isfinite(ref.y) & np.isfinite(variance) & (variance > 0)
    n = int(good.sum())
    if n == 0:
        return None
    chi2_ndf = float(((y[good] - ref.y[good]) ** 2 / variance[good]).sum() / n)
    detail = f"chi2/ndf {chi2_ndf:.3g} over {n} points vs run {ref.run}"
    if chi2_ndf > me.qt_chi2_fail:
        return _result("chi2", "fail", detail)
    if chi2_ndf > me.qt_chi2_warn:
        return _result("chi2", "warn", detail)
    return _result("chi2", "pass", detail)


def ks_test(me: MonitorElement, entry: Mapping[str, Any], ref: ReferenceStats) -> tuple[str, str, str] | None:
    """Kolmogorov-Smirnov test of a histogram against the summed reference histograms (same bins)."""
    if ref.x is None or ref.y is None or entry.get("x") is None or entry.get("y") is None:
        return None
    x, y = _array(entry["x"]), np.nan_to_num(_array(entry["y"]))
    if x.shape != ref.x.shape or not np.allclose(x, ref.x, equal_nan=True):
        return _result("ks", "none", f"bins differ from run {ref.run}: not compared")
    ref_y = np.nan_to_num(ref.y)
    n1, n2 = float(y.sum()), float(ref_y.sum())
    if n1 <= 0 or n2 <= 0:
        return None
    from scipy.stats import kstwobign

    distance = float(np.max(np.abs(np.cumsum(y) / n1 - np.cumsum(ref_y) / n2)))
    n_eff = n1 * n2 / (n1 + n2)
    p_value = float(kstwobign.sf(distance * math.sqrt(n_eff)))
    detail = f"KS p = {p_value:.3g} (D = {distance:.3g}) vs run {ref.run}"
    if p_value < me.qt_ks_fail and distance > me.qt_ks_distance_fail:
        return _result("ks", "fail", detail)
    if p_value < me.qt_ks_warn and distance > me.qt_ks_distance_warn:
        return _result("ks", "warn", detail)
    return _result("ks", "pass", detail)


def _combine(results: list[tuple[str, str, str] | None], fallback: Mapping[str, Any] | None = None) -> dict[str, Any]:
    done = [r for r in results if r is not None and r[1] != "none"]
    skipped = [r for r in results if r is not None and r[1] == "none"]
    if not done:
        if fallback is not None:
            return dict(fallback)
        detail = "; ".join(r[2] for r in skipped) or "no quality test"
        return {"status": "none", "test": None, "detail": detail}
    status = worst(r[1] for r in done)
    test = next(r[0] for r in done if r[1] == status)
    detail = "; ".join(f"{r[0]} {r[1]}: {r[2]}" for r in done + skipped)
    problems = [f"{r[0]}: {r[2]}" for r in done if r[1] == status and status in ("warn", "fail")]
    out: dict[str, Any] = {"status": status, "test": test, "detail": detail}
    if problems:
        out["problems"] = problems
    return out


def image_entry_quality(
    me: MonitorElement,
    entry: Mapping[str, Any],
    amplifier: str,
    ccd: Any,
    ref: ReferenceStats | None,
) -> dict[str, Any]:
    """Quality of one image's entry (range, own fit, reference comparison)."""
    has_data = entry.get("value") is not None or entry.get("y") is not None
    if not has_data:  # not applicable or failed at evaluation: keep what evaluation said
        return dict(entry.get("quality") or {"status": "none", "test": None, "detail": ""})
    results = [range_test(me, entry, amplifier, ccd), goodness_test(me, entry)]
    test = me.reference_test()
    if ref is not None and test != "none":
        if test == "chi2":
            outcome = profile_chi2_test(me, entry, ref)
            results.append(outcome)
            if outcome is None or outcome[1] == "none":  # a profile without errors: compare its summary value
                test = "reldiff"
        elif test == "ks":
            results.append(ks_test(me, entry, ref))
        if test == "reldiff" and entry.get("value") is not None and ref.mean is not None:
            error = entry.get("error")
            spread = ref.spread if ref.spread is not None else 0.0
            sigma = math.sqrt((error or 0.0) ** 2 + spread**2)
            results.append(difference_test(me, float(entry["value"]), sigma, ref.mean, ref.run))
    return _combine(results)


def run_entry_quality(
    me: MonitorElement, entry: Mapping[str, Any], amplifier: str, ref: ReferenceStats | None
) -> dict[str, Any]:
    """Quality of a run-level entry: every value in range; the run's mean against the reference's."""
    y = _array(entry.get("y"))
    if y is None or not np.isfinite(y).any():
        return {"status": "none", "test": None, "detail": "no values"}
    values = y[np.isfinite(y)]
    results: list[tuple[str, str, str] | None] = []
    bounds = me.valid_range(amplifier)
    if bounds is not None:
        lo, hi = bounds
        outside = ((values < lo) if lo is not None else False) | ((values > hi) if hi is not None else False)
        n_out = int(np.sum(outside))
        text = f"[{_fmt(lo)}, {_fmt(hi)}] {me.unit}".rstrip()
        if n_out:
            results.append(_result("range", "fail", f"{n_out} of {values.size} images outside {text}"))
        else:
            results.append(_result("range", "pass", f"all {values.size} images within {text}"))
    if ref is not None and ref.mean is not None and me.reference_test() != "none":
        mean = float(values.mean())
        errors = _array(entry.get("yerr"))
        if values.size >= 2:
            sem = float(values.std(ddof=1)) / math.sqrt(values.size)
            if errors is not None and np.isfinite(errors).all():
                sem = max(sem, float(np.sqrt(np.mean(errors**2))) / math.sqrt(values.size))
        else:
            sem = float(errors[0]) if errors is not None and np.isfinite(errors[0]) else 0.0
        sigma = math.sqrt(sem**2 + (ref.sem or 0.0) ** 2)
        results.append(difference_test(me, mean, sigma, ref.mean, ref.run))
    return _combine(results)


def compare(
    document: dict[str, Any],
    reference_document: Mapping[str, Any] | None,
    monitors: Mapping[str, MonitorElement] | None = None,
) -> dict[str, Any]:
    """Run the quality tests of a run document against a reference run document (in place).

    Parameters
    ----------
    document : dict
        A run summary (``summary_runNNN.json`` layout); every ``quality``, image ``status``
        and the run ``status`` are (re)computed.
    reference_document : mapping or None
        The reference run's summary (None: only ranges and fit goodness are tested).
    monitors : mapping, optional
        Configured ME instances by name (their ``qt_*`` thresholds); MEs not given use the
        defaults of their class.

    Returns
    -------
    dict
        ``document``.
    """
    refs = reference_stats(reference_document, monitors)
    known: dict[str, MonitorElement] = dict(monitors or {})

    def monitor(name: str) -> MonitorElement:
        if name not in known:
            known[name] = _monitor(name, monitors) or MonitorElement()
        return known[name]

    if reference_document is not None:
        document["reference_run"] = reference_document.get("run")
    image_statuses = []
    for image in (document.get("images") or {}).values():
        statuses = []
        for me_name, per_amp in (image.get("me") or {}).items():
            me = monitor(me_name)
            for amp, entry in per_amp.items():
                entry["quality"] = image_entry_quality(me, entry, amp, image.get("ccd"), refs.get((me_name, amp)))
                statuses.append(entry["quality"]["status"])
        image["status"] = _as_status(worst(statuses))
        image_statuses.append(image["status"])
    run_statuses = []
    for me_name, per_amp in (document.get("run_level") or {}).items():
        me = monitor(me_name)
        for amp, entry in per_amp.items():
            entry["quality"] = run_entry_quality(me, entry, amp, refs.get((me_name, amp)))
            run_statuses.append(entry["quality"]["status"])
    status = _as_status(worst(image_statuses + run_statuses))
    if document.get("failed_inputs") or not document.get("images"):
        status = "fail"  # images that could not be analysed are not monitored: never a pass
    document["status"] = status
    document["reasons"] = run_reasons(document)
    return document


def _few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def run_reasons(document: Mapping[str, Any], limit: int = 20) -> list[str]:
    """Why a run is not a pass: each root cause once, failures first.

    Inputs that could not be analysed are grouped by their error; the problems of image
    entries are grouped first by image, amplifier and problem (one cause that fails several
    MEs, such as a bad fit read by MEFitDC and MEFitDCMu0/Sigma/Lambda, is one reason), then
    by the set of MEs and the test (the same ME failing on several images is one reason,
    with its first example and how many more).
    """
    reasons: dict[str, list[str]] = {"fail": [], "warn": []}
    images = document.get("images") or {}
    failed = document.get("failed_inputs") or {}
    if not images:
        reasons["fail"].append(f"no image could be analysed ({len(failed)} input(s) failed)" if failed else "no image")
    by_error: dict[str, list[str]] = {}
    for stem, info in failed.items():
        file, error = str(info.get("file") or stem), str(info.get("error") or "unknown error")
        cause = error[len(file) + 2 :] if error.startswith(f"{file}: ") else error
        by_error.setdefault(cause, []).append(file.rsplit("/", 1)[-1])
    for cause, names in by_error.items():
        reasons["fail"].append(f"{len(names)} input(s) could not be analysed ({_few(names)}): {cause}")
    per_cause: dict[tuple[str, str, str, str], list[str]] = {}
    for stem, image in images.items():
        for me_name, per_amp in (image.get("me") or {}).items():
            for amp, entry in per_amp.items():
                quality = entry.get("quality") or {}
                status = quality.get("status")
                if status not in ("warn", "fail"):
                    continue
                for problem in quality.get("problems") or [quality.get("detail") or "no detail"]:
                    per_cause.setdefault((status, stem, amp, problem), []).append(me_name)
    grouped: dict[tuple[str, tuple[str, ...], str], list[tuple[str, str, str]]] = {}
    for (status, stem, amp, problem), names in per_cause.items():
        test = problem.split(":", 1)[0] if ":" in problem else ""
        grouped.setdefault((status, tuple(names), test), []).append((stem, amp, problem))
    for (status, names, _), cases in grouped.items():
        stem, amp, problem = cases[0]
        more = f"; and {len(cases) - 1} more image/amplifier(s)" if len(cases) > 1 else ""
        reasons[status].append(f"{_few(list(names))}: {problem} ({stem}, amplifier {amp}{more})")
    for me_name, per_amp in (document.get("run_level") or {}).items():
        for amp, entry in per_amp.items():
            quality = entry.get("quality") or {}
            if quality.get("status") in ("warn", "fail"):
                for problem in quality.get("problems") or [quality.get("detail") or "no detail"]:
                    reasons[quality["status"]].append(f"{me_name} over the run, amplifier {amp}: {problem}")
    out = [f"fail: {r}" for r in reasons["fail"]] + [f"warn: {r}" for r in reasons["warn"]]
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more (see the report)"]
    return out


def _as_status(status: str) -> str:
    """Statuses of images and runs: no test at all counts as a pass."""
    return "pass" if status == "none" else status
