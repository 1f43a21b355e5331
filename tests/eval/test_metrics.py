"""Every metric against an independent computation (scikit-learn, scipy, plain numpy)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy.stats import median_abs_deviation
from sklearn import metrics as skm

from astroray.eval import (
    classification_metrics,
    confusion_matrix,
    plot_confusion_matrix,
    plot_redshift,
    r2_score,
    redshift_metrics,
)


def _labels(seed: int, n: int = 400, k: int = 5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    names = np.array(["Cep", "EB", "LPV", "RRab", "RRc"])[:k]
    return names[y], names[pred]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed):
    y, p = _labels(seed)
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
    labels = sorted(set(y) | set(p))
    recalls = skm.recall_score(y, p, average=None, labels=labels)
    precisions = skm.precision_score(y, p, average=None, labels=labels)
    for name, r, pr in zip(labels, recalls, precisions, strict=True):
        assert m["per_class_recall"][name] == pytest.approx(r, abs=1e-12)
        assert m["per_class"][name]["precision"] == pytest.approx(pr, abs=1e-12)
        assert m["per_class"][name]["support"] == int((y == name).sum())
    np.testing.assert_array_equal(np.array(m["confusion"]),
                                  skm.confusion_matrix(y, p, labels=labels))
    assert m["n"] == len(y)


def test_missing_class_and_label_order():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0, 2, 1, 1, 0])  # class 2 predicted but never true
    m = classification_metrics(y, p, labels=[2, 1, 0])
    assert m["labels"] == ["2", "1", "0"]
    assert m["per_class_recall"]["2"] == 0.0 and m["per_class"]["2"]["support"] == 0
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
    np.testing.assert_array_equal(confusion_matrix(y, p, labels=[2, 1, 0]),
                                  skm.confusion_matrix(y, p, labels=[2, 1, 0]))
    with pytest.raises(ValueError, match="not among the labels"):
        classification_metrics(y, p, labels=[0, 1])


def test_per_class_and_listed_class_f1():
    from astroray.metrics import macro_f1, per_class_f1

    y, p = [0, 0, 1, 1, 1], [0, 1, 1, 1, 0]
    labels = [0, 1, 2]  # 2 is in neither array: F1 0 when listed, absent otherwise
    expected = skm.f1_score(y, p, labels=labels, average=None, zero_division=0)
    np.testing.assert_allclose(per_class_f1(y, p, labels), expected)
    assert macro_f1(y, p, labels) == pytest.approx(expected.mean())
    assert macro_f1(y, p) == pytest.approx(expected[:2].mean())
    assert per_class_f1([], [], labels).tolist() == [0.0, 0.0, 0.0]


def test_redshift_metrics_match_independent_computations():
    rng = np.random.default_rng(3)
    z = rng.uniform(0.0, 3.0, 2000)
    zp = z + 0.02 * (1 + z) * rng.standard_normal(z.size)
    bad = rng.random(z.size) < 0.07
    zp[bad] += rng.choice([-1, 1], bad.sum()) * rng.uniform(0.3, 1.0, bad.sum()) * (1 + z[bad])
    m = redshift_metrics(z, zp)
    dz = (zp - z) / (1 + z)
    assert m["r2"] == pytest.approx(skm.r2_score(z, zp), abs=1e-12)
    assert m["nmad"] == pytest.approx(median_abs_deviation(dz, scale="normal"), rel=1e-4)
    assert m["outlier_fraction"] == pytest.approx(np.count_nonzero(np.abs(dz) > 0.15) / z.size)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(z, zp)), abs=1e-12)
    assert m["bias"] == pytest.approx(float(np.median(dz)), abs=1e-12)
    # A perfect prediction; non-finite pairs dropped and counted.
    zp2 = z.copy()
    zp2[:5] = np.nan
    perfect = redshift_metrics(z, zp2)
    assert perfect["n_dropped"] == 5 and perfect["n"] == z.size - 5
    assert perfect["r2"] == 1.0 and perfect["nmad"] == 0.0 and perfect["outlier_fraction"] == 0.0
    assert np.isnan(r2_score([1.0, 1.0], [1.0, 2.0]))  # constant truth: undefined


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_figures_are_written(tmp_path):
    y, p = _labels(0)
    m = classification_metrics(y, p)
    path = plot_confusion_matrix(m["confusion"], m["labels"], tmp_path / "cm.png", "test")
    assert path.stat().st_size > 2000 and path.read_bytes()[:4] == b"\x89PNG"
    # Several settings side by side: one panel each, the figure widens accordingly.
    panels = plot_confusion_matrix({"20 per class": m["confusion"], "100 per class":
                                    m["confusion"]}, m["labels"], tmp_path / "cm2.png", "t")
    import matplotlib.pyplot as plt

    assert plt.imread(panels).shape[1] > 1.6 * plt.imread(path).shape[1]
    z = np.linspace(0, 2, 50)
    path = plot_redshift(z, z * 1.05, tmp_path / "z.png")
    assert path.stat().st_size > 2000 and path.read_bytes()[:4] == b"\x89PNG"
