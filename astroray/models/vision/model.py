"""Vision transformers on rendered data: a ``transformers`` ViT or SwinV2 backbone and a head.

Two papers fine-tune ImageNet-pretrained vision transformers on plots: a ViT-B/16 on 224 px
line plots of SDSS/LAMOST spectra (object class by cross-entropy from the CLS token; redshift
as ``z / z_max`` by mean squared error), and a SwinV2-T (window 16) on 256 px plots of
multi-band light curves (class from the mean-pooled last stage). :class:`VisionTransformer`
is both: the backbone is built from :class:`~astroray.models.vision.VisionConfig` alone, so
that a saved folder (``config.json`` with the label map + ``model.safetensors``) rebuilds it;
pretrained backbone weights are copied in by :meth:`VisionTransformer.load_backbone` from a
local folder or the Hugging Face cache, never from the network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from astroray.models.layers.stochastic import sample_probabilities, stochastic
from astroray.models.pretrained import PretrainedMixin
from astroray.models.vision.config import VisionConfig

__all__ = ["VisionTransformer"]

logger = logging.getLogger(__name__)


class VisionTransformer(PretrainedMixin, nn.Module):
    """A ViT or SwinV2 backbone with a classification or regression head.

    Args:
        config: the architecture, the task and the label map.
    """

    config_class = VisionConfig
    model_type = "vision"

    def __init__(self, config: VisionConfig):
        super().__init__()
        self.config = config
        hf = config.hf_config()
        if config.backbone == "vit":
            from transformers import ViTModel  # lazy: transformers

            self.backbone = ViTModel(hf, add_pooling_layer=False)
        else:
            from transformers import Swinv2Model  # lazy: transformers

            self.backbone = Swinv2Model(hf)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(config.feature_size, config.num_outputs)
        # Normalisation constants are part of the config, not of the weights.
        mean = torch.tensor(config.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(config.image_std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("image_mean", mean, persistent=False)
        self.register_buffer("image_std", std, persistent=False)

    @classmethod
    def dummy_inputs(cls, config: VisionConfig, batch_size: int = 2,
                     seed: int = 0) -> dict[str, torch.Tensor]:
        """Tiny random inputs of :meth:`forward` (tests): images (B, C, S, S) in [0, 1]."""
        g = torch.Generator().manual_seed(seed)
        shape = (batch_size, config.num_channels, config.image_size, config.image_size)
        return {"images": torch.rand(shape, generator=g)}

    @property
    def id2label(self) -> dict[int, str]:
        """Logit index -> class name (classification)."""
        return dict(enumerate(self.config.labels))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) in [0, 255] (or floats in [0, 1]) -> normalised float32."""
        x = images.float()
        if images.dtype == torch.uint8:
            x = x / 255.0
        return (x - self.image_mean) / self.image_std

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, F): the CLS token (ViT) or the mean-pooled last stage (SwinV2)."""
        x = self.preprocess(images)
        size = self.config.image_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"images are {tuple(x.shape[-2:])}, the model expects "
                             f"({size}, {size})")
        if self.config.backbone == "vit":
            out = self.backbone(pixel_values=x)
            return out.last_hidden_state[:, 0]  # (B, 1 + patches, D) -> (B, D)
        return self.backbone(pixel_values=x).pooler_output  # (B, F)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) for classification; (B,) scaled targets for regression."""
        out = self.head(self.dropout(self.features(images)))
        return out if self.config.task == "classification" else out[:, 0]

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predictions in the data's units.

        Returns:
            classification: ``{"label": (B,) index, "probs": (B, K)}``, with an uncertainty
            head the mean of its passes and ``"samples"`` (T, B, K); regression:
            ``{"value": (B,)}`` (the scaled output times ``target_scale``).
        """
        if self.config.uncertainty is not None:
            samples = self.sample_probs(images, self.config.passes)  # (T, B, K)
            probs = samples.mean(dim=0)
            return {"label": probs.argmax(dim=-1), "probs": probs, "samples": samples}
        out = self(images).float()
        if self.config.task == "classification":
            probs = out.softmax(dim=-1)
            return {"label": probs.argmax(dim=-1), "probs": probs}
        return {"value": out * self.config.target_scale}

    @torch.no_grad()
    def sample_probs(self, images: torch.Tensor, passes: int,
                     max_images: int = 512) -> torch.Tensor:
        """Class probabilities (T, B, K) of ``passes`` MC Dropout passes (one batched forward).

        The dropout layers (p > 0) are sampled, everything else stays as it is (eval mode);
        the T copies of the batch run together in calls of at most ``max_images`` images.
        When only the head has dropout the backbone runs once and only the head is sampled
        (the same distribution at the cost of one pass).
        """
        if self.config.task != "classification":
            raise ValueError("MC Dropout sampling needs a classification model")
        with stochastic(self, dropout=True, hsa=False):
            if self.config.hidden_dropout == 0 and self.config.attention_dropout == 0:
                feats = self.features(images)  # (B, F): deterministic backbone
                return sample_probabilities(lambda chunk: self.head(self.dropout(chunk["f"])),
                                            {"f": feats}, passes, max_rows=64 * max_images)
            return sample_probabilities(lambda chunk: self(chunk["images"]),
                                        {"images": images}, passes, max_rows=max_images)

    def load_backbone(self, sources: Sequence[str] | None = None) -> dict[str, Any] | None:
        """Copy pretrained backbone weights from the first available local checkpoint.

        Each source is a folder or a Hugging Face name looked up in the local cache only
        (``local_files_only=True``): nothing is downloaded. Tensors whose shapes differ from
        this model's (e.g. position embeddings at another image size) keep their random
        initialisation.

        Args:
            sources: checkpoints to try in order; None uses ``config.pretrained``.

        Returns:
            ``{"source", "loaded", "total", "skipped"}`` or None when none was available (a
            single warning line says the model starts from random initialisation).
        """
        sources = list(self.config.pretrained if sources is None else sources)
        if not sources:
            return None
        from transformers import Swinv2Model, ViTModel  # lazy: transformers

        backbone_cls = ViTModel if self.config.backbone == "vit" else Swinv2Model
        own = self.backbone.state_dict()
        for source in sources:
            try:
                kwargs = {"add_pooling_layer": False} if self.config.backbone == "vit" else {}
                pretrained = backbone_cls.from_pretrained(source, local_files_only=True, **kwargs)
            except (OSError, ValueError) as exc:
                logger.debug("pretrained backbone %s unavailable: %s", source, exc)
                continue
            state = pretrained.state_dict()
            matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
            self.backbone.load_state_dict(matched, strict=False)
            skipped = sorted(set(own) - set(matched))
            logger.info("backbone weights from %s: %d of %d tensors (%d kept random)", source,
                        len(matched), len(own), len(skipped))
            return {"source": source, "loaded": len(matched), "total": len(own),
                    "skipped": skipped}
        logger.warning("no pretrained %s weights found locally (tried %s): starting from "
                       "random initialisation", self.config.backbone, ", ".join(sources))
        return None
