"""OT interpolation of spectra: end points, displacement, mass, entropic vs exact, baseline."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.ot import (
    entropic_barycenter,
    interpolate_spectra,
    pixel_edges,
    quantile_barycenter,
    to_distribution,
)

WAVE = np.linspace(3500.0, 10000.0, 2000)


def _gauss(mu: float, sigma: float, x: np.ndarray = WAVE) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def test_end_points_return_the_end_spectra():
    f0 = _gauss(5000, 150) * 3.0 + 0.01
    f1 = _gauss(7000, 300) * 5.0 + 0.02
    for method in ("exact", "linear"):
        out = interpolate_spectra(WAVE, np.stack([f0, f0]), np.stack([f1, f1]), [0.0, 1.0],
                                  method)
        np.testing.assert_allclose(out[0], f0, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(out[1], f1, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("a", [0.25, 0.5, 0.8])
def test_exact_interpolation_displaces_a_gaussian(a):
    # Between N(m0, s0) and N(m1, s1) the W2 geodesic is N((1-a) m0 + a m1, (1-a) s0 + a s1):
    # the line moves (displacement), it does not fade out and in (linear interpolation).
    m0, s0, m1, s1 = 5000.0, 100.0, 7000.0, 200.0
    out = interpolate_spectra(WAVE, _gauss(m0, s0), _gauss(m1, s1), a, "exact")[0]
    expected = _gauss((1 - a) * m0 + a * m1, (1 - a) * s0 + a * s1)
    assert np.abs(out - expected).max() < 2e-3 * expected.max()
    linear = interpolate_spectra(WAVE, _gauss(m0, s0), _gauss(m1, s1), a, "linear")[0]
    assert np.abs(linear - expected).max() > 0.3 * expected.max()


def test_mass_is_conserved_and_the_scale_follows_log_flux():
    rng = np.random.default_rng(0)
    f0 = rng.uniform(0.5, 2.0, WAVE.size) * 2.0
    f1 = rng.uniform(0.5, 2.0, WAVE.size) * 8.0
    p0, t0 = to_distribution(WAVE, f0)
    p1, t1 = to_distribution(WAVE, f1)
    alphas = np.linspace(0, 1, 7)
    mass = quantile_barycenter(np.repeat(p0, 7, 0), np.repeat(p1, 7, 0), pixel_edges(WAVE),
                               alphas)
    np.testing.assert_allclose(mass.sum(axis=1), 1.0, atol=1e-12)
    assert mass.min() >= -1e-15
    out = interpolate_spectra(WAVE, np.repeat(f0[None], 7, 0), np.repeat(f1[None], 7, 0),
                              alphas)
    total = (out * np.diff(pixel_edges(WAVE))).sum(axis=1)
    np.testing.assert_allclose(total, np.exp((1 - alphas) * np.log(t0) + alphas * np.log(t1)),
                               rtol=1e-9)


def test_entropic_barycenter_is_close_to_the_exact_one_for_small_reg():
    f0, f1 = _gauss(5000, 150), _gauss(7500, 250)
    p0, _ = to_distribution(WAVE, f0)
    p1, _ = to_distribution(WAVE, f1)
    exact = quantile_barycenter(p0, p1, pixel_edges(WAVE), 0.4)[0]
    cdf_exact = np.cumsum(exact)

    def w1(p):  # 1-D Wasserstein-1 distance to the exact barycenter, in Angstrom
        return np.abs(np.cumsum(p) - cdf_exact).sum() * np.diff(WAVE).mean()

    d_small = w1(entropic_barycenter(p0, p1, WAVE, 0.4, reg=1e-4, n_bins=128)[0])
    d_large = w1(entropic_barycenter(p0, p1, WAVE, 0.4, reg=1e-2, n_bins=128)[0])
    assert d_small < 30.0  # a fraction of the 200-A line width
    assert d_small < d_large
    mean = (WAVE * entropic_barycenter(p0, p1, WAVE, 0.4, reg=1e-4)[0]).sum()
    assert abs(mean - 6000.0) < 15.0  # (1 - a) 5000 + a 7500


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="method"):
        interpolate_spectra(WAVE, _gauss(5000, 100), _gauss(6000, 100), 0.5, "lp")
    with pytest.raises(ValueError, match="alpha"):
        interpolate_spectra(WAVE, _gauss(5000, 100), _gauss(6000, 100), 1.5)
    with pytest.raises(ValueError, match="positive flux"):
        to_distribution(WAVE, -np.ones(WAVE.size))
