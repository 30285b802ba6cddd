"""Fitting helpers of waders-ana (vectorised Gaussian fits, pixel-charge-distribution fits).

Two kernels serve every binned fit: :func:`~waders.ana.fitting.deviance.poisson_deviance`
(the Baker-Cousins chi-square) and :func:`~waders.ana.fitting.minimise.minimise_batch`
(one vectorised Levenberg-Marquardt for many small problems).
"""

from __future__ import annotations

from .gaussian import GaussianFits, fit_gaussians, robust_centre_width

__all__ = ["GaussianFits", "fit_gaussians", "robust_centre_width"]
