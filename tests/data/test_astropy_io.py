"""Canonical tables as astropy QTable / TimeSeries, with the units of the schema metadata."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.time import Time
from astropy.timeseries import TimeSeries

from astroray.data import synthetic as syn
from astroray.data.astropy_io import to_astropy, to_spectrum, to_timeseries
from astroray.data.registry import read_files


def test_light_curve_table_units_and_values(real, tmp_path):
    data, _ = read_files(str(real / "ztf_bts_snia"))
    pq.write_table(data, tmp_path / "lcs.parquet")  # through Parquet: metadata may change
    data = pq.read_table(tmp_path / "lcs.parquet")
    table = to_astropy(data, "lightcurve")
    assert len(table) == data.num_rows and table.meta["kind"] == "lightcurve"
    assert table["ra"].unit == u.deg and table["dec"].unit == u.deg
    assert table["period"].unit == u.day and table["redshift"].unit == u.dimensionless_unscaled
    np.testing.assert_allclose(table["ra"].to_value(u.deg), data.column("ra").to_numpy())
    np.testing.assert_allclose(table["redshift"].value, data.column("redshift").to_numpy())
    assert np.all(np.isnan(table["period"].value))  # no periods for supernovae: NaN
    first = data.slice(0, 1).to_pylist()[0]
    assert table["time"][0].unit == u.day and table["mag"][0].unit == u.mag
    assert table["err"][0].unit == u.mag and table["flux"][0] is None
    np.testing.assert_array_equal(table["mag"][0].value, first["mag"])
    assert table["label"][0] == "SNIa" and table["meta"][0]["value_unit"] == "mag"


def test_one_light_curve_as_timeseries(real):
    data, _ = read_files(str(real / "rrlyrae_stripe82"))
    ts = to_timeseries(data, "1013184")
    rec = [r for r in data.to_pylist() if r["object_id"] == "1013184"][0]
    assert isinstance(ts, TimeSeries) and isinstance(ts.time, Time)
    assert ts.time.format == "mjd"
    np.testing.assert_allclose(ts.time.mjd, rec["time"], rtol=0, atol=1e-8)
    assert ts["mag"].unit == u.mag and ts["err"].unit == u.mag
    np.testing.assert_array_equal(ts["mag"].value, np.asarray(rec["mag"], np.float64))
    assert list(ts["band"]) == rec["band"]
    assert ts.meta["period"] == rec["period"] * u.day and ts.meta["label"] == "RRab"
    assert ts.meta["label_raw"] == "ab" and ts.meta["meta"]["value_unit"] == "mag"


def test_flux_light_curve_and_lookup_errors():
    table = syn.transients(3, seed=0)
    ts = to_timeseries(table, 1)
    assert "mag" not in ts.colnames and ts["flux"].unit == u.nJy and ts["err"].unit == u.nJy
    np.testing.assert_array_equal(ts["flux"].value, table.column("flux")[1].values.to_numpy())
    assert ts.meta["redshift"].unit == u.dimensionless_unscaled
    with pytest.raises(KeyError, match="not in the table"):
        to_timeseries(table, "nope")
    with pytest.raises(IndexError):
        to_timeseries(table, 3)


def test_spectra_with_and_without_a_physical_flux_unit(real):
    sdss, _ = read_files(str(real / "sdss"))
    spec = to_spectrum(sdss)
    rec = sdss.to_pylist()[0]
    assert spec["wavelength"].unit == u.AA
    assert spec["flux"].unit == u.Unit("1e-17 erg / (s cm2 Angstrom)")
    assert spec["ivar"].unit == spec["flux"].unit ** -2
    np.testing.assert_array_equal(spec["flux"].value, np.asarray(rec["flux"], np.float64))
    np.testing.assert_allclose(spec["wavelength"].value, rec["wavelength"])
    assert spec.meta["ra"] == rec["ra"] * u.deg and spec.meta["label"] == "GALAXY"
    # The spectrum reaches specutils' conventions: flux per wavelength in cgs units.
    assert spec["flux"].unit.physical_type == (u.erg / u.s / u.cm**2 / u.AA).physical_type
    lamost, _ = read_files(str(real / "lamost"))
    plain = to_spectrum(lamost, 0)
    assert not hasattr(plain["flux"], "unit") or plain["flux"].unit is None
    table = to_astropy(lamost, "spectrum")
    assert table["z"].unit == u.dimensionless_unscaled and table["ra"].unit == u.deg
    assert table["wavelength"][0].unit == u.AA
    assert json.loads(lamost.column("meta")[0].as_py()) == table["meta"][0]


def test_stamps_table(real):
    stamps, _ = read_files(str(real / "ztf_alerts"), kind="stamp")
    table = to_astropy(stamps, "stamp")
    assert table["ra"].unit == u.deg and table["height"].unit == u.pix
    assert table["science"][0].shape == (stamps.column("height")[0].as_py()
                                         * stamps.column("width")[0].as_py(),)
