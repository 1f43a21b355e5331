"""A real/bogus CNN on alert stamps, with the pieces of Minimax Entropy domain adaptation.

:class:`StampClassifier` reads the science, reference and difference cutouts of an alert as a
three-channel image, crops the centre, and classifies it with a small CNN in the spirit of the
ZTF / ALeRCE stamp classifiers (two blocks of 3x3 convolutions and max-pooling, a dense layer)
whose L2-normalised feature is scored by a :class:`CosineClassifier`. The same model is trained
on a source survey alone, fine-tuned on a few labelled target stamps, or adapted by MME (Saito
et al. 2019): the classifier's prototypes are pushed to maximise the entropy of unlabelled
target predictions while the feature extractor, behind a :func:`grad_reverse` layer, minimises
it (see :mod:`astroray.train.domain`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from astroray.models.pretrained import PretrainedMixin
from astroray.models.stamps.config import StampConfig

__all__ = ["CHANNELS", "CosineClassifier", "GradientReversal", "StampClassifier",
           "grad_reverse", "rotate90"]

#: Input channel order.
CHANNELS = ("science", "reference", "difference")


class GradientReversal(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by ``-coeff``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # noqa: D102
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """``x`` unchanged, with its gradient reversed and scaled by ``coeff`` on the way back."""
    return GradientReversal.apply(x, coeff)


def rotate90(x: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
    """Rotate images (..., H, W) by ``k`` quarter turns (counter-clockwise), per sample.

    Args:
        x: images (B, C, H, W) with H == W.
        k: one number of quarter turns for all, or one per image (B,).

    Returns:
        The rotated images, same shape.
    """
    if isinstance(k, int):
        return torch.rot90(x, k % 4, dims=(-2, -1))
    k = torch.as_tensor(k, device=x.device).remainder(4)
    out = torch.empty_like(x)
    for turns in range(4):
        sel = k == turns
        if sel.any():
            out[sel] = torch.rot90(x[sel], turns, dims=(-2, -1))
    return out


class CosineClassifier(nn.Module):
    """``logits = normalise(W) normalise(f) / T``: class prototypes on the unit sphere.

    Args:
        feature_dim: width of the features.
        num_classes: number of prototypes.
        temperature: T; small values sharpen the softmax of cosine similarities in [-1, 1].
    """

    def __init__(self, feature_dim: int, num_classes: int, temperature: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, feature_dim) * 0.1)
        self.temperature = float(temperature)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Features (B, D) -> logits (B, K)."""
        f = F.normalize(features, dim=1)
        w = F.normalize(self.weight, dim=1)
        return f @ w.t() / self.temperature


class StampClassifier(PretrainedMixin, nn.Module):
    """Real/bogus classifier of (science, reference, difference) stamps.

    Args:
        config: the architecture, the crop, the temperature and the label map.
    """

    config_class = StampConfig
    model_type = "stamp-cnn"

    def __init__(self, config: StampConfig):
        super().__init__()
        self.config = config
        c1, c2 = config.conv_channels
        self.conv = nn.Sequential(
            nn.Conv2d(len(CHANNELS), c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = config.crop_size // 4  # two 2x2 poolings (floor)
        self.dense = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * side * side, config.hidden_size), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(config.hidden_size, config.feature_dim))
        self.classifier = CosineClassifier(config.feature_dim, len(config.labels),
                                           config.temperature)

    @classmethod
    def dummy_inputs(cls, config: StampConfig, batch_size: int = 2,
                     seed: int = 0) -> dict[str, torch.Tensor]:
        """Tiny random inputs of :meth:`forward` (tests): raw cutouts (B, 3, S + 4, S + 4)."""
        g = torch.Generator().manual_seed(seed)
        side = config.crop_size + 4
        return {"stamps": torch.randn((batch_size, len(CHANNELS), side, side), generator=g)}

    @property
    def id2label(self) -> dict[int, str]:
        """Logit index -> class name."""
        return dict(enumerate(self.config.labels))

    def crop(self, stamps: torch.Tensor) -> torch.Tensor:
        """The central ``crop_size`` square of stamps (B, 3, H, W) -> (B, 3, S, S).

        Raises:
            ValueError: when the stamps are not (B, 3, H, W) or smaller than the crop.
        """
        s = self.config.crop_size
        if stamps.ndim != 4 or stamps.shape[1] != len(CHANNELS):
            raise ValueError(f"stamps must be (batch, 3, height, width) in the order "
                             f"{CHANNELS}, got shape {tuple(stamps.shape)}")
        h, w = stamps.shape[-2:]
        if h < s or w < s:
            raise ValueError(f"stamps are {h}x{w}, smaller than the {s}x{s} crop")
        top, left = (h - s) // 2, (w - s) // 2
        return stamps[:, :, top:top + s, left:left + s]

    def preprocess(self, stamps: torch.Tensor) -> torch.Tensor:
        """Raw cutouts (B, 3, H, W) -> cropped, NaN-filled, normalised images (B, 3, S, S).

        Each channel of each stamp is centred on its median and divided by its robust
        standard deviation (1.4826 MAD; the plain standard deviation when more than half the
        pixels are equal, e.g. saturated), then compressed by ``asinh(z / stretch)``; surveys
        in counts and in data numbers, with different sky levels, land on the same scale.
        Non-finite pixels (real ZTF cutouts are NaN where the CCD ends) are filled with the
        channel's median, i.e. 0 after normalisation: they read as plain background. A
        channel without any finite pixel in the crop becomes all zeros; callers that must
        refuse such stamps check first (the predictor does).
        """
        x = self.crop(stamps).float()
        b, c, s, _ = x.shape
        flat = x.reshape(b, c, s * s)  # (B, C, S*S)
        flat = torch.where(torch.isfinite(flat), flat, torch.full_like(flat, float("nan")))
        med = flat.nanmedian(dim=2, keepdim=True).values  # (B, C, 1)
        med = torch.nan_to_num(med, nan=0.0)
        dev = flat - med
        mad = 1.4826 * dev.abs().nanmedian(dim=2, keepdim=True).values
        finite = torch.isfinite(dev)
        count = finite.sum(dim=2, keepdim=True).clamp_min(1)
        std = torch.sqrt(torch.where(finite, dev, 0.0).pow(2).sum(dim=2, keepdim=True) / count)
        scale = torch.where(torch.nan_to_num(mad, nan=0.0) > 0, mad, std)
        scale = torch.nan_to_num(scale, nan=1.0).clamp_min(1e-6)
        z = torch.where(finite, dev / scale, 0.0)
        return torch.asinh(z / self.config.stretch).reshape(b, c, s, s)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (B, 3, S, S) -> features (B, D), before normalisation."""
        return self.dense(self.conv(images))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (B, 3, S, S) -> logits (B, K)."""
        return self.classifier(self.embed(images))

    def forward(self, stamps: torch.Tensor) -> torch.Tensor:
        """Raw cutouts (B, 3, H, W) -> logits (B, K)."""
        return self.logits(self.preprocess(stamps))

    def predict_images(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, K) of preprocessed images (B, 3, S, S).

        Averaged over the four 90-degree rotations when ``config.rotation_average``.
        """
        turns = range(4) if self.config.rotation_average else range(1)
        probs = [torch.softmax(self.logits(rotate90(images, k)).float(), dim=1) for k in turns]
        return torch.stack(probs).mean(dim=0)

    def predict(self, stamps: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw cutouts (B, 3, H, W) -> ``probs`` (B, K) and ``real_score`` (B,)."""
        probs = self.predict_images(self.preprocess(stamps))
        return {"probs": probs, "real_score": probs[:, self.config.real_index]}
