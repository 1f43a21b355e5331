"""LAMOST low-resolution spectra, both layouts, gzipped or not.

* up to DR7: the primary HDU is a (5, N) float32 array whose rows are flux, inverse variance,
  wavelength, andmask and ormask;
* DR8 and later: HDU 1 is a one-row binary table with array columns ``FLUX``, ``IVAR``,
  ``WAVELENGTH``, ``ANDMASK``, ``ORMASK``.

The primary header gives ``CLASS``, ``SUBCLASS``, ``Z``, ``Z_ERR`` (-9999 = unknown), ``OBSID``
(the object id) and ``DESIG``. Wavelengths are vacuum unless the header says ``VACUUM = F``,
in which case they are converted. LAMOST fluxes are relatively calibrated only.

:func:`write_lamost`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

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
    air_to_vacuum,
    clean_spectrum,
    fits_header,
    header_value,
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

_SENTINEL = -9000.0


def _sniff(fh: FileHead) -> bool:
    if not fh.head.startswith(b"SIMPLE  ="):
        return False
    return str(fits_header(fh.head).get("TELESCOP", "")).upper().startswith("LAMOST")


def _arrays(hdul: fits.HDUList) -> tuple[np.ndarray, ...]:
    primary = hdul[0].data
    if primary is not None:
        if primary.ndim != 2 or primary.shape[0] < 3:
            raise ValueError(f"primary array has shape {primary.shape}, expected (5, N)")
        data = primary.astype(np.float64)  # native byte order
        mask = data[3] if data.shape[0] > 3 else None
        return data[2], data[0], data[1], mask
    if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
        raise ValueError("no spectrum: empty primary HDU and no binary table in HDU 1")
    table = hdul[1].data
    names = {n.upper(): n for n in table.columns.names}
    for needed in ("FLUX", "IVAR", "WAVELENGTH"):
        if needed not in names:
            raise ValueError(f"HDU 1 lacks column {needed} (has {sorted(names)})")

    def col(key: str) -> np.ndarray | None:
        if key not in names:
            return None
        return np.asarray(table[names[key]][0], dtype=np.float64).ravel()

    return col("WAVELENGTH"), col("FLUX"), col("IVAR"), col("ANDMASK")


@register_reader(
    "lamost",
    kinds=("spectrum",),
    sniff=_sniff,
    description="LAMOST low-resolution spectra (primary (5, N) array or DR8+ table), .fits[.gz]",
)
def read_lamost(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read one spectrum per LAMOST file."""
    for path in unit.paths:
        name = fileio.basename(path)
        try:
            hdul = open_fits(fileio.read_bytes(path))
            header = hdul[0].header
            wave, flux, ivar, mask = _arrays(hdul)
        except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError) as exc:
            yield ReadFailure(path, None, f"{name}: unreadable LAMOST spectrum: {exc}")
            continue
        obsid = header_value(header, "OBSID")
        object_id = str(obsid) if obsid is not None else name.split(".", 1)[0]
        vacuum = header.get("VACUUM", True)
        meta = {"flux_unit": "relative (LAMOST)", "desig": header_value(header, "DESIG"),
                "ra": nonfinite_to_none(header.get("RA")),
                "dec": nonfinite_to_none(header.get("DEC")),
                "snr": {b: nonfinite_to_none(header.get(f"SNR{b.upper()}")) for b in "ugriz"}}
        if vacuum is False:
            wave = air_to_vacuum(wave)
            meta["wavelength_converted_from"] = "air"
        spec, n_bad = clean_spectrum(wave, flux, ivar, mask)
        z, z_err = (nonfinite_to_none(header.get(k)) for k in ("Z", "Z_ERR"))
        yield {
            "object_id": object_id, "survey": options.survey or "lamost", "source": path,
            **spec,
            "z": None if z is None or z <= _SENTINEL else z,
            "z_err": None if z_err is None or z_err <= _SENTINEL else z_err,
            "label": header_value(header, "CLASS"),
            "subclass": header_value(header, "SUBCLASS"),
            "ra": meta["ra"], "dec": meta["dec"],
            "n_bad": n_bad, "meta": meta,
        }


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


@register_writer("lamost", kinds=("spectrum",))
def write_lamost(table: Tables, out_dir: str | Path, *, layout: str = "array",
                 gzip: bool = False) -> list[str]:
    """LAMOST low-resolution spectrum files, one per spectrum.

    ``layout="array"`` (DR1-DR7): the primary HDU (``EXTNAME = 'Flux'``) is a (5, N) float32
    image whose rows are flux, inverse variance, wavelength, andmask and ormask. ``"table"``
    (DR8 and later): an empty primary HDU and HDU 1 ``COADD``, a one-row binary table with
    array columns ``FLUX, IVAR, WAVELENGTH, ANDMASK, ORMASK``. Either way the primary header
    holds ``TELESCOP = 'LAMOST'``, ``OBSID``, ``DESIG``, ``RA``, ``DEC``, ``CLASS``,
    ``SUBCLASS``, ``Z``, ``Z_ERR`` (-9999 when unknown), ``VACUUM = T`` and the log-linear
    dispersion cards, as in LAMOST's files. Files are named
    ``spec-<LMJD>-<PLANID>_sp<SPID>-<FIBER>.fits`` (``.fits.gz`` with ``gzip``). Integer ids
    are kept as ``OBSID``; others get a deterministic one, mapped back in ``labels.csv``.
    Read back by the ``lamost`` reader (:mod:`astroray.data.readers.lamost`).

    Returns:
        The paths written (spectra, then the label table).
    """
    if layout not in ("array", "table"):
        raise ValueError(f"layout must be 'array' or 'table', got {layout!r}")
    out = _folder(out_dir)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    used = _UniqueIds("write_lamost")
    first_row = 0
    for chunk in _tables(table):
        s = _spectra(chunk)
        numbers = _id_numbers(s.ids, first_row)
        first_row += len(s.ids)
        for i, oid in enumerate(s.ids):
            obsid = int(oid) if oid.isdigit() else 700_000_000 + int(numbers[i])
            used.add(str(obsid), oid)
            spid, fiber = 1 + (obsid // 250) % 16, 1 + obsid % 250
            lmjd = 58000 + (obsid // 4000) % 2000
            planid = f"SYN{obsid // 4000 % 1000000:06d}N{obsid % 997:03d}B01"
            name = f"spec-{lmjd}-{planid}_sp{spid:02d}-{fiber:03d}.fits"
            data = _lamost_bytes(s, i, obsid, lmjd, planid, spid, fiber, name, layout)
            path = out / (name + (".gz" if gzip else ""))
            path.write_bytes(_gzip_bytes(data) if gzip else data)
            paths.append(str(path))
            labels.append({"object_id": str(obsid), "label": s.labels[i],
                           "synthetic_id": None if str(obsid) == oid else oid})
    written = _write_label_table(out / _LABELS, labels, ["object_id", "label", "synthetic_id"])
    return paths + ([written] if written else [])


def _gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _lamost_bytes(s: _Spectra, i: int, obsid: int, lmjd: int, planid: str, spid: int,
                  fiber: int, name: str, layout: str) -> bytes:
    lo, hi = int(s.offsets[i]), int(s.offsets[i + 1])
    wave = s.wavelength[lo:hi]
    ra, dec = _sky_position(obsid, s.metas[i], "sky")
    ra_h = ra / 15.0
    desig = (f"LAMOST J{int(ra_h):02d}{int(ra_h * 60) % 60:02d}{ra_h * 3600 % 60:05.2f}"
             f"{'+' if dec >= 0 else '-'}{int(abs(dec)):02d}{int(abs(dec) * 60) % 60:02d}"
             f"{abs(dec) * 3600 % 60:04.1f}")
    z = -9999.0 if s.z[i] is None else float(s.z[i])
    z_err = -9999.0 if s.z_err[i] is None else float(s.z_err[i])
    coeff0, coeff1 = _log_grid(wave)
    cards = [
        ("FILENAME", name, ""), ("OBSID", obsid, "Unique number ID of this spectrum"),
        ("AUTHOR", "LAMOST Pipeline", "Who compiled the information"),
        ("DATA_V", "LAMOST DR7" if layout == "array" else "LAMOST DR8", "Data release version"),
        ("EXTEN0", "Flux, Inverse, Wavelength, Andmask, Ormask", ""),
        ("N_EXTEN", 1, "The extension number"),
        ("ORIGIN", "NAOC-LAMOST", "Organization responsible for creating this file"),
        ("TELESCOP", "LAMOST", "GuoShouJing Telescope"),
        ("LMJD", lmjd, "Local Modified Julian Day"), ("MJD", lmjd - 1, "Modified Julian Day"),
        ("PLANID", planid, "Plan ID in use"),
        ("RA", ra, "[deg] Right ascension of object"), ("DEC", dec, "[deg] Declination of object"),
        ("DESIG", desig, "Designation of LAMOST target"),
        ("FIBERID", fiber, "Fiber ID of Object"), ("OBJNAME", str(obsid), "Name of object"),
        ("NEXP", 3, "Number of valid exposures"), ("EXPTIME", 1800.0, "[s] Minimum exposure"),
        ("SPID", spid, "Spectrograph ID"), ("HELIO", True, "Heliocentric correction"),
        ("VACUUM", True, "Wavelengths are in vacuum"),
        ("NWORDER", 2, "Number of linear-log10 coefficients"),
        ("WFITTYPE", "LOG-LINEAR", "Linear-log10 dispersion"),
        ("COEFF0", coeff0, "Central wavelength (log10) of first pixel"),
        ("COEFF1", coeff1, "Log10 dispersion per pixel"),
        ("CRVAL1", coeff0, "Central wavelength (log10) of first pixel"),
        ("CD1_1", coeff1, "Log10 dispersion per pixel"),
        ("CRPIX1", 1, "Starting pixel (1-indexed)"), ("CTYPE1", "LINEAR", ""),
        ("DC-FLAG", 1, "Log-linear flag"), ("VERSPIPE", "v2.9.7", "Version of Pipeline"),
        ("CLASS", s.labels[i] or "", "Class of object"),
        ("SUBCLASS", s.subclasses[i] or "Non", "Subclass of object"),
        ("Z", z, "Redshift of object"), ("Z_ERR", z_err, "Redshift error of object"),
        ("ZFLAG", "LASP", "Which method computes the redshift"),
    ]
    flux, ivar = s.flux[lo:hi], s.ivar[lo:hi]
    mask = s.mask[lo:hi].astype(np.float32)
    wave32 = wave.astype(np.float32)
    if layout == "array":
        # Rows: flux, inverse variance, wavelength, andmask, ormask: a (5, N) image.
        image = np.stack([flux, ivar, wave32, mask, mask])
        return _primary_hdu([("EXTNAME", "Flux", "The extension name"), *cards], image)
    npix = hi - lo
    row = np.zeros(1, dtype=[(col, ">f4", (npix,)) for col in
                             ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK")])
    row["FLUX"][0], row["IVAR"][0], row["WAVELENGTH"][0] = flux, ivar, wave32
    row["ANDMASK"][0], row["ORMASK"][0] = mask, mask
    return _primary_hdu(cards) + _bintable_hdu("COADD", row)
