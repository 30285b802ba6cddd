"""Processes and a registry used by the waders-core tests.

They are small but real: they compute on the data (mean over skips, pedestal
subtraction, calibration), so the tests can check results against a known truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from waders.core import Param, Process
from waders.core.kinds import Choice, Float
from waders.core.plugins import Registry


class MeanOverSkips(Process):
    """Average the raw samples of each pixel over its skips."""

    domain = "ana"
    per_amplifier = True
    order = 10

    def process_amplifier(self, image, amplifier, context):
        amplifier.set("mean_compressed", np.asarray(amplifier.get("raw")).mean(axis=2))


class RowPedestal(Process):
    """Subtract a per-row median of the overscan."""

    domain = "ana"
    per_amplifier = True
    order = 20
    image = Param("mean_compressed", doc="input image product")
    method = Param("median", Choice(["median", "mean"], aliases={"med": "median"}), doc="estimator")
    n_sigma_to_mask = Param(-1.0, doc="mask outliers beyond n MAD (<= 0: off)")

    def process_amplifier(self, image, amplifier, context):
        data = amplifier.get(self.image)
        _, cols = amplifier.geometry.region("overscan")
        estimator = np.median if self.method == "median" else np.mean
        pedestal = estimator(data[:, cols], axis=1)
        amplifier.set(f"{self.image}_pedestal_subtracted", data - pedestal[:, None])
        amplifier.record(self.name, pedestal=pedestal)


class Calibrate(Process):
    """Divide by a per-amplifier gain (ADU/e-)."""

    domain = "ana"
    per_amplifier = True
    order = 30
    image = Param("mean_compressed_pedestal_subtracted", doc="input image product")
    gain = Param(10.0, Float(min=0), unit="ADU/e", per_amplifier=True, doc="gain")

    def process_amplifier(self, image, amplifier, context):
        gain = self.value_for("gain", amplifier.name)
        amplifier.set(f"{self.image}_e", amplifier.get(self.image) / gain)


class Smear(Process):
    """A simulation step with a length, a time and a rate parameter."""

    domain = "sim"
    order = 10
    A = Param(216.2, Float(min=0), unit="um*um", doc="diffusion amplitude")
    B = Param(0.000886, unit="1/um", doc="diffusion shape")
    darkcurrent = Param(0.001, unit="e/pixel/day", doc="dark current")

    def run(self, data, context):
        data.append(self.name)


class Pixelize(Process):
    """A second simulation step, earlier in the default order than Smear."""

    domain = "sim"
    order = 5
    shift_pixel_in_x = Param(0, unit="pixel", doc="shift")

    def run(self, data, context):
        data.append(self.name)


class Monitor(Process):
    """A monitor element for DQM configurations."""

    domain = "dqm"
    n_mad = Param(5.0, doc="clip at n MAD")


@pytest.fixture
def registry() -> Registry:
    """A registry holding the test processes (no entry points involved)."""
    reg = Registry("waders.tests.processes", "process")
    reg._entries = {}
    for cls in (MeanOverSkips, RowPedestal, Calibrate, Smear, Pixelize):
        reg.register(cls)
    return reg


@pytest.fixture
def monitors() -> Registry:
    """A registry holding one monitor element."""
    reg = Registry("waders.tests.monitors", "monitor element")
    reg._entries = {}
    reg.register(Monitor)
    return reg


@pytest.fixture
def classes():
    """The test process classes by name."""
    return {c.__name__: c for c in (MeanOverSkips, RowPedestal, Calibrate, Smear, Pixelize, Monitor)}
