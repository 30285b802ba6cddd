"""Stand-alone analysis tools: the successors of pysimdamicm's scripts (reference E.5).

Each tool is a pure, tested kernel with a thin command wrapped in :mod:`.commands`:

* :mod:`.threshold` -- ``waders energy-threshold`` (``get_energy_threshold``): the 0e/1e
  pixel threshold maximising the F1 score of the dark-current model;
* :mod:`.hotregions` -- ``waders hot-regions`` (``find_hot_regions``): columns, rows and
  pixels with an excess of charge;
* :mod:`.topology` -- ``waders cluster-topology`` (``cluster_topology``): per-cluster shape
  quantities, a shape class and the stacked energy-topology map;
* :mod:`.grid` -- ``waders image-grid`` (``drawImageGrid``): a PNG grid of images or
  amplifiers.
"""

from __future__ import annotations
