"""Titles of the cluster trees waders writes: they state the units of the branches.

uproot (5.x) has no public way to set a *branch* title (it writes the leaf list,
``Energy/D``), so the units are stated in the tree title, which ``TTree::Print()``,
``tree->GetTitle()`` and ``uproot``'s ``tree.title`` show, and in the units table of
``docs/outputs.md``.
"""

from __future__ import annotations

__all__ = ["CLUSTERS_REC_TITLE", "CLUSTERS_TRUE_TITLE", "PIXELIZED_TITLE", "TITLES", "UNITS"]

#: Units of the cluster branches (one sentence, the same in every cluster tree).
UNITS = (
    "units: Energy, Qmax, pixels_E, qmin_cluster_seed in keV; sigma_seed_eV in eV; "
    "X/Y positions, sizes and distances in pixels, 1-based file coordinates (pixels_x = column + 1); "
    "Z, pixels_z in mm (data: -1)"
)
CLUSTERS_REC_TITLE = f"reconstructed clusters; {UNITS}"
CLUSTERS_TRUE_TITLE = f"clusters of the noiseless simulated signal; {UNITS}"
PIXELIZED_TITLE = f"pixelized simulated events, per CCD; {UNITS}"
#: Title of each cluster tree by name.
TITLES = {"clustersRec": CLUSTERS_REC_TITLE, "clustersTrue": CLUSTERS_TRUE_TITLE, "pixelizedEvent": PIXELIZED_TITLE}
