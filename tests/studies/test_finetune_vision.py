"""The vision fine-tuning study: tiny runs on the session Ray, resume, seeds, groupings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.models import load_model
from astroray.studies.finetune_vision import (
    FinetuneConfig,
    VisionDataset,
    finetune,
    label_grouping,
    write_finetune_results,
)
from astroray.studies.finetune_vision_data import _labels, stratified_split


def test_stratified_split():
    strata = np.repeat(np.arange(3), [50, 20, 10])
    split = stratified_split(strata, 0.15, 0.2, seed=0)
    for s in range(3):
        counts = np.bincount(split[strata == s], minlength=3)
        assert (counts > 0).all()
        assert counts[2] == max(1, round(0.2 * (strata == s).sum()))


def _config(**changes) -> FinetuneConfig:
    base = dict(
        kind="spectra", task="class", model="vit-tiny-spectra", load_pretrained=False,
        datasets=(VisionDataset(name="syn", synthetic=SyntheticSurveyConfig(
            kind="spectra", n=90, format="parquet", seed=4)),),
        epochs=1, batch_size=16, lr=1e-3, baseline_bins=100, baselines=("rf",),
        num_workers=2, cpus_per_worker=0.5, actor_cpus=0.5, name="t")
    return FinetuneConfig(**{**base, **changes})


def test_classification_run_then_resume(ray_session, tmp_path):
    out = tmp_path / "run"
    summary = finetune(_config(), out)
    res = summary["datasets"]["syn"]
    run = res["runs"]["single"]
    assert res["data"]["per_class"] == {"GALAXY": 30, "QSO": 30, "STAR": 30}
    assert sum(res["data"]["splits"].values()) == 90
    assert run["epochs"] == 1 and run["resume"]["start_epoch"] == 0
    test = run["test"]
    assert test["n"] == res["data"]["splits"]["test"] == sum(
        v for v in res["data"]["test_per_class"].values())
    assert 0 <= test["accuracy"] <= 1 and 0 <= test["macro_f1"] <= 1
    assert np.array(test["confusion"]).sum() == test["n"]
    assert run["train_images_per_second"] > 0 and run["inference_images_per_second"] > 0
    # Baselines on the same test objects; RF on resampled flux separates these classes.
    assert res["baselines"]["rf"]["n"] == test["n"] and res["baselines"]["rf"]["macro_f1"] > 0.6
    model = load_model(run["model_dir"])
    assert model.config.labels == ("GALAXY", "QSO", "STAR")
    methods = [r["method"] for r in summary["table"]]
    assert methods == ["vit-tiny-spectra (single)", "rf"]
    # Same output folder, more epochs: the run resumes from its epoch-0 checkpoint.
    again = finetune(_config(epochs=2), out)["datasets"]["syn"]["runs"]["single"]
    assert again["resume"]["start_epoch"] == 1 and again["resume"]["epochs_run"] == [1]
    assert [h["epoch"] for h in again["history"]] == [0, 1]


def test_redshift_run_on_light_workers(ray_session, tmp_path):
    cfg = _config(task="redshift", num_workers=1, name="z")
    summary = finetune(cfg, tmp_path / "z")
    res = summary["datasets"]["syn"]
    run = res["runs"]["single"]
    test = run["test"]
    assert set(test) >= {"r2", "nmad", "outlier_fraction", "n"} and test["n"] > 0
    assert np.isfinite(test["r2"]) and 0 <= test["outlier_fraction"] <= 1
    model = load_model(run["model_dir"])
    assert model.config.task == "regression" and model.config.target_scale > 0.5
    assert res["baselines"]["rf"]["r2"] > 0.0  # RF on the flux learns some redshift
    hist = run["history"][0]
    assert "val_r2" in hist and "val_nmad" in hist
    cfg_json = json.loads((tmp_path / "z" / "models" / "syn-single" / "config.json").read_text())
    assert cfg_json["task"] == "regression"


def test_config_validation():
    from astroray.config import ConfigError

    with pytest.raises(ConfigError, match="layouts"):
        _config(layouts=("grid",))
    with pytest.raises(ConfigError, match="task"):
        _config(kind="lightcurves", task="redshift", layouts=("overlay",))
    with pytest.raises(ConfigError, match="model"):
        _config(model="nope")
    for field, bad in (("num_workers", 0), ("fail_at_epoch", 99), ("name", "")):
        with pytest.raises(ConfigError, match=rf"FinetuneConfig\.{field} = "):
            _config(**{field: bad})
    smoke = _config(model="vit-b16-spectra", epochs=10).smoke()
    assert smoke.model == "vit-tiny-spectra" and smoke.epochs == 2 and not smoke.load_pretrained


# ---------------------------------------------------------------------------------------------
# Folded light curves over several seeds, the Astromer row, label groupings
# ---------------------------------------------------------------------------------------------


def test_light_curves_folded_over_seeds_with_the_astromer_row(ray_session, tmp_path):
    from astroray.models.astromer.published import available_published
    astromer = "astromer1-macho" if available_published("astromer1-macho") else None
    cfg = _config(kind="lightcurves", model="swinv2-tiny-lightcurves",
                  datasets=(VisionDataset(name="syn", bands=("B", "R"), synthetic=(
                      SyntheticSurveyConfig(kind="periodic", n=48, format="parquet", seed=2,
                                            survey="macho"))),),
                  layouts=("overlay:lomb_scargle",), seeds=(0, 1), astromer=astromer,
                  astromer_head_steps=20, name="fold")
    summary = finetune(cfg, tmp_path / "f")
    res = summary["datasets"]["syn"]
    periods = res["data"]["periods"]["lomb_scargle/lomb_scargle/0.05/None"]
    assert periods["folded"] == periods["objects"] == 48
    assert periods["within_1pct_of_catalogue_or_half_double"] > 0.5
    assert set(res["seeds"]) == {"0", "1"}
    for seed in ("0", "1"):
        run = res["seeds"][seed]["runs"]["overlay:lomb_scargle"]
        assert run["model_dir"].endswith(f"syn-overlay-lomb_scargle-seed{seed}")
        spec = json.loads((tmp_path / "f" / "models" / f"syn-overlay-lomb_scargle-seed{seed}"
                           / "render.json").read_text())
        assert spec["render"]["fold"] == "lomb_scargle" and spec["render"]["cycles"] == 2
    # the two seeds split the objects differently; every method shares each seed's split
    assert res["seeds"]["0"]["baselines"]["rf"]["n"] == res["data"]["splits"]["test"]
    rows = {r["method"]: r for r in summary["table"]}
    expected = {"swinv2-tiny-lightcurves (overlay:lomb_scargle)", "rf"}
    if astromer:
        expected.add("astromer")
        assert res["seeds"]["0"]["astromer"]["n"] == res["data"]["splits"]["test"]
    assert set(rows) == expected
    for row in rows.values():
        assert row["seeds"] == 2 and len(row["macro_f1_seeds"]) == 2
        assert row["macro_f1"] == pytest.approx(np.mean(row["macro_f1_seeds"]), abs=1e-4)
        assert row["macro_f1_std"] >= 0
    write_finetune_results(summary, cfg, tmp_path / "f", "t", smoke=False, started=0.0)
    table = (tmp_path / "f" / "table.md").read_text()
    assert "| syn | rf |" in table and "±" in table and "seeds 0, 1" in table


def test_label_grouping_elasticc20():
    import pyarrow as pa

    from astroray.data.taxonomy import load_taxonomy

    mapping = label_grouping("elasticc20")
    assert len(set(mapping.values())) == 20
    # ATAT's grouping of the 32 ELAsTiCC training-set models (alercebroker/ATAT)
    atat = {"AGN": "AGN", "CART": "CART", "Cepheid": "Cepheid", "d-Sct": "Delta Scuti",
            "dwarf-nova": "Dwarf Novae", "EB": "EB", "ILOT": "ILOT", "KN_B19": "KN",
            "KN_K17": "KN", "Mdwarf-flare": "M-dwarf Flare", "PISN": "PISN", "RRL": "RR Lyrae",
            "SLSN-I+host": "SLSN", "SLSN-I_no_host": "SLSN", "SNIa-91bg": "91bg",
            "SNIa-SALT2": "Ia", "SNIax": "Iax", "SNIb+HostXT_V19": "Ib/c",
            "SNIb-Templates": "Ib/c", "SNIc+HostXT_V19": "Ib/c", "SNIc-Templates": "Ib/c",
            "SNIcBL+HostXT_V19": "Ib/c", "SNII+HostXT_V19": "II", "SNII-NMF": "II",
            "SNII-Templates": "II", "SNIIb+HostXT_V19": "SN-like/Other",
            "SNIIn+HostXT_V19": "II", "SNIIn-MOSFIT": "II", "TDE": "TDE",
            "uLens-Binary": "uLens", "uLens-Single-GenLens": "uLens",
            "uLens-Single_PyLIMA": "uLens"}
    assert {k: mapping[k] for k in atat} == atat
    assert mapping["2222"] == "Ia" and mapping["2225"] == "Iax" and mapping["2332"] == "AGN"
    from importlib import resources

    import yaml

    text = resources.files("astroray.data").joinpath("taxonomy.yaml").read_text()
    classes = yaml.safe_load(text)["groupings"]["elasticc20"]["classes"]
    known = load_taxonomy().classes
    assert all(entry["canonical"] in known for entry in classes.values())
    table = pa.table({"object_id": ["a", "b", "c", "d"], "label": ["SNIa", "SNIa", "SNII", None],
                      "label_raw": ["SNIax", "2222.0", "SNIIb+HostXT_V19", "x"]})
    ds = VisionDataset(name="e", paths=("unused",), grouping="elasticc20")
    _, labels, _ = _labels(table, ds.replace(min_class_count=3), "class")
    assert labels == []  # every class below min_class_count: dropped
    kept = _labels(pa.concat_tables([table] * 3), ds, "class")[1]
    assert sorted(set(kept)) == ["Ia", "Iax", "SN-like/Other"]


def test_fold_layouts_presets_and_seeds_validation():
    from astroray.config import ConfigError

    lc = dict(kind="lightcurves", model="swinv2-tiny-lightcurves",
              datasets=(VisionDataset(name="s", synthetic=SyntheticSurveyConfig(
                  kind="periodic", n=30, format="parquet", seed=1)),))
    cfg = _config(**lc, layouts=("overlay", "grid:period"), render={"preset": "macho"})
    grid = cfg.render_config("grid:period")
    assert grid.fold == "period" and grid.layout == "grid" and grid.bands == ("B", "R")
    assert grid.height == 64 and cfg.render_config("overlay").fold == "none"
    with pytest.raises(ConfigError, match="layouts"):
        _config(**lc, layouts=("overlay:phase",))
    with pytest.raises(ConfigError, match="layouts"):
        _config(layouts=("single:period",))
    with pytest.raises(ConfigError, match="seeds"):
        _config(**lc, layouts=("overlay",), seeds=(1, 1))
    with pytest.raises(ConfigError, match="astromer"):
        _config(astromer="astromer1-macho")  # spectra
    smoke = _config(**lc, layouts=("overlay:lomb_scargle", "grid"), seeds=(0, 1, 2),
                    astromer="astromer1-macho").smoke()
    assert smoke.seeds == () and smoke.astromer is None and smoke.layouts == (
        "overlay:lomb_scargle",)
