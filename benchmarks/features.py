"""Light-curve features: the package ``light-curve`` (astroray.features) vs the hand-written code.

On the same synthetic MACHO-like light curves (:func:`astroray.data.synthetic.periodic_variables`,
B and R, 100-1000 epochs over 4-7.5 years), in one process, it times

* ``reference``: the previous hand-written implementation, kept below as
  :func:`_reference_features` (per-band statistics as numpy NaN reductions on padded arrays,
  one astropy Lomb-Scargle periodogram per object on a grid of at most ``max_frequencies``
  frequencies, its three highest grid points refined locally);
* ``ours``: :func:`astroray.features.light_curve_features` (``light-curve`` extractors and
  periodograms through ``many()``, ``--jobs`` threads), and again on one thread (the reference
  runs on one core), for the per-core ratio.

Both get the same per-object arrays (conversion from Arrow is outside the timing) and their
default settings. It prints seconds, light curves per second and the speed-up, then how each
recovers the true (simulated) period (fraction within 1% of it, counting an object whose period
is half or twice the truth, as eclipsing binaries' often is, as recovered) and the largest
relative difference between the two on the statistics whose definition did not change. The
last line is one JSON object with every figure.

    python benchmarks/features.py                 # 1,000 light curves
    python benchmarks/features.py --n 200 --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from astroray.features import BAND_FEATURES, OBJECT_FEATURES, feature_names, light_curve_features

# --- The previous implementation (numpy + astropy), the baseline measured against. -----------


def _ref_grouped(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    order = np.argsort(group, kind="stable")
    g = group[order]
    counts = np.bincount(g, minlength=n_groups)
    width = int(counts.max()) if counts.size and counts.max() > 0 else 1
    starts = np.cumsum(counts) - counts
    cols = np.arange(g.size) - starts[g]
    out = np.full((n_groups, width), np.nan)
    out[g, cols] = values[order]
    return out


def _ref_band_stats(x: np.ndarray, t: np.ndarray, min_points: int) -> np.ndarray:
    n = np.isfinite(x).sum(axis=1).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=1)
        median = np.nanmedian(x, axis=1)
        std = np.nanstd(x, axis=1)
        p5, p25, p75, p95 = np.nanpercentile(x, [5, 25, 75, 95], axis=1)
        mad = np.nanmedian(np.abs(x - median[:, None]), axis=1)
        z = (x - mean[:, None]) / np.where(std > 0, std, np.nan)[:, None]
        skew = np.nanmean(z ** 3, axis=1)
        kurt = np.nanmean(z ** 4, axis=1) - 3.0
        beyond = np.nansum(np.abs(z) > 1.0, axis=1) / np.maximum(n, 1)
        span = np.nanmax(t, axis=1) - np.nanmin(t, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_span = np.where(span > 0, np.log10(np.where(span > 0, span, 1.0)), np.nan)
    stats = np.stack([n, mean, median, std, (p95 - p5) / 2.0, p95 - p5, p75 - p25, mad, skew,
                      kurt, beyond, log_span], axis=1)
    stats[n < min_points, 1:] = np.nan
    flat = ~(std > 0)
    stats[flat, BAND_FEATURES.index("skew")] = np.nan
    stats[flat, BAND_FEATURES.index("kurtosis")] = np.nan
    return stats


def _ref_period(t: np.ndarray, y: np.ndarray, dy: np.ndarray | None, *, min_period: float,
                max_period: float, samples_per_peak: float, max_frequencies: int,
                refine_peaks: int = 3) -> tuple[float, float]:
    from astropy.timeseries import LombScargle

    span = float(t.max() - t.min())
    if span <= 0:
        return float("nan"), float("nan")
    fmin = max(1.0 / max_period, 1.0 / (10.0 * span))
    fmax = 1.0 / min_period
    df = 1.0 / (span * samples_per_peak)
    count = int((fmax - fmin) / df) + 1
    if count > max_frequencies:
        count = max_frequencies
        df = (fmax - fmin) / (count - 1)
    freq = fmin + df * np.arange(count)
    ls = LombScargle(t, y, dy)
    power = ls.power(freq, method="fast", assume_regular_frequency=True)
    if not np.isfinite(power).any():
        return float("nan"), float("nan")
    top = np.argsort(np.where(np.isfinite(power), power, -np.inf))[-refine_peaks:]
    fine_step = min(df, 1.0 / (span * 10.0))
    local = (freq[top][:, None] + np.linspace(-df, df, 2 * int(np.ceil(df / fine_step)) + 1)
             [None, :]).reshape(-1)
    local = local[local > 0]
    local_power = ls.power(local, method="cython")
    best = int(np.nanargmax(local_power))
    return 1.0 / float(local[best]), float(local_power[best])


def _reference_features(time: Sequence[Any], value: Sequence[Any], err: Sequence[Any] | None,
                        band: Sequence[Any], *, bands: Sequence[str], magnitude: bool = True,
                        min_points: int = 5, min_period: float = 0.1,
                        max_period: float = 1000.0, samples_per_peak: float = 5.0,
                        max_frequencies: int = 20_000) -> np.ndarray:
    """The hand-written ``light_curve_features`` as it was before ``light-curve``."""
    n = len(time)
    bands = list(bands)
    nb = len(bands)
    index = {b: i for i, b in enumerate(bands)}
    mags = np.broadcast_to(np.asarray(magnitude, dtype=bool), (n,))
    ts, vs, es, bs = [], [], [], []
    for i in range(n):
        ts.append(np.asarray(time[i], dtype=np.float64).reshape(-1))
        vs.append(np.asarray(value[i], dtype=np.float64).reshape(-1))
        es.append(np.asarray(err[i], dtype=np.float64).reshape(-1) if err is not None
                  else np.full(ts[-1].size, np.nan))
        bs.append(np.asarray(band[i]).astype(str))
    lengths = np.array([a.size for a in ts], dtype=np.int64)
    obj = np.repeat(np.arange(n), lengths)
    t, v, e, b = (np.concatenate(a) for a in (ts, vs, es, bs))
    bi = np.fromiter((index.get(s, -1) for s in b.tolist()), dtype=np.int64, count=b.size)
    keep = np.isfinite(t) & np.isfinite(v) & (bi >= 0)
    obj, t, v, e, bi = obj[keep], t[keep], v[keep], e[keep], bi[keep]
    group = obj * nb + bi
    stats = _ref_band_stats(_ref_grouped(v, group, n * nb), _ref_grouped(t, group, n * nb),
                            min_points)
    per_band = stats.reshape(n, nb * len(BAND_FEATURES))
    medians = stats[:, BAND_FEATURES.index("median")].reshape(n, nb)
    mads = stats[:, BAND_FEATURES.index("mad")].reshape(n, nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag_colour = medians[:, :-1] - medians[:, 1:]
        flux_colour = -2.5 * np.log10(medians[:, :-1] / medians[:, 1:])
    colours = np.where(mags[:, None], mag_colour, flux_colour)
    centre = medians.reshape(-1)[group]
    scale = 1.4826 * mads.reshape(-1)[group]
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)
    y = (v - centre) / scale
    dy = e / scale
    usable = np.isfinite(y)
    obj_feats = np.full((n, len(OBJECT_FEATURES)), np.nan)
    order = np.argsort(obj, kind="stable")
    bounds = np.searchsorted(obj[order], np.arange(n + 1))
    for i in range(n):
        rows = order[bounds[i]:bounds[i + 1]]
        rows = rows[usable[rows]]
        ti = t[rows]
        obj_feats[i, 3] = float(rows.size)
        if rows.size:
            span = float(ti.max() - ti.min())
            obj_feats[i, 2] = np.log10(span) if span > 0 else np.nan
        if rows.size < min_points:
            continue
        dyi = dy[rows]
        dyi = dyi if np.isfinite(dyi).all() and (dyi > 0).all() else None
        period, power = _ref_period(ti, y[rows], dyi, min_period=min_period,
                                    max_period=max_period, samples_per_peak=samples_per_peak,
                                    max_frequencies=max_frequencies)
        obj_feats[i, 0] = np.log10(period) if np.isfinite(period) else np.nan
        obj_feats[i, 1] = power
    return np.concatenate([per_band, obj_feats, colours], axis=1)


# --- The benchmark. ---------------------------------------------------------------------------


def _inputs(n: int, seed: int) -> tuple[list[np.ndarray], ...]:
    from astroray.data.synthetic import periodic_variables

    table = periodic_variables(n, seed=seed)
    cols = [[np.asarray(v) for v in table.column(name).to_pylist()]
            for name in ("time", "mag", "err", "band")]
    periods = np.array([json.loads(m)["period"] for m in table.column("meta").to_pylist()])
    return (*cols, periods)


def _recovered(features: np.ndarray, names: list[str], truth: np.ndarray) -> float:
    """Fraction of objects whose period is within 1% of the truth (or of half / twice it)."""
    period = 10 ** features[:, names.index("log_period")]
    rel = np.min([np.abs(period / (truth * f) - 1) for f in (0.5, 1.0, 2.0)], axis=0)
    return float(np.mean(rel < 0.01))


def _max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    both = np.isfinite(a) & np.isfinite(b)
    if np.isnan(a).tolist() != np.isnan(b).tolist():
        return float("inf")  # different NaN patterns
    return float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-12),
                        initial=0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="light curves")
    parser.add_argument("--jobs", type=int, default=-1, help="light-curve threads (-1: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    bands = ["B", "R"]
    t, v, e, b, truth = _inputs(args.n, args.seed)
    light_curve_features(t[:4], v[:4], e[:4], b[:4], bands=bands)  # warm up imports / caches
    started = time.perf_counter()
    ref = _reference_features(t, v, e, b, bands=bands)
    ref_s = time.perf_counter() - started
    started = time.perf_counter()
    ours, names = light_curve_features(t, v, e, b, bands=bands, n_jobs=args.jobs)
    ours_s = time.perf_counter() - started
    assert names == feature_names(bands)
    started = time.perf_counter()
    light_curve_features(t, v, e, b, bands=bands, n_jobs=1)
    one_s = time.perf_counter() - started

    unchanged = [names.index(f"{band}_{f}") for band in bands
                 for f in ("n", "mean", "median", "std", "mad", "skew", "kurtosis",
                           "log_timespan")]
    unchanged += [names.index(f) for f in ("log_timespan", "n_total", "colour_B_R")]
    result = {
        "light_curves": args.n,
        "points": int(sum(x.size for x in t)),
        "reference_s": round(ref_s, 3),
        "ours_s": round(ours_s, 3),
        "reference_per_s": round(args.n / ref_s, 1),
        "ours_per_s": round(args.n / ours_s, 1),
        "speedup": round(ref_s / ours_s, 1),
        "ours_1_thread_s": round(one_s, 3),
        "speedup_1_thread": round(ref_s / one_s, 1),
        "reference_period_recovered": round(_recovered(ref, names, truth), 3),
        "ours_period_recovered": round(_recovered(ours, names, truth), 3),
        "unchanged_max_rel_diff": _max_rel_diff(ours[:, unchanged], ref[:, unchanged]),
        "jobs": args.jobs, "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(f"{args.n} light curves ({result['points']} points, bands {'/'.join(bands)})")
    print(f"reference (numpy + astropy)  {ref_s:8.2f} s  {result['reference_per_s']:8.1f} /s")
    print(f"ours (light-curve)           {ours_s:8.2f} s  {result['ours_per_s']:8.1f} /s")
    print(f"speed-up                     {result['speedup']:8.1f} x")
    print(f"ours on 1 thread             {one_s:8.2f} s  "
          f"speed-up {result['speedup_1_thread']:.1f} x")
    print(f"period within 1% of truth    reference {result['reference_period_recovered']:.3f}, "
          f"ours {result['ours_period_recovered']:.3f}")
    print(f"unchanged statistics: largest relative difference "
          f"{result['unchanged_max_rel_diff']:.2e}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
