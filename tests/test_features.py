"""Light-curve features against direct numpy/scipy computations, per object and in batches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from astroray.features import BAND_FEATURES, feature_names, light_curve_features, table_features


def _object(seed: int, period: float = 0.567, n: int = 150, bands=("g", "r")):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 900, n))
    b = rng.choice(bands, n)
    offset = np.where(b == bands[0], 15.3, 15.0)
    amp = np.where(b == bands[0], 0.5, 0.35)
    y = offset + amp * np.sin(2 * np.pi * t / period) + 0.02 * rng.standard_normal(n)
    e = np.full(n, 0.02)
    return t, y, e, b


def _col(feats, names, name):
    return feats[:, names.index(name)]


def test_band_statistics_match_numpy_and_scipy():
    t, y, e, b = _object(0)
    feats, names = light_curve_features([t], [y], [e], [b], bands=["g", "r"])
    assert names == feature_names(["g", "r"]) and feats.shape == (1, len(names))
    for band in ("g", "r"):
        x = y[b == band]
        assert _col(feats, names, f"{band}_n")[0] == x.size
        assert _col(feats, names, f"{band}_mean")[0] == pytest.approx(x.mean())
        assert _col(feats, names, f"{band}_median")[0] == pytest.approx(np.median(x))
        assert _col(feats, names, f"{band}_std")[0] == pytest.approx(x.std())
        p5, p25, p75, p95 = np.percentile(x, [5, 25, 75, 95])
        assert _col(feats, names, f"{band}_amplitude")[0] == pytest.approx((p95 - p5) / 2)
        assert _col(feats, names, f"{band}_iqr")[0] == pytest.approx(p75 - p25)
        assert _col(feats, names, f"{band}_mad")[0] == pytest.approx(
            stats.median_abs_deviation(x))
        assert _col(feats, names, f"{band}_skew")[0] == pytest.approx(stats.skew(x), abs=1e-9)
        assert _col(feats, names, f"{band}_kurtosis")[0] == pytest.approx(stats.kurtosis(x),
                                                                           abs=1e-9)
        assert _col(feats, names, f"{band}_beyond1std")[0] == pytest.approx(
            np.mean(np.abs(x - x.mean()) > x.std()))
        tb = t[b == band]
        assert _col(feats, names, f"{band}_log_timespan")[0] == pytest.approx(
            np.log10(tb.max() - tb.min()))
    colour = np.median(y[b == "g"]) - np.median(y[b == "r"])
    assert _col(feats, names, "colour_g_r")[0] == pytest.approx(colour)
    assert _col(feats, names, "log_timespan")[0] == pytest.approx(np.log10(t.max() - t.min()))


@pytest.mark.parametrize("period", [0.3127, 0.567, 3.7, 41.0])
def test_lomb_scargle_period_is_recovered(period):
    t, y, e, b = _object(1, period=period, n=200)
    feats, names = light_curve_features([t], [y], [e], [b], bands=["g", "r"])
    assert 10 ** _col(feats, names, "log_period")[0] == pytest.approx(period, rel=2e-3)
    assert _col(feats, names, "period_power")[0] > 0.8


def test_batch_equals_one_by_one_and_is_nan_safe():
    objs = [_object(s, period=p) for s, p in [(2, 0.4), (3, 1.3), (4, 12.0)]]
    # Corrupt the second object with NaN and inf points, and give the third no r band.
    t, y, e, b = objs[1]
    y2 = y.copy()
    y2[[3, 10]] = np.nan
    t2 = t.copy()
    t2[20] = np.inf
    objs[1] = (t2, y2, e, b)
    t, y, e, b = objs[2]
    objs[2] = (t[b == "g"], y[b == "g"], e[b == "g"], b[b == "g"])
    cols = list(zip(*objs, strict=True))
    batch, names = light_curve_features(*cols, bands=["g", "r"])
    for i, o in enumerate(objs):
        one, _ = light_curve_features(*[[c] for c in o], bands=["g", "r"])
        np.testing.assert_allclose(batch[i], one[0], rtol=1e-9, equal_nan=True)
    # The corrupted points are simply dropped.
    keep = np.isfinite(objs[1][0]) & np.isfinite(objs[1][1])
    clean, _ = light_curve_features(*[[c[keep]] for c in objs[1]], bands=["g", "r"])
    np.testing.assert_allclose(batch[1], clean[0], rtol=1e-9, equal_nan=True)
    # A missing band: NaN statistics and colour, the rest defined.
    r_cols = [names.index(f"r_{f}") for f in BAND_FEATURES if f != "n"]
    assert np.isnan(batch[2, r_cols]).all() and batch[2, names.index("r_n")] == 0
    assert np.isnan(batch[2, names.index("colour_g_r")])
    assert np.isfinite(batch[2, names.index("log_period")])


def test_table_features_reads_canonical_tables():
    from astroray.data.synthetic import periodic_variables

    table = periodic_variables(12, seed=3)
    feats, names = table_features(table, bands=["B", "R"])
    assert feats.shape == (12, len(feature_names(["B", "R"])))
    row = table.slice(4, 1).to_pylist()[0]
    one, _ = light_curve_features([row["time"]], [row["mag"]], [row["err"]], [row["band"]],
                                  bands=["B", "R"])
    np.testing.assert_allclose(feats[4], one[0], rtol=1e-9, equal_nan=True)
    assert np.isfinite(feats[:, names.index("log_period")]).all()
