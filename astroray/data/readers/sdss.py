"""SDSS/BOSS/eBOSS ``spec-PLATE-MJD-FIBER.fits`` files (DR8 and later, "lite" or full).

HDU ``COADD``: ``loglam`` (log10 vacuum Angstrom), ``flux`` (1e-17 erg/s/cm^2/A), ``ivar``,
``and_mask`` (the canonical ``mask``). HDU ``SPECOBJ``: ``CLASS``, ``SUBCLASS``, ``Z``,
``Z_ERR``, ``ZWARNING`` and the plate/MJD/fiber that make the object id ``PLATE-MJD-FIBER``.

:func:`write_sdss`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from astroray.data import fileio
from astroray.data.formats import (
    FileHead,
    ReadFailure,
    ReadOptions,
    ReadUnit,
    register_reader,
    register_writer,
)
from astroray.data.readers._common import (
    clean_spectrum,
    fits_column,
    fits_header,
    nonfinite_to_none,
    open_fits,
)
from astroray.data.readers._writing import (
    _LABELS,
    Tables,
    _bintable_hdu,
    _folder,
    _id_numbers,
    _log_grid,
    _primary_hdu,
    _sky_position,
    _Spectra,
    _spectra,
    _tables,
    _UniqueIds,
    _write_label_table,
)

FLUX_UNIT = "1e-17 erg / (s cm2 Angstrom)"


def _sniff(fh: FileHead) -> bool:
    if not fh.head.startswith(b"SIMPLE  ="):
        return False
    header = fits_header(fh.head)
    telescope = str(header.get("TELESCOP", ""))
    if telescope.upper().startswith("SDSS"):
        return True
    # Files re-written by other tools may lose TELESCOP; the SDSS file name is then the clue.
    return fh.stem.startswith("spec-") and "LAMOST" not in telescope.upper() and (
        header.get("NAXIS") == 0)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    value = str(value).strip() if value is not None else None
    return value or None


@register_reader(
    "sdss",
    kinds=("spectrum",),
    sniff=_sniff,
    description="SDSS/BOSS spec-PLATE-MJD-FIBER.fits (COADD + SPECOBJ HDUs)",
)
def read_sdss(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read one spectrum per SDSS spec file."""
    for path in unit.paths:
        name = fileio.basename(path)
        try:
            hdul = open_fits(fileio.read_bytes(path))
            names = [h.name for h in hdul]
            for needed in ("COADD", "SPECOBJ"):
                if needed not in names:
                    raise ValueError(f"missing HDU {needed!r} (HDUs present: {names})")
            coadd, specobj = hdul["COADD"].data, hdul["SPECOBJ"].data
            if coadd is None or len(coadd) == 0:
                raise ValueError("COADD HDU holds no pixels")
            loglam = fits_column(coadd, "loglam").astype(np.float64)
            flux, ivar = fits_column(coadd, "flux"), fits_column(coadd, "ivar")
            and_mask = fits_column(coadd, "and_mask")
            row = specobj[0]
            cols = specobj.columns.names
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            yield ReadFailure(path, None, f"{name}: unreadable SDSS spectrum: {exc}")
            continue
        plate, mjd, fiber = (int(row[c]) for c in ("PLATE", "MJD", "FIBERID"))
        object_id = f"{plate:04d}-{mjd:05d}-{fiber:04d}"
        spec, n_bad = clean_spectrum(10.0 ** loglam, flux, ivar, and_mask)
        header = hdul[0].header
        meta = {
            "flux_unit": FLUX_UNIT, "plate": plate, "mjd": mjd, "fiber": fiber,
            "zwarning": int(row["ZWARNING"]) if "ZWARNING" in cols else None,
            "specobjid": _text(row["SPECOBJID"]) if "SPECOBJID" in cols else None,
            "program": _text(row["SURVEY"]) if "SURVEY" in cols else None,
            # The fibre's position (SPECOBJ PLUG_RA/DEC), not the plate centre (header RA/DEC).
            "ra": nonfinite_to_none(row["PLUG_RA"] if "PLUG_RA" in cols
                                    else header.get("PLUG_RA", header.get("RA"))),
            "dec": nonfinite_to_none(row["PLUG_DEC"] if "PLUG_DEC" in cols
                                     else header.get("PLUG_DEC", header.get("DEC"))),
        }
        yield {
            "object_id": object_id, "survey": options.survey or "sdss", "source": path,
            **spec,
            "z": nonfinite_to_none(row["Z"]) if "Z" in cols else None,
            "z_err": nonfinite_to_none(row["Z_ERR"]) if "Z_ERR" in cols else None,
            "label": _text(row["CLASS"]) if "CLASS" in cols else None,
            "subclass": _text(row["SUBCLASS"]) if "SUBCLASS" in cols else None,
            "ra": meta["ra"], "dec": meta["dec"],
            "n_bad": n_bad, "meta": meta,
        }


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


_SDSS_ID = re.compile(r"^(\d{3,5})-(\d{5})-(\d{3,4})$")


_COADD_DTYPE = np.dtype([("flux", ">f4"), ("loglam", ">f4"), ("ivar", ">f4"),
                         ("and_mask", ">i4"), ("or_mask", ">i4"), ("wdisp", ">f4"),
                         ("sky", ">f4"), ("model", ">f4")])


# A subset of the SPECOBJ columns of DR8+ spec files, with their FITS formats.
_SPECOBJ_DTYPE = np.dtype([
    ("SURVEY", "S6"), ("INSTRUMENT", "S4"), ("PROGRAMNAME", "S23"), ("PLATEQUALITY", "S8"),
    ("PLATESN2", ">f4"), ("SPECPRIMARY", "u1"), ("SPECOBJID", "S22"), ("PLATEID", "S19"),
    ("RUN2D", "S3"), ("RUN1D", "S1"), ("SOURCETYPE", "S19"), ("TARGETTYPE", "S8"),
    ("SPECTROGRAPHID", ">i2"), ("PLATE", ">i4"), ("TILE", ">i4"), ("MJD", ">i4"),
    ("FIBERID", ">i4"), ("PLUG_RA", ">f8"), ("PLUG_DEC", ">f8"), ("CLASS", "S6"),
    ("SUBCLASS", "S21"), ("Z", ">f4"), ("Z_ERR", ">f4"), ("RCHI2", ">f4"), ("DOF", ">i4"),
    ("VDISP", ">f4"), ("WAVEMIN", ">f4"), ("WAVEMAX", ">f4"), ("WCOVERAGE", ">f4"),
    ("ZWARNING", ">i4"), ("SN_MEDIAN_ALL", ">f4"), ("SN_MEDIAN", ">f4", (5,)),
    ("ANYANDMASK", ">i4"), ("ANYORMASK", ">i4"),
])


_SDSS_FILTERS = (3551.0, 4686.0, 6166.0, 7480.0, 8932.0)


def _sdss_id(oid: str, number: int) -> tuple[int, int, int]:
    match = _SDSS_ID.match(oid)
    if match:
        return int(match[1]), int(match[2]), int(match[3])
    plate = 3000 + number // 1000
    return plate, 55000 + (plate - 3000) % 4000, number % 1000 + 1


def _fixed_text(value: Any, width: int) -> bytes:
    return ("" if value is None else str(value)).encode("ascii", "replace")[:width]


def _running_mean(values: np.ndarray, weights: np.ndarray, half: int = 2) -> np.ndarray:
    """Weighted running mean over 2 * half + 1 pixels (cumulative sums, no loop)."""
    pad_v = np.pad(values * weights, (half + 1, half))
    pad_w = np.pad(weights, (half + 1, half))
    cv, cw = np.cumsum(pad_v), np.cumsum(pad_w)
    width = 2 * half + 1
    num, den = cv[width:] - cv[:-width], cw[width:] - cw[:-width]
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), values)


@register_writer("sdss", kinds=("spectrum",))
def write_sdss(table: Tables, out_dir: str | Path) -> list[str]:
    """SDSS DR8+ ``spec-PPPP-MMMMM-FFFF.fits`` files, one per spectrum.

    HDU 0: header only (``TELESCOP = 'SDSS 2.5-M'``, ``RA``/``DEC``/``PLUG_RA``/``PLUG_DEC``,
    ``PLATEID``, ``MJD``, ``FIBERID``, ``VACUUM = T``, ``COEFF0``/``COEFF1``, ``BUNIT``).
    HDU 1 ``COADD``: ``flux, loglam, ivar, and_mask, or_mask, wdisp, sky, model`` (float32 /
    int32, big-endian); ``and_mask`` = ``or_mask`` = the canonical mask, ``wdisp`` 1 pixel,
    ``sky`` 0 (not modelled) and ``model`` an ivar-weighted 5-pixel running mean of the flux
    (a stand-in for the pipeline's template fit). HDU 2 ``SPECOBJ``: one row with ``CLASS,
    SUBCLASS, Z, Z_ERR, ZWARNING, PLATE, MJD, FIBERID, PLUG_RA, PLUG_DEC, SPECOBJID`` and
    other DR8 columns in their FITS formats. Ids ``PPPP-MMMMM-FFFF`` are kept; others get
    a deterministic plate-mjd-fiber, mapped back in ``labels.csv``. Wavelengths are written as
    given (vacuum Angstrom); flux in the table's unit (SDSS: 1e-17 erg/s/cm^2/A). Read back
    by the ``sdss`` reader (:mod:`astroray.data.readers.sdss`).

    Returns:
        The paths written (spectra, then the label table).
    """
    out = _folder(out_dir)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    used = _UniqueIds("write_sdss")
    first_row = 0
    for chunk in _tables(table):
        s = _spectra(chunk)
        numbers = _id_numbers(s.ids, first_row)
        first_row += len(s.ids)
        for i, oid in enumerate(s.ids):
            plate, mjd, fiber = _sdss_id(oid, int(numbers[i]))
            sdss_id = f"{plate:04d}-{mjd:05d}-{fiber:04d}"
            used.add(sdss_id, oid)
            path = out / f"spec-{sdss_id}.fits"
            _write_sdss_file(path, s, i, plate, mjd, fiber, int(numbers[i]))
            paths.append(str(path))
            labels.append({"object_id": sdss_id, "label": s.labels[i],
                           "synthetic_id": None if sdss_id == oid else oid})
    written = _write_label_table(out / _LABELS, labels, ["object_id", "label", "synthetic_id"])
    return paths + ([written] if written else [])


def _write_sdss_file(path: Path, s: _Spectra, i: int, plate: int, mjd: int, fiber: int,
                     number: int) -> None:
    lo, hi = int(s.offsets[i]), int(s.offsets[i + 1])
    wave = s.wavelength[lo:hi]
    flux, ivar, mask = s.flux[lo:hi], s.ivar[lo:hi], s.mask[lo:hi]
    coadd = np.zeros(hi - lo, dtype=_COADD_DTYPE)
    coadd["flux"] = flux
    coadd["loglam"] = np.log10(wave)
    coadd["ivar"] = ivar
    coadd["and_mask"] = mask
    coadd["or_mask"] = mask
    coadd["wdisp"] = 1.0
    coadd["model"] = _running_mean(flux.astype(np.float64), ivar.astype(np.float64))
    meta = s.metas[i]
    ra, dec = _sky_position(number, meta, "sky")
    good = ivar > 0
    sn = np.where(good, flux * np.sqrt(np.where(good, ivar, 0.0)), 0.0)
    specobj = np.zeros(1, dtype=_SPECOBJ_DTYPE)
    row = specobj[0]
    row["SURVEY"], row["INSTRUMENT"] = b"sdss", b"SDSS" if wave[-1] < 9300 else b"BOSS"
    row["PROGRAMNAME"], row["PLATEQUALITY"] = b"synthetic", b"good"
    row["PLATESN2"] = 20.0
    row["SPECPRIMARY"] = 1
    specobjid = (plate << 50) | (fiber << 38) | ((mjd - 50000) << 24) | (26 << 10)
    row["SPECOBJID"] = _fixed_text(specobjid, 22)
    row["PLATEID"] = _fixed_text(plate << 50, 19)
    row["RUN2D"], row["RUN1D"] = b"26", b""
    row["SOURCETYPE"] = _fixed_text(s.labels[i], 19)
    row["TARGETTYPE"] = b"SCIENCE"
    row["SPECTROGRAPHID"] = 1 if fiber <= 320 else 2
    row["PLATE"], row["TILE"], row["MJD"], row["FIBERID"] = plate, plate, mjd, fiber
    row["PLUG_RA"], row["PLUG_DEC"] = ra, dec
    row["CLASS"] = _fixed_text(s.labels[i], 6)
    row["SUBCLASS"] = _fixed_text(s.subclasses[i], 21)
    row["Z"] = np.nan if s.z[i] is None else s.z[i]
    row["Z_ERR"] = np.nan if s.z_err[i] is None else s.z_err[i]
    row["RCHI2"], row["DOF"] = 1.0, int(good.sum())
    row["VDISP"] = float(meta.get("vdisp", 0.0) or 0.0)
    row["WAVEMIN"], row["WAVEMAX"] = float(wave[0]), float(wave[-1])
    row["WCOVERAGE"] = float(np.log10(wave[-1] / wave[0]))
    row["ZWARNING"] = int(meta.get("zwarning", 0) or 0)
    row["SN_MEDIAN_ALL"] = float(np.median(sn[good])) if good.any() else 0.0
    near = [good & (np.abs(wave - c) < 500) for c in _SDSS_FILTERS]
    row["SN_MEDIAN"] = [float(np.median(sn[k])) if k.any() else 0.0 for k in near]
    row["ANYANDMASK"] = int(np.bitwise_or.reduce(mask)) if mask.size else 0
    row["ANYORMASK"] = row["ANYANDMASK"]
    cards = [
        ("TAI", (mjd + 0.2) * 86400.0, "1st row - Number of seconds since Nov 17 1858"),
        ("RA", ra, "1st row - Right ascension of telescope boresight"),
        ("DEC", dec, "1st row - Declination of telescope boresight (d"),
        ("EQUINOX", 2000.0, ""), ("RADECSYS", "FK5", ""),
        ("MJD", mjd, "MJD of observation"), ("MJDLIST", str(mjd), ""),
        ("TELESCOP", "SDSS 2.5-M", "Sloan Digital Sky Survey"),
        ("FLAVOR", "science", "Flavor of this sequence"),
        ("PLATEID", plate, "Plate Id"), ("TILEID", plate, "Tile Id"),
        ("NAME", f"{plate:04d}-{mjd:05d}-01", "Name of target; PlateId-MJD-Mapper"),
        ("EXPTIME", 2700.0, "Minimum of exposure times for all cameras"),
        ("VACUUM", True, "Wavelengths are in vacuum"),
        ("NWORDER", 2, "Linear-log10 coefficients"),
        ("WFITTYPE", "LOG-LINEAR", "Linear-log10 dispersion"),
        ("COEFF0", _log_grid(wave)[0], "Central wavelength (log10) of first pixel"),
        ("COEFF1", _log_grid(wave)[1], "Log10 dispersion per pixel"),
        ("DC-FLAG", 1, "Log-linear flag"),
        ("BUNIT", "1E-17 erg/cm^2/s/Ang", ""),
        ("PLUG_RA", ra, "RA of object [deg]"), ("PLUG_DEC", dec, "dec of object [deg]"),
        ("SPEC_ID", str(specobjid), "Unique object identifier"),
        ("FIBERID", fiber, "Fiber number"),
    ]
    path.write_bytes(_primary_hdu(cards) + _bintable_hdu("COADD", coadd)
                     + _bintable_hdu("SPECOBJ", specobj))
