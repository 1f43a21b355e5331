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

:func:`write_atlas`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from astroray.data import fileio
from astroray.data.formats import (
    FileHead,
    ReadFailure,
    ReadOptions,
    ReadUnit,
    register_reader,
    register_writer,
)
from astroray.data.readers._common import clean_light_curve, light_curve_record
from astroray.data.readers._writing import (
    _LABELS,
    _MAG_PER_LN,
    Tables,
    _as_fluxes,
    _check_bands,
    _csv_lines,
    _curves,
    _fixed,
    _folder,
    _id_numbers,
    _safe_name,
    _sky_position,
    _tables,
    _UniqueIds,
    _write_label_table,
)

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
        name = fileio.basename(path)
        object_id = _object_id(name)
        try:
            frame = parse_atlas(fileio.read_bytes(path).decode("ascii", "replace"))
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


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


_ATLAS_BANDS = ("c", "o")


_ATLAS_HEADER = ("###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x"
                 "        y     maj   min   phi  apfit mag5sig Sky   Obs\n")


_ATLAS_UJY_ZEROPOINT = 23.9  # AB magnitude of 1 uJy


@register_writer("atlas", kinds=("lightcurve",), bands=_ATLAS_BANDS)
def write_atlas(table: Tables, out_dir: str | Path, *, seed: int = 0) -> list[str]:
    """ATLAS forced photometry as the ATLAS server returns it: one text file per object.

    ``<out_dir>/<object_id>.txt`` starts with the server's ``###MJD m dm uJy duJy F err chi/N
    RA Dec x y maj min phi apfit mag5sig Sky Obs`` header, then one row per exposure: MJD (6
    decimals), AB magnitude ``m = 23.9 - 2.5 log10(|uJy|)`` (negative for negative fluxes, as
    the server writes them) and ``dm``, flux ``uJy`` and ``duJy`` rounded to whole microjansky
    (as the server prints them), filter ``c``/``o``, error code 0, the forced RA/Dec (the
    object's ``ra``/``dec`` or a deterministic position) and plausible values for the PSF,
    sky and ``Obs`` columns (drawn from ``seed``). Light curves in magnitudes are taken as AB.
    ``labels.csv`` (``object_id,label,redshift,period``, plus ``synthetic_id`` when a name had
    to be changed to be a file name) holds the labels. Read back by the ``atlas`` reader
    (:mod:`astroray.data.readers.atlas`).

    Raises:
        ValueError: for bands other than c and o.

    Returns:
        The paths written (light curves, then the label table).
    """
    out = _folder(out_dir)
    rng = np.random.default_rng(seed)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    used = _UniqueIds("write_atlas")
    first_row = 0
    for chunk in _tables(table):
        c = _curves(chunk)
        _check_bands(c, _ATLAS_BANDS, "write_atlas", "ATLAS photometry")
        numbers = _id_numbers(c.ids, first_row)
        first_row += len(c.ids)
        flux, err = _as_fluxes(c)
        ujy, dujy = flux / 1000.0, err / 1000.0
        n_pts, row = ujy.size, c.row
        positions = np.array([_sky_position(int(numbers[i]), m, "sky")
                              for i, m in enumerate(c.metas)]).reshape(-1, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            absf = np.abs(ujy)
            m = np.where(absf > 0, _ATLAS_UJY_ZEROPOINT - 2.5 * np.log10(absf), 99.999)
            m = np.where(ujy < 0, -m, m)
            dm = np.minimum(np.where(absf > 0, _MAG_PER_LN * dujy / absf, 99.999), 99.999)
            mag5 = np.where(dujy > 0, _ATLAS_UJY_ZEROPOINT - 2.5 * np.log10(5.0 * dujy), 99.99)
        camera = np.array(["01a", "02a", "03a", "04a"])[rng.integers(0, 4, n_pts)]
        mjd_night = np.floor(c.time).astype(np.int64)
        seq = rng.integers(1, 1400, n_pts)
        obs = [f"{cam}{night}o{s:04d}{band}" for cam, night, s, band
               in zip(camera.tolist(), mjd_night.tolist(), seq.tolist(), c.band.tolist(),
                      strict=True)]
        data, starts = _csv_lines({
            "MJD": _fixed(c.time, 6), "m": _fixed(m, 3), "dm": _fixed(dm, 3),
            "uJy": pa.array(np.rint(ujy).astype(np.int64)),
            "duJy": pa.array(np.rint(dujy).astype(np.int64)),
            "F": pa.array(c.band.tolist(), type=pa.string()),
            "err": pa.array(np.zeros(n_pts, dtype=np.int64)),
            "chi": _fixed(rng.gamma(8.0, 1.0 / 8.0, n_pts), 2),
            "RA": _fixed(positions[row, 0] if n_pts else np.zeros(0), 5),
            "Dec": _fixed(positions[row, 1] if n_pts else np.zeros(0), 5),
            "x": _fixed(rng.uniform(10.0, 10550.0, n_pts), 2),
            "y": _fixed(rng.uniform(10.0, 10550.0, n_pts), 2),
            "maj": _fixed(rng.uniform(1.9, 2.8, n_pts), 2),
            "min": _fixed(rng.uniform(1.7, 2.4, n_pts), 2),
            "phi": _fixed(rng.uniform(-90.0, 90.0, n_pts), 1),
            "apfit": _fixed(rng.normal(-0.4, 0.03, n_pts), 3),
            "mag5sig": _fixed(mag5, 2),
            "Sky": _fixed(rng.uniform(19.0, 21.0, n_pts), 2),
            "Obs": pa.array(obs, type=pa.string()),
        }, delimiter=" ")
        for i, oid in enumerate(c.ids):
            name = _safe_name(oid)
            used.add(name, oid)
            path = out / f"{name}.txt"
            lo, hi = int(starts[c.offsets[i]]), int(starts[c.offsets[i + 1]])
            path.write_bytes(_ATLAS_HEADER.encode("ascii") + data[lo:hi])
            paths.append(str(path))
            labels.append({"object_id": name, "label": c.labels[i], "redshift": c.redshift[i],
                           "period": c.metas[i].get("period"),
                           "synthetic_id": None if name == oid else oid})
    written = _write_label_table(out / _LABELS, labels, ["object_id", "label", "redshift",
                                                          "period", "synthetic_id"])
    return paths + ([written] if written else [])
