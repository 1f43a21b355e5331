"""Label and metadata tables that sit beside survey data and are joined to objects by id.

A label table is a CSV or Parquet file with an id column and no time column: ``periods.csv``
(Stripe 82 RR Lyrae: ``Num, Type, Per``), ``bts.csv`` (ZTF BTS: ``ZTFID, ..., type, redshift``),
``*_labels.csv`` (ALeRCE: ``objectId, classALeRCE``), the ELAsTiCC metadata Parquet (index
``SNID``, ``REDSHIFT_HELIO``, host columns), or any user file given with ``--labels``. Column
roles are recognised by name; every other column goes into the object's ``meta``.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from astroray.data import _io

__all__ = ["LabelRow", "LabelTable", "is_label_table", "load_label_table"]

ID_ALIASES = ("object_id", "objectId", "oid", "ZTFID", "SNID", "snid", "Num", "stamp_id",
              "candid", "OBSID", "obsid", "id", "ID", "name", "Name")
LABEL_ALIASES = ("label", "class", "classALeRCE", "Type", "type", "CLASS", "TRUE_CLASS",
                 "true_class", "target", "sntype", "SNTYPE")
REDSHIFT_ALIASES = ("redshift", "REDSHIFT", "z", "Z", "REDSHIFT_HELIO", "redshift_helio",
                    "zspec", "ZSPEC")
PERIOD_ALIASES = ("period", "Period", "Per", "PERIOD", "P")
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


def is_label_table(path: str, head: bytes) -> bool:
    """Sniff whether a file is a label/metadata table (CSV or Parquet) rather than data."""
    if head[:4] == b"PAR1":
        try:
            columns = _parquet_columns(path)
        except Exception:  # noqa: BLE001 - an unreadable file is not a label table
            return False
        return _looks_like_labels(columns)
    first = first_line(head)
    if "," not in first or first.startswith("#"):
        return False
    return _looks_like_labels([c.strip() for c in first.split(",")])


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
    fs, inner = _io.resolve(path)
    return list(pq.read_schema(inner, filesystem=fs).names)


@dataclass(frozen=True)
class LabelRow:
    """What a label table knows about one object."""

    label: str | None
    redshift: float | None
    meta: dict[str, Any]


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
                f"{_io.basename(path)}: no id column (expected one of {', '.join(ID_ALIASES)})"
            )
        self.label_column = _first(columns, LABEL_ALIASES)
        self.redshift_column = _first(columns, REDSHIFT_ALIASES)
        self.period_column = _first(columns, PERIOD_ALIASES)
        ids = frame[self.id_column].astype(str).str.strip()
        self._rows: dict[str, int] = {}
        for i, oid in enumerate(ids.tolist()):
            self._rows.setdefault(oid, i)
        self._records = frame.to_dict("records")

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
            label = None if _missing(value) else str(value).strip()
        redshift = None
        if self.redshift_column is not None:
            redshift = _to_float(rec[self.redshift_column])
            if redshift is not None and redshift <= REDSHIFT_SENTINEL:
                redshift = None
        meta: dict[str, Any] = {}
        for key, value in rec.items():
            if key in (self.id_column, self.label_column, self.redshift_column):
                continue
            if key == self.period_column:
                key = "period"
            meta[key] = None if _missing(value) else _plain(value)
        return LabelRow(label=label, redshift=redshift, meta=meta)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return not math.isfinite(float(value))
    return isinstance(value, str) and value.strip() in ("", "-", "nan", "NaN", "null", "None")


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
    fs, inner = _io.resolve(path)
    info = fs.get_file_info(inner)
    return _load_cached(path, info.size, info.mtime_ns)


@lru_cache(maxsize=32)
def _load_cached(path: str, size: int | None, mtime_ns: int | None) -> LabelTable:
    data = _io.read_bytes(path)
    if data[:4] == b"PAR1":
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
        index_names = [n for n in frame.index.names if n is not None]
        if index_names:
            frame = frame.reset_index()
    else:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        id_column = _first([str(c) for c in frame.columns], ID_ALIASES)
        # Ids stay text (zero-padded ids must match file names); other columns become numbers
        # where every non-empty value is one.
        for column in frame.columns:
            if column != id_column:
                frame[column] = _numeric_if_possible(frame[column])
    return LabelTable(path, frame)


def _numeric_if_possible(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column.replace({"": None, "-": None}), errors="coerce")
    non_empty = column.str.strip().isin(["", "-"]) == False  # noqa: E712 - elementwise
    if converted[non_empty].notna().all():
        return converted
    return column


def beside(data_path: str, candidates: list[str]) -> list[str]:
    """Label tables that sit beside a data file: in its folder or the folder above.

    When one of them is the data file's own companion (``X_lc_chunk`` with
    ``X_metadata_chunk``; ``X_PHOT`` with ``X_HEAD``), only that one is returned, so that a
    folder of many chunks does not join every chunk's metadata to every object.
    """
    folder = _io.dirname(data_path)
    parent = _io.dirname(folder)
    near = [c for c in candidates if _io.dirname(c) in (folder, parent)]
    key = _companion_key(_io.basename(data_path), ("lc", "phot", "PHOT", "detections"))
    paired = [c for c in near
              if _companion_key(_io.basename(c), ("metadata", "meta", "HEAD", "head")) == key]
    if paired:
        return paired
    # Nearest first: the data file's own folder, then its parent.
    return sorted(near, key=lambda c: (_io.dirname(c) != folder, c))


def _companion_key(name: str, words: tuple[str, ...]) -> str:
    stem = name.split(".", 1)[0]
    parts = [p for p in stem.replace("-", "_").split("_") if p not in words]
    return "_".join(parts) + "|" + os.path.splitext(name)[1]
