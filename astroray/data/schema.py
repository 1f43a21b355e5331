"""Canonical Arrow schemas for light curves, spectra, stamps and errors.

Every reader turns its survey's own format into one of these schemas, and every later stage
(rendering, models, catalogues) reads only these. Conventions fixed here:

* time: MJD (float64). Readers convert JD and other epochs at the boundary.
* light-curve values: either ``mag`` (AB or the survey's native/instrumental magnitude, say which
  in ``meta``) or ``flux`` in nJy (AB zero point 31.4); the other column is null. ``err`` is the
  1-sigma uncertainty in the same unit. Points are sorted by time; non-finite points are dropped
  and counted in ``n_dropped``.
* spectra: vacuum wavelength in Angstrom (float32), flux in the survey's unit (named in
  ``meta.flux_unit``), inverse variance, and an integer bit mask (0 = good). Pixels whose flux or
  ivar is not finite keep their place on the grid but get flux 0, ivar 0 and the
  :data:`MASK_NONFINITE` bit; they are counted in ``n_bad``.
* stamps: three cutouts of equal shape, stored row-major as flat float32 lists with ``height``
  and ``width``.
* ``label`` holds the canonical class name of :mod:`astroray.data.taxonomy` (labels it does not
  know are kept as given) and ``label_raw`` the label as the source spelled it.
* ``ra``/``dec`` (degrees, ICRS) and, for light curves, ``period`` (days, a catalogue period)
  are filled where the format or a label table beside it gives them, else null. Readers may
  keep the same values in ``meta`` too.
* every field's unit (an astropy unit string: ``d``, ``mag``, ``nJy``, ``Angstrom``, ``deg``)
  and description are in the Arrow field metadata (``unit``, ``description``; see
  :func:`field_unit`); type checks ignore the metadata, so tables read back from Parquet
  without it still validate.
* ``meta`` is a JSON object encoded as a string, so that datasets from different surveys share
  one Arrow schema and can be concatenated, written and read back without schema unification.

Variable-length lists are never padded on disk; windowing and padding happen in batch transforms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = [
    "ERROR_SCHEMA",
    "KINDS",
    "LIGHT_CURVE_SCHEMA",
    "MASK_NONFINITE",
    "SPECTRUM_SCHEMA",
    "STAMP_SCHEMA",
    "SchemaError",
    "conform",
    "empty_table",
    "error_table",
    "field_unit",
    "schema_for",
    "table_from_records",
    "validate_record",
    "validate_table",
]

#: Mask bit set by readers on spectrum pixels whose flux or ivar was NaN/inf (bit 30 is unused
#: by the SDSS and LAMOST and_mask/or_mask definitions).
MASK_NONFINITE = 1 << 30

def _field(name: str, type_: pa.DataType, *, unit: str | None = None, doc: str | None = None,
           nullable: bool = True) -> pa.Field:
    """A schema field whose Arrow metadata records its unit (an astropy unit string) and role.

    Readers of our Parquet (pyarrow, Ray Data, astropy via :mod:`astroray.data.astropy_io`)
    see the unit beside the column; the metadata does not take part in type checks.
    """
    metadata = {}
    if unit is not None:
        metadata["unit"] = unit
    if doc is not None:
        metadata["description"] = doc
    return pa.field(name, type_, nullable=nullable, metadata=metadata or None)


_common = [
    _field("object_id", pa.string(), nullable=False, doc="the survey's object identifier"),
    _field("survey", pa.string(), nullable=False, doc="survey (or data set) name"),
    _field("source", pa.string(), doc="file the record was read from"),
]

_LABELS = [
    _field("label", pa.string(), doc="canonical class name (astroray/data/taxonomy.yaml); "
                                     "unknown labels kept as given"),
    _field("label_raw", pa.string(), doc="the label as the source spelled it"),
]

#: ICRS position in degrees, filled where the format (or a label table) gives one.
_POSITION = [
    _field("ra", pa.float64(), unit="deg", doc="right ascension (ICRS)"),
    _field("dec", pa.float64(), unit="deg", doc="declination (ICRS)"),
]

LIGHT_CURVE_SCHEMA = pa.schema(
    [
        *_common,
        _field("time", pa.list_(pa.float64()), unit="d", doc="MJD (time scale as the survey's)"),
        _field("band", pa.list_(pa.string()), doc="band (filter) name per point"),
        _field("mag", pa.list_(pa.float32()), unit="mag", doc="magnitude (system in meta)"),
        _field("flux", pa.list_(pa.float32()), unit="nJy", doc="flux density (AB zp 31.4)"),
        _field("err", pa.list_(pa.float32()),
               doc="1-sigma uncertainty in the unit of mag or flux, whichever is filled"),
        *_LABELS,
        _field("redshift", pa.float64(), unit="", doc="redshift"),
        _field("period", pa.float64(), unit="d", doc="catalogue period"),
        *_POSITION,
        _field("n_dropped", pa.int32(), doc="points dropped as non-finite or flagged"),
        _field("meta", pa.string(), doc="JSON object of survey-specific fields"),
    ]
)

SPECTRUM_SCHEMA = pa.schema(
    [
        *_common,
        _field("wavelength", pa.list_(pa.float32()), unit="Angstrom", doc="vacuum wavelength"),
        _field("flux", pa.list_(pa.float32()), doc="flux density, unit in meta.flux_unit"),
        _field("ivar", pa.list_(pa.float32()), doc="inverse variance of flux (unit flux^-2)"),
        _field("mask", pa.list_(pa.int32()), doc="bit mask, 0 = good"),
        _field("z", pa.float64(), unit="", doc="redshift"),
        _field("z_err", pa.float64(), unit="", doc="redshift uncertainty"),
        *_LABELS,
        _field("subclass", pa.string(), doc="the survey's subclass"),
        *_POSITION,
        _field("n_bad", pa.int32(), doc="pixels flagged as non-finite"),
        _field("meta", pa.string(), doc="JSON object of survey-specific fields"),
    ]
)

STAMP_SCHEMA = pa.schema(
    [
        *_common,
        _field("stamp_id", pa.string(), doc="alert (candidate) id"),
        _field("height", pa.int32(), unit="pix", doc="cutout rows"),
        _field("width", pa.int32(), unit="pix", doc="cutout columns"),
        _field("science", pa.list_(pa.float32()), doc="row-major science cutout"),
        _field("reference", pa.list_(pa.float32()), doc="row-major reference cutout"),
        _field("difference", pa.list_(pa.float32()), doc="row-major difference cutout"),
        *_LABELS,
        _field("rb", pa.float32(), doc="real/bogus score of the survey"),
        _field("drb", pa.float32(), doc="deep real/bogus score of the survey"),
        *_POSITION,
        _field("meta", pa.string(), doc="JSON object of survey-specific fields"),
    ]
)

#: One row per record (or file) that could not be read or processed; ``kind`` is the record
#: kind that was being produced (null when the file's kind could not be told).
ERROR_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("object_id", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("error", pa.string()),
        pa.field("kind", pa.string()),
    ]
)

KINDS: dict[str, pa.Schema] = {
    "lightcurve": LIGHT_CURVE_SCHEMA,
    "spectrum": SPECTRUM_SCHEMA,
    "stamp": STAMP_SCHEMA,
}


class SchemaError(ValueError):
    """A table or record does not conform to a canonical schema.

    Attributes:
        object_id: the offending object, when known.
        field: the offending column.
    """

    def __init__(self, message: str, *, object_id: str | None = None, field: str | None = None):
        where = []
        if object_id is not None:
            where.append(f"object {object_id!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.object_id = object_id
        self.field = field


def schema_for(kind: str) -> pa.Schema:
    """Return the canonical schema of a record kind (``lightcurve``, ``spectrum``, ``stamp``)."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(KINDS)}") from None


def field_unit(kind: str, name: str) -> str | None:
    """The unit of a canonical column (an astropy unit string; "" = dimensionless), or None.

    Columns without a fixed unit (``err``, spectrum ``flux``/``ivar``) give None.
    """
    metadata = schema_for(kind).field(name).metadata or {}
    unit = metadata.get(b"unit")
    return None if unit is None else unit.decode()


def empty_table(kind: str) -> pa.Table:
    """An empty table of the canonical schema of ``kind``."""
    return schema_for(kind).empty_table()


def error_table(rows: list[Mapping[str, Any]]) -> pa.Table:
    """Build an errors table from dicts with keys source, object_id, stage, error, kind."""
    cols = {name: [r.get(name) for r in rows] for name in ERROR_SCHEMA.names}
    return pa.table(cols, schema=ERROR_SCHEMA)


def _meta_json(meta: Any) -> str | None:
    if meta is None or isinstance(meta, str):
        return meta
    return json.dumps(meta, default=_json_default, allow_nan=False, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _clean_meta(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Replace non-finite floats by None so that the JSON stays standard."""
    if meta is None:
        return None
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[str(key)] = value
    return out


_LIST_COLUMNS = {
    "lightcurve": ("time", "band", "mag", "flux", "err"),
    "spectrum": ("wavelength", "flux", "ivar", "mask"),
    "stamp": ("science", "reference", "difference"),
}


def validate_record(record: Mapping[str, Any], kind: str) -> None:
    """Check one record (a dict of scalars and 1-D arrays) against the canonical conventions.

    Args:
        record: the record, as readers build it before conversion to Arrow.
        kind: ``lightcurve``, ``spectrum`` or ``stamp``.

    Raises:
        SchemaError: naming the object and the field that is wrong.
    """
    schema = schema_for(kind)
    oid = record.get("object_id")
    if oid is None or str(oid) == "":
        raise SchemaError("missing or empty object_id", field="object_id")
    oid = str(oid)
    if not record.get("survey"):
        raise SchemaError("missing survey", object_id=oid, field="survey")
    unknown = set(record) - set(schema.names)
    if unknown:
        raise SchemaError(f"unknown columns {sorted(unknown)}", object_id=oid)
    if kind == "lightcurve":
        _validate_light_curve(record, oid)
    elif kind == "spectrum":
        _validate_spectrum(record, oid)
    else:
        _validate_stamp(record, oid)
    _validate_scalars(record, oid)


def _validate_scalars(record: Mapping[str, Any], oid: str) -> None:
    """Position in range, period positive: a reader that fills them must fill them right."""
    for name, lo, hi in (("ra", 0.0, 360.0), ("dec", -90.0, 90.0)):
        value = record.get(name)
        if value is None:
            continue
        value = float(value)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise SchemaError(f"{value} is outside [{lo:g}, {hi:g}] degrees", object_id=oid,
                              field=name)
    period = record.get("period")
    if period is not None and not (math.isfinite(float(period)) and float(period) > 0):
        raise SchemaError(f"must be a positive number of days, got {period}", object_id=oid,
                          field="period")


def _arr(record: Mapping[str, Any], name: str, oid: str) -> np.ndarray:
    value = record.get(name)
    if value is None:
        raise SchemaError("is missing", object_id=oid, field=name)
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise SchemaError(f"must be 1-D, got shape {arr.shape}", object_id=oid, field=name)
    return arr


def _finite(arr: np.ndarray, name: str, oid: str) -> None:
    if arr.dtype.kind not in "fiu":
        raise SchemaError(f"must be numeric, got dtype {arr.dtype}", object_id=oid, field=name)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise SchemaError(
            f"{int(bad.sum())} non-finite values (first at index {int(np.argmax(bad))})",
            object_id=oid,
            field=name,
        )


def _validate_light_curve(record: Mapping[str, Any], oid: str) -> None:
    has_mag = record.get("mag") is not None
    has_flux = record.get("flux") is not None
    if has_mag == has_flux:
        raise SchemaError(
            "exactly one of 'mag' and 'flux' must be given", object_id=oid, field="mag/flux"
        )
    value_name = "mag" if has_mag else "flux"
    time = _arr(record, "time", oid)
    if time.size == 0:
        raise SchemaError("light curve is empty (no valid points)", object_id=oid, field="time")
    n = time.size
    for name in ("band", value_name, "err"):
        arr = _arr(record, name, oid)
        if arr.size != n:
            raise SchemaError(f"has {arr.size} entries but time has {n}", object_id=oid, field=name)
    for name in ("time", value_name, "err"):
        _finite(np.asarray(record[name]), name, oid)
    if np.any(np.diff(time) < 0):
        raise SchemaError("times are not sorted", object_id=oid, field="time")
    if np.any(np.asarray(record["err"]) < 0):
        raise SchemaError("negative uncertainties", object_id=oid, field="err")
    bands = np.asarray(record["band"])
    if bands.dtype.kind not in "UO" or any(not b for b in bands.tolist()):
        raise SchemaError("bands must be non-empty strings", object_id=oid, field="band")


def _validate_spectrum(record: Mapping[str, Any], oid: str) -> None:
    wave = _arr(record, "wavelength", oid)
    if wave.size < 2:
        raise SchemaError(f"needs at least 2 pixels, got {wave.size}", object_id=oid,
                          field="wavelength")
    for name in ("flux", "ivar", "mask"):
        arr = _arr(record, name, oid)
        if arr.size != wave.size:
            raise SchemaError(
                f"has {arr.size} entries but wavelength has {wave.size}", object_id=oid, field=name
            )
    for name in ("wavelength", "flux", "ivar"):
        _finite(np.asarray(record[name]), name, oid)
    if np.any(np.diff(wave) <= 0):
        raise SchemaError("wavelengths are not strictly increasing", object_id=oid,
                          field="wavelength")
    if wave[0] <= 0:
        raise SchemaError("wavelengths must be positive (Angstrom)", object_id=oid,
                          field="wavelength")
    if np.any(np.asarray(record["ivar"]) < 0):
        raise SchemaError("negative inverse variance", object_id=oid, field="ivar")
    for name in ("z", "z_err"):
        value = record.get(name)
        if value is not None and not math.isfinite(float(value)):
            raise SchemaError(f"is not finite ({value})", object_id=oid, field=name)


def _validate_stamp(record: Mapping[str, Any], oid: str) -> None:
    height, width = record.get("height"), record.get("width")
    if not height or not width or int(height) <= 0 or int(width) <= 0:
        raise SchemaError(f"invalid stamp shape ({height}, {width})", object_id=oid,
                          field="height/width")
    size = int(height) * int(width)
    for name in _LIST_COLUMNS["stamp"]:
        arr = _arr(record, name, oid)
        if arr.size != size:
            raise SchemaError(
                f"has {arr.size} pixels, expected height*width = {size}", object_id=oid, field=name
            )


def table_from_records(records: list[Mapping[str, Any]], kind: str) -> pa.Table:
    """Convert validated records (dicts of scalars and numpy arrays) to a canonical table.

    Missing optional columns become nulls; ``meta`` dicts are JSON-encoded.
    """
    schema = schema_for(kind)
    if not records:
        return schema.empty_table()
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    list_cols = set(_LIST_COLUMNS[kind])
    for rec in records:
        for name in schema.names:
            value = rec.get(name)
            if name == "meta":
                value = _meta_json(_clean_meta(value) if isinstance(value, Mapping) else value)
            elif name in list_cols and value is not None:
                value = np.asarray(value)
            columns[name].append(value)
    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.name in list_cols:
            arrays.append(_list_array(values, field.type))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _list_array(values: list[np.ndarray | None], type_: pa.ListType) -> pa.Array:
    """Build a list array from numpy arrays without a Python loop over elements."""
    value_type = type_.value_type
    lengths = np.array([0 if v is None else len(v) for v in values], dtype=np.int64)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    present = [v for v in values if v is not None]
    if pa.types.is_string(value_type):
        flat_values = pa.array(
            np.concatenate([np.asarray(v, dtype=object) for v in present]) if present else [],
            type=value_type,
        )
    else:
        np_type = value_type.to_pandas_dtype()
        flat = (np.concatenate([np.asarray(v, dtype=np_type) for v in present])
                if present else np.empty(0, dtype=np_type))
        flat_values = pa.array(flat, type=value_type)
    mask = pa.array([v is None for v in values], type=pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), flat_values, type=type_,
                                    mask=mask)


def conform(table: pa.Table, kind: str) -> pa.Table:
    """Reorder and cast a table's columns to the canonical schema of ``kind``.

    Missing nullable columns are added as nulls; extra columns are an error.

    Raises:
        SchemaError: when a required column is missing, a column is unknown, or a cast fails.
    """
    schema = schema_for(kind)
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise SchemaError(f"unknown columns {extra} for kind {kind!r}")
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            if column.type != field.type:
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaError(f"cannot cast {column.type} to {field.type}: {exc}",
                                      field=field.name) from None
            arrays.append(column)
        elif field.nullable:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
        else:
            raise SchemaError(f"required column missing for kind {kind!r}", field=field.name)
    return pa.Table.from_arrays(arrays, schema=schema)


def validate_table(table: pa.Table, kind: str) -> None:
    """Check that a table conforms to the canonical schema of ``kind``, row by row.

    Column types must match exactly; each row is then checked with :func:`validate_record`.

    Raises:
        SchemaError: naming the first offending object and field.
    """
    schema = schema_for(kind)
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise SchemaError(f"missing columns {missing} for kind {kind!r}")
    for field in schema:
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise SchemaError(f"has type {actual}, expected {field.type}", field=field.name)
    nulls = table.column("object_id").null_count
    if nulls:
        raise SchemaError(f"{nulls} rows without object_id", field="object_id")
    list_cols = _LIST_COLUMNS[kind]
    pylists = {name: table.column(name) for name in list_cols}
    scalars = [n for n in schema.names if n not in list_cols]
    scalar_rows = table.select(scalars).to_pylist()
    for i, row in enumerate(scalar_rows):
        rec = dict(row)
        for name in list_cols:
            cell = pylists[name][i]
            rec[name] = None if not cell.is_valid else cell.values.to_numpy(zero_copy_only=False)
        if isinstance(rec.get("meta"), str):
            try:
                json.loads(rec["meta"])
            except json.JSONDecodeError as exc:
                raise SchemaError(f"is not valid JSON: {exc}", object_id=rec["object_id"],
                                  field="meta") from None
        validate_record(rec, kind)
