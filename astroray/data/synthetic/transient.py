"""Multi-band SN Ia / II / Ibc light curves in nJy at cosmological distances.

See :func:`transients`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.readers._common import NJY_ZEROPOINT as _NJY_ZEROPOINT
from astroray.data.schema import LIGHT_CURVE_SCHEMA
from astroray.data.synthetic._common import (
    _band_wavelengths,
    _check_n,
    _chunked,
    _class_indices,
    _ids,
    _light_curve_table,
    _rng,
    _round,
)

__all__ = ["TRANSIENT_CLASSES", "transients"]

TRANSIENT_CLASSES = ("SNIa", "SNII", "SNIbc")


_TRANSIENT_SURVEYS: dict[str, dict[str, Any]] = {
    "ztf": dict(limits={"g": 20.8, "r": 20.6, "i": 20.2}, band_prob={"g": 0.8, "r": 0.9,
                                                                      "i": 0.3},
                cadence=(1.0, 3.0), start=(58300.0, 60300.0),
                z={"SNIa": (0.01, 0.15), "SNII": (0.003, 0.05), "SNIbc": (0.003, 0.06)}),
    "lsst": dict(limits={"u": 23.8, "g": 24.5, "r": 24.0, "i": 23.4, "z": 22.8, "Y": 22.0},
                 band_prob={}, cadence=(2.0, 4.0), start=(60300.0, 61800.0),
                 z={"SNIa": (0.05, 0.9), "SNII": (0.02, 0.35), "SNIbc": (0.02, 0.4)}),
}
_TRANSIENT_SURVEYS["elasticc"] = _TRANSIENT_SURVEYS["lsst"]
# ATLAS: ~19.5 mag limits in c and o, a visit every ~2 nights (Tonry et al. 2018).
_TRANSIENT_SURVEYS["atlas"] = dict(
    limits={"c": 19.7, "o": 19.4}, band_prob={"c": 0.4, "o": 0.7}, cadence=(1.5, 2.5),
    start=(57500.0, 60300.0),
    z={"SNIa": (0.01, 0.1), "SNII": (0.003, 0.03), "SNIbc": (0.003, 0.04)})


def _volume_redshift(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """Redshifts with p(z) ~ z^2 (a uniform volume density at low z)."""
    return (lo ** 3 + rng.random(n) * (hi ** 3 - lo ** 3)) ** (1.0 / 3.0)


def _transient_shape(cls: str, tau: np.ndarray, p: Mapping[str, np.ndarray]) -> np.ndarray:
    """Un-normalised rest-frame flux shape at rest-frame days ``tau`` (n, B, T)."""
    if cls == "SNII":
        rise = 1.0 / (1.0 + np.exp(-(tau + p["rise"]) / p["rise_tau"]))
        after = np.clip(tau, 0.0, None)
        drop = 1.0 / (1.0 + np.exp(-(tau - p["plateau"]) / p["drop_width"]))
        dmag = (p["slope"] * after + p["drop"] * drop
                + 0.0098 * np.clip(tau - p["plateau"], 0.0, None) * drop)
        return rise * 10.0 ** (-0.4 * dmag)
    x = tau - p["t0"]
    # Bazin: exp(-x / tau_fall) / (1 + exp(-x / tau_rise)), written to avoid overflow.
    shape = np.exp(-x / p["fall"] - np.logaddexp(0.0, -x / p["rise"]))
    if cls == "SNIa":
        # Secondary maximum in the red ~4 weeks after peak.
        shape = shape + p["bump"] * np.exp(-0.5 * ((tau - 28.0) / 7.0) ** 2)
    return shape


def transients(
    n: int,
    *,
    seed: int = 0,
    bands: Sequence[str] = ("g", "r", "i"),
    survey: str = "ztf",
    class_fractions: Mapping[str, float] | None = None,
    start: int = 0,
) -> pa.Table:
    """Multi-band supernova light curves in nJy (AB zero point 31.4).

    SN Ia (Bazin rise and fall, a secondary red maximum, Phillips relation), SN II (rise,
    plateau, drop to the radioactive tail) and SN Ibc (faster, redder, fainter) at redshifts
    drawn per class with p(z) ~ z^2 (Ia 0.01-0.15 for ZTF), peak brightness from the absolute
    magnitude and the Planck18 distance modulus, time dilation, colours and decline rates that
    depend on the rest-frame wavelength (so colours evolve), Milky Way extinction, and a ZTF
    (or LSST) cadence of 1-3 nights with weather losses and gaps, pre-explosion epochs
    included. Errors combine sky noise (from a per-epoch 5-sigma limit), source noise and a
    calibration floor, so faint and pre-explosion fluxes can be negative.

    Args:
        n: number of objects.
        seed: random seed.
        bands: band names.
        survey: ``ztf``, ``lsst``/``elasticc``, ``atlas`` or another name (ZTF-like
            defaults).
        class_fractions: relative weights of ``SNIa``, ``SNII``, ``SNIbc`` (default balanced).
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical light-curve table (``flux`` in nJy) with labels, ``redshift``, and ``meta``
        holding ``peak_mjd`` and ``peak_mag`` per band, ``t_peak`` (reference peak MJD),
        ``abs_mag``, ``distmod`` and ``mwebv``.
    """
    _check_n(n, start)
    rng = _rng(seed, start)
    key = survey.lower()
    preset = _TRANSIENT_SURVEYS.get(key, _TRANSIENT_SURVEYS["ztf"])
    waves = _band_wavelengths(bands, key)
    cls_idx = _class_indices(rng, n, TRANSIENT_CLASSES, class_fractions)
    ids = _ids(f"syn-{key}", start, n)
    tables = [_transient_chunk(rng, cls_idx[a:b], ids[a:b], list(bands), waves, key, preset)
              for a, b in _chunked(n, 1024)]
    if not tables:
        return LIGHT_CURVE_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _transient_chunk(rng: np.random.Generator, cls_idx: np.ndarray, ids: list[str],
                     bands: list[str], waves: np.ndarray, survey: str,
                     preset: dict[str, Any]) -> pa.Table:
    from astropy.cosmology import Planck18  # lazy: astropy

    n, nb = cls_idx.size, len(bands)
    names = np.array(TRANSIENT_CLASSES)[cls_idx]
    z = np.empty(n)
    abs_mag = np.empty(n)
    colour = np.empty(n)
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = cls_idx == c
        k = int(rows.sum())
        if not k:
            continue
        z[rows] = _volume_redshift(rng, *preset["z"][cls], k)
        if cls == "SNIa":
            colour[rows] = rng.normal(0.0, 0.08, k)
        elif cls == "SNII":
            colour[rows] = rng.uniform(-0.15, 0.2, k)
        else:
            colour[rows] = rng.uniform(0.3, 0.6, k)
    # Distance moduli from a fine grid: Planck18.distmod integrates per value.
    z_grid = np.geomspace(max(z.min(), 1e-4) * 0.999, max(z.max(), 1e-3) * 1.001, 256)
    distmod = np.interp(z, z_grid, Planck18.distmod(z_grid).value)
    rest = waves[None, :] / (1.0 + z[:, None])  # (n, B) rest-frame wavelengths
    params: dict[str, dict[str, np.ndarray]] = {}
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        k = rows.size
        if not k:
            continue
        lam = rest[rows][:, :, None]  # (k, B, 1)
        if cls == "SNIa":
            dm15 = rng.uniform(0.8, 1.6, k)
            abs_mag[rows] = -19.3 + 0.7 * (dm15 - 1.1) + rng.normal(0.0, 0.12, k)
            fall = (16.3 / dm15)[:, None, None] * (lam / 4400.0) ** 0.6
            params[cls] = {"rise": rng.uniform(3.0, 5.0, k)[:, None, None], "fall": fall,
                           "t0": -1.5 * (lam - 4400.0) / 1000.0 - 4.0,
                           "bump": 0.35 * np.clip((lam - 6000.0) / 2000.0, 0.0, 1.0)}
        elif cls == "SNIbc":
            abs_mag[rows] = np.clip(rng.normal(-17.6, 0.8, k), -19.5, -15.5)
            fall = rng.uniform(10.0, 22.0, k)[:, None, None] * (lam / 4400.0) ** 0.5
            params[cls] = {"rise": rng.uniform(3.0, 6.0, k)[:, None, None], "fall": fall,
                           "t0": -5.0 + 0.0 * lam}
        else:
            abs_mag[rows] = np.clip(rng.normal(-16.8, 0.9, k), -19.0, -14.5)
            params[cls] = {
                "rise": rng.uniform(5.0, 10.0, k)[:, None, None],
                "rise_tau": rng.uniform(1.5, 3.0, k)[:, None, None],
                # Blue bands decline faster on the plateau (the photosphere cools).
                "slope": rng.uniform(0.0, 0.02, k)[:, None, None] * (4400.0 / lam) ** 1.5,
                "plateau": rng.uniform(60.0, 110.0, k)[:, None, None],
                "drop": rng.uniform(1.5, 3.0, k)[:, None, None],
                "drop_width": rng.uniform(3.0, 7.0, k)[:, None, None],
            }
    # Peak colour (linear in 1/lambda around rest-frame B), faint rest-frame UV for SN Ia, and
    # Milky Way extinction with R(lambda) ~ 3.1 (5500 / lambda)^1.3.
    kappa = (1e4 / 4400.0 - 1e4 / rest) / (1e4 / 4400.0 - 1e4 / 5500.0)
    uv = np.where(names == "SNIa", 1.0, 0.3)[:, None] * np.clip((4000.0 - rest) / 800.0, 0, 2)
    mwebv = np.minimum(rng.exponential(0.05, n), 0.5)
    extinction = mwebv[:, None] * 3.1 * (5500.0 / waves[None, :]) ** 1.3
    peak_mag = abs_mag[:, None] + distmod[:, None] - colour[:, None] * kappa + uv + extinction
    # ---- peak of each band's shape on a dense rest-frame grid, to normalise it to peak_mag.
    dense = np.linspace(-40.0, 160.0, 801)
    shape_max = np.empty((n, nb))
    shape_peak = np.empty((n, nb))
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        if rows.size:
            s = _transient_shape(cls, np.broadcast_to(dense, (rows.size, nb, dense.size)),
                                 params[cls])
            shape_max[rows] = s.max(axis=2)
            shape_peak[rows] = dense[s.argmax(axis=2)]
    # ---- cadence: nights every `cadence` days from before explosion to months after peak.
    t_ref = rng.uniform(*preset["start"], n)
    pre = rng.uniform(15.0, 45.0, n) * (1.0 + z)
    post = rng.uniform(60.0, 150.0, n) * (1.0 + z)
    cadence = rng.uniform(*preset["cadence"], n)
    n_nights = int(np.ceil(((pre + post) / cadence).max())) + 1
    k = np.arange(n_nights)[None, :]
    night = np.floor(t_ref[:, None] - pre[:, None] + k * cadence[:, None])  # (n, K)
    usable = k * cadence[:, None] <= (pre + post)[:, None]
    usable &= rng.random((n, n_nights)) > rng.uniform(0.1, 0.3, n)[:, None]  # weather
    has_gap = rng.random(n) < 0.3
    gap_start = t_ref - pre + rng.random(n) * (pre + post)
    gap_len = rng.uniform(5.0, 25.0, n)
    in_gap = (night >= gap_start[:, None]) & (night < (gap_start + gap_len)[:, None])
    usable &= ~(in_gap & has_gap[:, None])
    prob = np.array([preset["band_prob"].get(b, 0.7 if not preset["band_prob"] else 0.5)
                     for b in bands])
    if not preset["band_prob"]:
        prob = np.full(nb, 0.35)
    observed = (rng.random((n, n_nights, nb)) < prob[None, None, :]) & usable[:, :, None]
    observed[~observed.any(axis=(1, 2)), 0, 0] = True  # every object keeps at least one point
    # Bands are taken in a fixed order within a night, ~40 minutes apart.
    t_obs = (night[:, :, None] + 0.15 + rng.uniform(0.0, 0.25, (n, n_nights, 1))
             + 0.03 * np.arange(nb)[None, None, :] + rng.uniform(0.0, 0.005, (n, n_nights, nb)))
    # ---- fluxes and errors, (n, K, B).
    tau = np.transpose((t_obs - t_ref[:, None, None]) / (1.0 + z[:, None, None]), (0, 2, 1))
    shape = np.empty((n, nb, n_nights))  # (n, B, K)
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        if rows.size:
            shape[rows] = _transient_shape(cls, tau[rows], params[cls]) / shape_max[rows][..., None]
    peak_flux = 10.0 ** (-0.4 * (peak_mag - _NJY_ZEROPOINT))  # (n, B) nJy
    true = np.transpose(shape * peak_flux[:, :, None], (0, 2, 1))  # (n, K, B)
    limits = np.array([preset["limits"].get(b, 21.0) for b in bands])
    lim = limits[None, None, :] + rng.normal(0.0, 0.3, (n, n_nights, nb))
    sky_sigma = 10.0 ** (-0.4 * (lim - _NJY_ZEROPOINT)) / 5.0
    # Source noise reaches S/N 100 five magnitudes above the limit.
    gain = 10.0 ** (-0.4 * (limits - 5.0 - _NJY_ZEROPOINT)) / 1e4
    sigma = np.sqrt(sky_sigma ** 2 + gain[None, None, :] * np.clip(true, 0.0, None)
                    + (0.005 * true) ** 2)
    flux = true + sigma * rng.standard_normal(sigma.shape)
    obj, night_i, bd = np.nonzero(observed)
    point_counts = np.bincount(obj, minlength=n)
    peak_mjd = t_ref[:, None] + shape_peak * (1.0 + z[:, None])
    metas = [{
        "t_peak": _round(t_ref[i], 5),
        "peak_mjd": {b: _round(peak_mjd[i, j], 5) for j, b in enumerate(bands)},
        "peak_mag": {b: _round(peak_mag[i, j], 4) for j, b in enumerate(bands)},
        "abs_mag": _round(abs_mag[i], 4), "distmod": _round(distmod[i], 4),
        "mwebv": _round(mwebv[i], 4), "value_unit": "nJy",
    } for i in range(n)]
    return _light_curve_table(
        ids, survey, point_counts, t_obs[obj, night_i, bd], bd, bands,
        flux[obj, night_i, bd], sigma[obj, night_i, bd], is_flux=True, labels=list(names),
        redshift=z, metas=metas)
