"""Real/bogus science, reference and difference cutouts (:func:`stamps`).

The two surveys differ in PSF, pixel scale, stamp size and noise (a domain shift).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.schema import STAMP_SCHEMA
from astroray.data.synthetic._common import (
    _check_n,
    _chunked,
    _class_indices,
    _ids,
    _list,
    _meta_column,
    _rng,
    _round,
    _table,
)

__all__ = ["STAMP_SURVEYS", "stamps"]

_STAMP_SURVEYS: dict[str, dict[str, Any]] = {
    # A deep survey with a wide Moffat PSF, fine pixels and small stamps.
    "A": dict(size=21, psf="moffat", fwhm=(2.2, 2.8), beta=(2.5, 4.0), pixel_scale=0.263,
              sky=(300.0, 900.0), gain=4.0, read_noise=6.0, saturation=35000.0,
              zero_point=30.0, ref_depth=(4.0, 9.0), mag=(20.0, 23.0)),
    # ZTF-like: a sharp Gaussian PSF on 1"-pixels, 63x63 cutouts, data numbers.
    "B": dict(size=63, psf="gaussian", fwhm=(1.2, 1.8), beta=(0.0, 0.0), pixel_scale=1.012,
              sky=(120.0, 350.0), gain=6.2, read_noise=8.0, saturation=50000.0,
              zero_point=26.2, ref_depth=(10.0, 20.0), mag=(17.0, 20.5)),
}
#: Names of the synthetic stamp surveys (the ``survey`` of :func:`stamps`).
STAMP_SURVEYS: tuple[str, ...] = tuple(_STAMP_SURVEYS)
_BOGUS_TYPES = ("cosmic_ray", "hot_pixel", "bad_column", "dipole", "psf_mismatch", "noise")
_BOGUS_WEIGHTS = (0.25, 0.1, 0.1, 0.2, 0.15, 0.2)


def _psf_images(kind: str, xc: np.ndarray, yc: np.ndarray, fwhm: np.ndarray, beta: np.ndarray,
                size: int) -> np.ndarray:
    """Unit-flux PSFs integrated over pixels, (n, size, size)."""
    from scipy.special import erf  # lazy: scipy

    pix = np.arange(size, dtype=np.float64)
    if kind == "gaussian":
        # Separable and exactly pixel-integrated with erf.
        s = (fwhm / 2.3548)[:, None] * np.sqrt(2.0)
        ex = 0.5 * (erf((pix[None, :] + 0.5 - xc[:, None]) / s)
                    - erf((pix[None, :] - 0.5 - xc[:, None]) / s))
        ey = 0.5 * (erf((pix[None, :] + 0.5 - yc[:, None]) / s)
                    - erf((pix[None, :] - 0.5 - yc[:, None]) / s))
        return ey[:, :, None] * ex[:, None, :]
    # Moffat, supersampled 3x3 per pixel.
    sub = (np.arange(3 * size) + 0.5) / 3.0 - 0.5
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    dx = sub[None, None, :] - xc[:, None, None]
    dy = sub[None, :, None] - yc[:, None, None]
    r2 = (dx ** 2 + dy ** 2) / (alpha ** 2)[:, None, None]
    img = ((beta - 1.0) / (np.pi * alpha ** 2))[:, None, None] * (1.0 + r2) ** (-beta[:, None,
                                                                                        None])
    # (n, 3S, 3S) -> (n, S, 3, S, 3) -> mean over the sub-pixels, times the sub-pixel area.
    return img.reshape(-1, size, 3, size, 3).sum(axis=(2, 4)) / 9.0


def _host_images(rng: np.random.Generator, n: int, size: int, pixel_scale: float,
                 xc: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-flux exponential-disc host galaxies near the source, and their scale (px)."""
    r_s = rng.uniform(0.6, 2.5, n) / pixel_scale  # scale length 0.6-2.5"
    sep = rng.uniform(0.0, 1.5, n) * r_s
    ang = rng.uniform(0.0, 2 * np.pi, n)
    q = rng.uniform(0.3, 1.0, n)
    theta = rng.uniform(0.0, np.pi, n)
    gx, gy = xc + sep * np.cos(ang), yc + sep * np.sin(ang)
    pix = np.arange(size, dtype=np.float64)
    dx = pix[None, None, :] - gx[:, None, None]
    dy = pix[None, :, None] - gy[:, None, None]
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = dx * c + dy * s
    v = (-dx * s + dy * c) / q[:, None, None]
    img = np.exp(-np.sqrt(u ** 2 + v ** 2) / r_s[:, None, None])
    # Normalise to the analytic total flux 2 pi q r_s^2 (stamps crop large hosts).
    return img / (2 * np.pi * q * r_s ** 2)[:, None, None], r_s


def stamps(
    n: int,
    *,
    seed: int = 0,
    survey: str = "A",
    real_fraction: float = 0.5,
    start: int = 0,
) -> pa.Table:
    """Real/bogus alert triplets (science, reference, difference) from two surveys.

    Survey ``A``: 21x21 stamps, Moffat PSF of ~2.5 px FWHM, 0.263"/px, deep and high sky.
    Survey ``B`` (ZTF-like): 63x63 stamps, Gaussian PSF of ~1.5 px FWHM, 1.01"/px, in DN.
    The two differ in PSF, pixel scale, size, sky, gain, saturation and depth: a domain shift.

    Real: a point source that brightened (sometimes faded) between the reference and the
    science image, on an optional host galaxy (or a variable star with reference flux); the
    difference shows a PSF-shaped source. Bogus (``meta.bogus_type``): ``cosmic_ray`` (sharp
    one-to-four pixel hits in the science image), ``hot_pixel``, ``bad_column``, ``dipole``
    (a bright static star misaligned between the images), ``psf_mismatch`` (a static star
    subtracted with the wrong PSF width: a ring) and ``noise`` (no source). Science and
    reference saturate at the survey's level; the difference is science minus the
    PSF-matched reference model minus the reference noise.

    Args:
        n: number of triplets.
        seed: random seed.
        survey: ``A`` or ``B``.
        real_fraction: fraction of real triplets (exact count).
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical stamp table (float32 row-major cutouts), ``label`` ``real``/``bogus``,
        ``rb``/``drb`` null, ``meta`` with the survey parameters and the bogus type.
    """
    _check_n(n, start)
    if survey not in _STAMP_SURVEYS:
        raise ValueError(f"survey: expected one of {sorted(_STAMP_SURVEYS)}, got {survey!r}")
    if not 0.0 <= real_fraction <= 1.0:
        raise ValueError(f"real_fraction must be in [0, 1], got {real_fraction}")
    rng = _rng(seed, start)
    is_real = _class_indices(rng, n, ("bogus", "real"),
                             {"bogus": 1.0 - real_fraction, "real": real_fraction}) == 1
    ids = _ids(f"syn-stamp{survey}", start, n)
    tables = [_stamp_chunk(rng, is_real[a:b], ids[a:b], survey) for a, b in _chunked(n, 256)]
    if not tables:
        return STAMP_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _stamp_chunk(rng: np.random.Generator, is_real: np.ndarray, ids: list[str],
                 survey: str) -> pa.Table:
    p = _STAMP_SURVEYS[survey]
    n, size = is_real.size, p["size"]
    centre = (size - 1) / 2.0
    fwhm = rng.uniform(*p["fwhm"], n)
    beta = rng.uniform(*p["beta"], n) if p["psf"] == "moffat" else np.zeros(n)
    fwhm_ref = fwhm * rng.uniform(0.8, 1.0, n)  # the template coadd has better seeing
    sky_s = rng.uniform(*p["sky"], n)
    sky_r = rng.uniform(*p["sky"], n)
    depth = rng.uniform(*p["ref_depth"], n)
    xc = centre + rng.uniform(-0.5, 0.5, n)
    yc = centre + rng.uniform(-0.5, 0.5, n)
    psf_s = _psf_images(p["psf"], xc, yc, fwhm, beta, size)
    psf_r = _psf_images(p["psf"], xc, yc, fwhm_ref, beta, size)
    mag = rng.uniform(*p["mag"], n)
    flux = 10.0 ** (-0.4 * (mag - p["zero_point"]))  # counts (DN) of the source
    bogus_type = np.array([None] * n, dtype=object)
    bogus_type[~is_real] = rng.choice(_BOGUS_TYPES, size=int((~is_real).sum()),
                                      p=_BOGUS_WEIGHTS)
    # ---- static scene (in both images) and the change (science only), noise-free.
    has_host = is_real & (rng.random(n) < 0.6)
    host_img, _ = _host_images(rng, n, size, p["pixel_scale"], xc, yc)
    host_flux = np.where(has_host, flux * 10.0 ** (-0.4 * rng.uniform(-2.0, 1.5, n)), 0.0)
    variable = is_real & ~has_host & (rng.random(n) < 0.3)
    ref_flux = np.where(variable, flux * rng.uniform(0.5, 3.0, n), 0.0)
    change = np.where(is_real, flux, 0.0)
    fading = variable & (rng.random(n) < 0.3)
    change = np.where(fading, -np.minimum(flux, 0.8 * ref_flux), change)
    static_s = host_flux[:, None, None] * host_img + ref_flux[:, None, None] * psf_s
    static_r = host_flux[:, None, None] * host_img + ref_flux[:, None, None] * psf_r
    science = static_s + change[:, None, None] * psf_s
    matched = static_s.copy()  # the reference model PSF-matched to the science image
    star = rng.uniform(5.0, 200.0, n) * flux  # bright static stars of dipoles and rings
    dip = bogus_type == "dipole"
    if dip.any():
        shift = rng.uniform(0.3, 1.2, n)
        ang = rng.uniform(0.0, 2 * np.pi, n)
        moved = _psf_images(p["psf"], xc + shift * np.cos(ang), yc + shift * np.sin(ang),
                            fwhm, beta, size)
        science[dip] += star[dip, None, None] * moved[dip]
        static_r[dip] += star[dip, None, None] * psf_r[dip]
        matched[dip] += star[dip, None, None] * psf_s[dip]
    ring = bogus_type == "psf_mismatch"
    if ring.any():
        wrong = fwhm * np.where(rng.random(n) < 0.5, 1.0, -1.0) * rng.uniform(0.1, 0.3, n)
        mismatched = _psf_images(p["psf"], xc, yc, fwhm + wrong, beta, size)
        science[ring] += star[ring, None, None] * psf_s[ring]
        static_r[ring] += star[ring, None, None] * psf_r[ring]
        matched[ring] += star[ring, None, None] * mismatched[ring]
    # ---- noise in DN: var = signal / gain + (read noise / gain)^2; the coadd is deeper.
    rn2 = (p["read_noise"] / p["gain"]) ** 2
    sig_s = np.sqrt((sky_s[:, None, None] + np.clip(science, 0, None)) / p["gain"] + rn2)
    sig_r = np.sqrt((sky_r[:, None, None] + np.clip(static_r, 0, None)) / p["gain"] + rn2)
    sig_r /= np.sqrt(depth)[:, None, None]
    noise_s = sig_s * rng.standard_normal(sig_s.shape)
    noise_r = sig_r * rng.standard_normal(sig_r.shape)
    sci_img = sky_s[:, None, None] + science + noise_s
    ref_img = sky_r[:, None, None] + static_r + noise_r
    # ---- artefacts that live in the science image only.
    rows = np.arange(n)
    noise_level = np.sqrt(sky_s / p["gain"] + rn2)
    cr = bogus_type == "cosmic_ray"
    if cr.any():
        length = rng.integers(1, 5, n)
        step = rng.integers(-1, 2, (n, 2))
        step[(step == 0).all(axis=1), 0] = 1
        y0 = np.rint(centre + rng.uniform(-2, 2, n)).astype(int)
        x0 = np.rint(centre + rng.uniform(-2, 2, n)).astype(int)
        for j in range(4):
            hit = cr & (j < length)
            ys = np.clip(y0 + j * step[:, 0], 0, size - 1)
            xs = np.clip(x0 + j * step[:, 1], 0, size - 1)
            sci_img[rows[hit], ys[hit], xs[hit]] += (rng.uniform(15.0, 80.0, n)
                                                     * noise_level)[hit]
    hot = bogus_type == "hot_pixel"
    if hot.any():
        ys = np.rint(centre + rng.integers(-1, 2, n)).astype(int)
        xs = np.rint(centre + rng.integers(-1, 2, n)).astype(int)
        sci_img[rows[hot], ys[hot], xs[hot]] += (rng.uniform(30.0, 300.0, n) * noise_level)[hot]
    col = bogus_type == "bad_column"
    if col.any():
        xs = np.rint(centre + rng.integers(-2, 3, n)).astype(int)
        y_lo = rng.integers(0, size // 2, n)
        y_hi = y_lo + rng.integers(size // 3, size + 1, n)
        level = rng.uniform(5.0, 30.0, n) * noise_level
        y = np.arange(size)[None, :]
        column = ((y >= y_lo[:, None]) & (y < y_hi[:, None])) * level[:, None]  # (n, H)
        sci_img[rows[col], :, xs[col]] += column[col]
    extra_noise = np.where(bogus_type == "noise", rng.uniform(1.0, 1.5, n), 1.0)
    sci_img = np.where((extra_noise > 1.0)[:, None, None],
                       sci_img + np.sqrt(extra_noise ** 2 - 1.0)[:, None, None] * noise_s,
                       sci_img)
    sci_img = np.minimum(sci_img, p["saturation"])
    ref_img = np.minimum(ref_img, p["saturation"])
    diff = sci_img - sky_s[:, None, None] - matched - noise_r
    metas = []
    for i in range(n):
        meta = {"survey": survey, "psf": p["psf"], "fwhm": _round(fwhm[i], 3),
                "fwhm_ref": _round(fwhm_ref[i], 3), "pixel_scale": p["pixel_scale"],
                "sky": _round(sky_s[i], 2), "gain": p["gain"], "saturation": p["saturation"],
                "zero_point": p["zero_point"], "bogus_type": bogus_type[i],
                "mag": _round(mag[i], 3) if is_real[i] else None,
                "host": bool(has_host[i]), "variable": bool(variable[i]),
                "x": _round(xc[i], 3), "y": _round(yc[i], 3)}
        if p["psf"] == "moffat":
            meta["beta"] = _round(beta[i], 3)
        metas.append(meta)
    flat = size * size
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * flat, type=pa.int32())

    def images(arr: np.ndarray) -> pa.ListArray:
        # (n, H, W) -> (n * H * W,) row-major per stamp.
        return _list(arr.astype(np.float32).reshape(-1), offsets, pa.float32())

    columns = {
        "object_id": pa.array(ids, type=pa.string()),
        "survey": pa.array([f"synthetic-{survey}"] * n, type=pa.string()),
        "source": pa.nulls(n, type=pa.string()),
        "stamp_id": pa.array(ids, type=pa.string()),
        "height": pa.array(np.full(n, size, dtype=np.int32)),
        "width": pa.array(np.full(n, size, dtype=np.int32)),
        "science": images(sci_img),
        "reference": images(ref_img),
        "difference": images(diff),
        "label": pa.array(np.where(is_real, "real", "bogus").tolist(), type=pa.string()),
        "label_raw": pa.array(np.where(is_real, "real", "bogus").tolist(), type=pa.string()),
        "rb": pa.nulls(n, type=pa.float32()),
        "drb": pa.nulls(n, type=pa.float32()),
        "meta": _meta_column(metas),
    }
    return _table(columns, STAMP_SCHEMA, n)
