"""Uncertainty of classifiers: MC Dropout, hierarchical stochastic attention, their scores.

The stochastic layers and the Monte Carlo passes are model code (models use them), kept in
:mod:`astroray.models.layers` and re-exported here; the scores are this package's own.
"""

# re-export (issue 20: moved to astroray.models.layers)
from astroray.models.layers import (
    HierarchicalStochasticAttention,
    fit_centroids,
    gumbel_softmax,
    has_stochastic_layers,
    sample_probabilities,
    stochastic,
)
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
