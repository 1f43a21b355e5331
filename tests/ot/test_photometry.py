"""Synthetic photometry against independent integrations of the AB definition."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.ot import AB_MINUS_VEGA, SyntheticPhotometry, band_response

C = 2.99792458e18  # Angstrom / s
WAVE = np.geomspace(3500.0, 10000.0, 3000)


def test_flat_fnu_spectrum_has_a_constant_ab_magnitude():
    m = 18.3
    fnu = 3631e-23 * 10 ** (-0.4 * m)
    flux = np.stack([C * fnu / WAVE ** 2 / 1e-17, 2 * C * fnu / WAVE ** 2 / 1e-17])  # (2, L)
    phot = SyntheticPhotometry(WAVE, ("B", "V", "R", "I", "g", "r", "i"))
    mags = phot.ab_mags(flux)
    assert mags.shape == (2, 7)
    np.testing.assert_allclose(mags[0], m, atol=1e-9)
    np.testing.assert_allclose(mags[1], m - 2.5 * np.log10(2), atol=1e-9)
    np.testing.assert_allclose(phot.vega_mags(flux)[0],
                               m - np.array([AB_MINUS_VEGA[b] for b in phot.bands]))


def test_band_flux_matches_an_independent_trapezoid_integration():
    rng = np.random.default_rng(1)
    flux = (1.0 + rng.uniform(0, 1, (3, 1)) * np.sin(WAVE / 300.0)[None]) * (WAVE / 5000) ** -2
    phot = SyntheticPhotometry(WAVE, ("V", "r"))
    got_mean, got_ab = phot.band_fluxes(flux), phot.ab_mags(flux)
    for j, band in enumerate(("V", "r")):
        bw, br = band_response(band)
        x = np.linspace(bw[0], bw[-1], 20001)  # a fine grid of its own
        t = np.interp(x, bw, br)
        for e in range(3):
            f = np.interp(x, WAVE, flux[e])
            num = np.trapezoid(f * t * x, x)
            mean = num / np.trapezoid(t * x, x)
            ab = -2.5 * np.log10(num / np.trapezoid(C * 3631e-23 / x ** 2 / 1e-17 * t * x, x))
            assert got_mean[e, j] == pytest.approx(mean, rel=2e-4)
            assert got_ab[e, j] == pytest.approx(ab, abs=2e-4)


def test_speclite_agrees_on_ab_magnitudes():
    import astropy.units as u
    import speclite.filters

    flux = (WAVE / 5000.0) ** -1.5
    phot = SyntheticPhotometry(WAVE, ("g", "V"))
    ref = speclite.filters.load_filters("sdss2010-g", "bessell-V").get_ab_magnitudes(
        flux * 1e-17 * u.erg / u.s / u.cm ** 2 / u.Angstrom, WAVE * u.Angstrom)
    np.testing.assert_allclose(phot.ab_mags(flux), [ref["sdss2010-g"][0], ref["bessell-V"][0]],
                               atol=2e-3)


def test_bands_outside_the_spectrum_are_skipped_with_a_reason():
    phot = SyntheticPhotometry(WAVE, ("U", "B", "z"))
    assert phot.bands == ["B"]
    assert set(phot.skipped) == {"U", "z"} and "weight inside" in phot.skipped["U"]
    with pytest.raises(ValueError, match="no band"):
        SyntheticPhotometry(WAVE[:100], ("I",))


def test_a_vega_spectrum_gives_zero_vega_magnitudes():
    vega = (WAVE, 3e-9 * (WAVE / 5500.0) ** -4)  # any spectrum serves as its own zero point
    phot = SyntheticPhotometry(WAVE, ("B", "V"), vega=vega)
    np.testing.assert_allclose(phot.vega_mags(vega[1][None] / 1e-17), 0.0, atol=1e-12)
