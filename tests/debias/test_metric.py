"""The bias metric L: against a plain loop, on unbiased and on strongly biased labels."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.debias import bias_metric, quantile_bins


def _loop_metric(y, intrinsic, observables, ib, ob, min_count):
    """L computed the slow way: explicit loops over bins, edges by np.quantile."""
    def bin_of(values, nb):
        edges = np.quantile(values, [k / nb for k in range(1, nb)])
        return [sum(v >= e for e in edges) for v in values]

    n = len(y)
    ibin = [0] * n
    for values in intrinsic.values():
        b = bin_of(values, ib)
        ibin = [ibin[k] * ib + b[k] for k in range(n)]
    per_obs = []
    for values in observables.values():
        ob_of = bin_of(values, ob)
        num, den = 0.0, 0
        for cell in sorted(set(ibin)):
            groups = {j: [y[k] for k in range(n) if ibin[k] == cell and ob_of[k] == j]
                      for j in range(ob)}
            if len(groups[0]) < min_count:
                continue
            f0 = sum(groups[0]) / len(groups[0])
            diffs = [sum(g) / len(g) - f0 for j, g in groups.items()
                     if j > 0 and len(g) >= min_count]
            if not diffs:
                continue
            rms = (sum(d * d for d in diffs) / len(diffs)) ** 0.5
            count = sum(len(g) for g in groups.values() if len(g) >= min_count)
            num += count * rms
            den += count
        per_obs.append(num / den)
    return sum(per_obs) / len(per_obs), per_obs


def _sample(n, seed, slope):
    rng = np.random.default_rng(seed)
    size, lum = rng.random(n), rng.random(n)
    z, psf = rng.random(n), rng.random(n)
    # The class depends on intrinsic properties; with slope > 0, also on the observables.
    p = 0.2 + 0.5 * size - 0.1 * lum
    p = np.clip(p - slope * (0.6 * z + 0.4 * psf) * p, 0.0, 1.0)
    return (rng.random(n) < p).astype(int), {"size": size, "lum": lum}, {"z": z, "psf": psf}


def test_metric_matches_an_independent_loop():
    y, intr, obs = _sample(1500, 0, slope=0.5)
    got = bias_metric(y, intr, obs, intrinsic_bins=2, observable_bins=3, min_count=15)
    ref, per_obs = _loop_metric(list(y), intr, obs, 2, 3, 15)
    assert got["L"] == pytest.approx(ref, rel=1e-12)
    assert list(got["per_observable"].values()) == pytest.approx(per_obs, rel=1e-12)


def test_metric_near_zero_without_observable_dependence_and_large_with_it():
    y0, intr, obs = _sample(40000, 1, slope=0.0)
    y1, intr1, obs1 = _sample(40000, 1, slope=0.9)
    unbiased = bias_metric(y0, intr, obs, intrinsic_bins=3, observable_bins=4)["L"]
    biased = bias_metric(y1, intr1, obs1, intrinsic_bins=3, observable_bins=4)["L"]
    # Shot noise of ~1100 objects per cell: sqrt(2 * 0.25 / 1100) ~ 0.02.
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
    fine = bias_metric(y, {"lum": lum}, {"z": z}, intrinsic_bins=10)["L"]
    assert coarse > 0.15 and fine < coarse / 2


def test_quantile_bins_and_errors():
    b = quantile_bins(np.arange(100), 4)
    assert np.bincount(b).tolist() == [25, 25, 25, 25]
    with pytest.raises(ValueError, match="shape"):
        bias_metric(np.zeros(10), {"a": np.zeros(9)}, {"z": np.zeros(10)})
    with pytest.raises(ValueError, match="no intrinsic bin"):
        bias_metric(np.zeros(10), {"a": np.arange(10.0)}, {"z": np.arange(10.0)})
