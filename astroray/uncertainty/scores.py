"""Uncertainty scores of sampled class probabilities, calibration, misclassification detection.

Every function takes the probabilities of ``T`` stochastic passes (MC Dropout, HSA, ensemble
members) as one ``(T, B, C)`` array; a deterministic model is ``T = 1``. Scores grow with
uncertainty, so that each can rank objects for misclassification detection directly:

* ``smp``: 1 - sampled maximum probability, ``1 - max_c mean_t p[t, b, c]``;
* ``pv``: probability variance, ``mean_c var_t p[t, b, c]`` (population variance over T);
* ``bald``: mutual information between the prediction and the model (BALD),
  ``H[mean_t p] - mean_t H[p_t]``;
* ``entropy``: predictive entropy ``H[mean_t p]``.

Calibration (:func:`reliability_curve`, :func:`expected_calibration_error`) and the macro F1
come from :mod:`astroray.metrics`; the first two are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from astroray.metrics import expected_calibration_error, macro_f1, reliability_curve

__all__ = [
    "SCORES",
    "expected_calibration_error",
    "misclassification_auroc",
    "reliability_curve",
    "uncertainty_metrics",
    "uncertainty_scores",
]

SCORES = ("smp", "pv", "bald", "entropy")
_EPS = 1e-12


def _as_samples(probs: Any) -> np.ndarray:
    """``probs`` as a float64 (T, B, C) array; (B, C) is one pass."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[-1] < 2:
        raise ValueError(f"probabilities must be (T, B, C) or (B, C) with C >= 2; got shape "
                         f"{p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinite values")
    return p


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis."""
    return -(p * np.log(np.clip(p, _EPS, 1.0))).sum(axis=-1)


def uncertainty_scores(probs: Any) -> dict[str, np.ndarray]:
    """The uncertainty scores of each object from sampled probabilities.

    Args:
        probs: ``(T, B, C)`` class probabilities of T stochastic passes (or ``(B, C)``).

    Returns:
        ``{"mean": (B, C) mean probabilities, "smp", "pv", "bald", "entropy": (B,) each}``;
        every score is larger for a less certain prediction.
    """
    p = _as_samples(probs)  # (T, B, C)
    mean = p.mean(axis=0)  # (B, C)
    entropy = _entropy(mean)
    return {
        "mean": mean,
        "smp": 1.0 - mean.max(axis=1),
        "pv": p.var(axis=0).mean(axis=1),
        "bald": np.maximum(entropy - _entropy(p).mean(axis=0), 0.0),
        "entropy": entropy,
    }


def misclassification_auroc(y_true: Sequence[int], probs: Any,
                            scores: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """ROC-AUC of each score at flagging the misclassified objects (positives = wrong).

    Args:
        y_true: (B,) true class indices.
        probs: ``(T, B, C)`` sampled probabilities (the prediction is the argmax of the mean).
        scores: precomputed :func:`uncertainty_scores` of ``probs``.

    Returns:
        ``{score: AUC}``; NaN for every score when all predictions are right (or all wrong).
    """
    from sklearn.metrics import roc_auc_score  # lazy: scikit-learn

    scores = scores or uncertainty_scores(probs)
    y = np.asarray(y_true)
    wrong = scores["mean"].argmax(axis=1) != y
    if wrong.all() or not wrong.any():
        return dict.fromkeys(SCORES, float("nan"))
    return {name: float(roc_auc_score(wrong, scores[name])) for name in SCORES}


def uncertainty_metrics(y_true: Sequence[int], probs: Any, n_bins: int = 15) -> dict[str, float]:
    """How good and how trustworthy sampled predictions are, for a results table.

    Args:
        y_true: (B,) true class index.
        probs: (T, B, C) sampled probabilities (or (B, C), one pass).
        n_bins: confidence bins of the calibration error.

    Returns:
        ``macro_f1``, ``accuracy`` and ``nll`` of the mean prediction, its ``ece``, and
        ``auroc_<score>`` (misclassification ROC-AUC) of each score in :data:`SCORES`.
    """
    y = np.asarray(y_true)
    scores = uncertainty_scores(probs)
    mean = scores["mean"]  # (B, C)
    pred = mean.argmax(1)
    nll = -np.log(np.clip(mean[np.arange(len(y)), y], _EPS, 1.0)).mean()
    auc = misclassification_auroc(y, probs, scores)
    return {"macro_f1": macro_f1(y, pred),
            "accuracy": float((pred == y).mean()), "nll": float(nll),
            "ece": expected_calibration_error(y, probs, n_bins),
            **{f"auroc_{k}": v for k, v in auc.items()}}
