"""MACHO/OGLE/ATLAS-like light curves of periodic variables.

Cepheids (fundamental and first overtone), RR Lyrae (ab and c), eclipsing binaries and
long-period variables, with survey cadences (seasons, nightly jitter, band drop-outs) and
magnitude-dependent errors (:func:`periodic_variables`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.schema import LIGHT_CURVE_SCHEMA
from astroray.data.synthetic._common import (
    _band_wavelengths,
    _check_n,
    _chunked,
    _class_indices,
    _ids,
    _interp_rows,
    _light_curve_table,
    _loguniform,
    _rng,
    _round,
    _smooth_noise,
)

__all__ = ["PERIODIC_CLASSES", "periodic_variables"]

PERIODIC_CLASSES = ("DCEP_F", "DCEP_1O", "RRab", "RRc", "EB", "LPV")


# Per class: period range (days), peak-to-peak V amplitude range (mag), number of harmonics,
# the rising fraction of the cycle of the underlying light-curve shape (0.15: RRab's fast rise;
# 0.5: symmetric), the scatter added to the Fourier amplitude ratios R_k1 (relative) and phase
# differences phi_k1 (radians), B-V colour at mean light, and the power of the
# amplitude-wavelength law A(lambda) ~ lambda^-alpha.
_PULSATORS: dict[str, dict[str, Any]] = {
    "DCEP_F": dict(period=(2.0, 50.0), amp=(0.3, 1.0), nharm=5, rise=(0.25, 0.4),
                  ratio_scatter=0.15, phase_scatter=0.25, colour=(0.5, 0.9), alpha=(0.9, 1.3)),
    "DCEP_1O": dict(period=(0.5, 6.0), amp=(0.1, 0.45), nharm=3, rise=(0.4, 0.5),
                  ratio_scatter=0.3, phase_scatter=0.4, colour=(0.4, 0.7), alpha=(0.9, 1.3)),
    "RRab": dict(period=(0.45, 0.9), amp=(0.5, 1.2), nharm=6, rise=(0.12, 0.22),
                 ratio_scatter=0.1, phase_scatter=0.15, colour=(0.25, 0.45), alpha=(0.8, 1.2)),
    "RRc": dict(period=(0.2, 0.45), amp=(0.2, 0.5), nharm=3, rise=(0.35, 0.5),
                ratio_scatter=0.3, phase_scatter=0.4, colour=(0.15, 0.3), alpha=(0.8, 1.2)),
    "LPV": dict(period=(80.0, 1000.0), amp=(1.0, 5.0), nharm=2, rise=(0.35, 0.5),
                ratio_scatter=0.3, phase_scatter=0.4, colour=(1.3, 1.8), alpha=(1.5, 2.5)),
}
_EB = dict(period=(0.3, 10.0), depth=(0.2, 1.0), colour=(-0.2, 0.9))

# Survey presets for periodic variables. distance: "lmc" (distance modulus 18.48 with a depth
# scatter) or a range of mean V magnitudes for field stars; mag_offset is subtracted from
# calibrated magnitudes to give the survey's native scale (MACHO instrumental magnitudes are
# roughly V - 24); errors follow sigma^2 = floor^2 + sigma_m0^2 10^(0.4 (m - m0)).
_PERIODIC_SURVEYS: dict[str, dict[str, Any]] = {
    "macho": dict(distance="lmc", mag_offset=24.0, n_points=(100, 1000), baseline=(4.0, 7.5),
                  season=(180.0, 240.0), start=(48800.0, 49300.0), night=0.58,
                  simultaneous=True, keep={"B": (0.85, 1.0), "R": (0.5, 0.95)}, floor=0.01,
                  m0=20.0, sigma_m0=0.25),
    "ogle": dict(distance="lmc", mag_offset=0.0, n_points=(100, 600), baseline=(3.0, 8.0),
                 season=(200.0, 240.0), start=(50600.0, 51200.0), night=0.15,
                 simultaneous=False, keep={"I": 0.9, "V": 0.1}, floor=0.005, m0=20.5,
                 sigma_m0=0.15),
    "ztf": dict(distance=(13.0, 19.0), mag_offset=0.0, n_points=(40, 400), baseline=(1.0, 5.0),
                season=(180.0, 270.0), start=(58200.0, 58700.0), night=0.3,
                simultaneous=False, keep={"g": 0.45, "r": 0.5, "i": 0.05}, floor=0.01,
                m0=20.5, sigma_m0=0.2),
    # ATLAS: all-sky field stars to ~19 mag every other night in cyan or orange (Tonry et al.
    # 2018), on 0.5-m telescopes, so brighter errors at a given magnitude than ZTF.
    "atlas": dict(distance=(12.0, 18.0), mag_offset=0.0, n_points=(100, 800),
                  baseline=(2.0, 6.0), season=(200.0, 280.0), start=(57300.0, 58300.0),
                  night=0.4, simultaneous=False, keep={"c": 0.35, "o": 0.65}, floor=0.01,
                  m0=19.0, sigma_m0=0.15),
}
_GENERIC_PERIODIC = dict(distance=(13.0, 19.0), mag_offset=0.0, n_points=(100, 500),
                         baseline=(2.0, 6.0), season=(180.0, 240.0), start=(55000.0, 56000.0),
                         night=0.3, simultaneous=False, keep={}, floor=0.01, m0=20.5,
                         sigma_m0=0.2)
_PHASE_GRID = 256


def _periodic_preset(survey: str) -> dict[str, Any]:
    return dict(_PERIODIC_SURVEYS.get(survey.lower(), _GENERIC_PERIODIC))


def _colour_coefficient(wave: np.ndarray) -> np.ndarray:
    """m(lambda) - V in units of B-V (linear in 1/lambda): 1 at 4400 A, 0 at 5500 A."""
    return (1e4 / wave - 1e4 / 5500.0) / (1e4 / 4400.0 - 1e4 / 5500.0)


def _absolute_v(rng: np.random.Generator, cls: str, period: np.ndarray) -> np.ndarray:
    n = period.size
    if cls in ("DCEP_F", "DCEP_1O"):
        # Period-luminosity relation; first-overtone periods are fundamentalised (P1/P0 ~ 0.71).
        p0 = period / 0.71 if cls == "DCEP_1O" else period
        return -2.43 * (np.log10(p0) - 1.0) - 4.05 + rng.normal(0.0, 0.12, n)
    if cls in ("RRab", "RRc"):
        return rng.normal(0.6, 0.12, n)
    if cls == "EB":
        return rng.uniform(-2.5, 1.5, n)
    return rng.uniform(-3.0, 0.0, n)  # LPV at mean light


def _pulsator_shape(rng: np.random.Generator, cls: str, period: np.ndarray) -> dict[str, Any]:
    """Fourier amplitudes and phases (n, K) of one class, normalised to unit peak-to-peak.

    The series starts from an asymmetric triangle in brightness (a fast rise over a fraction
    ``rise`` of the cycle, then a slow decline); its amplitude ratios R_k1 and phase
    differences phi_k1 (sine series m = A0 + sum_k A_k sin(2 pi k x + phi_k)) are then
    scattered per object, which keeps each class's R21-phi21 locus but varies the shapes.
    """
    p = _PULSATORS[cls]
    n, nharm = period.size, p["nharm"]
    grid_n = 512
    x = np.arange(grid_n) / grid_n
    rise = rng.uniform(*p["rise"], n)[:, None]
    # Brightness triangle (n, G): up over [0, rise], down over [rise, 1]; magnitude is minus it.
    bright = np.where(x[None, :] < rise, x[None, :] / rise, (1.0 - x[None, :]) / (1.0 - rise))
    coef = np.fft.rfft(-bright, axis=1)[:, 1:nharm + 1]  # (n, K)
    amp = 2.0 * np.abs(coef) / grid_n
    phase = np.angle(coef) + np.pi / 2.0  # cos(t + a) = sin(t + a + pi/2)
    harmonics = np.arange(1, nharm + 1)
    # Shape invariants relative to the first harmonic, scattered per object.
    ratio = amp / amp[:, :1] * np.exp(rng.normal(0.0, p["ratio_scatter"], (n, nharm)))
    phase_k1 = phase - harmonics[None, :] * phase[:, :1]
    phase_k1 = phase_k1 + rng.normal(0.0, p["phase_scatter"], (n, nharm))
    ratio[:, 0], phase_k1[:, 0] = 1.0, 0.0
    if cls == "DCEP_F" and nharm > 1:
        # Hertzsprung progression: the second harmonic almost vanishes near P = 10 d.
        ratio[:, 1] *= 1.0 - 0.7 * np.exp(-0.5 * ((np.log10(period) - 1.0) / 0.08) ** 2)
    # (n, G, K): each harmonic of each object on the phase grid, to measure the peak-to-peak.
    grid = np.arange(_PHASE_GRID) / _PHASE_GRID
    template = (ratio[:, None, :] * np.sin(2 * np.pi * harmonics * grid[None, :, None]
                                           + phase_k1[:, None, :])).sum(axis=2)
    scale = 1.0 / np.ptp(template, axis=1)
    return {"ratio": ratio * scale[:, None], "phase": phase_k1, "harmonics": harmonics,
            "r21": ratio[:, 1] if nharm > 1 else np.zeros(n),
            "phi21": np.mod(phase_k1[:, 1], 2 * np.pi) if nharm > 1 else np.zeros(n)}


def _fourier(shape: Mapping[str, Any], phase: np.ndarray) -> np.ndarray:
    """Evaluate a unit-ptp Fourier template at phases (n, N) in cycles."""
    out = np.zeros_like(phase)
    for k in range(len(shape["harmonics"])):
        kk = shape["harmonics"][k]
        out += shape["ratio"][:, k, None] * np.sin(2 * np.pi * kk * phase
                                                   + shape["phase"][:, k, None])
    return out


def _eclipses(x: np.ndarray, params: Mapping[str, np.ndarray], depth1: np.ndarray,
              depth2: np.ndarray) -> np.ndarray:
    """Magnitude excursion of an eclipsing binary at phases x (n, N)."""
    d1 = np.mod(x + 0.5, 1.0) - 0.5
    d2 = np.mod(x - params["secondary"][:, None], 1.0) - 0.5
    w, kappa = params["width"][:, None], params["kappa"][:, None]
    ecl = (depth1[:, None] * np.exp(-np.abs(d1 / w) ** kappa)
           + depth2[:, None] * np.exp(-np.abs(d2 / w) ** kappa))
    return ecl + params["ellipsoidal"][:, None] * 0.5 * (1.0 + np.cos(4 * np.pi * x))


def periodic_variables(
    n: int,
    *,
    seed: int = 0,
    bands: Sequence[str] = ("B", "R"),
    survey: str = "macho",
    class_fractions: Mapping[str, float] | None = None,
    n_points: tuple[int, int] | None = None,
    outlier_fraction: float = 0.003,
    start: int = 0,
) -> pa.Table:
    """Light curves of periodic variables (magnitudes), labelled with the MACHO/OGLE classes.

    Classes (canonical names; MACHO's ``Cep_0``/``Cep_1``): ``DCEP_F`` (classical Cepheids,
    fundamental mode, P 2-50 d, sawtooth), ``DCEP_1O`` (first overtone, P 0.5-6 d,
    near-sinusoidal), ``RRab`` (P 0.45-0.9 d, fast rise), ``RRc``
    (P 0.2-0.45 d, near-sinusoidal), ``EB`` (eclipsing binaries, P 0.3-10 d, two eclipses of
    different depths, flat or ellipsoidal outside eclipse) and ``LPV`` (P 80-1000 d, 1-5 mag,
    cycle-to-cycle changes and red noise). Shapes are Fourier series with class-dependent
    amplitude ratios and phase differences; amplitudes fall and mean magnitudes change with
    wavelength per band. Cadence: several observing seasons of 6-8 months, nightly jitter,
    per-object point counts and band-specific drop-outs (MACHO observes B and R at once);
    errors grow with magnitude and a few points are outliers.

    Args:
        n: number of objects.
        seed: random seed.
        bands: band names (effective wavelengths from a built-in table).
        survey: ``macho`` (LMC, instrumental magnitudes ~ V - 24), ``ogle`` (LMC, I and V),
            ``ztf`` (field stars, g and r), ``atlas`` (field stars, c and o) or any other name
            (field stars, generic cadence).
        class_fractions: relative class weights (default balanced; exact counts).
        n_points: (min, max) observation epochs per object, drawn log-uniformly; default from
            the survey preset (100-1000 for MACHO).
        outlier_fraction: fraction of points offset by 0.3-2 mag (bad photometry).
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical light-curve table (``mag`` filled) with labels and ``meta`` holding
        ``period``, ``mean_mag`` and ``amplitude`` (first band), per-band ``mean_mags`` and
        ``amplitudes``, and the magnitude system.
    """
    _check_n(n, start)
    rng = _rng(seed, start)
    preset = _periodic_preset(survey)
    waves = _band_wavelengths(bands, survey.lower())
    lo, hi = n_points if n_points is not None else preset["n_points"]
    if not 1 <= lo <= hi:
        raise ValueError(f"n_points must be (min, max) with 1 <= min <= max, got {n_points}")
    if not 0.0 <= outlier_fraction < 0.5:
        raise ValueError(f"outlier_fraction must be in [0, 0.5), got {outlier_fraction}")
    cls_idx = _class_indices(rng, n, PERIODIC_CLASSES, class_fractions)
    ids = _ids(f"syn-{survey.lower()}", start, n)
    tables = [_periodic_chunk(rng, cls_idx[a:b], ids[a:b], list(bands), waves, survey.lower(),
                              preset, (lo, hi), outlier_fraction)
              for a, b in _chunked(n, 512)]
    if not tables:
        return LIGHT_CURVE_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _periodic_chunk(rng: np.random.Generator, cls_idx: np.ndarray, ids: list[str],
                    bands: list[str], waves: np.ndarray, survey: str, preset: dict[str, Any],
                    n_points: tuple[int, int], outlier_fraction: float) -> pa.Table:
    n, nb = cls_idx.size, len(bands)
    # ---- cadence: seasons, nights, jitter; (n, N) padded with +inf beyond each object's N_i.
    counts = np.rint(_loguniform(rng, n_points[0], n_points[1] + 0.499, n)).astype(int)
    counts = np.clip(counts, n_points[0], n_points[1])
    n_max = int(counts.max())
    baseline = rng.uniform(*preset["baseline"], n) * 365.25
    season = rng.uniform(*preset["season"], n)
    t_start = rng.uniform(*preset["start"], n)
    n_seasons = np.ceil(baseline / 365.25)
    u = rng.random((n, n_max)) * (n_seasons * season)[:, None]
    season_idx = np.floor(u / season[:, None])
    t = t_start[:, None] + season_idx * 365.25 + (u - season_idx * season[:, None])
    t = np.floor(t) + preset["night"] + rng.normal(0.0, 0.08, (n, n_max))
    t = np.where(np.arange(n_max)[None, :] < counts[:, None], t, np.inf)
    t.sort(axis=1)
    epoch_ok = np.isfinite(t)
    # ---- bands observed at each epoch: (n, N, B).
    if preset["simultaneous"]:
        keep_p = np.stack([rng.uniform(*preset["keep"].get(b, (0.7, 0.95)), n) for b in bands],
                          axis=1)  # (n, B)
        observed = rng.random((n, n_max, nb)) < keep_p[:, None, :]
        observed[:, :, 0] |= ~observed.any(axis=2)  # every epoch keeps at least one band
    else:
        weights = np.array([preset["keep"].get(b, 1.0) for b in bands], dtype=np.float64)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(nb, 1.0 / nb)
        choice = rng.choice(nb, size=(n, n_max), p=weights)
        observed = choice[:, :, None] == np.arange(nb)[None, None, :]
    observed &= epoch_ok[:, :, None]
    # ---- mean magnitudes per band.
    names = np.array(PERIODIC_CLASSES)[cls_idx]
    period = np.empty(n)
    abs_v = np.empty(n)
    colour = np.empty(n)
    for c, cls in enumerate(PERIODIC_CLASSES):
        rows = cls_idx == c
        k = int(rows.sum())
        if not k:
            continue
        prange = _EB["period"] if cls == "EB" else _PULSATORS[cls]["period"]
        period[rows] = _loguniform(rng, *prange, k)
        abs_v[rows] = _absolute_v(rng, cls, period[rows])
        crange = _EB["colour"] if cls == "EB" else _PULSATORS[cls]["colour"]
        colour[rows] = rng.uniform(*crange, k)
    if preset["distance"] == "lmc":
        v_mean = abs_v + 18.48 + rng.normal(0.0, 0.05, n)
    else:
        v_mean = rng.uniform(*preset["distance"], n)
    mean_b = v_mean[:, None] + colour[:, None] * _colour_coefficient(waves)[None, :]  # (n, B)
    t0 = t_start + rng.uniform(0.0, 1.0, n) * period
    cycles = (t - t0[:, None]) / period[:, None]  # (n, N)
    cycles = np.where(epoch_ok, cycles, 0.0)
    delta = np.zeros((n, n_max, nb))  # magnitude excursion around the band's mean
    amp_v = np.zeros(n)
    grid = np.arange(_PHASE_GRID) / _PHASE_GRID
    grid_delta = np.zeros((n, _PHASE_GRID, nb))
    extras: dict[int, dict[str, float]] = {}
    for c, cls in enumerate(PERIODIC_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        if rows.size == 0:
            continue
        per = period[rows]
        if cls == "EB":
            k = rows.size
            depth1 = rng.uniform(*_EB["depth"], k)
            contact = per < 1.0
            params = {
                "width": np.clip(rng.uniform(0.02, 0.06, k) * per ** (-1.0 / 3.0), 0.015, 0.15),
                "kappa": rng.uniform(1.5, 4.0, k),
                "secondary": 0.5 + np.where(rng.random(k) < 0.3, rng.uniform(-0.02, 0.02, k),
                                            0.0),
                "ellipsoidal": np.where(contact, rng.uniform(0.1, 0.3, k),
                                        rng.uniform(0.0, 0.05, k)),
            }
            ratio2 = np.where(contact, rng.uniform(0.7, 1.0, k), rng.uniform(0.1, 0.9, k))
            slope1 = rng.uniform(-0.2, 0.2, k)
            slope2 = rng.uniform(-0.6, 0.6, k)
            for b in range(nb):
                # Eclipse depths change with wavelength: the secondary by the temperature ratio.
                d1 = depth1 * (waves[b] / 5500.0) ** (-slope1)
                d2 = depth1 * ratio2 * (waves[b] / 5500.0) ** slope2
                ecl = _eclipses(np.mod(cycles[rows], 1.0), params, d1, d2)
                ecl_grid = _eclipses(np.broadcast_to(grid, (k, _PHASE_GRID)), params, d1, d2)
                mean_ecl = ecl_grid.mean(axis=1, keepdims=True)
                delta[rows, :, b] = ecl - mean_ecl
                grid_delta[rows, :, b] = ecl_grid - mean_ecl
            amp_v[rows] = depth1
            continue
        p = _PULSATORS[cls]
        shape = _pulsator_shape(rng, cls, per)
        amp = rng.uniform(*p["amp"], rows.size)
        if cls == "RRab":
            # Bailey diagram: longer-period RRab have smaller amplitudes.
            amp = np.clip(1.25 - 1.6 * (per - 0.45) + rng.normal(0.0, 0.1, rows.size),
                          *p["amp"])
        amp_v[rows] = amp
        alpha = rng.uniform(*p["alpha"], rows.size)
        phase = cycles[rows]
        amp_mod = np.ones_like(phase)
        red = np.zeros_like(phase)
        if cls == "LPV":
            # Cycle-to-cycle changes: the phase wanders (random walk, ~3% of a cycle per
            # cycle), the amplitude is modulated, and a red-noise term adds irregular
            # variability; all three live on a coarse 5-day grid interpolated at the epochs.
            span = np.where(epoch_ok[rows], t[rows], t_start[rows, None]) - t_start[rows, None]
            step = 5.0
            length = int(np.ceil(span.max() / step)) + 2
            xg = span / step
            steps_per_cycle = per / step
            walk = np.cumsum(rng.standard_normal((rows.size, length)), axis=1)
            walk *= 0.03 / np.sqrt(steps_per_cycle)[:, None]
            phase = phase + _interp_rows(xg, walk)
            mod = _smooth_noise(rng, rows.size, length, width=float(np.median(steps_per_cycle)))
            amp_mod = 1.0 + rng.uniform(0.05, 0.2, rows.size)[:, None] * _interp_rows(xg, mod)
            red_scale = rng.uniform(0.05, 0.25, rows.size)[:, None]
            red = red_scale * _interp_rows(xg, _smooth_noise(rng, rows.size, length, width=8.0))
            for r, scale in zip(rows.tolist(), red_scale[:, 0].tolist(), strict=True):
                extras.setdefault(r, {})["red_noise_mag"] = _round(scale, 4)
        for r, r21, phi21 in zip(rows.tolist(), shape["r21"].tolist(), shape["phi21"].tolist(),
                                 strict=True):
            extras.setdefault(r, {}).update({"r21": _round(r21, 4), "phi21": _round(phi21, 4)})
        base = _fourier(shape, phase) * amp_mod  # (k, N), unit ptp
        base_grid = _fourier(shape, np.broadcast_to(grid, (rows.size, _PHASE_GRID)))
        for b in range(nb):
            factor = (amp * (waves[b] / 5500.0) ** (-alpha))[:, None]
            delta[rows, :, b] = factor * base + red
            grid_delta[rows, :, b] = factor * base_grid
    # ---- noise, errors and outliers, in calibrated magnitudes.
    true = mean_b[:, None, :] + delta  # (n, N, B)
    err = np.sqrt(preset["floor"] ** 2 + preset["sigma_m0"] ** 2
                  * 10.0 ** (0.4 * (true - preset["m0"])))
    err *= rng.uniform(0.85, 1.15, err.shape)  # the pipeline's error estimate scatters too
    obs = true + err * rng.standard_normal(err.shape)
    outlier = rng.random(err.shape) < outlier_fraction
    jump = rng.uniform(0.3, 2.0, err.shape) * np.where(rng.random(err.shape) < 0.7, 1.0, -1.0)
    obs = np.where(outlier, obs + jump, obs) - preset["mag_offset"]
    # ---- flatten: nonzero() walks (object, epoch, band) in row-major order, so each object's
    # points come out time-sorted.
    obj, ep, bd = np.nonzero(observed)
    point_counts = np.bincount(obj, minlength=n)
    mean_out = mean_b - preset["mag_offset"]
    amp_band = np.ptp(grid_delta, axis=1)  # (n, B)
    metas = []
    for i in range(n):
        meta = {
            "period": _round(period[i], 8),
            "mean_mag": _round(mean_out[i, 0], 4),
            "amplitude": _round(amp_band[i, 0], 4),
            "ref_band": bands[0],
            "mean_mags": {b: _round(mean_out[i, j], 4) for j, b in enumerate(bands)},
            "amplitudes": {b: _round(amp_band[i, j], 4) for j, b in enumerate(bands)},
            "mag_system": ("MACHO instrumental (approx. V - 24)" if survey == "macho"
                           else "calibrated (Vega-like)"),
            "t0": _round(t0[i], 6),
            "value_unit": "mag",
        }
        meta.update(extras.get(i, {}))
        metas.append(meta)
    return _light_curve_table(
        ids, survey, point_counts, t[obj, ep], bd, bands, obs[obj, ep, bd], err[obj, ep, bd],
        is_flux=False, labels=list(names), redshift=None, metas=metas,
        period=np.array([m["period"] for m in metas], dtype=np.float64))
