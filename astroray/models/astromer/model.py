"""Astromer 1 and 2 in PyTorch: encoder, masked-magnitude objective, embeddings, heads.

The encoder (Donoso-Oliva et al. 2023, A&A 670, A54; Astromer 2: Donoso-Oliva et al. 2025)
reads single-band windows of up to 200 observations: magnitudes (zero mean per window) are
projected to ``d`` dimensions and added to a sinusoidal encoding of the observation *time*
(not the index), then pass through attention blocks (multi-head self-attention and a tanh
feed-forward network, each followed by dropout and LayerNorm). A linear head predicts the
magnitude of every point. Pretraining probes half of the valid points of each window: of
those, 20% stay as they are, 20% get a magnitude drawn from the same window, and the rest are
hidden from attention (Astromer 2 also replaces them by a trainable [MASK] value); the loss is
the official per-window RMSE over probed points, optionally weighted by the observational
errors (Astromer 2).

Padding is handled by boolean masks: with ``attention_masking="exclude"`` padded and hidden
points are never attended to, so the outputs at valid points do not depend on what the
padding holds. The official preset (``astromer-v1-official``, the published weights) keeps the
official code's +1-logit quirk instead, under which padded steps are attended; its windows
must then be padded as the official loader pads them (zeros, to 200 steps).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from astroray.models.astromer.config import AstromerClassifierConfig, AstromerConfig
from astroray.models.layers.hsa import HierarchicalStochasticAttention
from astroray.models.pretrained import PretrainedMixin

__all__ = [
    "Astromer",
    "AstromerClassifier",
    "AstromerClassifierHead",
    "AstromerOutput",
    "MaskedInputs",
    "TimeEncoding",
    "WeightedEmbedding",
    "error_weights",
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


def _glorot_init(module: nn.Module) -> None:
    """Keras' Dense default: Glorot-uniform weights, zero biases.

    The fused query/key/value projection is initialised as the three Dense layers of the
    official code (each d -> d), not as one d -> 3d layer (a smaller Glorot bound).
    """
    if isinstance(module, nn.Linear):
        weight = module.weight
        if getattr(module, "_astromer_qkv", False):
            for chunk in weight.data.chunk(3, dim=0):
                nn.init.xavier_uniform_(chunk)
        else:
            nn.init.xavier_uniform_(weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class _AttentionBlock(nn.Module):
    """Self-attention + feed-forward, each followed by dropout and post-LayerNorm."""

    def __init__(self, config: AstromerConfig):
        super().__init__()
        d = config.d_model
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.qkv = nn.Linear(d, 3 * d)
        self.qkv._astromer_qkv = True  # Glorot per projection (see _glorot_init)
        self.out = nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, config.ffn_dim), nn.Tanh(),
                                 nn.Linear(config.ffn_dim, d))
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.residual = config.residual
        self.hsa = None
        if config.attention.startswith("hsa"):
            self.hsa = HierarchicalStochasticAttention(
                config.num_heads, config.head_dim, config.hsa_centroids, config.hsa_tau1,
                config.hsa_tau2, sample_weights=not config.attention.startswith("hsa_keys"),
                form="snap" if config.attention.endswith("_snap") else "reference")

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """Attend and transform ``x`` (B, T, D).

        ``attn_mask`` is (B, 1, 1, T) bool, True where a key may be attended, or (B, 1, T, T)
        float, added to the attention logits (the official +1 quirk).
        """
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, T, Dh)
        if self.hsa is None:
            if attn_mask.is_floating_point():
                attn_mask = attn_mask.to(q.dtype)
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
        self.head_norm = (nn.LayerNorm(d, eps=config.layer_norm_eps) if config.head_norm
                          else None)
        self.head = nn.Linear(d, 1)
        if config.init == "glorot":
            self.apply(_glorot_init)
        # The head starts at zero: the prediction is the window mean (the values are zero
        # mean), so pretraining starts at R^2 ~ 0 instead of spending its budget getting back
        # to the trivial answer. The weights still get gradients, so it learns from step 1.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def dummy_inputs(cls, config: AstromerConfig, batch_size: int = 2,
                     seed: int = 0) -> dict[str, torch.Tensor]:
        """Tiny random inputs of :meth:`forward` (tests): 16-point windows, the last half padded.

        Args:
            config: the model's config.
            batch_size: windows B.
            seed: seed of the draws (the same inputs on every call).
        """
        g = torch.Generator().manual_seed(seed)
        t = min(config.window_size, 16)
        mask = torch.ones(batch_size, t, dtype=torch.bool)  # (B, T)
        mask[-1, t // 2:] = False
        times = torch.cumsum(torch.rand(batch_size, t, generator=g) * 2.0, dim=1) * mask
        values = torch.randn(batch_size, t, generator=g) * mask
        return {"times": times, "values": values, "mask": mask}

    @property
    def num_states(self) -> int:
        """Number of representations :attr:`AstromerOutput.states` holds (blocks + 1)."""
        return self.config.num_layers + 1

    def forward(self, times: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                hidden: torch.Tensor | None = None) -> AstromerOutput:
        """Encode windows and predict every point's magnitude.

        Args:
            times: days from the window's origin, (B, T): its first observation or its
                mean time, as ``config.time_origin`` says.
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
        if self.config.attention_masking == "plus_one":
            # The official quirk: +1 on the logit of every (query, key) pair in which either
            # step is padded or hidden; nothing is excluded.
            off = ~attend
            attn_mask = (off[:, :, None] | off[:, None, :]).to(torch.float32)[:, None]
            # (B, 1, T, T)
        else:
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
        if self.head_norm is not None:
            x = self.head_norm(x)
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


def error_weights(errors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Astromer 2's loss weights: ``1 / sigma`` min-max normalised per window, plus 1e-3.

    As the official ``create_loss_weigths`` (astromer-science/main-code): ``W = 1 / err``,
    ``(W - min W) / (max W - min W) + 1e-3`` per window, so the best-measured point of a
    window weighs ~1 and the worst 1e-3. The official min and max run over the padded window
    too (padding has ``W = 0``, so its min is 0 in every short window); here they run over the
    valid points only, so a short window is scaled like a full one (a deliberate difference).
    A window whose errors are all equal gets weight 1e-3 everywhere (0 / 0 -> 0, as
    ``divide_no_nan``).

    Args:
        errors: observational errors, (B, T); non-positive errors get ``W = 0``.
        mask: True on valid points, (B, T).

    Returns:
        Weights (B, T), zero on invalid points.
    """
    err = errors.float()
    mask = mask.bool()
    inv = torch.where(mask & (err > 0), 1.0 / err.clamp(min=1e-30), torch.zeros_like(err))
    big = torch.finfo(inv.dtype).max
    low = torch.where(mask, inv, torch.full_like(inv, big)).amin(dim=1, keepdim=True)
    high = torch.where(mask, inv, torch.full_like(inv, -big)).amax(dim=1, keepdim=True)
    span = high - low
    scaled = torch.where(span > 0, (inv - low) / span.clamp(min=1e-30), torch.zeros_like(inv))
    return torch.where(mask, scaled + 1e-3, torch.zeros_like(inv))


def masked_rmse(prediction: torch.Tensor, target: torch.Tensor, probed: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """The official masked RMSE: the root of the mean over windows of each window's mean.

    ``sqrt(mean_b( sum_t(w r^2 p) / sum_t(p) ))`` over the windows with at least one probed
    point, as ``custom_rmse`` of the official code (the weights multiply the squared residuals
    but the divisor is the number of probed points). A per-window mean, so every window counts
    the same whatever its length or brightness.

    Args:
        prediction: predicted magnitudes, (B, T).
        target: true magnitudes, (B, T).
        probed: True where the loss is taken, (B, T).
        weights: per-point weights, (B, T) (:func:`error_weights` for Astromer 2), or None.

    Returns:
        A scalar tensor.
    """
    p = probed.float()
    sq = (prediction.float() - target.float()) ** 2 * p
    if weights is not None:
        sq = sq * weights.float()
    count = p.sum(dim=1)  # (B,)
    has = count > 0
    per_window = sq.sum(dim=1) / count.clamp(min=1.0)
    n = has.sum().clamp(min=1)
    return torch.sqrt((per_window * has).sum() / n)


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

    @classmethod
    def dummy_inputs(cls, config: AstromerClassifierConfig, batch_size: int = 2,
                     seed: int = 0) -> dict[str, torch.Tensor]:
        """Tiny random inputs of :meth:`forward` (tests): layer means (B, S, D)."""
        g = torch.Generator().manual_seed(seed)
        shape = (batch_size, config.encoder.num_layers + 1, config.encoder.d_model)
        return {"means": torch.randn(shape, generator=g)}

    def forward(self, means: torch.Tensor) -> torch.Tensor:
        """Class logits (B, C) from per-object layer means (B, S, D)."""
        return self.head(means)
