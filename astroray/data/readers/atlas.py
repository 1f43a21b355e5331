"""ATLAS forced photometry, as the ATLAS forced-photometry server returns it (one object a file).

The server (https://fallingstar-data.com/forcedphot/; source code: lukeshingles/atlasserver,
whose "Output Description" page documents the columns; Tonry et al. 2018, PASP 130, 064505;
Shingles et al. 2021, TNSAN 7) writes a plain-text table: a header line that starts with
``###MJD`` and names the whitespace-separated columns, then one row per exposure::

    ###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y ...
    57232.626568  18.587  0.114   134    14 o  0  1.10 254.07750 -10.80611  6049.24  4779.43 ...

Columns used, by name: ``MJD`` (start of the 30 s exposure), ``uJy``/``duJy`` (flux density
and its 1-sigma error, microjansky; difference-image flux when difference photometry was
requested, which may be negative), ``F`` (filter: ``c`` cyan, ``o`` orange), ``err`` (tphot's
error code, 0 for a good fit), ``RA``/``Dec`` (where the PSF was forced, degrees). Other
columns (``m``, ``dm``, ``chi/N``, ``x``, ``y``, ``maj``, ``min``, ``phi``, ``apfit``,
``mag5sig``, ``Sky``, ``ZP``, ``Obs``) are not needed: the header decides which are there, so
both the older (``mag5sig Sky Obs``) and newer (``Sky ZP Obs``) layouts are read.

Fluxes are converted to nJy (x 1000; AB zero point 31.4, the ``m = 23.9 - 2.5 log10(uJy)`` of
the server). Points with a non-zero ``err`` code, or a non-finite time, flux or error, are
dropped and counted in ``n_dropped``. The position is the median of ``RA``/``Dec``. The object
id is the file name without its extension(s) (``SN2019abc.txt`` -> ``SN2019abc``); the server's
own ``job<N>.txt`` names should be renamed after the object, or given ids through a label
table (``object_id`` = the file stem).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from astroray.data import _io
from astroray.data.readers._common import clean_light_curve, light_curve_record
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

UJY_TO_NJY = 1000.0
REQUIRED = ("MJD", "uJy", "duJy", "F")


def _sniff(fh: FileHead) -> bool:
    return fh.first_line.startswith("###MJD")


def _object_id(name: str) -> str:
    stem = name[:-3] if name.endswith(".gz") else name
    for ext in (".txt", ".dat", ".csv", ".tbl"):
        if stem.endswith(ext):
            return stem[: -len(ext)]
    return stem


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)


def parse_atlas(text: str) -> pd.DataFrame:
    """The rows of a forced-photometry file, columns named by its ``###MJD`` header.

    Raises:
        ValueError: no header, a required column missing, or rows with the wrong number of
            fields.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("###"):
        raise ValueError("no '###MJD ...' header line")
    names = lines[0].lstrip("#").split()
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ValueError(f"header lacks column(s) {missing}; has {names}")
    rows = [ln.split() for ln in lines[1:] if not ln.startswith("#")]
    bad = next((i for i, r in enumerate(rows) if len(r) != len(names)), None)
    if bad is not None:
        raise ValueError(f"row {bad + 1} has {len(rows[bad])} fields, the header names "
                         f"{len(names)}")
    return pd.DataFrame(rows, columns=names, dtype=str)


@register_reader(
    "atlas",
    kinds=("lightcurve",),
    sniff=_sniff,
    description="ATLAS forced photometry (###MJD m dm uJy duJy F err ... RA Dec ... Obs)",
)
def read_atlas(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read one object per forced-photometry file."""
    for path in unit.paths:
        name = _io.basename(path)
        object_id = _object_id(name)
        try:
            frame = parse_atlas(_io.read_bytes(path).decode("ascii", "replace"))
        except ValueError as exc:
            yield ReadFailure(path, object_id, f"{name}: malformed ATLAS forced photometry: {exc}")
            continue
        time = _numeric(frame, "MJD")
        flux = _numeric(frame, "uJy") * UJY_TO_NJY
        err = _numeric(frame, "duJy") * UJY_TO_NJY
        band = frame["F"].str.strip().to_numpy(dtype=str)
        invalid = None
        if "err" in frame.columns:
            code = pd.to_numeric(frame["err"], errors="coerce").to_numpy(np.float64)
            invalid = ~(code == 0)  # a failed fit, or an unreadable code
        cols, dropped = clean_light_curve(time, flux, err, band, invalid=invalid)
        meta: dict = {"value_unit": "nJy", "flux_from": "ATLAS forced photometry uJy x 1000",
                      "n_err_flagged": int(invalid.sum()) if invalid is not None else 0}
        record = light_curve_record(object_id=object_id, survey=options.survey or "atlas",
                                    source=path, cols=cols, n_dropped=dropped, is_flux=True,
                                    meta=meta)
        if "RA" in frame.columns and "Dec" in frame.columns:
            ra, dec = _numeric(frame, "RA"), _numeric(frame, "Dec")
            ok = (np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra <= 360)
                  & (np.abs(dec) <= 90))
            if ok.any():
                # Forced at one position: the median only guards against a stray row.
                record["ra"], record["dec"] = float(np.median(ra[ok])), float(np.median(dec[ok]))
        yield record
