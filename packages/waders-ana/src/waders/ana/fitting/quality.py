"""Fit quality: the one judgement of whether a fit may be used (every fit of waders-ana calls it).

A fit is **valid** only when all of these hold:

* it converged (and, where the fitter says so, its covariance is positive definite);
* it had enough entries (``n_entries >= min_entries``; the fitter sets the minimum);
* no parameter sits at one of its limits (a bound that stops the minimiser means the
  true minimum is elsewhere or the parameter is undetermined);
* its goodness of fit is acceptable: the fit is **rejected** when the chi-square is both
  improbable for its degrees of freedom, ``p = P(chi2_ndf > chi2) < P_VALUE_MIN`` (1e-6,
  about five Gaussian standard deviations), **and** ``chi2/ndf > CHI2_NDF_FLOOR`` (2).

Why both: the p-value alone judges against the statistics (for ``ndf = 20`` it rejects
``chi2/ndf`` above about 3.1, for ``ndf = 1`` above about 24), but real images have
hundreds of thousands of pixels, and a model that is right to a few per cent of the
Poisson errors (the pixel-charge peaks of real CCDs are not exactly Gaussian) then has a
tiny p-value at ``chi2/ndf`` of 1.3-1.7; the floor of 2 accepts those (the model is off
by less than the statistical errors) and still rejects a wrong model (e.g. a gain guess
that fits the 1 e- peak as noise: ``chi2/ndf`` ~ 1000).  The chi-square is the
Baker-Cousins likelihood ratio for binned Poisson fits or the ordinary one for
least-squares fits; both follow the chi-square distribution for a correct model.

The functions work on scalars or arrays (one entry per fit) and never raise for NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from waders.core.lazy import lazy_module

special = lazy_module("scipy.special")

__all__ = [
    "CHI2_NDF_FLOOR",
    "P_VALUE_MIN",
    "FitQuality",
    "assess",
    "assess_many",
    "chi2_acceptable",
    "chi2_p_value",
]

#: Smallest acceptable chi-square p-value (a fit below it is improbable for a correct model).
P_VALUE_MIN = 1e-6
#: chi2/ndf at or below which a fit is never rejected for its goodness of fit.
CHI2_NDF_FLOOR = 2.0


@dataclass(frozen=True)
class FitQuality:
    """Verdict on one fit.

    Attributes
    ----------
    valid : bool
        Whether the fit may be used.
    reasons : tuple of str
        Why not (empty when valid).
    p_value : float
        Chi-square p-value (NaN without degrees of freedom).
    """

    valid: bool
    reasons: tuple[str, ...]
    p_value: float

    @property
    def status(self) -> str:
        """``"ok"`` or the reasons joined by ``"; "``."""
        return "; ".join(self.reasons) if self.reasons else "ok"


def chi2_p_value(chi2: Any, ndf: Any) -> Any:
    """Probability of a chi-square at least ``chi2`` for ``ndf`` degrees of freedom (NaN if ndf < 1)."""
    chi2 = np.asarray(chi2, dtype=np.float64)
    ndf = np.asarray(ndf, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        p = np.where(ndf >= 1, special.chdtrc(np.maximum(ndf, 1), chi2), np.nan)
    return float(p) if p.ndim == 0 else p


def chi2_acceptable(chi2: Any, ndf: Any) -> Any:
    """Whether the goodness of fit is acceptable (see the module docstring).

    A fit without degrees of freedom or with a NaN chi-square is not judged (True): the
    other checks (entries, convergence) decide.
    """
    chi2 = np.asarray(chi2, dtype=np.float64)
    ndf = np.asarray(ndf, dtype=np.float64)
    p = np.asarray(chi2_p_value(chi2, ndf))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = chi2 / np.where(ndf >= 1, ndf, np.nan)
        bad = (p < P_VALUE_MIN) & (ratio > CHI2_NDF_FLOOR)
    ok = ~bad
    return bool(ok) if ok.ndim == 0 else ok


def assess_many(
    *,
    chi2: Any,
    ndf: Any,
    n_entries: Any,
    min_entries: float,
    converged: Any = True,
    posdef: Any = True,
    at_limit: Mapping[str, Any] | None = None,
    other: Mapping[str, Any] | None = None,
    entries: str = "entries",
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Verdicts on many fits at once.

    Parameters
    ----------
    chi2, ndf : array_like
        Chi-square and degrees of freedom of each fit.
    n_entries : array_like
        Entries (pixels, points) of each fit.
    min_entries : float
        Fewest entries for a usable fit.
    converged, posdef : array_like of bool
        Whether each fit converged and has a positive-definite covariance.
    at_limit : mapping, optional
        Parameter name -> boolean array, True where that parameter is at a limit.
    other : mapping, optional
        Further reason -> boolean array, True where that reason invalidates the fit.
    entries : str
        What the entries are, for the message (``"pixels in the fit range"``).

    Returns
    -------
    valid : ndarray of bool
    status : list of str
        ``"ok"`` or the reasons, one entry per fit.
    p_value : ndarray
    """
    chi2 = np.atleast_1d(np.asarray(chi2, dtype=np.float64))
    shape = chi2.shape
    n_entries = np.broadcast_to(np.asarray(n_entries, dtype=np.float64), shape)
    few = ~(n_entries >= min_entries)
    p_value = np.broadcast_to(np.atleast_1d(chi2_p_value(chi2, np.broadcast_to(ndf, shape))), shape)
    checks: list[tuple[str, np.ndarray]] = [
        ("fit did not converge", ~np.broadcast_to(np.asarray(converged, dtype=bool), shape)),
        ("covariance not positive definite", ~np.broadcast_to(np.asarray(posdef, dtype=bool), shape)),
    ]
    for name, flagged in (at_limit or {}).items():
        checks.append((f"{name} at a limit", np.broadcast_to(np.asarray(flagged, dtype=bool), shape)))
    for reason, flagged in (other or {}).items():
        checks.append((reason, np.broadcast_to(np.asarray(flagged, dtype=bool), shape)))
    bad_chi2 = ~np.atleast_1d(chi2_acceptable(chi2, np.broadcast_to(ndf, shape)))
    valid = ~few & ~bad_chi2
    for _, flagged in checks:
        valid &= ~flagged
    status = np.full(chi2.size, "ok", dtype=object)
    ndf_b = np.broadcast_to(np.asarray(ndf, dtype=np.float64), shape)
    for i in np.flatnonzero(~valid.ravel()):  # only the invalid fits need words (per-row fits can be many)
        if few.flat[i]:
            status[i] = f"too few {entries} ({n_entries.flat[i]:.0f} < {min_entries:g})"
            continue
        reasons = [text for text, flagged in checks if flagged.flat[i]]
        if bad_chi2.flat[i]:
            reasons.append(
                f"bad goodness of fit (chi2/ndf {chi2.flat[i] / ndf_b.flat[i]:.3g} for ndf {ndf_b.flat[i]:.0f}, "
                f"p {p_value.flat[i]:.1e})"
            )
        status[i] = "; ".join(reasons) if reasons else "ok"
    return valid, [str(text) for text in status], np.asarray(p_value, dtype=np.float64)


def assess(
    *,
    chi2: float,
    ndf: float,
    n_entries: float,
    min_entries: float,
    converged: bool = True,
    posdef: bool = True,
    at_limit: Mapping[str, bool] | None = None,
    other: Mapping[str, bool] | None = None,
    entries: str = "entries",
) -> FitQuality:
    """Verdict on one fit (see :func:`assess_many` for the parameters)."""
    valid, status, p_value = assess_many(
        chi2=chi2,
        ndf=ndf,
        n_entries=n_entries,
        min_entries=min_entries,
        converged=converged,
        posdef=posdef,
        at_limit=at_limit,
        other=other,
        entries=entries,
    )
    reasons = () if status[0] == "ok" else tuple(status[0].split("; "))
    return FitQuality(bool(valid[0]), reasons, float(p_value[0]))
