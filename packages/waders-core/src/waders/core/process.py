"""The :class:`Process` base class: one small step of a pipeline.

A process reads named inputs from a data container (a
:class:`~waders.core.image.SkipperImage` for analysis, a
:class:`~waders.core.hits.HitCollection` for simulation), computes, and adds named
outputs and results.  Its parameters are declared once with
:class:`~waders.core.parameters.Param`::

    class ScaleImage(Process):
        \"\"\"Multiply an image product by a constant.\"\"\"

        domain = "ana"
        per_amplifier = True
        image = Param("mean_compressed", doc="input image product")
        factor = Param(1.0, doc="multiplicative factor")

        def process_amplifier(self, image, amplifier, context):
            amplifier.set(f"{self.image}_scaled", amplifier.get(self.image) * self.factor)

Processes are registered under the entry-point group ``waders.processes`` (the
entry-point name is the process name), so a lab can ship its own in its own package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .parameters import Configurable, Param
from .products import Product, check_products

if TYPE_CHECKING:
    from .image import Amplifier, SkipperImage
    from .pipeline import RunContext

__all__ = ["DOMAINS", "Process"]

#: Kinds of processes: analysis of images and detector-response simulation.
DOMAINS = ("ana", "sim")


class Process(Configurable):
    """Base class of all processes.

    Class attributes
    ----------------
    name : str
        Registry name (defaults to the class name); also the configuration section name.
    domain : str
        ``"ana"`` (works on skipper images) or ``"sim"`` (works on Geant4 hits).
    order : int
        Default position in a simulation chain (pysimdamicm's sequence id); analysis
        chains run in the order of the configured sequence.
    per_amplifier : bool
        If True, :meth:`run` calls :meth:`process_amplifier` once per amplifier.
    products : tuple of Product
        What the process makes (images, tables, results, figures; :mod:`waders.core.products`),
        checked when the class is defined.  The writers of a command are chosen from them.
    imports : tuple of str
        Heavy modules the process uses when it runs (scipy.special, awkward...), bound lazily
        in its modules (:func:`waders.core.lazy.lazy_module`): a command imports them in a
        background thread while it reads the data (:func:`waders.core.lazy.prefetch`).
        Leaving one out costs time, never correctness.
    """

    name: ClassVar[str] = "Process"
    domain: ClassVar[str] = "ana"
    order: ClassVar[int] = 100
    per_amplifier: ClassVar[bool] = False
    products: ClassVar[tuple[Product, ...]] = ()
    imports: ClassVar[tuple[str, ...]] = ()

    ignored_keys: ClassVar[dict[str, str]] = {
        "__DEBUG__": "pysimdamicm debug flag; use waders --debug",
        "__verbose__": "pysimdamicm verbosity flag; use waders -v",
        "__display__": "pysimdamicm interactive display; waders writes plots with --save-plots",
        "__silent__": "pysimdamicm flag; use the logging level",
        "__sequence_id__": "the order comes from the sequence",
    }

    save_plots = Param(False, doc="write this process's plots (set for all processes by --save-plots)")
    save_image = Param(False, doc="keep this process's output image in the saved FITS file")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "name" not in vars(cls):
            cls.name = cls.__name__
        if "products" in vars(cls):
            cls.products = check_products(cls.__name__, vars(cls)["products"])
        super().__init_subclass__(**kwargs)

    @classmethod
    def label(cls) -> str:
        """Name used in messages: the registry name."""
        return cls.name

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def run(self, data: Any, context: RunContext) -> None:
        """Run on one data container; per-amplifier processes loop over its amplifiers."""
        if not self.per_amplifier:
            raise NotImplementedError(f"{self.name} must implement run() or set per_amplifier = True")
        for amplifier in data.amplifiers.values():
            self.process_amplifier(data, amplifier, context)

    def process_amplifier(self, image: SkipperImage, amplifier: Amplifier, context: RunContext) -> None:
        """Run on one amplifier of ``image`` (for ``per_amplifier = True`` processes)."""
        raise NotImplementedError(f"{self.name} must implement process_amplifier()")
