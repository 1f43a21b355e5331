"""astroray's own canonical Parquet datasets (light curves, spectra or stamps).

The record kind is recognised from the columns. Each row is checked like any reader's output,
so a hand-edited or foreign file with a bad row yields an error row for that object only.

:func:`write_parquet`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from astroray.data import fileio
from astroray.data.formats import (
    FileHead,
    ReadFailure,
    ReadOptions,
    ReadUnit,
    register_reader,
    register_writer,
)
from astroray.data.readers._writing import (
    Tables,
    _folder,
    _tables,
)
from astroray.data.schema import SchemaError, conform

_MARKERS = {"lightcurve": "time", "spectrum": "wavelength", "stamp": "science"}
_LIST_COLUMNS = {"lightcurve": ("time", "band", "mag", "flux", "err"),
                 "spectrum": ("wavelength", "flux", "ivar", "mask"),
                 "stamp": ("science", "reference", "difference")}


def _kind_of(names: set[str]) -> str | None:
    if not {"object_id", "survey"} <= names:
        return None
    return next((k for k, marker in _MARKERS.items() if marker in names), None)


def _sniff(fh: FileHead) -> bool:
    if fh.head[:4] != b"PAR1":
        return False
    try:
        fs, inner = fileio.resolve(fh.path)
        names = set(pq.read_schema(inner, filesystem=fs).names)
    except Exception:  # noqa: BLE001 - not a readable Parquet file: not ours
        return False
    return _kind_of(names) is not None


def _file_kind(path: str) -> str:
    fs, inner = fileio.resolve(path)
    kind = _kind_of(set(pq.read_schema(inner, filesystem=fs).names))
    if kind is None:
        raise ValueError("Parquet file is not a canonical astroray table")
    return kind


@register_reader(
    "parquet",
    kinds=("lightcurve", "spectrum", "stamp"),
    sniff=_sniff,
    file_kind=_file_kind,
    description="astroray canonical Parquet (any record kind)",
)
def read_parquet(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read canonical rows back as records."""
    for path in unit.paths:
        name = fileio.basename(path)
        table = pq.read_table(io.BytesIO(fileio.read_bytes(path)))
        found = _kind_of(set(table.column_names))
        if found != kind:
            yield ReadFailure(path, None, f"{name}: holds {found or 'unknown'} records, "
                                          f"not {kind}")
            continue
        try:
            table = conform(table, kind)
        except SchemaError as exc:
            yield ReadFailure(path, None, f"{name}: {exc}")
            continue
        list_cols = _LIST_COLUMNS[kind]
        scalars = table.drop_columns(list(list_cols)).to_pylist()
        lists = {c: table.column(c) for c in list_cols}
        for i, row in enumerate(scalars):
            for col in list_cols:
                cell = lists[col][i]
                row[col] = (cell.values.to_numpy(zero_copy_only=False)
                            if cell.is_valid else None)
            if options.survey:
                row["survey"] = options.survey
            meta = row.get("meta")
            if isinstance(meta, str):
                try:
                    row["meta"] = json.loads(meta)
                except json.JSONDecodeError as exc:
                    yield ReadFailure(path, row["object_id"], f"{name}: meta is not JSON: {exc}")
                    continue
            yield row


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


@register_writer("parquet", kinds=("lightcurve", "spectrum", "stamp"))
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
