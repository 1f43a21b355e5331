"""Hierarchical stochastic attention (HSA; Pei et al. 2022), as used for light-curve classifiers.

Two sampled levels replace the deterministic attention of a transformer block. By default
(``form="reference"``) they are those of the authors' code (amzn/sto-transformer,
``StoSelfDualAttention`` in ``code/common/transformer.py``):

1. Stochastic keys: each head's key ``k_j`` is scored against ``K`` learnable centroids by dot
   product, ``k_j . c``, and replaced by the mixture of centroids weighted by a *soft*
   Gumbel-softmax sample of those scores at temperature ``tau1``.
2. Stochastic attention: the weights over the mixed keys are a (soft) Gumbel-softmax sample
   of the *unscaled* products ``q k~^T`` at temperature ``tau2``, instead of a softmax.

Both levels sample on every call, in training and in evaluation alike (the authors call
``F.gumbel_softmax`` whatever the module's mode): an HSA model has no deterministic pass.

``form="snap"`` is our earlier reading, kept as the named variant ``hsa_snap`` (measured
against the reference in ``docs/uncertainty.md``): keys *snapped* to one centroid by a hard,
straight-through Gumbel-softmax over ``-|k_j - c|^2 / sqrt(Dh)``, Gumbel-softmax weights of
``q k~^T / sqrt(Dh)``, and, in eval mode outside Monte Carlo inference, the nearest centroid
and the plain softmax (a deterministic pass).

``sample_weights=False`` keeps level 1 only (stochastic hierarchical keys, softmax weights
``softmax(q k~^T / sqrt(Dh))``, the scaled attention of the encoder it replaces): the attention
of HA-MC Dropout (Cádiz-Leyton et al. 2025), which takes its further randomness from dropout.
Repeated sampled passes of a trained model give the predictive distribution whose spread
scores uncertainty (see :mod:`astroray.uncertainty.scores`).

Swapping HSA into a *pretrained* encoder with random centroids throws the pretrained keys
away; :func:`fit_centroids` starts each layer's centroids at the k-means centres of the keys
that layer computes on real inputs (our addition: the authors train from scratch, with
centroids drawn uniformly in [-0.5, 0.5]). Each head has its own K centroids, ``(H, K, Dh)``,
where the authors' module keeps one set ``(Dh, K)`` shared by its heads: fitted per head to
a pretrained encoder, the heads' keys lie in different places.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FORMS", "HierarchicalStochasticAttention", "fit_centroids", "gumbel_softmax"]

#: ``reference``: the authors' HSA; ``snap``: our earlier hard-snap variant.
FORMS = ("reference", "snap")


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


def _gumbel_noise(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(u))``, ``u`` uniform, computed in place.

    The same distribution as ``F.gumbel_softmax``'s ``-log`` of an Exp(1) draw, but about 3x
    faster on CPU: ``exponential_`` is slow there, and this tensor is (B, H, T, T), the
    largest of an HSA pass. ``u`` is kept off 0 and 1 (finite noise).
    """
    u = torch.rand(shape, device=device)
    return u.clamp_(1e-10, 1.0 - 1e-7).log_().neg_().log_().neg_()


class HierarchicalStochasticAttention(nn.Module):
    """Multi-head attention with centroid keys and Gumbel-softmax weights.

    Args:
        num_heads: heads H.
        head_dim: width per head Dh.
        num_centroids: learnable key centroids K per head.
        tau1: temperature of the key-to-centroid choice.
        tau2: temperature of the attention weights.
        sample_weights: draw the attention weights (level 2); False: softmax weights over the
            sampled keys.
        form: ``reference`` (the authors' HSA: dot-product key scores, soft mixture of
            centroids, unscaled Gumbel weights, sampling in every mode) or ``snap`` (hard
            snap to the nearest-by-distance centroid, scaled weights, deterministic in eval
            mode unless :attr:`mc`).

    Attributes:
        mc: draw the stochastic choices in eval mode too (Monte Carlo inference; set by
            :func:`astroray.models.layers.stochastic`). Only the ``snap`` form reads it: the
            reference form samples in every mode.
    """

    def __init__(self, num_heads: int, head_dim: int, num_centroids: int = 16,
                 tau1: float = 1.0, tau2: float = 1.0, sample_weights: bool = True,
                 form: str = "reference"):
        super().__init__()
        if num_centroids < 1 or tau1 <= 0 or tau2 <= 0:
            raise ValueError(f"HSA needs num_centroids >= 1 and positive temperatures; got "
                             f"K={num_centroids}, tau1={tau1}, tau2={tau2}")
        if form not in FORMS:
            raise ValueError(f"HSA form must be one of {FORMS}; got {form!r}")
        self.centroids = nn.Parameter(torch.randn(num_heads, num_centroids, head_dim)
                                      / math.sqrt(head_dim))  # (H, K, Dh)
        self.tau1, self.tau2 = float(tau1), float(tau2)
        self.sample_weights = bool(sample_weights)
        self.form = form
        self.mc = False

    def extra_repr(self) -> str:  # noqa: D102
        h, k, d = self.centroids.shape
        return (f"heads={h}, head_dim={d}, centroids={k}, tau1={self.tau1}, "
                f"tau2={self.tau2}, sample_weights={self.sample_weights}, form={self.form}")

    @property
    def samples(self) -> bool:
        """Whether the next call draws: always (reference), else in training or MC mode."""
        return self.form == "reference" or self.training or self.mc

    def key_logits(self, k: torch.Tensor) -> torch.Tensor:
        """Scores (B, H, T, K) of each key against each centroid.

        ``reference``: the dot product ``k . c``. ``snap``: ``-|k - c|^2 / sqrt(Dh)``, with
        ``|k|^2`` (the same for every centroid of a key) left out.
        """
        c = self.centroids.to(k.dtype)  # (H, K, Dh)
        dot = torch.einsum("bhtd,hkd->bhtk", k, c)
        if self.form == "reference":
            return dot
        return (2.0 * dot - (c * c).sum(-1)[None, :, None, :]) / math.sqrt(k.shape[-1])

    @torch.no_grad()
    def set_centroids(self, keys: torch.Tensor, seed: int = 0) -> None:
        """Centroids := the k-means centres (scikit-learn) of sample keys (N, H, Dh), per head."""
        from sklearn.cluster import KMeans  # lazy: sklearn

        h, n_c, _ = self.centroids.shape
        if keys.ndim != 3 or keys.shape[1] != h or keys.shape[0] < n_c:
            raise ValueError(f"HSA centroids: need keys (N >= {n_c}, {h}, Dh); got "
                             f"{tuple(keys.shape)}")
        x = keys.detach().double().cpu().numpy()
        for head in range(h):
            km = KMeans(n_clusters=n_c, n_init=3, random_state=seed).fit(x[:, head])
            self.centroids[head] = torch.from_numpy(km.cluster_centers_).to(self.centroids)

    def centroid_keys(self, k: torch.Tensor, sample: bool) -> torch.Tensor:
        """Keys (B, H, T, Dh) replaced by centroids: a soft mixture (reference) or one (snap).

        Without sampling: the noise-free softmax mixture (reference) or the nearest centroid
        (snap).
        """
        sim = self.key_logits(k)  # (B, H, T, K)
        if self.form == "reference":
            choice = (gumbel_softmax(sim, self.tau1) if sample
                      else torch.softmax(sim / self.tau1, dim=-1))
        elif sample:
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
        sample = self.samples
        keys = self.centroid_keys(k, sample)  # (B, H, T, Dh)
        scaled = 1.0 / math.sqrt(q.shape[-1])
        if not (sample and self.sample_weights):
            return F.scaled_dot_product_attention(q, keys, v, attn_mask=attn_mask,
                                                  scale=scaled)
        # The authors take Gumbel weights of the raw products q k~; our snap variant scaled
        # them by 1/sqrt(Dh) as softmax attention does.
        scale = 1.0 if self.form == "reference" else scaled
        # Gumbel-softmax weights softmax((q k~ * scale + g) / tau2) through the fused kernel:
        # the noise g (standard Gumbel) enters as an additive mask.
        b, h, t, _ = q.shape
        g = _gumbel_noise((b, h, t, keys.shape[2]), q.device)  # (B, H, T, T)
        bias = g.masked_fill_(~attn_mask, float("-inf")).div_(self.tau2)
        return F.scaled_dot_product_attention(q, keys, v, attn_mask=bias.to(q.dtype),
                                              scale=scale / self.tau2)


@torch.no_grad()
def fit_centroids(model: nn.Module, forward: Callable[[], Any], *, max_keys: int = 20000,
                  seed: int = 0) -> int:
    """Start every HSA layer of ``model`` at the k-means centres of the keys it computes.

    Layers are fitted in the order they run: ``forward()`` (a pass of the model over sample
    inputs, in eval mode) is called once per HSA layer, so a layer sees the keys it will get
    once the layers before it use their centroids. Only keys of attendable points are used.

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
