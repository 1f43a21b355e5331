"""Hierarchical stochastic attention, a model layer: see :mod:`astroray.models.layers.hsa`."""

# re-export (issue 20: moved to astroray.models.layers.hsa)
from astroray.models.layers.hsa import (
    FORMS,
    HierarchicalStochasticAttention,
    fit_centroids,
    gumbel_softmax,
)

__all__ = ["FORMS", "HierarchicalStochasticAttention", "fit_centroids", "gumbel_softmax"]
