"""Diffusion: electron-hole pair creation and transverse diffusion of every carrier (spec C.3, C.4).

For every deposit (x, y, z, E) of the chunk (z: depth from the collecting surface):

1. pair creation (:mod:`waders.sim.pairs`): ``model = "gauss"`` draws
   n = round(Normal(E/e2eV, sqrt(F·E/e2eV))) per deposit; ``"karthik"`` draws the total of
   every (event, CCD) collection from the 100 K table (<= 50 eV) or the discretised Fano
   Gaussian and shares it among the deposits;
2. partial charge collection (``apply_pcc``): a carrier created at depth z survives with
   probability eps(z), linear in the table of spec C.3 (eps = 1 deeper than 7.5 µm from the
   back surface z = ccd_thickness, 0 beyond it);
3. transverse diffusion: sigma²(z) = -A·ln(1 - B·(z - z_offset)) for z > z_offset (0 otherwise),
   times the energy term sigma ← sigma·(alpha0 + beta·E) with beta = alpha·pitch_x / sigma(z_max); or, with
   ``repulsion``, sigma read from an (energy, depth) map; every carrier is displaced by
   independent Normal(0, sigma) steps in x and y (``only_pair_creation``: no displacement).

Output: :attr:`SimEvents.carriers <waders.sim.events.SimEvents>`, one entry per electron:
``event`` (int32, chunk index), ``hit`` (flat hit index of :meth:`SimEvents.flat_hits`),
``x``, ``y`` (float64, mm, after diffusion) and ``sigma_xy`` (float32, mm).  Carriers are
ordered by hit.  Events without any carrier are killed ("no electron-hole pair created").
``data.results["Diffusion"]`` holds ``n_carriers`` and ``n_lost_pcc``.

Random numbers (counter-based, :class:`~waders.sim.random.CounterRNG`): pair numbers keyed
by (event id, hit index in the event) or (event id, CCD id); the displacement of carrier k
of an event (k counts the event's carriers before partial collection) by (event id, k),
packed into the single key event_id·2^32 + k when both fit in 32 bits (one hash round
less; otherwise the two keys).  One 64-bit draw gives two 32-bit uniforms that Box-Muller
turns into the x and y steps, in float32 (a quarter of the hashing of two ``normal()``
calls and cheap transcendental functions; relative error of a step < 1e-6, radius bounded
at 6.7 sigma, probability 2e-10).  Carriers are generated in blocks of about 4 million.

Deliberate differences from pysimdamicm
---------------------------------------
* **Energy term and the unit of ``alpha``.**  pysimdamicm computes
  beta = alpha·(pixel size in mm x 1e-3)/sigma(z_max) with sigma in mm: with ``alpha`` in pixel/eVee,
  as documented, that is 1000 times smaller than the documented
  sigma(z,E) = sigma(z,0)·(alpha0 + alpha·E/sigma(z_max,0)).  Read with the 1e-3 as keV→eV, the code is the
  documented formula with ``alpha`` in **pixel/keVee**, which is how waders declares it:
  beta = alpha[pixel/eV]·pitch_x/sigma(z_max) in consistent internal units.  The numbers of
  existing configurations (``alpha: 5.97e-5``) therefore give pysimdamicm's simulations
  (+0.6 % of sigma at 100 keV, the size of DAMIC's measured beta ≈ 1e-4/keV); the literal
  pixel/eVee reading would widen 10 keV clusters by 64 %.  A value with a unit string
  (``"5.97e-5 pixel/eVee"``) is converted as written.  The pixel pitch is
  ``detector.ccd_pixel_size_x``.
* **Depths beyond 1/B** (where sigma² = -A·ln(1 - B·(z - z_offset)) is infinite or undefined)
  raise a :class:`~waders.core.errors.DataError` naming the depth; pysimdamicm meant to
  replace such variances by the pixel size but referenced an undefined name.  With the
  default B, 1/B = 1129 µm, beyond any sensor; the driver drops hits outside the thickness.
* **Partial charge collection** thins carriers binomially (each survives with probability
  eps(z)) instead of round(n·eps): rounding always lost a single electron where eps < 0.5 and
  biased the collected charge.  ``pcc_debug`` (printouts) is accepted and ignored.
* Negative pair draws give 0 pairs (pysimdamicm crashed).
* ``model`` must be ``"gauss"`` or ``"karthik"`` (pysimdamicm took any other string as karthik).
* ``repulsion`` without a readable ``sigma_map_file`` is a configuration error (pysimdamicm
  printed a warning and silently switched repulsion off).  The map is CSV/whitespace text
  (first row: a label, then depths in m; every other row: energy in keV, then sigma in µm), or
  Excel when pandas and openpyxl are installed; relative names are looked up in the
  working directory, then in the package data folder.  Bilinear interpolation with linear
  extrapolation, as pysimdamicm's ``RegularGridInterpolator(fill_value=None)``; negative
  extrapolated sigma are set to 0.
* pysimdamicm gave every carrier ``Edep = e2eV``; here carriers point to their deposit,
  and PixelizeSignal shares the deposit energy among its carriers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from waders.core import Param
from waders.core.errors import ConfigError, DataError
from waders.core.kinds import Choice, Float, Optional, Str
from waders.core.pipeline import RunContext

from .base import SimProcess
from .events import SimEvents
from .pairs import gauss_pairs, karthik_pairs

__all__ = ["PCC_EPSILON", "Diffusion", "pcc_efficiency"]

#: Partial-charge-collection efficiency at depths thickness - 0, 0.5, ..., 7.5 µm (spec C.3).
PCC_EPSILON = np.array(
    [
        0.00781727,
        0.027572,
        0.0789126,
        0.157685,
        0.247863,
        0.34214,
        0.437597,
        0.533334,
        0.629258,
        0.725383,
        0.821692,
        0.918136,
        0.991682,
        0.999804,
        0.999997,
        1.0,
    ]
)
_PCC_STEP = 0.5e-3  # mm
_BLOCK = 1 << 22  # carriers generated at once
_TWO32 = float(1 << 32)
_LOW32 = np.uint64(0xFFFFFFFF)


def pcc_efficiency(z: np.ndarray, thickness: float) -> np.ndarray:
    """Partial-charge-collection efficiency eps(z) (z and thickness in mm).

    Linear interpolation in :data:`PCC_EPSILON` at depths thickness - k·0.5 µm; 1 deeper
    inside the sensor, 0 beyond the back surface.
    """
    depths = thickness - _PCC_STEP * np.arange(PCC_EPSILON.size)[::-1]
    return np.interp(z, depths, PCC_EPSILON[::-1], left=1.0, right=0.0)


def _read_sigma_map(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies (keV), depths (m) and sigma (µm) of a repulsion map."""
    if path.suffix.lower() in (".xlsx", ".xls"):
        try:
            import pandas as pd

            frame = pd.read_excel(path, index_col=0)
        except ImportError as err:
            raise ConfigError(
                f"Diffusion.sigma_map_file {path}: reading Excel needs pandas and openpyxl ({err})",
                hint="export the map as CSV (first row: depths in m; first column: energies in keV)",
            ) from None
        return (
            frame.index.to_numpy(dtype=float),
            frame.columns.to_numpy(dtype=float),
            frame.to_numpy(dtype=float),
        )
    text = path.read_text()
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append(line.replace(";", ",").replace(",", " ").split())
    if len(rows) < 2:
        raise ValueError("expected a header row of depths and at least one row of energy and sigma values")
    header = rows[0]
    depths = np.array([float(v) for v in (header[1:] if len(header) == len(rows[1]) else header)])
    energies = np.array([float(r[0]) for r in rows[1:]])
    sigma = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    return energies, depths, sigma


def _bilinear(grid_a: np.ndarray, grid_b: np.ndarray, values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bilinear interpolation on a regular grid, linear extrapolation outside it."""

    def weights(grid: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if grid.size == 1:
            return np.zeros(v.shape, dtype=np.int64), np.zeros(v.shape)
        i = np.clip(np.searchsorted(grid, v) - 1, 0, grid.size - 2)
        return i, (v - grid[i]) / (grid[i + 1] - grid[i])

    ia, ta = weights(grid_a, a)
    ib, tb = weights(grid_b, b)
    ja = np.minimum(ia + 1, grid_a.size - 1)
    jb = np.minimum(ib + 1, grid_b.size - 1)
    return (
        values[ia, ib] * (1 - ta) * (1 - tb)
        + values[ja, ib] * ta * (1 - tb)
        + values[ia, jb] * (1 - ta) * tb
        + values[ja, jb] * ta * tb
    )


class Diffusion(SimProcess):
    """Create electron-hole pairs of every deposit and diffuse each carrier to the pixel plane."""

    name: ClassVar[str] = "Diffusion"
    order: ClassVar[int] = 10

    model = Param(
        "gauss",
        Choice(["gauss", "karthik"]),
        doc="pair creation: gauss (Fano per deposit) or karthik (p100K table per collection, <= 50 eV)",
    )
    A = Param(216.2, Float(min=0), unit="um*um", doc="diffusion amplitude of sigma^2 = -A ln(1 - B (z - z_offset))")
    B = Param(0.000886, Float(min=0), unit="1/um", doc="diffusion shape of sigma^2 = -A ln(1 - B (z - z_offset))")
    z_offset = Param(0.0, Float(), unit="um", doc="depth below which there is no diffusion")
    fanofactor = Param(0.129, Float(min=0), doc="Fano factor F of pair creation")
    alpha = Param(
        5.97e-6,
        Float(min=0),
        unit="pixel/keVee",
        doc="energy term: sigma *= alpha0 + alpha*E*pitch/sigma(z_max) (pysimdamicm's numbers; see module doc)",
    )
    alpha0 = Param(1.0, Float(min=0), doc="energy-independent factor of sigma")
    z_max = Param(669.0, Float(), unit="um", doc="depth of the sigma(z_max) normalising the energy term")
    only_pair_creation = Param(False, doc="create pairs without diffusing them (carriers at the deposit)")
    apply_pcc = Param(False, doc="partial charge collection within 7.5 um of the back surface")
    repulsion = Param(False, doc="take sigma from the (energy, depth) map sigma_map_file instead of the formula")
    sigma_map_file = Param(None, Optional(Str()), doc="repulsion map: CSV of sigma (um) vs energy (keV), depth (m)")

    ignored_keys: ClassVar[dict[str, str]] = {
        "pcc_debug": "pysimdamicm's partial-charge-collection printouts",
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._sigma_map: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._check()

    @classmethod
    def from_mapping(cls, mapping: Any, **kwargs: Any) -> Diffusion:
        instance = super().from_mapping(mapping, **kwargs)
        instance._check()
        return instance  # type: ignore[return-value]

    def replace(self, **changes: Any) -> Diffusion:
        clone = super().replace(**changes)
        clone._check()
        return clone  # type: ignore[return-value]

    # ----------------------------------------------------------------------------------
    def _check(self) -> None:
        """Validate parameter combinations and load the repulsion map."""
        self._sigma_map = None
        if self.repulsion:
            self._sigma_map = self._load_sigma_map()
        elif self.alpha > 0 and self.A > 0 and not self.only_pair_creation:
            reach = self.B * (self.z_max - self.z_offset)
            if not 0 < reach < 1:
                raise ConfigError(
                    f"Diffusion: sigma(z_max) is undefined or zero for z_max = {self.z_max * 1e3:g} um, "
                    f"z_offset = {self.z_offset * 1e3:g} um, B = {self.B * 1e-3:g} /um",
                    hint="need z_offset < z_max < z_offset + 1/B, or alpha = 0",
                )

    def _load_sigma_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.sigma_map_file:
            raise ConfigError(
                "Diffusion.repulsion is on but sigma_map_file is not set", hint="give the map or set repulsion: 0"
            )
        path = Path(self.sigma_map_file).expanduser()
        if not path.is_absolute() and not path.exists():
            from importlib import resources

            packaged = Path(str(resources.files("waders.sim").joinpath("data", str(path))))
            path = packaged if packaged.exists() else path
        if not path.is_file():
            raise ConfigError(f"Diffusion.sigma_map_file {self.sigma_map_file!r} not found", hint="check the path")
        try:
            energies, depths, sigma = _read_sigma_map(path)
        except (OSError, ValueError, IndexError) as err:
            raise ConfigError(f"Diffusion.sigma_map_file {path}: cannot read the map ({err})") from None
        if sigma.shape != (energies.size, depths.size) or energies.size == 0 or depths.size == 0:
            raise ConfigError(
                f"Diffusion.sigma_map_file {path}: expected {energies.size} x {depths.size} sigma values, "
                f"got {sigma.shape[0]} x {sigma.shape[1] if sigma.ndim == 2 else 0}"
            )
        if np.any(np.diff(energies) <= 0) or np.any(np.diff(depths) <= 0):
            raise ConfigError(f"Diffusion.sigma_map_file {path}: energies and depths must be strictly increasing")
        if not np.all(np.isfinite(sigma)):
            raise ConfigError(f"Diffusion.sigma_map_file {path}: the map has missing or non-finite values")
        return energies, depths, sigma

    # ----------------------------------------------------------------------------------
    def sigma(self, z: np.ndarray, energy: np.ndarray, pixel_size: float) -> np.ndarray:
        """Diffusion sigma (mm) of deposits at depth ``z`` (mm) with energy ``energy`` (eV).

        Raises
        ------
        DataError
            If a depth lies at or beyond z_offset + 1/B, where the model diverges.
        """
        z = np.asarray(z, dtype=np.float64)
        energy = np.asarray(energy, dtype=np.float64)
        if self.only_pair_creation:
            return np.zeros(z.shape)
        if self._sigma_map is not None:
            energies, depths, values = self._sigma_map
            sigma_um = _bilinear(energies, depths, values, energy / 1000.0, z * 1e-3)
            return np.maximum(sigma_um, 0.0) * 1e-3
        depth = z - self.z_offset
        reach = self.B * np.maximum(depth, 0.0)
        if np.any(reach >= 1.0):
            worst = float(z[np.argmax(reach)])
            raise DataError(
                f"Diffusion: a deposit at depth {worst * 1e3:.1f} um lies beyond z_offset + 1/B = "
                f"{(self.z_offset + 1.0 / self.B) * 1e3:.1f} um, where sigma^2 = -A ln(1 - B (z - z_offset)) diverges",
                hint="check B (1/um), z_offset and the depth convention (detector.invert_ccd_z_values)",
            )
        sigma = np.sqrt(np.maximum(-self.A * np.log1p(-reach), 0.0))
        if self.alpha > 0 and self.A > 0:
            sigma_max = np.sqrt(-self.A * np.log1p(-self.B * (self.z_max - self.z_offset)))
            beta = self.alpha * pixel_size / sigma_max
            sigma = sigma * (self.alpha0 + beta * energy)
        elif self.alpha0 != 1.0:
            sigma = sigma * self.alpha0
        return sigma

    def run(self, data: SimEvents, context: RunContext) -> None:
        flat = data.flat_hits()
        detector = data.detector
        rng = data.rng
        n_events = data.n_events
        event_of_hit = flat["event"]
        use = np.flatnonzero(~data.killed[event_of_hit] & (flat["edep"] > 0))
        ev = event_of_hit[use]
        event_id = data.event_ids[ev] if n_events else np.zeros(0, dtype=np.int64)
        energy = flat["edep"][use]
        if self.model == "gauss":
            n = gauss_pairs(
                energy, e2eV=detector.e2eV, fano=self.fanofactor, rng=rng, event_id=event_id, hit_index=flat["hit"][use]
            )
        else:
            ccd = flat["ccd"][use].astype(np.int64)
            ccd_values, ccd_code = np.unique(ccd, return_inverse=True)
            n_ccd = max(1, ccd_values.size)
            keys, collection = np.unique(ev * n_ccd + ccd_code.ravel(), return_inverse=True)
            coll_event = keys // n_ccd
            n = karthik_pairs(
                energy,
                collection.ravel(),
                e2eV=detector.e2eV,
                fano=self.fanofactor,
                rng=rng,
                keys=(data.event_ids[coll_event], ccd_values[keys % n_ccd]),
            )
        z = flat["z"][use]
        sigma_hit = self.sigma(z, energy, detector.ccd_pixel_size_x)
        eps = pcc_efficiency(z, detector.ccd_thickness) if self.apply_pcc else None
        carriers, lost = self._expand(data, flat, use, ev, event_id, n, sigma_hit, eps)
        data.carriers = carriers
        per_event = np.bincount(carriers["event"], minlength=n_events)
        data.kill((per_event == 0) & ~data.killed, "no electron-hole pair created")
        data.results[self.name] = {"n_carriers": int(carriers["x"].size), "n_lost_pcc": int(lost)}

    def _expand(
        self,
        data: SimEvents,
        flat: dict[str, np.ndarray],
        use: np.ndarray,
        ev: np.ndarray,
        event_id: np.ndarray,
        n: np.ndarray,
        sigma_hit: np.ndarray,
        eps: np.ndarray | None,
    ) -> tuple[dict[str, np.ndarray], int]:
        """One entry per carrier, generated in blocks of about :data:`_BLOCK` carriers."""
        total = int(n.sum())
        n_flat = flat["edep"].size
        hit_dtype = np.int32 if n_flat < 2**31 else np.int64
        x_out = np.empty(total)
        y_out = np.empty(total)
        keep = np.ones(total, dtype=bool) if eps is not None else None
        # hits (hence carriers) are ordered by event: index within the event = global index - event start
        first = np.cumsum(n) - n
        per_event = np.bincount(ev, weights=n, minlength=data.n_events).astype(np.int64)
        index_of_first = first - (np.cumsum(per_event) - per_event)[ev]  # of the hit's first carrier, in its event
        packed = bool(
            n.size == 0 or (event_id.min() >= 0 and event_id.max() < 2**32 and per_event.max(initial=0) < 2**32)
        )
        if packed:  # key = event id * 2^32 + carrier index in the event (one hash round less than two keys)
            hit_key = (event_id.astype(np.uint64) << np.uint64(32)) + index_of_first.astype(np.uint64)
            hit_key -= first.astype(np.uint64)  # + the global carrier index (modulo 2^64)
        x_hit, y_hit = flat["x"][use], flat["y"][use]
        diffuse = not self.only_pair_creation
        cum = np.cumsum(n)
        h0 = 0
        while h0 < n.size:
            h1 = int(np.searchsorted(cum, first[h0] + _BLOCK, side="right"))
            h1 = max(h1, h0 + 1)
            c0, c1 = int(first[h0]), int(cum[h1 - 1])
            counts = n[h0:h1]
            if c1 > c0:
                hits = slice(h0, h1)
                if packed:
                    keys: tuple[np.ndarray, ...] = (
                        np.repeat(hit_key[hits], counts) + np.arange(c0, c1, dtype=np.uint64),
                    )
                else:
                    keys = (
                        np.repeat(event_id[hits], counts),
                        np.repeat(index_of_first[hits] - first[hits], counts) + np.arange(c0, c1),
                    )
                x = np.repeat(x_hit[hits], counts)
                y = np.repeat(y_hit[hits], counts)
                if diffuse:
                    dx, dy = _box_muller(data.rng.bits("diffusion-xy", *keys))
                    sigma = np.repeat(sigma_hit[hits].astype(np.float32), counts)
                    dx *= sigma
                    dy *= sigma
                    x += dx
                    y += dy
                x_out[c0:c1] = x
                y_out[c0:c1] = y
                if eps is not None and keep is not None:
                    eps_c = np.repeat(eps[hits], counts)
                    partial = np.flatnonzero(eps_c < 1.0)
                    if partial.size:
                        u = data.rng.uniform("diffusion-pcc", *(k[partial] for k in keys))
                        keep[c0 + partial] = u < eps_c[partial]
            h0 = h1
        hit = np.repeat(use.astype(hit_dtype), n)
        event = np.repeat(ev.astype(np.int32), n)
        sigma_c = np.repeat(sigma_hit.astype(np.float32), n)
        lost = 0
        if keep is not None and not keep.all():
            lost = int((~keep).sum())
            hit, event, sigma_c, x_out, y_out = hit[keep], event[keep], sigma_c[keep], x_out[keep], y_out[keep]
        return {"event": event, "hit": hit, "x": x_out, "y": y_out, "sigma_xy": sigma_c}, lost


def _box_muller(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent standard normals (float32) from the two 32-bit halves of every 64-bit draw.

    u1 = (high + 0.5) / 2^32 in (0, 1], u2 = low / 2^32; r = sqrt(-2 ln u1) <= 6.7 (the
    radial tail beyond has probability 2e-10); x = r cos(2 pi u2), y = r sin(2 pi u2).
    float32 keeps the relative error of a displacement below 1e-6, far below anything a
    pixel can see, at a fraction of the cost of float64 transcendental functions.
    """
    radius = (bits >> np.uint64(32)).astype(np.float32)
    radius += np.float32(0.5)
    radius *= np.float32(1.0 / _TWO32)
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle = (bits & _LOW32).astype(np.float32)
    angle *= np.float32(2.0 * np.pi / _TWO32)
    dx = np.cos(angle)
    np.sin(angle, out=angle)
    dx *= radius
    angle *= radius
    return dx, angle
