"""Training strategies on a tiny survey, evaluation, the morphology CNN's round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astroray.config import ConfigError
from astroray.debias import galaxy_images
from astroray.models import create_model, load_model, tiny_overrides
from astroray.studies.debias import DebiasConfig, evaluate, train_strategy, well_resolved


def test_morphology_cnn_tiny_forward_backward_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("morphology-cnn", **tiny_overrides("morphology-cnn"))
    x = torch.randn(6, 32, 32) * 3
    logits = model(x)
    assert logits.shape == (6, 2)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    before = model.predict_proba(x)
    torch.testing.assert_close(before.sum(dim=1), torch.ones(6))
    model.save_pretrained(tmp_path / "m")
    for loaded in (type(model).from_pretrained(tmp_path / "m"), load_model(tmp_path / "m")):
        assert loaded.config == model.config
        torch.testing.assert_close(loaded.predict_proba(x), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="batch"):
        model(torch.zeros(2, 3, 32, 32))


@pytest.fixture(scope="module")
def tiny():
    cfg = DebiasConfig(n_train=300, n_test=200, epochs=1, batch_size=50, copies=1,
                       model="morphology-cnn-tiny", intrinsic_bins=2, observable_bins=2,
                       min_count=5)
    return cfg, galaxy_images(300, cfg.galaxies, seed=0)


@pytest.mark.parametrize("strategy", ["naive", "degraded_copies", "consistency"])
def test_each_strategy_trains(tiny, strategy):
    cfg, data = tiny
    res = train_strategy(strategy, data, cfg)
    assert len(res["losses"]) == 1 and np.isfinite(res["losses"][0])
    expected = well_resolved(data, cfg).sum() if strategy == "degraded_copies" else 300
    assert res["train_objects"] == expected
    model = create_model(cfg.model)
    model.load_state_dict(res["state"])


def test_evaluate_labels(tiny):
    cfg, data = tiny
    row = evaluate(data["truth"], data, cfg)
    assert row["accuracy"] == 1.0 and row["L"] >= 0.0 and {"L_z", "L_psf"} <= set(row)
    flipped = evaluate(1 - data["truth"], data, cfg)
    assert flipped["accuracy"] == 0.0


def test_config_checks():
    with pytest.raises(ConfigError, match=r"DebiasConfig\.strategies"):
        DebiasConfig(strategies=("naive", "magic"))
    with pytest.raises(ConfigError, match=r"DebiasConfig\.observable_bins"):
        DebiasConfig(observable_bins=1)
    cfg = DebiasConfig.from_dict({"galaxies": {"size": 24}, "epochs": 2,
                                  "smoke": {"epochs": 1}})
    assert cfg.galaxies.size == 24 and cfg.smoke().epochs == 1
    assert cfg.smoke().galaxies.size == 24  # the overlay changes only what it names
    shipped = DebiasConfig.from_file("jobs/debias.yaml")
    assert shipped.epochs == 10 and shipped.smoke().epochs == 1
    assert shipped.smoke().n_train == 600 and shipped.smoke().strategies == shipped.strategies
