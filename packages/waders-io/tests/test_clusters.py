"""Cluster quantities shared by waders-sim and waders-ana (waders.io.clusters), on clusters with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from waders.io.clusters import Groups, cluster_quantities, clusters_array, pixel_field_names, seed_quantities


def test_quantities_of_two_hand_made_clusters():
    # cluster 0: a horizontal pair (x 3, 4; y 5) with 1 and 3 keV; cluster 1: one pixel at (10, 2), 2 keV
    x = np.array([3.0, 4.0, 10.0])
    y = np.array([5.0, 5.0, 2.0])
    energy = np.array([1.0, 3.0, 2.0])
    groups = Groups(np.array([2, 1]))
    q = cluster_quantities(groups, {"X": x, "Y": y}, energy)
    assert q["Npix"].tolist() == [2, 1]
    assert q["Energy"].tolist() == [4.0, 2.0]
    assert q["PosX"].tolist() == [3.75, 10.0]  # energy-weighted mean
    assert q["meanX"].tolist() == [3.5, 10.0] and q["DX"].tolist() == [2.0, 1.0] and q["DY"].tolist() == [1.0, 1.0]
    assert q["RMSX"].tolist() == [12.5, 100.0]  # pysimdamicm's mean square
    assert q["STD_X"] == pytest.approx([0.5, 0.0])
    assert q["wSTD_X"] == pytest.approx([np.sqrt(0.25 * 0.75**2 + 0.75 * 0.25**2), 0.0])
    assert q["dwSTD_X"] == pytest.approx(q["wSTD_X"] / np.sqrt([2, 1]))
    assert q["Qmax"].tolist() == [3.0, 2.0] and q["QmaxX"].tolist() == [4.0, 10.0]
    seeds = seed_quantities(groups, energy, energy >= 2.0, np.array([0.5, 0.5]), np.array([2.0, 2.0]))
    assert seeds["has_seed"].tolist() == [True, True] and seeds["seed_nsig_max"].tolist() == [6.0, 4.0]
    clusters = clusters_array(q, {"pixels_x": x.astype(np.int32), "pixels_E": energy}, groups.counts)
    assert len(clusters) == 2 and clusters[0]["pixels_E"].tolist() == [1.0, 3.0]
    assert pixel_field_names(clusters) == ["pixels_x", "pixels_E"]


def test_empty_and_inconsistent_inputs():
    empty = Groups(np.zeros(0, dtype=np.int64))
    assert cluster_quantities(empty, {"X": np.zeros(0), "Y": np.zeros(0)}, np.zeros(0))["Energy"].size == 0
    with pytest.raises(ValueError, match="at least one pixel"):
        Groups(np.array([1, 0]))
    with pytest.raises(ValueError, match="has \\(3,\\) values for 2 clusters"):
        clusters_array({"Energy": np.ones(3)}, {}, np.array([1, 1]))
