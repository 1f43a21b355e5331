"""Configuration of the Astromer encoder (Donoso-Oliva et al. 2023, 2025)."""

from __future__ import annotations

import dataclasses

from astroray.config import Config, check, check_positive_ints

__all__ = ["ASTROMER_TINY", "ASTROMER_V1", "ASTROMER_V1_OFFICIAL", "ASTROMER_V2",
           "AstromerClassifierConfig", "AstromerConfig"]

PE_TYPES = ("sinusoidal", "trainable")
PE_POSITIONS = ("input", "output")
#: ``hsa`` / ``hsa_keys``: hierarchical stochastic attention as its authors wrote it (with
#: Gumbel weights / with softmax weights); ``hsa_snap`` / ``hsa_keys_snap``: our earlier
#: hard-snap variant of the same (see :mod:`astroray.models.layers.hsa`).
ATTENTIONS = ("softmax", "hsa", "hsa_keys", "hsa_snap", "hsa_keys_snap")
TIME_ORIGINS = ("first", "mean")
ATTENTION_MASKINGS = ("exclude", "plus_one")
INITS = ("glorot", "torch")
#: Stochastic inference a saved classifier can carry (None: deterministic).
UNCERTAINTY_HEADS = (None, "mc_dropout", "hsa", "ha_mc_dropout", "hsa_snap",
                     "ha_mc_dropout_snap")


@dataclasses.dataclass
class AstromerConfig(Config):
    """Architecture and masked-magnitude objective of an Astromer encoder.

    Attributes:
        num_layers: attention blocks.
        num_heads: attention heads per block.
        head_dim: width of each head; the model width is ``num_heads * head_dim``.
        ffn_dim: hidden width of each block's feed-forward network (tanh, as in Astromer).
        dropout: dropout after the input embedding, the attention and the feed-forward
            network.
        window_size: observations per window the model is trained on (200).
        pe_type: ``sinusoidal`` (fixed: sin/cos of the observation time times frequencies
            ``pe_base ** (-2 j / d)``) or ``trainable`` (the same form with the frequencies
            and phases learned, initialised to the fixed ones; it works on continuous times,
            which a table indexed by position cannot).
        pe_base: base of the frequencies (times in days). The official code uses 10000 for
            every model (its configs say 1000, but that ``base`` is never passed on).
        pe_max_frequency: the highest angular frequency, in radians per day; the frequencies
            are ``pe_max_frequency * pe_base ** (-2 j / d)``. Astromer's 1 rad/day resolves
            periods down to about 6 days; RR Lyrae (0.2-0.9 d) need about 30.
        pe_position: ``input`` (added to the magnitude embedding, as in Astromer) or
            ``output`` (added to the output of the last attention block instead, so that the
            blocks see magnitudes only and time enters at the prediction head; Moreno-Cartagena
            et al. 2023).
        value_scale: magnitudes are multiplied by this before the input projection (1 / the
            typical variability amplitude in magnitudes). The time encoding has entries of
            +-1; with a scale of 1 a 0.2 mag variable moves the input embedding by a few
            percent of it, so the time-means that the frozen embeddings are made of hardly
            depend on the shape of the magnitude distribution, pretrained or not.
        mask_token: fill hidden magnitudes with a trainable [MASK] value (Astromer 2) instead
            of zero (Astromer 1).
        residual: residual connections around attention and feed-forward sublayers
            (post-LayerNorm). The official TensorFlow code has none by default; with them
            the deeper v2 trains reliably from scratch.
        probe_fraction: fraction of the valid points of a window whose magnitude is
            predicted (50%).
        keep_fraction: of the probed points, the fraction left visible and unchanged (20%).
        random_fraction: of the probed points, the fraction replaced by a magnitude drawn
            from the same window (20%); the rest are hidden from attention.
        error_weighted_loss: weight the squared residuals as Astromer 2's official code does:
            ``1 / sigma`` min-max normalised over each window's valid points, plus 1e-3,
            inside the per-window mean (see :func:`masked_rmse`).
        layer_norm_eps: LayerNorm epsilon.
        attention: ``softmax`` (scaled dot-product attention), ``hsa`` (hierarchical
            stochastic attention as in the authors' code: keys replaced by a soft
            Gumbel-softmax mixture of learnable centroids scored by dot product, Gumbel-softmax
            weights of the unscaled products, sampled in every mode; see
            :mod:`astroray.models.layers.hsa`), ``hsa_keys`` (those keys with softmax weights:
            HA-MC Dropout's attention), or ``hsa_snap`` / ``hsa_keys_snap`` (our earlier
            variant: keys snapped to the nearest centroid by a hard Gumbel-softmax, scaled
            weights, deterministic in eval mode outside Monte Carlo inference).
        hsa_centroids: key centroids per head (K) of HSA.
        hsa_tau1: temperature of HSA's key-to-centroid choice.
        hsa_tau2: temperature of HSA's attention weights.
        time_origin: the input convention of the times: ``first`` (days since the window's
            first observation; models saved before this field existed) or ``mean`` (days
            from the window's mean time, as the official loader prepares windows). Windowing,
            embedding, bulk inference and Serve read it from the model's config.
        attention_masking: ``exclude`` (padded and hidden steps are never attended) or
            ``plus_one``: the official ``scaled_dot_product_attention`` of the pip package
            ``astromer`` 0.1.8 adds +1 (not -inf) to the logit of every (query, key) pair in
            which either step is padded or hidden, so padded steps (time 0, magnitude 0) *are*
            attended, slightly up-weighted. The published weights were trained and are used
            that way, so a converted model must reproduce it (a documented quirk).
        init: ``glorot`` (Glorot-uniform weights, zero biases: Keras' Dense default, as in the
            official code) or ``torch`` (PyTorch's default uniform init, used before this
            field existed: for the one-input projection its weights and biases are about
            +-1, which behaves like ``value_scale`` ~6 at init).
        head_norm: a LayerNorm before the magnitude-prediction head (the official
            ``RegLayer``: LayerNorm(eps 1e-6) then Dense(1)).
    """

    num_layers: int = 6
    num_heads: int = 4
    head_dim: int = 64
    ffn_dim: int = 512
    dropout: float = 0.1
    window_size: int = 200
    pe_type: str = "sinusoidal"
    pe_base: float = 10000.0
    pe_max_frequency: float = 1.0
    pe_position: str = "input"
    value_scale: float = 1.0
    mask_token: bool = True
    residual: bool = True
    probe_fraction: float = 0.5
    keep_fraction: float = 0.2
    random_fraction: float = 0.2
    error_weighted_loss: bool = True
    layer_norm_eps: float = 1e-6
    attention: str = "softmax"
    hsa_centroids: int = 16
    hsa_tau1: float = 1.0
    hsa_tau2: float = 1.0
    time_origin: str = "first"
    attention_masking: str = "exclude"
    init: str = "glorot"
    head_norm: bool = False

    def __post_init__(self) -> None:
        check_positive_ints(self, "num_layers", "num_heads", "head_dim", "ffn_dim",
                            "window_size", "hsa_centroids")
        check(self.attention in ATTENTIONS, self, "attention", self.attention,
              f"one of {ATTENTIONS}")
        for name in ("hsa_tau1", "hsa_tau2"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value > 0, self, name, value,
                  "a positive temperature")
        check(isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0, self,
              "dropout", self.dropout, "a number in [0, 1)")
        check(self.pe_type in PE_TYPES, self, "pe_type", self.pe_type, f"one of {PE_TYPES}")
        check(isinstance(self.pe_base, int | float) and self.pe_base > 1.0, self, "pe_base",
              self.pe_base, "a number > 1")
        check(isinstance(self.pe_max_frequency, int | float) and self.pe_max_frequency > 0,
              self, "pe_max_frequency", self.pe_max_frequency, "a positive number (rad/day)")
        check(isinstance(self.value_scale, int | float) and not isinstance(self.value_scale, bool)
              and self.value_scale > 0, self, "value_scale", self.value_scale,
              "a positive number (per magnitude)")
        check(self.pe_position in PE_POSITIONS, self, "pe_position", self.pe_position,
              f"one of {PE_POSITIONS}")
        check(self.d_model % 2 == 0, self, "head_dim", self.head_dim,
              "a value making num_heads * head_dim even (sin/cos pairs)")
        for name, allowed in (("time_origin", TIME_ORIGINS),
                              ("attention_masking", ATTENTION_MASKINGS), ("init", INITS)):
            value = getattr(self, name)
            check(value in allowed, self, name, value, f"one of {allowed}")
        check(self.attention_masking == "exclude" or self.attention == "softmax", self,
              "attention_masking", self.attention_masking,
              f"'exclude' with attention {self.attention!r} (the +1 quirk is softmax-only)")
        for name in ("mask_token", "residual", "error_weighted_loss", "head_norm"):
            check(isinstance(getattr(self, name), bool), self, name, getattr(self, name),
                  "true or false")
        check(isinstance(self.probe_fraction, int | float) and 0.0 < self.probe_fraction < 1.0,
              self, "probe_fraction", self.probe_fraction, "a number in (0, 1)")
        for name in ("keep_fraction", "random_fraction"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and 0.0 <= value <= 1.0, self, name, value,
                  "a number in [0, 1]")
        check(self.keep_fraction + self.random_fraction <= 1.0, self, "random_fraction",
              self.random_fraction, f"at most 1 - keep_fraction ({1.0 - self.keep_fraction})")
        check(isinstance(self.layer_norm_eps, float) and self.layer_norm_eps > 0, self,
              "layer_norm_eps", self.layer_norm_eps, "a positive float")

    @property
    def d_model(self) -> int:
        """Model width: ``num_heads * head_dim``."""
        return self.num_heads * self.head_dim


#: Astromer 1: 2 blocks, 4 heads x 64 (d 256), zero-filled hidden magnitudes, plain RMSE.
ASTROMER_V1 = AstromerConfig(num_layers=2, num_heads=4, head_dim=64, ffn_dim=128, dropout=0.1,
                             mask_token=False, error_weighted_loss=False)
#: Astromer 2: 6 blocks, 4 heads x 64, FFN 512, dropout 0.1, trainable [MASK] token,
#: uncertainty-weighted RMSE.
ASTROMER_V2 = AstromerConfig(num_layers=6, num_heads=4, head_dim=64, ffn_dim=512, dropout=0.1,
                             mask_token=True, error_weighted_loss=True)
#: Astromer 1 exactly as the authors' pip package ``astromer`` 0.1.8 computes it (the
#: architecture of the published MACHO weights): no residual connections, angle rates
#: ``1 / 10000 ** (2 i / d)`` (the config's ``base`` is never passed on), window-mean time
#: and magnitude centring, the +1 attention-logit quirk, Glorot init, LayerNorm before the
#: regression head, plain per-window RMSE.
ASTROMER_V1_OFFICIAL = AstromerConfig(
    num_layers=2, num_heads=4, head_dim=64, ffn_dim=128, dropout=0.1, window_size=200,
    pe_base=10000.0, mask_token=False, residual=False, error_weighted_loss=False,
    time_origin="mean", attention_masking="plus_one", init="glorot", head_norm=True)
#: A tiny Astromer 2 for tests, smoke runs and the demo's on-the-spot pretraining. Plain
#: RMSE: Astromer 2's error weights (1 / sigma, min-max scaled per window) favour the bright,
#: well-measured points, and where errors grow with magnitude (every survey) a short run
#: learns to predict too bright: measured on synthetic MACHO-like windows, 300 steps took the
#: unweighted masked R^2 to -0.23 with the weights and to +0.21 (200 steps) without them.
ASTROMER_TINY = AstromerConfig(num_layers=2, num_heads=2, head_dim=16, ffn_dim=64, dropout=0.1,
                               mask_token=True, error_weighted_loss=False)


@dataclasses.dataclass
class AstromerClassifierConfig(Config):
    """An Astromer encoder with a classification head, saved and served as one model.

    Attributes:
        encoder: the encoder's architecture.
        labels: class names, in the order of the head's outputs.
        hidden: MLP widths of the head (Astromer 2: 1024-512-256).
        dropout: dropout between the head's MLP layers.
        standardize: the head z-scores its inputs with stored training statistics.
        min_points: bands with fewer points are not windowed at inference.
        bands: only these bands are windowed (None: all).
        uncertainty: the model's uncertainty head: ``mc_dropout``, ``hsa``,
            ``ha_mc_dropout`` (or the ``_snap`` variants of the last two) make inference
            draw ``passes`` stochastic passes and add the SMP / PV / BALD scores (see
            :mod:`astroray.uncertainty`); None: one deterministic pass.
        passes: stochastic passes T of the uncertainty head.
    """

    encoder: AstromerConfig = dataclasses.field(default_factory=AstromerConfig)
    labels: tuple[str, ...] = ("class_0", "class_1")
    hidden: tuple[int, ...] = (1024, 512, 256)
    dropout: float = 0.0
    standardize: bool = True
    min_points: int = 5
    bands: tuple[str, ...] | None = None
    uncertainty: str | None = None
    passes: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = AstromerConfig.from_dict(self.encoder)
        check(self.uncertainty in UNCERTAINTY_HEADS, self, "uncertainty", self.uncertainty,
              f"one of {UNCERTAINTY_HEADS}")
        check(isinstance(self.passes, int) and not isinstance(self.passes, bool)
              and self.passes > 0, self, "passes", self.passes, "a positive integer")
        self.labels = tuple(str(v) for v in self.labels)
        self.hidden = tuple(self.hidden)
        if self.bands is not None:
            self.bands = tuple(self.bands)
        check(isinstance(self.encoder, AstromerConfig), self, "encoder", self.encoder,
              "an AstromerConfig mapping")
        check(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels), self,
              "labels", self.labels, "at least two distinct class names")
        check(all(isinstance(h, int) and h > 0 for h in self.hidden), self, "hidden",
              self.hidden, "positive integers")
        check(isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0, self,
              "dropout", self.dropout, "a number in [0, 1)")
        check(isinstance(self.min_points, int) and self.min_points > 0, self, "min_points",
              self.min_points, "a positive integer")
