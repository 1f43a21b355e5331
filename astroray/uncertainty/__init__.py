"""Uncertainty of classifiers: MC Dropout, hierarchical stochastic attention, their scores."""

from astroray.uncertainty.hsa import (
    HierarchicalStochasticAttention,
    fit_centroids,
    gumbel_softmax,
)
from astroray.uncertainty.mc import has_stochastic_layers, sample_probabilities, stochastic
from astroray.uncertainty.scores import (
    SCORES,
    expected_calibration_error,
    misclassification_auroc,
    reliability_curve,
    uncertainty_metrics,
    uncertainty_scores,
)

__all__ = [
    "SCORES",
    "HierarchicalStochasticAttention",
    "expected_calibration_error",
    "fit_centroids",
    "gumbel_softmax",
    "has_stochastic_layers",
    "misclassification_auroc",
    "reliability_curve",
    "sample_probabilities",
    "stochastic",
    "uncertainty_metrics",
    "uncertainty_scores",
]
