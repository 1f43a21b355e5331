"""Astromer numerics against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astroray.config import ConfigError
from astroray.models import create_model
from astroray.models.astromer import (
    AstromerClassifierHead,
    AstromerConfig,
    TimeEncoding,
    WeightedEmbedding,
    error_weights,
    layer_means,
    mask_inputs,
    masked_rmse,
)


@pytest.mark.parametrize("base,max_frequency", [(1000.0, 1.0), (1e5, 30.0)])
def test_sinusoidal_encoding_matches_numpy_formula(base, max_frequency):
    dim = 16
    times = np.array([[0.0, 0.37, 1.5, 12.25, 250.0, 2900.5]])
    enc = TimeEncoding(dim, base, max_frequency=max_frequency)(
        torch.tensor(times, dtype=torch.float32)).numpy()
    expected = np.empty((1, times.shape[1], dim))
    for j in range(dim):
        omega = max_frequency / base ** (2.0 * j / dim)
        f = np.sin if j % 2 == 0 else np.cos
        expected[0, :, j] = f(times[0] * omega)
    # float32 angles of up to ~3000 rad per rad/day of max_frequency: ~3e-4 absolute each.
    np.testing.assert_allclose(enc, expected, atol=5e-4 * max_frequency)
    # The model builds its encoding from the config.
    model = create_model("astromer-tiny", pe_base=base, pe_max_frequency=max_frequency)
    d = model.config.d_model
    np.testing.assert_allclose(model.time_encoding.freq.numpy(),
                               max_frequency / base ** (2.0 * np.arange(d) / d), rtol=1e-6)
    np.testing.assert_allclose(enc[:, :4], expected[:, :4], atol=5e-4)


def test_trainable_encoding_starts_at_the_fixed_one_and_learns():
    times = torch.rand(2, 7) * 50
    fixed, learned = TimeEncoding(8, 1000.0), TimeEncoding(8, 1000.0, trainable=True)
    torch.testing.assert_close(learned(times), fixed(times), atol=1e-4, rtol=0)
    learned(times).sum().backward()
    assert learned.freq.grad is not None and learned.phase.grad is not None
    assert not list(fixed.parameters())


def test_masking_fractions_over_many_draws():
    torch.manual_seed(0)
    B, T = 4000, 200
    lengths = torch.randint(1, T + 1, (B,))
    mask = torch.arange(T)[None, :] < lengths[:, None]
    values = torch.randn(B, T) * mask
    m = mask_inputs(values, mask)
    n_valid = mask.sum().item()
    n_probed = m.probed.sum().item()
    assert not (m.probed & ~mask).any()  # padding is never probed
    assert abs(n_probed / n_valid - 0.5) < 0.005
    assert abs(m.kept.sum().item() / n_probed - 0.2) < 0.01
    assert abs(m.randomised.sum().item() / n_probed - 0.2) < 0.01
    assert abs(m.hidden.sum().item() / n_probed - 0.6) < 0.01
    # The three kinds partition the probed points.
    total = m.kept.int() + m.randomised.int() + m.hidden.int()
    assert torch.equal(total.bool(), m.probed) and total.max() <= 1
    # Untouched points keep their values; randomised ones take a value of the same window.
    assert torch.equal(m.values[~m.randomised], values[~m.randomised])
    rows, cols = torch.nonzero(m.randomised, as_tuple=True)
    for r, c in zip(rows[:300].tolist(), cols[:300].tolist(), strict=True):
        assert m.values[r, c].item() in set(values[r, : lengths[r]].tolist())


def test_masking_is_reproducible_with_a_generator():
    mask = torch.ones(3, 50, dtype=torch.bool)
    values = torch.randn(3, 50)
    a = mask_inputs(values, mask, generator=torch.Generator().manual_seed(5))
    b = mask_inputs(values, mask, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.probed, b.probed) and torch.equal(a.values, b.values)


def test_masked_rmse_matches_the_official_per_window_formula():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(5, 30)), rng.normal(size=(5, 30))
    probed = rng.random((5, 30)) < 0.4
    probed[3] = False  # a window without probed points does not count
    mask = np.ones((5, 30), bool)
    mask[1, 20:] = False
    probed &= mask
    err = rng.uniform(0.005, 0.3, size=(5, 30))
    t = {k: torch.tensor(v) for k, v in dict(p=pred, y=target, e=err).items()}
    # custom_rmse of the official code, written as a loop: per-window mean over probed points,
    # mean over windows, root.
    per_window = [np.mean((pred[b] - target[b])[probed[b]] ** 2) for b in range(5)
                  if probed[b].any()]
    got = masked_rmse(t["p"], t["y"], torch.tensor(probed)).item()
    assert got == pytest.approx(np.sqrt(np.mean(per_window)), rel=1e-6)
    # Astromer 2's weights: 1/err min-max scaled over each window's valid points, + 1e-3.
    w = np.zeros_like(err)
    for b in range(5):
        inv = 1.0 / err[b][mask[b]]
        w[b][mask[b]] = (inv - inv.min()) / (inv.max() - inv.min()) + 1e-3
    weights = error_weights(t["e"], torch.tensor(mask))
    np.testing.assert_allclose(weights.numpy(), w, rtol=1e-5, atol=1e-7)
    per_window = [np.sum((w[b] * (pred[b] - target[b]) ** 2)[probed[b]]) / probed[b].sum()
                  for b in range(5) if probed[b].any()]
    got = masked_rmse(t["p"], t["y"], torch.tensor(probed), weights).item()
    assert got == pytest.approx(np.sqrt(np.mean(per_window)), rel=1e-5)
    # Equal errors: every weight is 1e-3 (0 / 0 -> 0, as divide_no_nan).
    flat = error_weights(torch.full((1, 4), 0.1), torch.ones(1, 4, dtype=torch.bool))
    np.testing.assert_allclose(flat.numpy(), 1e-3)


@pytest.mark.parametrize("overrides", [{}, {"pe_position": "output"}, {"pe_type": "trainable"},
                                       {"mask_token": False, "residual": False},
                                       {"attention": "hsa", "hsa_centroids": 4},
                                       {"attention": "hsa_snap", "hsa_centroids": 4}])
def test_padding_does_not_change_valid_outputs(overrides):
    torch.manual_seed(0)
    model = create_model("astromer-tiny", dropout=0.0, **overrides).eval()
    B, T, n = 2, 30, 17
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[:, :n] = True
    times = torch.cumsum(torch.rand(B, T), 1)
    values = torch.randn(B, T)
    hidden = torch.zeros(B, T, dtype=torch.bool)
    hidden[:, 3] = True
    t2, v2 = times.clone(), values.clone()
    t2[:, n:] = torch.rand(B, T - n) * 1e4
    v2[:, n:] = torch.randn(B, T - n) * 100
    t3 = times.clone()
    t3[:, 3] += 123.0  # a hidden point is invisible to the others: its time changes nothing
    outputs = []
    with torch.no_grad():
        for tt, vv in ((times, values), (t2, v2), (t3, values)):
            torch.manual_seed(1)  # the same Gumbel draws for HSA, which samples at eval
            outputs.append(model(tt, vv, mask, hidden=hidden))
    a, b, c = outputs
    keep = mask.clone()
    torch.testing.assert_close(a.prediction[keep], b.prediction[keep], rtol=0, atol=1e-6)
    for sa, sb in zip(a.states, b.states, strict=True):
        torch.testing.assert_close(sa[keep], sb[keep], rtol=0, atol=1e-6)
    keep[:, 3] = False
    torch.testing.assert_close(a.prediction[keep], c.prediction[keep], rtol=0, atol=1e-6)


def test_a_window_with_every_point_hidden_stays_finite():
    model = create_model("astromer-tiny").eval()
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, :2] = True
    out = model(torch.arange(10.0)[None], torch.randn(1, 10), mask, hidden=mask.clone())
    assert torch.isfinite(out.prediction).all()


def test_mask_token_replaces_hidden_values():
    torch.manual_seed(0)
    model = create_model("astromer-tiny", dropout=0.0).eval()
    mask = torch.ones(1, 12, dtype=torch.bool)
    hidden = torch.zeros(1, 12, dtype=torch.bool)
    hidden[0, 4] = True
    t, v = torch.arange(12.0)[None], torch.randn(1, 12)
    v2 = v.clone()
    v2[0, 4] = 50.0
    with torch.no_grad():
        a = model(t, v, mask, hidden=hidden).prediction
        b = model(t, v2, mask, hidden=hidden).prediction
    torch.testing.assert_close(a, b)  # a hidden magnitude never reaches the model
    assert model.mask_value is not None and model.mask_value.requires_grad


def test_embeddings_and_head_shapes():
    torch.manual_seed(0)
    model = create_model("astromer-tiny").eval()
    B, T = 4, 20
    mask = torch.arange(T)[None, :] < torch.tensor([20, 10, 3, 7])[:, None]
    with torch.no_grad():
        out = model(torch.cumsum(torch.rand(B, T), 1), torch.randn(B, T), mask)
        means = layer_means(out.states, mask)
    assert means.shape == (B, model.num_states, model.config.d_model)
    expected = out.states[-1][1, :10].mean(0)
    torch.testing.assert_close(means[1, -1], expected)
    weighted = WeightedEmbedding(model.num_states)
    torch.testing.assert_close(weighted(means), means.mean(1))  # equal weights at first
    head = AstromerClassifierHead(model.num_states, model.config.d_model, 3, hidden=(32, 16))
    assert head(means).shape == (B, 3)


def test_value_scale_multiplies_the_magnitudes_the_model_sees_not_its_targets():
    torch.manual_seed(0)
    scaled = create_model("astromer-tiny", dropout=0.0, value_scale=5.0).eval()
    plain = create_model("astromer-tiny", dropout=0.0).eval()
    plain.load_state_dict(scaled.state_dict())
    B, T = 3, 25
    times, values = torch.cumsum(torch.rand(B, T), 1), torch.randn(B, T) * 0.2
    mask = torch.ones(B, T, dtype=torch.bool)
    with torch.no_grad():
        a = scaled(times, values, mask)
        b = plain(times, values * 5.0, mask)
        c = plain(times, values, mask)
    for sa, sb in zip(a.states, b.states, strict=True):
        torch.testing.assert_close(sa, sb)
    torch.testing.assert_close(a.prediction, b.prediction)
    assert not torch.allclose(a.states[-1], c.states[-1], atol=1e-3)
    with pytest.raises(ConfigError, match=r"value_scale = 0"):
        AstromerConfig(value_scale=0)


def test_config_validation_names_field_and_value():
    with pytest.raises(ConfigError, match=r"AstromerConfig\.dropout = 1\.5"):
        AstromerConfig(dropout=1.5)
    with pytest.raises(ConfigError, match="random_fraction"):
        AstromerConfig(keep_fraction=0.7, random_fraction=0.5)
    cfg = AstromerConfig(num_layers=3, pe_type="trainable")
    assert AstromerConfig.from_dict(cfg.to_dict()) == cfg
