"""TwoDGaussProcess: joint fit of the two amplifiers of a two-amplifier readout (correlated noise and gains).

The ``L`` and ``U`` amplifiers of a two-amplifier readout are read at the same time, so
their noise is correlated.  Every active ``L`` pixel is paired with the ``U`` pixel read at
the same time, which in waders' readout-order storage is the pixel with the same
``(row, column)`` index in the two amplifiers' active regions (rows from ``row_start``,
columns from ``col_start``, both counted from the start of the active region).  Pairs
with a NaN, outside the id_row/id_col window of either amplifier, or in ``mask_clusters``
of either amplifier (when BuildClusterMask ran) are left out.

The pairs (``x`` = L charge, ``y`` = U charge, ADU) are histogrammed on
``[q_min_ADU, q_max_ADU]`` in both directions with bins of ``bin_size`` ADU and fitted by
binned Poisson maximum likelihood (iminuit, MIGRAD + HESSE) with::

    mu(x, y) = N * hx * hy * sum_{nx, ny = 0}^{n_max} P(nx; dc_L) P(ny; dc_U)
               * exp(-(a u^2 + 2 b u v + c v^2)) / (2 pi sigma_L sigma_U)
    u = x - offset_L - nx * gain_L,   v = y - offset_U - ny * gain_U
    a = cos^2(theta) / (2 sigma_L^2) + sin^2(theta) / (2 sigma_U^2)
    b = sin(2 theta) / (4 sigma_U^2) - sin(2 theta) / (4 sigma_L^2)
    c = sin^2(theta) / (2 sigma_L^2) + cos^2(theta) / (2 sigma_U^2)

i.e. Poisson dark current in each pixel (``dc`` in e-/pixel) times a 2-D Gaussian of the
noise rotated by ``theta`` with principal widths ``sigma_L``, ``sigma_U`` (ADU) around the
peak of ``(nx, ny)`` electrons; ``N`` is the number of pixel pairs described.  The
expected content of a bin is the Gaussian at the bin centre with the second-order
(Simpson) correction ``1 + hx^2/24 d2/dx2 + hy^2/24 d2/dy2``, so bins comparable to the
noise do not bias the widths.  The model is evaluated on the whole histogram grid with
numpy, each peak only where it adds more than 1e-9 pairs to a bin (every bin expects at
least 1e-6 pairs, which keeps the likelihood finite and continuous).

Results (``image.record``): ``theta_rad``, ``dc_L``, ``dc_U`` (e-/pixel), ``sigma_L``,
``sigma_U`` (ADU), ``gain_L``, ``gain_U`` (ADU/e-), ``offset_L``, ``offset_U`` (ADU), each
with ``_err``; ``norm``; the marginal noises ``noise_L_adu``, ``noise_U_adu`` and their
``correlation``; ``chi2`` (Baker-Cousins, over the bins expecting at least one pair), ``ndf``
(those bins minus the free parameters), ``chi2_ndf``, ``n_pixels`` (pairs used),
``n_pixels_in_range``, ``valid``, ``status``.  Per amplifier: ``gain_adu_per_e``,
``gain_err``, ``sigma_adu``, ``sigma_err``, ``lambda_e_per_pixel``, ``lambda_err``,
``offset_adu``.  Header cards ``TDGTHETA`` (rad), ``TDGDCL``, ``TDGDCU``, ``TDGSIGL``,
``TDGSIGU``, ``TDGCALL``, ``TDGCALU`` with errors (suffix ``E``), ``TDGNPIX`` and
``TDGCHI2``.  With ``do_calibration``: ``<image>_e2d`` = image / gain in every amplifier
(fitted gains, or ``cal_L``/``cal_U`` without ``do_fit``), same shape as the amplifier.

Deliberate differences from pysimdamicm:

* pairs use waders' readout-order storage (same active-region index) instead of
  re-mirroring the file image; ``col_start`` is never changed by the process (pysimdamicm
  added the prescan width to it at every image);
* the cluster mask is used when it exists and is optional (pysimdamicm crashed without it);
* ``<image>_e2d`` keeps the amplifier's shape and does not replace the ``_e`` image
  (pysimdamicm wrote a cropped image as ``mean_compressed_pedestal_subtracted_e``);
* the amplitude is the number of pairs ``N`` (pysimdamicm: the height of the maximum
  bin), the Gaussian is normalised and the bins are integrated to second order;
* lower bounds of widths and gains are kept positive (pysimdamicm's ``value - 3`` could be
  negative);
* the fit uses the whole histogram range (pysimdamicm: the ROOT "R" option on the same
  range) and reports the Baker-Cousins chi-square; ``fit_opt`` is ignored.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from waders.core import Param, Product, RunContext, SkipperImage
from waders.core.errors import ConfigError, DataError
from waders.core.kinds import Float, Int, ListOf, Optional

from .. import plotting
from ..base import AnalysisProcess
from ..fitting.deviance import deviance_terms
from ..fitting.quality import assess, chi2_acceptable

__all__ = ["PARAMETERS", "TwoDGaussFit", "TwoDGaussProcess", "expected_counts", "fit_two_amplifiers", "paired_pixels"]

log = logging.getLogger(__name__)

#: Fit parameters in order.
PARAMETERS = (
    "norm",
    "offset_L",
    "offset_U",
    "sigma_L",
    "sigma_U",
    "theta",
    "dc_L",
    "dc_U",
    "gain_L",
    "gain_U",
)
#: Expected pixels of every bin at least (keeps the likelihood finite and continuous).
FLOOR = 1e-6
#: Contributions of a peak below this (pairs per bin) are not evaluated (far below FLOOR).
NEGLIGIBLE = 1e-3 * FLOOR
#: Name of the cluster-mask product (BuildClusterMask; True = do not use).
CLUSTER_MASK = "mask_clusters"

_RANGE = Optional(ListOf(Float(), length=2))


# --- model -----------------------------------------------------------------------------------------
def _quadratic(sigma_l: float, sigma_u: float, theta: float) -> tuple[float, float, float]:
    cos2, sin2, sin2t = math.cos(theta) ** 2, math.sin(theta) ** 2, math.sin(2 * theta)
    a = cos2 / (2 * sigma_l**2) + sin2 / (2 * sigma_u**2)
    b = sin2t / (4 * sigma_u**2) - sin2t / (4 * sigma_l**2)
    c = sin2 / (2 * sigma_l**2) + cos2 / (2 * sigma_u**2)
    return a, b, c


def noise_covariance(sigma_l: float, sigma_u: float, theta: float) -> np.ndarray:
    """Covariance (ADU^2) of the (L, U) noise of the model: the inverse of ``2 [[a, b], [b, c]]``."""
    a, b, c = _quadratic(sigma_l, sigma_u, theta)
    return np.linalg.inv(2.0 * np.array([[a, b], [b, c]]))


def _poisson(n_max: int, lam: float) -> list[float]:
    lam = max(lam, 0.0)
    weights = [math.exp(-lam)]
    for n in range(1, n_max + 1):
        weights.append(weights[-1] * lam / n)
    return weights


class _Grid:
    """Bin centres of a histogram with equal-width bins, and the model evaluated on them."""

    def __init__(self, x_edges: np.ndarray, y_edges: np.ndarray, n_max: int) -> None:
        self.xc = 0.5 * (x_edges[1:] + x_edges[:-1])
        self.yc = 0.5 * (y_edges[1:] + y_edges[:-1])
        self.hx = float(x_edges[1] - x_edges[0])
        self.hy = float(y_edges[1] - y_edges[0])
        self.n_max = n_max

    @staticmethod
    def _block(centres: np.ndarray, step: float, low: float, high: float) -> tuple[int, int]:
        """Indices [i0, i1) of the centres within [low, high]."""
        first = float(centres[0])
        return max(0, math.ceil((low - first) / step)), min(centres.size, math.floor((high - first) / step) + 1)

    def expected(self, params: Any) -> np.ndarray:
        """Expected pairs per bin (see :func:`expected_counts`)."""
        norm, off_l, off_u, sig_l, sig_u, theta, dc_l, dc_u, gain_l, gain_u = (float(p) for p in params)
        hx, hy = self.hx, self.hy
        a, b, c = _quadratic(sig_l, sig_u, theta)
        det = a * c - b * b
        std_x, std_y = math.sqrt(c / (2 * det)), math.sqrt(a / (2 * det))  # marginal noise of L and U
        amplitude = norm * hx * hy / (2 * math.pi * sig_l * sig_u)
        weight_l, weight_u = _poisson(self.n_max, dc_l), _poisson(self.n_max, dc_u)
        # second-order bin integration: 1 + h^2/24 (g^2 - 2a) per axis, g = gradient of the exponent
        kx, ky = math.sqrt(hx * hx / 24.0), math.sqrt(hy * hy / 24.0)
        constant = 1.0 - hx * hx / 12.0 * a - hy * hy / 12.0 * c
        out = np.zeros((self.xc.size, self.yc.size))
        for nx in range(self.n_max + 1):  # (n_max + 1)^2 peaks, each evaluated on its block of the grid
            for ny in range(self.n_max + 1):
                weight = weight_l[nx] * weight_u[ny] * amplitude
                if weight <= NEGLIGIBLE:
                    continue
                reach = math.sqrt(2.0 * math.log(weight / NEGLIGIBLE))  # weight exp(-reach^2 / 2) = NEGLIGIBLE
                cx, cy = off_l + nx * gain_l, off_u + ny * gain_u
                i0, i1 = self._block(self.xc, hx, cx - reach * std_x, cx + reach * std_x)
                j0, j1 = self._block(self.yc, hy, cy - reach * std_y, cy + reach * std_y)
                if i0 >= i1 or j0 >= j1:
                    continue
                u, v = self.xc[i0:i1] - cx, self.yc[j0:j1] - cy
                term = np.multiply.outer(-2.0 * b * u, v)  # log of weight * exp(-(a u^2 + 2 b u v + c v^2))
                term += (math.log(weight) - a * u * u)[:, None]
                term += (-c * v * v)[None, :]
                np.exp(term, out=term)
                gx = np.add.outer(2.0 * kx * a * u, 2.0 * kx * b * v)
                np.square(gx, out=gx)
                gy = np.add.outer(2.0 * ky * b * u, 2.0 * ky * c * v)
                np.square(gy, out=gy)
                gx += gy
                gx += constant
                term *= gx
                out[i0:i1, j0:j1] += term
        return out


def expected_counts(params: np.ndarray, x_edges: np.ndarray, y_edges: np.ndarray, n_max: int) -> np.ndarray:
    """Expected pairs per bin of the model (see the module docstring), shape (len(x_edges)-1, len(y_edges)-1).

    Parameters
    ----------
    params : array of 10 floats
        :data:`PARAMETERS` (theta in rad).
    x_edges, y_edges : numpy.ndarray
        Equal-width bin edges (ADU) of L (first axis) and U (second axis).
    n_max : int
        Largest number of electrons of a pixel in the model.
    """
    return _Grid(np.asarray(x_edges, dtype=np.float64), np.asarray(y_edges, dtype=np.float64), n_max).expected(params)


# --- fit ---------------------------------------------------------------------------------------------
@dataclass
class TwoDGaussFit:
    """Result of :func:`fit_two_amplifiers` (parameters in :data:`PARAMETERS` order, theta in rad)."""

    params: np.ndarray
    errors: np.ndarray
    start: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray
    counts: np.ndarray
    n_max: int
    fitted: bool = False
    valid: bool = False
    status: str = "not fitted"
    chi2: float = math.nan
    ndf: int = 0
    covariance: np.ndarray = field(default_factory=lambda: np.full((10, 10), np.nan))

    @property
    def chi2_ndf(self) -> float:
        """Baker-Cousins chi-square per degree of freedom."""
        return self.chi2 / self.ndf if self.ndf > 0 else math.nan

    def value(self, name: str) -> float:
        """Fitted (or starting) value of a parameter."""
        return float(self.params[PARAMETERS.index(name)])

    def error(self, name: str) -> float:
        """Error of a parameter (NaN when not fitted)."""
        return float(self.errors[PARAMETERS.index(name)])

    def expected(self) -> np.ndarray:
        """Expected pairs per bin at the fitted (or starting) parameters."""
        return expected_counts(self.params, self.x_edges, self.y_edges, self.n_max)


def _minimise(nll: Any, start: np.ndarray, limits: list[tuple[float, float]], total: float) -> Any:
    """MIGRAD (repeated until valid, at most 5 times) then HESSE, iminuit warnings silenced."""
    from iminuit import Minuit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # iminuit warnings: reported through the status
        minuit = Minuit(nll, *start, name=PARAMETERS)
        minuit.errordef = Minuit.LIKELIHOOD
        minuit.limits = limits
        minuit.errors = [
            math.sqrt(total) + 1.0,
            0.1 * start[3],
            0.1 * start[4],
            0.05 * start[3],
            0.05 * start[4],
            0.05,
            0.1 * start[6],
            0.1 * start[7],
            0.01 * start[8],
            0.01 * start[9],
        ]
        minuit.migrad(iterate=5)
        if minuit.fmin.is_valid:
            minuit.hesse()
    return minuit


def fit_two_amplifiers(
    counts: np.ndarray,
    x_edges: np.ndarray,
    y_edges: np.ndarray,
    start: np.ndarray,
    limits: list[tuple[float, float]],
    *,
    n_max: int = 2,
    do_fit: bool = True,
) -> TwoDGaussFit:
    """Fit a 2-D histogram of (L, U) pairs by binned Poisson likelihood (never raises for a failed fit).

    Parameters
    ----------
    counts : numpy.ndarray, shape (nx, ny)
        Pairs per bin (L on the first axis).
    x_edges, y_edges : numpy.ndarray
        Bin edges (ADU).
    start : numpy.ndarray
        Starting values (:data:`PARAMETERS`), moved inside the limits if needed.
    limits : list of (low, high)
        Bounds of every parameter.
    n_max : int
        Largest number of electrons of a pixel in the model.
    do_fit : bool
        Fit (True) or only evaluate the model at the starting values.
    """
    counts = np.asarray(counts, dtype=np.float64)
    start = np.array(
        [min(max(s, lo + 1e-3 * (hi - lo)), hi - 1e-3 * (hi - lo)) for s, (lo, hi) in zip(start, limits, strict=True)]
    )
    result = TwoDGaussFit(
        params=start.copy(),
        errors=np.full(start.size, np.nan),
        start=start,
        x_edges=x_edges,
        y_edges=y_edges,
        counts=counts,
        n_max=n_max,
    )
    flat = counts.ravel()
    used = np.flatnonzero(flat > 0)
    n_used = flat[used]
    grid = _Grid(np.asarray(x_edges, dtype=np.float64), np.asarray(y_edges, dtype=np.float64), n_max)

    def nll(*params: float) -> float:
        mu = grid.expected(params).ravel()
        np.maximum(mu, FLOOR, out=mu)
        return float(mu.sum() - np.dot(n_used, np.log(mu[used])))

    total = float(counts.sum())
    minuit = None
    if do_fit:
        if total < 100:
            result.status = f"too few pairs in the histogram ({int(total)})"
        else:
            try:
                minuit = _minimise(nll, start, limits, total)
            except (RuntimeError, ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
                result.status = f"fit failed: {err}"
                minuit = None
        if minuit is not None:
            fmin = minuit.fmin
            result.fitted = True
            result.params = np.array(minuit.values, dtype=np.float64)
            result.errors = np.array(minuit.errors, dtype=np.float64)
            if minuit.covariance is not None:
                result.covariance = np.array(minuit.covariance, dtype=np.float64)
            posdef = bool(fmin.has_posdef_covar and not fmin.hesse_failed)
            at_limit = [
                name
                for name, value, (lo, hi) in zip(PARAMETERS, result.params, limits, strict=True)
                if name != "norm" and (value - lo < 1e-4 * (hi - lo) or hi - value < 1e-4 * (hi - lo))
            ]
            result.valid = fmin.is_valid and posdef and not at_limit
            result.status = (
                "; ".join(
                    (["minimisation did not converge"] if not fmin.is_valid else [])
                    + (["covariance not positive definite"] if fmin.is_valid and not posdef else [])
                    + (["at a limit: " + ", ".join(at_limit)] if at_limit else [])
                )
                or "ok"
            )
    expected = np.maximum(result.expected(), FLOOR)
    relevant = expected >= 1.0  # the Baker-Cousins chi-square is ~1 per bin only where a pair is expected
    result.chi2 = float(deviance_terms(counts, expected)[relevant].sum())
    result.ndf = int(relevant.sum()) - (len(PARAMETERS) if result.fitted else 0)
    if result.fitted and result.valid and not chi2_acceptable(result.chi2, result.ndf):
        quality = assess(chi2=result.chi2, ndf=result.ndf, n_entries=1, min_entries=0)
        result.valid, result.status = False, quality.status
    return result


# --- pairing -------------------------------------------------------------------------------------------
def paired_pixels(image: SkipperImage, process: TwoDGaussProcess) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Charges of the (L, U) pairs read at the same time, and bookkeeping.

    Returns
    -------
    x, y : numpy.ndarray
        L and U charges of the used pairs (image units).
    info : dict
        ``amplifier_L``, ``amplifier_U``, ``n_pairs`` (before exclusions),
        ``n_masked`` (excluded by the cluster mask), ``cluster_mask_used``.

    Raises
    ------
    DataError
        If the image does not have exactly two amplifiers, or ``row_start``/``col_start``
        leave no pixel.
    """
    amps = list(image.amplifiers.values())
    if len(amps) != 2:
        raise DataError(
            f"{process.name} needs a two-amplifier readout (L and U read at the same time); {image.label} has "
            f"{len(amps)} amplifier(s) ({image.geometry.layout})",
            hint=f"remove {process.name} from the sequence for these images",
        )
    regions = [a.geometry.region("active") for a in amps]
    n_rows = min(r.stop - r.start for r, _ in regions)
    n_cols = min(c.stop - c.start for _, c in regions)
    if process.row_start >= n_rows or process.col_start >= n_cols:
        raise DataError(
            f"{process.name}: row_start {process.row_start} / col_start {process.col_start} leave no pixel of the "
            f"{n_rows} x {n_cols} paired active regions",
            hint="lower row_start/col_start (counted from the start of the active region)",
        )
    used = np.ones((n_rows - process.row_start, n_cols - process.col_start), dtype=bool)
    charges, masked = [], np.zeros_like(used)
    mask_used = False
    for amp, (rows, cols) in zip(amps, regions, strict=True):
        block = (
            slice(rows.start + process.row_start, rows.start + n_rows),
            slice(cols.start + process.col_start, cols.start + n_cols),
        )
        data = process.input_image(amp)[block]
        used &= np.isfinite(data) & ~process.window_mask(image, amp)[block]
        if amp.has(CLUSTER_MASK):
            masked |= np.asarray(amp.get(CLUSTER_MASK), dtype=bool)[block]
            mask_used = True
        charges.append(data)
    n_pairs = int(used.sum())
    used &= ~masked
    info = {
        "amplifier_L": amps[0].name,
        "amplifier_U": amps[1].name,
        "n_pairs": n_pairs,
        "n_masked": n_pairs - int(used.sum()),
        "cluster_mask_used": mask_used,
    }
    return charges[0][used], charges[1][used], info


def histogram_2d(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Pairs per bin of the square grid ``edges`` x ``edges`` (one bincount; values outside are dropped)."""
    n = edges.size - 1
    width = (edges[-1] - edges[0]) / n
    ix = np.floor((x - edges[0]) / width).astype(np.int64)
    iy = np.floor((y - edges[0]) / width).astype(np.int64)
    inside = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
    return np.bincount(ix[inside] * n + iy[inside], minlength=n * n).reshape(n, n).astype(np.float64)


# --- the process -------------------------------------------------------------------------------------
class TwoDGaussProcess(AnalysisProcess):
    """Joint L-U fit of a two-amplifier readout: correlated noise (sigma_L, sigma_U, theta), gains and dark currents.

    Records (per image) ``theta_rad``, ``dc_L``, ``dc_U``, ``sigma_L``, ``sigma_U``, ``gain_L``,
    ``gain_U`` with errors, ``chi2_ndf``, ``n_pixels`` and more (see the module docstring);
    with ``do_calibration`` adds ``<image>_e2d`` to every amplifier.
    """

    products = (
        Product("theta_rad", "result", "rad", "correlation angle of the L-U noise", per_amplifier=False),
        Product("chi2_ndf", "result", doc="chi2 per degree of freedom (Baker-Cousins)", per_amplifier=False),
        Product("gain_adu_per_e", "result", "ADU/e-", "gain of the amplifier (gain_err)"),
        Product("lambda_e_per_pixel", "result", "e-/pixel", "dark current of the amplifier (lambda_err)"),
        Product("sigma_adu", "result", "ADU", "noise of the amplifier (sigma_err)"),
        Product(
            "mean_compressed_pedestal_subtracted_e2d",
            "image",
            "e-",
            "<image>_e2d: image / gain",
            switch="do_calibration",
        ),
        Product("fit", "figure", per_amplifier=False, doc="the 2D histogram and the fit"),
    )

    order: ClassVar[int] = 28

    image = Param("mean_compressed_pedestal_subtracted", doc="pedestal-subtracted image product (ADU)")
    row_start = Param(0, Int(min=0), doc="first row used, counted from the start of the active region")
    col_start = Param(0, Int(min=0), doc="first readout column used, counted from the start of the active region")
    q_min_ADU = Param(-20.0, unit="ADU", doc="lower edge of the histogram in both directions (ADU)")
    q_max_ADU = Param(100.0, unit="ADU", doc="upper edge of the histogram in both directions (ADU)")
    bin_size = Param(0.5, Float(min=0), unit="ADU", doc="bin width (ADU)")
    do_fit = Param(True, doc="fit the histogram (false: evaluate the model at the starting values)")
    do_calibration = Param(False, doc="produce <image>_e2d = image / gain in every amplifier")
    n_max = Param(2, Int(min=0, max=10), doc="largest number of electrons per pixel in the model (NpX = NpY)")
    theta = Param(45.0, Float(), unit="deg", doc="starting rotation of the noise ellipse (degrees)")
    theta_range = Param([-1.0, 1.0], ListOf(Float(), length=2), unit="rad", doc="bounds of theta (rad)")
    dc_L = Param(3e-3, Float(min=0), unit="e/pixel", doc="starting dark current of L (e-/pixel)")
    dc_L_range = Param(None, _RANGE, unit="e/pixel", doc="bounds of dc_L; null: [dc_L / 10, 10 dc_L]")
    dc_U = Param(3e-3, Float(min=0), unit="e/pixel", doc="starting dark current of U (e-/pixel)")
    dc_U_range = Param(None, _RANGE, unit="e/pixel", doc="bounds of dc_U; null: [dc_U / 10, 10 dc_U]")
    sig_L = Param(2.0, Float(min=0), unit="ADU", doc="starting noise width sigma_L (ADU)")
    sig_L_range = Param(None, _RANGE, unit="ADU", doc="bounds of sigma_L; null: sig_L -/+ 3 (at least sig_L / 20)")
    sig_U = Param(2.0, Float(min=0), unit="ADU", doc="starting noise width sigma_U (ADU)")
    sig_U_range = Param(None, _RANGE, unit="ADU", doc="bounds of sigma_U; null: sig_U -/+ 3 (at least sig_U / 20)")
    cal_L = Param(7.0, Float(positive=True), unit="ADU/e", doc="starting gain of L (ADU/e-)")
    cal_L_range = Param(None, _RANGE, unit="ADU/e", doc="bounds of the L gain; null: cal_L -/+ 3 (at least cal_L / 2)")
    cal_U = Param(7.0, Float(positive=True), unit="ADU/e", doc="starting gain of U (ADU/e-)")
    cal_U_range = Param(None, _RANGE, unit="ADU/e", doc="bounds of the U gain; null: cal_U -/+ 3 (at least cal_U / 2)")
    offset_range = Param([-1.0, 1.0], ListOf(Float(), length=2), unit="ADU", doc="bounds of both offsets (ADU)")

    ignored_keys: ClassVar[dict[str, str]] = {
        "fit_opt": "ROOT fit options; waders fits by binned Poisson likelihood with iminuit",
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.validate()

    @classmethod
    def from_mapping(cls, mapping: Any, **kwargs: Any) -> TwoDGaussProcess:
        instance = super().from_mapping(mapping, **kwargs)
        instance.validate()  # after all keys: the ranges depend on several of them
        return instance

    def validate(self) -> None:
        """Check the histogram and the parameter bounds.

        Raises
        ------
        ConfigError
            If the histogram is empty or a range is not ``[low, high]`` with low < high.
        """
        self.edges()
        self.limits()

    # --- configuration ---------------------------------------------------------------------------
    def edges(self) -> np.ndarray:
        """Bin edges (ADU) of both axes."""
        if not self.q_max_ADU > self.q_min_ADU or not self.bin_size > 0:
            raise ConfigError(
                f"{self.name}: the histogram [q_min_ADU, q_max_ADU] = [{self.q_min_ADU:g}, {self.q_max_ADU:g}] with "
                f"bin_size {self.bin_size:g} is empty",
                hint="set q_min_ADU < q_max_ADU and bin_size > 0",
            )
        n = max(1, round((self.q_max_ADU - self.q_min_ADU) / self.bin_size))
        if n > 4000:
            raise ConfigError(f"{self.name}: {n} x {n} bins are too many", hint="increase bin_size")
        return self.q_min_ADU + self.bin_size * np.arange(n + 1)

    def start(self) -> np.ndarray:
        """Starting values (:data:`PARAMETERS`; the norm is set from the histogram)."""
        return np.array(
            [1.0, 0.0, 0.0, self.sig_L, self.sig_U, self.theta, self.dc_L, self.dc_U, self.cal_L, self.cal_U]
        )

    def limits(self, norm: float = 1.0) -> list[tuple[float, float]]:
        """Bounds of every parameter (:data:`PARAMETERS`)."""

        def bounds(name: str, given: Any, default: tuple[float, float], positive: bool) -> tuple[float, float]:
            lo, hi = (float(v) for v in given) if given is not None else default
            if not lo < hi or (positive and hi <= 0):
                raise ConfigError(f"{self.name}.{name} = [{lo:g}, {hi:g}]: expected [low, high] with low < high")
            return (max(lo, 1e-12), hi) if positive else (lo, hi)

        def width(value: float) -> tuple[float, float]:
            return max(value - 3.0, value / 20.0), value + 3.0

        def gain(value: float) -> tuple[float, float]:
            return max(value - 3.0, value / 2.0), value + 3.0

        def dark(value: float) -> tuple[float, float]:
            return (value / 10.0, value * 10.0) if value > 0 else (0.0, 1e-3)

        return [
            (0.0, max(10.0 * norm, 10.0)),
            bounds("offset_range", self.offset_range, (-1.0, 1.0), False),
            bounds("offset_range", self.offset_range, (-1.0, 1.0), False),
            bounds("sig_L_range", self.sig_L_range, width(self.sig_L), True),
            bounds("sig_U_range", self.sig_U_range, width(self.sig_U), True),
            bounds("theta_range", self.theta_range, (-1.0, 1.0), False),
            bounds("dc_L_range", self.dc_L_range, dark(self.dc_L), True),
            bounds("dc_U_range", self.dc_U_range, dark(self.dc_U), True),
            bounds("cal_L_range", self.cal_L_range, gain(self.cal_L), True),
            bounds("cal_U_range", self.cal_U_range, gain(self.cal_U), True),
        ]

    # --- run ----------------------------------------------------------------------------------------
    def run(self, data: SkipperImage, context: RunContext) -> None:
        edges = self.edges()
        x, y, info = paired_pixels(data, self)
        counts = histogram_2d(x, y, edges)
        total = float(counts.sum())
        start = self.start()
        start[0] = max(total, 1.0)
        limits = self.limits(norm=max(total, 1.0))
        fit = fit_two_amplifiers(counts, edges, edges, start, limits, n_max=self.n_max, do_fit=self.do_fit)
        if fit.fitted and not fit.valid:
            log.warning("%s: %s fit: %s", data.label, self.name, fit.status)
        results = self.results(fit, info, n_pixels=int(x.size))
        data.record(self.name, **results)
        amps = list(data.amplifiers.values())
        for amp, side in zip(amps, ("L", "U"), strict=True):
            amp.record(
                self.name,
                gain_adu_per_e=results[f"gain_{side}"],
                gain_err=results[f"gain_{side}_err"],
                sigma_adu=results[f"sigma_{side}"],
                sigma_err=results[f"sigma_{side}_err"],
                lambda_e_per_pixel=results[f"dc_{side}"],
                lambda_err=results[f"dc_{side}_err"],
                offset_adu=results[f"offset_{side}"],
            )
        self.header_cards(data, results)
        if self.do_calibration:
            for amp, side in zip(amps, ("L", "U"), strict=True):
                amp.set(f"{self.image}_e2d", self.input_image(amp) / results[f"gain_{side}"])
        if plotting.wants_plots(self, context):
            _plot(self, data, context, fit, results)

    def results(self, fit: TwoDGaussFit, info: dict[str, Any], *, n_pixels: int) -> dict[str, Any]:
        """Numbers recorded for the image (see the module docstring)."""
        out: dict[str, Any] = {}
        names = {"theta": "theta_rad"}
        for name in PARAMETERS:
            key = names.get(name, name)
            out[key] = fit.value(name)
            out[f"{key}_err"] = fit.error(name)
        covariance = noise_covariance(out["sigma_L"], out["sigma_U"], out["theta_rad"])
        out.update(
            noise_L_adu=float(math.sqrt(covariance[0, 0])),
            noise_U_adu=float(math.sqrt(covariance[1, 1])),
            correlation=float(covariance[0, 1] / math.sqrt(covariance[0, 0] * covariance[1, 1])),
            chi2=fit.chi2,
            ndf=fit.ndf,
            chi2_ndf=fit.chi2_ndf,
            n_pixels=n_pixels,
            n_pixels_in_range=int(fit.counts.sum()),
            fitted=fit.fitted,
            valid=fit.valid,
            status=fit.status,
            q_range_adu=[float(fit.x_edges[0]), float(fit.x_edges[-1])],
            bin_size_adu=float(fit.x_edges[1] - fit.x_edges[0]),
            **info,
        )
        return out

    @staticmethod
    def header_cards(image: SkipperImage, results: dict[str, Any]) -> None:
        """Add the TDG... cards (pysimdamicm names; errors with the suffix E)."""
        cards = (
            ("TDGTHETA", "theta_rad", "rad"),
            ("TDGDCL", "dc_L", "e-/pixel"),
            ("TDGDCU", "dc_U", "e-/pixel"),
            ("TDGSIGL", "sigma_L", "ADU"),
            ("TDGSIGU", "sigma_U", "ADU"),
            ("TDGCALL", "gain_L", "ADU/e-"),
            ("TDGCALU", "gain_U", "ADU/e-"),
        )
        for key, name, unit in cards:
            image.add_header_card(key, results[name], f"TwoDGauss {name} ({unit})")
            image.add_header_card(f"{key}E", results[f"{name}_err"], f"error of {key} ({unit})")
        image.add_header_card("TDGNPIX", results["n_pixels"], "TwoDGauss pixel pairs used")
        image.add_header_card("TDGCHI2", results["chi2_ndf"], "TwoDGauss chi2/ndf (Baker-Cousins)")


def _plot(
    process: TwoDGaussProcess, image: SkipperImage, context: RunContext, fit: TwoDGaussFit, results: dict[str, Any]
) -> None:
    from matplotlib.colors import LogNorm

    edges = fit.x_edges
    with plotting.figure(context, image, process.name, "fit", size=(6.5, 5.5)) as (fig, ax):
        shown = ax.pcolormesh(edges, fit.y_edges, np.where(fit.counts > 0, fit.counts, np.nan).T, norm=LogNorm())
        fig.colorbar(shown, ax=ax, label=f"pixel pairs / ({fit.x_edges[1] - fit.x_edges[0]:.3g} ADU)$^2$")
        expected = fit.expected()
        top = np.log10(max(float(expected.max()), 1.0))
        levels = 10.0 ** np.arange(-1.0, top, 0.8)
        if levels.size >= 1:
            centres = 0.5 * (edges[1:] + edges[:-1])
            ax.contour(centres, 0.5 * (fit.y_edges[1:] + fit.y_edges[:-1]), expected.T, levels=levels, colors="r",
                       linewidths=0.6)  # fmt: skip
        ax.set_xlabel(f"{results['amplifier_L']} pixel charge (ADU)")
        ax.set_ylabel(f"{results['amplifier_U']} pixel charge (ADU, same readout position)")
        ax.grid(False)
        text = (
            f"gain {results['amplifier_L']} = {results['gain_L']:.4g} ± {results['gain_L_err']:.2g} ADU/e-\n"
            f"gain {results['amplifier_U']} = {results['gain_U']:.4g} ± {results['gain_U_err']:.2g} ADU/e-\n"
            f"$\\sigma_L$ = {results['sigma_L']:.3g}, $\\sigma_U$ = {results['sigma_U']:.3g} ADU, "
            f"$\\theta$ = {results['theta_rad']:.3g} rad\n"
            f"$\\chi^2$/ndf = {results['chi2_ndf']:.3g}, {results['n_pixels']} pairs ({fit.status})"
        )
        ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=8)
