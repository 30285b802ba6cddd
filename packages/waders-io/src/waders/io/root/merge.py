"""Merging ROOT files written by waders into one (``waders ana --oroot``, like ``hadd``).

Cluster trees and record trees (``info``, ...) are concatenated entry by entry in the
order of the inputs; trees named in ``once`` (``process_config``) are taken from the first
file that has them.  All inputs must have the same branches in each tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np

from waders.core.errors import DataError

from .clusters import ClustersTreeWriter, read_clusters
from .output import open_output
from .pysimdamicm import tree_layout
from .records import RecordsTreeWriter, read_records

__all__ = ["merge_root_files"]


def merge_root_files(
    sources: Sequence[str | Path], destination: str | Path, *, once: Sequence[str] = ("process_config",)
) -> Path:
    """Concatenate the trees of ``sources`` into ``destination`` (written atomically).

    Raises
    ------
    DataError
        If a tree has different branches in two inputs.
    """
    sources = [Path(s) for s in sources]
    destination = Path(destination)
    layout: dict[str, tuple[str, str | None]] = {}
    for source in sources:
        for name, title, counter in tree_layout(source):
            layout.setdefault(name, (title, counter))
    with open_output(destination) as out:
        for name, (title, counter) in layout.items():
            writer: ClustersTreeWriter | RecordsTreeWriter | None = None
            for source in sources:
                if name not in {n for n, _, _ in tree_layout(source)}:
                    continue
                try:
                    if counter is None:
                        data = read_records(source, name)
                        writer = writer or RecordsTreeWriter(out, name, title=title)
                        writer.extend({field: data[field] for field in data.fields})
                    else:
                        data = read_clusters(source, name, count_branch=counter)
                        id_branch = next(f for f in data.fields if f != "clusters")
                        clusters = data["clusters"]
                        groups = [f for f in clusters.fields if clusters[f].ndim == 3]
                        fields = [f for f in clusters.fields if f not in groups]
                        lists = {g: clusters[g] for g in groups if g != "pixels"} or None
                        pixels = clusters["pixels"] if "pixels" in groups else None
                        writer = writer or ClustersTreeWriter(
                            out, name, id_branch=id_branch, count_branch=counter, title=title
                        )
                        ids = ak.to_numpy(data[id_branch]).astype(np.int32)
                        writer.extend(ids, clusters[fields], pixels, lists)
                except DataError as err:
                    raise DataError(f"cannot merge {source} into {destination}: {err.one_line()}") from None
                if name in once:
                    break
    return destination
