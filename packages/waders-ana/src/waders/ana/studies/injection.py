"""Injection into images (for simulated images and tests): GaussianNoiseProcess and AddBKGComponent.

**GaussianNoiseProcess** adds Gaussian noise N(0, ``sigma``) (image units) to every finite
pixel of ``image`` and stores the result as ``<image>_wgnoise``.  The random stream is
``context.rng(name, image number, amplifier)``: the same seed gives the same noise,
whatever the order of the amplifiers or images.  Records ``sigma``, ``n_pixels`` and
``added_std`` (the standard deviation of the noise actually drawn).

**AddBKGComponent** adds a background to ``image`` in place, after keeping the input as
``<image>_woExtraDC``:

* ``function = "uniform"``: ``value`` (image units) added to every pixel of the active
  region inside the id_row/id_col window;
* ``function = "linear"``: ``Ncls`` single-pixel "clusters" with charges drawn uniformly in
  [``Emin``, ``Emax``) (image units) at random pixels of the active region (window
  applied): the active row ``r`` (0 = first active row) is drawn with probability
  proportional to ``density_intercept + density_slope * (r + 1/2)`` (the integral of the
  linear density over the row), the column uniformly; clusters landing on the same
  pixel add up.

Records ``function``, ``n_pixels_changed``, ``injected_total`` and, for ``uniform``,
``value``; for ``linear`` the ``cluster_rows``, ``cluster_cols`` (readout order),
``cluster_file_cols`` and ``cluster_charges`` of every injected cluster.

Deliberate differences from pysimdamicm:

* ``uniform`` adds to the active region (pysimdamicm added to the pixels *outside* it:
  the region mask was used with the wrong polarity);
* ``linear`` works (pysimdamicm referenced attributes that do not exist) and draws rows
  from the exact per-row probabilities instead of accept-reject;
* ``dc`` is rejected with an error (pysimdamicm's version needed three parameters it never
  received and discarded its result);
* GaussianNoiseProcess runs per amplifier with a reproducible, per-amplifier random stream
  (pysimdamicm used the unseeded global generator) and keeps NaN pixels NaN.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier
from waders.core.kinds import Choice, Float, Int

from ..base import AnalysisProcess

__all__ = ["AddBKGComponent", "GaussianNoiseProcess"]

log = logging.getLogger(__name__)


def _stream(process: str, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> np.random.Generator:
    number = image.meta.get("image", 0)
    return context.rng(process, 0 if number is None else number, amplifier.name)


class GaussianNoiseProcess(AnalysisProcess):
    """Add Gaussian noise N(0, sigma) to an image; output ``<image>_wgnoise`` (seeded per image and amplifier)."""

    products = (
        Product(
            "mean_compressed_pedestal_subtracted_e_wgnoise",
            "image",
            doc="<image>_wgnoise: the input plus Gaussian noise",
        ),
        Product("added_std", "result", doc="standard deviation of the added noise (image unit)"),
    )

    order: ClassVar[int] = 90
    per_amplifier: ClassVar[bool] = True

    image = Param("mean_compressed_pedestal_subtracted_e", doc="input image product")
    sigma = Param(0.2758, Float(min=0), per_amplifier=True, doc="standard deviation of the added noise (image units)")

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        data = self.input_image(amplifier)
        sigma = float(self.value_for("sigma", amplifier.names))
        noise = _stream(self.name, image, amplifier, context).normal(0.0, sigma, data.shape)
        finite = np.isfinite(data)
        amplifier.set(f"{self.image}_wgnoise", data + noise)
        amplifier.record(
            self.name,
            sigma=sigma,
            n_pixels=int(finite.sum()),
            added_std=float(noise[finite].std()) if finite.any() else float("nan"),
        )


class AddBKGComponent(AnalysisProcess):
    """Add a uniform value or single-pixel clusters to the active region (input kept as ``<image>_woExtraDC``)."""

    products = (
        Product(
            "mean_compressed_pedestal_subtracted_e_woExtraDC",
            "image",
            doc="<image>_woExtraDC: the input before the change (the input is modified in place)",
        ),
    )

    order: ClassVar[int] = 91
    per_amplifier: ClassVar[bool] = True

    image = Param("mean_compressed_pedestal_subtracted_e", doc="image product modified in place")
    function = Param("uniform", Choice(["uniform", "linear", "dc"]), doc="uniform value, or linear row density")
    value = Param(0.0, Float(), per_amplifier=True, doc="uniform: value added to every active pixel (image units)")
    Ncls = Param(100, Int(min=0), aliases=("n_clusters",), doc="linear: number of single-pixel clusters")
    Emin = Param(0.04, Float(), doc="linear: lowest cluster charge (image units)")
    Emax = Param(0.15, Float(), doc="linear: highest cluster charge (image units, exclusive)")
    density_intercept = Param(0.005, Float(), doc="linear: row density a in a + b * row (any scale)")
    density_slope = Param(0.004, Float(), doc="linear: row density slope b in a + b * row (per active row)")

    def _check(self, n_rows: int) -> None:
        if self.function == "dc":
            raise ConfigError(
                f"{self.name}: function 'dc' is not provided (it never worked in pysimdamicm)",
                hint="use 'uniform' with the mean dark-current charge as value, or 'linear'",
            )
        if self.function == "linear":
            if not self.Emax >= self.Emin:
                raise ConfigError(f"{self.name}: Emax ({self.Emax}) is below Emin ({self.Emin})")
            a, b = self.density_intercept, self.density_slope
            ends = (a + 0.5 * b, a + b * (n_rows - 0.5))
            if min(ends) < 0 or max(ends) <= 0:
                raise ConfigError(
                    f"{self.name}: the row density {a} + {b} * row is negative or zero over the {n_rows} active rows",
                    hint="choose density_intercept and density_slope so that it is positive",
                )

    def region(self, image: SkipperImage, amplifier: Amplifier) -> tuple[slice, slice]:
        """Active rows and columns inside the id_row/id_col window."""
        act_rows, act_cols = amplifier.geometry.region("active")
        win_rows, win_cols = self.window(image, amplifier)
        rows = slice(max(act_rows.start, win_rows.start), min(act_rows.stop, win_rows.stop))
        cols = slice(max(act_cols.start, win_cols.start), min(act_cols.stop, win_cols.stop))
        if rows.stop <= rows.start or cols.stop <= cols.start:
            raise DataError(f"{self.name}: the active region of amplifier {amplifier.name} is outside the window")
        return rows, cols

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        rows, cols = self.region(image, amplifier)
        self._check(rows.stop - rows.start)
        original = self.input_image(amplifier)
        modified = original.copy()
        results: dict[str, Any] = {"function": self.function}
        if self.function == "uniform":
            value = float(self.value_for("value", amplifier.names))
            modified[rows, cols] += value
            n_changed = (rows.stop - rows.start) * (cols.stop - cols.start)
            results.update(value=value, n_pixels_changed=n_changed, injected_total=value * n_changed)
        else:
            rng = _stream(self.name, image, amplifier, context)
            row, col, charge = self._draw_clusters(rng, rows, cols)
            np.add.at(modified, (row, col), charge)
            results.update(
                n_clusters=int(row.size),
                cluster_rows=row,
                cluster_cols=col,
                cluster_file_cols=amplifier.geometry.to_file_columns(col),
                cluster_charges=charge,
                n_pixels_changed=int(np.unique(row * amplifier.geometry.ncols + col).size),
                injected_total=float(charge.sum()),
            )
        amplifier.set(f"{self.image}_woExtraDC", original)
        amplifier.set(self.image, modified)
        amplifier.record(self.name, **results)

    def _draw_clusters(
        self, rng: np.random.Generator, rows: slice, cols: slice
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows (linear density), columns (uniform) and charges (uniform) of Ncls single-pixel clusters."""
        n = self.Ncls
        n_rows = rows.stop - rows.start
        a, b = self.density_intercept, self.density_slope
        weight = a + b * (np.arange(n_rows) + 0.5)  # integral of a + b t over each row
        row = rows.start + rng.choice(n_rows, size=n, p=weight / weight.sum())
        col = rng.integers(cols.start, cols.stop, n)
        charge = rng.uniform(self.Emin, self.Emax, n)
        return row, col, charge
