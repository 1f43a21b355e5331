"""Uncertainty scores, calibration and misclassification AUROC against plain numpy loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from astroray.uncertainty import (
    expected_calibration_error,
    misclassification_auroc,
    reliability_curve,
    uncertainty_metrics,
    uncertainty_scores,
)


def _samples(seed: int, t: int = 7, b: int = 40, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(1, b, c)) * 2.0 + rng.normal(size=(t, b, c)) * rng.uniform(
        0.05, 1.5, size=(1, b, 1))
    p = np.exp(logits)
    p /= p.sum(axis=-1, keepdims=True)
    y = rng.integers(0, c, size=b)
    return p, y


def test_scores_match_loops():
    p, _ = _samples(0)
    got = uncertainty_scores(p)
    t, b, c = p.shape
    for i in range(b):
        mean = [sum(p[s, i, k] for s in range(t)) / t for k in range(c)]
        assert got["smp"][i] == pytest.approx(1.0 - max(mean), abs=1e-12)
        variances = [sum((p[s, i, k] - mean[k]) ** 2 for s in range(t)) / t for k in range(c)]
        assert got["pv"][i] == pytest.approx(sum(variances) / c, rel=1e-9)
        h_mean = -sum(m * math.log(m) for m in mean)
        h_each = [-sum(p[s, i, k] * math.log(p[s, i, k]) for k in range(c)) for s in range(t)]
        assert got["entropy"][i] == pytest.approx(h_mean, rel=1e-9)
        assert got["bald"][i] == pytest.approx(h_mean - sum(h_each) / t, rel=1e-7, abs=1e-12)
    # One pass: no spread, so PV and BALD are zero.
    one = uncertainty_scores(p[0])
    assert np.all(one["pv"] == 0) and np.allclose(one["bald"], 0)


def test_misclassification_auroc_matches_pairwise_count():
    p, y = _samples(1, b=60)
    scores = uncertainty_scores(p)
    got = misclassification_auroc(y, p)
    wrong = scores["mean"].argmax(1) != y
    assert 0 < wrong.sum() < len(y)
    for name in ("smp", "pv", "bald", "entropy"):
        s = scores[name]
        pos, neg = s[wrong], s[~wrong]
        wins = sum((a > b_) + 0.5 * (a == b_) for a in pos for b_ in neg)
        assert got[name] == pytest.approx(wins / (len(pos) * len(neg)), rel=1e-12)
    # All right: undefined.
    right = scores["mean"].argmax(1)
    assert all(math.isnan(v) for v in misclassification_auroc(right, p).values())


def test_expected_calibration_error_matches_loop():
    p, y = _samples(2, b=200, c=3)
    n_bins = 10
    mean = p.mean(0)
    conf, pred = mean.max(1), mean.argmax(1)
    ece = 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        inside = [i for i in range(len(y))
                  if lo <= conf[i] < hi or (m == n_bins - 1 and conf[i] == 1.0)]
        if inside:
            acc = sum(pred[i] == y[i] for i in inside) / len(inside)
            avg = sum(conf[i] for i in inside) / len(inside)
            ece += len(inside) / len(y) * abs(acc - avg)
    assert expected_calibration_error(y, p, n_bins) == pytest.approx(ece, rel=1e-12)
    curve = reliability_curve(y, p, n_bins)
    assert curve["count"].sum() == len(y)
    # A perfectly confident, always right model is calibrated.
    onehot = np.eye(3)[y][None]
    assert expected_calibration_error(y, onehot) == 0.0


def test_bad_probabilities_are_named():
    with pytest.raises(ValueError, match="NaN"):
        uncertainty_scores(np.full((2, 3, 2), np.nan))
    with pytest.raises(ValueError, match="shape"):
        uncertainty_scores(np.ones(5))


def test_results_row_from_loops():
    """Macro F1, accuracy and NLL of the mean prediction, by hand, beside the scores' AUROCs."""
    p, y = _samples(5, c=3)
    got = uncertainty_metrics(y, p, n_bins=10)
    mean = p.mean(axis=0)
    pred = mean.argmax(axis=1)
    f1s = []
    for c in range(3):
        tp = np.sum((pred == c) & (y == c))
        fp, fn = np.sum((pred == c) & (y != c)), np.sum((pred != c) & (y == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    assert got["macro_f1"] == pytest.approx(np.mean(f1s))
    assert got["accuracy"] == pytest.approx(np.mean(pred == y))
    nll = -np.mean([math.log(mean[i, y[i]]) for i in range(len(y))])
    assert got["nll"] == pytest.approx(nll)
    assert got["ece"] == pytest.approx(expected_calibration_error(y, p, 10))
    auc = misclassification_auroc(y, p)
    for k in ("smp", "pv", "bald", "entropy"):
        assert got[f"auroc_{k}"] == pytest.approx(auc[k])
