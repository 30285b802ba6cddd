from __future__ import annotations

import numpy as np
import pytest

from waders.core import AmplifierGeometry, HitCollection, SkipperImage, iter_row_blocks
from waders.core.errors import DataError


def test_regions_and_masks():
    g = AmplifierGeometry("L", nrows=10, ncols=20, prescan_cols=3, overscan_cols=5, prescan_rows=1, overscan_rows=2)
    assert g.active_cols == slice(3, 15)
    assert g.active_rows == slice(1, 8)
    assert g.region("overscan") == (slice(1, 8), slice(15, 20))
    mask = g.mask("active")
    assert mask.shape == (10, 20)
    assert (~mask).sum() == 7 * 12  # False = inside
    assert not mask[1, 3] and mask[0, 3] and mask[1, 15]


def test_missing_regions_and_bad_sizes():
    g = AmplifierGeometry("EXT1", nrows=4, ncols=8)
    with pytest.raises(DataError, match="EXT1 has no overscan columns"):
        g.region("overscan")
    with pytest.raises(DataError, match="unknown region 'middle'"):
        g.region("middle")
    with pytest.raises(DataError, match="exceed the 8 columns"):
        AmplifierGeometry("L", nrows=4, ncols=8, prescan_cols=5, overscan_cols=5)


def test_mirrored_amplifier_maps_back_to_file_columns():
    # two-amplifier row of 12 columns: L = file columns 0..5, U = 6..11 read from the right
    u = AmplifierGeometry("U", nrows=2, ncols=6, mirrored=True, col_offset=6)
    assert list(u.to_file_columns(np.arange(6))) == [11, 10, 9, 8, 7, 6]
    file_half = np.arange(12).reshape(2, 6)
    readout = file_half[:, ::-1]
    assert np.array_equal(u.to_file_layout(readout), file_half)


def test_image_products_and_clear_errors():
    raw = np.random.default_rng(1).normal(size=(4, 6, 3))
    image = SkipperImage.from_arrays({"L": raw}, exposure_time=100.0)
    amp = image["L"]
    assert image.geometry.nskips == 3 and not image.geometry.averaged
    assert amp.get("raw") is raw
    with pytest.raises(DataError, match=r"image 'mean_compressed' is not available for amplifier L \(available: raw\)"):
        amp.get("mean_compressed")
    amp.set("mean_compressed", raw.mean(axis=2))
    assert amp.available() == ["raw", "mean_compressed"]
    with pytest.raises(DataError, match="expected \\(4, 6\\)"):
        amp.set("bad", np.zeros((3, 6)))
    with pytest.raises(DataError, match="no amplifier 'U'"):
        image["U"]
    averaged = SkipperImage.from_arrays({"A": np.zeros((2, 2))}, product="mean_compressed")
    with pytest.raises(DataError, match="has no raw samples"):
        averaged["A"].get("raw")


def test_row_blocks_cover_every_row_once():
    raw = np.arange(7 * 2 * 3).reshape(7, 2, 3)
    blocks = list(iter_row_blocks(raw, 3))
    assert [start for start, _ in blocks] == [0, 3, 6]
    assert np.array_equal(np.concatenate([b for _, b in blocks]), raw)


def test_hit_collection():
    counts = np.array([2, 0, 3])
    flat = {name: np.arange(5, dtype=float) for name in ("x", "y", "z", "time", "edep")}
    flat.update(ccd=np.ones(5, dtype=int), pdg=np.full(5, 11))
    hits = HitCollection.from_arrays(np.array([10, 11, 12]), counts, flat)
    assert len(hits) == 3
    assert list(hits.n_hits) == [2, 0, 3]
    assert list(hits.total_energy()) == [1.0, 0.0, 9.0]
    assert [len(c) for c in hits.chunks(2)] == [2, 1]
    assert list(hits[hits.n_hits > 0].event_id) == [10, 12]
    with pytest.raises(DataError, match="missing hit field 'edep'"):
        HitCollection.from_arrays(np.array([1]), np.array([1]), {k: v[:1] for k, v in flat.items() if k != "edep"})
    with pytest.raises(DataError, match="has 5 entries, expected 4"):
        HitCollection.from_arrays(np.array([1, 2]), np.array([2, 2]), flat)
