"""The OGLE-III/IV and ATLAS forced-photometry readers and writers.

The fixtures under tests/fixtures/{ogle,atlas} are small hand-written files in the surveys'
formats (OGLE: ``HJD-2450000 mag err`` photometry, ``ident.dat`` and ``cepF.dat``-style
catalogues; ATLAS: the forced-photometry server's ``###MJD ...`` table).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from astroray.data import synthetic as syn
from astroray.data.readers.atlas import write_atlas
from astroray.data.readers.ogle import write_ogle
from astroray.data.registry import LABELS, list_formats, read_files, sniff_file
from astroray.data.schema import validate_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OGLE = FIXTURES / "ogle"
ATLAS = FIXTURES / "atlas"


def _read(path: Path, **kwargs):
    data, errors = read_files(str(path), **kwargs)
    assert errors.num_rows == 0, errors.to_pylist()
    validate_table(data, "lightcurve")
    return data


def _rows(table) -> dict[str, dict]:
    return {r["object_id"]: r for r in table.to_pylist()}


def test_both_readers_are_registered():
    assert {"ogle", "atlas"} <= set(list_formats())


@pytest.mark.parametrize(("name", "expected"), [
    ("ogle/OGLE-LMC-CEP-0002.I.dat", "ogle"), ("ogle/OGLE-LMC-CEP-0002.V.dat", "ogle"),
    ("ogle/ident.dat", LABELS), ("ogle/cepF.dat", LABELS), ("ogle/cep1O.dat", LABELS),
    ("atlas/SN2019abc.txt", "atlas"),
])
def test_sniffing(name, expected):
    assert sniff_file(str(FIXTURES / name)) == expected


def _ogle_truth(band: str) -> np.ndarray:
    return np.loadtxt(OGLE / f"OGLE-LMC-CEP-0002.{band}.dat")


def _check_ogle_star(rec: dict) -> None:
    assert rec["object_id"] == "OGLE-LMC-CEP-0002" and rec["survey"] == "ogle"
    times, mags = [], []
    for band in ("I", "V"):
        raw = _ogle_truth(band)
        good = np.isfinite(raw[:, 1]) & (raw[:, 1] < 90)
        times.append(raw[good, 0] + 2450000.0 - 2400000.5)  # HJD-2450000 -> MJD
        mags.append(raw[good, 1])
    order = np.argsort(np.concatenate(times), kind="stable")
    np.testing.assert_allclose(rec["time"], np.concatenate(times)[order], rtol=0, atol=1e-9)
    np.testing.assert_allclose(rec["mag"], np.concatenate(mags)[order], atol=1e-6)
    assert rec["n_dropped"] == 2  # the 99.999 / 9.999 sentinel and the NaN of the I file
    assert rec["band"].count("V") == 4
    # cepF.dat (label "cepF" and the period) and ident.dat (position) are both joined.
    assert rec["label"] == "DCEP_F" and rec["label_raw"] == "cepF"
    assert rec["period"] == pytest.approx(3.1179375)
    where = SkyCoord("04:32:32.04", "-69:01:51.5", unit=(u.hourangle, u.deg))
    assert rec["ra"] == pytest.approx(where.ra.deg, abs=1e-9)
    assert rec["dec"] == pytest.approx(where.dec.deg, abs=1e-9)
    meta = json.loads(rec["meta"])
    assert meta["ogle_type"] == "CEP" and meta["ogle_field"] == "LMC"
    assert meta["time_system"] == "HJD" and meta["ogle_mode"] == "F"


def test_ogle_files_side_by_side():
    data = _read(OGLE)
    assert data.num_rows == 1  # CEP-0003 is only in the catalogues
    _check_ogle_star(data.to_pylist()[0])


def test_ogle_archive_tree_phot_band_folders(tmp_path):
    root = tmp_path / "cep"
    for band in ("I", "V"):
        (root / "phot" / band).mkdir(parents=True)
        shutil.copy(OGLE / f"OGLE-LMC-CEP-0002.{band}.dat",
                    root / "phot" / band / "OGLE-LMC-CEP-0002.dat")
    for name in ("ident.dat", "cepF.dat", "cep1O.dat"):
        shutil.copy(OGLE / name, root)
    data = _read(root)
    assert data.num_rows == 1
    _check_ogle_star(data.to_pylist()[0])


def test_ogle_ident_alone_gives_mode_label_and_position(tmp_path):
    for name in ("OGLE-LMC-CEP-0002.I.dat", "ident.dat"):
        shutil.copy(OGLE / name, tmp_path)
    (rec,) = _read(tmp_path).to_pylist()
    assert rec["label"] == "DCEP_F" and rec["label_raw"] == "CEP F" and rec["period"] is None
    assert rec["ra"] == pytest.approx(68.1335, abs=1e-4)


def test_ogle_malformed_file_is_one_error_naming_it(tmp_path):
    bad = tmp_path / "OGLE-LMC-CEP-0099.I.dat"
    bad.write_text("2166.82170 15.291 0.006\n2172.79355 15.172\n")
    data, errors = read_files(str(bad))
    rows = errors.to_pylist()
    assert data.num_rows == 0 and len(rows) == 1, rows
    assert bad.name in rows[0]["error"] and "malformed OGLE photometry" in rows[0]["error"]
    assert rows[0]["object_id"] == "OGLE-LMC-CEP-0099"


def test_ogle_full_hjd_is_also_read(tmp_path):
    path = tmp_path / "OGLE-BLG-RRLYR-00001.I.dat"
    path.write_text("2452166.82170 15.291 0.006\n2452167.80000 15.300 0.006\n")
    (rec,) = _read(path).to_pylist()
    assert rec["time"][0] == pytest.approx(2452166.82170 - 2400000.5)


def test_atlas_forced_photometry():
    (rec,) = _read(ATLAS).to_pylist()
    raw = pd.read_csv(ATLAS / "SN2019abc.txt", sep=r"\s+")
    raw = raw.rename(columns={"###MJD": "MJD"})
    good = (raw["err"] == 0) & np.isfinite(raw["duJy"].astype(float))
    assert rec["object_id"] == "SN2019abc" and rec["survey"] == "atlas"
    assert rec["n_dropped"] == int((~good).sum()) == 2  # err code 3, and a NaN error
    assert rec["mag"] is None
    np.testing.assert_allclose(rec["time"], raw.loc[good, "MJD"])
    np.testing.assert_allclose(rec["flux"], raw.loc[good, "uJy"] * 1000.0)  # uJy -> nJy
    np.testing.assert_allclose(rec["err"], raw.loc[good, "duJy"].astype(float) * 1000.0)
    assert rec["band"] == raw.loc[good, "F"].tolist()
    assert min(rec["flux"]) < 0  # difference fluxes keep their sign
    assert rec["ra"] == pytest.approx(254.07750) and rec["dec"] == pytest.approx(-10.80611)
    assert json.loads(rec["meta"])["n_err_flagged"] == 1


@pytest.mark.parametrize(("text", "problem"), [
    ("MJD m dm\n58541.6 18.5 0.1\n", "no '###MJD ...' header"),
    ("###MJD m dm duJy F err\n58541.6 18.5 0.1 14 o 0\n", "lacks column(s) ['uJy']"),
    ("###MJD m dm uJy duJy F err\n58541.6 18.5 0.1 134 14 o 0\n58542.6 18.5 0.1 134\n",
     "row 2 has 4 fields"),
])
def test_atlas_malformed_file_is_one_error_naming_it(tmp_path, text, problem):
    bad = tmp_path / "broken.txt"
    bad.write_text(text)
    data, errors = read_files(str(bad), format="atlas")
    rows = errors.to_pylist()
    assert data.num_rows == 0 and len(rows) == 1, rows
    assert "broken.txt" in rows[0]["error"] and problem in rows[0]["error"], rows[0]


def test_round_trip_ogle(tmp_path):
    table = syn.periodic_variables(12, seed=5, survey="ogle", bands=("I", "V"))
    paths = write_ogle(table, tmp_path)
    assert {Path(p).name for p in paths} >= {"ident.dat", "labels.csv"}
    back = _read(tmp_path).to_pylist()
    by_synthetic = {json.loads(r["meta"])["synthetic_id"]: r for r in back}
    assert len(by_synthetic) == table.num_rows
    for row in table.to_pylist():
        got = by_synthetic[row["object_id"]]
        assert got["object_id"].startswith("OGLE-LMC-") and got["label"] == row["label"]
        assert got["period"] == pytest.approx(row["period"])
        assert -72.5 < got["dec"] < -65.5  # an LMC position, parsed back from ident.dat
        order = np.lexsort((row["time"], row["band"]))
        got_order = np.lexsort((got["time"], got["band"]))
        np.testing.assert_allclose(np.array(got["time"])[got_order],
                                   np.array(row["time"])[order], atol=1e-5)
        np.testing.assert_allclose(np.array(got["mag"])[got_order],
                                   np.array(row["mag"])[order], atol=6e-4)


def test_write_ogle_refuses_other_bands(tmp_path):
    with pytest.raises(ValueError, match=r"write_ogle: .*got \['B', 'R'\]"):
        write_ogle(syn.periodic_variables(2, seed=1, n_points=(5, 9)), tmp_path)


def test_round_trip_atlas(tmp_path):
    stars = syn.periodic_variables(6, seed=2, survey="atlas", bands=("c", "o"))
    sne = syn.transients(6, seed=2, survey="atlas", bands=("c", "o"))
    for name, table in (("stars", stars), ("sne", sne)):
        write_atlas(table, tmp_path / name)
        back = _rows(_read(tmp_path / name))
        for row in table.to_pylist():
            got = back[row["object_id"]]
            assert got["label"] == row["label"] and got["band"] == row["band"]
            np.testing.assert_allclose(got["time"], row["time"], atol=1e-6)
            if row["flux"] is not None:
                expected = np.array(row["flux"], dtype=np.float64)
                assert got["redshift"] == pytest.approx(row["redshift"])
            else:
                expected = 10 ** (-0.4 * (np.array(row["mag"], dtype=np.float64) - 31.4))
                assert got["period"] == pytest.approx(row["period"])
            # The server prints whole microjansky: 500 nJy of rounding at most.
            np.testing.assert_allclose(got["flux"], expected, rtol=1e-6, atol=500.0 + 1e-3)
            assert 0 <= got["ra"] < 360 and -90 <= got["dec"] <= 90


def test_write_atlas_refuses_other_bands(tmp_path):
    with pytest.raises(ValueError, match=r"write_atlas: .*got \['g', 'r'\]"):
        write_atlas(syn.transients(2, seed=1, bands=("g", "r")), tmp_path)
