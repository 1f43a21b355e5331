"""Layers and helpers that more than one model family uses (as ``timm.layers``).

:mod:`~astroray.models.layers.hsa`: hierarchical stochastic attention;
:mod:`~astroray.models.layers.stochastic`: Monte Carlo passes of a model with dropout or HSA.
"""

from astroray.models.layers.hsa import (
    FORMS,
    HierarchicalStochasticAttention,
    fit_centroids,
    gumbel_softmax,
)
from astroray.models.layers.stochastic import (
    has_stochastic_layers,
    sample_probabilities,
    stochastic,
)

__all__ = ["FORMS", "HierarchicalStochasticAttention", "fit_centroids", "gumbel_softmax",
           "has_stochastic_layers", "sample_probabilities", "stochastic"]
