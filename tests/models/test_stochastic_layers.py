"""Hierarchical stochastic attention and Monte Carlo sampling against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astroray.models import create_model
from astroray.models.layers import (
    HierarchicalStochasticAttention,
    fit_centroids,
    gumbel_softmax,
    has_stochastic_layers,
    sample_probabilities,
    stochastic,
)


def test_gumbel_softmax_samples_the_softmax_and_respects_masks():
    logits = torch.tensor([1.0, 0.0, -1.0, float("-inf")])
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([gumbel_softmax(logits, 1.0, hard=True, generator=gen)
                         for _ in range(20000)])
    assert torch.all(draws.sum(-1) == 1) and torch.all(draws[:, 3] == 0)
    # Gumbel-max: the one-hot draws follow softmax(logits).
    freq = draws.mean(0).numpy()
    expected = torch.softmax(logits, 0).numpy()
    np.testing.assert_allclose(freq, expected, atol=0.015)
    soft = gumbel_softmax(logits.expand(5, 4), 0.5)
    assert torch.allclose(soft.sum(-1), torch.ones(5)) and torch.all(soft[:, 3] == 0)
    # Straight-through: the hard sample carries the soft sample's gradient.
    x = logits[:3].clone().requires_grad_(True)
    (gumbel_softmax(x, 1.0, hard=True) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad is not None and torch.any(x.grad != 0)


def _attend(q, keys, v, mask, scale):
    """softmax(scale * q keys^T) v over attendable keys, one (b, h) at a time (numpy)."""
    out = np.zeros_like(q)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            s = scale * q[b, h] @ keys[b, h].T  # (T, T)
            s[:, ~mask[b, 0, 0]] = -np.inf
            w = np.exp(s - s.max(1, keepdims=True))
            out[b, h] = (w / w.sum(1, keepdims=True)) @ v[b, h]
    return out


def test_hsa_reference_form_matches_a_direct_computation(monkeypatch):
    """The authors' HSA: dot-product key scores, soft centroid mixture, unscaled weights."""
    import astroray.models.layers.hsa as hsa_module

    torch.manual_seed(0)
    B, H, T, D, K = 2, 3, 9, 4, 5
    hsa = HierarchicalStochasticAttention(H, D, K, tau1=0.7, tau2=0.9).eval()
    assert hsa.form == "reference"
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    mask = torch.ones(B, 1, 1, T, dtype=torch.bool)
    mask[1, ..., 6:] = False
    c = hsa.centroids.detach().numpy()  # (H, K, D)
    qn, kn, vn, mn = q.numpy(), k.numpy(), v.numpy(), mask.numpy()
    # Key-centroid scores: plain dot products, no scale, no distance.
    scores = np.einsum("bhtd,hkd->bhtk", kn, c)
    np.testing.assert_allclose(hsa.key_logits(k).detach().numpy(), scores, rtol=1e-5,
                               atol=1e-6)
    # With the Gumbel noise of both levels set to zero, a pass is the noise-free formula:
    # keys = softmax(k.c / tau1) @ c, weights = softmax(q k~ / tau2) (no 1/sqrt(Dh)).
    monkeypatch.setattr(hsa_module, "gumbel_softmax",
                        lambda logits, tau, hard=False: torch.softmax(logits / tau, -1))
    monkeypatch.setattr(hsa_module, "_gumbel_noise", lambda shape, device: torch.zeros(shape))
    mix = np.exp(scores / 0.7 - (scores / 0.7).max(-1, keepdims=True))
    mix /= mix.sum(-1, keepdims=True)
    keys = np.einsum("bhtk,hkd->bhtd", mix, c)
    want = _attend(qn, keys, vn, mn, 1.0 / 0.9)
    np.testing.assert_allclose(hsa(q, k, v, mask).detach().numpy(), want, rtol=1e-4,
                               atol=1e-5)
    # HA-MC Dropout's keys-only form: the same keys, softmax weights at the usual 1/sqrt(Dh).
    hsa.sample_weights = False
    np.testing.assert_allclose(hsa(q, k, v, mask).detach().numpy(),
                               _attend(qn, keys, vn, mn, 1.0 / math.sqrt(D)), rtol=1e-4,
                               atol=1e-5)


def test_hsa_reference_form_samples_in_eval_mode():
    """The authors' HSA has no deterministic pass: two eval passes differ, as in training."""
    torch.manual_seed(0)
    B, H, T, D, K = 2, 2, 8, 4, 3
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    mask = torch.ones(B, 1, 1, T, dtype=torch.bool)
    for sample_weights in (True, False):
        hsa = HierarchicalStochasticAttention(H, D, K, sample_weights=sample_weights).eval()
        assert not hsa.mc
        with torch.no_grad():
            assert not torch.allclose(hsa(q, k, v, mask), hsa(q, k, v, mask))
    for attention, sampled in (("hsa", True), ("hsa_keys", True), ("hsa_snap", False),
                               ("hsa_keys_snap", False)):
        torch.manual_seed(0)
        model = create_model("astromer-tiny", attention=attention, hsa_centroids=3).eval()
        assert all(b.hsa.form == ("snap" if attention.endswith("snap") else "reference")
                   for b in model.blocks)
        times = torch.cumsum(torch.rand(2, 20), 1)
        values, mask = torch.randn(2, 20), torch.ones(2, 20, dtype=torch.bool)
        with torch.no_grad():
            a = model(times, values, mask).states[-1]  # (B, T, D) last block's output
            b = model(times, values, mask).states[-1]
        assert torch.equal(a, b) is not sampled, attention


def test_hsa_snap_deterministic_pass_matches_a_direct_computation():
    """Our earlier variant (``hsa_snap``): nearest-centroid keys, softmax in eval mode."""
    torch.manual_seed(0)
    B, H, T, D, K = 2, 3, 9, 4, 5
    hsa = HierarchicalStochasticAttention(H, D, K, tau1=0.7, tau2=0.9, form="snap").eval()
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    mask = torch.ones(B, 1, 1, T, dtype=torch.bool)
    mask[1, ..., 6:] = False
    got = hsa(q, k, v, mask)
    c = hsa.centroids.detach().numpy()
    qn, kn, vn, mn = q.numpy(), k.numpy(), v.numpy(), mask.numpy()
    for b in range(B):
        for h in range(H):
            # each key snaps to its nearest centroid (Euclidean)
            snapped = np.stack([c[h][np.argmin(((c[h] - kn[b, h, t]) ** 2).sum(1))]
                                for t in range(T)])
            for i in range(T):
                s = np.array([qn[b, h, i] @ snapped[j] / math.sqrt(D) for j in range(T)])
                s[~mn[b, 0, 0]] = -np.inf
                w = np.exp(s - s.max())
                w /= w.sum()
                np.testing.assert_allclose(got[b, h, i].detach().numpy(), w @ vn[b, h],
                                           rtol=1e-5, atol=1e-6)
    # Eval mode is deterministic; Monte Carlo mode samples; masked keys never count.
    assert torch.equal(got, hsa(q, k, v, mask))
    with stochastic(hsa):
        a = hsa(q, k, v, mask)
        v2 = v.clone()
        v2[1, :, 6:] = 1e6
        b_ = hsa(q, k, v2, mask)
    assert not torch.allclose(a, got)
    assert torch.all(b_[1].abs() < 1e3)  # the huge values sit behind the mask
    assert hsa.mc is False  # restored


def test_hsa_astromer_trains_its_centroids():
    torch.manual_seed(0)
    model = create_model("astromer-tiny", attention="hsa", hsa_centroids=4).train()
    torch.nn.init.normal_(model.head.weight, std=0.1)  # a fresh head (zeros) passes no gradient
    times = torch.cumsum(torch.rand(3, 20), 1)
    values, mask = torch.randn(3, 20), torch.ones(3, 20, dtype=torch.bool)
    out = model(times, values, mask)
    out.prediction.pow(2).mean().backward()
    grads = [blk.hsa.centroids.grad for blk in model.blocks]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    assert has_stochastic_layers(model, dropout=False)


def test_stochastic_switches_only_dropout_and_restores():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                              torch.nn.LayerNorm(32), torch.nn.Linear(32, 3)).eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        base = net(x)
        with stochastic(net):
            assert net[2].training and not net[3].training and not net.training
            probs = sample_probabilities(lambda inp: net(inp["x"]), {"x": x}, passes=16)
    assert not net[2].training
    assert probs.shape == (16, 4, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(16, 4))
    assert probs.std(0).mean() > 1e-3  # the passes differ
    # Deterministic forward: every pass equals the plain one, whatever the chunking.
    for max_rows in (4, 12, 10_000):
        det = sample_probabilities(lambda inp: net(inp["x"]), {"x": x}, passes=5,
                                   max_rows=max_rows)
        torch.testing.assert_close(det, torch.softmax(base, -1).expand(5, 4, 3))
    with pytest.raises(ValueError, match="passes"):
        sample_probabilities(lambda inp: net(inp["x"]), {"x": x}, passes=0)


@pytest.mark.parametrize("form", ["reference", "snap"])
def test_hierarchical_keys_alone_keep_softmax_weights(form):
    """HA-MC Dropout's attention samples the keys' centroids only; the weights stay softmax."""
    torch.manual_seed(2)
    B, H, T, D = 2, 2, 4, 4
    keys_only = HierarchicalStochasticAttention(H, D, T, sample_weights=False, form=form)
    with torch.no_grad():
        # Orthogonal centroids of equal norm, far apart: a key sitting on a centroid picks
        # that centroid in every draw, by dot product (reference) as by distance (snap).
        keys_only.centroids.copy_(30.0 * torch.eye(D)[None].expand(H, T, D))
    both = HierarchicalStochasticAttention(H, D, T, form=form)
    both.load_state_dict(keys_only.state_dict())
    q, v = torch.randn(B, H, T, D), torch.randn(B, H, T, D)
    k = keys_only.centroids.detach()[None].expand(B, H, T, D)  # every key on a centroid
    mask = torch.ones(B, 1, 1, T, dtype=torch.bool)
    plain = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with torch.no_grad(), stochastic(keys_only), stochastic(both.eval()):
        # The sampled centroid is the key's own: softmax weights give the plain scaled
        # attention exactly, Gumbel-sampled weights do not.
        torch.testing.assert_close(keys_only(q, k, v, mask), plain)
        assert not torch.allclose(both(q, k, v, mask), plain, atol=1e-3)
    for attention in ("hsa_keys", "hsa_keys_snap"):
        model = create_model("astromer-tiny", attention=attention, hsa_centroids=3)
        assert all(not b.hsa.sample_weights for b in model.blocks)


def test_fit_centroids_are_the_kmeans_of_each_layers_keys():
    """Layer by layer, the centroids are the k-means centres of the keys that layer sees."""
    from sklearn.cluster import KMeans

    torch.manual_seed(3)
    model = create_model("astromer-tiny", attention="hsa", hsa_centroids=3).eval()
    times = torch.cumsum(torch.rand(4, 20), 1)
    values, mask = torch.randn(4, 20), torch.ones(4, 20, dtype=torch.bool)
    mask[2, 12:] = False
    assert fit_centroids(model, lambda: model.embed(times, values, mask), seed=0) == 2
    # Independently: the first block's keys from its own projection of the input embedding.
    blk = model.blocks[0]
    with torch.no_grad():
        x = model(times, values, mask).states[0]  # (B, T, D) input embedding
        k = blk.qkv(x).view(4, 20, 3, blk.num_heads, blk.head_dim)[:, :, 1]  # (B, T, H, Dh)
    keys = k[mask].double().numpy()  # (valid points, H, Dh)
    assert keys.shape[0] == 4 * 20 - 8
    for h in range(blk.num_heads):
        want = KMeans(n_clusters=3, n_init=3, random_state=0).fit(keys[:, h]).cluster_centers_
        got = blk.hsa.centroids[h].detach().double().numpy()
        order = [int(np.argmin(((got - w) ** 2).sum(1))) for w in want]
        np.testing.assert_allclose(got[order], want, rtol=1e-4, atol=1e-5)
    # With keys of two clear clusters the deterministic snap (the variant) is the nearest
    # centre; the reference's noise-free mixture of these far-apart centres is that centre too.
    hsa = HierarchicalStochasticAttention(1, 2, 2, form="snap")
    pts = torch.tensor([[5.0, 0.0], [5.2, 0.1], [-5.0, 0.0], [-4.9, -0.1]])[:, None]
    hsa.set_centroids(pts)
    snapped = hsa.centroid_keys(pts[None].permute(0, 2, 1, 3), sample=False)[0, 0]
    hsa.form = "reference"
    mixed = hsa.centroid_keys(pts[None].permute(0, 2, 1, 3), sample=False)[0, 0]
    torch.testing.assert_close(mixed, snapped, rtol=0, atol=1e-6)
    assert torch.allclose(snapped[0], snapped[1]) and torch.allclose(snapped[2], snapped[3])
    assert snapped[0, 0] > 4.9 and snapped[2, 0] < -4.8
    with pytest.raises(ValueError, match="N >= 2"):
        hsa.set_centroids(pts[:1])


@pytest.mark.parametrize("form", ["reference", "snap"])
def test_hsa_sampled_weights_follow_the_softmax(form):
    """At a low tau2 a sampled attention row is nearly one-hot, drawn from softmax(logits).

    The logits are the raw products q k~ in the authors' form, q k~ / sqrt(Dh) in ours.
    """
    torch.manual_seed(1)
    n, D = 6000, 4
    hsa = HierarchicalStochasticAttention(1, D, D, tau1=1.0, tau2=0.03, form=form).eval()
    with torch.no_grad():
        hsa.centroids.copy_(10.0 * torch.eye(D)[None])  # key j takes centroid j for sure
    k = (10.0 * torch.eye(D)).expand(n, 1, D, D)
    q = torch.tensor([0.1, 0.2, -0.1, 0.0]).expand(n, 1, D, D)  # every query the same
    v = torch.eye(D).expand(n, 1, D, D)  # output row = the attention weights
    mask = torch.ones(n, 1, 1, D, dtype=torch.bool)
    # The reference samples in eval mode by itself; the variant needs Monte Carlo mode.
    with torch.no_grad(), stochastic(hsa, hsa=form == "snap"):
        weights = hsa(q, k, v, mask)[:, 0, 0]  # (n, D)
    logits = 10.0 * torch.tensor([0.1, 0.2, -0.1, 0.0])
    if form == "snap":
        logits = logits / math.sqrt(D)
    np.testing.assert_allclose(weights.mean(0).numpy(), torch.softmax(logits, 0).numpy(),
                               atol=0.02)
    assert (weights.max(1).values > 0.9).float().mean() > 0.9  # nearly one-hot draws


def test_gumbel_noise_is_standard_gumbel():
    """The in-place noise of HSA's weights is standard Gumbel (scipy's gumbel_r), finite."""
    from scipy import stats

    from astroray.models.layers import hsa as hsa_module

    torch.manual_seed(0)
    g = hsa_module._gumbel_noise((50, 4, 100), torch.device("cpu")).flatten().numpy()
    assert g.shape == (20000,) and np.isfinite(g).all()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > 0.01
    assert abs(g.mean() - np.euler_gamma) < 0.03 and abs(g.var() - math.pi ** 2 / 6) < 0.08
