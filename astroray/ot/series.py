"""A high-cadence spectral time series of one supernova from a sparse sequence of spectra.

Each target time between the first and last observed epochs is interpolated from the pair of
observed epochs that brackets it (:func:`astroray.ot.ot.interpolate_spectra`), at
``a = (t - t_i) / (t_{i+1} - t_i)``. Every interpolated epoch carries an uncertainty factor
(a relative flux error) built from the two penalties the method calls for:

- epoch gap: the error of a bridge between two known ends grows with the gap and is largest
  half way, ``sigma_gap^2 = a (1 - a) dt / gap_scale`` (a Brownian bridge with ``gap_scale``
  the number of days over which the relative error would reach one); zero at observed epochs;
- photometric mismatch: when observed photometry is given at the observed epochs, the relative
  RMS difference ``m_i`` between each observed spectrum's synthetic photometry and it
  (spectra are often poorly flux-calibrated). An epoch that disagrees with its photometry is
  trusted less: the barycentric weights ``(1 - a, a)`` become proportional to
  ``((1 - a) rho_i, a rho_{i+1})`` with ``rho = 1 / (1 + (m / mismatch_scale)^2)``, and the
  mismatch ``(1 - a) m_i + a m_{i+1}`` adds in quadrature to the uncertainty.

Optionally (``target_photometry``), photometry observed at the target times corrects each
interpolated spectrum by a smooth multiplicative warp: the ratio of observed to synthetic band
flux, interpolated in log space between the band pivot wavelengths (constant beyond the
outermost bands), applied and re-measured a few times. The mismatch left after the warp adds to
the uncertainty. Targets outside the observed span are not extrapolated (NaN, ``inside``
False).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from astroray.ot.ot import interpolate_spectra
from astroray.ot.photometry import SyntheticPhotometry

__all__ = ["TimeSeries", "build_time_series", "photometric_mismatch", "warp_to_photometry"]


@dataclasses.dataclass
class TimeSeries:
    """An interpolated spectral time series.

    Attributes:
        time: target times ``(T,)``.
        flux: spectra ``(T, L)`` (NaN rows outside the observed span).
        uncertainty: relative flux uncertainty factor ``(T,)`` (0 at observed epochs, inf
            outside the span).
        left: index of the earlier observed epoch of the bracketing pair ``(T,)`` (-1 outside).
        alpha: barycentric weight of the later epoch ``(T,)`` after the mismatch weighting.
        gap: days between the bracketing epochs ``(T,)``.
        observed: whether a target coincides with an observed epoch ``(T,)``.
        inside: whether a target lies within the observed span ``(T,)``.
    """

    time: np.ndarray
    flux: np.ndarray
    uncertainty: np.ndarray
    left: np.ndarray
    alpha: np.ndarray
    gap: np.ndarray
    observed: np.ndarray
    inside: np.ndarray


def photometric_mismatch(phot: SyntheticPhotometry, flux: np.ndarray,
                         observed: np.ndarray) -> np.ndarray:
    """Relative RMS difference ``(E,)`` of spectra's synthetic photometry and observed fluxes.

    Args:
        phot: the synthetic photometry of the spectra's grid.
        flux: spectra ``(E, L)``.
        observed: observed band fluxes ``(E, B)`` in ``phot.bands`` order, in flux units
            (NaN where a band was not observed).

    Returns:
        ``sqrt(mean_b ((synthetic - observed) / observed)^2)`` per epoch; 0 with no band.
    """
    synth = phot.band_fluxes(flux)  # (E, B)
    obs = np.asarray(observed, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (synth - obs) / obs
    ok = np.isfinite(rel)
    n = ok.sum(axis=1)
    return np.sqrt(np.where(ok, rel ** 2, 0.0).sum(axis=1) / np.maximum(n, 1))


def warp_to_photometry(phot: SyntheticPhotometry, flux: np.ndarray, observed: np.ndarray,
                       n_iter: int = 3) -> np.ndarray:
    """Multiply spectra by smooth functions of wavelength so they match observed photometry.

    Args:
        phot: the synthetic photometry of the spectra's grid.
        flux: spectra ``(E, L)``.
        observed: observed band fluxes ``(E, B)`` (NaN where not observed).
        n_iter: warp-and-remeasure rounds (the band flux depends on the warp inside it).

    Returns:
        The warped spectra ``(E, L)``; rows without any observed band are unchanged.
    """
    out = np.array(flux, dtype=np.float64, copy=True)
    obs = np.asarray(observed, dtype=np.float64)
    pivots = phot.pivot_wavelengths()  # (B,)
    order = np.argsort(pivots)
    for _ in range(n_iter):
        synth = phot.band_fluxes(out)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(obs / synth)  # (E, B)
        for e in range(out.shape[0]):  # one smooth warp per epoch, over its observed bands
            ok = np.isfinite(log_ratio[e, order])
            if ok.any():
                out[e] *= np.exp(np.interp(phot.wavelength, pivots[order][ok],
                                           log_ratio[e, order][ok]))
    return out


def build_time_series(
    wavelength: np.ndarray,
    times: np.ndarray,
    flux: np.ndarray,
    targets: np.ndarray,
    method: str = "exact",
    *,
    gap_scale: float = 100.0,
    photometry: np.ndarray | None = None,
    phot: SyntheticPhotometry | None = None,
    mismatch_scale: float = 0.1,
    target_photometry: np.ndarray | None = None,
    reg: float = 1e-3,
    n_bins: int = 128,
) -> TimeSeries:
    """Interpolate a sparse sequence of spectra of one object onto target times.

    Args:
        wavelength: common grid ``(L,)``.
        times: observed epochs ``(N,)`` (days), distinct; N >= 2.
        flux: observed spectra ``(N, L)``.
        targets: times ``(T,)`` to build spectra at.
        method: ``exact``, ``entropic`` or ``linear`` (see :mod:`astroray.ot.ot`).
        gap_scale: days over which the bridge error of a gap reaches a relative error of one.
        photometry: observed band fluxes ``(N, B)`` at the observed epochs (``phot`` bands).
        phot: synthetic photometry of the grid (needed with ``photometry`` or
            ``target_photometry``).
        mismatch_scale: relative photometric mismatch at which an epoch's weight halves.
        target_photometry: observed band fluxes ``(T, B)`` at the targets, to warp the
            interpolated spectra onto (optional correction).
        reg: entropic regularisation (``entropic`` only).
        n_bins: coarse bins (``entropic`` only).

    Returns:
        The :class:`TimeSeries`.
    """
    t = np.asarray(times, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"need at least 2 observed epochs, got {t.size}")
    if f.shape != (t.size, np.asarray(wavelength).size):
        raise ValueError(f"flux must be (N, L) = ({t.size}, {np.asarray(wavelength).size}), "
                         f"got {f.shape}")
    if not np.all(np.isfinite(f)) or not np.all(np.isfinite(t)):
        raise ValueError("observed spectra or times contain NaN/inf")
    order = np.argsort(t)
    t, f = t[order], f[order]
    if np.any(np.diff(t) <= 0):
        raise ValueError("observed epochs must have distinct times")
    if gap_scale <= 0 or mismatch_scale <= 0:
        raise ValueError("gap_scale and mismatch_scale must be positive")
    if (photometry is not None or target_photometry is not None) and phot is None:
        raise ValueError("photometry needs phot, the synthetic photometry of the grid")
    tt = np.asarray(targets, dtype=np.float64)
    inside = (tt >= t[0]) & (tt <= t[-1])
    left = np.clip(np.searchsorted(t, tt, side="right") - 1, 0, t.size - 2)  # (T,)
    dt = t[left + 1] - t[left]
    a = np.clip((tt - t[left]) / dt, 0.0, 1.0)
    mismatch = (photometric_mismatch(phot, f, np.asarray(photometry)[order])
                if photometry is not None else np.zeros(t.size))  # (N,)
    rho = 1.0 / (1.0 + (mismatch / mismatch_scale) ** 2)
    w0, w1 = (1.0 - a) * rho[left], a * rho[left + 1]
    a_eff = w1 / (w0 + w1)
    var = a * (1.0 - a) * dt / gap_scale + ((1.0 - a) * mismatch[left]
                                            + a * mismatch[left + 1]) ** 2
    out = np.full((tt.size, f.shape[1]), np.nan)
    idx = np.flatnonzero(inside)
    if idx.size:
        out[idx] = interpolate_spectra(wavelength, f[left[idx]], f[left[idx] + 1], a_eff[idx],
                                       method, reg=reg, n_bins=n_bins)
        if target_photometry is not None:
            obs_t = np.asarray(target_photometry, dtype=np.float64)[idx]
            out[idx] = warp_to_photometry(phot, out[idx], obs_t)
            var[idx] += photometric_mismatch(phot, out[idx], obs_t) ** 2
    observed = inside & ((a == 0.0) | (a == 1.0))
    unc = np.where(inside, np.sqrt(var), np.inf)
    return TimeSeries(time=tt, flux=out, uncertainty=unc, left=np.where(inside, order[left], -1),
                      alpha=np.where(inside, a_eff, np.nan), gap=np.where(inside, dt, np.nan),
                      observed=observed, inside=inside)
