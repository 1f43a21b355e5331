"""Fine-tuning on Ray Train with on-the-fly rendering: tiny runs on the session Ray, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from astroray.data.synthetic import SyntheticSurveyConfig, periodic_variables, spectra
from astroray.models import load_model
from astroray.render import (
    LightCurveRenderConfig,
    RenderLightCurves,
    RenderSpectra,
    SpectrumRenderConfig,
)
from astroray.train.vision import (
    FinetuneConfig,
    VisionDataset,
    _stratified_split,
    finetune,
    prepare_arrays,
    render_batch,
)


def test_prepared_arrays_render_like_the_canonical_columns():
    # NaN-ing bad pixels and padding gives the same picture as the raw ivar / mask columns.
    table = spectra(4, seed=2)
    arrays, _ = prepare_arrays(table, "spectra", max_length=5000)
    cfg = SpectrumRenderConfig(height=64, width=64)
    ours = render_batch({k: torch.from_numpy(v) for k, v in arrays.items()}, "spectra", cfg)
    batch = {c: np.array(table.column(c).to_pylist(), dtype=object)
             for c in ("wavelength", "flux", "ivar", "mask")}
    ref = RenderSpectra(cfg)(batch)["image"]
    np.testing.assert_array_equal(ours.numpy(), ref)
    lcs = periodic_variables(3, seed=1)
    arrays, info = prepare_arrays(lcs, "lightcurves", max_length=10_000, bands=("B", "R"))
    assert info["bands"] == ["B", "R"] and arrays["band"].dtype == np.int8
    lc_cfg = LightCurveRenderConfig(height=64, width=64, bands=("B", "R"))
    ours = render_batch({k: torch.from_numpy(v) for k, v in arrays.items()}, "lightcurves",
                        lc_cfg)
    cols = {c: np.array(lcs.column(c).to_pylist(), dtype=object)
            for c in ("time", "band", "mag", "err")}
    ref = RenderLightCurves(lc_cfg)(cols)["image"]
    np.testing.assert_array_equal(ours.numpy(), ref)


def test_thinning_and_stratified_split():
    lcs = periodic_variables(2, seed=0, n_points=(400, 400))
    arrays, info = prepare_arrays(lcs, "lightcurves", max_length=100)
    assert arrays["time"].shape[1] == 100 and info["thinned"] == 2
    assert (np.diff(arrays["time"], axis=1) >= 0).all()  # thinned evenly, in time order
    strata = np.repeat(np.arange(3), [50, 20, 10])
    split = _stratified_split(strata, 0.15, 0.2, seed=0)
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
        num_workers=2, cpus_per_worker=0.5, predict_cpus=0.5, name="t")
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
