from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy import units as u

from astroray.data.schema import (
    KINDS,
    LIGHT_CURVE_SCHEMA,
    SchemaError,
    conform,
    field_unit,
    schema_for,
    table_from_records,
    validate_record,
    validate_table,
)


def _lc(**changes):
    rec = {"object_id": "obj-1", "survey": "test", "time": np.array([1.0, 2.0, 3.0]),
           "band": np.array(["g", "r", "g"]), "mag": np.array([15.0, 15.5, 15.2]),
           "err": np.array([0.1, 0.1, 0.2]), "meta": {"period": 0.5}}
    rec.update(changes)
    return rec


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"mag": np.array([15.0, np.nan, 15.2])}, "mag", "1 non-finite"),
        ({"err": np.array([0.1, 0.1])}, "err", "has 2 entries but time has 3"),
        ({"time": np.array([3.0, 2.0, 1.0])}, "time", "not sorted"),
        ({"flux": np.array([1.0, 2.0, 3.0])}, "mag/flux", "exactly one"),
        ({"time": np.array([]), "band": np.array([]), "mag": np.array([]), "err": np.array([])},
         "time", "empty"),
        ({"err": np.array([0.1, -0.1, 0.1])}, "err", "negative"),
    ],
)
def test_record_errors_name_object_and_field(changes, field, message):
    with pytest.raises(SchemaError, match=message) as info:
        validate_record(_lc(**changes), "lightcurve")
    assert info.value.object_id == "obj-1" and info.value.field == field
    assert "obj-1" in str(info.value) and field in str(info.value)


def test_table_round_trip_and_type_check():
    table = table_from_records([_lc(), _lc(object_id="obj-2")], "lightcurve")
    assert table.schema.equals(LIGHT_CURVE_SCHEMA)
    validate_table(table, "lightcurve")
    assert table.column("flux").null_count == 2
    assert table.column("meta")[0].as_py() == '{"period":0.5}'
    wrong = table.set_column(table.schema.get_field_index("time"), "time",
                             table.column("time").cast(pa.list_(pa.float32())))
    with pytest.raises(SchemaError, match="field 'time': has type list<item: float>"):
        validate_table(wrong, "lightcurve")


def test_validate_table_finds_the_bad_row():
    good = table_from_records([_lc(), _lc(object_id="obj-2")], "lightcurve")
    bad = pa.concat_tables([good, table_from_records(
        [_lc(object_id="obj-3", mag=np.array([1.0, 2.0, 3.0]), err=np.array([0.1, 0.1, -1.0]))],
        "lightcurve")])
    with pytest.raises(SchemaError, match="object 'obj-3', field 'err'"):
        validate_table(bad, "lightcurve")


def test_conform_adds_nullable_columns_and_rejects_unknown():
    minimal = pa.table({"object_id": ["a"], "survey": ["s"], "time": [[1.0]], "band": [["g"]],
                        "mag": [[1.0]], "err": [[0.1]]})
    table = conform(minimal, "lightcurve")
    validate_table(table, "lightcurve")
    with pytest.raises(SchemaError, match="unknown columns"):
        conform(minimal.append_column("colour", pa.array([1.0])), "lightcurve")
    with pytest.raises(SchemaError, match="field 'object_id'"):
        conform(minimal.drop_columns(["object_id"]), "lightcurve")


def test_units_and_descriptions_live_in_the_field_metadata():
    expected = {("lightcurve", "time"): "d", ("lightcurve", "mag"): "mag",
                ("lightcurve", "flux"): "nJy", ("lightcurve", "period"): "d",
                ("lightcurve", "ra"): "deg", ("lightcurve", "dec"): "deg",
                ("lightcurve", "redshift"): "", ("spectrum", "wavelength"): "Angstrom",
                ("spectrum", "z"): "", ("spectrum", "ra"): "deg", ("stamp", "dec"): "deg",
                ("lightcurve", "err"): None, ("spectrum", "flux"): None}
    for (kind, name), unit in expected.items():
        assert field_unit(kind, name) == unit, (kind, name)
    for kind in KINDS:
        for field in schema_for(kind):
            text = field_unit(kind, field.name)
            if text is not None:
                u.Unit(text)  # every unit is an astropy unit string
            assert field.metadata[b"description"]
    for kind in KINDS:
        names = schema_for(kind).names
        assert {"label", "label_raw", "ra", "dec"} <= set(names)
    assert "period" in LIGHT_CURVE_SCHEMA.names


def test_metadata_survives_parquet_and_is_not_needed_to_validate(tmp_path):
    table = table_from_records([_lc(ra=10.0, dec=-5.0, period=0.5, label="RRab",
                                    label_raw="ab")], "lightcurve")
    pq.write_table(table, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet")
    assert back.schema.field("ra").metadata == LIGHT_CURVE_SCHEMA.field("ra").metadata
    validate_table(back, "lightcurve")
    bare = pa.schema([pa.field(f.name, f.type, f.nullable) for f in LIGHT_CURVE_SCHEMA])
    stripped = table.cast(bare)
    assert stripped.schema.field("ra").metadata is None
    validate_table(stripped, "lightcurve")
    assert conform(stripped, "lightcurve").schema.field("ra").metadata[b"unit"] == b"deg"
    assert back.column("period").to_pylist() == [0.5]


@pytest.mark.parametrize(("changes", "field"), [
    ({"ra": 361.0}, "ra"), ({"dec": -91.0}, "dec"), ({"ra": float("nan")}, "ra"),
    ({"period": 0.0}, "period"), ({"period": -1.0}, "period"),
])
def test_positions_and_periods_are_checked(changes, field):
    with pytest.raises(SchemaError) as info:
        validate_record(_lc(**changes), "lightcurve")
    assert info.value.field == field and info.value.object_id == "obj-1"
