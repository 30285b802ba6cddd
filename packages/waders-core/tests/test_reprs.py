"""Short reprs: a notebook printing an image, an amplifier or hits shows names and shapes, not arrays."""

from __future__ import annotations

import awkward as ak
import numpy as np

from waders.core import HitCollection, SkipperImage
from waders.core.image import MAX_REPR


def test_image_and_amplifier_reprs_are_short_and_name_the_products():
    rng = np.random.default_rng(0)
    arrays = {f"amplifier_{i}": rng.normal(size=(1000, 600, 4)) for i in range(12)}
    image = SkipperImage.from_arrays(arrays)
    for amp in image.amplifiers.values():
        amp.set("mean_compressed", amp.raw.mean(axis=2))
        amp.record("PedestalSubtractionProcess", pedestal_row=np.zeros(1000))
    text = repr(image)
    assert len(text) <= MAX_REPR and text.endswith("...>")  # 12 amplifiers do not fit: cut, still closed
    assert text.startswith("<SkipperImage <in-memory image>: amplifiers amplifier_0 1000x600")
    amp = repr(image["amplifier_3"])
    assert amp == (
        "<Amplifier amplifier_3: 1000x600 pixels; products: raw, mean_compressed; results: PedestalSubtractionProcess>"
    )
    small = repr(SkipperImage.from_arrays({"L": np.zeros((5, 6))}, product="mean_compressed"))
    assert small == "<SkipperImage <in-memory image>: amplifiers L 5x6; products: mean_compressed>"


def test_hit_collection_repr_counts_events_and_hits():
    n = 5000
    events = ak.zip(
        {
            "event_id": np.arange(n),
            **{
                name: ak.unflatten(np.ones(3 * n), np.full(n, 3))
                for name in ("x", "y", "z", "edep", "time", "pdg", "ccd")
            },
        },
        depth_limit=1,
    )
    text = repr(HitCollection(events))
    assert text == "<HitCollection: 5000 events, 15000 hits, without primaries>"
