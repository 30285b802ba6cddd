"""Dark-current fits: FitDarkCurrentProcess, FitDarkCurrentPerRow and FitDarkCurrentPerCol.

The pixel-charge distribution (PCD) of an amplifier -- its active region (or overscan
with ``in_overscan``) minus ``rows_to_mask``/``cols_to_mask``, the cluster mask and the
id_row/id_col window -- is fitted with noise peaks weighted by Poisson probabilities
(:mod:`waders.ana.fitting.pcd`), giving the zero-electron peak ``mu0`` and noise
``sigma`` (ADU), the dark current ``lambda`` (e-/pixel) and the gain (ADU/e-).
FitDarkCurrentPerRow and FitDarkCurrentPerCol fit every slice of ``row_step`` rows
(``col_step`` columns) at once with the batched fitter and fit a straight line to the
results versus position.

Parameter names and meanings are pysimdamicm's (reference B.4), so its configurations
load unchanged.  ``calibration: "auto"`` (the default chain of ``waders ana``) assumes no
gain: starting values, fit range, binning and limits come from the 0 e- and 1 e- peaks of
the data (:mod:`waders.ana.fitting.seeds`), and ``x_min``/``x_max``, ``binning_size`` and the
``*_min``/``*_max`` limits are not used; without single-electron resolution no fit is
attempted (``valid`` False, the reason in ``status``).  Every fit is judged by
:mod:`waders.ana.fitting.quality`.  ``rows_to_mask``/``cols_to_mask`` hold indices and two-element ranges
``[a, b]`` meaning a..b-1 (half-open, Appendix 2), in the amplifier's own rows and
readout-order columns.  ``x_min``/``x_max`` null or NaN mean ``-calibration`` and
``n_peaks * calibration``.

Deliberate differences from pysimdamicm (besides those of the fit, listed in
:mod:`waders.ana.fitting.pcd`):

* ``lambda`` is fitted in e-/pixel; ``dc_min``/``dc_max`` keep pysimdamicm's unit (the
  product lambda * gain, ADU) and bound lambda at ``dc_min / calibration`` ..
  ``dc_max / calibration``; the default ``dc_min`` is 0 (pysimdamicm: 0.001 ADU, which
  biases very low dark currents);
* the ``MEDC<A>`` header card holds lambda in e-/pixel/image (per unbinned pixel), not
  lambda * gain in ADU; ``MECHI2<A>`` (chi2/ndf) is added;
* ``e-`` values (``sigma_e``, ``mu0_e``) carry errors propagated with the fitted
  covariance of the parameter and the gain;
* with the default NaN ``x_min``/``x_max`` the slice fits use ``(-calibration,
  n_peaks * calibration)`` instead of skipping every slice, never wait for keyboard
  input, and never overwrite the amplifier's header cards;
* slices are ``[k, k + step)`` for ``k = start, start + step, ... < end`` and never extend
  beyond ``end``; an ``end`` <= 0 (or null) means up to the last row/column;
* FitDarkCurrentPerCol runs for every amplifier (pysimdamicm: only the first), uses the
  same region and masks as the other fits (not the whole image), and the same
  likelihood fit as FitDarkCurrentPerRow (pysimdamicm: a chi-square fit);
* ``mask_clusters`` without a cluster mask is an error (pysimdamicm failed deep inside);
* parameters are never written back into the process (no sticky values between images).

pysimdamicm's ``apply_mask_from_fits``, ``data_as_csv``, ``add_mask`` and
``add_linear_DQ``/``CRx``/``CR0`` options are not provided.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core import units as u
from waders.core.errors import ConfigError, DataError
from waders.core.image import Amplifier
from waders.core.kinds import Choice, Float, Int, Optional, Union

from .base import INDEX_RANGES, AnalysisProcess, parse_index_ranges
from .fitting.pcd import (
    PCDBatchFits,
    PCDFit,
    PCDSettings,
    fit_pcd,
    fit_pcd_batch,
    pcd_edges,
    pcd_histogram,
    slice_histograms,
    unfitted,
)
from .fitting.seeds import PCDSeeds, seed_pcd, settings_from_seeds, with_gain_guess
from .plotting import keep_figure, wants_plots
from .summary import Fallback, SummaryPart, finite_or_zero

__all__ = ["CLUSTER_MASK", "FitDarkCurrentPerCol", "FitDarkCurrentPerRow", "FitDarkCurrentProcess"]

log = logging.getLogger(__name__)

#: Name of the cluster-mask product (BuildClusterMask; True = do not use).
CLUSTER_MASK = "mask_clusters"

_OPTIONAL_FLOAT = Optional(Float())
_CALIBRATION = Union(Choice(["auto"]), Float(positive=True))


class _DarkCurrentFit(AnalysisProcess):
    """Parameters and pixel selection shared by the dark-current fits."""

    per_amplifier: ClassVar[bool] = True
    imports: ClassVar[tuple[str, ...]] = ("scipy.special", "iminuit")

    image = Param("mean_compressed_pedestal_subtracted", doc="input image product (ADU)")
    in_overscan = Param(False, doc="fit the overscan instead of the active region")
    mask_clusters = Param(False, doc="exclude the cluster mask of BuildClusterMask (must run earlier)")
    rows_to_mask = Param([], INDEX_RANGES, per_amplifier=True, doc="rows excluded; [a, b] = rows a..b-1")
    cols_to_mask = Param([], INDEX_RANGES, per_amplifier=True, doc="columns excluded (readout order); [a, b] = a..b-1")
    do_calibration = Param(True, doc="fit the gain (else it is fixed to 'calibration')")
    gain_guess = Param(
        None,
        Optional(Float(positive=True)),
        per_amplifier=True,
        doc="with calibration 'auto': gain (ADU/e-) seeding the fit when no 1 e- peak stands out of the data",
    )
    calibration = Param(
        10.0,
        _CALIBRATION,
        per_amplifier=True,
        doc="gain guess, or the fixed gain (ADU/e-); 'auto': seeds, range, binning and limits from the data",
    )
    binning_size = Param(0.5, Float(), per_amplifier=True, doc="bin width (ADU); <= 0: 2 sqrt(N) bins")
    n_peaks = Param(5, Int(min=1), per_amplifier=True, doc="number of electron peaks of the model (0 .. n-1)")
    mu_min = Param(-1.0, per_amplifier=True, doc="lower bound of mu0, the zero-electron peak (ADU)")
    mu_max = Param(1.0, per_amplifier=True, doc="upper bound of mu0 (ADU)")
    sigma_min = Param(0.001, Float(min=0), per_amplifier=True, doc="lower bound of the noise sigma (ADU)")
    sigma_max = Param(100.0, Float(min=0), per_amplifier=True, doc="upper bound of the noise sigma (ADU)")
    dc_min = Param(0.0, Float(min=0), per_amplifier=True, doc="lower bound of lambda*gain (ADU, pysimdamicm unit)")
    dc_max = Param(10.0, Float(min=0), per_amplifier=True, doc="upper bound of lambda*gain (ADU, pysimdamicm unit)")
    gain_min = Param(1.0, Float(min=0), per_amplifier=True, doc="lower bound of the gain (ADU/e-)")
    gain_max = Param(100.0, Float(min=0), per_amplifier=True, doc="upper bound of the gain (ADU/e-)")
    x_min = Param(-10.0, _OPTIONAL_FLOAT, per_amplifier=True, doc="start of the fit range (ADU); null: -calibration")
    x_max = Param(
        50.0, _OPTIONAL_FLOAT, per_amplifier=True, doc="end of the fit range (ADU); null: n_peaks*calibration"
    )
    minos = Param(True, doc="MINOS errors (single fits)")

    ignored_keys: ClassVar[dict[str, str]] = {
        "fit_options": "ROOT fit options; waders always fits by binned Poisson likelihood with MINOS errors",
        "ratio_plot": "interactive display option of pysimdamicm",
    }

    # --- selection -------------------------------------------------------------------------------
    def selection(self, image: SkipperImage, amplifier: Amplifier) -> tuple[np.ndarray, np.ndarray]:
        """The input image and the pixels to use (True = used).

        Raises
        ------
        DataError
            If ``mask_clusters`` is set and the amplifier has no cluster mask.
        """
        data = self.input_image(amplifier)
        geometry = amplifier.geometry
        excluded = geometry.mask("overscan" if self.in_overscan else "active") | self.window_mask(image, amplifier)
        names = amplifier.names
        excluded[parse_index_ranges(self.value_for("rows_to_mask", names, []), geometry.nrows, closed=False), :] = True
        excluded[:, parse_index_ranges(self.value_for("cols_to_mask", names, []), geometry.ncols, closed=False)] = True
        if self.mask_clusters:
            if not amplifier.has(CLUSTER_MASK):
                raise DataError(
                    f"{self.name}: mask_clusters is set but amplifier {amplifier.name} has no cluster mask",
                    hint="run ClusterFinder and BuildClusterMask first, or set mask_clusters to false",
                )
            excluded |= np.asarray(amplifier.get(CLUSTER_MASK), dtype=bool)
        return data, ~excluded & np.isfinite(data)

    def is_auto(self, amplifier: Amplifier) -> bool:
        """Whether the fit of this amplifier is seeded from the data (``calibration: "auto"``)."""
        return self.value_for("calibration", amplifier.names, None) == "auto"

    def fit_settings(
        self, amplifier: Amplifier, values: np.ndarray, *, per_slice: bool = False
    ) -> tuple[PCDSettings | None, PCDSeeds | None]:
        """Settings of one amplifier's fit; with ``calibration: "auto"`` also the seeds from ``values``.

        Returns ``(None, seeds)`` when the data have no single-electron resolution (the
        reason is ``seeds.reason``).
        """
        if not self.is_auto(amplifier):
            return self.settings(amplifier), None
        seeds = with_gain_guess(seed_pcd(values), values, self.value_for("gain_guess", amplifier.names, None))
        if not seeds.resolved:
            return None, seeds
        n_peaks = int(self.value_for("n_peaks", amplifier.names))
        settings = settings_from_seeds(
            seeds,
            n_peaks=n_peaks,
            fit_gain=bool(self.do_calibration),
            minos=bool(self.minos),
            binned_per_slice=per_slice,
        )
        return settings, seeds

    def settings(self, amplifier: Amplifier) -> PCDSettings:
        """Fit settings of one amplifier from the configured values (per-amplifier values resolved).

        Raises
        ------
        ConfigError
            For inconsistent values, or ``calibration: "auto"`` (use :meth:`fit_settings`).
        """
        names = amplifier.names

        def value(name: str) -> Any:
            try:
                return self.value_for(name, names)
            except ConfigError as err:
                raise ConfigError(err.message, hint=err.hint) from None

        calibration = value("calibration")
        if calibration == "auto":
            raise ConfigError(f"{self.name}: calibration 'auto' needs the pixel values (fit_settings)")
        calibration = float(calibration)
        if calibration <= 0:
            raise ConfigError(f"{self.name}.calibration must be positive for amplifier {amplifier.name}")
        try:
            return PCDSettings(
                n_peaks=int(value("n_peaks")),
                calibration=calibration,
                fit_gain=bool(self.do_calibration),
                x_min=value("x_min"),
                x_max=value("x_max"),
                binning_size=float(value("binning_size")),
                mu_limits=(value("mu_min"), value("mu_max")),
                sigma_limits=(value("sigma_min"), value("sigma_max")),
                lambda_limits=(value("dc_min") / calibration, value("dc_max") / calibration),
                gain_limits=(value("gain_min"), value("gain_max")),
                minos=bool(self.minos),
            )
        except ConfigError as err:
            raise ConfigError(f"{self.name}, amplifier {amplifier.name}: {err.message}") from None

    # --- conversions -----------------------------------------------------------------------------
    @staticmethod
    def per_unbinned_pixel(amplifier: Amplifier) -> float:
        """Factor from e- per binned pixel to e- per unbinned pixel."""
        return 1.0 / (amplifier.geometry.row_binning * amplifier.geometry.col_binning)

    @staticmethod
    def image_days(image: SkipperImage) -> float:
        """Exposure plus half the readout time, in days (NaN when the exposure is unknown)."""
        exposure = image.geometry.exposure_time
        if not (exposure == exposure and exposure > 0):
            return float("nan")
        read = image.geometry.read_time
        read = read if read == read and read > 0 else 0.0
        return (exposure + 0.5 * read) / u.day

    @property
    def unit(self) -> str:
        """Unit of the input image values."""
        return "e-" if self.image.endswith("_e") else "ADU"


class FitDarkCurrentProcess(_DarkCurrentFit):
    """Fit the pixel-charge distribution: mu0, noise sigma, dark current lambda and gain per amplifier.

    Records ``mu0_adu``, ``sigma_adu``, ``gain_adu_per_e``, ``lambda_e_per_pixel`` (per
    unbinned pixel per image) and their errors, ``lambda_e_per_pixel_per_day``, ``sigma_e``,
    ``mu0_e``, ``chi2_ndf``, ``valid``, ``status``, ``n_pixels``, ``fraction_used`` and the
    histogram (``pcd_edges``, ``pcd_counts``); adds the MEGAIN/MEDC/MESIG/MEMU0 header cards.
    """

    order: ClassVar[int] = 40
    summary_order: ClassVar[int] = 30
    warning_order: ClassVar[int] = 5  # an invalid fit is the first thing to read about an amplifier
    products = (
        Product("gain_adu_per_e", "result", "ADU/e-", "fitted gain (gain_err its error)"),
        Product("lambda_e_per_pixel", "result", "e-/pixel", "dark current per unbinned pixel per image (lambda_err)"),
        Product("lambda_e_per_pixel_per_day", "result", "e-/pixel/day", "dark current per day of exposure and readout"),
        Product("sigma_adu", "result", "ADU", "noise sigma of the peaks (sigma_err; sigma_e in e-)"),
        Product("mu0_adu", "result", "ADU", "position of the 0 e- peak (mu0_err)"),
        Product("chi2_ndf", "result", doc="chi2 per degree of freedom of the fit"),
        Product("valid", "result", doc="verdict of waders.ana.fitting.quality (status: why not)"),
        Product("pcd_counts", "result", doc="histogram of the fitted pixels (pcd_edges in the image unit)"),
        Product("pcd", "figure", doc="the pixel-charge distribution and the fitted model"),
    )
    #: (summary key of the value, key of its error) per info-tree column.
    INFO_COLUMNS: ClassVar[dict[str, tuple[str, str]]] = {
        "gain": ("gain_adu_per_e", "gain_err"),
        "dc": ("lambda_e_per_pixel", "lambda_err"),
        "sig": ("sigma_adu", "sigma_err"),
        "mu0": ("mu0_adu", "mu0_err"),
    }

    def summary_part(self, image: SkipperImage) -> SummaryPart:
        """Gain, dark current, noise and fit verdict per amplifier; a warning for every invalid fit.

        The fitted gain is a :class:`~waders.ana.summary.Fallback`: a calibration gain wins.
        """
        part = SummaryPart()
        for name, amp in image.amplifiers.items():
            fit = amp.results.get(self.name)
            if not fit:
                continue
            part.amplifiers[name] = {
                "gain_adu_per_e": Fallback(fit.get("gain_adu_per_e")),
                "gain_err": fit.get("gain_err"),
                "sigma_e": fit.get("sigma_e"),
                "lambda_e_per_pixel": fit.get("lambda_e_per_pixel"),
                "lambda_err": fit.get("lambda_err"),
                "lambda_e_per_pixel_per_day": fit.get("lambda_e_per_pixel_per_day"),
                "mu0_adu": fit.get("mu0_adu"),
                "fit_chi2_ndf": fit.get("chi2_ndf"),
                "fit_valid": fit.get("valid"),
                "fit_status": fit.get("status"),
                "fit_reasons": [] if fit.get("valid") else str(fit.get("status", "unknown")).split("; "),
                "fit_seeded_from_data": fit.get("seeded_from_data"),
                "fit_seed_source": fit.get("seed_source"),
            }
            if not fit.get("valid", True):
                part.warnings[name] = [f"{name}: {self.name}: fit invalid ({fit.get('status', 'unknown status')})"]
        return part

    def info_part(self, image: SkipperImage) -> dict[str | None, dict[str, Any]]:
        """``<A>_gain``, ``<A>_dc``, ``<A>_sig``, ``<A>_mu0`` and their ``_err`` for the ROOT info tree."""
        parts: dict[str | None, dict[str, Any]] = {}
        for name, amp in image.amplifiers.items():
            fit = amp.results.get(self.name, {})
            columns = parts.setdefault(name, {})
            for short, (key, err_key) in self.INFO_COLUMNS.items():
                if key in fit:
                    columns[f"{name}_{short}"] = finite_or_zero(fit[key])
                columns[f"{name}_{short}_err"] = finite_or_zero(fit.get(err_key))
        return parts

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        data, used = self.selection(image, amplifier)
        values = data[used]
        settings, seeds = self.fit_settings(amplifier, values)
        if settings is None and seeds is not None:
            fit = unfitted(values, seeds.mu0, seeds.sigma, int(self.value_for("n_peaks", amplifier.names)),
                           f"no single-electron resolution: {seeds.reason}")  # fmt: skip
        else:
            fit = fit_pcd(values, settings)
        results = self.results(image, amplifier, fit, n_pixels=int(values.size))
        results["seeded_from_data"] = seeds is not None
        if seeds is not None:
            results["seeds"] = {"mu0": seeds.mu0, "sigma": seeds.sigma, "gain": seeds.gain, "lam": seeds.lam}
            results["seed_source"] = seeds.source
        if self.mask_clusters:
            unmasked = self.replace(mask_clusters=False).selection(image, amplifier)[1]
            results["pcd_counts_unmasked"] = pcd_histogram(data[unmasked], fit.hist_edges)
        amplifier.record(self.name, **results)
        self.header_cards(image, amplifier, results)
        if not fit.valid:
            log.warning("%s, amplifier %s: %s: fit invalid: %s", image.label, amplifier.name, self.name, fit.status)
        if wants_plots(self, context):
            _plot_pcd(self, image, amplifier, context, fit, results)

    def results(self, image: SkipperImage, amplifier: Amplifier, fit: PCDFit, *, n_pixels: int) -> dict[str, Any]:
        """Numbers recorded for one amplifier (see the class docstring)."""
        conversion = self.per_unbinned_pixel(amplifier)
        days = self.image_days(image)
        mu0_e, mu0_e_err = fit.in_electrons("mu0")
        sigma_e, sigma_e_err = fit.in_electrons("sigma")
        lam, lam_err = fit.lam * conversion, fit.lam_err * conversion
        x_min, x_max = fit.settings.fit_range()
        return {
            "mu0_adu": fit.mu0,
            "mu0_err": fit.mu0_err,
            "sigma_adu": fit.sigma,
            "sigma_err": fit.sigma_err,
            "gain_adu_per_e": fit.gain,
            "gain_err": fit.gain_err,
            "gain_fixed": not fit.settings.fit_gain,
            "lambda_e_per_pixel": lam,
            "lambda_err": lam_err,
            "lambda_e_per_binned_pixel": fit.lam,
            "lambda_e_per_pixel_per_day": lam / days,
            "lambda_e_per_pixel_per_day_err": lam_err / days,
            "sigma_e": sigma_e,
            "sigma_e_err": sigma_e_err,
            "mu0_e": mu0_e,
            "mu0_e_err": mu0_e_err,
            "norm": fit.norm,
            "minos": {k: list(v) for k, v in fit.minos.items()},
            "chi2": fit.chi2,
            "ndf": fit.ndf,
            "chi2_ndf": fit.chi2_ndf,
            "valid": bool(fit.valid),
            "status": fit.status,
            "edm": fit.edm,
            "nfcn": fit.nfcn,
            "n_peaks": fit.settings.n_peaks,
            "n_pixels": n_pixels,
            "n_pixels_in_range": int(fit.hist_counts.sum()),
            "fraction_used": float(fit.hist_counts.sum() / n_pixels) if n_pixels else float("nan"),
            "x_min": x_min,
            "x_max": x_max,
            "fit_x_max": float(fit.edges[-1]),
            "pcd_edges": fit.hist_edges,
            "pcd_counts": fit.hist_counts,
            "pcd_fit_edges": fit.edges,
            "pcd_expected": fit.expected() if np.all(np.isfinite(fit.params)) else np.full(len(fit.counts), np.nan),
            "start": dict(zip(("norm", "mu0", "sigma", "lam", "gain"), map(float, fit.start), strict=True)),
        }

    def header_cards(self, image: SkipperImage, amplifier: Amplifier, results: dict[str, Any]) -> None:
        """Add the MEGAIN/MEDC/MESIG/MEMU0 (and error, fraction, id) cards of one amplifier."""
        a, unit = amplifier.name, self.unit
        cards = [
            (f"MEGAIN{a}", results["gain_adu_per_e"], f"fitted gain ({unit}/e-)"),
            (f"MEDC{a}", results["lambda_e_per_pixel"], "fitted dark current (e-/pixel/image)"),
            (f"MESIG{a}", results["sigma_adu"], f"fitted noise sigma ({unit})"),
            (f"MEMU0{a}", results["mu0_adu"], f"fitted zero-electron peak ({unit})"),
            (f"EMEGAIN{a}", results["gain_err"], f"error of MEGAIN ({unit}/e-)"),
            (f"EMEDC{a}", results["lambda_err"], "error of MEDC (e-/pixel/image)"),
            (f"EMESIG{a}", results["sigma_err"], f"error of MESIG ({unit})"),
            (f"EMEMU0{a}", results["mu0_err"], f"error of MEMU0 ({unit})"),
            (f"MECHI2{a}", results["chi2_ndf"], "dark-current fit chi2/ndf (Baker-Cousins)"),
            (f"MEFRAC{a}", results["fraction_used"], "fraction of the pixels in the fit range"),
        ]
        for key, meta in (("MEIMGID", "image"), ("MERUNID", "run")):
            if image.meta.get(meta) is not None:
                cards.append((f"{key}{a}", image.meta[meta], f"{meta} id"))
        for key, value, comment in cards:
            image.add_header_card(key, value, comment)


class _SliceFits(_DarkCurrentFit):
    """Batched dark-current fits of row or column slices (see FitDarkCurrentPerRow)."""

    axis: ClassVar[str] = "row"

    n_peaks = Param(2, Int(min=1), per_amplifier=True, doc="number of electron peaks of the model (0 .. n-1)")
    binning_size = Param(-1.0, Float(), per_amplifier=True, doc="bin width (ADU); <= 0: 2 sqrt(N) bins per slice")
    x_min = Param(None, _OPTIONAL_FLOAT, per_amplifier=True, doc="start of the fit range (ADU); null: -calibration")
    x_max = Param(
        None, _OPTIONAL_FLOAT, per_amplifier=True, doc="end of the fit range (ADU); null: n_peaks*calibration"
    )
    sigma_min = Param(0.0, Float(min=0), per_amplifier=True, doc="lower bound of the noise sigma (ADU)")
    dc_min = Param(1e-6, Float(min=0), per_amplifier=True, doc="lower bound of lambda*gain (ADU, pysimdamicm unit)")
    dc_max = Param(500.0, Float(min=0), per_amplifier=True, doc="upper bound of lambda*gain (ADU, pysimdamicm unit)")
    gain_max = Param(500.0, Float(min=0), per_amplifier=True, doc="upper bound of the gain (ADU/e-)")
    q_threshold = Param(None, _OPTIONAL_FLOAT, per_amplifier=True, doc="count pixels above this charge per slice")
    degree_pol = Param(1, Int(min=0), doc="degree of an extra polynomial fitted to the quantities vs position")
    save_results = Param(False, doc="write the per-slice results as CSV into the output directory")
    products = (
        Product(
            "slices",
            "table",
            per_amplifier=True,
            doc="per-slice fit results (<stem>_<process>_<A>.csv)",
            columns=(
                "slice_start",
                "slice_stop",
                "mu0_adu",
                "mu0_err",
                "sigma_adu",
                "sigma_err",
                "lambda_e_per_pixel",
                "lambda_err",
                "gain_adu_per_e",
                "gain_err",
                "chi2_ndf",
                "valid",
                "n_pixels",
            ),
            switch="save_results",
        ),
        Product("lambda_slope", "result", "e-/pixel per slice", "slope of the dark current versus position"),
        Product("sigma_slope", "result", "ADU per slice", "slope of the noise versus position"),
        Product("trends", "figure", doc="fitted quantities per slice with the straight-line fits"),
    )

    def slices(self, image: SkipperImage, amplifier: Amplifier) -> tuple[np.ndarray, np.ndarray]:
        """Start and stop (exclusive) of every slice along the process's axis."""
        length = amplifier.geometry.nrows if self.axis == "row" else amplifier.geometry.ncols
        start = getattr(self, f"{self.axis}_start")
        end = getattr(self, f"{self.axis}_end")
        step = getattr(self, f"{self.axis}_step")
        start = 0 if start is None else int(start)
        end = length if end is None or end <= 0 else min(int(end), length)
        if not 0 <= start < end:
            raise ConfigError(
                f"{self.name}: {self.axis} slices [{start}, {end}) are empty for {length} {self.axis}s",
                hint=f"set {self.axis}_start below {self.axis}_end (<= {length})",
            )
        starts = np.arange(start, end, step)
        return starts, np.minimum(starts + step, end)

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        data, used = self.selection(image, amplifier)
        starts, stops = self.slices(image, amplifier)
        step = getattr(self, f"{self.axis}_step")
        axis = 0 if self.axis == "row" else 1
        position = np.arange(data.shape[axis])
        slice_of = np.where((position >= starts[0]) & (position < stops[-1]), (position - starts[0]) // step, -1)
        slice_map = slice_of[:, None] if axis == 0 else slice_of[None, :]
        slice_map = np.broadcast_to(slice_map, data.shape)
        take = used & (slice_map >= 0)
        values, ids = data[take], slice_map[take]
        n_slices = len(starts)
        n_pixels = np.bincount(ids, minlength=n_slices)
        settings, seeds = self.fit_settings(amplifier, values, per_slice=True)
        if settings is None and seeds is not None:
            reason = f"no single-electron resolution: {seeds.reason}"
            amplifier.record(
                self.name, axis=self.axis, slice_start=starts, slice_stop=stops, n_pixels=n_pixels,
                valid=np.zeros(n_slices, dtype=bool), status=[reason] * n_slices, n_valid=0, seeded_from_data=True,
            )  # fmt: skip
            log.warning("%s, amplifier %s: %s: no slice fitted: %s", image.label, amplifier.name, self.name, reason)
            return
        assert settings is not None
        x_min, x_max = settings.fit_range()
        in_range = (values > x_min) & (values < x_max)
        typical = float(np.median(np.bincount(ids[in_range], minlength=n_slices))) if n_slices else 0.0
        edges = pcd_edges(x_min, x_max, settings.binning_size, typical)
        fits = fit_pcd_batch(edges, slice_histograms(values, ids, n_slices, edges), settings)
        results = self.results(image, amplifier, fits, starts, stops, n_pixels)
        results["seeded_from_data"] = seeds is not None
        threshold = self.value_for("q_threshold", amplifier.names, None)
        if threshold is not None:
            results["q_threshold"] = float(threshold)
            results["n_above_threshold"] = np.bincount(ids[values > threshold], minlength=n_slices)
        amplifier.record(self.name, **results)
        n_bad = int((~fits.valid).sum())
        if n_bad:
            first = next(status for status, ok in zip(fits.status, fits.valid, strict=True) if not ok)
            log.warning(
                "%s, amplifier %s: %s: %d of %d slice fits invalid (e.g. %s); the trends use the valid ones",
                image.label, amplifier.name, self.name, n_bad, n_slices, first,
            )  # fmt: skip
        if wants_plots(self, context):
            _plot_slices(self, image, amplifier, context, results)

    def results(
        self,
        image: SkipperImage,
        amplifier: Amplifier,
        fits: PCDBatchFits,
        starts: np.ndarray,
        stops: np.ndarray,
        n_pixels: np.ndarray,
    ) -> dict[str, Any]:
        """Per-slice arrays and the trends of the fitted quantities versus position."""
        conversion = self.per_unbinned_pixel(amplifier)
        days = self.image_days(image)
        sigma_e, sigma_e_err = fits.in_electrons("sigma")
        mu0_e, mu0_e_err = fits.in_electrons("mu0")
        centre = 0.5 * (starts + stops)
        out: dict[str, Any] = {
            "axis": self.axis,
            "slice_start": starts,
            "slice_stop": stops,
            "slice_centre": centre,
            "mu0_adu": fits.mu0,
            "mu0_err": fits.mu0_err,
            "sigma_adu": fits.sigma,
            "sigma_err": fits.sigma_err,
            "lambda_e_per_pixel": fits.lam * conversion,
            "lambda_err": fits.lam_err * conversion,
            "lambda_e_per_pixel_per_day": fits.lam * conversion / days,
            "gain_adu_per_e": fits.gain,
            "gain_err": fits.gain_err,
            "gain_fixed": not fits.settings.fit_gain,
            "sigma_e": sigma_e,
            "sigma_e_err": sigma_e_err,
            "mu0_e": mu0_e,
            "mu0_e_err": mu0_e_err,
            "chi2_ndf": fits.chi2_ndf,
            "valid": fits.valid,
            "status": fits.status,
            "iterations": fits.iterations,
            "n_pixels": n_pixels,
            "n_pixels_in_range": fits.n_entries,
            "n_valid": int(fits.valid.sum()),
            "pcd_edges": fits.edges,
        }
        for label, key, error in (
            ("lambda", "lambda_e_per_pixel", "lambda_err"),
            ("sigma", "sigma_adu", "sigma_err"),
            ("mu0", "mu0_adu", "mu0_err"),
            ("gain", "gain_adu_per_e", "gain_err"),
        ):
            out.update(_trend(label, centre, out[key], out[error], fits.valid, self.degree_pol))
        return out


class FitDarkCurrentPerRow(_SliceFits):
    """Dark-current fits of slices of ``row_step`` rows, all at once; trends of lambda and sigma vs row.

    Records per slice ``slice_start``, ``mu0_adu``, ``sigma_adu``, ``lambda_e_per_pixel``,
    ``gain_adu_per_e`` (and errors), ``chi2_ndf``, ``valid``, ``status``, and the straight-line
    trends ``lambda_slope``/``sigma_slope`` (per row) with errors.  The gain is fixed to
    ``calibration`` by default (as in pysimdamicm).
    """

    order: ClassVar[int] = 41
    axis: ClassVar[str] = "row"

    row_start = Param(0, Int(min=0), doc="first row of the first slice")
    row_end = Param(-1, Int(), doc="end of the slices (exclusive); <= 0: up to the last row")
    row_step = Param(10, Int(min=1), doc="rows per slice")
    do_calibration = Param(False, doc="fit the gain of every slice (else fixed to 'calibration')")


class FitDarkCurrentPerCol(_SliceFits):
    """Dark-current fits of slices of ``col_step`` columns, all at once, for every amplifier.

    Same fit and results as FitDarkCurrentPerRow, along columns (readout order); the gain
    is fitted by default (as in pysimdamicm).
    """

    order: ClassVar[int] = 42
    axis: ClassVar[str] = "col"

    col_start = Param(0, Int(min=0), doc="first column of the first slice")
    col_end = Param(-1, Int(), doc="end of the slices (exclusive); <= 0: up to the last column")
    col_step = Param(10, Int(min=1), doc="columns per slice")
    do_calibration = Param(True, doc="fit the gain of every slice (else fixed to 'calibration')")


# --- trends -------------------------------------------------------------------------------------
def _polyfit(x: np.ndarray, y: np.ndarray, err: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted least-squares polynomial (coefficients from the constant up), errors and chi2/ndf."""
    design = np.vander(x, degree + 1, increasing=True)
    weights = 1.0 / err
    coeffs, *_ = np.linalg.lstsq(design * weights[:, None], y * weights, rcond=None)
    covariance = np.linalg.pinv((design * weights[:, None] ** 2).T @ design)
    ndf = len(x) - degree - 1
    chi2 = float((((y - design @ coeffs) * weights) ** 2).sum())
    return coeffs, np.sqrt(np.maximum(np.diag(covariance), 0.0)), chi2 / ndf if ndf > 0 else float("nan")


def _trend(label: str, x: np.ndarray, y: np.ndarray, err: np.ndarray, valid: np.ndarray, degree: int) -> dict[str, Any]:
    """Straight line (and the ``degree`` polynomial) of ``y`` versus ``x`` over the valid slices."""
    good = valid & np.isfinite(y) & np.isfinite(err) & (err > 0)
    nan = float("nan")
    out: dict[str, Any] = {
        f"{label}_slope": nan,
        f"{label}_slope_err": nan,
        f"{label}_intercept": nan,
        f"{label}_intercept_err": nan,
        f"{label}_trend_chi2_ndf": nan,
    }
    if good.sum() < 2:
        return out
    # centre x for a well-conditioned fit; report the intercept at x = 0
    centre = float(x[good].mean())
    coeffs, errors, chi2_ndf = _polyfit(x[good] - centre, y[good], err[good], 1)
    slope, intercept_c = coeffs[1], coeffs[0]
    cov_terms = _intercept_error(x[good] - centre, err[good], centre)
    out.update(
        {
            f"{label}_slope": float(slope),
            f"{label}_slope_err": float(errors[1]),
            f"{label}_intercept": float(intercept_c - slope * centre),
            f"{label}_intercept_err": cov_terms,
            f"{label}_trend_chi2_ndf": chi2_ndf,
        }
    )
    if degree != 1 and good.sum() > degree:
        poly, poly_err, poly_chi2 = _polyfit(x[good], y[good], err[good], degree)
        out[f"{label}_trend_coeffs"] = poly
        out[f"{label}_trend_coeffs_err"] = poly_err
        out[f"{label}_trend_poly_chi2_ndf"] = poly_chi2
    return out


def _intercept_error(x_centred: np.ndarray, err: np.ndarray, centre: float) -> float:
    """Error of the line's value at x = 0 when fitted in x - centre."""
    design = np.vander(x_centred, 2, increasing=True)
    covariance = np.linalg.pinv((design / err[:, None] ** 2).T @ design)
    gradient = np.array([1.0, -centre])
    return float(math.sqrt(max(gradient @ covariance @ gradient, 0.0)))


# --- plots ---------------------------------------------------------------------------------------
def _plot_pcd(
    process: FitDarkCurrentProcess,
    image: SkipperImage,
    amplifier: Amplifier,
    context: RunContext,
    fit: PCDFit,
    results: dict[str, Any],
) -> None:
    from matplotlib.figure import Figure

    unit = process.unit
    edges, counts = fit.hist_edges, fit.hist_counts
    width = float(edges[1] - edges[0])
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.subplots()
    if "pcd_counts_unmasked" in results:
        ax.stairs(results["pcd_counts_unmasked"], edges, color="0.6", label="before the cluster mask")
    ax.stairs(counts, edges, color="k", label=f"{process.image}")
    if np.all(np.isfinite(fit.params)):
        x = np.linspace(fit.edges[0], fit.edges[-1], 1000)
        ax.plot(x, fit.density(x) * width, color="tab:red", label="fit" if fit.valid else f"fit ({fit.status})")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5)
    ax.set_xlabel(f"pixel charge ({unit})")
    ax.set_ylabel(f"pixels / {width:.3g} {unit}")
    ax.set_title(f"{image.label}, amplifier {amplifier.name}: {process.name}", fontsize=10)
    text = (
        f"gain = {fit.gain:.4g} ± {fit.gain_err:.2g} {unit}/e-\n"
        f"$\\sigma$ = {fit.sigma:.4g} ± {fit.sigma_err:.2g} {unit} ({results['sigma_e']:.3g} e-)\n"
        f"$\\lambda$ = {results['lambda_e_per_pixel']:.4g} ± {results['lambda_err']:.2g} e-/pixel\n"
        f"$\\mu_0$ = {fit.mu0:.3g} ± {fit.mu0_err:.2g} {unit}\n"
        f"$\\chi^2$/ndf = {fit.chi2_ndf:.3g}, {results['n_pixels_in_range']} pixels"
    )
    ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.legend(loc="lower left", fontsize=8)
    keep_figure(context, process.name, "", amplifier, fig)


def _plot_slices(
    process: _SliceFits, image: SkipperImage, amplifier: Amplifier, context: RunContext, results: dict[str, Any]
) -> None:
    from matplotlib.figure import Figure

    unit = process.unit
    x, valid = results["slice_centre"], results["valid"]
    fig = Figure(figsize=(10.0, 7.0))
    axes = fig.subplots(2, 2, sharex=True).ravel()
    panels = (
        ("lambda", "lambda_e_per_pixel", "lambda_err", r"$\lambda$ (e-/pixel)"),
        ("sigma", "sigma_adu", "sigma_err", rf"$\sigma$ ({unit})"),
        ("mu0", "mu0_adu", "mu0_err", rf"$\mu_0$ ({unit})"),
        ("gain", "gain_adu_per_e", "gain_err", f"gain ({unit}/e-)"),
    )
    for ax, (label, key, error, ylabel) in zip(axes, panels, strict=True):
        y, err = results[key], results[error]
        ax.errorbar(x[valid], y[valid], err[valid], fmt=".", ms=3, color="k", lw=0.8)
        if (~valid).any():
            ax.plot(x[~valid], y[~valid], "x", color="tab:red", ms=4, label="invalid fit")
            ax.legend(fontsize=8)
        slope = results[f"{label}_slope"]
        if np.isfinite(slope):
            ax.plot(x, results[f"{label}_intercept"] + slope * x, color="tab:blue", lw=1)
            ax.set_title(f"slope {slope:.3g} ± {results[f'{label}_slope_err']:.2g} per {process.axis}", fontsize=9)
        ax.set_ylabel(ylabel)
    for ax in axes[2:]:
        ax.set_xlabel(f"{process.axis} (slice centre)")
    fig.suptitle(f"{image.label}, amplifier {amplifier.name}: {process.name}", fontsize=10)
    keep_figure(context, process.name, "", amplifier, fig)
