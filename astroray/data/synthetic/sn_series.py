"""Dense, noiseless supernova spectral time series (truth series, :func:`sn_spectral_series`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from astroray.data.schema import SPECTRUM_SCHEMA
from astroray.data.synthetic._common import (
    _C_KMS,
    _SDSS_FLUX_UNIT,
    _check_n,
    _chunked,
    _class_indices,
    _flux_for_mag,
    _planck,
    _rng,
    _round,
    _spectrum_table,
)

__all__ = ["sn_spectral_series"]

# P-Cygni lines: (rest A, absorption depth before/after the switch phase, switch phase (rest
# days from peak), emission relative to absorption, velocity relative to the photosphere).
_SN_LINES: dict[str, tuple[tuple[float, float, float, float, float, float], ...]] = {
    "Ia": (
        (6355.0, 0.55, 0.35, 35.0, 0.35, 1.0),    # Si II
        (5972.0, 0.20, 0.10, 20.0, 0.2, 1.0),     # Si II
        (5454.0, 0.25, 0.02, 10.0, 0.1, 0.85),    # S II W
        (5640.0, 0.25, 0.02, 10.0, 0.1, 0.85),    # S II W
        (3945.0, 0.70, 0.70, 0.0, 0.3, 1.15),     # Ca II H&K
        (8579.0, 0.35, 0.70, 5.0, 0.5, 1.15),     # Ca II IR triplet
        (4481.0, 0.30, 0.20, 15.0, 0.2, 1.0),     # Mg II
        (5018.0, 0.10, 0.40, 10.0, 0.3, 0.9),     # Fe II blend
        (7774.0, 0.30, 0.15, 20.0, 0.2, 1.0),     # O I
    ),
    "II": (
        (6564.6, 0.30, 0.35, 15.0, 2.5, 1.0),     # H-alpha
        (4862.7, 0.40, 0.45, 15.0, 0.6, 1.0),     # H-beta
        (4341.7, 0.30, 0.35, 15.0, 0.3, 1.0),     # H-gamma
        (5169.0, 0.00, 0.40, 15.0, 0.1, 0.7),     # Fe II
        (5018.0, 0.00, 0.30, 15.0, 0.1, 0.7),     # Fe II
        (5892.0, 0.00, 0.40, 35.0, 0.4, 0.8),     # Na I D
        (8579.0, 0.00, 0.50, 25.0, 0.6, 0.8),     # Ca II IR triplet
        (5876.0, 0.30, 0.00, 5.0, 0.3, 1.0),      # He I (early, hot)
    ),
}
_SN_TYPES = ("Ia", "II")
_SN_LABELS = {"Ia": "SNIa", "II": "SNII"}  # canonical class names (astroray.data.taxonomy)


def sn_spectral_series(
    n: int,
    *,
    seed: int = 0,
    types: Sequence[str] = _SN_TYPES,
    phases: tuple[float, float] = (-15.0, 60.0),
    cadence: float = 1.0,
    wavelength_range: tuple[float, float] = (3500.0, 10000.0),
    dloglam: float = 2e-4,
    snr: float = 100.0,
    start: int = 0,
) -> pa.Table:
    """Dense supernova spectral time series ("truth" series), one row per epoch.

    Each supernova (type Ia or II, z 0.005-0.05) is observed every ``cadence`` days
    (observer frame) from ``phases[0]`` to ``phases[1]`` around its B-band peak (type II
    series start a day after explosion). Each spectrum is a Planck photosphere whose
    temperature evolves (Ia ~14000 K before peak to ~5500 K; II from >15000 K to ~5500 K on the
    plateau), with UV line blanketing and P-Cygni profiles whose velocities decrease with time
    (Ia: Si II 6355, Si II 5972, S II W, Ca II H&K and IR triplet, Mg II, Fe II, O I; II:
    H-alpha, H-beta, H-gamma, Fe II, Na I D, Ca II, He I). The flux scale follows the light
    curve in a rest-frame 4000-5000 A box (Ia: peak M ~ -19.3 with the Phillips decline;
    II: rise then a plateau), placed at the Planck18 luminosity distance. Flux is noiseless
    and positive, in 1e-17 erg/s/cm^2/A (``meta.flux_unit``), with ``ivar`` for a nominal
    per-pixel S/N of ``snr``.

    Args:
        n: number of supernovae.
        seed: random seed.
        types: subset of ``Ia`` and ``II`` (balanced).
        phases: observer-frame days from peak of the first and last epochs.
        cadence: days between epochs.
        wavelength_range: observed-frame wavelength range (vacuum Angstrom).
        dloglam: pixel size in log10 wavelength (2e-4 ~ 140 km/s).
        snr: nominal per-pixel signal-to-noise that sets ``ivar``.
        start: index of the first supernova (ids and random stream), for chunked generation.

    Returns:
        A canonical spectrum table, ``object_id`` ``syn-sn-NNNN-eEEE``, ``label`` the
        canonical class (``SNIa``, ``SNII``), ``meta`` with ``sn_id``, ``type`` (``Ia``,
        ``II``), ``mjd``, ``phase`` (rest-frame days from peak),
        ``temperature``, ``velocity`` and ``flux_unit``.
    """
    _check_n(n, start)
    bad = [t for t in types if t not in _SN_TYPES]
    if bad or not types:
        raise ValueError(f"types: expected a non-empty subset of {_SN_TYPES}, got {types}")
    if not phases[0] < phases[1] or cadence <= 0:
        raise ValueError(f"need phases[0] < phases[1] and cadence > 0, got {phases}, {cadence}")
    if not 0 < wavelength_range[0] < wavelength_range[1] or dloglam <= 0 or snr <= 0:
        raise ValueError(f"invalid wavelength_range {wavelength_range}, dloglam {dloglam} or "
                         f"snr {snr}")
    from astropy.cosmology import Planck18  # lazy: astropy

    rng = _rng(seed, start)
    kind = np.array(types)[_class_indices(rng, n, tuple(types), None)]
    z = rng.uniform(0.005, 0.05, n)
    distmod = Planck18.distmod(z).value if n else np.zeros(0)
    t_peak = rng.uniform(58000.0, 60000.0, n)
    dm15 = rng.uniform(0.9, 1.5, n)
    abs_peak = np.where(kind == "Ia", -19.3 + 0.7 * (dm15 - 1.1) + rng.normal(0.0, 0.12, n),
                        np.clip(rng.normal(-17.0, 0.8, n), -18.5, -15.5))
    rise = rng.uniform(7.0, 12.0, n)  # II: rest days from explosion to peak
    slope = rng.uniform(0.02, 0.04, n)  # II plateau decline in B (mag/day)
    v_ref = np.where(kind == "Ia", rng.uniform(10000.0, 13000.0, n),
                     rng.uniform(3500.0, 5500.0, n))
    t_scale = rng.uniform(0.9, 1.1, n)
    obs_phase = np.arange(phases[0], phases[1] + 0.5 * cadence, cadence)
    # ---- epochs of all supernovae, flattened; II series start a day after explosion.
    sn = np.repeat(np.arange(n), obs_phase.size)
    p_obs = np.tile(obs_phase, n)
    p_rest = p_obs / (1.0 + z[sn])
    keep = (kind[sn] == "Ia") | (p_rest > -rise[sn] + 1.0)
    sn, p_obs, p_rest = sn[keep], p_obs[keep], p_rest[keep]
    # Epoch number within its supernova (epochs are grouped by supernova, in time order).
    first = np.r_[True, sn[1:] != sn[:-1]] if sn.size else np.zeros(0, dtype=bool)
    epoch = np.arange(sn.size) - np.maximum.accumulate(np.where(first, np.arange(sn.size), 0))
    loglam = np.arange(np.log10(wavelength_range[0]), np.log10(wavelength_range[1]), dloglam)
    wave = 10.0 ** loglam
    tables = []
    params = {"kind": kind, "z": z, "distmod": distmod, "t_peak": t_peak, "dm15": dm15,
              "abs_peak": abs_peak, "rise": rise, "slope": slope, "v_ref": v_ref,
              "t_scale": t_scale}
    for lo, hi in _chunked(sn.size, 512):
        tables.append(_sn_chunk(sn[lo:hi], epoch[lo:hi], p_obs[lo:hi], p_rest[lo:hi], wave,
                                params, snr, start))
    if not tables:
        return SPECTRUM_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _sn_chunk(sn: np.ndarray, epoch: np.ndarray, p_obs: np.ndarray, p_rest: np.ndarray,
              wave: np.ndarray, params: Mapping[str, np.ndarray], snr: float,
              start: int) -> pa.Table:
    """Spectra of epochs (E,) of supernovae ``sn`` (indices into the per-SN ``params``)."""
    kind, z, distmod, t_peak = params["kind"], params["z"], params["distmod"], params["t_peak"]
    dm15, abs_peak, rise = params["dm15"], params["abs_peak"], params["rise"]
    slope, v_ref, t_scale = params["slope"], params["v_ref"], params["t_scale"]
    e = sn.size
    typ = kind[sn]
    ia = typ == "Ia"
    zz = z[sn]
    since_exp = np.maximum(p_rest + rise[sn], 0.5)
    temp = np.where(
        ia, np.interp(p_rest, [-20.0, -5.0, 0.0, 10.0, 20.0, 30.0, 60.0, 200.0],
                      [15000.0, 12500.0, 11000.0, 9000.0, 7500.0, 6500.0, 5500.0, 5000.0]),
        5500.0 + 20000.0 * np.exp(-since_exp / 6.0)) * t_scale[sn]
    velocity = np.where(ia, np.clip(v_ref[sn] - np.where(p_rest < 0, 150.0, 80.0) * p_rest,
                                    6000.0, 25000.0),
                        v_ref[sn] * (since_exp / 50.0) ** -0.45)
    # Light curve in the rest-frame B box (magnitudes below peak).
    dm_ia = np.where(p_rest < 0, 0.006 * p_rest ** 2,
                     np.where(p_rest <= 30.0, dm15[sn] * (np.abs(p_rest) / 15.0) ** 1.3,
                              dm15[sn] * 2.0 ** 1.3 + 0.015 * (p_rest - 30.0)))
    dm_ii = np.where(p_rest < 0, 2.5 * (-p_rest / rise[sn]) ** 2, slope[sn] * p_rest)
    m_app = abs_peak[sn] + distmod[sn] + np.where(ia, dm_ia, dm_ii)
    rest = wave[None, :] / (1.0 + zz[:, None])  # (E, L)
    cont = _planck(rest, temp[:, None])
    cutoff = np.where(ia, 3700.0, 3300.0)[:, None]
    power = np.where(ia, 15.0, 10.0)[:, None]
    cont = cont / (1.0 + (cutoff / rest) ** power)  # UV line blanketing
    absorb = np.ones_like(cont)
    emit = np.zeros_like(cont)
    for name in _SN_TYPES:
        rows = np.flatnonzero(typ == name)
        if rows.size == 0:
            continue
        phase_ref = p_rest[rows] if name == "Ia" else since_exp[rows] - 10.0
        for lam0, before, after, switch, em_ratio, v_factor in _SN_LINES[name]:
            weight = 1.0 / (1.0 + np.exp(-(phase_ref - switch) / 4.0))
            depth = before + (after - before) * weight
            if name == "II" and lam0 == 6564.6:
                em_ratio = em_ratio * np.clip(since_exp[rows] / 30.0, 0.3, 1.5)
            v = velocity[rows] * v_factor
            u = _C_KMS * (rest[rows] / lam0 - 1.0)  # (k, L) velocity from the line
            width_a = (0.25 * v + 1000.0)[:, None]
            width_e = (0.35 * v + 800.0)[:, None]
            absorb[rows] *= 1.0 - np.asarray(depth)[:, None] * np.exp(
                -0.5 * ((u + v[:, None]) / width_a) ** 2)
            emit[rows] += (np.asarray(depth) * em_ratio)[:, None] * np.exp(
                -0.5 * ((u + 0.05 * v[:, None]) / width_e) ** 2)
    model = cont * (np.clip(absorb, 0.02, None) + emit)
    # Flux scale: mean f_lambda in the redshifted 4000-5000 A box matches m_app (AB).
    box = (rest >= 4000.0) & (rest <= 5000.0)
    mean = (model * box).sum(axis=1) / np.maximum(box.sum(axis=1), 1)
    target = _flux_for_mag(m_app, 1.0) / (4450.0 * (1.0 + zz)) ** 2
    model = model * (target / mean)[:, None]
    sigma = model / snr + 1e-3 * target[:, None] / snr
    sn_ids = [f"syn-sn-{start + int(s):04d}" for s in sn]
    ids = [f"{s}-e{int(k):03d}" for s, k in zip(sn_ids, epoch, strict=True)]
    mjd = t_peak[sn] + p_obs
    metas = [{"sn_id": sn_ids[i], "type": str(typ[i]), "mjd": _round(mjd[i], 5),
              "phase": _round(p_rest[i], 4), "obs_phase": _round(p_obs[i], 4),
              "peak_mjd": _round(t_peak[sn[i]], 5), "temperature": _round(temp[i], 1),
              "velocity": _round(velocity[i], 1), "abs_mag_peak": _round(abs_peak[sn[i]], 3),
              "app_mag_b": _round(m_app[i], 4), "flux_unit": _SDSS_FLUX_UNIT}
             for i in range(e)]
    counts = np.full(e, wave.size)
    return _spectrum_table(
        ids, "synthetic-sn", counts, np.tile(wave, e), model.reshape(-1),
        (1.0 / sigma ** 2).reshape(-1), np.zeros(e * wave.size, dtype=np.int32), z=zz,
        z_err=np.full(e, 1e-4), labels=[_SN_LABELS[t] for t in typ.tolist()],
        subclasses=["Ia-norm" if t == "Ia" else "IIP" for t in typ], metas=metas)
