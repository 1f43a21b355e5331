"""The bias metric L: a hand-computed table, an independent loop, unbiased and biased labels."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.debias import bias_metric, bootstrap_bias_metric, quantile_bins
from astroray.debias.metric import equal_count_bins, kd_tree_bins


def _loop_metric(y, intrinsic, observables, leaves, ob):
    """L the slow way, from the reference's recipe: recursive median splits, equal counts."""
    names = list(intrinsic)
    n = len(y)

    def split(rows, depth, var, base, out):
        if depth == 0:
            for r in rows:
                out[r] = base
            return
        if not rows:
            return
        vals = sorted(intrinsic[names[var]][r] for r in rows)
        m = len(vals)
        median = vals[m // 2] if m % 2 else (vals[m // 2 - 1] + vals[m // 2]) / 2
        left = [r for r in rows if intrinsic[names[var]][r] < median]
        right = [r for r in rows if intrinsic[names[var]][r] >= median]
        nxt = (var + 1) % len(names)
        split(left, depth - 1, nxt, base, out)
        split(right, depth - 1, nxt, base + 2 ** (depth - 1), out)

    depth = leaves.bit_length() - 1
    leaf = [0] * n
    split(list(range(n)), depth, 0, 0, leaf)
    total, per_obs = 0.0, []
    for values in observables.values():
        part = 0.0
        for q in range(leaves):
            rows = sorted((r for r in range(n) if leaf[r] == q), key=lambda r: values[r])
            if not rows:
                continue
            cuts = [int(np.round(len(rows) * j / ob)) for j in range(ob + 1)]
            f = [sum(y[r] for r in rows[cuts[j]:cuts[j + 1]]) / (cuts[j + 1] - cuts[j])
                 for j in range(ob)]
            part += sum((fj - f[0]) ** 2 for fj in f) / ob
        per_obs.append((part / leaves) ** 0.5)
        total += part
    return (total / (len(observables) * leaves)) ** 0.5, per_obs


def test_metric_on_a_hand_computed_table():
    # One intrinsic property: the KD-tree's root splits at its median 4.5 into {1..4}, {5..8}.
    # Two observable bins of 2 objects each per intrinsic bin, sorted by the observable.
    lum = np.arange(1.0, 9.0)
    z = np.array([0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4])
    psf = np.array([0.4, 0.3, 0.2, 0.1, 0.4, 0.1, 0.3, 0.2])
    y = np.array([1, 1, 0, 1, 0, 0, 1, 1])
    # z, objects 1, 2 | 3, 4: f = 1, 0.5, sigma2 = (0 + 0.5^2) / 2 = 0.125;
    #    objects 5, 6 | 7, 8: f = 0, 1, sigma2 = (0 + 1^2) / 2 = 0.5.
    # psf, objects 4, 3 | 2, 1: f = 0.5, 1, sigma2 = 0.125; objects 6, 8 | 7, 5: f = 0.5, 0.5,
    #    sigma2 = 0.
    # L = sqrt((0.125 + 0.5 + 0.125 + 0) / (2 observables * 1 class * 2 intrinsic bins)).
    got = bias_metric(y, {"lum": lum}, {"z": z, "psf": psf}, intrinsic_bins=2,
                      observable_bins=2, min_count=2)
    assert got["L"] == pytest.approx(np.sqrt(0.75 / 4), rel=1e-12)
    assert got["per_observable"]["z"] == pytest.approx(np.sqrt(0.625 / 2), rel=1e-12)
    assert got["per_observable"]["psf"] == pytest.approx(0.25, rel=1e-12)
    assert [r["fractions"] for r in got["bins"]["z"]] == [[1.0, 0.5], [0.0, 1.0]]
    # Both classes of a two-class problem (membership and its complement): the same L.
    both = bias_metric(np.c_[y, 1 - y], {"lum": lum}, {"z": z, "psf": psf},
                       intrinsic_bins=2, observable_bins=2, min_count=2)
    assert both["L"] == pytest.approx(got["L"], rel=1e-12)


def test_metric_matches_an_independent_loop():
    rng = np.random.default_rng(0)
    n = 1500
    size, lum, z, psf = (rng.random(n) for _ in range(4))
    p = np.clip(0.2 + 0.5 * size - 0.1 * lum - 0.3 * (0.6 * z + 0.4 * psf), 0, 1)
    y = (rng.random(n) < p).astype(int)
    intr, obs = {"size": size, "lum": lum}, {"z": z, "psf": psf}
    for leaves, ob in ((1, 3), (4, 3), (8, 5)):
        got = bias_metric(y, intr, obs, intrinsic_bins=leaves, observable_bins=ob, min_count=5)
        ref, per_obs = _loop_metric(list(y), intr, obs, leaves, ob)
        assert got["L"] == pytest.approx(ref, rel=1e-12)
        assert list(got["per_observable"].values()) == pytest.approx(per_obs, rel=1e-12)
        assert got["L"] ** 2 == pytest.approx(np.mean(np.square(per_obs)), rel=1e-12)


def test_kd_tree_and_equal_count_bins():
    rng = np.random.default_rng(1)
    x = rng.random((64, 2))
    leaf = kd_tree_bins(x, 2)
    assert np.bincount(leaf).tolist() == [16, 16, 16, 16]
    # Root on column 0 (bit 1), children on column 1 (bit 0), each at its own median.
    right = x[:, 0] >= np.median(x[:, 0])
    assert ((leaf >= 2) == right).all()
    for side in (~right, right):
        top = x[side, 1] >= np.median(x[side, 1])
        assert ((leaf[side] % 2) == top).all()
    assert (kd_tree_bins(x, 0) == 0).all()
    # round(linspace(0, 10, 5)) = 0, 2 (2.5 rounds to even), 5, 8 (7.5), 10.
    assert np.bincount(equal_count_bins(np.arange(10.0)[::-1], 4)).tolist() == [2, 3, 3, 2]


def test_flux_limited_intrinsic_bins_all_count():
    # Far galaxies are luminous: the bright intrinsic bins hold no nearby galaxy. Each
    # intrinsic bin is split by its own redshift distribution, so every one of them counts.
    rng = np.random.default_rng(3)
    z = rng.random(8000)
    lum = 0.7 * z + 0.3 * rng.random(8000)
    y = (rng.random(8000) < 0.6 - 0.4 * z).astype(int)  # biased: fewer "featured" far away
    got = bias_metric(y, {"lum": lum}, {"z": z}, intrinsic_bins=8, observable_bins=4)
    assert [r["bin"] for r in got["bins"]["z"]] == list(range(8))
    assert all(r["n"] == 1000 for r in got["bins"]["z"])
    assert got["L"] > 0.05


def _sample(n, seed, slope):
    rng = np.random.default_rng(seed)
    size, lum = rng.random(n), rng.random(n)
    z, psf = rng.random(n), rng.random(n)
    # The class depends on intrinsic properties; with slope > 0, also on the observables.
    p = 0.2 + 0.5 * size - 0.1 * lum
    p = np.clip(p - slope * (0.6 * z + 0.4 * psf) * p, 0.0, 1.0)
    return (rng.random(n) < p).astype(int), {"size": size, "lum": lum}, {"z": z, "psf": psf}


def test_metric_near_zero_without_observable_dependence_and_large_with_it():
    y0, intr, obs = _sample(40000, 1, slope=0.0)
    y1, intr1, obs1 = _sample(40000, 1, slope=0.9)
    unbiased = bias_metric(y0, intr, obs, intrinsic_bins=8, observable_bins=4)["L"]
    biased = bias_metric(y1, intr1, obs1, intrinsic_bins=8, observable_bins=4)["L"]
    # Shot noise of 1250 objects per cell: sqrt(3 / 4 * 2 * 0.2 / 1250) ~ 0.015.
    assert unbiased < 0.03
    assert biased > 0.08 and biased > 4 * unbiased


def test_intrinsic_binning_removes_a_selection_effect():
    # The class depends only on an intrinsic property that correlates with the observable
    # (a flux limit): unbinned, the class fraction moves with z; binned, it does not.
    rng = np.random.default_rng(2)
    z = rng.random(60000)
    lum = rng.random(60000) * 0.5 + 0.5 * z  # far galaxies are luminous
    y = (rng.random(60000) < 1.0 - lum).astype(int)
    coarse = bias_metric(y, {"lum": lum}, {"z": z}, intrinsic_bins=1)["L"]
    fine = bias_metric(y, {"lum": lum}, {"z": z}, intrinsic_bins=16)["L"]
    assert coarse > 0.15 and fine < coarse / 2


def test_quantile_bins_and_errors():
    b = quantile_bins(np.arange(100), 4)
    assert np.bincount(b).tolist() == [25, 25, 25, 25]
    with pytest.raises(ValueError, match="shape"):
        bias_metric(np.zeros(10), {"a": np.zeros(9)}, {"z": np.zeros(10)})
    with pytest.raises(ValueError, match="needs 320"):
        bias_metric(np.zeros(10), {"a": np.arange(10.0)}, {"z": np.arange(10.0)})
    with pytest.raises(ValueError, match="power of two"):
        bias_metric(np.zeros(400), {"a": np.arange(400.0)}, {"z": np.arange(400.0)},
                    intrinsic_bins=3)
    with pytest.raises(ValueError, match="fewer objects"):  # every value tied: one leaf of 2
        bias_metric(np.zeros(2), {"a": np.zeros(2)}, {"z": np.arange(2.0)},
                    intrinsic_bins=2, observable_bins=3, min_count=0)


def test_bootstrap_resamples_with_replacement_and_repeats_by_seed():
    rng = np.random.default_rng(5)
    n = 1200
    z, lum = rng.random(n), rng.random(n)
    y = (rng.random(n) < 0.6 - 0.4 * z).astype(int)
    bins = {"intrinsic_bins": 2, "observable_bins": 4, "min_count": 10}
    got = bootstrap_bias_metric(y, {"lum": lum}, {"z": z}, resamples=7, seed=3, **bins)
    # Independently: the same draws, one resample at a time.
    draws = np.random.default_rng(3)
    values = []
    for _ in range(7):
        i = draws.integers(0, n, n)
        values.append(bias_metric(y[i], {"lum": lum[i]}, {"z": z[i]}, **bins)["L"])
    assert got["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert got["std"] == pytest.approx(np.std(values), rel=1e-12)
    assert got["std"] > 0  # the resamples differ
    again = bootstrap_bias_metric(y, {"lum": lum}, {"z": z}, resamples=7, seed=3, **bins)
    assert again == got
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_bias_metric(y, {"lum": lum}, {"z": z}, resamples=1)
