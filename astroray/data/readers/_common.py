"""Cleaning shared by the readers: dropping bad points, sorting, units, ids."""

from __future__ import annotations

import io
import re
import warnings
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits

from astroray.data.schema import MASK_NONFINITE

#: JD - MJD.
JD_OFFSET = 2400000.5
#: AB magnitude of 1 nJy (31.4, from astropy's AB definition): m = 31.4 - 2.5 log10(f / nJy).
NJY_ZEROPOINT = float((1 * u.nJy).to(u.ABmag).value)
#: ZTF filter ids as used in alert packets and broker tables.
ZTF_FID_BANDS = {1: "g", 2: "r", 3: "i"}
#: Spellings of the ZTF bands seen in public ZTF products (BTS uses "R" for ZTF r).
ZTF_BAND_ALIASES = {"G": "g", "R": "r", "I": "i", "zg": "g", "zr": "r", "zi": "i",
                    "ztfg": "g", "ztfr": "r", "ztfi": "i", "ZTF_g": "g", "ZTF_r": "r",
                    "ZTF_i": "i", "1": "g", "2": "r", "3": "i"}
ZTF_ID = re.compile(r"^ZTF\d{2}[a-z]{7}$")

# Survey "no data" sentinels, one rule for every light-curve reader (the survey's own
# documented flags come on top: MACHO's error <= 0, ATLAS's fit codes).
#: A magnitude this far from zero is a fill value (99, 99.99, 99.999, -99, -99.9): no
#: astronomical magnitude comes near it.
MAG_SENTINEL = 90.0
#: A magnitude error at or above this is a fill value (OGLE and MACHO 9.999, ALeRCE 100,
#: Stripe 82 99.999); a point known to 10 mag carries no information either.
MAG_ERR_SENTINEL = 9.9
#: Exact fill values of flux columns (SNANA, IDL and survey table conventions).
FLUX_FILLS = (-999.0, -9999.0, -99999.0)
#: A flux or flux error this large is a fill value (FITS / IDL 1e30 and float32-max fills).
FLUX_HUGE = 1e30


def sentinel_points(value: np.ndarray, err: np.ndarray, *, is_flux: bool) -> np.ndarray:
    """Points that carry a survey's "no data" fill value instead of a measurement.

    Magnitudes: ``|mag| >= 90`` or ``err >= 9.9``. Fluxes: the value or the error is exactly
    -999, -9999 or -99999, or ``>= 1e30`` in size. NaN is not flagged here (dropped as
    non-finite anyway); negative errors are dropped by :func:`clean_light_curve`. An error of
    exactly 0 is kept: catalogues that round errors to 0.001 write 0.000 for bright stars.

    Args:
        value: magnitudes or fluxes, (N,), in the file's own units.
        err: their uncertainties, (N,).
        is_flux: whether ``value`` holds fluxes.

    Returns:
        (N,) bool, True where a point is a sentinel.
    """
    value = np.asarray(value, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if is_flux:
            return (np.isin(value, FLUX_FILLS) | np.isin(err, FLUX_FILLS)
                    | (np.abs(value) >= FLUX_HUGE) | (np.abs(err) >= FLUX_HUGE))
        return (np.abs(value) >= MAG_SENTINEL) | (err >= MAG_ERR_SENTINEL)


def clean_light_curve(
    time: np.ndarray,
    value: np.ndarray,
    err: np.ndarray,
    band: np.ndarray,
    *,
    invalid: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """Drop non-finite or flagged points and sort by time.

    Args:
        time: MJD, (N,).
        value: magnitudes or fluxes, (N,).
        err: uncertainties, (N,).
        band: band names, (N,).
        invalid: extra points to drop (survey sentinels), (N,) bool.

    Returns:
        (columns, n_dropped): ``time`` (float64), ``value`` (float32), ``err`` (float32),
        ``band`` (str) arrays of the kept points in time order, and how many were dropped.
    """
    time = np.asarray(time, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    band = np.asarray(band).astype(str)
    ok = np.isfinite(time) & np.isfinite(value) & np.isfinite(err) & (err >= 0)
    ok &= np.char.str_len(band) > 0
    if invalid is not None:
        ok &= ~invalid
    order = np.argsort(time[ok], kind="stable")
    cols = {
        "time": time[ok][order],
        "value": value[ok][order].astype(np.float32),
        "err": err[ok][order].astype(np.float32),
        "band": band[ok][order],
    }
    return cols, int(ok.size - ok.sum())


def light_curve_record(
    *,
    object_id: str,
    survey: str,
    source: str,
    cols: dict[str, np.ndarray],
    n_dropped: int,
    is_flux: bool,
    label: str | None = None,
    redshift: float | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a canonical light-curve record from cleaned columns."""
    return {
        "object_id": object_id,
        "survey": survey,
        "source": source,
        "time": cols["time"],
        "band": cols["band"],
        "mag": None if is_flux else cols["value"],
        "flux": cols["value"] if is_flux else None,
        "err": cols["err"],
        "label": label,
        "redshift": redshift,
        "n_dropped": n_dropped,
        "meta": meta or {},
    }


def clean_spectrum(
    wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray | None
) -> tuple[dict[str, np.ndarray], int]:
    """Keep the pixel grid, zero and flag non-finite pixels, cast to canonical dtypes.

    Pixels with non-finite wavelength cannot be placed on the grid and are removed; pixels
    with non-finite flux or ivar (or negative ivar) keep their place with flux 0, ivar 0 and
    the :data:`MASK_NONFINITE` bit.

    Returns:
        (columns, n_bad): ``wavelength``, ``flux``, ``ivar`` (float32), ``mask`` (int32), and
        the number of pixels flagged or removed.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    mask = (np.zeros(flux.shape, dtype=np.int64) if mask is None
            else np.asarray(mask).astype(np.int64))
    placed = np.isfinite(wavelength)
    bad = ~(np.isfinite(flux) & np.isfinite(ivar) & (ivar >= 0)) & placed
    flux = np.where(bad, 0.0, flux)
    ivar = np.where(bad, 0.0, ivar)
    mask = np.where(bad, mask | MASK_NONFINITE, mask)
    cols = {
        "wavelength": wavelength[placed].astype(np.float32),
        "flux": flux[placed].astype(np.float32),
        "ivar": ivar[placed].astype(np.float32),
        # and_mask bits fit in 31 bits for SDSS and LAMOST; keep int32 for Arrow/torch.
        "mask": (mask[placed] & 0x7FFFFFFF).astype(np.int32),
    }
    return cols, int(bad.sum() + (~placed).sum())


def air_to_vacuum(wavelength: np.ndarray) -> np.ndarray:
    """Convert air wavelengths (Angstrom) to vacuum (Morton 2000 / IAU standard, as SDSS).

    The refractive index of air is evaluated at the air wavelength's wavenumber, which is
    accurate to better than 0.01 Angstrom in the optical.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    sigma2 = (1e4 / wavelength) ** 2  # (micron^-1)^2
    n = 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - sigma2) + 1.5998e-4 / (38.9 - sigma2)
    return wavelength * n


def nonfinite_to_none(value: Any) -> Any:
    """Turn NaN/inf/sentinel-free floats into None for record scalars."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def header_value(header: Any, key: str) -> Any:
    """A FITS header card value, stripped of padding; None when absent or empty."""
    value = header.get(key)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def fits_column(data: Any, name: str) -> np.ndarray:
    """A FITS table column in native byte order (FITS is big-endian)."""
    col = np.asarray(data[name])
    return col.astype(col.dtype.newbyteorder("="))


def open_fits(data: bytes) -> fits.HDUList:
    """Open FITS bytes fully in memory, turning astropy's truncation warnings into errors.

    Raises:
        ValueError: when the file is truncated or not FITS at all.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False)
            hdul.verify("silentfix")
        except OSError as exc:
            raise ValueError(f"not a readable FITS file ({exc})") from None
    for warning in caught:
        text = str(warning.message)
        if "truncated" in text or "not multiple of 2880" in text:
            raise ValueError(f"truncated FITS file: {text.splitlines()[0]}")
    return hdul


def fits_header(head: bytes) -> dict[str, Any]:
    """The cards of a FITS file's primary header from its first bytes, as far as they reach.

    Sniffers see only the start of a file: the whole 80-character cards in it are parsed by
    astropy (up to ``END``; values typed, the first of repeated keywords kept). Cards astropy
    cannot parse are skipped quietly, since a sniffer must answer, not raise or warn.
    """
    whole = head[: len(head) // 80 * 80]
    cards: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-standard or damaged cards
        try:
            header = fits.Header.fromstring(whole)
        except (ValueError, UnicodeDecodeError):
            return cards
        for card in header.cards:
            try:
                cards.setdefault(card.keyword, card.value)
            except (ValueError, fits.VerifyError):
                continue
    return cards
