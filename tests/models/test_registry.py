"""Every registered model, shrunk: forward, backward, save/load round trip."""

from __future__ import annotations

import pytest
import torch

from astroray.config import ConfigError
from astroray.models import create_model, get_config, list_models, load_model, tiny_overrides


def _batch(B: int = 3, T: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([T, T // 2, 5])[:B]
    mask = torch.arange(T)[None, :] < lengths[:, None]
    times = torch.cumsum(torch.rand(B, T, generator=g) * 2.0, dim=1) * mask
    values = torch.randn(B, T, generator=g) * mask
    hidden = (torch.rand(B, T, generator=g) < 0.3) & mask
    return times, values, mask, hidden


def test_registry_lists_the_astromer_family():
    assert {"astromer-v1", "astromer-v2", "astromer-tiny"} <= set(list_models())
    v1, v2 = get_config("astromer-v1"), get_config("astromer-v2")
    assert (v1.num_layers, v1.num_heads, v1.d_model) == (2, 4, 256)
    assert (v2.num_layers, v2.num_heads, v2.head_dim, v2.ffn_dim, v2.dropout) == (6, 4, 64, 512,
                                                                                   0.1)
    assert v2.mask_token and not v1.mask_token


# The sequence-model interface (times, values, mask) of the Astromer family; the vision family
# (images in) has the same forward / backward / round-trip test in tests/models/test_vision.py.
@pytest.mark.parametrize("name", [n for n in list_models() if n.startswith("astromer")])
def test_every_registered_model_tiny(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, **tiny_overrides(name))
    times, values, mask, hidden = _batch()
    # A fresh head predicts the window mean (0): pretraining starts at R^2 ~ 0.
    with torch.no_grad():
        assert torch.equal(model(times, values, mask).prediction, torch.zeros_like(values))
        torch.nn.init.normal_(model.head.weight, std=0.1)  # a trained head passes gradients
    out = model(times, values, mask, hidden=hidden)
    assert out.prediction.shape == values.shape
    assert len(out.states) == model.config.num_layers + 1
    assert all(s.shape == (*values.shape, model.config.d_model) for s in out.states)
    loss = ((out.prediction - values) ** 2)[mask].mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) > 0 for g in grads) >= len(grads) - 1
    # Save / load round trip: same config, same outputs.
    model.eval()
    with torch.no_grad():
        before = model(times, values, mask, hidden=hidden).prediction
    model.save_pretrained(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "model.safetensors"}
    for loaded in (type(model).from_pretrained(tmp_path / "m"), load_model(tmp_path / "m")):
        loaded.eval()
        assert loaded.config == model.config
        with torch.no_grad():
            after = loaded(times, values, mask, hidden=hidden).prediction
        torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_unknown_model_and_bad_override():
    with pytest.raises(KeyError, match="astromer-v1"):
        create_model("no-such-model")
    with pytest.raises(ConfigError, match=r"AstromerConfig\.pe_type = 'learned'"):
        create_model("astromer-tiny", pe_type="learned")
    with pytest.raises(ConfigError, match="num_layers"):
        get_config("astromer-v1", num_layers=0)


def test_from_pretrained_rejects_other_folders(tmp_path):
    from astroray.models.astromer import Astromer

    with pytest.raises(FileNotFoundError, match="config.json"):
        Astromer.from_pretrained(tmp_path)
