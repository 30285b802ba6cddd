"""CreateFitsImage: skipper images of simulated events, with a truth table (pysimdamicm C.13).

Simulated events are accumulated, ``n_events`` per image and CCD, at the pixels where
Geant4 put them (or at a uniformly drawn position, ``random_position``), and written as
a FITS image that ``waders ana`` reads like detector data:

* charge of a pixel = simulated electrons (``charge`` of :attr:`SimEvents.pixels
  <waders.sim.events.SimEvents.pixels>`) + dark current ``Poisson(darkcurrent x
  exp_time)`` (active pixels only);
* a sample = ``pedestal_adu + gain x charge + Normal(0, noise_adu)``, for every skip
  (``raw: true``, a raw multi-skip image of ``nskips`` samples per pixel) or once with
  ``noise_adu / sqrt(nskips)`` (an averaged image);
* one amplifier (``[prescan | active | overscan]``) or two (``amplifiers: 2``: the left
  half of the active columns read by L, the right half by U, mirrored in the file);
  prescan and overscan widths default to the detector section (``n_cols_prescan``,
  ``n_cols_overscan``).

This image-level noise is drawn over the **whole** image and is independent of the sparse
per-event noise of DarkCurrent/ElectronicNoise (which only feeds the event-level
reconstruction).  Raw samples are generated lazily by row blocks
(:class:`SimulatedRawSamples`) with the counter RNG keyed by (image, amplifier,
``(row x columns + column) x skips + skip``), so images larger than memory are written block by block and are
reproducible from the seed.

Files: ``<output_dir>/<prefix>_image_<n>.fits`` (``n`` from 1; ``prefix`` defaults to
the stem of the Geant4 input), with the Monte-Carlo-truth HDUs ``MonteCarloTruth`` and
``MCT_ID`` that ``waders ana --mct`` reads (:mod:`waders.sim.truthhdus`), and next to each
``<prefix>_image_<n>.truth.json``: per
injected event its id, ``mct_id``, CCD, charge (e-), energy (eV), charge-weighted centre (row, col)
in file coordinates, 1-based like ``clustersRec``, number of pixels imaged and dropped;
plus the gain, noise, pedestal and dark current that were simulated.  The last, partial
image is written by :meth:`CreateFitsImage.finish`.

Deliberate differences from pysimdamicm
---------------------------------------
* Works with any noise mode (pysimdamicm needed full-image noise and failed in the
  default cropped mode, C.13 [BUG]); the image noise is its own (gain, pedestal, noise in
  ADU, dark current), not the event noise divided by ADC2eV.
* Writes raw multi-skip images (pysimdamicm wrote NDCMS = 1 averaged images only), two
  amplifiers, prescan/overscan, polarity inversion and integer sample types.
* One image series per CCD; a truth table per image.
* ``blank_image`` (adding events to a real image) is PasteClusterProcess's job: setting it
  here is an error.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from waders.core import Param
from waders.core.errors import ConfigError
from waders.core.geometry import AmplifierGeometry, ImageGeometry
from waders.core.image import Amplifier, SkipperImage
from waders.core.kinds import Choice, Float, Int, Optional, Str
from waders.core.pipeline import RunContext

from .base import SimProcess
from .events import SimEvents
from .noise import poisson_from_uniform
from .random import CounterRNG
from .truthhdus import append_truth_hdus

__all__ = ["CreateFitsImage", "SimulatedRawSamples"]

log = logging.getLogger(__name__)


class SimulatedRawSamples:
    """Raw samples of one simulated amplifier, generated on demand by rows.

    ``samples[r, c, k] = pedestal + gain * (electrons[r, c] + DC[r, c]) + noise * N(0, 1)``
    with the dark current (active columns only) and the noise drawn from the counter RNG
    keyed by (image, amplifier, sample index).  Satisfies the
    :class:`~waders.core.image.RawSamples` protocol (``shape``, ``dtype``, row slicing).

    Parameters
    ----------
    rng : CounterRNG
        Random numbers.
    image_key, amp_index : int
        Keys of this image and amplifier.
    shape : (int, int, int)
        Rows, columns (readout order) and skips.
    active : (int, int)
        First and last + 1 active columns (readout order).
    rows, cols, electrons : ndarray
        Signal charge (e-) per pixel (readout order), sorted by row.
    pedestal, gain, noise, dark_current : float
        ADU, ADU/e-, ADU per sample, e- per active pixel.
    averaged : bool
        One value per pixel with noise ``noise / sqrt(skips)`` (shape (rows, cols, 1)).
    """

    def __init__(
        self,
        rng: CounterRNG,
        image_key: int,
        amp_index: int,
        shape: tuple[int, int, int],
        active: tuple[int, int],
        rows: np.ndarray,
        cols: np.ndarray,
        electrons: np.ndarray,
        *,
        pedestal: float,
        gain: float,
        noise: float,
        dark_current: float,
        averaged: bool = False,
    ) -> None:
        self.rng = rng
        self.keys = (int(image_key), int(amp_index))
        self.averaged = averaged
        self.nskips = int(shape[2])
        self._shape = (int(shape[0]), int(shape[1]), 1 if averaged else int(shape[2]))
        self.active = active
        order = np.argsort(rows, kind="stable")
        self.rows, self.cols, self.electrons = rows[order], cols[order], electrons[order]
        self.pedestal, self.gain, self.noise, self.dark_current = pedestal, gain, noise, dark_current

    @property
    def shape(self) -> tuple[int, int, int]:
        """(rows, cols, skips)."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """Samples are float64."""
        return np.dtype(np.float64)

    @property
    def ndim(self) -> int:
        """3."""
        return 3

    def charge(self, start: int, stop: int) -> np.ndarray:
        """Electrons (signal + dark current) of rows [start, stop), shape (rows, cols)."""
        nrows, ncols = stop - start, self._shape[1]
        q = np.zeros((nrows, ncols))
        lo, hi = self.active
        if self.dark_current > 0 and hi > lo:
            pixel = np.arange(start, stop)[:, None] * ncols + np.arange(lo, hi)[None, :]
            u = self.rng.uniform("CreateFitsImage/dark-current", *self.keys, pixel)
            q[:, lo:hi] = poisson_from_uniform(u, self.dark_current)
        a, b = np.searchsorted(self.rows, [start, stop])
        np.add.at(q, (self.rows[a:b] - start, self.cols[a:b]), self.electrons[a:b])
        return q

    def _block(self, start: int, stop: int) -> np.ndarray:
        q = self.charge(start, stop)
        ncols, nskips = self._shape[1], self._shape[2]
        pixel = np.arange(start * ncols, stop * ncols).reshape(stop - start, ncols, 1)  # row * ncols + col
        if self.averaged:
            z = self.rng.normal("CreateFitsImage/averaged-noise", *self.keys, pixel)
            sigma = self.noise / math.sqrt(self.nskips)
        else:
            z = self.rng.normal("CreateFitsImage/noise", *self.keys, pixel * nskips + np.arange(nskips))
            sigma = self.noise
        return self.pedestal + self.gain * q[:, :, None] + sigma * z

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        nrows = self._shape[0]
        if isinstance(first, slice):
            start, stop, step = first.indices(nrows)
            if step == 1:
                block = self._block(start, max(start, stop))
                return block[(slice(None), *rest)] if rest else block
            first = np.arange(nrows)[first]
        if isinstance(first, int | np.integer):
            i = int(first) + (nrows if first < 0 else 0)
            block = self._block(i, i + 1)[0]
            return block[rest] if rest else block
        wanted = np.arange(nrows)[first]
        lo, hi = int(wanted.min(initial=0)), int(wanted.max(initial=-1)) + 1
        block = self._block(lo, max(lo, hi))[wanted - lo]
        return block[(slice(None), *rest)] if rest else block

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out.astype(dtype) if dtype is not None else out

    def __len__(self) -> int:
        return self._shape[0]


@dataclass
class _Series:
    """Events waiting for the next image of one CCD (pixels in CCD coordinates)."""

    events: list[np.ndarray] = field(default_factory=list)  # Geant4 event id per collection
    shifts: list[np.ndarray] = field(default_factory=list)  # (row, col) shift per collection
    owner: list[np.ndarray] = field(default_factory=list)  # collection (within the chunk part) per pixel
    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    electrons: list[np.ndarray] = field(default_factory=list)
    edep: list[np.ndarray] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(sum(e.size for e in self.events))

    def take(self, n: int) -> dict[str, np.ndarray]:
        """Remove the first ``n`` collections and return them (owner renumbered 0..n-1)."""
        offsets = np.cumsum([0] + [e.size for e in self.events])
        joined = {
            "event": np.concatenate(self.events),
            "shift": np.concatenate(self.shifts),
            "owner": np.concatenate([o + off for o, off in zip(self.owner, offsets[:-1], strict=True)]),
            "row": np.concatenate(self.rows),
            "col": np.concatenate(self.cols),
            "electrons": np.concatenate(self.electrons),
            "edep": np.concatenate(self.edep),
        }
        first = joined["owner"] < n
        out = {k: joined[k][:n] for k in ("event", "shift")}
        out.update({k: joined[k][first] for k in ("owner", "row", "col", "electrons", "edep")})
        rest = ~first
        self.events = [joined["event"][n:]]
        self.shifts = [joined["shift"][n:]]
        self.owner = [joined["owner"][rest] - n]
        for name in ("rows", "cols", "electrons", "edep"):
            key = {"rows": "row", "cols": "col"}.get(name, name)
            setattr(self, name, [joined[key][rest]])
        return out


class CreateFitsImage(SimProcess):
    """Write skipper images (raw multi-skip or averaged) of the simulated events, with a truth table."""

    name: ClassVar[str] = "CreateFitsImage"
    order: ClassVar[int] = 200

    n_events = Param(100, Int(min=1), doc="events per image")
    random_position = Param(False, doc="place each event at a uniformly drawn position instead of its Geant4 one")
    raw = Param(False, doc="write raw multi-skip images (true) or images averaged over skips (false)")
    nskips = Param(1, Int(min=1), doc="samples per pixel")
    noise_adu = Param(2.5, Float(min=0), unit="ADU", doc="readout noise of one sample")
    pedestal_adu = Param(1000.0, Float(), unit="ADU", doc="pedestal (baseline) of the samples")
    gain = Param(10.0, Float(positive=True), unit="ADU/e", doc="ADU per electron")
    amplifiers = Param(1, Int(min=1, max=2), doc="1: one amplifier; 2: L and U (mirrored) read half the columns each")
    prescan = Param(None, Optional(Int(min=0)), unit="pixel", doc="serial prescan columns (default: detector)")
    overscan = Param(None, Optional(Int(min=0)), unit="pixel", doc="serial overscan columns (default: detector)")
    n_rows = Param(None, Optional(Int(min=1)), unit="pixel", doc="rows of the image (default: detector ccd_shape)")
    n_cols = Param(None, Optional(Int(min=1)), unit="pixel", doc="active columns (default: detector ccd_shape)")
    darkcurrent = Param(0.001, Float(min=0), unit="e/pixel/day", doc="dark current of the image")
    exp_time = Param(8.0 / 24.0, Float(min=0), unit="day", doc="exposure time of the image")
    invert_polarity = Param(None, Optional(Float()), unit="ADU", doc="write value - sample (inverted DAQ polarity)")
    dtype = Param("float32", Choice(["float32", "float64", "int32", "int16", "uint16", "uint32"]), doc="sample type")
    prefix = Param(None, Optional(Str()), doc="file-name prefix (default: the stem of the Geant4 input)")
    ccd = Param(None, Optional(Int()), doc="image only this CCD id (default: one image series per CCD)")
    blank_image = Param(None, Optional(Str()), doc="not supported: use PasteClusterProcess")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._series: dict[int, _Series] = {}
        self._counter: dict[str, int] = {}
        self._written: list[str] = []
        self._rng: CounterRNG | None = None

    # --- geometry --------------------------------------------------------------------
    def _layout(self, context: RunContext) -> dict[str, int]:
        det = context.detector
        n_rows = self.n_rows if self.n_rows is not None else int(det.ccd_shape[0])
        n_cols = self.n_cols if self.n_cols is not None else int(det.ccd_shape[1])
        pre = self.prescan if self.prescan is not None else int(det.n_cols_prescan)
        ovs = self.overscan if self.overscan is not None else int(det.n_cols_overscan)
        if self.amplifiers == 2 and n_cols % 2:
            raise ConfigError(
                f"{self.name}: {n_cols} active columns cannot be split between two amplifiers",
                hint="use an even n_cols",
            )
        return {"n_rows": int(n_rows), "n_cols": int(n_cols), "prescan": int(pre), "overscan": int(ovs)}

    def _geometries(self, layout: dict[str, int]) -> list[AmplifierGeometry]:
        pre, ovs, n_cols = layout["prescan"], layout["overscan"], layout["n_cols"]
        if self.amplifiers == 1:
            return [AmplifierGeometry("L", layout["n_rows"], pre + n_cols + ovs, pre, ovs, extension=0)]
        width = pre + n_cols // 2 + ovs
        return [
            AmplifierGeometry("L", layout["n_rows"], width, pre, ovs, extension=0),
            AmplifierGeometry("U", layout["n_rows"], width, pre, ovs, mirrored=True, col_offset=width, extension=0),
        ]

    def _readout(self, layout: dict[str, int], col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Amplifier index and readout column of CCD columns."""
        pre, n_cols = layout["prescan"], layout["n_cols"]
        if self.amplifiers == 1:
            return np.zeros(col.size, dtype=np.int64), pre + col
        upper = col >= n_cols // 2
        return upper.astype(np.int64), np.where(upper, pre + (n_cols - 1 - col), pre + col)

    # --- run ---------------------------------------------------------------------------
    def run(self, data: SimEvents, context: RunContext) -> None:
        if self.blank_image is not None:
            raise ConfigError(
                f"{self.name}.blank_image is not supported",
                hint="use PasteClusterProcess (blank_dir) to add simulated events to real blank images",
            )
        if data.pixels is None:
            raise ConfigError(f"{self.name} needs PixelizeSignal earlier in the chain")
        self._rng = data.rng
        layout = self._layout(context)
        pixels = data.pixels
        keep = (pixels["edep"] > 0) & ~data.killed[pixels["event"]]
        if self.ccd is not None:
            keep &= pixels["ccd"] == self.ccd
        pix = {k: pixels[k][keep] for k in ("event", "ccd", "row", "col", "edep")}
        pix["electrons"] = (
            pixels["charge"][keep].astype(np.float64) if "charge" in pixels else pix["edep"] / data.detector.e2eV
        )
        for ccd in np.unique(pix["ccd"]):
            mine = pix["ccd"] == ccd
            self._add(data, layout, int(ccd), {k: v[mine] for k, v in pix.items()}, context)

    def _add(
        self, data: SimEvents, layout: dict[str, int], ccd: int, pix: dict[str, np.ndarray], context: RunContext
    ) -> None:
        event = pix["event"]
        change = np.flatnonzero(np.diff(event)) + 1
        starts = np.concatenate([[0], change]).astype(np.int64)
        counts = np.diff(np.concatenate([starts, [event.size]]))
        owner = np.repeat(np.arange(starts.size), counts)
        event_ids = data.event_ids[event[starts]]
        shift = np.zeros((starts.size, 2), dtype=np.int64)
        if self.random_position:
            rmin, rmax = np.minimum.reduceat(pix["row"], starts), np.maximum.reduceat(pix["row"], starts)
            cmin, cmax = np.minimum.reduceat(pix["col"], starts), np.maximum.reduceat(pix["col"], starts)
            free_r = np.maximum(layout["n_rows"] - (rmax - rmin + 1), 0) + 1
            free_c = np.maximum(layout["n_cols"] - (cmax - cmin + 1), 0) + 1
            u_r = data.rng.uniform(f"{self.name}/row", event_ids, ccd)
            u_c = data.rng.uniform(f"{self.name}/col", event_ids, ccd)
            shift[:, 0] = np.minimum((u_r * free_r).astype(np.int64), free_r - 1) - rmin
            shift[:, 1] = np.minimum((u_c * free_c).astype(np.int64), free_c - 1) - cmin
        rows = pix["row"].astype(np.int64) + shift[owner, 0]
        cols = pix["col"].astype(np.int64) + shift[owner, 1]
        outside = (rows < 0) | (rows >= layout["n_rows"]) | (cols < 0) | (cols >= layout["n_cols"])
        data.count("pixels outside the simulated image (not imaged)", int(outside.sum()))
        series = self._series.setdefault(ccd, _Series())
        series.events.append(event_ids)
        series.shifts.append(shift)
        series.owner.append(owner)
        series.rows.append(rows)
        series.cols.append(cols)
        series.electrons.append(pix["electrons"])
        series.edep.append(pix["edep"].astype(np.float64))
        while series.n >= self.n_events:
            self._write(context, layout, ccd, series.take(self.n_events), data)

    # --- output ------------------------------------------------------------------------
    def _name(self, context: RunContext) -> str:
        if self.prefix is not None:
            return self.prefix
        source = context.options.get("input")
        return Path(str(source)).stem if source else "waders_sim"

    def _write(
        self,
        context: RunContext,
        layout: dict[str, int],
        ccd: int,
        batch: dict[str, np.ndarray],
        data: SimEvents | None = None,
    ) -> None:
        rng = self._rng or CounterRNG(int(context.seed or 0))
        prefix = self._name(context)
        number = self._counter.get(prefix, 0) + 1
        self._counter[prefix] = number
        out_dir = Path(context.output_dir or ".")
        path = out_dir / f"{prefix}_image_{number}.fits"
        row, col = batch["row"], batch["col"]
        inside = (row >= 0) & (row < layout["n_rows"]) & (col >= 0) & (col < layout["n_cols"])
        geometries = self._geometries(layout)
        amp_index, readout_col = self._readout(layout, col)
        file_col = np.empty(col.size, dtype=np.int64)
        for i, geometry in enumerate(geometries):
            sel = amp_index == i
            file_col[sel] = geometry.to_file_columns(readout_col[sel])
        lam = float(self.darkcurrent * self.exp_time)
        amplifiers = {}
        for i, geometry in enumerate(geometries):
            sel = inside & (amp_index == i)
            key = row[sel] * geometry.ncols + readout_col[sel]
            unique, inverse = np.unique(key, return_inverse=True)
            electrons = np.bincount(inverse, weights=batch["electrons"][sel], minlength=unique.size)
            samples = SimulatedRawSamples(
                rng,
                number + 1_000_003 * _stable(prefix),
                i,
                (geometry.nrows, geometry.ncols, self.nskips),
                (geometry.prescan_cols, geometry.ncols - geometry.overscan_cols),
                unique // geometry.ncols,
                unique % geometry.ncols,
                electrons,
                pedestal=self.pedestal_adu,
                gain=self.gain,
                noise=self.noise_adu,
                dark_current=lam,
                averaged=not self.raw,
            )
            amp = Amplifier(geometry)
            if self.raw:
                amp.raw = samples
            else:
                step = max(1, 2_000_000 // geometry.ncols)
                amp.set(
                    "mean_compressed",
                    np.concatenate([samples[a : a + step][:, :, 0] for a in range(0, geometry.nrows, step)]),
                )
            amplifiers[geometry.name] = amp
        image_geometry = ImageGeometry(
            {g.name: g for g in geometries},
            nskips=self.nskips if self.raw else 1,
            averaged=not self.raw,
            nskips_averaged=self.nskips,
            exposure_time=self.exp_time,
            layout="two-amplifier" if self.amplifiers == 2 else "single",
        )
        image = SkipperImage(amplifiers, image_geometry)
        cards = {
            "WSIM": (True, "simulated by waders sim (CreateFitsImage)"),
            "INFILE": (str(context.options.get("input", "")), "Geant4 input"),
            "NEVTS": (int(batch["event"].size), "simulated events in the image"),
            "CCDID": (int(ccd), "Geant4 CCD id"),
            "DC": (lam, "dark current (e-/pixel)"),
            "TEXP": (self.exp_time, "exposure (s)"),
            "PED": (self.pedestal_adu, "pedestal (ADU)"),
            "SIGMA": (self.noise_adu, "readout noise per sample (ADU)"),
            "SIMGAIN": (self.gain, "gain (ADU/e-)"),
            "WSEED": (int(rng.seed), "random seed"),
        }
        from waders.io import atomic_path, write_averaged_image, write_raw_image

        if self.raw:
            block_rows = max(1, 4_000_000 // (sum(g.ncols for g in geometries) * self.nskips))
            write_raw_image(
                path,
                image,
                dtype=self.dtype,
                header=cards,
                invert_polarity=self.invert_polarity,
                block_rows=block_rows,
            )
        else:
            write_averaged_image(path, image, header=cards)
        shape = (layout["n_rows"], max(g.col_offset + g.ncols for g in geometries))
        append_truth_hdus(path, shape, batch["row"][inside], file_col[inside], batch["edep"][inside],
                          batch["owner"][inside] + 1)  # fmt: skip
        truth = self._truth(batch, inside, file_col, path, ccd, layout, lam, data)
        truth_path = path.with_name(f"{path.stem}.truth.json")
        with atomic_path(truth_path) as tmp:
            tmp.write_text(json.dumps(truth, indent=1))
        self._written += [str(path), str(truth_path)]
        log.info("%s: wrote %s (%d events)", self.name, path, batch["event"].size)

    def _truth(
        self,
        batch: dict[str, np.ndarray],
        inside: np.ndarray,
        file_col: np.ndarray,
        path: Path,
        ccd: int,
        layout: dict[str, int],
        lam: float,
        data: SimEvents | None,
    ) -> dict[str, Any]:
        n = batch["event"].size
        owner = batch["owner"][inside]
        q = batch["electrons"][inside]
        weight = np.where(q > 0, q, batch["edep"][inside])
        charge = np.bincount(owner, weights=q, minlength=n)
        energy = np.bincount(owner, weights=batch["edep"][inside], minlength=n)
        w_sum = np.bincount(owner, weights=weight, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            row = np.bincount(owner, weights=weight * (batch["row"][inside] + 1.0), minlength=n) / w_sum
            col = np.bincount(owner, weights=weight * (file_col[inside] + 1.0), minlength=n) / w_sum
        npix = np.bincount(owner, minlength=n)
        n_out = np.bincount(batch["owner"][~inside], minlength=n)
        events = [
            {
                "event": int(batch["event"][i]),
                "mct_id": i + 1,
                "ccd": int(ccd),
                "charge_e": float(charge[i]),
                "energy_eV": float(energy[i]),
                "row": None if not math.isfinite(row[i]) else float(row[i]),
                "col": None if not math.isfinite(col[i]) else float(col[i]),
                "npix": int(npix[i]),
                "npix_outside": int(n_out[i]),
                "shift_row": int(batch["shift"][i, 0]),
                "shift_col": int(batch["shift"][i, 1]),
            }
            for i in range(n)
        ]
        return {
            "image": path.name,
            "ccd": int(ccd),
            "n_events": int(n),
            "raw": bool(self.raw),
            "nskips": int(self.nskips),
            "amplifiers": int(self.amplifiers),
            **layout,
            "gain_adu_per_e": self.gain,
            "noise_adu_per_sample": self.noise_adu,
            "noise_e_per_pixel": self.noise_adu / math.sqrt(self.nskips) / self.gain if self.gain else None,
            "pedestal_adu": self.pedestal_adu,
            "dark_current_e_per_pixel": lam,
            "exposure_s": self.exp_time,
            "e2eV": None if data is None else float(data.detector.e2eV),
            "coordinates": "file row/column, 1-based (as clustersRec pixels_y/pixels_x), charge-weighted",
            "truth_hdus": "MonteCarloTruth (deposited energy per pixel, eV), MCT_ID (mct_id of the pixel's event)",
            "events": events,
        }

    def finish(self, context: RunContext) -> dict[str, Any]:
        """Write the last, partial image of every CCD; return every file written."""
        if self._series:
            layout = self._layout(context)
            for ccd in sorted(self._series):
                series = self._series[ccd]
                if series.n:
                    self._write(context, layout, ccd, series.take(series.n))
        written, self._written = self._written, []
        self._series = {}
        self._counter = {}
        if not written:
            return {}
        return {
            "images": [p for p in written if p.endswith(".fits")],
            "truth": [p for p in written if p.endswith(".json")],
        }


def _stable(text: str) -> int:
    """A small integer from a string, the same in every Python process."""
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:3], "little")
