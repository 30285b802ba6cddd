"""PasteClusterProcess: simulated events pasted into real blank images, with truth (pysimdamicm C.12).

Each (event, CCD) collection of simulated signal pixels is added, in ADU, to a real blank
image (an image without the simulated source, e.g. a DAMIC-M averaged image):

* conversion: ``ADU = E / e2eV x c`` per pixel (E the deposited energy in eV, so
  ``E / e2eV`` electrons, ``c`` in ADU/e-); with ``signal: "charge"`` the collected
  electrons (``charge``, with their Fano fluctuation) replace ``E / e2eV``.  ``c = calibration`` when given, else
  ``e2eV / detector.ADC2eV`` (``in_ADU: true``) or 1 (``in_ADU: false``: a blank in
  electrons); with ``sigma`` the gain of each blank is ``Normal(c, sigma)`` (drawn once per
  blank);
* placement (C.12): the cluster's top row goes to row ``prescan + int(t)`` with ``t``
  drawn over the active rows (``row_cls_dist_fx``: ``uniform``; ``linear``, density
  growing with the row; ``compton``, the first ``clusters_per_blank_texp`` clusters of a
  blank uniform, the others linear with last/first ratio 6.82), its first column to a
  uniform column such that it fits in the active columns; pixels falling outside the
  active area are dropped and counted (an event with no pixel left is killed);
* after ``clusters_per_blank`` pastes the image is written and the next blank (cyclic)
  loaded; the last, partial one is written by :meth:`PasteClusterProcess.finish`.

Blanks are read with :func:`waders.io.read_image` (HDU ``extension``: index or name, e.g.
``"CCD_A"``; 0 on a file whose primary HDU is empty means the first image HDU), averaged
over skips if raw.  The active area is the blank minus the detector section's
``n_rows_prescan``/``n_rows_overscan``/``n_cols_prescan``/``n_cols_overscan``, or, if those
are all 0, minus the prescan/overscan of the amplifier geometry read from the file.

Output ``<blank_outdir>/<prefix>_<blank stem>_Ncls<N>_<k>.fits`` (``k``: blank number,
from 1), written atomically with astropy: primary HDU = pasted image (the blank's header
+ ``NMAX``, ``NEVTS``, ``CALIB`` (ADU/e-), ``EV2ADU`` (ADU/eV), ``E2EV``, ``BLANKIMG``), then
``MonteCarloTruth`` (pasted energy per pixel, eV), ``MCT_ID`` (paste number, 1-based within
the image; the last paste wins where clusters overlap), ``MCT_ERAW`` (the blank's value of
every pasted pixel, before pasting) and ``MCT_EMCT`` (total pasted energy of the event of
the pixel, eV) — the layout ``waders ana --MCT`` reads.  Next to it
``<name>.truth.json`` lists every paste: event id, CCD, paste id, energy (eV), electrons,
ADU, charge-weighted centre (row, col; file coordinates, 1-based like ``clustersRec``),
pixels pasted and dropped.  The pixels of :attr:`SimEvents.pixels
<waders.sim.events.SimEvents.pixels>` get ``paste_row``, ``paste_col`` (0-based file
coordinates, -1 if not pasted), ``paste_adu`` and ``paste_image`` (blank number, -1).

Deliberate differences from pysimdamicm
---------------------------------------
* Units fixed: ADU = E / e2eV x c (pysimdamicm applied ADU per electron to eV, a factor
  e2eV too large, unless ``sigma`` was set, and crashed with a calibration but no sigma).
* ``clusters_per_blank_texp`` null means 0 uniform clusters in compton mode (pysimdamicm
  crashed); the compton quadratic ADU(n_e) = round(0.4088 + 5.177 n_e + 7.85e-6 n_e^2) is
  used only when no ``calibration`` is given (an explicit calibration wins).
* Column offsets keep the cluster inside the active columns
  (pysimdamicm's upper bound subtracted the prescan twice); pixels outside the active area
  (not only outside the image) are dropped and counted.
* ``MCT_ERAW`` holds the blank value once per pixel (pysimdamicm added it once per paste).
* Saturation (PixelSaturation active) clips only the pasted pixels, at
  ``saturation_eV / e2eV x c`` ADU.
* Random numbers from the counter RNG (placements keyed by event id and CCD, gains and the
  blank order by blank number): reproducible from the seed and independent of chunking.
  Without ``random_image_start`` the blanks are used in sorted order from the first.
* Output names end with the blank number instead of a random hash; the default output
  directory is the run's.
"""

from __future__ import annotations

import glob
import json
import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from waders.core import Param
from waders.core.errors import ConfigError, InputFileError, ProcessError
from waders.core.kinds import Bool, Choice, Float, Int, Optional, Str, Union
from waders.core.pipeline import RunContext

from .base import SimProcess
from .events import SimEvents
from .random import CounterRNG

__all__ = ["PasteClusterProcess", "read_blank"]

log = logging.getLogger(__name__)

_COMPTON_RATIO = 6.82
_STRUCTURAL = (
    "SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT",
    "EXTNAME", "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "TFIELDS", "THEAP", "HISTORY", "COMMENT", "",
)  # fmt: skip


def _blank_files(pattern: str) -> list[Path]:
    path = Path(pattern).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if ".fits" in p.name or p.suffix == ".fz")
    else:
        files = sorted(Path(p) for p in glob.glob(str(path)))
    if not files:
        raise InputFileError(f"PasteClusterProcess: no blank image matches {pattern!r}", hint="check blank_dir")
    return files


def _resolve_extension(path: Path, extension: int | str) -> int | str:
    """HDU to read: 0 on a file whose primary HDU has no image means the first image HDU."""
    if extension != 0:
        return extension
    from astropy.io import fits

    with fits.open(path) as hdul:
        for index, hdu in enumerate(hdul):
            if hdu.is_image and hdu.header.get("NAXIS", 0) == 2:
                return index
    raise InputFileError(f"{path}: no 2-D image in any HDU")


def read_blank(path: Path, extension: int | str) -> tuple[np.ndarray, dict[str, Any], dict[str, int]]:
    """Read one HDU of a blank image as laid out in the file.

    Returns
    -------
    image : ndarray
        2-D pixel values (ADU or e-) of the HDU, averaged over skips for raw images.
    header : dict
        Run header followed by the HDU's cards.
    margins : dict
        ``prescan_rows``, ``overscan_rows``, ``prescan_cols``, ``overscan_cols`` of the
        HDU in file layout (from the amplifier geometry when it has one amplifier, else 0).
    """
    from waders.io import read_image

    ext = _resolve_extension(path, extension)
    image = read_image(path, {"image": {"extensions": [ext]}})
    amps = list(image.amplifiers.values())
    nrows = amps[0].geometry.nrows
    ncols = max(a.geometry.col_offset + a.geometry.ncols for a in amps)
    data = np.zeros((nrows, ncols))
    for amp in amps:
        g = amp.geometry
        if amp.raw is not None:
            block = np.concatenate(
                [
                    np.asarray(amp.raw[a : min(a + 256, nrows)], dtype=np.float64).mean(axis=2)
                    for a in range(0, nrows, 256)
                ]
            )
        else:
            block = np.asarray(amp.get("mean_compressed"), dtype=np.float64)
        data[:, g.col_offset : g.col_offset + g.ncols] = g.to_file_layout(block)
    header = dict(image.header)
    header.update(amps[0].header)
    margins = {"prescan_rows": 0, "overscan_rows": 0, "prescan_cols": 0, "overscan_cols": 0}
    if len(amps) == 1:
        g = amps[0].geometry
        pre, ovs = (g.overscan_cols, g.prescan_cols) if g.mirrored else (g.prescan_cols, g.overscan_cols)
        margins = {
            "prescan_rows": g.prescan_rows,
            "overscan_rows": g.overscan_rows,
            "prescan_cols": pre,
            "overscan_cols": ovs,
        }
    return data, header, margins


class _Blank:
    """The blank image being filled."""

    def __init__(
        self, number: int, path: Path, data: np.ndarray, header: dict[str, Any], gain: float, margins: dict[str, int]
    ) -> None:
        self.number = number
        self.margins = margins
        self.path = path
        self.original = data
        self.image = data.copy()
        self.header = header
        self.gain = gain
        self.mct = np.zeros(data.shape)
        self.mct_id = np.zeros(data.shape, dtype=np.int32)
        self.mct_emct = np.zeros(data.shape)
        self.e2ev = 3.77
        self.count = 0
        self.truth: list[dict[str, Any]] = []


class PasteClusterProcess(SimProcess):
    """Paste simulated events into real blank images (ADU), with Monte-Carlo-truth images and a truth table."""

    name: ClassVar[str] = "PasteClusterProcess"
    order: ClassVar[int] = 60

    blank_dir = Param(None, Optional(Str()), doc="blank images: a file, a directory or a glob pattern")
    blank_outdir = Param(None, Optional(Str()), doc="output directory (default: the run's output directory)")
    extension = Param(0, Union(Int(min=0), Str()), doc="HDU of the blanks (index or name, e.g. CCD_A)")
    row_cls_dist_fx = Param("linear", Choice(["linear", "uniform", "compton"]), doc="distribution of the cluster rows")
    clusters_per_blank = Param(50, Int(min=1), doc="pastes per blank image")
    clusters_per_blank_texp = Param(None, Optional(Int(min=0)), doc="compton mode: uniform clusters per blank first")
    in_ADU = Param(True, Bool(), doc="the blanks are in ADU (else electrons)")
    calibration = Param(
        None, Optional(Float(positive=True)), unit="ADU/e", doc="gain of the blanks (default e2eV/ADC2eV)"
    )
    sigma = Param(None, Optional(Float(min=0)), unit="ADU/e", doc="spread of the gain, drawn once per blank")
    random_image_start = Param(True, doc="shuffle the blanks and start at a random one")
    prefix = Param("waders_sim", Str(), doc="prefix of the output file names")
    signal = Param(
        "energy",
        Choice(["energy", "charge"]),
        doc="electrons pasted: 'energy' = edep / e2eV (pysimdamicm), 'charge' = the collected carriers (Fano)",
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._files: list[Path] | None = None
        self._start = 0
        self._n_blanks = 0
        self._blank: _Blank | None = None
        self._written: list[str] = []
        self._rng: CounterRNG | None = None
        self._out_dir: Path | None = None

    # --- conversion and blanks -------------------------------------------------------------
    def _base_gain(self, data: SimEvents) -> float:
        if self.calibration is not None and not math.isnan(self.calibration):
            return float(self.calibration)
        if not self.in_ADU:
            return 1.0
        if data.detector.ADC2eV is None:
            raise ProcessError(
                f"{self.name}: blanks in ADU need calibration (ADU/e-) or detector.ADC2eV",
                hint="set calibration, e.g. 1.35 for DAMIC-M averaged images",
            )
        return float(data.detector.e2eV / data.detector.ADC2eV)

    def _quadratic(self) -> bool:
        explicit = self.calibration is not None and not math.isnan(self.calibration)
        return self.row_cls_dist_fx == "compton" and self.in_ADU and not explicit

    def _next_blank(self, data: SimEvents, rng: CounterRNG) -> _Blank:
        if self._files is None:
            files = _blank_files(str(self.blank_dir))
            if self.random_image_start and len(files) > 1:
                order = np.argsort(rng.uniform(f"{self.name}/order", np.arange(len(files))), kind="stable")
                files = [files[i] for i in order]
                self._start = int(rng.uniform(f"{self.name}/start", 0) * len(files))
            self._files = files
        number = self._n_blanks
        self._n_blanks += 1
        path = self._files[(self._start + number) % len(self._files)]
        image, header, margins = read_blank(path, self.extension)
        gain = self._base_gain(data)
        if self.sigma is not None and not math.isnan(self.sigma):
            gain = float(gain + self.sigma * rng.normal(f"{self.name}/gain", number))
        det = data.detector
        from_detector = (det.n_rows_prescan, det.n_rows_overscan, det.n_cols_prescan, det.n_cols_overscan)
        if any(from_detector):
            names = ("prescan_rows", "overscan_rows", "prescan_cols", "overscan_cols")
            margins = {k: int(v) for k, v in zip(names, from_detector, strict=True)}
        blank = _Blank(number + 1, path, image, header, gain, margins)
        blank.e2ev = float(det.e2eV)
        log.info("%s: blank %d = %s (gain %.4g ADU/e-)", self.name, blank.number, path.name, gain)
        return blank

    # --- run ---------------------------------------------------------------------------------
    def run(self, data: SimEvents, context: RunContext) -> None:
        if self.blank_dir is None:
            raise ConfigError(f"{self.name}.blank_dir is required", hint="a blank FITS file, directory or glob pattern")
        if data.pixels is None:
            raise ConfigError(f"{self.name} needs PixelizeSignal earlier in the chain")
        self._rng = data.rng
        self._out_dir = Path(self.blank_outdir) if self.blank_outdir else Path(context.output_dir or ".")
        pixels = data.pixels
        n = pixels["event"].size
        for name, fill, dtype in (
            ("paste_row", -1, np.int64),
            ("paste_col", -1, np.int64),
            ("paste_adu", 0.0, np.float64),
            ("paste_image", -1, np.int64),
        ):
            if name not in pixels:
                pixels[name] = np.full(n, fill, dtype=dtype)
        signal = np.flatnonzero((pixels["edep"] > 0) & ~data.killed[pixels["event"]])
        if signal.size == 0:
            return
        event, ccd = pixels["event"][signal], pixels["ccd"][signal]
        change = np.flatnonzero((np.diff(event) != 0) | (np.diff(ccd) != 0)) + 1
        starts = np.concatenate([[0], change]).astype(np.int64)
        counts = np.diff(np.concatenate([starts, [signal.size]]))
        done = 0
        lost = np.zeros(starts.size, dtype=bool)
        while done < starts.size:
            if self._blank is None:
                self._blank = self._next_blank(data, data.rng)
            take = min(self.clusters_per_blank - self._blank.count, starts.size - done)
            colls = np.arange(done, done + take)
            lost[colls] = self._paste(data, signal, starts[colls], counts[colls])
            done += take
            if self._blank.count >= self.clusters_per_blank:
                self._save()
        if lost.any():
            dead = np.zeros(data.n_events, dtype=bool)
            dead[event[starts[lost]]] = True
            data.kill(dead, "events pasted outside the blank's active area")

    def _rows_offset(self, u: np.ndarray, rows_active: int, index_in_blank: np.ndarray) -> np.ndarray:
        """Row offset t in [0, rows_active) of each paste."""
        if self.row_cls_dist_fx == "uniform":
            t = u
        elif self.row_cls_dist_fx == "linear":
            t = np.sqrt(u)
        else:
            m = _COMPTON_RATIO
            v = np.sqrt(1.0 - u * (1.0 - 1.0 / m**2))
            t = (m * v - 1.0) / (m - 1.0)
            uniform = index_in_blank < (self.clusters_per_blank_texp or 0)
            t = np.where(uniform, u, t)
        return np.minimum(t * rows_active, rows_active - 1e-9)

    def _paste(self, data: SimEvents, signal: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Paste collections into the current blank; return which collections lost all their pixels."""
        blank = self._blank
        assert blank is not None
        pixels = data.pixels
        e2ev = float(data.detector.e2eV)
        n = starts.size
        owner = np.repeat(np.arange(n), counts)
        idx = signal[
            np.repeat(starts, counts) + (np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts))
        ]
        row = pixels["row"][idx].astype(np.int64)
        col = pixels["col"][idx].astype(np.int64)
        edep = pixels["edep"][idx].astype(np.float64)
        first = idx[np.cumsum(counts) - counts]
        event_ids = data.event_ids[pixels["event"][first]]
        ccds = pixels["ccd"][first]
        index_in_blank = blank.count + np.arange(n)
        m = blank.margins
        nrows, ncols = blank.image.shape
        row_lo, row_hi = m["prescan_rows"], nrows - m["overscan_rows"]
        col_lo, col_hi = m["prescan_cols"], ncols - m["overscan_cols"]
        if row_hi <= row_lo or col_hi <= col_lo:
            raise ProcessError(f"{self.name}: blank {blank.path.name} has no active area after prescan/overscan")
        rmax = np.maximum.reduceat(row, np.cumsum(counts) - counts)
        cmin = np.minimum.reduceat(col, np.cumsum(counts) - counts)
        cmax = np.maximum.reduceat(col, np.cumsum(counts) - counts)
        t = self._rows_offset(data.rng.uniform(f"{self.name}/row", event_ids, ccds), row_hi - row_lo, index_in_blank)
        top = row_lo + t.astype(np.int64)
        free = np.maximum(col_hi - col_lo - (cmax - cmin + 1), 0) + 1
        left = col_lo + np.minimum(
            (data.rng.uniform(f"{self.name}/col", event_ids, ccds) * free).astype(np.int64), free - 1
        )
        new_row = row - rmax[owner] + top[owner]
        new_col = col - cmin[owner] + left[owner]
        inside = (new_row >= row_lo) & (new_row < row_hi) & (new_col >= col_lo) & (new_col < col_hi)
        data.count("pasted pixels outside the blank's active area (dropped)", int((~inside).sum()))
        electrons = edep / e2ev if self.signal == "energy" else pixels["charge"][idx].astype(np.float64)
        if self._quadratic():
            adu = np.rint(0.4088 + 5.177 * electrons + 7.85e-6 * electrons**2)
        else:
            adu = electrons * blank.gain
        r, c, o = new_row[inside], new_col[inside], owner[inside]
        np.add.at(blank.image, (r, c), adu[inside])
        saturation = data.results.get("PixelSaturation", {}).get("saturation_eV")
        if saturation is not None:
            level = saturation / e2ev * blank.gain
            blank.image[r, c] = np.minimum(blank.image[r, c], level)
        np.add.at(blank.mct, (r, c), edep[inside])
        paste_id = (index_in_blank + 1).astype(np.int32)
        np.maximum.at(blank.mct_id, (r, c), paste_id[o])
        total = np.bincount(o, weights=edep[inside], minlength=n)
        last = blank.mct_id[r, c] == paste_id[o]
        blank.mct_emct[r[last], c[last]] = total[o[last]]
        pasted = np.flatnonzero(inside)
        pixels["paste_row"][idx[pasted]] = r
        pixels["paste_col"][idx[pasted]] = c
        pixels["paste_adu"][idx[pasted]] = adu[inside]
        pixels["paste_image"][idx[pasted]] = blank.number
        q = electrons[inside]
        npix = np.bincount(o, minlength=n)
        charge = np.bincount(o, weights=q, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            centre_r = np.bincount(o, weights=q * (r + 1.0), minlength=n) / charge
            centre_c = np.bincount(o, weights=q * (c + 1.0), minlength=n) / charge
        adu_sum = np.bincount(o, weights=adu[inside], minlength=n)
        dropped = np.bincount(owner[~inside], minlength=n)
        for i in range(n):
            blank.truth.append(
                {
                    "paste_id": int(paste_id[i]),
                    "event": int(event_ids[i]),
                    "ccd": int(ccds[i]),
                    "energy_eV": float(total[i]),
                    "electrons": float(charge[i]),
                    "adu": float(adu_sum[i]),
                    "row": float(centre_r[i]) if npix[i] else None,
                    "col": float(centre_c[i]) if npix[i] else None,
                    "npix": int(npix[i]),
                    "npix_dropped": int(dropped[i]),
                }
            )
        blank.count += n
        return npix == 0

    # --- output --------------------------------------------------------------------------------
    def _save(self) -> None:
        from astropy.io import fits

        from waders.io import atomic_path

        blank = self._blank
        if blank is None or blank.count == 0:
            self._blank = None
            return
        stem = blank.path.name.split(".fits")[0].removesuffix(".fz")
        out_dir = self._out_dir or Path(".")
        path = out_dir / f"{self.prefix}_{stem}_Ncls{blank.count}_{blank.number}.fits"
        header = fits.Header()
        for key, value in blank.header.items():
            if (
                key in _STRUCTURAL
                or key.startswith(("Z", "TTYPE", "TFORM"))
                or not isinstance(value, int | float | str)
            ):
                continue
            try:
                header[key if len(key) <= 8 else f"HIERARCH {key}"] = value
            except (ValueError, KeyError):
                continue
        for key in ("NDCMS", "NDCM", "NSAMP"):  # the pasted image is averaged over skips (as pysimdamicm's NDCMS=1)
            if key in header and str(header[key]).strip() != "1":
                header["NSKIPS"] = (header[key], "skips of the blank (averaged)")
                header[key] = 1
        events = {c["event"] for c in blank.truth}
        header["WSIM"] = (True, "simulated events pasted by waders sim")
        header["BLANKIMG"] = (blank.path.name[:68], "blank image")
        header["NMAX"] = (self.clusters_per_blank, "pastes per blank")
        header["NEVTS"] = (blank.count, "pastes in this image")
        header["CALIB"] = (blank.gain, "ADU per electron of the pasted signal")
        header["EV2ADU"] = (blank.gain / blank.e2ev, "ADU per eV of the pasted signal")
        header["E2EV"] = (blank.e2ev, "eV per electron")
        header["WCOMPTQ"] = (self._quadratic(), "compton quadratic ADU(n_e) conversion")
        if self._rng is not None:
            header["WSEED"] = (int(self._rng.seed), "random seed")
        hdus = fits.HDUList(
            [
                fits.PrimaryHDU(blank.image, header=header),
                fits.ImageHDU(blank.mct, name="MonteCarloTruth"),
                fits.ImageHDU(blank.mct_id, name="MCT_ID"),
                fits.ImageHDU(np.where(blank.mct_id > 0, blank.original, 0.0), name="MCT_ERAW"),
                fits.ImageHDU(blank.mct_emct, name="MCT_EMCT"),
            ]
        )
        with atomic_path(path) as tmp:
            hdus.writeto(tmp)
        truth = {
            "image": path.name,
            "blank": str(blank.path),
            "blank_number": blank.number,
            "calibration_adu_per_e": blank.gain,
            "compton_quadratic": self._quadratic(),
            "n_events": len(events),
            "n_pastes": blank.count,
            "coordinates": "file row/column, 1-based (as clustersRec pixels_y/pixels_x), charge-weighted",
            "pastes": blank.truth,
        }
        truth_path = path.with_name(f"{path.stem}.truth.json")
        with atomic_path(truth_path) as tmp:
            tmp.write_text(json.dumps(truth, indent=1))
        self._written += [str(path), str(truth_path)]
        log.info("%s: wrote %s (%d pastes)", self.name, path, blank.count)
        self._blank = None

    def finish(self, context: RunContext) -> dict[str, Any]:
        """Write the last, partial pasted image; return every file written."""
        self._save()
        written, self._written = self._written, []
        self._files, self._n_blanks, self._start = None, 0, 0
        if not written:
            return {}
        return {
            "images": [p for p in written if p.endswith(".fits")],
            "truth": [p for p in written if p.endswith(".json")],
        }
