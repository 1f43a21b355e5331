"""Synthetic galaxy images with an intrinsic morphology, observing conditions, and human labels.

A galaxy has *intrinsic* properties that do not depend on how it is observed: its morphology
(``smooth``: a Sersic n ~ 4 elliptical; ``featured``: an exponential n ~ 1 disc with a small
bulge, two logarithmic spiral arms and, for some, a bar), its luminosity and its physical
half-light radius. The featured fraction depends on the intrinsic properties (larger and
fainter galaxies are more often discs), as in the real Universe. It is *observed* at a redshift
``z`` and through a Gaussian PSF of FWHM ``psf`` (arcsec; the seeing, i.e. the resolution):

* angular size ``theta = r / D_A(z)`` with the low-redshift distances ``D_A = (c/H0) z/(1+z)``,
  ``D_L = (c/H0) z (1+z)`` (so that ``D_L = D_A (1+z)^2`` exactly);
* total flux ``F = L / D_L^2``, hence surface brightness ``F / theta^2`` falling as
  ``(1+z)^-4`` (Tolman dimming) at fixed size;
* convolution with the PSF, then Gaussian sky noise of unit standard deviation (images are in
  units of the sky noise).

A flux limit (total S/N above ``snr_min``) selects the catalogue, so the intrinsic population
changes with redshift (only luminous galaxies are seen far away): at fixed intrinsic properties
the true featured fraction does not depend on the observables, but without intrinsic binning
it does. This is why the bias metric bins by intrinsic properties first.

*Human labels* are biased the way Galaxy Zoo votes are (features are missed when unresolved or
faint): a featured galaxy is labelled featured with probability
``p_max * sigmoid((ln V - ln V50) / width)``, where ``V`` is the *feature visibility*, the S/N
of the non-axisymmetric component (arms and bar) in the degraded image: the root of the sum of
squares, over pixels, of that component after PSF convolution, in units of the sky noise
(a matched-filter S/N). Unresolved arms are averaged away by the PSF and faint ones sink into
the noise, so ``V`` falls with both redshift and seeing. A smooth galaxy is labelled featured
with the small probability ``p_false`` whatever its observables.

:func:`degrade` makes an artificially redshifted copy of an observed image (in the spirit of
FERENGI, Barden et al. 2008): it shrinks the image to the angular size at a higher redshift,
blurs it to a worse PSF, dims it by ``((1+z0)/(1+z1))^4`` and adds sky noise back; it uses only
the image and its observables, never the galaxy's parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from astroray.config import Config, check

__all__ = ["CLASSES", "GalaxyConfig", "angular_scale", "degrade", "galaxy_images",
           "gaussian_blur", "label_probability"]

#: Class names in label order.
CLASSES = ("smooth", "featured")

_C_OVER_H0_MPC = 299792.458 / 70.0  # Hubble distance (Mpc), H0 = 70 km/s/Mpc
_ARCSEC_PER_RAD = 206264.806
_FWHM_TO_SIGMA = 1.0 / 2.3548200450309493


@dataclasses.dataclass
class GalaxyConfig(Config):
    """The synthetic galaxy survey: image format, intrinsic and observed distributions, labels.

    Attributes:
        size: image side (pixels).
        pixel_scale: arcsec per pixel.
        z_range: redshift range; drawn uniform in z.
        psf_range: PSF FWHM range (arcsec); drawn uniform.
        radius_range: physical half-light radius range (kpc); drawn log-uniform.
        log_lum_range: log10 luminosity range (arbitrary units); drawn uniform.
        flux_scale: total flux (in sky-noise units summed over pixels) of a galaxy of log
            luminosity 0 at ``z_ref``.
        z_ref: reference redshift of ``flux_scale``.
        snr_min: flux limit: a galaxy enters the catalogue when its total S/N
            ``F / (sqrt(pi) * 2 * max(theta_e, psf sigma))`` exceeds this (an aperture of a few
            pixels); draws are repeated until ``n`` galaxies pass.
        featured_base: featured fraction of a galaxy at the middle of both intrinsic ranges.
        featured_size_slope: change of the featured log-odds per unit of normalised log radius
            (larger galaxies are more often discs).
        featured_lum_slope: change of the featured log-odds per unit of normalised log
            luminosity (negative: luminous galaxies are more often ellipticals).
        bar_fraction: fraction of featured galaxies with a bar.
        arm_amplitude: range of the relative amplitude of the spiral arms.
        v50: feature visibility at which a featured galaxy is labelled featured half as often
            as a well-resolved one.
        v_width: width of the visibility response in ln V.
        p_max: probability that a clearly visible featured galaxy is labelled featured.
        p_false: probability that a smooth galaxy is labelled featured.
    """

    size: int = 32
    pixel_scale: float = 1.0
    z_range: tuple[float, float] = (0.03, 0.15)
    psf_range: tuple[float, float] = (1.0, 3.0)
    radius_range: tuple[float, float] = (2.0, 6.0)
    log_lum_range: tuple[float, float] = (0.0, 1.0)
    flux_scale: float = 6000.0
    z_ref: float = 0.03
    snr_min: float = 20.0
    featured_base: float = 0.5
    featured_size_slope: float = 1.5
    featured_lum_slope: float = -1.0
    bar_fraction: float = 0.4
    arm_amplitude: tuple[float, float] = (0.5, 0.9)
    v50: float = 25.0
    v_width: float = 0.5
    p_max: float = 0.95
    p_false: float = 0.03

    def __post_init__(self) -> None:
        check(isinstance(self.size, int) and not isinstance(self.size, bool) and self.size >= 8,
              self, "size", self.size, "an integer >= 8")
        for name in ("z_range", "psf_range", "radius_range", "log_lum_range", "arm_amplitude"):
            value = getattr(self, name)
            ok = (isinstance(value, list | tuple) and len(value) == 2
                  and all(isinstance(v, int | float) for v in value) and value[0] <= value[1])
            check(ok, self, name, value, "two numbers (low, high) with low <= high")
            setattr(self, name, (float(value[0]), float(value[1])))
        check(self.z_range[0] > 0, self, "z_range", self.z_range, "positive redshifts")
        check(self.psf_range[0] > 0, self, "psf_range", self.psf_range, "positive FWHMs")
        check(self.radius_range[0] > 0, self, "radius_range", self.radius_range,
              "positive radii")
        for name in ("pixel_scale", "flux_scale", "z_ref", "v50", "v_width"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
                  self, name, value, "a positive number")
        check(isinstance(self.snr_min, int | float) and self.snr_min >= 0, self, "snr_min",
              self.snr_min, "a non-negative number")
        for name in ("featured_base", "bar_fraction", "p_max", "p_false"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and 0.0 <= value <= 1.0, self, name, value,
                  "a number in [0, 1]")
        check(0.0 < self.featured_base < 1.0, self, "featured_base", self.featured_base,
              "a number in (0, 1)")
        check(self.p_false < self.p_max, self, "p_false", self.p_false,
              f"below p_max = {self.p_max}")
        check(self.arm_amplitude[1] < 1.0, self, "arm_amplitude", self.arm_amplitude,
              "amplitudes below 1 (a non-negative disc)")


def angular_scale(z: np.ndarray | float) -> np.ndarray:
    """Arcsec per kpc at redshift ``z`` (low-redshift ``D_A = (c/H0) z / (1+z)``)."""
    z = np.asarray(z, dtype=np.float64)
    d_a_kpc = _C_OVER_H0_MPC * 1e3 * z / (1.0 + z)
    return _ARCSEC_PER_RAD / d_a_kpc


def _luminosity_distance(z: np.ndarray | float) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return _C_OVER_H0_MPC * z * (1.0 + z)


def _sersic_b(n: np.ndarray) -> np.ndarray:
    # Ciotti & Bertin (1999) asymptotic expansion, accurate to <1e-3 for n > 0.5.
    return 2.0 * n - 1.0 / 3.0 + 0.009876 / n


def gaussian_blur(images: np.ndarray, fwhm_pix: np.ndarray) -> np.ndarray:
    """Convolve each image (n, S, S) with a unit Gaussian of its FWHM (pixels), by FFT.

    Images sit in the middle of a zero frame twice their size, so that flux does not wrap
    around the edges; a FWHM of 0 leaves the image unchanged. The transfer function of the
    Gaussian is analytic, ``exp(-2 pi^2 sigma^2 k^2)``; torch's FFT is several times faster
    than numpy's here, so the work runs in torch (float32: 1e-7 of the peak is ample).
    """
    import torch  # lazy: torch

    n, h, w = images.shape
    sigma = np.broadcast_to(np.asarray(fwhm_pix, np.float64) * _FWHM_TO_SIGMA, (n,))
    sigma = torch.from_numpy(sigma.astype(np.float32))
    padded = torch.zeros((n, 2 * h, 2 * w), dtype=torch.float32)
    top, left = h // 2, w // 2
    padded[:, top:top + h, left:left + w] = torch.from_numpy(np.asarray(images, np.float32))
    ky = torch.fft.fftfreq(2 * h, dtype=torch.float32)[:, None]
    kx = torch.fft.rfftfreq(2 * w, dtype=torch.float32)[None, :]
    k2 = ky ** 2 + kx ** 2  # (2H, W+1), cycles per pixel squared
    transfer = torch.exp(-2.0 * np.pi ** 2 * sigma[:, None, None] ** 2 * k2[None])
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * transfer, s=(2 * h, 2 * w))
    return out[:, top:top + h, left:left + w].numpy().astype(np.float64)


def _components(rng: np.random.Generator, featured: np.ndarray, r_e: np.ndarray,
                size: int, amp_range: tuple[float, float],
                bar_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-flux noiseless galaxies (n, S, S) and their non-axisymmetric parts (n, S, S).

    ``r_e`` is the half-light radius in pixels. The feature part (arms + bar) is what a
    labeller must see to call a galaxy featured; it is zero for smooth galaxies.
    """
    n = featured.size
    pix = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    xc = rng.uniform(-0.5, 0.5, n)
    yc = rng.uniform(-0.5, 0.5, n)
    q = np.where(featured, rng.uniform(0.5, 1.0, n), rng.uniform(0.6, 1.0, n))
    pa = rng.uniform(0.0, np.pi, n)
    dx = pix[None, None, :] - xc[:, None, None]  # (n, 1, S)
    dy = pix[None, :, None] - yc[:, None, None]  # (n, S, 1)
    c, s = np.cos(pa)[:, None, None], np.sin(pa)[:, None, None]
    u = dx * c + dy * s  # (n, S, S) along the major axis
    v = (-dx * s + dy * c) / q[:, None, None]
    # The cusp of an n = 4 profile is not resolved by pixel centres: floor the radius.
    radius = np.maximum(np.sqrt(u ** 2 + v ** 2), 0.3)
    phi = np.arctan2(v, u)

    def sersic(n_idx: np.ndarray, re: np.ndarray) -> np.ndarray:
        b = _sersic_b(n_idx)[:, None, None]
        img = np.exp(-b * ((radius / re[:, None, None]) ** (1.0 / n_idx[:, None, None]) - 1))
        return img / img.sum(axis=(1, 2), keepdims=True)

    smooth_img = sersic(rng.uniform(3.5, 4.5, n), r_e)
    disc = sersic(rng.uniform(0.8, 1.2, n), r_e)
    bulge = sersic(np.full(n, 2.5), 0.25 * r_e)
    b_t = rng.uniform(0.05, 0.3, n)[:, None, None]
    # Two logarithmic spiral arms: the disc modulated by 1 + A cos(2 (phi - ln(r/r_e)/tan p)).
    pitch = np.deg2rad(rng.uniform(12.0, 28.0, n))[:, None, None]
    amp = rng.uniform(*amp_range, n)[:, None, None]
    phase = rng.uniform(0.0, 2 * np.pi, n)[:, None, None]
    arms = disc * amp * np.cos(2.0 * (phi - np.log(radius / r_e[:, None, None]) / np.tan(pitch))
                               + phase)
    # A bar: an elongated Gaussian along its own position angle, length ~ r_e.
    has_bar = rng.random(n) < bar_fraction
    bpa = rng.uniform(0.0, np.pi, n)[:, None, None]
    bu = dx * np.cos(bpa) + dy * np.sin(bpa)
    bv = -dx * np.sin(bpa) + dy * np.cos(bpa)
    bl = (0.8 * r_e)[:, None, None]
    bar = np.exp(-0.5 * ((bu / bl) ** 2 + (bv / (0.2 * bl + 0.3)) ** 2))
    bar = bar / bar.sum(axis=(1, 2), keepdims=True) * (0.15 * has_bar)[:, None, None]
    features = (1.0 - b_t) * arms + bar
    featured_img = (1.0 - b_t) * disc + b_t * bulge + features
    featured_img = featured_img / featured_img.sum(axis=(1, 2), keepdims=True)
    sel = featured[:, None, None]
    return (np.where(sel, featured_img, smooth_img),
            np.where(sel, features, 0.0))


def label_probability(visibility: np.ndarray, featured: np.ndarray,
                      config: GalaxyConfig) -> np.ndarray:
    """Probability that a human labels each galaxy featured.

    ``p_max * sigmoid((ln V - ln v50) / v_width)`` for featured galaxies of feature visibility
    ``V``, ``p_false`` for smooth ones.
    """
    logv = np.log(np.maximum(visibility, 1e-6))
    seen = config.p_max / (1.0 + np.exp(-(logv - np.log(config.v50)) / config.v_width))
    return np.where(featured, seen, config.p_false)


def _draw(rng: np.random.Generator, n: int, config: GalaxyConfig) -> dict[str, np.ndarray]:
    """Intrinsic properties and observables of ``n`` galaxies (before selection)."""
    lo, hi = np.log(config.radius_range[0]), np.log(config.radius_range[1])
    log_r = rng.uniform(lo, hi, n)
    log_lum = rng.uniform(*config.log_lum_range, n)
    r_norm = (log_r - (lo + hi) / 2) / max((hi - lo) / 2, 1e-9)  # in [-1, 1]
    l_lo, l_hi = config.log_lum_range
    l_norm = (log_lum - (l_lo + l_hi) / 2) / max((l_hi - l_lo) / 2, 1e-9)
    base = np.log(config.featured_base / (1.0 - config.featured_base))
    logit = base + config.featured_size_slope * r_norm + config.featured_lum_slope * l_norm
    featured = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    return {"featured": featured, "radius_kpc": np.exp(log_r), "log_lum": log_lum,
            "z": rng.uniform(*config.z_range, n), "psf": rng.uniform(*config.psf_range, n)}


def _total_flux(log_lum: np.ndarray, z: np.ndarray, config: GalaxyConfig) -> np.ndarray:
    ratio = _luminosity_distance(config.z_ref) / _luminosity_distance(z)
    return config.flux_scale * 10.0 ** log_lum * ratio ** 2


def galaxy_images(n: int, config: GalaxyConfig | None = None, *,
                  seed: int = 0) -> dict[str, Any]:
    """Draw ``n`` flux-limited galaxies, their observed images and their human labels.

    Args:
        n: number of galaxies (after the flux limit).
        config: the survey; the default :class:`GalaxyConfig` when None.
        seed: random seed; the same seed gives the same galaxies.

    Returns:
        A dict of numpy arrays, one row per galaxy: ``images`` (n, S, S) float32 in sky-noise
        units; ``truth`` (n,) int (0 smooth, 1 featured); ``label`` (n,) int, the biased human
        label; ``label_prob`` (n,), its probability of being featured; ``visibility`` (n,),
        the feature S/N; intrinsic ``radius_kpc``, ``log_lum``; observables ``z``, ``psf``
        (FWHM, arcsec); and ``radius_pix`` (n,), the half-light radius on the image.
    """
    config = config or GalaxyConfig()
    rng = np.random.default_rng(seed)
    kept: dict[str, list[np.ndarray]] = {}
    total = 0
    while total < n:
        batch = _draw(rng, max(2 * (n - total), 64), config)
        r_pix = batch["radius_kpc"] * angular_scale(batch["z"]) / config.pixel_scale
        flux = _total_flux(batch["log_lum"], batch["z"], config)
        aperture = np.maximum(r_pix, batch["psf"] / config.pixel_scale * _FWHM_TO_SIGMA)
        snr = flux / (2.0 * np.sqrt(np.pi) * aperture)
        keep = snr >= config.snr_min
        for key, value in batch.items():
            kept.setdefault(key, []).append(value[keep])
        total += int(keep.sum())
    cat = {k: np.concatenate(v)[:n] for k, v in kept.items()}
    r_pix = cat["radius_kpc"] * angular_scale(cat["z"]) / config.pixel_scale
    flux = _total_flux(cat["log_lum"], cat["z"], config)
    model, features = _components(rng, cat["featured"], r_pix, config.size,
                                  config.arm_amplitude, config.bar_fraction)
    psf_pix = cat["psf"] / config.pixel_scale
    # Convolve galaxy and feature part together: (2n, S, S) in one FFT.
    both = gaussian_blur(np.concatenate([model, features]), np.concatenate([psf_pix, psf_pix]))
    observed, feat_obs = both[:n] * flux[:, None, None], both[n:] * flux[:, None, None]
    images = observed + rng.normal(0.0, 1.0, observed.shape)
    visibility = np.sqrt((feat_obs ** 2).sum(axis=(1, 2)))
    prob = label_probability(visibility, cat["featured"], config)
    label = (rng.random(n) < prob).astype(np.int64)
    return {"images": images.astype(np.float32), "truth": cat["featured"].astype(np.int64),
            "label": label, "label_prob": prob, "visibility": visibility,
            "radius_kpc": cat["radius_kpc"], "log_lum": cat["log_lum"], "z": cat["z"],
            "psf": cat["psf"], "radius_pix": r_pix}


def degrade(images: np.ndarray, z0: np.ndarray, psf0: np.ndarray, z1: np.ndarray,
            psf1: np.ndarray, config: GalaxyConfig, rng: np.random.Generator) -> np.ndarray:
    """Artificially redshift observed images from (z0, psf0) to worse observables (z1, psf1).

    The image shrinks by ``s = theta(z1) / theta(z0) <= 1`` about its centre, is blurred by the
    Gaussian that takes the (shrunk) PSF ``s * psf0`` to ``psf1``, is dimmed by the Tolman
    factor ``((1+z0)/(1+z1))^4`` per pixel, and gets sky noise back: what is left of the original
    noise is measured by passing a unit-noise field through the same transform, and fresh noise
    tops it up to unit variance, pixel by pixel (outside the shrunk frame only fresh noise; the
    small correlation of the remainder is kept). Observables better than the originals are
    clipped to them (a copy is never sharper than its source).

    Args:
        images: observed images (n, S, S) in sky-noise units.
        z0: their redshifts (n,).
        psf0: their PSF FWHMs (arcsec), (n,).
        z1: the target redshifts (n,).
        psf1: the target PSF FWHMs (arcsec), (n,).
        config: the survey (pixel scale).
        rng: random generator of the added noise.

    Returns:
        The degraded images (n, S, S), float32.
    """
    import torch  # lazy: torch
    import torch.nn.functional as F  # lazy: torch

    z0, psf0 = np.asarray(z0, np.float64), np.asarray(psf0, np.float64)
    z1 = np.maximum(np.asarray(z1, np.float64), z0)
    scale = angular_scale(z1) / angular_scale(z0)  # (n,) <= 1: the image shrinks
    psf1 = np.maximum(np.asarray(psf1, np.float64), psf0 * scale)
    # Extra blur, expressed in the original pixels (it also anti-aliases the shrinking).
    extra = np.sqrt(np.maximum(psf1 ** 2 - (psf0 * scale) ** 2, 0.0)) / scale
    n, size, _ = np.shape(images)
    # A unit-noise field and an all-ones frame go through the same transform, to learn how
    # much of the original sky noise is left (and where: outside the shrunk frame, none).
    probe = np.concatenate([np.asarray(images, np.float64), rng.normal(0.0, 1.0, (n, size, size)),
                            np.ones((n, size, size))])
    blurred = gaussian_blur(probe, np.tile(extra / config.pixel_scale, 3))
    # Output pixel x samples the input at centre + (x - centre) / s: an affine grid of zoom 1/s.
    theta = np.zeros((3 * n, 2, 3), dtype=np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = np.tile(1.0 / scale, 3)
    grid = F.affine_grid(torch.from_numpy(theta), [3 * n, 1, size, size], align_corners=False)
    shrunk = F.grid_sample(torch.from_numpy(blurred.astype(np.float32))[:, None], grid,
                           mode="bilinear", padding_mode="zeros",
                           align_corners=False)[:, 0].numpy()
    image, noise, frame = shrunk[:n], shrunk[n:2 * n], shrunk[2 * n:]
    inside = frame > 0.999
    left = np.sqrt((noise ** 2 * inside).sum(axis=(1, 2)) / np.maximum(inside.sum(axis=(1, 2)),
                                                                     1))  # (n,)
    dim = ((1.0 + z0) / (1.0 + z1)) ** 4
    out = image * dim[:, None, None]
    residual = (dim * left)[:, None, None] * np.clip(frame, 0.0, 1.0)  # (n, S, S)
    top_up = np.sqrt(np.maximum(1.0 - residual ** 2, 0.0))
    out = out + rng.normal(0.0, 1.0, out.shape) * top_up
    return out.astype(np.float32)
