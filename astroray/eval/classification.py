"""Classification metrics: accuracy, macro F1, per-class recall, confusion matrix.

Macro F1 and the confusion matrix come from :mod:`astroray.metrics` (scikit-learn).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from astroray import metrics

__all__ = ["classification_metrics", "confusion_matrix"]


def confusion_matrix(y_true: Sequence[Any], y_pred: Sequence[Any],
                     labels: Sequence[Any] | None = None) -> np.ndarray:
    """Counts (K, K): row = true class, column = predicted class, in ``labels`` order.

    :func:`astroray.metrics.confusion_matrix` without its labels.
    """
    return metrics.confusion_matrix(y_true, y_pred, labels)[0]


def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any],
                           labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """Accuracy, macro F1, per-class recall/precision/F1 and the confusion matrix.

    Macro F1 averages the per-class F1 over the classes present in ``y_true`` or ``y_pred``
    (scikit-learn's convention for ``average="macro"`` without ``labels``); a class never
    predicted and never true does not count. A class with no true members has recall 0 (and is
    reported with its support of 0).

    Args:
        y_true: true classes (names or indices).
        y_pred: predicted classes, same kind.
        labels: class order of the outputs; default the sorted union of both arrays.

    Returns:
        ``{"n", "accuracy", "macro_f1", "per_class": {label: {"recall", "precision", "f1",
        "support"}}, "per_class_recall": {label: recall}, "labels", "confusion"}`` (confusion as
        nested lists, rows true, columns predicted).
    """
    from sklearn.metrics import precision_recall_fscore_support  # lazy: scikit-learn

    counts, labels = metrics.confusion_matrix(y_true, y_pred, labels)
    n = int(counts.sum())
    if n:
        # zero_division=0: no true members -> recall 0, never predicted -> precision 0.
        precision, recall, f1, support = precision_recall_fscore_support(
            np.asarray(y_true), np.asarray(y_pred), labels=labels, zero_division=0)
    else:  # scikit-learn refuses empty input
        precision = recall = f1 = support = np.zeros(len(labels))
    names = [str(v) for v in labels]
    return {
        "n": n,
        "accuracy": float(np.trace(counts) / n) if n else float("nan"),
        "macro_f1": metrics.macro_f1(y_true, y_pred),
        "per_class": {name: {"recall": float(recall[i]), "precision": float(precision[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(names)},
        "per_class_recall": {name: float(recall[i]) for i, name in enumerate(names)},
        "labels": names,
        "confusion": counts.tolist(),
    }
