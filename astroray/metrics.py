"""Classification and calibration metrics shared by training, evaluation and uncertainty.

The lowest layer of the package (numpy and scikit-learn only), so that every figure of a run,
an evaluation table and an uncertainty study is computed one way:

* :func:`macro_f1`: scikit-learn's macro F1 over the classes present in the truth or the
  predictions (or over given classes). A class that is predicted but never true, or true but
  never predicted, counts with F1 = 0 (``2 TP / (2 TP + FP + FN)``); a class in neither array
  does not count unless it is listed. :func:`per_class_f1` gives the F1 of each class.
* :func:`confusion_matrix`: scikit-learn's matrix over given or sorted-union labels, with a
  clear error for values outside the labels (scikit-learn silently drops them).
* :func:`reliability_curve` and :func:`expected_calibration_error`: confidence bins of the
  mean prediction on the equal-width edges of scikit-learn's
  ``calibration_curve(strategy="uniform")``; a confidence on an inner edge goes to the upper
  bin (bins are ``[lo, hi)``, the last one includes 1), and empty bins are kept (NaN), so that
  every bin has a count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["confusion_matrix", "expected_calibration_error", "macro_f1", "per_class_f1",
           "reliability_curve"]


def _pair(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must be equal 1-D shapes")
    return t, p


def _present(t: np.ndarray, p: np.ndarray) -> list[Any]:
    """The sorted union of the values of both arrays."""
    return sorted(set(t.tolist()) | set(p.tolist()))


def macro_f1(y_true: Sequence[Any], y_pred: Sequence[Any],
             labels: Sequence[Any] | None = None) -> float:
    """Macro-averaged F1 (scikit-learn) over the classes present in either array.

    Args:
        y_true: true classes (names or indices), (N,).
        y_pred: predicted classes, same kind, (N,).
        labels: the classes averaged over; default those present in either array. A listed
            class in neither array counts with F1 = 0.

    Returns:
        The mean over those classes of ``2 TP / (2 TP + FP + FN)``; NaN for empty input.
    """
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        return float("nan")
    return float(np.mean(per_class_f1(t, p, labels)))


def per_class_f1(y_true: Sequence[Any], y_pred: Sequence[Any],
                 labels: Sequence[Any] | None = None) -> np.ndarray:
    """F1 of each class (scikit-learn), ``2 TP / (2 TP + FP + FN)``, 0 where that is 0 / 0.

    Args:
        y_true: true classes (names or indices), (N,).
        y_pred: predicted classes, same kind, (N,).
        labels: class order; default the sorted union of both arrays.

    Returns:
        (K,) float64 F1 in ``labels`` order (zeros for empty input).
    """
    from sklearn.metrics import f1_score  # lazy: scikit-learn

    t, p = _pair(y_true, y_pred)
    labels = _present(t, p) if labels is None else list(labels)
    if t.size == 0:  # scikit-learn refuses empty input
        return np.zeros(len(labels))
    return f1_score(t, p, labels=labels, average=None, zero_division=0).astype(np.float64)


def confusion_matrix(y_true: Sequence[Any], y_pred: Sequence[Any],
                     labels: Sequence[Any] | None = None) -> tuple[np.ndarray, list[Any]]:
    """Counts (K, K): row = true class, column = predicted class, in ``labels`` order.

    Args:
        y_true: true classes, (N,).
        y_pred: predicted classes, (N,).
        labels: class order; default the sorted union of both arrays.

    Returns:
        ``(matrix, labels)``: int64 (K, K) counts and the labels of its rows and columns.

    Raises:
        ValueError: for unequal shapes, or a value that is not among ``labels``.
    """
    from sklearn import metrics  # lazy: scikit-learn

    t, p = _pair(y_true, y_pred)
    labels = _present(t, p) if labels is None else list(labels)
    known = set(labels)
    missing = sorted({str(v) for v in t.tolist() + p.tolist() if v not in known})
    if missing:
        raise ValueError(f"values {missing} are not among the labels {labels}")
    if t.size == 0:  # scikit-learn refuses empty input; no objects, no counts
        return np.zeros((len(labels), len(labels)), dtype=np.int64), labels
    return metrics.confusion_matrix(t, p, labels=labels).astype(np.int64), labels


def _mean_probabilities(probs: Any) -> np.ndarray:
    """``probs`` (B, C), or the mean over T of (T, B, C) samples, checked, as float64."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim not in (2, 3) or p.shape[-1] < 2:
        raise ValueError(f"probabilities must be (T, B, C) or (B, C) with C >= 2; got shape "
                         f"{p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinite values")
    return p.mean(axis=0) if p.ndim == 3 else p


def reliability_curve(y_true: Sequence[int], probs: Any, n_bins: int = 15
                      ) -> dict[str, np.ndarray]:
    """Confidence bins of the mean prediction: count, mean confidence and accuracy per bin.

    Bins are equal-width on the confidence (max mean probability) in [0, 1], scikit-learn's
    uniform calibration-curve edges; a bin holds ``lo <= confidence < hi``, the last also 1.

    Args:
        y_true: (B,) true class indices.
        probs: (B, C) class probabilities, or (T, B, C) sampled ones (their mean is scored).
        n_bins: number of bins.

    Returns:
        ``{"edges": (n_bins + 1,), "count", "confidence", "accuracy": (n_bins,)}`` (NaN in empty
        bins).
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    mean = _mean_probabilities(probs)  # (B, C)
    conf = mean.max(axis=1)
    correct = (mean.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)  # as sklearn.calibration.calibration_curve
    which = np.digitize(conf, edges[1:-1])  # 0 .. n_bins - 1; 1.0 lands in the last bin
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, conf, minlength=n_bins) / count
        accuracy = np.bincount(which, correct, minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": confidence, "accuracy": accuracy}


def expected_calibration_error(y_true: Sequence[int], probs: Any, n_bins: int = 15) -> float:
    """Expected calibration error: ``sum_m |B_m| / n * |acc(B_m) - conf(B_m)|``.

    Args:
        y_true: (B,) true class indices.
        probs: (B, C) class probabilities, or (T, B, C) sampled ones (their mean is scored).
        n_bins: equal-width confidence bins (:func:`reliability_curve`).

    Returns:
        The error, in [0, 1].
    """
    curve = reliability_curve(y_true, probs, n_bins)
    used = curve["count"] > 0
    gap = np.abs(curve["accuracy"][used] - curve["confidence"][used])
    return float((curve["count"][used] * gap).sum() / curve["count"].sum())
