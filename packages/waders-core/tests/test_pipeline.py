from __future__ import annotations

import numpy as np
import pytest

from waders.core import AmplifierGeometry, Pipeline, RunContext, SkipperImage, load_config
from waders.core.errors import DataError


def make_image(rng, gain=10.0, noise=2.0, nskips=50):
    """Two amplifiers with a per-row pedestal, known charge and 5 overscan columns."""
    nrows, ncols = 30, 40
    truth = {}
    arrays, geoms = {}, {}
    for name, offset in (("L", 0), ("U", ncols)):
        pedestal = rng.uniform(100, 200, size=nrows)
        charge = rng.poisson(0.5, size=(nrows, ncols)).astype(float)
        charge[:, -5:] = 0.0  # overscan: no charge
        raw = pedestal[:, None, None] + gain * charge[:, :, None] + rng.normal(0, noise, (nrows, ncols, nskips))
        arrays[name] = raw
        geoms[name] = AmplifierGeometry(name, nrows, ncols, overscan_cols=5, col_offset=offset, mirrored=name == "U")
        truth[name] = charge
    return SkipperImage.from_arrays(arrays, geometries=geoms), truth


def test_configured_chain_recovers_the_charge(registry):
    rng = np.random.default_rng(7)
    image, truth = make_image(rng)
    config = load_config(
        {"process": {"sequence": "MeanOverSkips;RowPedestal;Calibrate", "Calibrate": {"gain": {"L": 10.0, "U": 10.0}}}},
        kind="analysis",
        registry=registry,
    )
    Pipeline.from_config(config).run(image, RunContext(seed=1))
    for name, charge in truth.items():
        electrons = image[name].get("mean_compressed_pedestal_subtracted_e")
        # per-pixel noise after averaging 50 skips: 2/sqrt(50) ADU = 0.028 e-; the pedestal median
        # of 5 overscan pixels adds about 1.25 * 0.028 / sqrt(5) e-: rounding recovers every pixel.
        assert np.array_equal(np.rint(electrons), charge)
    steps = image.provenance.steps
    assert [s.process for s in steps] == ["MeanOverSkips", "RowPedestal", "Calibrate"]
    assert steps[2].parameters["gain"] == {"L": 10.0, "U": 10.0}
    assert all(s.seconds >= 0 for s in steps)
    assert set(image.provenance.timings) == {"MeanOverSkips", "RowPedestal", "Calibrate"}
    assert "waders-core" in image.provenance.versions
    cards = {k: v for k, v, _ in image.provenance.header_cards()}
    assert cards["WPROC1"] == "MeanOverSkips" and cards["WSEED"] == 1


def test_missing_input_product_names_the_fix(registry):
    image, _ = make_image(np.random.default_rng(0), nskips=2)
    config = load_config({"process": {"sequence": "RowPedestal"}}, kind="analysis", registry=registry)
    with pytest.raises(DataError, match="'mean_compressed' is not available .*run the process that produces it"):
        Pipeline.from_config(config).run(image)


def test_simulation_chain_runs_in_default_order(registry):
    config = load_config(
        {"detector_response": {"Smear": {"active": 1}, "Pixelize": {"active": 1}}}, kind="simulation", registry=registry
    )
    trace: list[str] = []
    Pipeline.from_config(config).run(trace)
    assert trace == ["Pixelize", "Smear"]


def test_random_streams_depend_only_on_seed_and_keys():
    a, b = RunContext(seed=42), RunContext(seed=42)
    first = a.rng("Diffusion", 7).normal(size=5)
    b.rng("Other", 1).normal(size=100)  # requesting other streams first changes nothing
    assert np.array_equal(b.rng("Diffusion", 7).normal(size=5), first)
    assert not np.array_equal(a.rng("Diffusion", 8).normal(size=5), first)
    assert not np.array_equal(RunContext(seed=43).rng("Diffusion", 7).normal(size=5), first)
    assert RunContext().seed is not None  # unseeded runs record the seed they drew
