"""The Poisson likelihood-ratio (Baker-Cousins) deviance of binned fits.

For observed counts ``n`` and expected counts ``mu`` of a bin, the deviance is

    ``D = 2 * (mu - n + n ln(n / mu))``    (``n ln n`` = 0 for ``n`` = 0)

(Baker and Cousins, NIM 221 (1984) 437).  It is twice the negative log-likelihood ratio
of the model to the saturated model ``mu = n``: 0 for a perfect model and, summed over
the bins of a well-specified fit, distributed approximately as chi-square with the number
of degrees of freedom (bins - free parameters).  Every binned Poisson fit of waders-ana
reports it as its ``chi2``.
"""

from __future__ import annotations

import numpy as np

from waders.core.lazy import lazy_module

special = lazy_module("scipy.special")

__all__ = ["deviance_terms", "poisson_deviance"]

#: Expected counts are floored here (a zero expectation with counts is an infinite deviance).
TINY = 1e-300


def deviance_terms(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Baker-Cousins deviance of every bin.

    Parameters
    ----------
    counts : numpy.ndarray
        Observed counts (entries per bin, >= 0).
    expected : numpy.ndarray
        Expected counts of the model (broadcast against ``counts``; floored at 1e-300).

    Returns
    -------
    numpy.ndarray
        ``2 (mu - n + n ln(n / mu))`` per bin (>= 0; dimensionless).
    """
    counts = np.asarray(counts, dtype=np.float64)
    expected = np.maximum(np.asarray(expected, dtype=np.float64), TINY)
    return 2.0 * (expected - counts + special.xlogy(counts, counts) - special.xlogy(counts, expected))


def poisson_deviance(counts: np.ndarray, expected: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """Baker-Cousins chi-square: the deviance summed over the bins.

    Parameters
    ----------
    counts, expected : numpy.ndarray
        Observed and expected counts (see :func:`deviance_terms`).
    axis : int or None
        Bin axis (default: the last, so that a batch of histograms ``(S, B)`` gives ``S``
        values); None sums everything.

    Returns
    -------
    numpy.ndarray or float
        The chi-square of every histogram (dimensionless).
    """
    return deviance_terms(counts, expected).sum(axis=axis)
