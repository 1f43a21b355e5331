"""Windowing of canonical light curves into fixed-length single-band windows."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.config import ConfigError
from astroray.data.fileio import numpy_batch
from astroray.data.synthetic import periodic_variables, transients
from astroray.data.windows import WINDOW_COLUMNS, LightCurveWindows, window_dataset


@pytest.fixture(scope="module")
def periodic():
    return periodic_variables(60, seed=3, n_points=(5, 900))


def test_every_valid_point_is_in_exactly_one_inference_window(periodic):
    batch = numpy_batch(periodic)
    w = LightCurveWindows(200, mode="sequential")(batch)
    L = 200
    assert w["times"].shape == w["values"].shape == w["mask"].shape == (len(w["n_obs"]), L)
    # Reconstruct (object, band) -> times and magnitudes of every windowed point.
    got: dict[tuple, list] = {}
    for i in range(len(w["n_obs"])):
        m = w["mask"][i]
        t = w["t0"][i] + w["times"][i][m].astype(np.float64)
        v = w["values"][i][m].astype(np.float64) + w["offset"][i]
        got.setdefault((w["object_id"][i], w["band"][i]), []).extend(zip(t, v, strict=True))
    n_points = 0
    for oid, tt, bb, mm in zip(batch["object_id"], batch["time"], batch["band"], batch["mag"],
                               strict=True):
        for band in set(bb.tolist()):
            sel = bb == band
            pts = np.array(sorted(got.pop((oid, band))))
            assert len(pts) == sel.sum()  # each point once: none lost, none repeated
            np.testing.assert_allclose(pts[:, 0], tt[sel], atol=2e-3)
            np.testing.assert_allclose(pts[:, 1], mm[sel], atol=1e-4)
            n_points += int(sel.sum())
    assert not got and n_points == int(w["mask"].sum())


def test_windows_are_zero_mean_relative_in_time_and_masked(periodic):
    w = LightCurveWindows(200, mode="sequential")(numpy_batch(periodic))
    m = w["mask"]
    np.testing.assert_array_equal(m.sum(1), w["n_obs"])
    # Valid points come first, padding is zero.
    assert all(m[i, : w["n_obs"][i]].all() for i in range(len(m)))
    for name in ("times", "values", "errors"):
        assert not w[name][~m].any()
    means = (w["values"] * m).sum(1) / m.sum(1)
    np.testing.assert_allclose(means, 0.0, atol=1e-5)
    assert np.all(w["times"][:, 0] == 0.0)
    for i in range(len(m)):
        assert np.all(np.diff(w["times"][i, : w["n_obs"][i]]) >= 0)
    assert w["n_obs"].max() <= 200


def test_sequential_windows_are_balanced():
    t = periodic_variables(1, seed=0, bands=("R",), n_points=(450, 450))
    w = LightCurveWindows(200, mode="sequential")(numpy_batch(t))
    assert sorted(w["n_obs"].tolist()) == [150, 150, 150]


def test_random_crops_are_contiguous_runs(periodic):
    batch = numpy_batch(periodic)
    w = LightCurveWindows(50, mode="random", seed=1)(batch)
    # One window per object and band, each a contiguous run of the band's points.
    n_groups = sum(len(set(b.tolist())) for b in batch["band"])
    assert len(w["n_obs"]) == n_groups and w["n_obs"].max() == 50
    for i in range(len(w["n_obs"])):
        row = w["row"][i]
        band = np.asarray(batch["band"][row]) == w["band"][i]
        times = np.asarray(batch["time"][row])[band]
        start = np.searchsorted(times, w["t0"][i])
        m = w["mask"][i]
        np.testing.assert_allclose(times[start:start + m.sum()] - w["t0"][i], w["times"][i][m],
                                   atol=1e-3)
    again = LightCurveWindows(50, mode="random", seed=1)(batch)
    np.testing.assert_array_equal(again["t0"], w["t0"])  # seeded crops repeat


def test_band_filter_and_min_points(periodic):
    batch = numpy_batch(periodic)
    w = LightCurveWindows(200, bands=["R"], min_points=100)(batch)
    assert set(w["band"]) == {"R"}
    for oid in set(w["object_id"]):
        i = list(batch["object_id"]).index(oid)
        assert (np.asarray(batch["band"][i]) == "R").sum() >= 100
    with pytest.raises(ConfigError, match="LightCurveWindows.mode"):
        LightCurveWindows(mode="strided")


def test_flux_light_curves_become_asinh_magnitudes():
    table = transients(20, seed=4)
    w = LightCurveWindows(200)(numpy_batch(table))
    assert w["is_flux"].all()
    assert np.isfinite(w["values"]).all() and np.isfinite(w["errors"]).all()
    # Bright points: asinh magnitudes differ like -2.5 log10 of the flux ratio.
    batch = numpy_batch(table)
    i = int(np.argmax([np.max(f) for f in batch["flux"]]))
    flux, band = np.asarray(batch["flux"][i]), np.asarray(batch["band"][i])
    sel = band == band[np.argmax(flux)]
    f = flux[sel]
    k = [j for j in range(len(w["n_obs"])) if w["row"][j] == i and w["band"][j] == band[sel][0]]
    vals = w["values"][k[0]][w["mask"][k[0]]]
    a, b = np.argmax(f), np.argsort(f)[-3]
    if f[b] > 20 * np.median(np.asarray(batch["err"][i])[sel]):
        assert vals[a] - vals[b] == pytest.approx(-2.5 * np.log10(f[a] / f[b]), abs=0.02)
    assert vals[np.argmax(f)] == vals.min()  # brighter = smaller magnitude


def test_empty_and_through_ray_data(ray_session, periodic):
    empty = LightCurveWindows()(numpy_batch(periodic.slice(0, 0)))
    assert empty["values"].shape == (0, 200)
    ds = ray_session.data.from_arrow(periodic)
    out = window_dataset(ds, LightCurveWindows(200, mode="sequential"), numeric_only=True)
    rows = out.take_all()
    assert set(rows[0]) == set(WINDOW_COLUMNS)
    expected = LightCurveWindows(200)(numpy_batch(periodic))
    assert len(rows) == len(expected["n_obs"])
