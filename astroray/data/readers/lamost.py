"""LAMOST low-resolution spectra, both layouts, gzipped or not.

* up to DR7: the primary HDU is a (5, N) float32 array whose rows are flux, inverse variance,
  wavelength, andmask and ormask;
* DR8 and later: HDU 1 is a one-row binary table with array columns ``FLUX``, ``IVAR``,
  ``WAVELENGTH``, ``ANDMASK``, ``ORMASK``.

The primary header gives ``CLASS``, ``SUBCLASS``, ``Z``, ``Z_ERR`` (-9999 = unknown), ``OBSID``
(the object id) and ``DESIG``. Wavelengths are vacuum unless the header says ``VACUUM = F``,
in which case they are converted. LAMOST fluxes are relatively calibrated only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from astropy.io import fits

from astroray.data import _io
from astroray.data.readers._common import (
    air_to_vacuum,
    clean_spectrum,
    fits_header,
    header_value,
    nonfinite_to_none,
    open_fits,
)
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

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
        name = _io.basename(path)
        try:
            hdul = open_fits(_io.read_bytes(path))
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
