"""SDSS-like STAR / GALAXY / QSO spectra with lines, sky and masks (:func:`spectra`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.schema import SPECTRUM_SCHEMA
from astroray.data.synthetic._common import (
    _C_KMS,
    _SDSS_DLOGLAM,
    _SDSS_FLUX_UNIT,
    _SDSS_GRID,
    _SDSS_LOGLAM0,
    _check_n,
    _chunked,
    _class_indices,
    _flux_for_mag,
    _ids,
    _loguniform,
    _planck,
    _rng,
    _round,
    _spectrum_table,
)

__all__ = ["SPECTRUM_CLASSES", "spectra"]

SPECTRUM_CLASSES = ("STAR", "GALAXY", "QSO")


# Vacuum rest wavelengths (Angstrom).
_BALMER = (6564.61, 4862.68, 4341.68, 4102.89, 3971.20, 3890.17, 3836.47)
_CA_HK = (3934.78, 3969.59)
_MG_B = (5168.76, 5174.13, 5185.05)
_NA_D = (5891.58, 5897.56)
_CA_TRIPLET = (8500.36, 8544.44, 8664.52)
_G_BAND = 4305.6
_TIO_HEADS = (6159.0, 7055.0, 7591.0, 8434.0)
# Spectral types: (letter, T_hot, T_cool) in Kelvin.
_SPECTRAL_TYPES = (("O", 60000.0, 30000.0), ("B", 30000.0, 10000.0), ("A", 10000.0, 7500.0),
                   ("F", 7500.0, 6000.0), ("G", 6000.0, 5200.0), ("K", 5200.0, 3700.0),
                   ("M", 3700.0, 2400.0))
# Galaxy emission lines: name -> vacuum wavelengths.
_QSO_LINES = (  # (rest wavelength, EW range in A, broad)
    (1215.67, (50.0, 120.0), True), (1240.14, (10.0, 25.0), True),
    (1400.0, (5.0, 12.0), True), (1549.06, (20.0, 50.0), True),
    (1908.73, (15.0, 30.0), True), (2798.75, (20.0, 50.0), True),
    (4341.68, (10.0, 30.0), True), (4862.68, (40.0, 100.0), True),
    (6564.61, (150.0, 350.0), True), (5008.24, (5.0, 40.0), False),
    (3728.48, (1.0, 5.0), False),
)
# SDSS and_mask bits used here.
_FULLREJECT = 1 << 18
_BRIGHTSKY = 1 << 23
_NODATA = 1 << 24


def _spectral_type(teff: np.ndarray) -> list[str]:
    out = []
    for t in teff.tolist():
        for letter, hot, cool in _SPECTRAL_TYPES:
            if cool <= t < hot or (letter == "M" and t < hot):
                digit = int(np.clip(10.0 * (hot - t) / (hot - cool), 0, 9))
                out.append(f"{letter}{digit}")
                break
    return out


_SKY_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _sky_lines() -> tuple[np.ndarray, np.ndarray]:
    """Night-sky emission lines (vacuum A) and strengths: [O I], Na, Hg and the OH forest.

    The OH forest is modelled as bands of lines of rising strength to the red; the line
    positions come from a fixed generator so that every spectrum sees the same sky.
    """
    if 0 not in _SKY_CACHE:
        gen = np.random.default_rng(5577)
        waves = [5578.89, 6302.05, 6365.54, 5891.58, 5897.56, 4359.56, 5462.27]
        power = [120.0, 40.0, 14.0, 10.0, 10.0, 6.0, 4.0]
        for lo, hi, strength, count in ((6830, 6990, 25, 16), (7240, 7410, 35, 18),
                                        (7750, 8010, 45, 22), (8280, 8510, 55, 22),
                                        (8760, 9050, 60, 24), (9300, 9550, 40, 18),
                                        (9700, 10450, 70, 40)):
            waves += gen.uniform(lo, hi, count).tolist()
            power += (strength * gen.uniform(0.2, 1.0, count)).tolist()
        _SKY_CACHE[0] = (np.array(waves), np.array(power))
    return _SKY_CACHE[0]


def _add_lines(target: np.ndarray, loglam0: float, dloglam: float, rest: np.ndarray,
               z: np.ndarray, sigma_kms: np.ndarray, amplitude: np.ndarray) -> None:
    """Add Gaussian lines in place, only within +-5 sigma windows of each line.

    Args:
        target: (n, L) array on a log-lambda grid starting at ``loglam0``.
        loglam0: log10 wavelength of pixel 0.
        dloglam: pixel size in log10 wavelength.
        rest: rest wavelengths, (M,).
        z: redshift per object, (n,).
        sigma_kms: Gaussian width per object, (n,) or (n, M).
        amplitude: peak value per object and line, (n, M) (negative for absorption).
    """
    n, length = target.shape
    sigma_pix = np.broadcast_to(np.asarray(sigma_kms, dtype=np.float64).reshape(n, -1),
                                (n, rest.size)) / _C_KMS / np.log(10.0) / dloglam
    centre = (np.log10(rest[None, :] * (1.0 + z[:, None])) - loglam0) / dloglam  # (n, M)
    half = int(np.ceil(5.0 * sigma_pix.max())) + 1
    offs = np.arange(-half, half + 1)
    rows = np.arange(n)[:, None]
    for m in range(rest.size):
        pix = np.rint(centre[:, m]).astype(np.int64)[:, None] + offs[None, :]  # (n, W)
        inside = (pix >= 0) & (pix < length) & (np.abs(offs)[None, :]
                                                 <= 5.0 * sigma_pix[:, m, None] + 1)
        prof = amplitude[:, m, None] * np.exp(
            -0.5 * ((pix - centre[:, m, None]) / sigma_pix[:, m, None]) ** 2)
        # Windows of one line never repeat a pixel within a row, so a fancy-indexed add is
        # exact (no np.add.at needed).
        pix_c = np.clip(pix, 0, length - 1)
        target[rows, pix_c] += np.where(inside, prof, 0.0)


def _normalise(model: np.ndarray, wave: np.ndarray, lo: float, hi: float,
               target: np.ndarray) -> np.ndarray:
    """Scale each row so its mean over [lo, hi] Angstrom equals ``target``."""
    box = (wave >= lo) & (wave <= hi)
    mean = model[:, box].mean(axis=1)
    return model * (target / np.maximum(mean, 1e-30))[:, None]


def spectra(
    n: int,
    *,
    seed: int = 0,
    classes: Sequence[str] = SPECTRUM_CLASSES,
    class_fractions: Mapping[str, float] | None = None,
    survey: str = "sdss",
    start: int = 0,
) -> pa.Table:
    """SDSS-like optical spectra of stars, galaxies and quasars.

    Pixels lie on the SDSS grid (log10 vacuum Angstrom from 3.5797 in steps of 1e-4); each
    spectrum has 3800-4600 pixels and starts up to 40 pixels to the red. Flux is in
    1e-17 erg/s/cm^2/A for SDSS-like magnitudes.

    * STAR: Planck continuum (T 3000-30000 K; subclass the spectral type, e.g. ``A0``, ``G2``,
      ``M3``), Balmer absorption strongest in A stars, Ca II H&K, G band, Mg b, Na D and Ca
      triplet growing in cool stars, TiO bands in M stars; radial velocities of ~40 km/s.
    * GALAXY (z 0.01-0.6): old and young stellar continua with a 4000 A break and absorption
      lines, emission lines ([O II], H-beta, [O III], H-alpha, [N II], [S II]) with
      star-forming ratios; subclass ``STARFORMING`` or ``PASSIVE``.
    * QSO (z 0.1-4): power-law continuum, broad Ly-alpha, N V, Si IV, C IV, C III], Mg II,
      Balmer lines, narrow [O III] and [O II], Ly-alpha forest and Lyman-limit absorption;
      subclass ``BROADLINE``.

    Noise comes from a per-pixel sigma with read noise, sky (continuum, [O I] 5577/6300, Na,
    Hg and the OH forest in the red) and source photon noise, larger at the blue and red ends;
    ``ivar = 1 / sigma^2``. Some spectra have rejected runs of pixels (``FULLREJECT`` or
    ``NODATA`` bits, ivar 0); bright-sky pixels get the ``BRIGHTSKY`` bit.

    Args:
        n: number of spectra.
        seed: random seed.
        classes: subset of ``STAR``, ``GALAXY``, ``QSO`` to draw from.
        class_fractions: relative class weights (default balanced).
        survey: survey name written into the table.
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical spectrum table with ``z``, ``z_err``, ``label``, ``subclass`` and ``meta``
        (``flux_unit``, the generating parameters, the normalising magnitude).
    """
    _check_n(n, start)
    unknown = [c for c in classes if c not in SPECTRUM_CLASSES]
    if unknown or not classes:
        raise ValueError(f"classes: expected a non-empty subset of {SPECTRUM_CLASSES}, "
                         f"got {tuple(classes)}")
    rng = _rng(seed, start)
    cls_idx = _class_indices(rng, n, tuple(classes), class_fractions)
    ids = _ids(f"syn-{survey.lower()}", start, n)
    tables = [_spectra_chunk(rng, np.array(classes)[cls_idx[a:b]], ids[a:b], survey.lower())
              for a, b in _chunked(n, 256)]
    if not tables:
        return SPECTRUM_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _spectra_chunk(rng: np.random.Generator, labels: np.ndarray, ids: list[str],
                   survey: str) -> pa.Table:
    n = labels.size
    loglam = _SDSS_LOGLAM0 + _SDSS_DLOGLAM * np.arange(_SDSS_GRID)
    wave = 10.0 ** loglam  # (L,)
    model = np.zeros((n, _SDSS_GRID))
    z = np.zeros(n)
    z_err = np.zeros(n)
    subclass: list[str | None] = [None] * n
    metas: list[dict[str, Any]] = [{"flux_unit": _SDSS_FLUX_UNIT} for _ in range(n)]
    for cls in SPECTRUM_CLASSES:
        rows = np.flatnonzero(labels == cls)
        if rows.size == 0:
            continue
        if cls == "STAR":
            part, zz, sub, extra = _star_models(rng, rows.size, wave)
            z_err[rows] = rng.uniform(3e-6, 2e-5, rows.size)
        elif cls == "GALAXY":
            part, zz, sub, extra = _galaxy_models(rng, rows.size, wave)
            z_err[rows] = rng.uniform(8e-6, 4e-5, rows.size) * (1.0 + zz)
        else:
            part, zz, sub, extra = _qso_models(rng, rows.size, wave)
            z_err[rows] = rng.uniform(1e-4, 8e-4, rows.size) * (1.0 + zz)
        model[rows] = part
        z[rows] = zz
        for j, r in enumerate(rows.tolist()):
            subclass[r] = sub[j]
            metas[r].update({k: v[j] for k, v in extra.items()})
    # ---- noise: read noise, sky and source photons; worse at the blue and red ends.
    sky_waves, sky_power = _sky_lines()
    sky = np.zeros((1, _SDSS_GRID))
    _add_lines(sky, _SDSS_LOGLAM0, _SDSS_DLOGLAM, sky_waves, np.zeros(1), np.array([70.0]),
               sky_power[None, :])
    sky = sky[0] + 0.3 + 0.9 * (wave / 9000.0) ** 4
    sky_scale = rng.uniform(0.7, 1.6, n)
    read = rng.uniform(0.15, 0.45, n)
    photon = rng.uniform(0.02, 0.06, n)
    throughput = 1.0 + 1.5 * np.exp(-(wave - 3800.0) / 200.0) + np.exp((wave - 9800.0) / 400.0)
    sky_n = sky[None, :] * sky_scale[:, None]
    sigma = np.sqrt(read[:, None] ** 2 + photon[:, None] * (sky_n + np.clip(model, 0, None)))
    sigma *= throughput[None, :]
    flux = model + sigma * rng.standard_normal(model.shape)
    mask = np.where(sky_n > 5.0 * np.median(sky_n, axis=1, keepdims=True), _BRIGHTSKY, 0)
    ivar = 1.0 / sigma ** 2
    # ---- per-object pixel range, rejected runs and missing blue ends.
    first = rng.integers(0, 41, n)
    npix = rng.integers(3800, 4601, n)
    col = np.arange(_SDSS_GRID)[None, :]
    runs = rng.random((n, 3)) < 0.12  # up to 3 rejected runs per spectrum
    run_start = first[:, None] + rng.integers(0, 3800, (n, 3))
    run_len = rng.integers(1, 31, (n, 3))
    rejected = ((col[:, :, None] >= run_start[:, None, :])
                & (col[:, :, None] < (run_start + run_len)[:, None, :])
                & runs[:, None, :]).any(axis=2)  # (n, L)
    nodata = (rng.random(n) < 0.1)[:, None] & (col < (first + rng.integers(1, 21, n))[:, None])
    mask = mask | np.where(rejected, _FULLREJECT, 0) | np.where(nodata, _NODATA, 0)
    ivar = np.where(rejected | nodata, 0.0, ivar)
    keep = (col >= first[:, None]) & (col < (first + npix)[:, None])  # (n, L), row-major
    wave_flat = np.broadcast_to(wave, (n, _SDSS_GRID))[keep]
    for i in range(n):
        metas[i]["sky_scale"] = _round(sky_scale[i], 3)
    return _spectrum_table(ids, survey, npix, wave_flat, flux[keep], ivar[keep], mask[keep],
                           z=z, z_err=z_err, labels=labels.tolist(), subclasses=subclass,
                           metas=metas)


def _star_models(rng: np.random.Generator, n: int, wave: np.ndarray):
    teff = _loguniform(rng, 3000.0, 30000.0, n)
    z = rng.normal(0.0, 40.0, n) / _C_KMS
    rest = wave[None, :] / (1.0 + z[:, None])  # (n, L)
    cont = _planck(rest, teff[:, None])
    logt = np.log10(teff)
    hot = lambda t0, w: 1.0 / (1.0 + np.exp(-(t0 - teff) / w))  # noqa: E731 - cool-star weight
    a_star = np.exp(-0.5 * ((logt - 3.98) / 0.12) ** 2)
    tau = np.zeros((n, wave.size))
    balmer = np.array(_BALMER)
    depth = (0.6 * a_star + 0.06)[:, None] * np.array([1.0, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5])
    _add_lines(tau, _SDSS_LOGLAM0, _SDSS_DLOGLAM, balmer, z, (250.0 + 700.0 * a_star),
               depth)
    metal = np.concatenate([_CA_HK, [_G_BAND], _MG_B, _NA_D, _CA_TRIPLET])
    w_hk, w_g, w_mg, w_na, w_ca = (0.8 * hot(7000.0, 600.0), 0.35 * hot(6500.0, 500.0),
                                   0.4 * hot(6500.0, 500.0), 0.5 * hot(6000.0, 500.0),
                                   0.4 * hot(7000.0, 800.0))
    metal_depth = np.stack([w_hk, w_hk, w_g, w_mg, w_mg, w_mg, w_na, w_na, w_ca, w_ca, w_ca],
                           axis=1)
    metal_sigma = np.array([300.0, 300.0, 400.0, 120.0, 120.0, 120.0, 100.0, 100.0, 120.0,
                            120.0, 120.0])
    _add_lines(tau, _SDSS_LOGLAM0, _SDSS_DLOGLAM, metal, z,
               np.broadcast_to(metal_sigma, (n, metal.size)), metal_depth)
    # TiO: absorption bands with a sharp blue head, fading to the red, in M stars.
    tio = 0.5 * hot(3900.0, 150.0)
    for head in _TIO_HEADS:
        tau += tio[:, None] * (rest >= head) * np.exp(-(rest - head) / 150.0)
    model = cont * np.exp(-tau)
    mag = rng.uniform(14.5, 19.5, n)
    model = _normalise(model, wave, 5800.0, 6700.0, _flux_for_mag(mag, 6200.0))
    extra = {"teff": [_round(t, 1) for t in teff], "mag_r": [_round(m, 3) for m in mag]}
    return model, z, _spectral_type(teff), extra


def _galaxy_models(rng: np.random.Generator, n: int, wave: np.ndarray):
    z = rng.uniform(0.01, 0.6, n)
    passive = rng.random(n) < 0.4
    rest = wave[None, :] / (1.0 + z[:, None])
    t_old = rng.uniform(4200.0, 5200.0, n)[:, None]
    d4000 = np.where(passive, rng.uniform(0.35, 0.5, n), rng.uniform(0.1, 0.3, n))[:, None]
    old = _planck(rest, t_old) * (1.0 - d4000 / (1.0 + np.exp(-(4000.0 - rest) / 40.0)))
    old /= old.mean(axis=1, keepdims=True)
    young = (rest / 5000.0) ** -1.5
    young /= young.mean(axis=1, keepdims=True)
    y = np.where(passive, rng.uniform(0.0, 0.1, n), rng.uniform(0.3, 0.8, n))[:, None]
    cont = (1.0 - y) * old + y * young
    sigma_v = rng.uniform(80.0, 250.0, n)
    tau = np.zeros((n, wave.size))
    absorb = np.concatenate([_CA_HK, [_G_BAND], _MG_B, _NA_D, _BALMER[:4]])
    old_w = (1.0 - y[:, 0])
    depth = np.stack([0.35 * old_w, 0.35 * old_w, 0.2 * old_w, 0.12 * old_w, 0.12 * old_w,
                      0.12 * old_w, 0.1 * old_w, 0.1 * old_w,
                      0.1 * y[:, 0], 0.12 * y[:, 0], 0.12 * y[:, 0], 0.12 * y[:, 0]], axis=1)
    _add_lines(tau, _SDSS_LOGLAM0, _SDSS_DLOGLAM, absorb, z,
               np.sqrt(sigma_v ** 2 + 300.0 ** 2), depth)
    cont = cont * np.exp(-tau)
    # Emission lines, fluxes relative to H-alpha (EW in the rest frame).
    ew_ha = np.where(passive, rng.uniform(0.0, 1.5, n), _loguniform(rng, 10.0, 120.0, n))
    cont_at = lambda lam: np.array([np.interp(lam, r, c) for r, c in zip(rest, cont,  # noqa: E731
                                                                          strict=True)])
    f_ha = ew_ha * cont_at(6564.61)
    f_hb = f_ha / rng.uniform(2.86, 4.5, n)
    n2 = f_ha * np.where(passive, rng.uniform(0.5, 1.5, n), rng.uniform(0.1, 0.5, n))
    o3 = f_hb * rng.uniform(0.2, 3.0, n)
    o2 = f_hb * rng.uniform(1.0, 3.0, n)
    s2 = f_ha * rng.uniform(0.2, 0.45, n)
    lines = np.array([6564.61, 4862.68, 4341.68, 6585.27, 6549.86, 5008.24, 4960.30, 3727.09,
                      3729.88, 6718.29, 6732.67])
    fluxes = np.stack([f_ha, f_hb, 0.47 * f_hb, n2, n2 / 2.95, o3, o3 / 2.98, 0.42 * o2,
                       0.58 * o2, 0.55 * s2, 0.45 * s2], axis=1)  # (n, M) line fluxes
    width = np.sqrt(rng.uniform(50.0, 150.0, n) ** 2 + 69.0 ** 2)  # + SDSS resolution
    # Peak of a Gaussian of this flux in f_lambda: F / (sqrt(2 pi) sigma_lambda); in the
    # observed frame both EW and sigma_lambda scale with (1 + z), so z cancels.
    peak = fluxes / (np.sqrt(2 * np.pi) * lines[None, :] * width[:, None] / _C_KMS)
    emission = np.zeros_like(cont)
    _add_lines(emission, _SDSS_LOGLAM0, _SDSS_DLOGLAM, lines, z, width, peak)
    model = cont + emission
    mag = rng.uniform(15.0, 19.5, n)
    model = _normalise(model, wave, 5800.0, 6700.0, _flux_for_mag(mag, 6200.0))
    sub = ["PASSIVE" if p else "STARFORMING" for p in passive]
    extra = {"mag_r": [_round(m, 3) for m in mag], "ew_halpha": [_round(e, 2) for e in ew_ha],
             "vdisp": [_round(s, 1) for s in sigma_v]}
    return model, z, sub, extra


def _qso_models(rng: np.random.Generator, n: int, wave: np.ndarray):
    z = 0.1 + 3.9 * rng.beta(2.0, 3.0, n)
    rest = wave[None, :] / (1.0 + z[:, None])
    alpha_nu = rng.uniform(-0.9, -0.2, n)
    cont = (rest / 3000.0) ** (-2.0 - alpha_nu)[:, None]
    lines = np.array([w for w, _, _ in _QSO_LINES])
    ew = np.stack([rng.uniform(*r, n) for _, r, _ in _QSO_LINES], axis=1)
    broad = np.array([b for _, _, b in _QSO_LINES])
    fwhm = rng.uniform(2000.0, 7000.0, n)
    width = np.where(broad[None, :], fwhm[:, None] / 2.355, rng.uniform(150.0, 300.0, n)[:, None])
    cont_line = (lines[None, :] / 3000.0) ** (-2.0 - alpha_nu)[:, None]
    peak = ew * cont_line / (np.sqrt(2 * np.pi) * lines[None, :] * width / _C_KMS)
    emission = np.zeros_like(cont)
    _add_lines(emission, _SDSS_LOGLAM0, _SDSS_DLOGLAM, lines, z, width, peak)
    # [O III] 4960 at a third of 5008.
    _add_lines(emission, _SDSS_LOGLAM0, _SDSS_DLOGLAM, np.array([4960.30]), z, width[:, -2:-1],
               peak[:, -2:-1] / 2.98)
    model = cont + emission
    # Ly-alpha forest: effective optical depth 0.0036 (1 + z_abs)^3.7 with pixel-to-pixel
    # fluctuations, and the Lyman limit below 912 A rest.
    z_abs = wave[None, :] / 1215.67 - 1.0
    forest = rest < 1215.67
    tau = 0.0036 * (1.0 + np.clip(z_abs, 0.0, None)) ** 3.7
    tau = tau * np.exp(0.8 * rng.standard_normal(model.shape) - 0.32)
    model = np.where(forest, model * np.exp(-tau), model)
    model = np.where(rest < 912.0, model * 0.1, model)
    mag = rng.uniform(17.0, 20.5, n)
    model = _normalise(model, wave, 7000.0, 8000.0, _flux_for_mag(mag, 7500.0))
    extra = {"mag_i": [_round(m, 3) for m in mag], "alpha_nu": [_round(a, 3) for a in alpha_nu],
             "fwhm_broad": [_round(f, 1) for f in fwhm]}
    return model, z, ["BROADLINE"] * n, extra
