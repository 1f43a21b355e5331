"""Bulk inference with the vision family: rendering inside the model actor, then ViT / SwinV2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from astroray.data.registry import read_files
from astroray.data.synthetic import SyntheticSurveyConfig, make_survey
from astroray.infer.catalogue import InferConfig, read_catalogue, run_inference
from astroray.infer.predictors import get_predictor, predictor_kind, prob_column
from astroray.models import create_model, tiny_overrides
from astroray.models.vision.processing import prepare_arrays, write_render_spec
from astroray.render import LightCurveRenderConfig, SpectrumRenderConfig


def _vision_model(tmp_path, name, kind, render, labels=("STAR", "GALAXY", "QSO"),
                  task="classification", bands=None, **overrides):
    torch.manual_seed(0)
    model = create_model(name, **tiny_overrides(name), labels=labels, task=task,
                         target_scale=3.0, **overrides).eval()
    folder = model.save_pretrained(tmp_path / name)
    write_render_spec(folder, kind, render.to_dict(), 4700, bands)
    return folder, model


def test_vit_spectra_catalogue_matches_a_direct_forward(ray_session, tmp_path):
    data_dir = tmp_path / "sdss"
    make_survey(SyntheticSurveyConfig(kind="spectra", n=24, format="sdss", seed=3), data_dir)
    render = SpectrumRenderConfig(height=64, width=64)
    folder, model = _vision_model(tmp_path, "vit-tiny-spectra", "spectra", render)
    assert predictor_kind(folder) == "spectrum"
    run_inference(InferConfig(model=str(folder), paths=(str(data_dir),), batch_size=8,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run",
                  progress=False)
    cat, err = read_catalogue(tmp_path / "run")
    assert err.num_rows == 0 and cat.num_rows == 24
    # Independent path: the renderer and the model called directly, no Ray.
    from astroray.render import render_spectra

    table, _ = read_files(data_dir)
    arrays, _ = prepare_arrays(table, "spectra", max_length=4700)
    images = render_spectra(torch.from_numpy(arrays["wavelength"]),
                            torch.from_numpy(arrays["flux"]),
                            lengths=torch.from_numpy(arrays["length"]), config=render)
    with torch.no_grad():
        expected = model.predict(images)["probs"].numpy()
    got = {r["object_id"]: r for r in cat.to_pylist()}
    for i, oid in enumerate(table.column("object_id").to_pylist()):
        row = [got[oid][prob_column(c)] for c in ("STAR", "GALAXY", "QSO")]
        np.testing.assert_allclose(row, expected[i], rtol=1e-4, atol=1e-5)


def test_vit_redshift_and_swin_light_curves(ray_session, tmp_path):
    spectra = tmp_path / "sdss"
    make_survey(SyntheticSurveyConfig(kind="spectra", n=10, format="sdss", seed=4), spectra)
    folder, _ = _vision_model(tmp_path, "vit-tiny-spectra", "spectra",
                              SpectrumRenderConfig(height=64, width=64), task="regression")
    run_inference(InferConfig(model=str(folder), paths=(str(spectra),), actor_cpus=0.5,
                              task_cpus=0.25), tmp_path / "z", progress=False)
    cat, _ = read_catalogue(tmp_path / "z")
    z = cat.column("redshift").to_numpy()
    assert cat.num_rows == 10 and np.isfinite(z).all()

    # SwinV2 with an MC Dropout head: mean probabilities and the uncertainty scores.
    lcs = tmp_path / "macho"
    make_survey(SyntheticSurveyConfig(kind="periodic", n=12, format="csv", seed=5), lcs)
    classes = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")
    folder, _ = _vision_model(tmp_path, "swinv2-tiny-lightcurves", "lightcurves",
                              LightCurveRenderConfig(height=64, width=64, bands=("B", "R")),
                              labels=classes, bands=["B", "R"], head_dropout=0.5,
                              uncertainty="mc_dropout", passes=8)
    assert predictor_kind(folder) == "lightcurve"
    run_inference(InferConfig(model=str(folder), paths=(str(lcs),), actor_cpus=0.5,
                              task_cpus=0.25, embedding=True), tmp_path / "lc", progress=False)
    cat, err = read_catalogue(tmp_path / "lc")
    assert cat.num_rows == 12 and err.num_rows == 0
    probs = np.stack([cat.column(prob_column(c)).to_numpy() for c in classes], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert cat.column("embedding").type.list_size > 0
    smp = cat.column("uncertainty_smp").to_numpy()
    pv, bald = (cat.column(f"uncertainty_{k}").to_numpy() for k in ("pv", "bald"))
    # SMP is one minus the largest mean probability; the spread of the passes is not zero.
    np.testing.assert_allclose(smp, 1.0 - probs.max(axis=1), atol=1e-5)
    assert (pv > 0).all() and (bald >= -1e-6).all()


def test_vision_folder_without_render_spec(tmp_path):
    model = create_model("vit-tiny-spectra", **tiny_overrides("vit-tiny-spectra"))
    folder = model.save_pretrained(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="render.json"):
        get_predictor(folder)


@pytest.mark.parametrize("fold, fmt", [("lomb_scargle", "csv"), ("period", "parquet")])
def test_folded_swin_round_trips_with_the_same_pictures(ray_session, tmp_path, fold, fmt):
    """A model trained on folded pictures folds the same way in bulk inference."""
    from astroray.render import render_light_curves

    lcs = tmp_path / "macho"
    make_survey(SyntheticSurveyConfig(kind="periodic", n=8, format=fmt, seed=6), lcs)
    classes = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")
    render = LightCurveRenderConfig(height=64, width=64, bands=("B", "R"), fold=fold)
    folder, model = _vision_model(tmp_path, "swinv2-tiny-lightcurves", "lightcurves", render,
                                  labels=classes, bands=["B", "R"])
    assert json.loads((folder / "render.json").read_text())["render"]["fold"] == fold
    run_inference(InferConfig(model=str(folder), paths=(str(lcs),), batch_size=4,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    cat, err = read_catalogue(tmp_path / "run")
    assert cat.num_rows == 8 and err.num_rows == 0
    # Independent path: periods from the prepared arrays, the renderer and the model directly.
    table, _ = read_files(lcs)
    arrays, _ = prepare_arrays(table, "lightcurves", max_length=4700, bands=("B", "R"),
                               render=render)
    images = render_light_curves(torch.from_numpy(arrays["time"]),
                                 torch.from_numpy(arrays["value"]),
                                 torch.from_numpy(arrays["err"]),
                                 torch.from_numpy(arrays["band"]).long(),
                                 lengths=torch.from_numpy(arrays["length"]),
                                 magnitude=torch.from_numpy(arrays["is_mag"]), config=render,
                                 period=torch.from_numpy(arrays["period"]))
    with torch.no_grad():
        expected = model.predict(images)["probs"].numpy()
    got = {r["object_id"]: r for r in cat.to_pylist()}
    for i, oid in enumerate(table.column("object_id").to_pylist()):
        row = got[oid]
        np.testing.assert_allclose([row[prob_column(c)] for c in classes], expected[i],
                                   rtol=1e-4, atol=1e-5)
        assert row["period"] == pytest.approx(arrays["period"][i])
        if fold == "period":  # the catalogue period, carried through; no periodogram
            assert row["period"] == pytest.approx(table.column("period")[i].as_py())
            assert row["period_power"] is None
        else:
            assert 0 < row["period_power"] <= 1
    # the searched periods are the synthetic stars' own (or half / twice) for most of them
    if fold == "lomb_scargle":
        true = {r["object_id"]: r["period"] for r in table.to_pylist()}
        if all(v is not None for v in true.values()):
            ratio = np.array([got[o]["period"] / true[o] for o in true])
            near = np.min(np.abs(ratio[:, None] * [1.0, 2.0, 0.5] - 1), axis=1) < 0.02
            assert near.mean() >= 0.5, ratio
