"""Hand-crafted light-curve features (the classic baseline of variable-star classification).

Per object and band: number of points, mean, median, standard deviation, amplitude (half the
5-95 percentile range), the percentile ranges 5-95 and 25-75 (IQR), median absolute deviation,
skewness, excess kurtosis, the fraction of points beyond one standard deviation and the band's
time span (log10 days). Per object:
the period and peak power of a Lomb-Scargle periodogram (astropy) of all bands together (each
band centred on its median and scaled by its robust spread, so that one period fits every
band), the time span, the number of points, and the colours (differences of median magnitudes
of consecutive bands; ``-2.5 log10`` of the ratio of median fluxes for fluxes).

Statistics are computed for all objects and bands at once on padded arrays (NaN padding, NaN
reductions); only the periodogram runs per object. Non-finite points are dropped; a band with
fewer than ``min_points`` points gets NaN statistics, and so does the period of an object with
fewer than ``min_points`` points in all: downstream models impute them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["BAND_FEATURES", "OBJECT_FEATURES", "feature_names", "light_curve_features",
           "table_features"]

#: Statistics computed per band.
BAND_FEATURES = ("n", "mean", "median", "std", "amplitude", "p5_95", "iqr", "mad", "skew",
                 "kurtosis", "beyond1std", "log_timespan")
#: Statistics computed per object.
OBJECT_FEATURES = ("log_period", "period_power", "log_timespan", "n_total")


def feature_names(bands: Sequence[str]) -> list[str]:
    """Column names of :func:`light_curve_features`' output for these bands."""
    names = [f"{b}_{f}" for b in bands for f in BAND_FEATURES]
    names += list(OBJECT_FEATURES)
    names += [f"colour_{a}_{b}" for a, b in zip(bands[:-1], bands[1:], strict=True)]
    return names


def _grouped(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Pad the values of each group into a (G, L) array (NaN padding), groups in order."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    counts = np.bincount(g, minlength=n_groups)
    width = int(counts.max()) if counts.size and counts.max() > 0 else 1
    starts = np.cumsum(counts) - counts
    cols = np.arange(g.size) - starts[g]
    out = np.full((n_groups, width), np.nan)
    out[g, cols] = values[order]
    return out


def _band_stats(x: np.ndarray, t: np.ndarray, min_points: int) -> np.ndarray:
    """Statistics (G, len(BAND_FEATURES)) of padded values and times (G, L); NaN if short."""
    import warnings

    n = np.isfinite(x).sum(axis=1).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN results
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
    # A constant band has no defined shape statistics.
    flat = ~(std > 0)
    stats[flat, BAND_FEATURES.index("skew")] = np.nan
    stats[flat, BAND_FEATURES.index("kurtosis")] = np.nan
    return stats


def _period(t: np.ndarray, y: np.ndarray, dy: np.ndarray | None, *, min_period: float,
            max_period: float, samples_per_peak: float, max_frequencies: int,
            refine_peaks: int = 3) -> tuple[float, float]:
    """(period, peak power) of a Lomb-Scargle periodogram on a regular frequency grid."""
    from astropy.timeseries import LombScargle

    span = float(t.max() - t.min())
    if span <= 0:
        return float("nan"), float("nan")
    fmin = max(1.0 / max_period, 1.0 / (10.0 * span))
    fmax = 1.0 / min_period
    df = 1.0 / (span * samples_per_peak)
    count = int((fmax - fmin) / df) + 1
    if count > max_frequencies:  # a coarser grid bounds the cost of very long baselines
        count = max_frequencies
        df = (fmax - fmin) / (count - 1)
    freq = fmin + df * np.arange(count)
    ls = LombScargle(t, y, dy)
    power = ls.power(freq, method="fast", assume_regular_frequency=True)
    if not np.isfinite(power).any():
        return float("nan"), float("nan")
    # Refine the highest peaks of the (possibly coarse) grid on a fine local grid.
    top = np.argsort(np.where(np.isfinite(power), power, -np.inf))[-refine_peaks:]
    fine_step = min(df, 1.0 / (span * 10.0))
    local = (freq[top][:, None] + np.linspace(-df, df, 2 * int(np.ceil(df / fine_step)) + 1)
             [None, :]).reshape(-1)
    local = local[local > 0]
    local_power = ls.power(local, method="cython")
    best = int(np.nanargmax(local_power))
    return 1.0 / float(local[best]), float(local_power[best])


def light_curve_features(
    time: Sequence[Any],
    value: Sequence[Any],
    err: Sequence[Any] | None,
    band: Sequence[Any],
    *,
    bands: Sequence[str] | None = None,
    magnitude: bool | Sequence[bool] = True,
    min_points: int = 5,
    min_period: float = 0.1,
    max_period: float = 1000.0,
    samples_per_peak: float = 5.0,
    max_frequencies: int = 20_000,
) -> tuple[np.ndarray, list[str]]:
    """Features of a batch of multi-band light curves.

    Args:
        time: per object, observation times (days).
        value: per object, magnitudes or fluxes.
        err: per object, uncertainties (None: unweighted periodograms).
        band: per object, band names of the points.
        bands: band order of the columns; None: the sorted bands present.
        magnitude: values are magnitudes (bool, or one per object); colours of fluxes are
            ``-2.5 log10`` of flux ratios.
        min_points: fewest finite points for a band's statistics / an object's period.
        min_period: shortest period searched (days).
        max_period: longest period searched (days; capped at 10 x the time span).
        samples_per_peak: frequency grid oversampling.
        max_frequencies: most frequencies of the periodogram's grid (a coarser grid for
            long baselines; its three highest peaks are then refined on a fine local grid).

    Returns:
        ``(features, names)``: (N, F) float64 array (NaN where undefined) and column names.
    """
    n = len(time)
    band_lists = [np.asarray(b).astype(str) if b is not None else np.empty(0, str)
                  for b in band]
    if bands is None:
        bands = sorted({str(v) for b in band_lists for v in np.unique(b)})
    bands = list(bands)
    nb = len(bands)
    index = {b: i for i, b in enumerate(bands)}
    mags = np.broadcast_to(np.asarray(magnitude, dtype=bool), (n,))
    ts, vs, es, bs = [], [], [], []
    for i in range(n):
        ti = np.asarray(time[i] if time[i] is not None else [], dtype=np.float64).reshape(-1)
        vi = np.asarray(value[i] if value[i] is not None else np.full(ti.size, np.nan),
                        dtype=np.float64).reshape(-1)
        ei = (np.asarray(err[i], dtype=np.float64).reshape(-1)
              if err is not None and err[i] is not None else np.full(ti.size, np.nan))
        if not (ti.size == vi.size == ei.size == band_lists[i].size):
            raise ValueError(f"object {i}: time, value, err and band lengths differ "
                             f"({ti.size}, {vi.size}, {ei.size}, {band_lists[i].size})")
        ts.append(ti)
        vs.append(vi)
        es.append(ei)
        bs.append(band_lists[i])
    lengths = np.array([a.size for a in ts], dtype=np.int64)
    obj = np.repeat(np.arange(n), lengths)
    t = np.concatenate(ts or [np.empty(0)])
    v = np.concatenate(vs or [np.empty(0)])
    e = np.concatenate(es or [np.empty(0)])
    b = np.concatenate(bs or [np.empty(0, str)])
    bi = np.fromiter((index.get(s, -1) for s in b.tolist()), dtype=np.int64, count=b.size)
    keep = np.isfinite(t) & np.isfinite(v) & (bi >= 0)
    obj, t, v, e, bi = obj[keep], t[keep], v[keep], e[keep], bi[keep]
    group = obj * nb + bi
    stats = _band_stats(_grouped(v, group, n * nb), _grouped(t, group, n * nb),
                        min_points)  # (N * nb, S)
    per_band = stats.reshape(n, nb * len(BAND_FEATURES))
    medians = stats[:, BAND_FEATURES.index("median")].reshape(n, nb)
    mads = stats[:, BAND_FEATURES.index("mad")].reshape(n, nb)
    # Colours between consecutive bands.
    with np.errstate(divide="ignore", invalid="ignore"):
        mag_colour = medians[:, :-1] - medians[:, 1:]
        flux_colour = -2.5 * np.log10(medians[:, :-1] / medians[:, 1:])
    colours = np.where(mags[:, None], mag_colour, flux_colour)
    # One periodogram per object over all its bands, each standardised robustly.
    centre = medians.reshape(-1)[group] if group.size else np.empty(0)
    scale = 1.4826 * mads.reshape(-1)[group] if group.size else np.empty(0)
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
        period, power = _period(ti, y[rows], dyi, min_period=min_period,
                                max_period=max_period, samples_per_peak=samples_per_peak,
                                max_frequencies=max_frequencies)
        obj_feats[i, 0] = np.log10(period) if np.isfinite(period) else np.nan
        obj_feats[i, 1] = power
    features = np.concatenate([per_band, obj_feats, colours], axis=1)
    return features, feature_names(bands)


def table_features(data: pa.Table | Mapping[str, Any], *, bands: Sequence[str] | None = None,
                   **kwargs: Any) -> tuple[np.ndarray, list[str]]:
    """:func:`light_curve_features` of a canonical light-curve table (or numpy batch).

    Magnitudes are used where an object has them, else fluxes.

    Args:
        data: a table/batch with ``time``, ``band``, ``err`` and ``mag`` and/or ``flux``.
        bands: band order; None: the sorted bands present.
        **kwargs: passed to :func:`light_curve_features`.
    """
    if isinstance(data, pa.Table):
        cols = {name: data.column(name).to_pylist() for name in ("time", "band", "err", "mag",
                                                                 "flux")
                if name in data.column_names}
    else:
        cols = {k: list(v) for k, v in data.items()
                if k in ("time", "band", "err", "mag", "flux")}
    n = len(cols["time"])
    mags = cols.get("mag", [None] * n)
    fluxes = cols.get("flux", [None] * n)
    values = [m if m is not None else f for m, f in zip(mags, fluxes, strict=True)]
    is_mag = np.array([m is not None for m in mags], dtype=bool)
    return light_curve_features(cols["time"], values, cols.get("err"), cols["band"],
                                bands=bands, magnitude=is_mag, **kwargs)
