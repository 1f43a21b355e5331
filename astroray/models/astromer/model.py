"""Astromer 1 and 2 in PyTorch: encoder, masked-magnitude objective, embeddings, heads.

The encoder (Donoso-Oliva et al. 2023, A&A 670, A54; Astromer 2: Donoso-Oliva et al. 2025)
reads single-band windows of up to 200 observations: magnitudes (zero mean per window) are
projected to ``d`` dimensions and added to a sinusoidal encoding of the observation *time*
(not the index), then pass through attention blocks (multi-head self-attention and a tanh
feed-forward network, each followed by dropout and LayerNorm). A linear head predicts the
magnitude of every point. Pretraining probes half of the valid points of each window: of
those, 20% stay as they are, 20% get a magnitude drawn from the same window, and the rest are
hidden from attention (Astromer 2 also replaces them by a trainable [MASK] value); the loss is
the RMSE over probed points, optionally weighted by the observational errors.

Padding is handled by boolean masks throughout: padded and hidden points are never attended
to, so the outputs at valid points do not depend on what the padding holds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from astroray.models._pretrained import PretrainedMixin
from astroray.models.astromer.config import AstromerClassifierConfig, AstromerConfig

__all__ = [
    "Astromer",
    "AstromerClassifier",
    "AstromerClassifierHead",
    "AstromerOutput",
    "MaskedInputs",
    "TimeEncoding",
    "WeightedEmbedding",
    "layer_means",
    "mask_inputs",
    "masked_mean",
    "masked_rmse",
    "sinusoidal_frequencies",
]


def sinusoidal_frequencies(dim: int, base: float, max_frequency: float = 1.0) -> torch.Tensor:
    """Angular frequencies (rad/day) of the time encoding: ``max_frequency * base ** (-2 j / dim)``.

    As in the Astromer papers, each dimension ``j`` has its own frequency; even dimensions
    take the sine and odd ones the cosine of ``t * omega_j``.
    """
    j = torch.arange(dim, dtype=torch.float64)
    return (float(max_frequency) * float(base) ** (-2.0 * j / dim)).to(torch.float32)


class TimeEncoding(nn.Module):
    """Sinusoidal encoding of observation times: ``sin(t * omega_j + phi_j)``.

    ``phi_j`` is 0 for even ``j`` and pi/2 (a cosine) for odd ``j``. Fixed, or trainable with
    frequencies and phases initialised to the fixed values.

    Args:
        dim: encoding width.
        base: frequency base (Astromer: 1000, times in days).
        trainable: learn the frequencies and phases.
        max_frequency: the highest frequency (rad/day; Astromer: 1).
    """

    def __init__(self, dim: int, base: float, trainable: bool = False,
                 max_frequency: float = 1.0):
        super().__init__()
        freq = sinusoidal_frequencies(dim, base, max_frequency)
        phase = (torch.arange(dim) % 2).to(torch.float32) * (math.pi / 2.0)
        if trainable:
            self.freq = nn.Parameter(freq)
            self.phase = nn.Parameter(phase)
        else:
            self.register_buffer("freq", freq)
            self.register_buffer("phase", phase)
        self.trainable = trainable

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        """Encode times ``(B, T)`` (days) as ``(B, T, dim)``."""
        angle = times.float()[..., None] * self.freq  # (B, T, dim)
        if self.trainable:
            return torch.sin(angle + self.phase)
        # Fixed: exact sin / cos (sin(x + pi/2) loses precision for large x in float32).
        odd = self.phase > 0
        return torch.where(odd, torch.cos(angle), torch.sin(angle))


class _AttentionBlock(nn.Module):
    """Self-attention + feed-forward, each followed by dropout and post-LayerNorm."""

    def __init__(self, config: AstromerConfig):
        super().__init__()
        d = config.d_model
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn_dim), nn.Tanh(),
                                 nn.Linear(config.ffn_dim, d))
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.residual = config.residual
        self.hsa = None
        if config.attention in ("hsa", "hsa_keys"):
            from astroray.uncertainty.hsa import HierarchicalStochasticAttention

            self.hsa = HierarchicalStochasticAttention(
                config.num_heads, config.head_dim, config.hsa_centroids, config.hsa_tau1,
                config.hsa_tau2, sample_weights=config.attention == "hsa")

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, D); ``attn_mask`` (B, 1, 1, T) bool, True where a key may be attended."""
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, T, Dh)
        if self.hsa is None:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, T, Dh)
        else:
            att = self.hsa(q, k, v, attn_mask)  # (B, H, T, Dh)
        att = att.transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        att = self.dropout(self.out(att))
        x = self.norm1(x + att if self.residual else att)
        ff = self.dropout(self.ffn(x))
        return self.norm2(x + ff if self.residual else ff)


@dataclasses.dataclass
class AstromerOutput:
    """What :meth:`Astromer.forward` returns.

    Attributes:
        prediction: predicted (zero-mean) magnitude of every point, (B, T).
        states: the input embedding followed by every block's output, each (B, T, D); with
            ``pe_position="output"`` the last one includes the time encoding.
    """

    prediction: torch.Tensor
    states: list[torch.Tensor]

    @property
    def last_hidden_state(self) -> torch.Tensor:
        """The representation the prediction head reads, (B, T, D)."""
        return self.states[-1]


class Astromer(PretrainedMixin, nn.Module):
    """The Astromer encoder with its magnitude-prediction head.

    Args:
        config: the architecture (see :class:`AstromerConfig`).
    """

    config_class = AstromerConfig
    model_type = "astromer"

    def __init__(self, config: AstromerConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.input_proj = nn.Linear(1, d)
        self.time_encoding = TimeEncoding(d, config.pe_base, config.pe_type == "trainable",
                                          config.pe_max_frequency)
        self.mask_value = nn.Parameter(torch.zeros(1)) if config.mask_token else None
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_AttentionBlock(config) for _ in range(config.num_layers))
        self.head = nn.Linear(d, 1)

    @property
    def num_states(self) -> int:
        """Number of representations :attr:`AstromerOutput.states` holds (blocks + 1)."""
        return self.config.num_layers + 1

    def forward(self, times: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                hidden: torch.Tensor | None = None) -> AstromerOutput:
        """Encode windows and predict every point's magnitude.

        Args:
            times: days since the window start, (B, T).
            values: zero-mean magnitudes, (B, T); padded entries are ignored.
            mask: True on valid (non-padded) points, (B, T).
            hidden: True on points hidden from attention (pretraining), (B, T); their
                values are replaced by the [MASK] value (or zero).

        Returns:
            The predictions and the per-block representations.
        """
        mask = mask.bool()
        if hidden is not None:
            hidden = hidden.bool() & mask
            fill = (self.mask_value.to(values.dtype) if self.mask_value is not None
                    else values.new_zeros(()))
            values = torch.where(hidden, fill, values)
            attend = mask & ~hidden
        else:
            attend = mask
        # A window whose every point is hidden attends to its (hidden) valid points rather
        # than to nothing: softmax over no key is NaN. Their values are replaced, so nothing
        # leaks.
        attend = torch.where(attend.any(dim=1, keepdim=True), attend, mask)
        attend = attend | ~attend.any(dim=1, keepdim=True)  # all-padding rows (never valid)
        attn_mask = attend[:, None, None, :]  # (B, 1, 1, T)
        scaled = values * self.config.value_scale
        x = self.input_proj(scaled[..., None].to(self.input_proj.weight.dtype))  # (B, T, D)
        pe = self.time_encoding(times)  # (B, T, D)
        if self.config.pe_position == "input":
            x = x + pe.to(x.dtype)
        states = [x]
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x, attn_mask)
            states.append(x)
        if self.config.pe_position == "output":
            x = x + pe.to(x.dtype)
            states[-1] = x
        prediction = self.head(x).squeeze(-1)  # (B, T)
        return AstromerOutput(prediction=prediction, states=states)

    def embed(self, times: torch.Tensor, values: torch.Tensor,
              mask: torch.Tensor) -> torch.Tensor:
        """Masked time-means of the input embedding and of every block output, (B, S, D)."""
        return layer_means(self(times, values, mask).states, mask)


# ------------------------------------------------------------------------------------------
# Masked-magnitude objective
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class MaskedInputs:
    """A pretraining batch after masking (all (B, T)).

    Attributes:
        values: the model's input: magnitudes with the randomised points replaced.
        probed: points whose magnitude is predicted (the loss is taken on them).
        hidden: probed points hidden from attention.
        randomised: probed points given a magnitude from elsewhere in the window.
        kept: probed points left unchanged and visible.
    """

    values: torch.Tensor
    probed: torch.Tensor
    hidden: torch.Tensor
    randomised: torch.Tensor
    kept: torch.Tensor


def _stochastic_count(fraction: float, n: torch.Tensor, generator: torch.Generator | None
                      ) -> torch.Tensor:
    """``floor(fraction * n + u)``, u ~ U(0, 1): an integer count whose mean is exact."""
    u = torch.rand(n.shape, generator=generator, device=n.device)
    return torch.floor(fraction * n.float() + u).long()


def _rank(scores: torch.Tensor) -> torch.Tensor:
    """Rank of each entry along the last axis (0 = smallest)."""
    return torch.argsort(torch.argsort(scores, dim=-1), dim=-1)


def mask_inputs(values: torch.Tensor, mask: torch.Tensor, *, probe_fraction: float = 0.5,
                keep_fraction: float = 0.2, random_fraction: float = 0.2,
                generator: torch.Generator | None = None) -> MaskedInputs:
    """Choose the probed points of each window and corrupt the input (BERT-style).

    Per window, ``probe_fraction`` of the valid points are probed (counts rounded
    stochastically, so the expected fractions are exact for any window length); of those,
    ``keep_fraction`` stay unchanged, ``random_fraction`` get the magnitude of a random valid
    point of the same window, and the rest are hidden.

    Args:
        values: magnitudes, (B, T).
        mask: True on valid points, (B, T).
        probe_fraction: fraction of valid points probed.
        keep_fraction: fraction of probed points kept unchanged.
        random_fraction: fraction of probed points replaced by a random magnitude.
        generator: torch random generator (on the tensors' device) for reproducible masks.

    Returns:
        The corrupted values and the boolean masks.
    """
    mask = mask.bool()
    B, T = values.shape
    device = values.device
    n_valid = mask.sum(dim=1)  # (B,)
    n_probe = torch.minimum(_stochastic_count(probe_fraction, n_valid, generator), n_valid)
    n_keep = _stochastic_count(keep_fraction, n_probe, generator)
    n_rand = torch.minimum(_stochastic_count(random_fraction, n_probe, generator),
                           n_probe - n_keep).clamp(min=0)
    n_keep = torch.minimum(n_keep, n_probe)
    # Rank valid points in random order (padding last): the first n_probe are probed.
    scores = torch.rand((B, T), generator=generator, device=device)
    probed = (_rank(torch.where(mask, scores, 2.0)) < n_probe[:, None]) & mask
    # Rank the probed points again to split them into kept / randomised / hidden.
    scores = torch.rand((B, T), generator=generator, device=device)
    rank = _rank(torch.where(probed, scores, 2.0))
    kept = probed & (rank < n_keep[:, None])
    randomised = probed & (rank >= n_keep[:, None]) & (rank < (n_keep + n_rand)[:, None])
    hidden = probed & ~kept & ~randomised
    # A random valid point of the same window: valid positions first, then pick one of them.
    valid_first = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (B, T)
    pick = torch.floor(torch.rand((B, T), generator=generator, device=device)
                       * n_valid.clamp(min=1)[:, None].float()).long().clamp(max=T - 1)
    source = torch.gather(valid_first, 1, pick)
    new_values = torch.where(randomised, torch.gather(values, 1, source), values)
    return MaskedInputs(values=new_values, probed=probed, hidden=hidden, randomised=randomised,
                        kept=kept)


def masked_rmse(prediction: torch.Tensor, target: torch.Tensor, probed: torch.Tensor,
                errors: torch.Tensor | None = None, *, error_floor: float = 0.01) -> torch.Tensor:
    """RMSE over probed points, optionally weighted by inverse variance.

    ``sqrt(sum(w r^2) / sum(w))`` over the probed points of the batch, with ``w = 1`` or
    ``w = 1 / (err^2 + error_floor^2)`` (the floor keeps a few points with tiny quoted errors
    from dominating).

    Args:
        prediction: predicted magnitudes, (B, T).
        target: true magnitudes, (B, T).
        probed: True where the loss is taken, (B, T).
        errors: observational errors, (B, T), for the weighted loss.
        error_floor: added in quadrature to the errors.

    Returns:
        A scalar tensor.
    """
    weight = probed.to(prediction.dtype if prediction.is_floating_point() else torch.float32)
    if errors is not None:
        weight = weight / (errors.float() ** 2 + error_floor ** 2)
    sq = (prediction.float() - target.float()) ** 2
    return torch.sqrt((sq * weight).sum() / weight.sum().clamp(min=1e-12))


# ------------------------------------------------------------------------------------------
# Embeddings and downstream heads
# ------------------------------------------------------------------------------------------


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid time steps: ``x`` (B, T, D), ``mask`` (B, T) -> (B, D)."""
    w = mask.to(x.dtype)[..., None]  # (B, T, 1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)


def layer_means(states: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Masked time-means of each representation, stacked: (B, S, D)."""
    return torch.stack([masked_mean(s, mask) for s in states], dim=1)


class WeightedEmbedding(nn.Module):
    """Astromer 2's weighted per-sample embedding: a softmax-weighted sum over representations.

    The weights (one per representation: the input embedding and every block output) are
    learned with the downstream classifier; they start equal.

    Args:
        num_states: representations combined (``num_layers + 1``).
    """

    def __init__(self, num_states: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_states))

    @property
    def weights(self) -> torch.Tensor:
        """The softmax weights, (S,)."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, means: torch.Tensor) -> torch.Tensor:
        """Combine layer means (B, S, D) into (B, D)."""
        return torch.einsum("bsd,s->bd", means, self.weights)


class AstromerClassifierHead(nn.Module):
    """Weighted per-sample embedding into an MLP (1024-512-256, ReLU, LayerNorm) and logits.

    Args:
        num_states: representations per sample (encoder blocks + 1).
        d_model: their width.
        num_classes: output classes.
        hidden: MLP widths.
        dropout: dropout between MLP layers.
    """

    def __init__(self, num_states: int, d_model: int, num_classes: int,
                 hidden: Sequence[int] = (1024, 512, 256), dropout: float = 0.0):
        super().__init__()
        self.weighted = WeightedEmbedding(num_states)
        layers: list[nn.Module] = []
        width = d_model
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.LayerNorm(width))
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(width, num_classes)
        self.register_buffer("feature_mean", None)
        self.register_buffer("feature_std", None)

    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """z-score inputs with these (S, D) statistics (of the training objects) first."""
        self.feature_mean = mean.detach().float().clone()
        self.feature_std = std.detach().float().clamp(min=1e-6).clone()

    def forward(self, means: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) from layer means (B, S, D)."""
        if self.feature_mean is not None:
            means = (means - self.feature_mean) / self.feature_std
        return self.out(self.mlp(self.weighted(means)))


class AstromerClassifier(PretrainedMixin, nn.Module):
    """An Astromer encoder and its classification head, saved as one model folder.

    The encoder embeds each window; the per-object input of the head is the mean of the
    layer means over the object's windows (all bands), as in few-shot training.

    Args:
        config: the encoder, the class names and the head (:class:`AstromerClassifierConfig`).
    """

    config_class = AstromerClassifierConfig
    model_type = "astromer-classifier"

    def __init__(self, config: AstromerClassifierConfig):
        super().__init__()
        self.config = config
        self.encoder = Astromer(config.encoder)
        self.head = AstromerClassifierHead(self.encoder.num_states, config.encoder.d_model,
                                           len(config.labels), hidden=config.hidden,
                                           dropout=config.dropout)
        if config.standardize:  # the buffers exist, so that saved statistics load back
            shape = (self.encoder.num_states, config.encoder.d_model)
            self.head.set_standardization(torch.zeros(shape), torch.ones(shape))

    @classmethod
    def from_parts(cls, encoder: Astromer, head: AstromerClassifierHead, labels: Sequence[str],
                   *, min_points: int = 5, bands: Sequence[str] | None = None
                   ) -> AstromerClassifier:
        """Assemble a classifier from a trained encoder and a head trained on its embeddings."""
        hidden = tuple(m.out_features for m in head.mlp if isinstance(m, nn.Linear))
        dropout = next((m.p for m in head.mlp if isinstance(m, nn.Dropout)), 0.0)
        config = AstromerClassifierConfig(
            encoder=encoder.config, labels=tuple(labels), hidden=hidden, dropout=dropout,
            standardize=head.feature_mean is not None, min_points=min_points,
            bands=None if bands is None else tuple(bands))
        model = cls(config)
        model.encoder.load_state_dict(encoder.state_dict())
        model.head.load_state_dict(head.state_dict())
        return model.eval()

    def forward(self, means: torch.Tensor) -> torch.Tensor:
        """Class logits (B, C) from per-object layer means (B, S, D)."""
        return self.head(means)
