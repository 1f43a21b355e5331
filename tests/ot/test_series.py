"""Time series from N epochs, uncertainty factor, photometric weighting."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.ot import SyntheticPhotometry, build_time_series, warp_to_photometry

WAVE = np.linspace(3500.0, 10000.0, 1500)


def _series(times: np.ndarray) -> np.ndarray:
    """A line drifting redward on a continuum whose scale changes with time: (E, L)."""
    mu = 5000.0 + 40.0 * times[:, None]
    return (1.0 + 5.0 * np.exp(-0.5 * ((WAVE - mu) / 150.0) ** 2)) * np.exp(-0.02 * times)[
        :, None]


def test_time_series_brackets_targets_and_reports_uncertainty():
    t_obs = np.array([0.0, 10.0, 30.0])
    flux = _series(t_obs)
    targets = np.array([-1.0, 0.0, 5.0, 10.0, 20.0, 30.0, 31.0])
    s = build_time_series(WAVE, t_obs, flux, targets, gap_scale=50.0)
    np.testing.assert_array_equal(s.inside, [False, True, True, True, True, True, False])
    np.testing.assert_array_equal(s.observed, [False, True, False, True, False, True, False])
    np.testing.assert_allclose(s.flux[[1, 3, 5]], flux, rtol=1e-6)
    assert np.all(np.isnan(s.flux[[0, 6]])) and np.all(np.isinf(s.uncertainty[[0, 6]]))
    # Brownian bridge: a (1 - a) dt / gap_scale
    np.testing.assert_allclose(s.uncertainty[[2, 4]], np.sqrt([0.25 * 10 / 50, 0.25 * 20 / 50]))
    np.testing.assert_allclose(s.gap[[2, 4]], [10.0, 20.0])
    with pytest.raises(ValueError, match="at least 2"):
        build_time_series(WAVE, t_obs[:1], flux[:1], targets)


def test_photometric_mismatch_shifts_weight_to_the_trusted_epoch():
    phot = SyntheticPhotometry(WAVE, ("B", "V", "R"))
    t_obs = np.array([0.0, 10.0])
    flux = _series(t_obs)
    truth = phot.band_fluxes(flux)
    miscal = flux.copy()
    miscal[1] *= 1.5  # epoch 1 is 50% off its photometry
    s = build_time_series(WAVE, t_obs, miscal, np.array([5.0]), photometry=truth, phot=phot,
                          mismatch_scale=0.1)
    assert s.alpha[0] < 0.5 and s.uncertainty[0] > 0.25
    plain = build_time_series(WAVE, t_obs, miscal, np.array([5.0]))
    assert plain.alpha[0] == pytest.approx(0.5)


def test_warp_to_photometry_matches_the_observed_bands():
    phot = SyntheticPhotometry(WAVE, ("B", "V", "R", "I"))
    flux = _series(np.array([3.0]))
    target = phot.band_fluxes(flux * (WAVE / 6000.0) ** 0.5)
    warped = warp_to_photometry(phot, flux, target)
    np.testing.assert_allclose(phot.band_fluxes(warped), target, rtol=5e-3)
