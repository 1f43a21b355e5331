"""SDSS/BOSS/eBOSS ``spec-PLATE-MJD-FIBER.fits`` files (DR8 and later, "lite" or full).

HDU ``COADD``: ``loglam`` (log10 vacuum Angstrom), ``flux`` (1e-17 erg/s/cm^2/A), ``ivar``,
``and_mask`` (the canonical ``mask``). HDU ``SPECOBJ``: ``CLASS``, ``SUBCLASS``, ``Z``,
``Z_ERR``, ``ZWARNING`` and the plate/MJD/fiber that make the object id ``PLATE-MJD-FIBER``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from astroray.data import _io
from astroray.data.readers._common import (
    clean_spectrum,
    fits_column,
    fits_header,
    nonfinite_to_none,
    open_fits,
)
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

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
        name = _io.basename(path)
        try:
            hdul = open_fits(_io.read_bytes(path))
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
