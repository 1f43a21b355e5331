"""Classification metrics: accuracy, macro F1, per-class recall, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "confusion_matrix"]


def _codes(y_true: Sequence[Any], y_pred: Sequence[Any],
           labels: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Integer codes of both arrays over ``labels`` (default: the sorted union of values)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must be equal 1-D shapes")
    if labels is None:
        labels = sorted(set(t.tolist()) | set(p.tolist()))
    labels = list(labels)
    index = {v: i for i, v in enumerate(labels)}
    missing = sorted({str(v) for v in t.tolist() + p.tolist() if v not in index})
    if missing:
        raise ValueError(f"values {missing} are not among the labels {labels}")
    ti = np.fromiter((index[v] for v in t.tolist()), dtype=np.int64, count=t.size)
    pi = np.fromiter((index[v] for v in p.tolist()), dtype=np.int64, count=p.size)
    return ti, pi, labels


def confusion_matrix(y_true: Sequence[Any], y_pred: Sequence[Any],
                     labels: Sequence[Any] | None = None) -> np.ndarray:
    """Counts (K, K): row = true class, column = predicted class, in ``labels`` order."""
    ti, pi, labels = _codes(y_true, y_pred, labels)
    k = len(labels)
    return np.bincount(ti * k + pi, minlength=k * k).reshape(k, k)


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
    cm = confusion_matrix(y_true, y_pred, labels).astype(np.float64)
    _, _, labels = _codes(y_true, y_pred, labels)
    n = cm.sum()
    tp = np.diag(cm)
    support = cm.sum(axis=1)  # true members per class
    predicted = cm.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    names = [str(v) for v in labels]
    return {
        "n": int(n),
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": {name: {"recall": float(recall[i]), "precision": float(precision[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(names)},
        "per_class_recall": {name: float(recall[i]) for i, name in enumerate(names)},
        "labels": names,
        "confusion": cm.astype(np.int64).tolist(),
    }
