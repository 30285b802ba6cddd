"""Dark-matter recoil events from a differential rate (pysimdamicm's ``dmSKImg``, reference C.15).

A rate table (CSV with columns ``energies`` in eV and ``rates`` in events/eV/kg/year, e.g.
a DM-electron scattering spectrum) defines a discrete energy distribution
``P(E_i) = rates_i / sum(rates)``.  :func:`generate_dm_events` draws ``n`` single-deposit
events from it (``repeat_each``: every energy ``n`` times instead, pysimdamicm's
``dmSKImg2``), at positions uniform in the sensitive volume.  The events are written as a
Geant4 (DAMICG4) layout file and simulated by the ordinary chain
(:func:`waders.sim.driver.simulate_file`): pair creation (the number of electrons of an
event is drawn by Diffusion's model, by default ``round(Normal(E/e2eV, sqrt(F E/e2eV)))``),
diffusion, pixelisation, noise, reconstruction, and images with truth (CreateFitsImage on
blank simulated images, or PasteClusterProcess into real blank images).

Files (``<stem>`` = the CSV stem): ``<stem>_dm_events.csv`` (the generated table: ``event``,
``energy_eV``, ``x_mm``, ``y_mm``, ``z_mm`` with z the depth from the collecting surface),
``<stem>_dm_g4.root`` (the Geant4-layout input) and the simulation outputs.

Deliberate differences from pysimdamicm:

* the volume is the detector of the configuration (``ccd_shape`` x pixel pitch x
  ``ccd_thickness``) unless ``box`` is given, instead of the hard-coded
  92.10 x 12.6 x 0.669 mm box (F.2);
* the particle code of the deposit is 11 (an electron recoil): waders reserves -1 for
  noise-only pixels;
* events are grouped once (pysimdamicm scanned the whole table per event, O(N^2)); draws
  come from a seeded numpy generator, so a run is reproducible.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waders.core.config import Config
from waders.core.detector import Detector
from waders.core.errors import ConfigError, InputFileError
from waders.core.hits import HitCollection

from .driver import SimOptions, SimResult

__all__ = [
    "DM_PDG",
    "DMRun",
    "RateSpectrum",
    "detector_box",
    "dm_hits",
    "events_table",
    "generate_dm_events",
    "read_rate_spectrum",
    "simulate_dm",
]

#: Particle code given to the dark-matter deposits (an electron recoil).
DM_PDG = 11


@dataclass(frozen=True)
class RateSpectrum:
    """A differential rate on a grid of energies.

    Attributes
    ----------
    energies : ndarray
        Recoil energies (eV), positive.
    rates : ndarray
        Differential rates (events/eV/kg/year), non-negative, not all zero.
    """

    energies: np.ndarray
    rates: np.ndarray

    def __post_init__(self) -> None:
        e = np.asarray(self.energies, dtype=np.float64)
        r = np.asarray(self.rates, dtype=np.float64)
        if e.ndim != 1 or e.shape != r.shape or e.size == 0:
            raise ConfigError("DM rate table: energies and rates must be two columns of the same length")
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(r))):
            raise ConfigError("DM rate table: energies and rates must be finite numbers")
        if np.any(e <= 0) or np.any(r < 0) or r.sum() <= 0:
            raise ConfigError(
                "DM rate table: energies must be > 0 eV and rates >= 0, not all zero",
                hint="check the 'energies' (eV) and 'rates' (events/eV/kg/year) columns",
            )
        object.__setattr__(self, "energies", e)
        object.__setattr__(self, "rates", r)

    @property
    def probabilities(self) -> np.ndarray:
        """Probability of every energy: rates / sum(rates) (pysimdamicm's discrete distribution)."""
        return self.rates / self.rates.sum()

    def expected_counts(self, n_events: int) -> np.ndarray:
        """Expected number of events at every energy among ``n_events``."""
        return n_events * self.probabilities


def read_rate_spectrum(path: str | Path) -> RateSpectrum:
    """Read a CSV rate table with columns ``energies`` (eV) and ``rates``.

    Raises
    ------
    InputFileError
        Missing file or missing columns.
    ConfigError
        Values that are not numbers, or an invalid spectrum.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file", hint="give the CSV of the DM rate (columns energies, rates)")
    text = path.read_text()
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    if not {"energies", "rates"} <= set(fields):
        raise InputFileError(
            f"{path}: columns 'energies' and 'rates' are needed, found {fields}",
            hint="write a header line: energies,rates",
        )
    energies, rates = [], []
    for number, row in enumerate(reader, start=2):
        row = {k.strip(): v for k, v in row.items() if k is not None}
        try:
            energies.append(float(row["energies"]))
            rates.append(float(row["rates"]))
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: line {number} is not two numbers: {row}") from None
    return RateSpectrum(np.array(energies), np.array(rates))


def detector_box(detector: Detector) -> tuple[float, float, float]:
    """Sensitive volume of the detector (mm): columns x pitch, rows x pitch, thickness."""
    rows, cols = detector.ccd_shape
    return (cols * detector.ccd_pixel_size_x, rows * detector.ccd_pixel_size_y, detector.ccd_thickness)


def generate_dm_events(
    spectrum: RateSpectrum,
    n_events: int,
    *,
    box: tuple[float, float, float],
    seed: int = 0,
    repeat_each: bool = False,
) -> dict[str, np.ndarray]:
    """Draw single-deposit dark-matter events.

    Parameters
    ----------
    spectrum : RateSpectrum
        Differential rate.
    n_events : int
        Events to draw (``repeat_each``: events per energy of the table).
    box : (float, float, float)
        Extent of the volume along x (columns), y (rows) and depth z (mm); positions are
        uniform in ``[0, box)``.
    seed : int
        Seed of the numpy generator.
    repeat_each : bool
        Every energy ``n_events`` times (dmSKImg2) instead of draws from the spectrum.

    Returns
    -------
    dict of ndarray
        ``event`` (0..N-1), ``energy`` (eV), ``x``, ``y``, ``z`` (mm; z = depth from the
        collecting surface).
    """
    if n_events < 1:
        raise ConfigError(f"the number of DM events must be >= 1, got {n_events}", hint="give --nevts N with N >= 1")
    if any(not (b > 0 and np.isfinite(b)) for b in box):
        raise ConfigError(f"the DM volume must have positive extents, got {box} mm")
    rng = np.random.default_rng(seed)
    if repeat_each:
        energy = np.repeat(spectrum.energies, n_events)
    else:
        energy = spectrum.energies[rng.choice(spectrum.energies.size, size=n_events, p=spectrum.probabilities)]
    n = energy.size
    position = rng.random((3, n)) * np.asarray(box, dtype=np.float64)[:, None]
    return {
        "event": np.arange(n, dtype=np.int64),
        "energy": energy,
        "x": position[0],
        "y": position[1],
        "z": position[2],
    }


def dm_hits(events: dict[str, np.ndarray]) -> HitCollection:
    """The events as a hit collection: one deposit each, CCD 1, time 0, pdg :data:`DM_PDG`."""
    n = events["event"].size
    hits = {
        "x": events["x"],
        "y": events["y"],
        "z": events["z"],
        "time": np.zeros(n),
        "edep": events["energy"],
        "ccd": np.ones(n, dtype=np.int32),
        "pdg": np.full(n, DM_PDG, dtype=np.int32),
    }
    return HitCollection.from_arrays(events["event"], np.ones(n, dtype=np.int64), hits)


def events_table(events: dict[str, np.ndarray]) -> str:
    """The generated events as CSV text (event, energy_eV, x_mm, y_mm, z_mm)."""
    buffer = io.StringIO()
    buffer.write("event,energy_eV,x_mm,y_mm,z_mm\n")
    table = np.column_stack([events[k] for k in ("event", "energy", "x", "y", "z")])
    np.savetxt(buffer, table, delimiter=",", fmt=["%d", "%.9g", "%.9g", "%.9g", "%.9g"])
    return buffer.getvalue()


@dataclass
class DMRun:
    """What :func:`simulate_dm` wrote.

    Attributes
    ----------
    events : dict of ndarray
        The generated events (see :func:`generate_dm_events`).
    table, geant4 : Path
        The events CSV and the Geant4-layout input file.
    result : SimResult
        The simulation of the events (clusters ROOT file, images, truth).
    """

    events: dict[str, np.ndarray]
    table: Path
    geant4: Path
    result: SimResult


def simulate_dm(
    spectrum: RateSpectrum,
    n_events: int,
    config: Config,
    options: SimOptions,
    *,
    stem: str = "dm",
    box: tuple[float, float, float] | None = None,
    repeat_each: bool = False,
) -> DMRun:
    """Generate dark-matter events and simulate them with the configured processes.

    Parameters
    ----------
    spectrum : RateSpectrum
        Differential rate.
    n_events : int
        Events (``repeat_each``: per energy).
    config : Config
        Validated simulation configuration (its detector sets the volume).
    options : SimOptions
        Output directory and seed (the seed also drives the event generation).
    stem : str
        Stem of the output files.
    box : (float, float, float), optional
        Volume (mm); default: the detector's.
    repeat_each : bool
        dmSKImg2 mode.

    Returns
    -------
    DMRun
    """
    from waders.io.atomic import atomic_path
    from waders.io.root import write_geant4

    from .driver import simulate_file

    volume = box if box is not None else detector_box(config.detector)
    events = generate_dm_events(spectrum, n_events, box=volume, seed=options.seed, repeat_each=repeat_each)
    output_dir = Path(options.output_dir)
    table = output_dir / f"{stem}_dm_events.csv"
    with atomic_path(table) as tmp:
        tmp.write_text(events_table(events))
    geant4 = output_dir / f"{stem}_dm_g4.root"
    run_info = {"NEvts": int(events["event"].size), "Seed": int(options.seed)}
    write_geant4(geant4, dm_hits(events), run_info=run_info, detector=config.detector)
    from dataclasses import replace

    result = simulate_file(geant4, config, replace(options, truth=events))
    return DMRun(events, table, geant4, result)
