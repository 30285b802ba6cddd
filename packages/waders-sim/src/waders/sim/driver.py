"""Simulate Geant4 files: read events in chunks, run the detector response, write the trees.

For each input ``<stem>.root`` it writes ``<output>/<prefix>_<stem>.root`` with

* ``clustersRec`` (one entry per event with reconstructed clusters; id branch ``event``),
* ``clustersTrue`` (the clusters of the noiseless signal),
* ``pixelizedEvent`` (one entry per event; one collection per CCD of the event),
* ``geant4_config`` (the RunInfo of the input) and ``process_config`` (the parameters),

plus the FITS images of CreateFitsImage/PasteClusterProcess when active.  Events are read
``chunk_size`` at a time, so memory is bounded by the chunk; random numbers are keyed by
event id, so the output does not depend on the chunk size.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.config import Config
from waders.core.errors import InputFileError
from waders.core.lazy import lazy_module
from waders.core.pipeline import Pipeline, RunContext
from waders.core.versions import waders_versions
from waders.io.root import ClustersTreeWriter, iter_geant4, open_output, read_run_info, titles, write_records_tree

from .checks import check_chain
from .dmtruth import truth_lists
from .events import SimEvents
from .random import CounterRNG
from .reconstruction import clusters_by_event
from .volumes import ccd_volume, source_volume

ak = lazy_module("awkward")

__all__ = ["SimOptions", "SimResult", "simulate_file"]

log = logging.getLogger(__name__)


@dataclass
class SimOptions:
    """Options of a simulation run."""

    output_dir: Path = Path(".")
    seed: int = 0
    chunk_size: int = 20_000
    entry_start: int | None = None
    entry_stop: int | None = None
    prefix: str | None = None
    max_carriers: int = 20_000_000
    truth: dict[str, np.ndarray] | None = None  # generated single-deposit events (waders dm): *_MCT branches


@dataclass
class SimResult:
    """What a simulation of one file did."""

    output: Path
    events_read: int = 0
    events_kept: int = 0
    clusters: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    extra_outputs: dict[str, Any] = field(default_factory=dict)


def _split_by_charge(chunks: Iterable[Any], e2ev: float, max_carriers: int | None) -> Iterator[Any]:
    """Cut chunks of events so that one holds at most ``max_carriers`` electrons (bounded memory).

    Diffusion makes one array entry per electron: a chunk of energetic events is split
    into consecutive event ranges; results do not change (draws are keyed by event id).
    """
    for hits in chunks:
        if max_carriers is None or len(hits) <= 1:
            yield hits
            continue
        electrons = np.cumsum(np.maximum(hits.total_energy(), 0.0) / e2ev)
        start = 0
        while start < len(hits):
            base = electrons[start - 1] if start else 0.0
            stop = int(np.searchsorted(electrons, base + max_carriers, side="right"))
            stop = max(stop, start + 1)
            yield hits[start:stop]
            start = stop


#: Largest hit coordinate accepted (internal unit mm: one kilometre); beyond, the file's units are wrong.
MAX_COORDINATE = 1e6

#: Largest hit time accepted (ns, about 3e83 years: far beyond any decay chain Geant4 follows); the per-pixel
#: time spread squares the times, which must stay finite in float64.
MAX_TIME = 1e100

#: Most electrons one event may release (about 1.9 GeV in silicon): Diffusion makes one array
#: entry per electron, so a corrupt energy must not ask for petabytes.
MAX_EVENT_ELECTRONS = 500_000_000


def _keep_hits(data: SimEvents, mask: Any) -> None:
    """Keep the hits where the jagged ``mask`` is true (per-event fields such as event_id stay)."""
    events = data.hits.events
    fields = {name: events[name][mask] if events[name].ndim > 1 else events[name] for name in events.fields}
    data.hits.events = ak.zip(fields, depth_limit=1)
    data._flat = None


def _check_hit_values(data: SimEvents, source: str) -> None:
    """Non-finite coordinates, non-finite or negative energies and absurd charges are errors."""
    flat = data.flat_hits()
    for name in ("x", "y", "z", "time", "edep"):
        bad = ~np.isfinite(flat[name])
        if name == "edep":
            bad |= flat[name] < 0
        elif name == "time":
            bad |= np.abs(flat[name]) > MAX_TIME
        else:
            bad |= np.abs(flat[name]) > MAX_COORDINATE
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            event = int(data.hits.event_id[flat["event"][first]])
            raise InputFileError(
                f"{source}: {int(bad.sum())} Geant4 hit(s) with {name} = {flat[name][first]:g} "
                f"(first in event {event}); energies must be finite and >= 0, "
                "coordinates finite (within 1 km), times finite (within 1e100 ns)",
                hint="the Geant4 file is corrupt; regenerate it or select other events with --events",
            )
    electrons = data.hits.total_energy() / data.detector.e2eV
    if electrons.size and electrons.max() > MAX_EVENT_ELECTRONS:
        worst = int(np.argmax(electrons))
        raise InputFileError(
            f"{source}: event {int(data.hits.event_id[worst])} deposits {electrons[worst] * data.detector.e2eV:g} eV "
            f"({electrons[worst]:.3g} electrons), more than the {MAX_EVENT_ELECTRONS:.0e} a simulation can follow",
            hint="check the energy unit of the Geant4 file",
        )


def _validate_hits(data: SimEvents, source: str = "Geant4 file") -> None:
    """Check hit values; drop (and count) hits without energy; kill events with negative local coordinates."""
    _check_hit_values(data, source)
    flat = data.flat_hits()
    bad = ~(flat["edep"] > 0)
    if bad.any():
        data.count("hits with zero energy (dropped)", int(bad.sum()))
        _keep_hits(data, data.hits.events.edep > 0)
        flat = data.flat_hits()
    negative = (flat["x"] < 0) | (flat["y"] < 0)
    if negative.any():
        data.kill(
            np.isin(np.arange(data.n_events), flat["event"][negative]), "events outside the CCD (negative x or y)"
        )
    thickness = data.detector.ccd_thickness
    outside = (flat["z"] < 0) | (flat["z"] > thickness)
    if outside.any():
        data.count("hits outside the CCD thickness (dropped)", int(outside.sum()))
        _keep_hits(data, (data.hits.events.z >= 0) & (data.hits.events.z <= thickness))
    empty = data.hits.n_hits == 0
    data.kill(empty, "events without hits in the CCD")


#: Optional pixelizedEvent branches (``pixels_<name>``) from the pixel fields of the pixelization / pasting.
_PIXELIZED_OPTIONAL = (
    ("sigma_xy", "sigma_xy"),
    ("neutron", "neutron"),
    ("gamma", "gamma"),
    ("silicon", "silicon"),
    ("alpha", "alpha"),
    ("ion", "ion"),
    ("electron", "electron"),
)


def _primaries(data: SimEvents, events: ak.Array) -> dict[str, ak.Array] | None:
    """``pp_*`` lists (Geant4 EventOut primaries of the event) for every cluster of ``events`` (entries * var).

    Returns ``{"pp": entries * var * var * {pp_posx, ...}}`` (the group of ``lists=``), or None without EventOut.
    """
    primaries = data.hits.primaries
    if primaries is None or not primaries.fields:
        return None
    flat = ak.to_numpy(ak.flatten(events)).astype(np.int64)
    ids = data.event_ids
    order = np.argsort(ids, kind="stable")
    index = order[np.searchsorted(ids[order], flat)]
    selected = primaries[index]
    names = [name for name in selected.fields if selected[name].ndim == 2]  # per-primary arrays, not event_id
    if not names:
        return None
    fields = {f"pp_{name}": ak.values_astype(selected[name], np.float64) for name in names}
    return {"pp": ak.unflatten(ak.zip(fields, depth_limit=2), ak.num(events))}


def _pasted(pix: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """rnd_rows, rnd_cols (0-based file coordinates, -1: not pasted) and rnd_Edep (keV) of pasted pixels."""
    if "paste_row" not in pix:
        return {}
    pasted = pix["paste_row"] >= 0
    return {
        "rnd_rows": pix["paste_row"].astype(np.int32),
        "rnd_cols": pix["paste_col"].astype(np.int32),
        "rnd_Edep": np.where(pasted, pix["edep"] / 1000.0, 0.0),
    }


def _pixelized_entries(data: SimEvents) -> tuple[np.ndarray, ak.Array, ak.Array] | None:
    """pixelizedEvent: per event, one collection per CCD with its pixel lists (0-based pixels, keV)."""
    pixels = data.pixels
    if pixels is None:
        return None
    keep = ~data.killed[pixels["event"]] & (pixels["edep"] > 0)
    pix = {k: v[keep] for k, v in pixels.items()}
    if pix["event"].size == 0:
        return None
    key = pix["event"].astype(np.int64) * 1_000_003 + pix["ccd"]
    boundaries = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], boundaries])
    npix = np.diff(np.concatenate([starts, [key.size]]))
    collection_event = pix["event"][starts]
    per_collection = ak.zip({"ccd": pix["ccd"][starts].astype(np.int32), "Npix": npix.astype(np.int32)}, depth_limit=1)
    pixel_lists = ak.unflatten(
        ak.zip(
            {
                "pixels_x": pix["col"].astype(np.int32),
                "pixels_y": pix["row"].astype(np.int32),
                "pixels_z": pix["z"],
                "pixels_Edep": pix["edep"] / 1000.0,
                "pixels_N_carried_charges": pix["charge"].astype(np.int32),
                "pixels_time": pix["time"],
                "pixels_pdg": pix["pdg"].astype(np.int32),
                **{f"pixels_{name}": pix[key].astype(np.float64) for name, key in _PIXELIZED_OPTIONAL if key in pix},
                **_pasted(pix),
            },
            depth_limit=1,
        ),
        npix,
    )
    events, per_event = np.unique(collection_event, return_counts=True)
    return (
        data.event_ids[events],
        ak.unflatten(per_collection, per_event),
        ak.unflatten(pixel_lists, per_event),
    )


def _split_pixels(clusters: ak.Array) -> tuple[ak.Array, ak.Array]:
    """Per-cluster scalars and per-pixel records of entries of clusters (entries * var * {...})."""
    fields = clusters.fields
    pixel_fields = [f for f in fields if f.startswith("pixels_") or f.endswith("_in_pixel") or f == "primary_part"]
    scalars = clusters[[f for f in fields if f not in pixel_fields and f != "event"]]
    pixels = ak.zip({f: clusters[f] for f in pixel_fields}, depth_limit=3)
    return scalars, pixels


def _process_config(config: Config, seed: int) -> dict[str, Any]:
    columns: dict[str, Any] = {"id": 0, "waders_version": waders_versions().get("waders-sim", ""), "seed": int(seed)}
    for process in config.steps:
        columns[f"{process.name}_sequence_id"] = int(process.order)
        for key, value in process.to_dict().items():
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
                columns[f"{process.name}_{key}"] = value
    detector = config.detector
    columns.update(e2eV=detector.e2eV, img_exp_time=detector.img_exp_time, ccd_thickness=detector.ccd_thickness)
    if detector.ADC2eV is not None:  # eV per ADU and electrons per ADU, as pysimdamicm stored them
        columns.update(ADC2eV=float(detector.ADC2eV), ADC2e=float(detector.ADC2eV) / detector.e2eV)
    return columns


def _geant4_config(path: Path, run_info: dict[str, Any], n_clusters: int, detector_name: str) -> dict[str, Any]:
    columns: dict[str, Any] = {"id": 0, "Nfile": 1, "Ncls": int(n_clusters), "input": str(path.name)}
    for key, value in run_info.items():
        if isinstance(value, bool | int | float | str | np.generic):
            columns[key] = value.item() if isinstance(value, np.generic) else value
    columns.update(source_volume(run_info))
    columns.update(ccd_volume(run_info, detector_name))
    return columns


def simulate_file(
    path: Path,
    config: Config,
    options: SimOptions,
    *,
    progress: Callable[[int], None] | None = None,
) -> SimResult:
    """Simulate the detector response to the events of one Geant4 file.

    Parameters
    ----------
    path : Path
        Geant4 (DAMICG4) ROOT file.
    config : Config
        Validated simulation configuration.
    options : SimOptions
        Output directory, seed, chunk size, event range.
    progress : callable, optional
        Called with the number of events of each finished chunk.
    """
    from .noise import with_reconstruction_threshold

    check_chain(config)
    processes = with_reconstruction_threshold(list(config.steps))  # the noise steps get ClusterFinder's threshold
    out_root = config.sections.get("out_root")
    prefix = options.prefix or (out_root.prefix_root_name if out_root is not None else "waders_sim")
    output = options.output_dir / f"{prefix}_{path.stem}.root"
    context = RunContext(
        seed=options.seed,
        detector=config.detector,
        output_dir=options.output_dir,
        options={"input": str(path)},
    )
    rng = CounterRNG(options.seed)
    result = SimResult(output=output)
    pipeline = Pipeline(processes)
    with open_output(output) as out:
        rec = ClustersTreeWriter(out, "clustersRec", id_branch="event", title=titles.CLUSTERS_REC_TITLE)
        true = ClustersTreeWriter(out, "clustersTrue", id_branch="event", title=titles.CLUSTERS_TRUE_TITLE)
        pixelized = ClustersTreeWriter(
            out, "pixelizedEvent", id_branch="event", count_branch="Ncollections", title=titles.PIXELIZED_TITLE
        )
        chunks = iter_geant4(
            path,
            step_size=options.chunk_size,
            entry_start=options.entry_start,
            entry_stop=options.entry_stop,
            detector=config.detector,
        )
        carriers = any(p.name == "Diffusion" for p in processes)
        for hits in _split_by_charge(chunks, config.detector.e2eV, options.max_carriers if carriers else None):
            data = SimEvents(hits, rng, config.detector)
            result.events_read += data.n_events
            _validate_hits(data, str(path))
            pipeline.run(data, context)
            for reason, n in data.counters.items():
                result.counters[reason] = result.counters.get(reason, 0) + n
            result.events_kept += int((~data.killed).sum())
            entries = _pixelized_entries(data)
            if entries is not None:
                ids, collections, pixel_lists = entries
                per_collection_event = ak.broadcast_arrays(ids, collections["ccd"])[0]
                pixelized.extend(ids.astype(np.int32), collections, pixel_lists, _primaries(data, per_collection_event))
            for writer, clusters in ((rec, data.clusters), (true, data.true_clusters)):
                if clusters is None or len(clusters) == 0:
                    continue
                ids, per_event = clusters_by_event(clusters)
                scalars, pixels = _split_pixels(per_event)
                lists = _primaries(data, per_event["event"])
                if options.truth is not None:  # waders dm: Edep_MCT, posx_MCT, ... of the event's deposit
                    lists = {**(lists or {}), **truth_lists(options.truth, per_event["event"])}
                writer.extend(ids.astype(np.int32), scalars, pixels, lists)
            if data.clusters is not None:
                result.clusters += len(data.clusters)
            if progress is not None:
                progress(data.n_events)
        for process in processes:
            written = process.finish(context)
            if written:
                result.extra_outputs[process.name] = written
        g4config = _geant4_config(path, read_run_info(path), result.clusters, config.detector.detector_name)
        write_records_tree(out, "geant4_config", g4config)
        write_records_tree(out, "process_config", _process_config(config, options.seed))
    log.info("%s: %d events, %d clusters -> %s", path.name, result.events_read, result.clusters, output)
    return result
