"""Configuration of the vision-transformer models: a ViT or SwinV2 backbone with one head."""

from __future__ import annotations

import dataclasses
from typing import Any

from astroray.config import Config, check

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SWINV2_MINI_LIGHTCURVES",
    "SWINV2_T_LIGHTCURVES",
    "SWINV2_TINY_LIGHTCURVES",
    "VIT_B16_SPECTRA",
    "VIT_TINY_SPECTRA",
    "VisionConfig",
]

BACKBONES = ("vit", "swinv2")
TASKS = ("classification", "regression")
#: ImageNet statistics (torchvision / timm), used by DINO and SwinV2 checkpoints.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _positive_int(cfg: Any, name: str) -> None:
    value = getattr(cfg, name)
    check(isinstance(value, int) and not isinstance(value, bool) and value > 0, cfg, name,
          value, "a positive integer")


def _int_tuple(cfg: Any, name: str) -> None:
    value = getattr(cfg, name)
    ok = (isinstance(value, list | tuple) and len(value) > 0
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))
    check(ok, cfg, name, value, "a non-empty list of positive integers")
    setattr(cfg, name, tuple(int(v) for v in value))


UNCERTAINTY_HEADS = (None, "mc_dropout")


@dataclasses.dataclass
class VisionConfig(Config):
    """A vision transformer on rendered spectra or light curves, with a task head.

    The backbone is a Hugging Face ``transformers`` model built from these fields (so that a
    saved folder rebuilds it without the original checkpoint); ``pretrained`` names the
    checkpoints whose weights :meth:`~astroray.models.vision.VisionTransformer.load_backbone`
    copies in, looked up locally only (a folder, or the Hugging Face cache).

    Attributes:
        backbone: ``vit`` (``transformers.ViTModel``, CLS token -> head) or ``swinv2``
            (``transformers.Swinv2Model``, mean-pooled last stage -> head).
        pretrained: checkpoint names or folders tried in order for the backbone weights
            (e.g. ``facebook/dino-vitb16``); empty: random initialisation only.
        task: ``classification`` (logits, cross-entropy) or ``regression`` (one output, the
            target divided by ``target_scale``, mean squared error).
        labels: class names in logit order (the label map saved with the model).
        target_scale: divisor of the regression target (``z_max`` for redshifts).
        image_size: square input size in pixels.
        patch_size: patch size (ViT: 16; SwinV2: 4).
        num_channels: image channels.
        hidden_size: ViT width.
        num_layers: ViT blocks.
        num_heads: ViT heads.
        intermediate_size: ViT feed-forward width.
        embed_dim: SwinV2 width of the first stage.
        depths: SwinV2 blocks per stage.
        swin_heads: SwinV2 heads per stage.
        window_size: SwinV2 attention window (patches).
        hidden_dropout: dropout inside the backbone.
        attention_dropout: dropout of the attention weights.
        head_dropout: dropout before the linear head.
        image_mean: per-channel mean subtracted from images scaled to [0, 1].
        image_std: per-channel standard deviation they are divided by.
        layer_norm_eps: LayerNorm epsilon of the backbone.
        uncertainty: ``mc_dropout`` (classification): predictions are the mean of ``passes``
            passes with the dropout layers sampled, and come with uncertainty scores (see
            :mod:`astroray.uncertainty`); None: one deterministic pass.
        passes: stochastic passes T of the uncertainty head.
    """

    backbone: str = "vit"
    pretrained: tuple[str, ...] = ()
    task: str = "classification"
    labels: tuple[str, ...] = ("STAR", "GALAXY", "QSO")
    target_scale: float = 1.0
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    swin_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 16
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    head_dropout: float = 0.1
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD
    layer_norm_eps: float = 1e-6
    uncertainty: str | None = None
    passes: int = 20

    def __post_init__(self) -> None:
        check(self.backbone in BACKBONES, self, "backbone", self.backbone, f"one of {BACKBONES}")
        if isinstance(self.pretrained, str):
            self.pretrained = (self.pretrained,)
        self.pretrained = tuple(self.pretrained or ())
        check(all(isinstance(p, str) and p for p in self.pretrained), self, "pretrained",
              self.pretrained, "checkpoint names or folders")
        check(self.task in TASKS, self, "task", self.task, f"one of {TASKS}")
        self.labels = tuple(self.labels)
        if self.task == "classification":
            check(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels)
                  and all(isinstance(v, str) and v for v in self.labels), self, "labels",
                  self.labels, "at least two distinct class names")
        check(isinstance(self.target_scale, int | float) and self.target_scale > 0, self,
              "target_scale", self.target_scale, "a positive number")
        for name in ("image_size", "patch_size", "num_channels", "hidden_size", "num_layers",
                     "num_heads", "intermediate_size", "embed_dim", "window_size"):
            _positive_int(self, name)
        _int_tuple(self, "depths")
        _int_tuple(self, "swin_heads")
        check(len(self.swin_heads) == len(self.depths), self, "swin_heads", self.swin_heads,
              f"one head count per stage ({len(self.depths)})")
        check(self.image_size % self.patch_size == 0, self, "patch_size", self.patch_size,
              f"a divisor of image_size ({self.image_size})")
        if self.backbone == "vit":
            check(self.hidden_size % self.num_heads == 0, self, "num_heads", self.num_heads,
                  f"a divisor of hidden_size ({self.hidden_size})")
        else:
            # Each stage halves the patch grid; the last stage must still hold whole windows
            # or be padded, which transformers does, but the grid must halve exactly.
            grid = self.image_size // self.patch_size
            check(grid % (2 ** (len(self.depths) - 1)) == 0, self, "image_size",
                  self.image_size, f"patch grid divisible by 2^{len(self.depths) - 1}")
            for i, heads in enumerate(self.swin_heads):
                check((self.embed_dim * 2 ** i) % heads == 0, self, "swin_heads",
                      self.swin_heads, f"stage {i} width {self.embed_dim * 2 ** i} divisible")
        for name in ("hidden_dropout", "attention_dropout", "head_dropout"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and 0.0 <= value < 1.0, self, name, value,
                  "a number in [0, 1)")
        for name in ("image_mean", "image_std"):
            value = tuple(float(v) for v in getattr(self, name))
            check(len(value) == self.num_channels, self, name, value,
                  f"{self.num_channels} values (one per channel)")
            setattr(self, name, value)
        check(all(v > 0 for v in self.image_std), self, "image_std", self.image_std,
              "positive values")
        check(isinstance(self.layer_norm_eps, float) and self.layer_norm_eps > 0, self,
              "layer_norm_eps", self.layer_norm_eps, "a positive float")
        check(self.uncertainty in UNCERTAINTY_HEADS, self, "uncertainty", self.uncertainty,
              f"one of {UNCERTAINTY_HEADS}")
        _positive_int(self, "passes")
        if self.uncertainty is not None:
            check(self.task == "classification", self, "uncertainty", self.uncertainty,
                  "null for regression (MC Dropout scores class probabilities)")
            check(max(self.hidden_dropout, self.attention_dropout, self.head_dropout) > 0,
                  self, "uncertainty", self.uncertainty,
                  "a model with dropout (hidden_dropout, attention_dropout or head_dropout > 0)")

    @property
    def num_outputs(self) -> int:
        """Logits (classification) or 1 (regression)."""
        return len(self.labels) if self.task == "classification" else 1

    @property
    def feature_size(self) -> int:
        """Width of the pooled feature the head reads."""
        if self.backbone == "vit":
            return self.hidden_size
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def hf_config(self) -> Any:
        """The ``transformers`` config of the backbone."""
        if self.backbone == "vit":
            from transformers import ViTConfig  # lazy: transformers

            return ViTConfig(
                hidden_size=self.hidden_size, num_hidden_layers=self.num_layers,
                num_attention_heads=self.num_heads, intermediate_size=self.intermediate_size,
                hidden_dropout_prob=self.hidden_dropout,
                attention_probs_dropout_prob=self.attention_dropout,
                image_size=self.image_size, patch_size=self.patch_size,
                num_channels=self.num_channels, layer_norm_eps=self.layer_norm_eps,
                qkv_bias=True)
        from transformers import Swinv2Config  # lazy: transformers

        return Swinv2Config(
            image_size=self.image_size, patch_size=self.patch_size,
            num_channels=self.num_channels, embed_dim=self.embed_dim,
            depths=list(self.depths), num_heads=list(self.swin_heads),
            window_size=self.window_size, hidden_dropout_prob=self.hidden_dropout,
            attention_probs_dropout_prob=self.attention_dropout,
            layer_norm_eps=self.layer_norm_eps)


#: ViT-B/16 at 224 px for spectra (Strano Moraes et al.): DINO or ImageNet-21k weights.
VIT_B16_SPECTRA = VisionConfig(
    backbone="vit", pretrained=("facebook/dino-vitb16", "google/vit-base-patch16-224"),
    image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12,
    intermediate_size=3072, layer_norm_eps=1e-12)
#: A tiny ViT for tests and smoke runs (64 px, random initialisation).
VIT_TINY_SPECTRA = VisionConfig(
    backbone="vit", pretrained=(), image_size=64, patch_size=8, hidden_size=64, num_layers=2,
    num_heads=4, intermediate_size=128, layer_norm_eps=1e-12)
#: SwinV2-T (window 16) at 256 px for light curves (Moreno-Cartagena et al. 2025).
SWINV2_T_LIGHTCURVES = VisionConfig(
    backbone="swinv2", pretrained=("microsoft/swinv2-tiny-patch4-window16-256",),
    labels=("DCEP_F", "DCEP_1O", "RRab", "RRc", "EB", "LPV"), image_size=256, patch_size=4,
    embed_dim=96, depths=(2, 2, 6, 2), swin_heads=(3, 6, 12, 24), window_size=16,
    layer_norm_eps=1e-5)
#: A tiny SwinV2 for tests and smoke runs (64 px, two stages, random initialisation).
SWINV2_TINY_LIGHTCURVES = VisionConfig(
    backbone="swinv2", pretrained=(), labels=("DCEP_F", "DCEP_1O", "RRab", "RRc", "EB", "LPV"),
    image_size=64, patch_size=4, embed_dim=24, depths=(1, 1), swin_heads=(2, 4),
    window_size=4, layer_norm_eps=1e-5)
#: A small SwinV2 for CPU budgets (96 px, three stages of two blocks, width 32, window 6;
#: 0.6 M parameters, random initialisation: no published checkpoint has this shape). About 5x
#: the cost of the tiny one per image and ~1/50 of SwinV2-T at 256 px: the largest that trains
#: the light-curve table of ``jobs/finetune_swin_lightcurves.py`` (2 data sets x 3 pictures x
#: 3 seeds) in about an hour on 2 CPU cores.
SWINV2_MINI_LIGHTCURVES = VisionConfig(
    backbone="swinv2", pretrained=(), labels=("DCEP_F", "DCEP_1O", "RRab", "RRc", "EB", "LPV"),
    image_size=96, patch_size=4, embed_dim=32, depths=(2, 2, 2), swin_heads=(2, 4, 8),
    window_size=6, layer_norm_eps=1e-5)
