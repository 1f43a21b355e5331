"""Vision transformers: forward/backward, heads, save/load, local pretrained weights; baselines."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from astroray.models import create_model, get_config, list_models, load_model, tiny_overrides
from astroray.models.baselines import make_baseline, resample_spectra, run_baselines, spectrum_grid
from astroray.models.vision import VisionConfig, VisionTransformer

VISION = ["swinv2-t-lightcurves", "swinv2-tiny-lightcurves", "vit-b16-spectra",
          "vit-tiny-spectra"]


def test_registered_names_and_paper_configs():
    assert set(VISION) <= set(list_models())
    vit = get_config("vit-b16-spectra")
    assert (vit.image_size, vit.patch_size, vit.hidden_size, vit.num_layers) == (224, 16, 768, 12)
    assert vit.pretrained[0] == "facebook/dino-vitb16"
    swin = get_config("swinv2-t-lightcurves")
    assert (swin.image_size, swin.window_size, swin.depths) == (256, 16, (2, 2, 6, 2))
    assert swin.pretrained == ("microsoft/swinv2-tiny-patch4-window16-256",)


@pytest.mark.parametrize("name", VISION)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_tiny_forward_backward_and_round_trip(name, task, tmp_path):
    torch.manual_seed(0)
    labels = ("a", "b", "c", "d")
    model = create_model(name, **tiny_overrides(name), task=task, labels=labels,
                         target_scale=4.0, head_dropout=0.0)
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    out = model(images)
    assert out.shape == ((3, 4) if task == "classification" else (3,))
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    pred = model.predict(images)
    if task == "classification":
        torch.testing.assert_close(pred["probs"].sum(-1), torch.ones(3))
        assert model.id2label == dict(enumerate(labels))
    else:
        torch.testing.assert_close(pred["value"], model(images) * 4.0)
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model_type"] == "vision" and saved["labels"] == list(labels)
    for loaded in (VisionTransformer.from_pretrained(tmp_path / "m"), load_model(tmp_path / "m")):
        loaded.eval()
        assert loaded.config == model.config
        with torch.no_grad():
            torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)


def test_mc_dropout_head_samples_match_an_independent_draw():
    """Head-only MC Dropout: deterministic features, T dropout masks on them (same RNG draws)."""
    torch.manual_seed(0)
    name = "vit-tiny-spectra"
    model = create_model(name, **tiny_overrides(name), labels=("a", "b", "c"),
                         head_dropout=0.3, uncertainty="mc_dropout", passes=7).eval()
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    torch.manual_seed(11)
    pred = model.predict(images)
    assert pred["samples"].shape == (7, 4, 3)
    torch.testing.assert_close(pred["probs"], pred["samples"].mean(0))
    torch.testing.assert_close(pred["label"], pred["probs"].argmax(-1))
    with torch.no_grad():
        feats = model.features(images)  # eval mode: no randomness
        torch.manual_seed(11)
        dropped = torch.nn.functional.dropout(feats.repeat(7, 1), 0.3, training=True)
        want = torch.softmax(model.head(dropped), -1).view(7, 4, 3)
    torch.testing.assert_close(pred["samples"], want)
    assert pred["samples"].std(0).max() > 1e-3  # the passes differ
    assert not model.dropout.training  # eval mode restored
    # Dropout in the backbone: every pass runs the whole network, still differently.
    full = create_model(name, **tiny_overrides(name), labels=("a", "b", "c"), hidden_dropout=0.2,
                        head_dropout=0.0, uncertainty="mc_dropout", passes=3).eval()
    samples = full.predict(images)["samples"]
    assert samples.shape == (3, 4, 3) and not torch.allclose(samples[0], samples[1])
    for bad, match in (({"task": "regression"}, "null for regression"),
                       ({"head_dropout": 0.0}, "a model with dropout"),
                       ({"uncertainty": "hsa"}, "one of")):
        kwargs = {"labels": ("a", "b"), "uncertainty": "mc_dropout", **bad}
        with pytest.raises(ValueError, match=match):
            create_model(name, **kwargs)


def test_wrong_image_size_and_bad_configs():
    model = create_model("vit-tiny-spectra")
    with pytest.raises(ValueError, match="expects"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    from astroray.config import ConfigError

    with pytest.raises(ConfigError, match="backbone"):
        VisionConfig(backbone="resnet")
    with pytest.raises(ConfigError, match="patch_size"):
        VisionConfig(image_size=64, patch_size=7)
    with pytest.raises(ConfigError, match="labels"):
        VisionConfig(labels=("only",))


@pytest.mark.parametrize("name", ["vit-tiny-spectra", "swinv2-tiny-lightcurves"])
def test_backbone_weights_from_a_local_folder(name, tmp_path, caplog):
    from transformers import Swinv2Model, ViTModel

    cfg = get_config(name)
    torch.manual_seed(1)
    if cfg.backbone == "vit":
        source = ViTModel(cfg.hf_config(), add_pooling_layer=False)
    else:
        source = Swinv2Model(cfg.hf_config())
    source.save_pretrained(tmp_path / "hf")
    torch.manual_seed(2)
    model = create_model(name)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    with caplog.at_level(logging.WARNING):
        info = model.load_backbone([str(tmp_path / "missing"), str(tmp_path / "hf")])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert info["source"] == str(tmp_path / "hf") and info["loaded"] == info["total"]
    state = model.backbone.state_dict()
    for k, v in source.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)
    assert any(not torch.equal(before[k], state[k]) for k in state)


def test_no_local_weights_random_init_one_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    model = create_model("vit-tiny-spectra", pretrained=("facebook/dino-vitb16",
                                                         str(tmp_path / "nothing")))
    with caplog.at_level(logging.WARNING, logger="astroray"):
        assert model.load_backbone() is None
    lines = [r for r in caplog.records if r.name.startswith("astroray")]
    assert len(lines) == 1 and "random initialisation" in lines[0].getMessage()


# ---- baselines --------------------------------------------------------------------------


def test_resample_spectra_against_a_direct_bin_mean():
    rng = np.random.default_rng(0)
    edges = spectrum_grid((4000.0, 8000.0), 50)
    wave = np.sort(rng.uniform(3900, 8100, 600))
    flux = 2.0 + np.sin(wave / 300.0) + 0.1 * rng.standard_normal(wave.size)
    ivar = np.where(rng.random(wave.size) < 0.1, 0.0, 1.0)
    mask = np.where(rng.random(wave.size) < 0.05, 4, 0)
    out = resample_spectra([wave], [flux], [ivar], [mask], edges=edges, normalize=False)[0]
    good = (ivar > 0) & (mask == 0)
    for k in range(50):
        sel = good & (wave >= edges[k]) & (wave < edges[k + 1])
        if sel.any():
            assert out[k] == pytest.approx(flux[sel].mean(), rel=1e-5)
    # Normalised: divided by the median absolute bin value; a gap is interpolated.
    flux2 = flux.copy()
    flux2[(wave > 5000) & (wave < 5200)] = np.nan
    norm = resample_spectra([wave], [flux2], edges=edges)[0]
    raw = resample_spectra([wave], [flux2], edges=edges, normalize=False)[0]
    np.testing.assert_allclose(norm, raw / np.median(np.abs(raw)), rtol=1e-5)
    assert np.isfinite(norm).all()
    assert np.isnan(resample_spectra([np.array([100.0])], [np.array([1.0])], edges=edges)).all()


@pytest.mark.parametrize("name", ["svm", "rf"])
def test_baselines_learn_a_separable_problem(name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 8))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    x[rng.random(x.shape) < 0.05] = np.nan  # imputed
    res = run_baselines(x[:200], y[:200], x[200:], names=[name])
    assert (res[name]["pred"] == y[200:]).mean() > 0.85
    target = 2.0 * np.nan_to_num(x[:, 0]) + 1.0
    reg = run_baselines(x[:200], target[:200], x[200:], task="regression", names=[name])
    resid = reg[name]["pred"] - target[200:]
    assert 1 - resid.var() / target[200:].var() > 0.8
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("knn")
