"""Evaluation: classification and redshift metrics, and their figures."""

from astroray.eval.classification import classification_metrics, confusion_matrix
from astroray.eval.plots import plot_confusion_matrix, plot_redshift, plot_reliability
from astroray.eval.regression import OUTLIER_THRESHOLD, r2_score, redshift_metrics

__all__ = [
    "OUTLIER_THRESHOLD",
    "classification_metrics",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_redshift",
    "plot_reliability",
    "r2_score",
    "redshift_metrics",
]
