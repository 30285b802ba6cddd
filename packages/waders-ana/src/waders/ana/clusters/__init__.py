"""Clusters of charge: threshold, grouping, cluster quantities and cluster masks.

Processes (registered under ``waders.processes``):

* :class:`~waders.ana.clusters.finder.ClusterFinder` - threshold ``[sigma, n_pix, n_seed]``
  and group pixels (8-connectivity or single linkage); the clusters of an image are an
  awkward Array in ``image.results["ClusterFinder"]["clusters"]``;
* :class:`~waders.ana.clusters.mask.BuildClusterMask` - ``mask_clusters`` products;
* :class:`~waders.ana.clusters.mask.ApplySelectionCuts` - hot rows/columns and the
  clusters' ``hotreg``/``excluded`` flags.

Building blocks: :func:`~waders.ana.clusters.threshold.resolve_threshold`,
:func:`~waders.ana.clusters.labelling.label_candidates`,
:func:`~waders.ana.clusters.properties.cluster_quantities`,
:func:`~waders.ana.clusters.properties.clusters_array`,
:func:`~waders.ana.clusters.mask.box_mask`.
"""

from __future__ import annotations

from ..base import file_index_selector
from .finder import ClusterFinder, find_clusters
from .labelling import keep_seeded, label_candidates, linking_radius
from .mask import ApplySelectionCuts, BuildClusterMask, box_mask
from .properties import PIXEL_FIELDS, cluster_quantities, clusters_array, pixel_field_names
from .threshold import Threshold, ThresholdKind, resolve_threshold

__all__ = [
    "PIXEL_FIELDS",
    "ApplySelectionCuts",
    "BuildClusterMask",
    "ClusterFinder",
    "Threshold",
    "ThresholdKind",
    "box_mask",
    "cluster_quantities",
    "clusters_array",
    "file_index_selector",
    "find_clusters",
    "keep_seeded",
    "label_candidates",
    "linking_radius",
    "pixel_field_names",
    "resolve_threshold",
]
