"""Fitting helpers of waders-ana (vectorised Gaussian fits, pixel-charge-distribution fits)."""

from __future__ import annotations

from .gaussian import GaussianFits, fit_gaussians, robust_centre_width

__all__ = ["GaussianFits", "fit_gaussians", "robust_centre_width"]
