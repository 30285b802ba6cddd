"""Thin commands around the tool kernels (entry points of the group ``waders.commands``).

``waders energy-threshold``, ``waders hot-regions``, ``waders cluster-topology`` and
``waders image-grid``.
Bad input raises :class:`~waders.core.errors.WadersError`, which the ``waders`` command
prints as one line with exit code 2; outputs are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from waders.core.errors import ConfigError, DataError, InputFileError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["cluster_topology", "energy_threshold", "hot_regions", "image_grid"]

_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _write_text(path: Path, text: str) -> None:
    from waders.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _csv_text(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _write_table(path: Path, rows: Sequence[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
    """Write rows as CSV (``.csv``) or JSON (anything else)."""
    if path.suffix.lower() == ".csv":
        _write_text(path, _csv_text(rows))
    else:
        _write_text(path, json.dumps({**(extra or {}), "rows": list(rows)}, indent=1) + "\n")


# --- energy-threshold ------------------------------------------------------------------------------
@click.command("energy-threshold", context_settings=_SETTINGS)
@click.option(
    "--dcfit",
    nargs=4,
    type=float,
    required=True,
    metavar="MU0 SIGMA GAIN LAMBDA",
    help="Dark-current fit: pedestal, noise (ADU), gain (ADU/e-) and mean e- per pixel "
    "(FitDarkCurrentProcess results; GAIN 1 and MU0 0 for images in e-).",
)
@click.option("--xrange", nargs=2, type=float, metavar="MIN MAX", help="Range of thresholds searched (ADU).")
@click.option("--scan-sigma", nargs=3, type=float, metavar="MIN MAX N", help="Also scan the noise from MIN to MAX.")
@click.option("--scan-lam", nargs=3, type=float, metavar="MIN MAX N", help="Also scan lambda from MIN to MAX.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the results (.json or .csv)."
)
def energy_threshold(
    dcfit: tuple[float, float, float, float],
    xrange: tuple[float, float] | None,
    scan_sigma: tuple[float, float, float] | None,
    scan_lam: tuple[float, float, float] | None,
    output: Path | None,
) -> None:
    r"""The 0e/1e pixel threshold maximising the F1 score (successor of get_energy_threshold).

    \b
    Examples:
      waders energy-threshold --dcfit 0 0.16 1 0.01
      waders energy-threshold --dcfit 0 1.6 10 0.01 --scan-sigma 1 3 5 --scan-lam 0.001 0.1 3 -o thr.csv
    """
    import numpy as np

    from .threshold import optimal_threshold, threshold_scan

    mu0, sigma, gain, lam = dcfit

    def axis(scan: tuple[float, float, float] | None, default: float, name: str) -> np.ndarray:
        if scan is None:
            return np.array([default])
        lo, hi, n = scan
        if n < 1 or n != int(n):
            raise ConfigError(f"--{name} N must be a positive integer, got {n}")
        return np.linspace(lo, hi, int(n))

    results = [optimal_threshold(mu0, sigma, gain, lam, xrange)]
    if scan_sigma is not None or scan_lam is not None:
        results = threshold_scan(
            mu0, axis(scan_sigma, sigma, "scan-sigma"), gain, axis(scan_lam, lam, "scan-lam"), xrange
        )
    rows = [r.as_dict() for r in results]
    click.echo(f"{'sigma':>10} {'lambda':>10} {'threshold':>12} {'thr (e-)':>9} {'F1':>7} {'prec':>7} {'recall':>7}")
    for r in results:
        click.echo(
            f"{r.sigma:10.4g} {r.lam:10.4g} {r.threshold:12.5g} {r.threshold_e:9.4f} "
            f"{r.f1:7.4f} {r.precision:7.4f} {r.recall:7.4f}"
        )
    if output is not None:
        _write_table(output, rows)
        click.echo(f"-> {output}")


# --- hot-regions ----------------------------------------------------------------------------------
def _window(array: np.ndarray, rows: tuple[int, int] | None, cols: tuple[int, int] | None) -> np.ndarray:
    r0, r1 = rows if rows is not None else (0, array.shape[-2])
    c0, c1 = cols if cols is not None else (0, array.shape[-1])
    if not (0 <= r0 < r1 <= array.shape[-2] and 0 <= c0 < c1 <= array.shape[-1]):
        raise ConfigError(
            f"window rows {r0}:{r1}, columns {c0}:{c1} is outside the image of shape {array.shape[-2:]}",
            hint="give --rows/--cols START STOP inside the image (0-based, STOP exclusive)",
        )
    return array[..., r0:r1, c0:c1]


@click.command("hot-regions", context_settings=_SETTINGS)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-e", "--ext", default=None, metavar="HDU", help="HDU index or EXTNAME (default: first 2-D image).")
@click.option("-q", "--qrange", nargs=2, type=float, default=(0.77, 3.77), show_default=True, metavar="QMIN QMAX")
@click.option("--nsigma", type=float, default=5.0, show_default=True, help="Significance of a hot column/row/pixel.")
@click.option("--gain", type=float, default=1.0, show_default=True, help="Divide the images by GAIN (ADU/e-).")
@click.option(
    "--mask", "mask_path", type=click.Path(path_type=Path, dir_okay=False), help="Mask FITS (nonzero = masked)."
)
@click.option(
    "--mask-ext", default=None, metavar="HDU", help="HDU of the mask (e.g. CLSMASK; default: first 2-D image)."
)
@click.option("--degree", type=int, default=2, show_default=True, help="Degree of the continuum polynomial.")
@click.option("-r", "--rows", nargs=2, type=int, metavar="START STOP", help="Rows used (0-based, STOP exclusive).")
@click.option("-c", "--cols", nargs=2, type=int, metavar="START STOP", help="Columns used (0-based, STOP exclusive).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the hot regions (.json).")
def hot_regions(
    inputs: tuple[Path, ...],
    ext: str | None,
    qrange: tuple[float, float],
    nsigma: float,
    gain: float,
    mask_path: Path | None,
    mask_ext: str | None,
    degree: int,
    rows: tuple[int, int] | None,
    cols: tuple[int, int] | None,
    output: Path | None,
) -> None:
    r"""Hot columns, rows and pixels of calibrated images (successor of find_hot_regions).

    The images (in e-, or ADU with --gain) are stacked; coordinates are 0-based in the
    full image, whatever --rows/--cols select.

    \b
    Examples:
      waders hot-regions run/*_waders.fits -e CALIBRATED -q 0.5 3.5 -o hot.json
      waders hot-regions img_waders.fits -e CALIBRATED --mask img_waders.fits --mask-ext CLSMASK -r 0 320
    """
    import numpy as np

    from .fitsinput import read_mask, read_plane
    from .hotregions import find_hot_regions

    if gain <= 0:
        raise ConfigError(f"--gain must be positive, got {gain}")
    planes = [read_plane(p, ext) for p in inputs]
    shapes = {p.shape for p in planes}
    if len(shapes) != 1:
        raise InputFileError(f"the images have different shapes {sorted(shapes)}", hint="give images of one detector")
    stack = np.stack(planes) / gain
    mask = read_mask(mask_path, stack.shape[1:], mask_ext) if mask_path is not None else None
    r0 = rows[0] if rows is not None else 0
    c0 = cols[0] if cols is not None else 0
    stack = _window(stack, rows, cols)
    mask = _window(mask, rows, cols) if mask is not None else None
    found = find_hot_regions(stack, qrange=qrange, nsigma=nsigma, mask=mask, degree=degree)
    hot_cols = (found.columns.hot + c0).tolist()
    hot_rows = (found.rows.hot + r0).tolist()
    pixels = (found.pixels + np.array([r0, c0])).tolist()
    click.echo(f"{found.n_images} image(s), window {found.qrange[0]:g} <= q < {found.qrange[1]:g} e-")
    click.echo(f"hot columns ({len(hot_cols)}): {hot_cols}")
    click.echo(f"hot rows ({len(hot_rows)}): {hot_rows}")
    click.echo(f"hot pixels ({len(pixels)}): {pixels}")
    for note in found.notes:
        click.echo(f"note: {note}")
    if output is not None:
        result = {
            "inputs": [str(p) for p in inputs],
            "qrange": list(found.qrange),
            "nsigma": nsigma,
            "n_images": found.n_images,
            "hot_columns": hot_cols,
            "hot_rows": hot_rows,
            "hot_pixels": pixels,
            "pixel_fraction": None if np.isnan(found.pixel_fraction) else found.pixel_fraction,
            "column_significance": {
                str(c + c0): float(found.columns.significance[c]) for c in found.columns.hot.tolist()
            },
            "row_significance": {str(r + r0): float(found.rows.significance[r]) for r in found.rows.hot.tolist()},
        }
        _write_text(output, json.dumps(result, indent=1) + "\n")
        click.echo(f"-> {output}")


# --- cluster-topology -----------------------------------------------------------------------------
def _flat_clusters(paths: Sequence[Path], tree: str) -> dict[str, np.ndarray]:
    import awkward as ak
    import numpy as np

    from waders.io.root import read_clusters

    parts = []
    for path in paths:
        if not path.is_file():
            raise InputFileError(f"{path}: no such file")
        entries = read_clusters(path, tree)
        clusters = ak.flatten(entries["clusters"], axis=1)
        fields = set(ak.fields(clusters))
        pixel_fields = set(ak.fields(clusters["pixels"])) if "pixels" in fields else set()
        if not {"pixels_x", "pixels_y", "pixels_E"} <= pixel_fields:
            raise InputFileError(
                f"{path}: tree {tree} has no pixels_x/pixels_y/pixels_E branches",
                hint="give a clustersRec file of waders ana or waders sim",
            )
        n = len(clusters)
        seed = ak.to_numpy(clusters["has_seed"]).astype(bool) if "has_seed" in fields else np.ones(n, dtype=bool)
        parts.append(
            {
                "counts": ak.to_numpy(ak.num(clusters["pixels"], axis=1)),
                "x": ak.to_numpy(ak.flatten(clusters["pixels", "pixels_x"])),
                "y": ak.to_numpy(ak.flatten(clusters["pixels", "pixels_y"])),
                "E": ak.to_numpy(ak.flatten(clusters["pixels", "pixels_E"])),
                "has_seed": seed,
                "file": np.full(n, len(parts)),
            }
        )
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _select(flat: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    import numpy as np

    pixel_keep = np.repeat(keep, flat["counts"])
    out = {k: v[keep] for k, v in flat.items() if k not in ("x", "y", "E")}
    out.update({k: flat[k][pixel_keep] for k in ("x", "y", "E")})
    return out


@click.command("cluster-topology", context_settings=_SETTINGS)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--tree", default="clustersRec", show_default=True, help="Cluster tree.")
@click.option("--emin", type=float, default=None, help="Smallest cluster energy (keV).")
@click.option("--emax", type=float, default=None, help="Largest cluster energy (keV).")
@click.option("--all", "all_clusters", is_flag=True, help="Include clusters without a seed (default: has_seed only).")
@click.option("--padx", type=int, default=5, show_default=True, help="Half width of the topology map (columns).")
@click.option("--pady", type=int, default=5, show_default=True, help="Half height of the topology map (rows).")
@click.option("--min-length", type=int, default=3, show_default=True, help="Shortest line or track (pixels).")
@click.option("--track-elongation", type=float, default=3.0, show_default=True, help="Smallest elongation of a track.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Per-cluster table (.csv).")
@click.option("--map", "map_path", type=click.Path(path_type=Path, dir_okay=False), help="Topology map (.png).")
def cluster_topology(
    inputs: tuple[Path, ...],
    tree: str,
    emin: float | None,
    emax: float | None,
    all_clusters: bool,
    padx: int,
    pady: int,
    min_length: int,
    track_elongation: float,
    output: Path | None,
    map_path: Path | None,
) -> None:
    r"""Shapes of clusters from clustersRec files and their stacked topology (successor of cluster_topology).

    \b
    Examples:
      waders cluster-topology out/*.root --emin 1 --emax 10 -o shapes.csv --map topology.png
    """
    import numpy as np

    from .grid import draw_image_grid
    from .topology import SHAPES, cluster_shapes, topology_map

    flat = _flat_clusters(inputs, tree)
    energy = np.bincount(np.repeat(np.arange(flat["counts"].size), flat["counts"]), flat["E"], flat["counts"].size)
    keep = np.ones(energy.size, dtype=bool) if all_clusters else flat["has_seed"].copy()
    if emin is not None:
        keep &= energy >= emin
    if emax is not None:
        keep &= energy <= emax
    chosen = _select(flat, keep)
    shapes = cluster_shapes(
        chosen["counts"],
        chosen["x"],
        chosen["y"],
        chosen["E"],
        min_length=min_length,
        track_elongation=track_elongation,
    )
    n = int(keep.sum())
    click.echo(f"{n} clusters selected of {keep.size}")
    for code, name in enumerate(SHAPES):
        click.echo(f"  {name}: {int((shapes['shape_code'] == code).sum())}")
    if output is not None:
        names = [k for k in shapes if k != "shape_code"]
        rows = [
            {"file": str(inputs[int(chosen["file"][i])]), **{k: _scalar(shapes[k][i]) for k in names}} for i in range(n)
        ]
        _write_text(output, _csv_text(rows) if rows else "file," + ",".join(names) + "\n")
        click.echo(f"-> {output}")
    if map_path is not None:
        if n == 0:
            raise DataError("no cluster selected: no topology map to draw", hint="widen --emin/--emax or use --all")
        stacked, n_map = topology_map(chosen["counts"], chosen["x"], chosen["y"], chosen["E"], padx=padx, pady=pady)
        draw_image_grid([(f"mean energy per pixel (keV), {n_map} clusters", stacked)], map_path, annotate_max=0)
        click.echo(f"-> {map_path}")


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# --- image-grid -----------------------------------------------------------------------------------
@click.command("image-grid", context_settings=_SETTINGS)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-e", "--ext", "extensions", multiple=True, metavar="HDU", help="HDU index or EXTNAME (repeatable).")
@click.option("--all-ext", is_flag=True, help="One panel per 2-D image HDU of every file (amplifiers, CCDs).")
@click.option("-r", "--rows", nargs=2, type=int, metavar="START STOP", help="Rows drawn (0-based, STOP exclusive).")
@click.option("-c", "--cols", nargs=2, type=int, metavar="START STOP", help="Columns drawn (0-based, STOP exclusive).")
@click.option("--range", "vrange", nargs=2, type=float, metavar="VMIN VMAX", help="Colour range of every panel.")
@click.option("--cmap", default="viridis", show_default=True, help="Matplotlib colour map.")
@click.option("-T", "--transpose", is_flag=True, help="Draw the transposed images.")
@click.option("--ncols", type=int, help="Panels per row (default: as square as possible).")
@click.option("--mask", "mask_path", type=click.Path(path_type=Path, dir_okay=False), help="Mask FITS: masked = NaN.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=Path("grid.png"), show_default=True
)
def image_grid(
    inputs: tuple[Path, ...],
    extensions: tuple[str, ...],
    all_ext: bool,
    rows: tuple[int, int] | None,
    cols: tuple[int, int] | None,
    vrange: tuple[float, float] | None,
    cmap: str,
    transpose: bool,
    ncols: int | None,
    mask_path: Path | None,
    output: Path,
) -> None:
    r"""A PNG grid of images, extensions or zooms with pixel values (successor of drawImageGrid).

    \b
    Examples:
      waders image-grid image.fits --all-ext -o amplifiers.png
      waders image-grid a.fits b.fits -e 1 -r 100 120 -c 300 320 -o zoom.png
    """
    import numpy as np

    from .fitsinput import image_extensions, read_mask, read_plane
    from .grid import draw_image_grid

    if output.suffix.lower() != ".png":
        raise ConfigError(f"image grid writes PNG files, got {output.name}", hint="give -o NAME.png")
    panels = []
    for path in inputs:
        exts: list[Any] = list(extensions) if extensions else [None]
        if all_ext:
            exts = image_extensions(path)
        for ext in exts:
            plane = read_plane(path, ext)
            if mask_path is not None:
                plane[read_mask(mask_path, plane.shape)] = np.nan
            label = path.name if ext is None else f"{path.name} [{ext}]"
            panels.append((label, _window(plane, rows, cols)))
    info = draw_image_grid(panels, output, ncols=ncols, vrange=vrange, cmap=cmap, transpose=transpose)
    click.echo(f"{info.n_panels} panels ({info.nrows} x {info.ncols}) -> {info.path} ({info.width} x {info.height} px)")
