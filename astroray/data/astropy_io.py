"""Canonical tables as astropy objects, with the units of the schema's field metadata.

* :func:`to_astropy`: a whole canonical table as an :class:`astropy.table.QTable`, one row per
  object: columns with a unit (``ra``/``dec`` in deg, ``period`` in d, ``redshift``/``z``
  dimensionless) become :class:`~astropy.units.Quantity` columns (nulls as NaN); list columns
  (``time``, ``mag``, ``wavelength``, ...) hold one array per object, a Quantity where the unit
  is known (``err`` takes the unit of ``mag`` or ``flux``, spectrum ``flux`` the unit named in
  ``meta.flux_unit`` when astropy can parse it); ``meta`` is parsed from its JSON.
* :func:`to_timeseries`: one light curve as an :class:`astropy.timeseries.TimeSeries`, its time
  an :class:`astropy.time.Time` in MJD.
* :func:`to_spectrum`: one spectrum as a QTable of ``wavelength`` (Angstrom), ``flux``, ``ivar``
  and ``mask``, with the object's scalars in ``meta`` (a plain table rather than a specutils
  ``Spectrum1D``, so that specutils is not a dependency; ``Spectrum1D(spectral_axis=
  t["wavelength"], flux=t["flux"])`` builds one).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
from astropy import units as u
from astropy.table import Column, QTable
from astropy.time import Time
from astropy.timeseries import TimeSeries

from astroray.data.schema import schema_for

__all__ = ["to_astropy", "to_spectrum", "to_timeseries"]

_LIST_COLUMNS = {
    "lightcurve": ("time", "band", "mag", "flux", "err"),
    "spectrum": ("wavelength", "flux", "ivar", "mask"),
    "stamp": ("science", "reference", "difference"),
}


def _unit(field: pa.Field) -> u.UnitBase | None:
    text = (field.metadata or {}).get(b"unit")
    return None if text is None else u.Unit(text.decode())


def _flux_unit(meta: dict[str, Any]) -> u.UnitBase | None:
    """The unit of a spectrum's flux from ``meta.flux_unit``; None when astropy cannot read it."""
    text = meta.get("flux_unit")
    if not isinstance(text, str):
        return None
    try:
        return u.Unit(text)
    except ValueError:
        return None  # "relative (LAMOST)": no physical unit


def _meta(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: equal-length arrays must not broadcast
        out[i] = v
    return out


def to_astropy(table: pa.Table, kind: str) -> QTable:
    """A canonical table as a QTable with units, one row per object (see the module doc).

    Args:
        table: a canonical table of ``kind`` (e.g. read from our Parquet).
        kind: ``lightcurve``, ``spectrum`` or ``stamp``.
    """
    schema = schema_for(kind)
    list_cols = _LIST_COLUMNS[kind]
    metas = [_meta(m) for m in table.column("meta").to_pylist()]
    out = QTable(meta={"kind": kind})
    for field in schema:
        if field.name not in table.column_names:
            continue
        column = table.column(field.name)
        unit = _unit(field)
        doc = (field.metadata or {}).get(b"description", b"").decode()
        if field.name == "meta":
            out["meta"] = Column(_objects(metas), description=doc)
        elif field.name in list_cols:
            cells = [None if v is None else np.asarray(v) for v in column.to_pylist()]
            cells = [_with_unit(field.name, kind, c, unit, table, i, metas[i])
                     for i, c in enumerate(cells)]
            out[field.name] = Column(_objects(cells), description=doc)
        elif unit is not None:
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            out[field.name] = values * unit
            out[field.name].info.description = doc
        else:
            out[field.name] = Column(column.to_pylist(), description=doc)
    return out


def _with_unit(name: str, kind: str, cell: np.ndarray | None, unit: u.UnitBase | None,
               table: pa.Table, i: int, meta: dict[str, Any]) -> Any:
    if cell is None:
        return None
    if kind == "lightcurve" and name == "err":
        unit = u.nJy if table.column("mag")[i].as_py() is None else u.mag
    elif kind == "spectrum" and name in ("flux", "ivar"):
        flux_unit = _flux_unit(meta)
        if flux_unit is None:
            return cell
        unit = flux_unit if name == "flux" else flux_unit ** -2
    return cell if unit is None else cell * unit


def _row(table: pa.Table, row: int | str) -> dict[str, Any]:
    if isinstance(row, str):
        ids = table.column("object_id").to_pylist()
        if row not in ids:
            raise KeyError(f"object {row!r} is not in the table")
        row = ids.index(row)
    if not 0 <= row < table.num_rows:
        raise IndexError(f"row {row} is out of range for a table of {table.num_rows} rows")
    return table.slice(row, 1).to_pylist()[0]


def _scalars(rec: dict[str, Any], kind: str, skip: tuple[str, ...]) -> dict[str, Any]:
    """The record's scalar fields for ``meta``, as Quantities where the schema has a unit."""
    schema = schema_for(kind)
    out: dict[str, Any] = {}
    for field in schema:
        if field.name in skip or field.name not in rec:
            continue
        value, unit = rec[field.name], _unit(field)
        if field.name == "meta":
            out["meta"] = _meta(value)
        elif value is not None and unit is not None:
            out[field.name] = value * unit
        else:
            out[field.name] = value
    return out


def to_timeseries(table: pa.Table, row: int | str = 0) -> TimeSeries:
    """One light curve as a TimeSeries: ``time`` (MJD), ``band``, ``mag`` or ``flux``, ``err``.

    Args:
        table: a canonical light-curve table.
        row: the row number or the object id.

    Returns:
        The TimeSeries; its ``meta`` holds the object's scalar columns (``period``, ``ra``,
        ``dec`` and ``redshift`` as Quantities) and the parsed ``meta``.
    """
    rec = _row(table, row)
    is_flux = rec["mag"] is None
    unit = u.nJy if is_flux else u.mag
    value_name = "flux" if is_flux else "mag"
    values = np.asarray(rec[value_name], dtype=np.float64)
    ts = TimeSeries(time=Time(np.asarray(rec["time"], dtype=np.float64), format="mjd"),
                    data={"band": np.asarray(rec["band"], dtype=str),
                          value_name: values * unit,
                          "err": np.asarray(rec["err"], dtype=np.float64) * unit})
    ts.meta.update(_scalars(rec, "lightcurve", _LIST_COLUMNS["lightcurve"]))
    return ts


def to_spectrum(table: pa.Table, row: int | str = 0) -> QTable:
    """One spectrum as a QTable of ``wavelength`` (Angstrom), ``flux``, ``ivar`` and ``mask``.

    ``flux`` carries the unit of ``meta.flux_unit`` when astropy can parse it (SDSS: 1e-17
    erg / (s cm2 Angstrom)) and ``ivar`` its inverse square; otherwise both are plain numbers.

    Args:
        table: a canonical spectrum table.
        row: the row number or the object id.
    """
    rec = _row(table, row)
    meta = _meta(rec.get("meta"))
    flux_unit = _flux_unit(meta)
    flux = np.asarray(rec["flux"], dtype=np.float64)
    ivar = np.asarray(rec["ivar"], dtype=np.float64)
    out = QTable(meta=_scalars(rec, "spectrum", _LIST_COLUMNS["spectrum"]))
    out["wavelength"] = np.asarray(rec["wavelength"], dtype=np.float64) * u.AA
    out["flux"] = flux * flux_unit if flux_unit is not None else flux
    out["ivar"] = ivar * flux_unit ** -2 if flux_unit is not None else ivar
    out["mask"] = np.asarray(rec["mask"], dtype=np.int32)
    return out
