"""Synthetic galaxies: redshift dims and shrinks them, labels miss features, degraded copies."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.config import ConfigError
from astroray.debias import GalaxyConfig, degrade, galaxy_images, gaussian_blur


@pytest.fixture(scope="module")
def galaxies():
    return galaxy_images(3000, seed=3)


def _moments(images):
    """Flux-weighted half-light-like radius and mean central surface brightness."""
    size = images.shape[-1]
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(xx, yy)
    w = np.clip(images, 0, None)
    radius = (w * r).sum(axis=(1, 2)) / w.sum(axis=(1, 2))
    central = images[:, r < 2].mean(axis=1)
    return radius, central


def test_shapes_types_and_determinism(galaxies):
    g = galaxies
    assert g["images"].shape == (3000, 32, 32) and g["images"].dtype == np.float32
    assert set(np.unique(g["truth"])) == {0, 1} and set(np.unique(g["label"])) <= {0, 1}
    again = galaxy_images(50, seed=3)
    first = galaxy_images(50, seed=3)
    np.testing.assert_array_equal(again["images"], first["images"])


def test_higher_redshift_is_fainter_and_smaller_on_the_images():
    # The same galaxies (same seed, so the same intrinsic draws and shapes) at two redshifts,
    # measured on the noiseless-ish images (a huge flux scale drowns the unit noise).
    cfg = GalaxyConfig(flux_scale=1e6, snr_min=0.0, psf_range=(1.0, 1.0))
    near = galaxy_images(400, cfg.replace(z_range=(0.04, 0.04)), seed=5)
    far = galaxy_images(400, cfg.replace(z_range=(0.12, 0.12)), seed=5)
    r_near, sb_near = _moments(near["images"])
    r_far, sb_far = _moments(far["images"])
    assert np.median(r_far / r_near) < 0.8
    # Surface brightness of the same galaxy drops (Tolman dimming, (1.04/1.12)^4 = 0.74, and
    # more flux falls in the centre of a smaller image, so compare the mean over the galaxy).
    sb_in = near["images"].sum(axis=(1, 2)) / (np.pi * r_near ** 2)
    sb_out = far["images"].sum(axis=(1, 2)) / (np.pi * r_far ** 2)
    ratio = np.median(sb_out / sb_in)
    assert ratio < 1.0
    assert np.median(far["images"].sum(axis=(1, 2)) / near["images"].sum(axis=(1, 2))) == (
        pytest.approx((0.04 * 1.04 / (0.12 * 1.12)) ** 2, rel=0.05))


def test_labels_miss_features_at_high_redshift_and_bad_seeing(galaxies):
    g = galaxies
    feat = g["truth"] == 1
    lo_z, hi_z = g["z"] < np.quantile(g["z"], 0.3), g["z"] > np.quantile(g["z"], 0.7)
    assert g["label"][feat & lo_z].mean() > g["label"][feat & hi_z].mean() + 0.2
    good, bad = g["psf"] < 1.6, g["psf"] > 2.4
    assert g["label"][feat & good].mean() > g["label"][feat & bad].mean() + 0.1
    # Smooth galaxies are rarely called featured, wherever they are.
    assert g["label"][~feat].mean() < 0.06
    # The truth does not depend on the observables at fixed intrinsic properties, and the
    # featured fraction rises with radius (an intrinsic dependence).
    big = g["radius_kpc"] > np.median(g["radius_kpc"])
    assert g["truth"][big].mean() > g["truth"][~big].mean() + 0.1


def test_degrade_matches_the_generator_and_keeps_the_label(galaxies):
    # A galaxy degraded from z=0.04 to z=0.12 looks like the generator's galaxy at z=0.12.
    cfg = GalaxyConfig(flux_scale=1e6, snr_min=0.0, psf_range=(1.0, 1.0))
    near = galaxy_images(200, cfg.replace(z_range=(0.04, 0.04)), seed=6)
    far = galaxy_images(200, cfg.replace(z_range=(0.12, 0.12), psf_range=(2.0, 2.0)), seed=6)
    rng = np.random.default_rng(0)
    ones = np.ones(200)
    copies = degrade(near["images"], 0.04 * ones, ones, 0.12 * ones, 2.0 * ones, cfg, rng)
    flux_ratio = copies.sum(axis=(1, 2)) / far["images"].sum(axis=(1, 2))
    assert np.median(flux_ratio) == pytest.approx(1.0, abs=0.05)
    r_copy, _ = _moments(copies)
    r_far, _ = _moments(far["images"])
    # Discs (n = 1) fit in the near stamp and come out the size the generator gives at z=0.12;
    # the wings of n = 4 ellipticals beyond the near stamp (16 px, ~5 r_e) are lost to the copy
    # (as in any FERENGI-like redshifting of a cutout), so they come out more compact.
    disc = near["truth"] == 1
    assert np.median(r_copy[disc] / r_far[disc]) == pytest.approx(1.0, abs=0.1)
    assert 0.5 < np.median(r_copy[~disc] / r_far[~disc]) < 1.0
    # The noise is topped back up to the sky level: the corners hold about unit noise.
    real = galaxy_images(300, seed=7)
    out = degrade(real["images"], real["z"], real["psf"], np.full(300, 0.15), np.full(300, 3.0),
                  GalaxyConfig(), rng)
    assert out[:, :4, :4].std() == pytest.approx(1.0, abs=0.1)
    # Never sharper than the source: targets better than the originals are clipped.
    same = degrade(near["images"][:5], 0.04 * ones[:5], ones[:5], 0.01 * ones[:5],
                   0.5 * ones[:5], cfg, rng)
    assert np.abs(same - near["images"][:5]).max() < 1e-3 * near["images"][:5].max()


def test_gaussian_blur_conserves_flux_and_width():
    img = np.zeros((1, 33, 33))
    img[0, 16, 16] = 1.0
    out = gaussian_blur(img, np.array([4.0]))
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    yy, xx = np.mgrid[:33, :33] - 16
    var = (out[0] * xx ** 2).sum()
    assert np.sqrt(var) == pytest.approx(4.0 / 2.3548, rel=0.02)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"GalaxyConfig\.z_range"):
        GalaxyConfig(z_range=(0.2, 0.1))
    with pytest.raises(ConfigError, match=r"GalaxyConfig\.p_false"):
        GalaxyConfig(p_false=0.99)
