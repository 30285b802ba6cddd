"""PixelizeSignal: histogram carriers (or deposits) into pixels with per-pixel statistics (spec C.6).

Pixel indices: ``col = floor(x / pitch_x) - shift_pixel_in_x``, ``row = floor(y / pitch_y) -
shift_pixel_in_y`` (x → columns, y → rows), kept when ``0 <= col < N_pixels_in_x`` and
``0 <= row < N_pixels_in_y`` (defaults: ``detector.ccd_shape`` = [rows, cols] and the
detector pixel pitch).  A position within 1e-9·(1 + x/pitch) pixel below a pixel edge
belongs to the pixel above it (so x = k·pitch lands in pixel k despite floating-point
round-off: 0.045 / 0.015 = 2.9999999999999996), and a negative coordinate is always
outside.

Input: ``data.carriers`` (after Diffusion: one entry per electron) or, without them, the
deposits of :meth:`SimEvents.flat_hits`.  Output (:meth:`SimEvents.set_pixels`, fields of
:data:`~waders.sim.events.PIXEL_FIELDS`), one entry per (event, ccd, row, col) with
signal:

``edep`` (eV)
    With carriers, every carrier carries ``E_hit / n_hit`` of its deposit (the deposit energy
    shared in proportion to the carriers, so Σ edep = energy of the deposits that made at
    least one carrier); without, the deposit energies.
``charge`` (e-)
    With carriers, their number; without, ``rint(edep / e2eV)`` of the pixel (no Fano
    fluctuation: use Diffusion with ``only_pair_creation`` for pair statistics without
    diffusion).
``z`` (mm), ``sigma_xy`` (mm)
    Mean over the pixel's carriers (or deposits), as pysimdamicm.
``time`` (s), ``std_time`` (s)
    Energy-weighted mean time; population standard deviation of the carriers' (deposits')
    times.
``pdg``
    Most frequent code among the carriers (deposits); ties go to the smallest code.
flags (int8 0/1)
    ``neutron`` (2112), ``gamma`` (22), ``alpha`` (1000020040), ``ion`` (> 1e9),
    ``electron`` (±11), ``silicon`` (a code of a silicon nucleus, 1000140280..1000140309).

Charge landing outside the CCD is dropped and counted: ``data.count("charge outside the
CCD (e-)", n)``, ``data.count("events with charge outside the CCD", n)`` and per event in
``data.results["PixelizeSignal"]["charge_outside_e"]`` (chunk order).  Events left
without any pixel are killed ("no pixel inside the CCD").

Implementation: carriers of one deposit are first counted per pixel with one ``bincount``
over the deposit's bounding box of pixels (exact, O(carriers), no sort of carriers); the
(deposit, pixel) entries are then ordered by (event, ccd, row, col, pdg) with one stable
sort (a packed int64 key, or ``np.lexsort`` when the key would overflow) and reduced with
``bincount``/``reduceat``.  No Python code runs per pixel or per event.

Deliberate differences from pysimdamicm
---------------------------------------
* The CCD is [0, N) pixels; pysimdamicm accepted one pixel beyond the upper edge.
* Coordinates in (-1, 0) pixel are outside; pysimdamicm's bin edges truncated them to 0 and
  then dropped them silently unless another coordinate was more negative.
* ``shift_pixel_in_x/y`` (pixels skipped, >= 0) are subtracted from the indices, so output
  pixels are 0-based in the active area; pysimdamicm kept the unshifted index and moved the
  acceptance window (identical for the default shift 0).
* ``time_img_pixel`` (time / img_exp_time) is not produced: the chunk container has no image
  windows.
* Charge outside the CCD is counted, not silently lost.
* ``silicon`` requires one step with a silicon code; pysimdamicm tested "some code >=
  1000140280" and "some code <= 1000140309" on possibly different steps (an alpha plus an
  iron recoil was "silicon") and required the most frequent code to be an ion.
* ``edep`` of a pixel is the deposited energy, not e2eV per carrier (which mixed the Fano
  fluctuation into the energy); the measured signal is ``charge`` (x e2eV).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from waders.core import Param
from waders.core.kinds import Float, Int, Optional
from waders.core.pipeline import RunContext

from .base import SimProcess
from .events import SimEvents

__all__ = ["PixelizeSignal", "pixel_index", "snapped_floor"]

_SNAP = 1e-9  # relative tolerance (in units of the quotient) of snapped_floor
_INT64_MAX = (1 << 63) - 1
_SILICON = (1000140280, 1000140309)


def snapped_floor(q: np.ndarray, tol: float = _SNAP) -> np.ndarray:
    """``floor(q + tol·(1 + |q|))``: a value within that distance below an integer gives the integer.

    Parameters
    ----------
    q : ndarray
        Quotients such as position / pitch or time / read time (e.g. 0.045 / 0.015 =
        2.9999999999999996 gives 3).
    tol : float
        Relative tolerance.

    Returns
    -------
    ndarray of int64
    """
    q = np.asarray(q, dtype=np.float64)
    work = np.abs(q)
    work *= tol
    work += tol
    work += q
    np.floor(work, out=work)
    return work.astype(np.int64)


def pixel_index(position: np.ndarray, pitch: float, shift: int = 0) -> np.ndarray:
    """Pixel index of positions (mm): ``floor(position / pitch) - shift``, snapped as :func:`snapped_floor`.

    Negative positions give indices below ``-shift`` (outside the CCD).
    """
    q = np.asarray(position, dtype=np.float64) / pitch
    if q.size and q.min() < 0:
        index = snapped_floor(q)
        index[(q < 0) & (index >= 0)] = -1  # snapping must not bring a negative position into the CCD
        return index - shift
    q *= 1.0 + _SNAP  # q >= 0: the same as snapped_floor, in fewer passes
    q += _SNAP
    np.floor(q, out=q)
    index = q.astype(np.int64)
    if shift:
        index -= shift
    return index


def _group_starts(key: np.ndarray) -> np.ndarray:
    """Boolean array: True where a run of equal (sorted) keys starts."""
    flags = np.empty(key.size, dtype=bool)
    if key.size:
        flags[0] = True
        np.not_equal(key[1:], key[:-1], out=flags[1:])
    return flags


class PixelizeSignal(SimProcess):
    """Collect carriers (or deposits) into CCD pixels: energy, charge, depth, time, particle flags."""

    name: ClassVar[str] = "PixelizeSignal"
    order: ClassVar[int] = 30

    shift_pixel_in_x = Param(0, Int(min=0), unit="pixel", doc="pixels skipped along x: col = floor(x/pitch) - shift")
    shift_pixel_in_y = Param(0, Int(min=0), unit="pixel", doc="pixels skipped along y: row = floor(y/pitch) - shift")
    N_pixels_in_x = Param(None, Optional(Int(min=1)), unit="pixel", doc="columns of the CCD (default: ccd_shape[1])")
    N_pixels_in_y = Param(None, Optional(Int(min=1)), unit="pixel", doc="rows of the CCD (default: ccd_shape[0])")
    pixel_size_in_x = Param(None, Optional(Float(min=0)), unit="mm", doc="pixel pitch along x (default: detector)")
    pixel_size_in_y = Param(None, Optional(Float(min=0)), unit="mm", doc="pixel pitch along y (default: detector)")

    def geometry(self, data: SimEvents) -> tuple[int, int, float, float]:
        """Columns, rows, pitch x and pitch y (mm) used for ``data``."""
        detector = data.detector
        rows, cols = detector.ccd_shape
        n_x = int(self.N_pixels_in_x if self.N_pixels_in_x is not None else cols)
        n_y = int(self.N_pixels_in_y if self.N_pixels_in_y is not None else rows)
        pitch_x = float(self.pixel_size_in_x or detector.ccd_pixel_size_x)
        pitch_y = float(self.pixel_size_in_y or detector.ccd_pixel_size_y)
        return n_x, n_y, pitch_x, pitch_y

    def run(self, data: SimEvents, context: RunContext) -> None:
        flat = data.flat_hits()
        n_x, n_y, pitch_x, pitch_y = self.geometry(data)
        if data.carriers is not None:
            items = self._carrier_items(data, flat, pitch_x, pitch_y)
        else:
            items = self._hit_items(data, flat, pitch_x, pitch_y)
        hit = items.pop("hit")
        event = flat["event"][hit]
        inside = (items["row"] >= 0) & (items["row"] < n_y) & (items["col"] >= 0) & (items["col"] < n_x)
        self._count_outside(data, event, items, ~inside)
        keep = np.flatnonzero(inside)
        hit, event = hit[keep], event[keep]
        items = {k: v[keep] for k, v in items.items()}
        pixels = self._reduce(data, flat, hit, event, items, n_x, n_y)
        data.set_pixels(pixels)
        has_pixel = np.bincount(pixels["event"], minlength=data.n_events) > 0
        data.kill(~has_pixel & ~data.killed, "no pixel inside the CCD")

    # ----------------------------------------------------------------------------------
    def _hit_items(self, data: SimEvents, flat: dict[str, np.ndarray], pitch_x: float, pitch_y: float) -> dict:
        use = np.flatnonzero(~data.killed[flat["event"]] & (flat["edep"] > 0))
        return {
            "hit": use,
            "row": pixel_index(flat["y"][use], pitch_y, self.shift_pixel_in_y),
            "col": pixel_index(flat["x"][use], pitch_x, self.shift_pixel_in_x),
            "count": np.ones(use.size, dtype=np.int64),
            "edep": flat["edep"][use].astype(np.float64),
            "sigma_sum": np.zeros(use.size),
        }

    def _carrier_items(self, data: SimEvents, flat: dict[str, np.ndarray], pitch_x: float, pitch_y: float) -> dict:
        """Carriers counted per (deposit, pixel), exactly, without sorting the carriers."""
        carriers = data.carriers
        assert carriers is not None
        hit = np.asarray(carriers["hit"])
        x, y, sigma = carriers["x"], carriers["y"], carriers.get("sigma_xy")
        if data.killed.any():
            sel = np.flatnonzero(~data.killed[carriers["event"]])
            hit, x, y = hit[sel], x[sel], y[sel]
            sigma = sigma[sel] if sigma is not None else None
        if hit.size > 1 and np.any(hit[1:] < hit[:-1]):  # Diffusion writes them ordered by hit
            order = np.argsort(hit, kind="stable")
            hit, x, y = hit[order], x[order], y[order]
            sigma = sigma[order] if sigma is not None else None
        n_carriers = hit.size
        if n_carriers == 0:
            none = np.zeros(0, dtype=np.int64)
            return {"hit": none, "row": none, "col": none, "count": none, "edep": np.zeros(0), "sigma_sum": np.zeros(0)}
        row = pixel_index(y, pitch_y, self.shift_pixel_in_y)
        col = pixel_index(x, pitch_x, self.shift_pixel_in_x)
        first = np.flatnonzero(_group_starts(hit))
        per_group = np.diff(np.append(first, n_carriers))
        group_hit = hit[first].astype(np.int64)
        row_min = np.minimum.reduceat(row, first)
        col_min = np.minimum.reduceat(col, first)
        height = np.maximum.reduceat(row, first) - row_min + 1
        width = np.maximum.reduceat(col, first) - col_min + 1
        sigma_w = None if sigma is None else np.asarray(sigma, dtype=np.float64)
        area_total = float(np.sum(height.astype(np.float64) * width.astype(np.float64)))
        if area_total < _INT64_MAX / 4:
            # cell of a carrier in the bounding box of its deposit, numbered after the boxes of the previous ones
            common = int(width.max())
            if float(np.sum(height.astype(np.float64))) * common <= 4 * n_carriers + 1024:
                width = np.full(width.size, common, dtype=np.int64)  # one width: one repeat less
            area = height * width
            base = np.cumsum(area) - area
            area_total = float(area.sum())
            key = row * common if (width == common).all() else row * np.repeat(width, per_group)
            key += col
            key += np.repeat(base - row_min * width - col_min, per_group)
            if area_total <= 4 * n_carriers + 1024:
                counts = np.bincount(key, minlength=int(area_total))
                cells = np.flatnonzero(counts)
                count = counts[cells]
                sigma_sum = None
                if sigma_w is not None:
                    sigma_sum = np.bincount(key, weights=sigma_w, minlength=int(area_total))[cells]
            else:
                order = np.argsort(key, kind="stable")
                starts = np.flatnonzero(_group_starts(key[order]))
                cells = key[order][starts]
                count = np.diff(np.append(starts, n_carriers))
                sigma_sum = np.add.reduceat(sigma_w[order], starts) if sigma_w is not None else None
            item_group = np.searchsorted(base, cells, side="right") - 1
            local = cells - base[item_group]
            item_row = row_min[item_group] + local // width[item_group]
            item_col = col_min[item_group] + local % width[item_group]
        else:  # absurd spreads: sort the carriers themselves
            group = np.repeat(np.arange(first.size), per_group)
            order = np.lexsort((col, row, group))
            starts = np.flatnonzero(_group_starts(group[order]) | _group_starts(row[order]) | _group_starts(col[order]))
            item_group = group[order][starts]
            item_row, item_col = row[order][starts], col[order][starts]
            count = np.diff(np.append(starts, n_carriers))
            sigma_sum = np.add.reduceat(sigma_w[order], starts) if sigma_w is not None else None
        item_hit = group_hit[item_group]
        edep = flat["edep"][item_hit] * (count / per_group[item_group])
        return {
            "hit": item_hit,
            "row": item_row,
            "col": item_col,
            "count": count.astype(np.int64),
            "edep": edep,
            "sigma_sum": sigma_sum if sigma_sum is not None else np.zeros(count.size),
        }

    # ----------------------------------------------------------------------------------
    def _count_outside(self, data: SimEvents, event: np.ndarray, items: dict, outside: np.ndarray) -> None:
        charge = items["count"] if data.carriers is not None else items["edep"] / data.detector.e2eV
        per_event = np.bincount(event[outside], weights=charge[outside], minlength=data.n_events)
        total = float(per_event.sum())
        data.count("charge outside the CCD (e-)", round(total))
        data.count("events with charge outside the CCD", int(np.count_nonzero(per_event)))
        data.results[self.name] = {"charge_outside_e": per_event}

    def _reduce(
        self,
        data: SimEvents,
        flat: dict[str, np.ndarray],
        hit: np.ndarray,
        event: np.ndarray,
        items: dict,
        n_x: int,
        n_y: int,
    ) -> dict[str, np.ndarray]:
        ccd = flat["ccd"][hit].astype(np.int64)
        pdg = flat["pdg"][hit].astype(np.int64)
        row, col = items["row"], items["col"]
        order = self._sort(event, ccd, row, col, pdg, data.n_events, n_x, n_y)
        event, ccd, row, col, pdg, hit = event[order], ccd[order], row[order], col[order], pdg[order], hit[order]
        count = items["count"][order]
        edep = items["edep"][order]
        sigma_sum = items["sigma_sum"][order]
        z = flat["z"][hit].astype(np.float64)
        t = flat["time"][hit].astype(np.float64)

        new_pixel = _group_starts(event) | _group_starts(ccd) | _group_starts(row) | _group_starts(col)
        pid = np.cumsum(new_pixel) - 1
        first = np.flatnonzero(new_pixel)
        n_pix = first.size
        weight = count.astype(np.float64)

        def total(values: np.ndarray) -> np.ndarray:
            return np.bincount(pid, weights=values, minlength=n_pix)

        e_pix = total(edep)
        n_pix_w = total(weight)
        safe_w = np.where(n_pix_w > 0, n_pix_w, 1.0)
        safe_e = np.where(e_pix > 0, e_pix, 1.0)
        t_mean = total(weight * t) / safe_w
        time = np.where(e_pix > 0, total(edep * t) / safe_e, t_mean)
        std_time = np.sqrt(np.maximum(total(weight * (t - t_mean[pid]) ** 2) / safe_w, 0.0))
        if data.carriers is not None:
            charge = np.add.reduceat(count, first) if n_pix else np.zeros(0, dtype=np.int64)
        else:
            charge = np.rint(e_pix / data.detector.e2eV).astype(np.int64)

        # most frequent pdg: runs of equal pdg inside a pixel (sorted by pdg), largest count, smallest code
        new_run = new_pixel | _group_starts(pdg)
        run_first = np.flatnonzero(new_run)
        run_pid = pid[run_first]
        run_pdg = pdg[run_first]
        run_count = np.add.reduceat(count, run_first) if run_first.size else np.zeros(0, dtype=np.int64)
        pixel_first_run = np.flatnonzero(new_pixel[run_first])
        best = np.maximum.reduceat(run_count, pixel_first_run) if n_pix else run_count
        candidate = np.flatnonzero(run_count == best[run_pid])
        chosen = candidate[_group_starts(run_pid[candidate])]
        pdg_pix = run_pdg[chosen]

        def flag(mask: np.ndarray) -> np.ndarray:
            if not n_pix:
                return np.zeros(0, dtype=np.int8)
            return np.maximum.reduceat(mask.astype(np.int8), pixel_first_run)

        pixels = {
            "event": event[first].astype(np.int64),
            "ccd": ccd[first],
            "row": row[first],
            "col": col[first],
            "edep": e_pix,
            "charge": charge.astype(np.int64),
            "z": total(weight * z) / safe_w,
            "time": time,
            "std_time": std_time,
            "pdg": pdg_pix,
            "sigma_xy": total(sigma_sum) / safe_w,
            "neutron": flag(run_pdg == 2112),
            "gamma": flag(run_pdg == 22),
            "alpha": flag(run_pdg == 1000020040),
            "ion": flag(run_pdg > 1_000_000_000),
            "electron": flag(np.abs(run_pdg) == 11),
            "silicon": flag((run_pdg >= _SILICON[0]) & (run_pdg <= _SILICON[1])),
        }
        signal = e_pix > 0
        if not signal.all():
            pixels = {k: v[signal] for k, v in pixels.items()}
        return pixels

    @staticmethod
    def _sort(
        event: np.ndarray,
        ccd: np.ndarray,
        row: np.ndarray,
        col: np.ndarray,
        pdg: np.ndarray,
        n_events: int,
        n_x: int,
        n_y: int,
    ) -> np.ndarray:
        """Stable order by (event, ccd, row, col, pdg): a packed int64 key when it fits, else lexsort."""
        if event.size == 0:
            return np.zeros(0, dtype=np.int64)
        ccd0 = int(ccd.min())
        n_ccd = int(ccd.max()) - ccd0 + 1
        pdg_values, pdg_code = np.unique(pdg, return_inverse=True)
        n_pdg = pdg_values.size
        if max(n_events, 1) * n_ccd * n_y * n_x * n_pdg <= _INT64_MAX:
            key = ((event.astype(np.int64) * n_ccd + (ccd - ccd0)) * n_y + row) * n_x + col
            key = key * n_pdg + pdg_code.ravel()
            return np.argsort(key, kind="stable")
        return np.lexsort((pdg, col, row, ccd, event))
