"""A lab's own waders processes and command, installed as a separate package."""

from __future__ import annotations

import click
import numpy as np

from waders.core import Param, Process
from waders.core.kinds import Float


class LabMean(Process):
    """Average the raw samples over skips (the lab's own compression)."""

    per_amplifier = True

    def process_amplifier(self, image, amplifier, context):
        amplifier.set("mean_compressed", np.asarray(amplifier.get("raw")).mean(axis=2))


class LabPixelsAbove(Process):
    """Count the pixels above a threshold."""

    per_amplifier = True
    image = Param("mean_compressed", doc="input image product")
    threshold = Param(5.0, Float(), unit="ADU", doc="threshold")

    def process_amplifier(self, image, amplifier, context):
        n_above = int((amplifier.get(self.image) > self.threshold).sum())
        amplifier.record(self.name, n_above=n_above)


@click.command("lab")
def lab() -> None:
    """The lab's own command."""
    click.echo("hello from the lab")
