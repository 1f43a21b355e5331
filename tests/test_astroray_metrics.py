"""astroray.metrics against independent computations (plain loops, scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from astroray.metrics import (
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    reliability_curve,
)


def _loop_macro_f1(y, p):
    """Mean over the classes of either array of 2 TP / (2 TP + FP + FN)."""
    f1s = []
    for c in sorted(set(y) | set(p)):
        tp = sum(a == c and b == c for a, b in zip(y, p, strict=True))
        fp = sum(a != c and b == c for a, b in zip(y, p, strict=True))
        fn = sum(a == c and b != c for a, b in zip(y, p, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s)


@pytest.mark.parametrize("seed", [0, 1])
def test_macro_f1_matches_loop(seed):
    rng = np.random.default_rng(seed)
    names = np.array(["Cep", "EB", "LPV", "RRab", "RRc"])
    y = names[rng.integers(0, 5, 300)]
    p = np.where(rng.random(300) < 0.6, y, names[rng.integers(0, 5, 300)])
    assert macro_f1(y, p) == pytest.approx(_loop_macro_f1(y.tolist(), p.tolist()), abs=1e-12)


def test_macro_f1_edge_cases():
    # Class 2 predicted but never true (F1 0, counted); class 3 true but never predicted (F1 0,
    # counted); a class in neither array does not exist for the average.
    y = [0, 0, 1, 1, 1, 3]
    p = [0, 2, 1, 1, 0, 1]
    assert macro_f1(y, p) == pytest.approx(_loop_macro_f1(y, p), abs=1e-12)
    assert macro_f1(y, p) == pytest.approx((1 / 2 + 2 / 3 + 0 + 0) / 4, abs=1e-12)
    assert macro_f1([1, 1], [1, 1]) == 1.0
    assert math.isnan(macro_f1([], []))
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        macro_f1([0, 1], [0])


def test_confusion_matrix_counts_and_labels():
    y = np.array(["b", "a", "a", "c", "b", "a"])
    p = np.array(["b", "a", "c", "c", "a", "a"])
    cm, labels = confusion_matrix(y, p)
    assert labels == ["a", "b", "c"]
    expected = np.zeros((3, 3), dtype=np.int64)
    for t, q in zip(y, p, strict=True):
        expected[labels.index(t), labels.index(q)] += 1
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64
    # Given labels set the order, and may hold classes absent from both arrays.
    cm2, labels2 = confusion_matrix(y, p, labels=["c", "d", "b", "a"])
    assert labels2 == ["c", "d", "b", "a"]
    order = [labels.index(v) for v in ("c", "b", "a")]
    np.testing.assert_array_equal(cm2[np.ix_([0, 2, 3], [0, 2, 3])], expected[np.ix_(order, order)])
    assert cm2[1].sum() == 0 and cm2[:, 1].sum() == 0
    with pytest.raises(ValueError, match="not among the labels"):
        confusion_matrix(y, p, labels=["a", "b"])
    empty, _ = confusion_matrix([], [], labels=[0, 1])
    np.testing.assert_array_equal(empty, np.zeros((2, 2)))


def _probs(seed: int, b: int = 500, c: int = 3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (4, b, c))  # (T, B, C)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = np.where(rng.random(b) < 0.7, p.mean(0).argmax(1), rng.integers(0, c, b))
    return p, y


def test_reliability_curve_matches_sklearn_calibration_curve():
    p, y = _probs(0)
    mean = p.mean(0)
    conf, correct = mean.max(1), (mean.argmax(1) == y).astype(int)
    curve = reliability_curve(y, p, n_bins=10)
    np.testing.assert_array_equal(curve["edges"], np.linspace(0, 1, 11))
    assert curve["count"].sum() == len(y)
    used = curve["count"] > 0
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(curve["accuracy"][used], prob_true, rtol=1e-12)
    np.testing.assert_allclose(curve["confidence"][used], prob_pred, rtol=1e-12)
    assert np.isnan(curve["accuracy"][~used]).all()
    # (T, B, C) samples are scored by their mean, (B, C) as they are.
    same = reliability_curve(y, mean, n_bins=10)
    np.testing.assert_array_equal(same["count"], curve["count"])


def test_reliability_bins_are_closed_below():
    # A confidence on an inner edge goes to the upper bin; 1.0 to the last one.
    # (Edges 0, 0.25, 0.5, 0.75, 1 are exact in binary; scikit-learn's binning would put 0.5
    # and 0.75 in the lower bins.)
    probs = np.array([[0.5, 0.5], [0.75, 0.25], [1.0, 0.0], [0.55, 0.45], [0.25, 0.75]])
    curve = reliability_curve([0, 0, 0, 1, 1], probs, n_bins=4)
    np.testing.assert_array_equal(curve["count"], [0, 0, 2, 3])
    np.testing.assert_allclose(curve["accuracy"][2:], [0.5, 1.0])


def test_expected_calibration_error_matches_loop():
    p, y = _probs(1)
    mean = p.mean(0)
    conf, pred = mean.max(1), mean.argmax(1)
    n_bins, ece = 12, 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        inside = [i for i in range(len(y)) if lo <= conf[i] < hi or (m == n_bins - 1
                                                                      and conf[i] == 1.0)]
        if inside:
            acc = sum(pred[i] == y[i] for i in inside) / len(inside)
            avg = sum(conf[i] for i in inside) / len(inside)
            ece += len(inside) / len(y) * abs(acc - avg)
    assert expected_calibration_error(y, p, n_bins) == pytest.approx(ece, rel=1e-12)
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(y, p, 0)
    with pytest.raises(ValueError, match="NaN"):
        reliability_curve([0], np.array([[np.nan, 1.0]]))


def test_old_names_are_the_shared_functions():
    from astroray import metrics
    from astroray.eval import classification_metrics
    from astroray.train.metrics import macro_f1 as train_macro_f1
    from astroray.uncertainty import (
        expected_calibration_error as ece,
    )
    from astroray.uncertainty import (
        reliability_curve as curve,
    )

    assert train_macro_f1 is metrics.macro_f1
    assert curve is metrics.reliability_curve and ece is metrics.expected_calibration_error
    y, p = [0, 0, 1, 1, 1, 3], [0, 2, 1, 1, 0, 1]
    assert classification_metrics(y, p)["macro_f1"] == pytest.approx(_loop_macro_f1(y, p))
