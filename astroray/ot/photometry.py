"""Synthetic photometry of spectra through real filter transmission curves, AB and Vega.

The filter curves are the published tables that speclite ships (Bessell 1990 UBVRI as
``bessell-*``, the SDSS 2010 ugriz curves as ``sdss2010-*``), read from the installed package:
nothing is downloaded. Photometry is photon counting: the band flux of a spectrum
``f_lambda`` through a response ``T`` is

    <f_lambda> = int f_lambda T lambda dlambda / int T lambda dlambda,

and its AB magnitude is ``-2.5 log10( int f_lambda T lambda dlambda /
int (c / lambda^2) f_nu,AB T lambda dlambda )`` with ``f_nu,AB = 3631 Jy``. Both integrals use
the same trapezoid weights on the spectrum's own wavelength grid, so that a flat-``f_nu``
spectrum has exactly a constant AB magnitude. The weights of every band form one matrix
``(L, B)``, so that the photometry of ``E`` epochs is one matrix product ``(E, L) @ (L, B)``.

Vega magnitudes: speclite ships no Vega spectrum and nothing is downloaded at run time, so by
default ``m_Vega = m_AB - (m_AB - m_Vega)_band`` with the offsets of Blanton & Roweis (2007,
AJ 133, 734, Table 1), derived for these same Bessell and SDSS curves. A tabulated Vega
spectrum given to :class:`SyntheticPhotometry` replaces the offsets by the exact ratio
``m_Vega = -2.5 log10(<f>_spectrum / <f>_Vega)``.

A band must lie within the spectrum: a band with less than ``min_coverage`` of its response
weight ``int T lambda dlambda`` inside the wavelength range is skipped, with the reason kept
in :attr:`SyntheticPhotometry.skipped`; a band covered at least that much is integrated over
the covered part (the rest of the response is cut, a bias below ``1 - min_coverage``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "AB_MINUS_VEGA",
    "BANDS",
    "SyntheticPhotometry",
    "band_response",
    "pixel_edges",
]

#: Short band names and the speclite curves they stand for.
BANDS: dict[str, str] = {
    "U": "bessell-U", "B": "bessell-B", "V": "bessell-V", "R": "bessell-R", "I": "bessell-I",
    "u": "sdss2010-u", "g": "sdss2010-g", "r": "sdss2010-r", "i": "sdss2010-i",
    "z": "sdss2010-z",
}

#: m_AB - m_Vega per band (Blanton & Roweis 2007, Table 1).
AB_MINUS_VEGA: dict[str, float] = {
    "U": 0.79, "B": -0.09, "V": 0.02, "R": 0.21, "I": 0.45,
    "u": 0.91, "g": -0.08, "r": 0.16, "i": 0.37, "z": 0.54,
}

_C_AA_S = 2.99792458e18  # speed of light, Angstrom / s
_AB_FNU = 3631e-23  # 3631 Jy in erg / s / cm^2 / Hz


def band_response(band: str) -> tuple[np.ndarray, np.ndarray]:
    """The transmission curve of a band, from the tables speclite ships.

    Args:
        band: a short name (a key of :data:`BANDS`) or a speclite name (``bessell-V``).

    Returns:
        ``(wavelength, response)``: Angstrom ``(K,)`` and dimensionless ``(K,)``.
    """
    import speclite.filters  # lazy: speclite

    name = BANDS.get(band, band)
    try:
        curve = speclite.filters.load_filter(name)
    except (ValueError, OSError) as exc:
        raise ValueError(f"unknown band {band!r}: expected one of {sorted(BANDS)} or a "
                         f"speclite filter name ({exc})") from None
    wave = np.asarray(getattr(curve.wavelength, "value", curve.wavelength), dtype=np.float64)
    return wave, np.asarray(curve.response, dtype=np.float64)


def pixel_edges(wavelength: np.ndarray) -> np.ndarray:
    """Edges ``(L + 1,)`` of pixels centred on ``wavelength`` ``(L,)`` (midpoints inside)."""
    w = np.asarray(wavelength, dtype=np.float64)
    if w.ndim != 1 or w.size < 2 or not np.all(np.diff(w) > 0):
        raise ValueError("wavelength must be a strictly increasing 1-D grid of >= 2 points")
    mid = 0.5 * (w[1:] + w[:-1])
    return np.concatenate([[w[0] - (mid[0] - w[0])], mid, [w[-1] + (w[-1] - mid[-1])]])


def _trapezoid_weights(x: np.ndarray) -> np.ndarray:
    """Weights ``(L,)`` with ``sum(w * y) == np.trapezoid(y, x)``."""
    dx = np.diff(x)
    w = np.zeros_like(x)
    w[:-1] += 0.5 * dx
    w[1:] += 0.5 * dx
    return w


class SyntheticPhotometry:
    """Band fluxes and magnitudes of spectra on one wavelength grid, vectorised over epochs.

    Args:
        wavelength: the spectra's grid ``(L,)``, Angstrom (observed frame).
        bands: band names (keys of :data:`BANDS` or speclite names).
        min_coverage: least fraction of a band's response weight inside the grid.
        flux_unit: erg/s/cm^2/A of one flux unit (1e-17 for SDSS-like spectra).
        vega: an optional Vega spectrum ``(wavelength, f_lambda in erg/s/cm^2/A)``; without
            it Vega magnitudes use :data:`AB_MINUS_VEGA`.

    Attributes:
        bands: the bands measured, in order.
        skipped: band -> why it was left out.
    """

    def __init__(self, wavelength: np.ndarray, bands: Sequence[str] = tuple(BANDS), *,
                 min_coverage: float = 0.99, flux_unit: float = 1e-17,
                 vega: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        if not 0.0 < min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
        self.wavelength = np.asarray(wavelength, dtype=np.float64)
        pixel_edges(self.wavelength)  # validates the grid
        lo, hi = self.wavelength[0], self.wavelength[-1]
        self.bands: list[str] = []
        self.skipped: dict[str, str] = {}
        columns = []
        for band in bands:
            bw, br = band_response(band)
            # Coverage on the band's own (finer) table: response weight inside [lo, hi].
            fine = np.linspace(bw[0], bw[-1], 4001)
            weight = np.interp(fine, bw, br) * fine
            inside = float(np.trapezoid(weight * ((fine >= lo) & (fine <= hi)), fine)
                           / np.trapezoid(weight, fine))
            if inside < min_coverage:
                self.skipped[band] = (f"response {bw[0]:.0f}-{bw[-1]:.0f} A, spectra "
                                      f"{lo:.0f}-{hi:.0f} A: {100 * inside:.1f}% of its weight "
                                      f"inside (< {100 * min_coverage:.1f}%)")
                continue
            t = np.interp(self.wavelength, bw, br, left=0.0, right=0.0)
            columns.append(t * self.wavelength * _trapezoid_weights(self.wavelength))
            self.bands.append(band)
        if not self.bands:
            raise ValueError(f"no band covered by the spectra: {self.skipped}")
        self.weights = np.stack(columns, axis=1)  # (L, B): T lambda dlambda
        self._norm = self.weights.sum(axis=0)  # (B,): int T lambda dlambda
        # int (c / lambda^2) f_nu,AB T lambda dlambda, in flux units.
        ab = _C_AA_S * _AB_FNU / self.wavelength ** 2 / flux_unit
        self._ab = ab @ self.weights  # (B,)
        self._flux_unit = flux_unit
        self._vega_mean: np.ndarray | None = None
        if vega is not None:
            vw, vf = (np.asarray(v, dtype=np.float64) for v in vega)
            vf = np.interp(self.wavelength, vw, vf, left=np.nan, right=np.nan) / flux_unit
            self._vega_mean = self.band_fluxes(vf[None, :])[0]
            if not np.all(np.isfinite(self._vega_mean)):
                raise ValueError("the Vega spectrum does not cover every band")

    def band_fluxes(self, flux: np.ndarray) -> np.ndarray:
        """Photon-weighted mean ``f_lambda`` in each band.

        Args:
            flux: spectra ``(E, L)`` (or ``(L,)``) on the grid, in flux units.

        Returns:
            ``(E, B)`` (or ``(B,)``) in the same units.
        """
        return (np.asarray(flux, dtype=np.float64) @ self.weights) / self._norm

    def ab_mags(self, flux: np.ndarray) -> np.ndarray:
        """AB magnitudes ``(E, B)``; NaN where the band flux is not positive."""
        ratio = (np.asarray(flux, dtype=np.float64) @ self.weights) / self._ab
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ratio > 0, -2.5 * np.log10(np.where(ratio > 0, ratio, 1.0)), np.nan)

    def vega_mags(self, flux: np.ndarray) -> np.ndarray:
        """Vega magnitudes ``(E, B)`` (a Vega spectrum if given, else AB minus the offsets)."""
        if self._vega_mean is not None:
            ratio = self.band_fluxes(flux) / self._vega_mean
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(ratio > 0, -2.5 * np.log10(np.where(ratio > 0, ratio, 1.0)),
                                np.nan)
        missing = [b for b in self.bands if b not in AB_MINUS_VEGA]
        if missing:
            raise ValueError(f"no AB-Vega offset for bands {missing}; give a Vega spectrum")
        offsets = np.array([AB_MINUS_VEGA[b] for b in self.bands])
        return self.ab_mags(flux) - offsets

    def pivot_wavelengths(self) -> np.ndarray:
        """Pivot wavelength ``(B,)`` of each band on this grid (Angstrom)."""
        # lambda_p^2 = int T lambda dlambda / int T / lambda dlambda
        inv = (self.weights / self.wavelength[:, None] ** 2).sum(axis=0)
        return np.sqrt(self._norm / inv)

    def describe(self) -> Mapping[str, object]:
        """The bands measured and skipped, for a results file."""
        return {"bands": list(self.bands), "skipped": dict(self.skipped),
                "vega": "spectrum" if self._vega_mean is not None
                else "Blanton & Roweis (2007) AB-Vega offsets"}
