"""Hierarchical stochastic attention (HSA; Pei et al. 2022), as used for light-curve classifiers.

Two sampled levels replace the deterministic attention of a transformer block:

1. Stochastic keys: each head's key ``k_j`` is snapped to one of ``K`` learnable centroids,
   chosen by a hard Gumbel-softmax at temperature ``tau1`` over the logits
   ``-|k_j - c|^2 / sqrt(Dh)`` (straight-through: the forward pass uses the one-hot choice,
   the gradient the soft one).
2. Stochastic attention: the weights over the snapped keys are a (soft) Gumbel-softmax sample
   of ``q k~^T / sqrt(d)`` at temperature ``tau2`` instead of a softmax.

With sampling off (a deterministic pass) the key is the nearest centroid and the weights are
the plain softmax. ``sample_weights=False`` keeps level 1 only (stochastic hierarchical keys,
softmax weights): the attention of HA-MC Dropout (Cádiz-Leyton et al. 2025), which takes its
further randomness from dropout. Repeated sampled passes of a trained model give the
predictive distribution whose spread scores uncertainty (see :mod:`astroray.uncertainty.scores`).

Swapping HSA into a *pretrained* encoder with random centroids throws the pretrained keys
away; :func:`fit_centroids` starts each layer's centroids at the k-means centres of the keys
that layer computes on real inputs, so that the snapped keys approximate the pretrained ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HierarchicalStochasticAttention", "fit_centroids", "gumbel_softmax"]


def gumbel_softmax(logits: torch.Tensor, tau: float, *, hard: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A Gumbel-softmax sample over the last axis; ``-inf`` logits get exactly zero weight.

    Args:
        logits: unnormalised log-probabilities (..., N); ``-inf`` excludes an entry.
        tau: temperature (> 0); small values approach a one-hot sample.
        hard: return the one-hot argmax of the sample with the soft sample's gradient.
        generator: random source (reproducible draws).
    """
    where = logits.device if generator is None else generator.device
    u = torch.rand(logits.shape, generator=generator, device=where).to(logits.device)
    gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))  # standard Gumbel
    soft = torch.softmax((logits.float() + gumbel) / tau, dim=-1).to(logits.dtype)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft  # straight-through


class HierarchicalStochasticAttention(nn.Module):
    """Multi-head attention with centroid-snapped keys and Gumbel-softmax weights.

    Args:
        num_heads: heads H.
        head_dim: width per head Dh.
        num_centroids: learnable key centroids K per head.
        tau1: temperature of the key-to-centroid choice.
        tau2: temperature of the attention weights.
        sample_weights: draw the attention weights (level 2); False: softmax weights over the
            sampled keys.

    Attributes:
        mc: draw the stochastic choices in eval mode too (Monte Carlo inference; set by
            :func:`astroray.uncertainty.stochastic`). Training always samples; eval mode
            without it is the deterministic pass.
    """

    def __init__(self, num_heads: int, head_dim: int, num_centroids: int = 16,
                 tau1: float = 1.0, tau2: float = 1.0, sample_weights: bool = True):
        super().__init__()
        if num_centroids < 1 or tau1 <= 0 or tau2 <= 0:
            raise ValueError(f"HSA needs num_centroids >= 1 and positive temperatures; got "
                             f"K={num_centroids}, tau1={tau1}, tau2={tau2}")
        self.centroids = nn.Parameter(torch.randn(num_heads, num_centroids, head_dim)
                                      / math.sqrt(head_dim))  # (H, K, Dh)
        self.tau1, self.tau2 = float(tau1), float(tau2)
        self.sample_weights = bool(sample_weights)
        self.mc = False

    def key_logits(self, k: torch.Tensor) -> torch.Tensor:
        """Logits (B, H, T, K) of each key's centroid choice: ``-|k - c|^2 / sqrt(Dh)``.

        ``|k|^2`` is the same for every centroid of a key, so it is left out.
        """
        c = self.centroids.to(k.dtype)  # (H, K, Dh)
        dot = torch.einsum("bhtd,hkd->bhtk", k, c)
        return (2.0 * dot - (c * c).sum(-1)[None, :, None, :]) / math.sqrt(k.shape[-1])

    @torch.no_grad()
    def set_centroids(self, keys: torch.Tensor, seed: int = 0) -> None:
        """Centroids := the k-means centres (scikit-learn) of sample keys (N, H, Dh), per head."""
        from sklearn.cluster import KMeans

        h, n_c, _ = self.centroids.shape
        if keys.ndim != 3 or keys.shape[1] != h or keys.shape[0] < n_c:
            raise ValueError(f"HSA centroids: need keys (N >= {n_c}, {h}, Dh); got "
                             f"{tuple(keys.shape)}")
        x = keys.detach().double().cpu().numpy()
        for head in range(h):
            km = KMeans(n_clusters=n_c, n_init=3, random_state=seed).fit(x[:, head])
            self.centroids[head] = torch.from_numpy(km.cluster_centers_).to(self.centroids)

    def snap_keys(self, k: torch.Tensor, sample: bool) -> torch.Tensor:
        """Keys (B, H, T, Dh) replaced by their chosen centroids."""
        sim = self.key_logits(k)  # (B, H, T, K)
        if sample:
            choice = gumbel_softmax(sim, self.tau1, hard=True)
        else:
            choice = F.one_hot(sim.argmax(dim=-1), sim.shape[-1]).to(k.dtype)
        return torch.einsum("bhtk,hkd->bhtd", choice, self.centroids.to(k.dtype))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                attn_mask: torch.Tensor) -> torch.Tensor:
        """Attend: ``q, k, v`` (B, H, T, Dh); ``attn_mask`` (B, 1, 1, T) bool (True: may attend).

        Returns:
            (B, H, T, Dh).
        """
        sample = self.training or self.mc
        keys = self.snap_keys(k, sample)  # (B, H, T, Dh)
        scale = 1.0 / math.sqrt(q.shape[-1])
        if not (sample and self.sample_weights):
            return F.scaled_dot_product_attention(q, keys, v, attn_mask=attn_mask, scale=scale)
        # Gumbel-softmax weights softmax((q k~ / sqrt(d) + g) / tau2) through the fused kernel:
        # the noise g (standard Gumbel, -log of an Exp(1) draw) is an additive mask.
        b, h, t, _ = q.shape
        g = -torch.empty(b, h, t, keys.shape[2], device=q.device).exponential_().log()
        bias = g.masked_fill(~attn_mask, float("-inf")) / self.tau2  # (B, H, T, T)
        return F.scaled_dot_product_attention(q, keys, v, attn_mask=bias.to(q.dtype),
                                              scale=scale / self.tau2)


@torch.no_grad()
def fit_centroids(model: nn.Module, forward: Callable[[], Any], *, max_keys: int = 20000,
                  seed: int = 0) -> int:
    """Start every HSA layer of ``model`` at the k-means centres of the keys it computes.

    Layers are fitted in the order they run: ``forward()`` (a pass of the model over sample
    inputs, in eval mode) is called once per HSA layer, so a layer sees the keys it will get
    once the layers before it snap theirs. Only keys of attendable points are used.

    Args:
        model: a module with :class:`HierarchicalStochasticAttention` layers.
        forward: runs the model on sample inputs.
        max_keys: at most this many keys (a random subset) per layer.
        seed: k-means and subset seed.

    Returns:
        The number of HSA layers fitted.
    """
    layers = [m for m in model.modules() if isinstance(m, HierarchicalStochasticAttention)]
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    try:
        for layer in layers:
            seen: list[torch.Tensor] = []

            def grab(_module: nn.Module, args: tuple, seen: list = seen) -> None:
                _, k, _, mask = args  # k (B, H, T, Dh); mask (B, 1, 1, T)
                valid = mask[:, 0, 0, :].reshape(-1)  # (B * T,)
                keys = k.permute(0, 2, 1, 3).reshape(-1, k.shape[1], k.shape[3])  # (B*T, H, Dh)
                seen.append(keys[valid].float().cpu())

            handle = layer.register_forward_pre_hook(grab)
            try:
                forward()
            finally:
                handle.remove()
            keys = torch.cat(seen)  # (N, H, Dh)
            if len(keys) > max_keys:
                keys = keys[torch.randperm(len(keys), generator=gen)[:max_keys]]
            layer.set_centroids(keys, seed)
    finally:
        model.train(was_training)
    return len(layers)
