"""Label and metadata tables that sit beside survey data and are joined to objects by id.

A label table is a file with an id column and no time column:

* CSV with a header line: ``periods.csv`` (Stripe 82 RR Lyrae: ``Num, Type, Per``), ``bts.csv``
  (ZTF BTS: ``ZTFID, ..., RA, Dec, type, redshift``), ``*_labels.csv`` (ALeRCE: ``objectId,
  classALeRCE``), or any user file given with ``--labels``;
* Parquet: the ELAsTiCC metadata (index ``SNID``, ``REDSHIFT_HELIO``, host columns, ``RA`` /
  ``DEC`` or ``DECL`` in the full release);
* whitespace-separated text with a header line (``ID Type P RA Dec``; a leading ``#`` on the
  header line is allowed);
* the OGLE-III / OGLE-IV catalogue files, which have no header: ``ident.dat`` (``ID Mode RA Dec
  ...``, RA/Dec sexagesimal; the label is the variability type of the id and the mode,
  ``"CEP F"``, ``"RRLYR RRab"``, ``"ECL"``) and the parameter files named after their class
  (``cepF.dat``, ``cep1O.dat``, ``RRab.dat``, ``acepF.dat``, ``Miras.dat``, ...: ``ID <I> <V> P
  ...``, the period in the fourth column; the label is the file's class, ``cepF``).

Column roles are recognised by name (the aliases below): id, label, redshift, period and
position. Positions in degrees or sexagesimal (RA in hours, ``08:29:47.59``; Dec in degrees)
become ``ra``/``dec`` in degrees; a period becomes ``period`` (days; non-positive values are
dropped as sentinels). Every column but the id, label and redshift also goes into the
object's ``meta`` (the period as ``meta.period``). Labels are joined as the table spells them;
:mod:`astroray.data.taxonomy` maps them to canonical names when records are read.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from astroray.data import fileio

__all__ = ["LabelRow", "LabelTable", "is_label_table", "load_label_table"]

ID_ALIASES = ("object_id", "objectId", "oid", "ZTFID", "SNID", "snid", "Num", "stamp_id",
              "candid", "OBSID", "obsid", "id", "ID", "name", "Name")
LABEL_ALIASES = ("label", "class", "classALeRCE", "Type", "type", "CLASS", "TRUE_CLASS",
                 "true_class", "target", "sntype", "SNTYPE")
REDSHIFT_ALIASES = ("redshift", "REDSHIFT", "z", "Z", "REDSHIFT_HELIO", "redshift_helio",
                    "zspec", "ZSPEC")
PERIOD_ALIASES = ("period", "Period", "Per", "PERIOD", "P")
RA_ALIASES = ("ra", "RA", "Ra", "RAJ2000", "RA_J2000", "ra_deg", "RA_deg", "RAdeg", "raj2000")
DEC_ALIASES = ("dec", "DEC", "Dec", "DECL", "decl", "DEJ2000", "DECJ2000", "DEC_J2000", "dec_deg",
               "DEC_deg", "DEdeg", "dej2000")
TIME_COLUMNS = {"time", "mjd", "jd", "hjd", "bjd", "t"}
#: Redshifts at or below this are survey sentinels for "unknown" (ELAsTiCC uses -9).
REDSHIFT_SENTINEL = -0.5


def _first(names: list[str], aliases: tuple[str, ...]) -> str | None:
    for alias in aliases:
        if alias in names:
            return alias
    return None


def _looks_like_labels(columns: list[str]) -> bool:
    if any(c.lower() in TIME_COLUMNS for c in columns):
        return False
    return _first(columns, ID_ALIASES) is not None and len(columns) >= 2


#: An OGLE variable-star id: ``OGLE-LMC-CEP-0002``, ``OGLE-BLG-RRLYR-12345``, ``OGLE-GD-ECL-1``.
OGLE_ID = re.compile(r"^OGLE-(?P<field>[A-Z0-9]+)-(?P<type>[A-Z0-9]+)-(?P<number>\d+)$")
#: Variability types of OGLE ids whose ident.dat rows name a class.
OGLE_TYPES = ("CEP", "ACEP", "T2CEP", "RRLYR", "DSCT", "ECL", "LPV", "ELL", "DPV", "RCB", "HB",
              "ROT", "HADS", "SXPHE")
_SEXAGESIMAL = re.compile(r"^[+-]?\d{1,3}:\d{1,2}:\d{1,2}(\.\d*)?$")


def is_label_table(path: str, head: bytes) -> bool:
    """Sniff whether a file is a label/metadata table rather than data (see the module doc)."""
    if head[:4] == b"PAR1":
        try:
            columns = _parquet_columns(path)
        except Exception:  # noqa: BLE001 - an unreadable file is not a label table
            return False
        return _looks_like_labels(columns)
    first = first_line(head)
    if _is_ogle_catalogue(first):
        return True
    if "," in first and not first.startswith("#"):
        return _looks_like_labels([c.strip() for c in first.split(",")])
    # Whitespace tables: a header of names (after an optional "#"), not a row of numbers.
    names = first.lstrip("#").split()
    if len(names) < 2 or any(_is_number(n) for n in names):
        return False
    return _looks_like_labels(names)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_ogle_catalogue(first: str) -> bool:
    """An OGLE catalogue row: an OGLE id first, then fields (no header line)."""
    parts = first.split()
    return len(parts) >= 2 and OGLE_ID.match(parts[0]) is not None


def first_line(head: bytes) -> str:
    """The first non-blank line of a text file's head ('' for binary data)."""
    for raw in head.split(b"\n", 64)[:64]:
        try:
            line = raw.decode("utf-8").strip().lstrip("\ufeff")
        except UnicodeDecodeError:
            return ""
        if line:
            return line
    return ""


def _parquet_columns(path: str) -> list[str]:
    fs, inner = fileio.resolve(path)
    return list(pq.read_schema(inner, filesystem=fs).names)


@dataclass(frozen=True)
class LabelRow:
    """What a label table knows about one object."""

    label: str | None
    redshift: float | None
    meta: dict[str, Any]
    period: float | None = None
    ra: float | None = None
    dec: float | None = None


class LabelTable:
    """An id-indexed label table.

    Args:
        path: the file it was read from.
        frame: its contents.
    """

    def __init__(self, path: str, frame: pd.DataFrame):
        columns = [str(c) for c in frame.columns]
        frame.columns = columns
        self.path = path
        self.id_column = _first(columns, ID_ALIASES)
        if self.id_column is None:
            raise ValueError(
                f"{fileio.basename(path)}: no id column (expected one of {', '.join(ID_ALIASES)})"
            )
        self.label_column = _first(columns, LABEL_ALIASES)
        self.redshift_column = _first(columns, REDSHIFT_ALIASES)
        self.period_column = _first(columns, PERIOD_ALIASES)
        ra_column, dec_column = _first(columns, RA_ALIASES), _first(columns, DEC_ALIASES)
        ids = frame[self.id_column].astype(str).str.strip()
        self._rows: dict[str, int] = {}
        for i, oid in enumerate(ids.tolist()):
            self._rows.setdefault(oid, i)
        self._records = frame.to_dict("records")
        # Positions are parsed once per table, vectorised (sexagesimal text needs astropy).
        self._ra = self._dec = None
        if ra_column is not None and dec_column is not None:
            self._ra, self._dec = sky_positions(frame[ra_column], frame[dec_column])

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, object_id: str) -> LabelRow | None:
        """Look up an object by id; ``None`` when the table does not list it."""
        i = self._rows.get(str(object_id).strip())
        if i is None:
            return None
        rec = self._records[i]
        label = None
        if self.label_column is not None:
            value = rec[self.label_column]
            label = None if _missing(value) else _label_text(value)
        redshift = None
        if self.redshift_column is not None:
            redshift = _to_float(rec[self.redshift_column])
            if redshift is not None and redshift <= REDSHIFT_SENTINEL:
                redshift = None
        period = None
        if self.period_column is not None:
            period = _to_float(rec[self.period_column])
            if period is not None and period <= 0:
                period = None  # -9, 0: catalogue sentinels for "no period"
        meta: dict[str, Any] = {}
        for key, value in rec.items():
            if key in (self.id_column, self.label_column, self.redshift_column):
                continue
            if key == self.period_column:
                key = "period"
            meta[key] = None if _missing(value) else _plain(value)
        ra = dec = None
        if self._ra is not None and self._dec is not None:
            ra, dec = self._ra[i], self._dec[i]
        return LabelRow(label=label, redshift=redshift, meta=meta, period=period, ra=ra, dec=dec)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return not math.isfinite(float(value))
    return isinstance(value, str) and value.strip() in ("", "-", "nan", "NaN", "null", "None")


def _label_text(value: Any) -> str:
    """A label cell as text; integral numbers without ".0" (numeric class codes)."""
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def sky_positions(ra: pd.Series, dec: pd.Series) -> tuple[list[float | None],
                                                           list[float | None]]:
    """RA/Dec columns of a table as degrees (ICRS), None where missing or out of range.

    Numbers are taken as degrees; text such as ``08:29:47.59`` / ``+33:54:22.8`` (or with
    spaces, or ``08h29m47.59s``) as sexagesimal hours of RA and degrees of Dec.
    """
    ra_deg = _angles(ra, hours=True)
    dec_deg = _angles(dec, hours=False)
    out_ra: list[float | None] = []
    out_dec: list[float | None] = []
    for a, d in zip(ra_deg, dec_deg, strict=True):
        ok = (a is not None and d is not None and 0.0 <= a <= 360.0 and -90.0 <= d <= 90.0)
        out_ra.append(a % 360.0 if ok else None)
        out_dec.append(d if ok else None)
    return out_ra, out_dec


def _angles(column: pd.Series, *, hours: bool) -> list[float | None]:
    values = column.tolist()
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().sum() == sum(not _missing(v) for v in values):
        return [None if _missing(v) else float(v) for v in numeric.tolist()]
    from astropy import units as u  # lazy: astropy
    from astropy.coordinates import Angle  # lazy: astropy

    unit = u.hourangle if hours else u.deg
    texts = [None if _missing(v) else str(v).strip() for v in values]
    present = [t for t in texts if t is not None]
    try:
        parsed = iter(Angle(present, unit=unit).degree.tolist()) if present else iter(())
        return [None if t is None else float(next(parsed)) for t in texts]
    except (ValueError, TypeError):
        # One bad cell must not lose the table's other positions: parse one by one.
        out: list[float | None] = []
        for t in texts:
            try:
                out.append(None if t is None else float(Angle(t, unit=unit).degree))
            except (ValueError, TypeError):
                out.append(None)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _to_float(value: Any) -> float | None:
    if _missing(value):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def load_label_table(path: str) -> LabelTable:
    """Load a label table, cached per process by path, size and modification time."""
    fs, inner = fileio.resolve(path)
    info = fs.get_file_info(inner)
    return _load_cached(path, info.size, info.mtime_ns)


@lru_cache(maxsize=32)
def _load_cached(path: str, size: int | None, mtime_ns: int | None) -> LabelTable:
    data = fileio.read_bytes(path)
    if data[:4] == b"PAR1":
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
        index_names = [n for n in frame.index.names if n is not None]
        if index_names:
            frame = frame.reset_index()
    else:
        first = first_line(data[:fileio.HEAD_BYTES])
        if _is_ogle_catalogue(first):
            frame = _ogle_frame(fileio.basename(path), data.decode("utf-8", "replace"))
        elif "," in first and not first.startswith("#"):
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        else:
            text = data.decode("utf-8", "replace").lstrip("\ufeff").lstrip()
            frame = pd.read_csv(io.StringIO(text.lstrip("#")), sep=r"\s+", dtype=str,
                                keep_default_na=False, comment=None)
        id_column = _first([str(c) for c in frame.columns], ID_ALIASES)
        # Ids stay text (zero-padded ids must match file names); other columns become numbers
        # where every non-empty value is one.
        for column in frame.columns:
            if column != id_column:
                frame[column] = _numeric_if_possible(frame[column])
    return LabelTable(path, frame)


#: OGLE parameter files named after their class (stem, case as OGLE writes it) hold the
#: period in their fourth column: ``ID <I> <V> P sigma_P T0 A_I ...``.
_OGLE_PERIOD_COLUMN = 3


def _ogle_frame(name: str, text: str) -> pd.DataFrame:
    """An OGLE-III/IV catalogue file (no header) as a frame with ID/label/period/RA/Dec.

    ``ident.dat``: ``ID [Mode] RA Dec [other ids]``; the label is ``"<TYPE> <Mode>"`` for the
    variability type of the id (``CEP``, ``RRLYR``, ...), or just the type when no mode is
    given, and no label for types OGLE does not use. Any other file: a parameter file whose
    label is its file stem (``cepF``) and whose period is in the fourth column.
    """
    rows = [line.split() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    stem = name.split(".", 1)[0]
    records = []
    if stem.lower().startswith("ident"):
        for parts in rows:
            match = OGLE_ID.match(parts[0])
            coords = [i for i, p in enumerate(parts[1:], start=1) if _SEXAGESIMAL.match(p)]
            mode = parts[1] if len(parts) > 1 and 1 not in coords else None
            label = None
            if match and match["type"] in OGLE_TYPES:
                label = match["type"] + (f" {mode}" if mode and mode != "-" else "")
            ra = parts[coords[0]] if len(coords) >= 2 else None
            dec = parts[coords[1]] if len(coords) >= 2 else None
            records.append({"ID": parts[0], "label": label, "RA": ra, "Dec": dec,
                            "ogle_mode": mode})
        return pd.DataFrame(records, columns=["ID", "label", "RA", "Dec", "ogle_mode"]).fillna("")
    for parts in rows:
        period = parts[_OGLE_PERIOD_COLUMN] if len(parts) > _OGLE_PERIOD_COLUMN else None
        records.append({"ID": parts[0], "label": stem, "period": period,
                        "mean_I": parts[1] if len(parts) > 1 else None,
                        "mean_V": parts[2] if len(parts) > 2 else None})
    return pd.DataFrame(records, columns=["ID", "label", "period", "mean_I", "mean_V"]).fillna("")


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column.replace({"": None, "-": None}), errors="coerce")
    non_empty = column.str.strip().isin(["", "-"]) == False  # noqa: E712 - elementwise
    if converted[non_empty].notna().all():
        return converted
    return column


def beside(data_path: str, candidates: list[str]) -> list[str]:
    """Label tables that sit beside a data file: in its folder or the folder above.

    In the OGLE archive layout (``cep/phot/I/<ID>.dat`` beside ``cep/ident.dat``) the catalogue
    sits two folders up, so ``phot``'s parent is searched too. When one of the tables is the
    data file's own companion (``X_lc_chunk`` with ``X_metadata_chunk``; ``X_PHOT`` with
    ``X_HEAD``), only that one is returned, so that a folder of many chunks does not join every
    chunk's metadata to every object.
    """
    folder = fileio.dirname(data_path)
    parent = fileio.dirname(folder)
    folders = [folder, parent]
    if fileio.basename(parent) == "phot":
        folders.append(fileio.dirname(parent))
    near = [c for c in candidates if fileio.dirname(c) in folders]
    key = _companion_key(fileio.basename(data_path), ("lc", "phot", "PHOT", "detections"))
    paired = [c for c in near
              if _companion_key(fileio.basename(c), ("metadata", "meta", "HEAD", "head")) == key]
    if paired:
        return paired
    # Nearest first: the data file's own folder, then its parent (then OGLE's catalogue).
    return sorted(near, key=lambda c: (folders.index(fileio.dirname(c)), c))


def _companion_key(name: str, words: tuple[str, ...]) -> str:
    stem = name.split(".", 1)[0]
    parts = [p for p in stem.replace("-", "_").split("_") if p not in words]
    return "_".join(parts) + "|" + os.path.splitext(name)[1]
