"""ROOT input and output of waders: Geant4 hits in, cluster and configuration trees out.

Reading Geant4 (DAMICG4) files:

* :func:`iter_geant4` (chunks of events), :func:`read_geant4`,
  :func:`count_geant4_events`, :func:`read_run_info`.

Writing (always inside :func:`open_output`, which writes atomically):

* :class:`ClustersTreeWriter` / :func:`write_clusters_tree` for ``clustersRec``,
  ``clustersTrue`` and ``pixelizedEvent``;
* :class:`RecordsTreeWriter` / :func:`write_records_tree` for ``info``,
  ``process_config`` and ``geant4_config``;
* :func:`write_geant4` for Geant4-layout test files.

Reading back: :func:`read_clusters`, :func:`read_records`; :func:`describe_root`
summarises any ROOT file (``waders info``).
"""

from __future__ import annotations

from .clusters import (
    CLUSTER_COUNTER,
    PIXEL_COUNT,
    PIXEL_COUNTER,
    PIXELS,
    ClustersTreeWriter,
    read_clusters,
    write_clusters_tree,
)
from .describe import describe_root
from .geant4 import count_geant4_events, iter_geant4, read_geant4, read_run_info
from .geant4_writer import write_geant4
from .output import open_output
from .records import RecordsTreeWriter, read_records, write_records_tree

__all__ = [
    "CLUSTER_COUNTER",
    "PIXELS",
    "PIXEL_COUNT",
    "PIXEL_COUNTER",
    "ClustersTreeWriter",
    "RecordsTreeWriter",
    "count_geant4_events",
    "describe_root",
    "iter_geant4",
    "open_output",
    "read_clusters",
    "read_geant4",
    "read_records",
    "read_run_info",
    "write_clusters_tree",
    "write_geant4",
    "write_records_tree",
]
