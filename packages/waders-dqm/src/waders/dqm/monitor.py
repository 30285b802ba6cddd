"""Monitor elements (MEs): one number, profile, distribution or image per analysed image and amplifier.

A monitor element reads what ``waders ana`` already computed for an image -- its image
products (``mean_compressed_pedestal_subtracted``, ``..._e``, ``std_compressed``,
``mask_clusters``) and the results of its processes (row pedestals, dark-current fits,
noise versus skips) -- and turns it into an :class:`MEResult`.  It never runs the
analysis again: an ME that needs a process the analysis configuration lacks declares it
(:meth:`MonitorElement.analysis_steps`) and ``waders dqm run`` adds that process to the
analysis of every image, once.

Kinds of MEs (:attr:`MonitorElement.kind`):

``scalar``
    one value (and error) per image and amplifier, e.g. the mean pedestal noise;
``profile``
    ``y(x)`` per image and amplifier (per row, per column, per skip), plus a scalar summary;
``distribution``
    a histogram on fixed bins (so that images and runs can be summed and compared);
``image``
    a picture of the amplifier (plotted, not stored).

Quality tests (:mod:`waders.dqm.quality`) use the ``qt_*`` parameters every ME declares.
Values are in the ME's :attr:`~MonitorElement.unit`; rows and columns are 1-based, columns
in readout order (column 1 is the first one read, whatever the amplifier).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from waders.core.errors import ConfigError, DataError
from waders.core.kinds import JSON, Choice, Float
from waders.core.parameters import Configurable, Param

if TYPE_CHECKING:
    from waders.core.image import Amplifier, SkipperImage
    from waders.core.process import Process

__all__ = [
    "ME_KINDS",
    "AnalysisStep",
    "MEResult",
    "MonitorElement",
    "NotApplicable",
    "UnavailableMonitor",
    "cached",
    "gain_of",
    "histogram_chi2",
    "in_electrons",
    "jsonable",
    "region_values",
    "tolerance",
]

log = logging.getLogger(__name__)

#: Kinds of monitor elements.
ME_KINDS = ("scalar", "profile", "distribution", "image")
#: Relative error of a median of n Gaussian values is MEDIAN_EFF / sqrt(n) sigma.
MEDIAN_EFF = 1.2533
MAD_TO_SIGMA = 1.482602218505602
_QUALITY_NONE = {"status": "none", "test": None, "detail": ""}


class NotApplicable(DataError):
    """The ME cannot be evaluated on this image (e.g. it needs raw samples); not a quality problem."""


# --- results ------------------------------------------------------------------------------------------
@dataclass
class MEResult:
    """What a monitor element reports for one image and amplifier.

    Attributes
    ----------
    value, error : float, optional
        The scalar summary and its one-sigma error (ME unit).
    x, y, yerr : numpy.ndarray, optional
        A profile ``y(x)`` or a histogram (``x`` = bin centres, ``y`` = counts).
    yfit : numpy.ndarray, optional
        A model evaluated at ``x`` (straight line of a profile, fitted PCD).
    goodness : float, optional
        chi2/ndf of the fit behind the value (shown; tested against ``qt_fit_chi2_max`` only
        when ``chi2`` and ``ndf`` are not given).
    chi2, ndf : float, int, optional
        chi2 of the fit behind the value over the bins where it is a chi2 (see
        :func:`histogram_chi2`) and its degrees of freedom; tested by its p-value.
    image : numpy.ndarray, optional
        Picture of an image ME (plotted, never stored).
    """

    value: float | None = None
    error: float | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    yerr: np.ndarray | None = None
    yfit: np.ndarray | None = None
    goodness: float | None = None
    chi2: float | None = None
    ndf: int | None = None
    image: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_entry(self, me: MonitorElement) -> dict[str, Any]:
        """The JSON entry of the run summary (``images[stem].me[ME][amp]``)."""
        return {
            "value": _number(self.value),
            "error": _number(self.error),
            "unit": me.unit,
            "x": jsonable(self.x),
            "y": jsonable(self.y),
            "yerr": jsonable(self.yerr),
            "yfit": jsonable(self.yfit),
            "goodness": _number(self.goodness),
            "chi2": _number(self.chi2),
            "ndf": int(self.ndf) if self.ndf is not None else None,
            "xlabel": me.xlabel,
            "ylabel": me.ylabel,
            "plot": None,
            "quality": dict(_QUALITY_NONE),
        }


def histogram_chi2(
    counts: np.ndarray, expected: np.ndarray, n_free: int, *, accuracy: float = 0.01, min_expected: float = 5.0
) -> tuple[float, int] | None:
    """chi2 of a fitted histogram and its degrees of freedom, for a test by p-value.

    Pearson's chi2 over the bins where the model expects at least ``min_expected`` counts
    (elsewhere the statistic has no chi2 distribution; in a pixel-charge distribution these
    are the tails, where the pixels of tracks lie that no dark-current model describes), with
    the variance of a bin ``expected + (accuracy * expected)**2``: the Poisson variance plus
    the model's own relative accuracy, so that an imperfection of a per cent does not fail a
    histogram of a million pixels whose Poisson errors are a tenth of a per cent.

    Parameters
    ----------
    counts, expected : numpy.ndarray
        Observed and fitted counts per bin (NaN where the model was not evaluated).
    n_free : int
        Free parameters of the fit.
    accuracy : float
        Relative accuracy of the model per bin.
    min_expected : float
        Smallest expected count of a bin that enters.

    Returns
    -------
    (chi2, ndf) or None
        None when fewer bins than free parameters remain.
    """
    counts = np.asarray(counts, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    used = np.isfinite(expected) & np.isfinite(counts) & (expected >= max(min_expected, 1e-12))
    ndf = int(used.sum()) - int(n_free)
    if ndf <= 0:
        return None
    mu = expected[used]
    chi2 = float(np.sum((counts[used] - mu) ** 2 / (mu + (accuracy * mu) ** 2)))
    return chi2, ndf


def empty_entry(me: MonitorElement, status: str, detail: str) -> dict[str, Any]:
    """Entry of an ME that produced nothing (not applicable: ``none``; failed: ``fail``)."""
    entry = MEResult().to_entry(me)
    entry["quality"] = {"status": status, "test": None, "detail": detail}
    return entry


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return _round(value) if math.isfinite(value) else None


def _round(value: float, digits: int = 7) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def jsonable(values: Any, digits: int = 7) -> list[float | None] | None:
    """A list for JSON: numbers rounded to ``digits`` significant digits, NaN/inf -> null."""
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(array)
    out = np.zeros_like(array)
    nonzero = finite & (array != 0)
    if nonzero.any():
        scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(array[nonzero]))))
        out[nonzero] = np.round(array[nonzero] * scale) / scale
    listed = out.tolist()
    if finite.all():
        return listed
    return [v if ok else None for v, ok in zip(listed, finite.tolist(), strict=True)]


# --- helpers used by the MEs ------------------------------------------------------------------------
def cached(image: SkipperImage, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """Compute a value once per image (shared by the MEs of one image)."""
    store = image.meta.setdefault("dqm_cache", {})
    if key not in store:
        store[key] = compute()
    return store[key]


def gain_of(amplifier: Amplifier, summary: Mapping[str, Any] | None = None) -> float:
    """Gain (ADU/e-) the analysis used for this amplifier.

    The gain of CalibrationProcess, else a valid dark-current fit, else the summary.

    Raises
    ------
    DataError
        If the analysis determined no gain.
    """
    calibration = amplifier.results.get("CalibrationProcess", {})
    if calibration.get("gain_adu_per_e"):
        return float(calibration["gain_adu_per_e"])
    fit = amplifier.results.get("FitDarkCurrentProcess", {})
    if fit.get("valid") and fit.get("gain_adu_per_e"):
        return float(fit["gain_adu_per_e"])
    amp_summary = ((summary or {}).get("amplifiers") or {}).get(amplifier.name, {})
    if amp_summary.get("gain_adu_per_e"):
        return float(amp_summary["gain_adu_per_e"])
    raise DataError(
        f"no gain for amplifier {amplifier.name}",
        hint="add CalibrationProcess (or FitDarkCurrentProcess) to the analysis sequence",
    )


def product(amplifier: Amplifier, name: str) -> np.ndarray:
    """An image product as float64, or :class:`NotApplicable` if the analysis did not make it."""
    if not amplifier.has(name):
        have = ", ".join(amplifier.available()) or "none"
        raise NotApplicable(f"image '{name}' is not available (available: {have})")
    return np.asarray(amplifier.get(name), dtype=np.float64)


def in_electrons(amplifier: Amplifier, name: str, summary: Mapping[str, Any] | None = None) -> np.ndarray:
    """Product ``name`` in electrons: as is if its name ends in ``_e``, else divided by the gain."""
    data = product(amplifier, name)
    return data if name.endswith("_e") else data / gain_of(amplifier, summary)


def region_values(amplifier: Amplifier, data: np.ndarray, region: str) -> tuple[np.ndarray, slice, slice]:
    """``data`` over a region of the amplifier (``"active"`` or ``"overscan"``) and its slices.

    Raises
    ------
    NotApplicable
        If the amplifier has no such region (no overscan columns).
    """
    try:
        rows, cols = amplifier.geometry.region(region)
    except DataError as err:
        raise NotApplicable(err.message) from None
    if rows.stop <= rows.start or cols.stop <= cols.start:
        raise NotApplicable(f"the {region} region of amplifier {amplifier.name} is empty")
    return data[rows, cols], rows, cols


def row_median_mad(values: np.ndarray, axis: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, unscaled MAD and number of finite values along ``axis`` (NaN ignored)."""
    if np.isnan(values).any():
        with np.errstate(all="ignore"), _quiet_nan():
            median = np.nanmedian(values, axis=axis)
            mad = np.nanmedian(np.abs(values - np.expand_dims(median, axis)), axis=axis)
        return median, mad, np.isfinite(values).sum(axis=axis)
    median = np.median(values, axis=axis)
    mad = np.median(np.abs(values - np.expand_dims(median, axis)), axis=axis)
    return median, mad, np.full(median.shape, values.shape[axis])


class _quiet_nan:
    """Silence numpy's all-NaN slice warnings (an empty row gives NaN, reported elsewhere)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def line_fit(
    x: np.ndarray, y: np.ndarray, yerr: np.ndarray | None = None
) -> tuple[float, float, float, float, float] | None:
    """Weighted straight line ``y = slope x + intercept``.

    The errors of slope and intercept are scaled by sqrt(chi2/ndf) when it exceeds 1 (the points
    scatter more than their errors say, e.g. by the error of each row's pedestal).

    Returns
    -------
    (slope, slope_err, intercept, intercept_err, chi2_ndf) or None
        None with fewer than three usable points.
    """
    good = np.isfinite(x) & np.isfinite(y)
    if yerr is not None:
        good &= np.isfinite(yerr) & (yerr > 0)
    if good.sum() < 3:
        return None
    xs, ys = x[good], y[good]
    weights = 1.0 / yerr[good] ** 2 if yerr is not None else np.ones_like(xs)
    centre = float(np.average(xs, weights=weights))
    dx = xs - centre
    sw, swx2 = weights.sum(), (weights * dx * dx).sum()
    if swx2 <= 0:
        return None
    slope = float((weights * dx * ys).sum() / swx2)
    mean = float((weights * ys).sum() / sw)
    residual = ys - (mean + slope * dx)
    ndf = len(xs) - 2
    chi2 = float((weights * residual**2).sum())
    # unit weights: errors from the scatter; stated errors: scaled up when the points scatter more (PDG)
    scale = chi2 / ndf if yerr is None else max(1.0, chi2 / ndf)
    slope_err = math.sqrt(scale / swx2)
    intercept = mean - slope * centre
    intercept_err = math.sqrt(scale * (1.0 / sw + centre**2 / swx2))
    return slope, slope_err, intercept, intercept_err, chi2 / ndf


@dataclass
class AnalysisStep:
    """An analysis process a monitor element needs.

    Attributes
    ----------
    process : type
        The process class (its ``name`` identifies it in the sequence).
    params : dict
        Parameters the ME sets (declared units), also on a process already configured.
    defaults : dict
        Parameters used only when the DQM adds the process itself.
    """

    process: type[Process]
    params: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


def tolerance(value: float, unit: str) -> Param:
    """``qt_abs_tolerance`` with another default (for quantities near zero, whose relative difference means nothing)."""
    return Param(value, Float(min=0), doc=f"differences up to this ({unit}) always pass")


# --- the base class -------------------------------------------------------------------------------
_REFERENCE_TESTS = Choice(["auto", "none", "reldiff", "chi2", "ks"])


class MonitorElement(Configurable):
    """Base class of monitor elements.

    Class attributes
    ----------------
    name : str
        Registry name (the class name by default); the section name in the ME configuration.
    order : int
        Evaluation order (pysimdamicm's sequence id).
    per_amplifier : bool
        Evaluated for every amplifier (else once per image, stored under ``"image"``).
    kind : str
        One of :data:`ME_KINDS`.
    unit, title, xlabel, ylabel : str
        Unit of the values and plot labels.
    needs_raw : bool
        Needs the raw samples (not applicable to averaged images).
    """

    name: ClassVar[str] = "MonitorElement"
    order: ClassVar[int] = 100
    per_amplifier: ClassVar[bool] = True
    kind: ClassVar[str] = "scalar"
    unit: ClassVar[str] = ""
    title: ClassVar[str] = ""
    xlabel: ClassVar[str] = "image"
    ylabel: ClassVar[str] = ""
    needs_raw: ClassVar[bool] = False
    #: Colour map and fixed colour range (image MEs).
    colour_map: ClassVar[str] = "viridis"
    colour_range: ClassVar[tuple[float, float] | None] = None
    #: Other ME names whose results this one shares (for documentation; each ME computes on its own).
    related: ClassVar[tuple[str, ...]] = ()

    ignored_keys: ClassVar[dict[str, str]] = {
        "__DEBUG__": "pysimdamicm debug flag; use waders --debug",
        "__verbose__": "pysimdamicm verbosity flag; use waders -v",
        "__display__": "pysimdamicm interactive display; waders writes PNG files",
        "__silent__": "pysimdamicm flag; use the logging level",
        "__sequence_id__": "the order is fixed by each monitor element",
        "verbose": "use waders -v",
        "saveas": "plots are named me/<stem>_<ME>_<amp>.png and me/run_<ME>.png",
        "caption": "the report uses the monitor element's title",
        "is_MECCD": "metadata of pysimdamicm (unused there too)",
        "is_MEImage": "metadata of pysimdamicm (unused there too)",
        "is_MERun": "metadata of pysimdamicm (unused there too)",
        "format_figures": "monitor-element plots are PNG",
    }

    plot_with_yerrors = Param(True, doc="draw error bars on the plots")
    qt_valid_range = Param(
        None,
        JSON(),
        doc="allowed [min, max] of the values (null = no bound); or per amplifier {'L': [..], '1,U': [..]}",
    )
    qt_reference = Param(
        "auto",
        _REFERENCE_TESTS,
        doc="comparison with the reference run: auto (scalar: reldiff, profile: chi2, distribution: ks), none, ...",
    )
    qt_reldiff_warn = Param(0.10, Float(min=0), doc="warn when the relative difference to the reference exceeds this")
    qt_reldiff_fail = Param(0.25, Float(min=0), doc="fail when the relative difference to the reference exceeds this")
    qt_nsigma_warn = Param(4.0, Float(min=0), doc="... and the difference exceeds this many standard errors")
    qt_nsigma_fail = Param(6.0, Float(min=0), doc="fail threshold in standard errors")
    qt_abs_tolerance = Param(0.0, Float(min=0), doc="differences up to this (ME unit) always pass")
    qt_chi2_warn = Param(3.0, Float(min=0), doc="warn when chi2/ndf of a profile against the reference exceeds this")
    qt_chi2_fail = Param(5.0, Float(min=0), doc="fail when chi2/ndf of a profile against the reference exceeds this")
    qt_ks_warn = Param(1e-3, Float(min=0, max=1), doc="warn when the KS p-value against the reference is below this")
    qt_ks_fail = Param(1e-6, Float(min=0, max=1), doc="fail when the KS p-value against the reference is below this")
    qt_ks_distance_warn = Param(
        0.05, Float(min=0, max=1), doc="... and the KS distance (largest difference of the CDFs) exceeds this"
    )
    qt_ks_distance_fail = Param(0.10, Float(min=0, max=1), doc="fail threshold of the KS distance")
    qt_fit_chi2_max = Param(
        5.0, Float(min=0), doc="fail when the chi2/ndf of the ME's own fit exceeds this (fits without chi2 and ndf)"
    )
    qt_fit_pvalue_warn = Param(
        1e-3, Float(min=0, max=1), doc="warn when the p-value of the own fit's chi2 (for its ndf) is below this"
    )
    qt_fit_pvalue_fail = Param(
        1e-6, Float(min=0, max=1), doc="fail when the p-value of the own fit's chi2 (for its ndf) is below this"
    )
    qt_fit_model_accuracy = Param(
        0.01,
        Float(min=0),
        doc="relative accuracy of a fitted model per bin, added to the Poisson variance of the chi2 of the fit",
    )
    qt_fit_min_expected = Param(
        5.0, Float(min=0), doc="bins where the model expects fewer counts do not enter the chi2 of the fit"
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "name" not in vars(cls):
            cls.name = cls.__name__
        super().__init_subclass__(**kwargs)
        if cls.kind not in ME_KINDS:
            raise TypeError(f"{cls.__name__}.kind must be one of {ME_KINDS}")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._check_range(self.qt_valid_range)

    def _set(self, key: str, value: Any) -> None:
        super()._set(key, value)
        if key == "qt_valid_range":
            self._check_range(self._values["qt_valid_range"])

    @classmethod
    def label(cls) -> str:
        return cls.name

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring (for ``--list-monitors``)."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    # --- what to compute -----------------------------------------------------------------------------
    def analysis_steps(self) -> list[AnalysisStep]:
        """Analysis processes this ME reads, with the parameters it sets on them.

        ``waders dqm run`` adds a missing process at the end of the analysis sequence (with
        :attr:`AnalysisStep.defaults` and :attr:`AnalysisStep.params`) and applies
        :attr:`AnalysisStep.params` to a process the analysis configuration already runs.
        """
        return []

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        """Compute the ME for one amplifier (or the image, when not per amplifier).

        Parameters
        ----------
        image : SkipperImage
            The analysed image (products and results of ``waders ana``).
        summary : mapping
            Its ``<stem>.summary.json``.
        amplifier : Amplifier or None
            The amplifier (None for MEs with ``per_amplifier = False``).

        Raises
        ------
        NotApplicable
            When the image does not allow this ME (e.g. averaged image, no overscan).
        """
        raise NotImplementedError(f"{self.name} must implement evaluate()")

    def given(self, names: Sequence[str]) -> dict[str, Any]:
        """The parameters among ``names`` that are set (not null), in declared units."""
        values = self.to_dict()
        return {name: values[name] for name in names if values.get(name) is not None}

    # --- quality-test settings -------------------------------------------------------------------
    @staticmethod
    def _check_range(value: Any) -> None:
        def check_pair(pair: Any, where: str) -> None:
            ok = isinstance(pair, list | tuple) and len(pair) == 2
            ok = ok and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in pair)
            if not ok:
                raise ConfigError(f"{where}: expected [min, max] with numbers or null, got {pair!r}")

        if value is None:
            return
        if isinstance(value, Mapping):
            for key, pair in value.items():
                check_pair(pair, f"qt_valid_range.{key}")
        else:
            check_pair(value, "qt_valid_range")

    def valid_range(self, amplifier: str, ccd: Any = None) -> tuple[float | None, float | None] | None:
        """The allowed (min, max) for an amplifier, or None when there is no range test."""
        value = self.qt_valid_range
        if isinstance(value, Mapping):
            for key in (f"{ccd},{amplifier}", amplifier, "*"):
                if key in value:
                    value = value[key]
                    break
            else:
                return None
        if value is None or (value[0] is None and value[1] is None):
            return None
        return (value[0], value[1])

    def reference_test(self) -> str:
        """Name of the comparison with the reference run (``none`` for image MEs)."""
        if self.qt_reference != "auto":
            return self.qt_reference
        return {"scalar": "reldiff", "profile": "chi2", "distribution": "ks"}.get(self.kind, "none")

    # --- plots ---------------------------------------------------------------------------------------
    def wants_image_plot(self) -> bool:
        """Whether a per-image plot means something (not for scalars)."""
        return self.kind != "scalar"

    def plot(
        self,
        entry: Mapping[str, Any],
        path: Path,
        *,
        label: str,
        reference: Mapping[str, Any] | None = None,
        image: np.ndarray | None = None,
    ) -> Path | None:
        """Draw one image's result (an entry of the summary) into a PNG file.

        Parameters
        ----------
        entry : mapping
            The ME entry (``x``, ``y``, ``yerr``, ``yfit``, ``value``, ...).
        path : Path
            Output file.
        label : str
            Image and amplifier, for the title.
        reference : mapping, optional
            Reference statistics of this ME and amplifier (:mod:`waders.dqm.quality`).
        image : numpy.ndarray, optional
            The picture of an image ME.

        Returns
        -------
        Path or None
            The file written, or None when there is nothing to draw.
        """
        from .plots import plot_entry

        return plot_entry(self, entry, path, label=label, reference=reference, image=image)


class UnavailableMonitor(MonitorElement):
    """A pysimdamicm monitor-element name that waders does not provide.

    Its configuration section is accepted (any keys) so that pysimdamicm's DQM file loads
    while the ME is inactive; activating it is an error (:meth:`unavailable`).
    """

    reason: ClassVar[str] = "it was never implemented in pysimdamicm either"

    def _set(self, key: str, value: Any) -> None:
        self.ignored[key] = value

    @classmethod
    def unavailable(cls) -> ConfigError:
        """The error raised when the ME is active."""
        return ConfigError(
            f"monitor element {cls.name} is not available in waders: {cls.reason}",
            hint=f'set "active": 0 for {cls.name}',
        )

    def evaluate(self, image: SkipperImage, summary: Mapping[str, Any], amplifier: Amplifier | None) -> MEResult:
        raise self.unavailable()


def active_monitors(steps: Sequence[MonitorElement]) -> list[MonitorElement]:
    """The active MEs of a DQM configuration; an active unavailable ME is an error."""
    for step in steps:
        if isinstance(step, UnavailableMonitor):
            raise type(step).unavailable()
    return sorted(steps, key=lambda me: type(me).order)
