"""MeanPixelChargePerAxis: a statistic of the pixel charge per row or per column.

Per amplifier, ``function`` (any numpy reduction: ``mean``, ``median``, ``std``, ``max``,
...) of the pixel values of ``region`` (the active region by default) inside the
id_row/id_col window, one value per row (``axis = "row"``) or per readout column
(``axis = "col"``).  With ``mask``, pixels above ``charge`` (image units) are left out.
Excluded pixels are NaN and the NaN-aware variant of the function is used
(``numpy.nanmean`` for ``mean``, ...).

Records per amplifier ``axis``, ``function``, ``unit``, ``position`` (row, or readout
column), ``file_position`` (the same in file coordinates: mirrored columns for the ``U``
amplifier), ``profile`` (one value per position, NaN where no pixel is used),
``n_pixels`` per position, ``profile_mean`` and ``profile_std`` (over positions).

Deliberate differences from pysimdamicm: the column profile is computed for every
amplifier (pysimdamicm ran it once for the whole image) and both are recorded, not only
drawn; the region is explicit (``region``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError
from waders.core.image import Amplifier
from waders.core.kinds import Choice, Float, Str

from ..base import AnalysisProcess
from ..fitting.gaussian import _quiet
from ..plotting import figure, wants_plots

__all__ = ["MeanPixelChargePerAxis", "reduction"]

log = logging.getLogger(__name__)


def reduction(name: str) -> Callable[..., np.ndarray]:
    """The NaN-aware numpy reduction for ``name`` (``np.nan<name>`` if it exists, else ``np.<name>``)."""
    func = getattr(np, f"nan{name}", None) or getattr(np, name, None)
    if name.startswith("_") or not callable(func):
        raise ConfigError(
            f"MeanPixelChargePerAxis.function: unknown numpy reduction {name!r}",
            hint="use mean, median, std, var, min, max or sum",
        )
    return func


class MeanPixelChargePerAxis(AnalysisProcess):
    """A numpy statistic (default mean) of the pixel charge per row or per column, recorded and drawn."""

    products = (
        Product("profile", "result", doc="the statistic per row or column (image unit; position, file_position)"),
        Product("profile_mean", "result", doc="mean of the profile (profile_std its spread)"),
        Product("profile", "figure", doc="<function>_per_<axis>: the profile"),
    )

    order: ClassVar[int] = 63
    per_amplifier: ClassVar[bool] = True

    image = Param("mean_compressed_pedestal_subtracted", doc="input image product")
    function = Param("mean", Str(), doc="numpy reduction (mean, median, std, ...); NaN-aware variant used")
    axis = Param("col", Choice(["row", "col"], aliases={"column": "col", "rows": "row", "cols": "col"}), doc="profile")
    mask = Param(False, doc="leave out pixels above 'charge'")
    charge = Param(100.0, Float(), doc="charge above which pixels are left out with 'mask' (image units)")
    region = Param("active", Choice(["active", "full", "active_rows", "overscan", "prescan"]), doc="pixels used")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        reduction(self.function)  # an unknown function fails when the configuration is loaded

    def profile(self, image: SkipperImage, amplifier: Amplifier) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, profile, pixels per position) of one amplifier."""
        data = self.input_image(amplifier)
        excluded = amplifier.geometry.mask(self.region) | self.window_mask(image, amplifier) | ~np.isfinite(data)
        if self.mask:
            with np.errstate(invalid="ignore"):
                excluded |= data > self.charge
        values = np.where(excluded, np.nan, data)
        axis = 1 if self.axis == "row" else 0
        used = (~excluded).sum(axis=axis)
        with _quiet(), np.errstate(all="ignore"):
            profile = np.asarray(reduction(self.function)(values, axis=axis), dtype=np.float64)
        profile = np.where(used > 0, profile, np.nan)
        keep = (~amplifier.geometry.mask(self.region) & ~self.window_mask(image, amplifier)).any(axis=axis)
        position = np.flatnonzero(keep)
        return position, profile[keep], used[keep]

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        position, profile, used = self.profile(image, amplifier)
        geometry = amplifier.geometry
        file_position = geometry.to_file_rows(position) if self.axis == "row" else geometry.to_file_columns(position)
        unit = "e-" if self.image.endswith("_e") else "ADU"
        with _quiet():
            mean, spread = float(np.nanmean(profile)), float(np.nanstd(profile))
        results = {
            "axis": self.axis,
            "function": self.function,
            "unit": unit,
            "position": position,
            "file_position": np.asarray(file_position),
            "profile": profile,
            "n_pixels": used,
            "profile_mean": mean,
            "profile_std": spread,
        }
        amplifier.record(self.name, **results)
        if wants_plots(self, context):
            label = "row" if self.axis == "row" else "column (readout order)"
            with figure(context, image, self.name, f"{self.function}_per_{self.axis}", amplifier) as (_, ax):
                ax.plot(position, profile, ".", ms=3, color="k")
                ax.set_xlabel(label)
                ax.set_ylabel(f"{self.function} of the pixel charge ({unit})")
