"""A small CNN that classifies one-band galaxy images as smooth or featured."""

from __future__ import annotations

import torch
from torch import nn

from astroray.models.morphology.config import MorphologyConfig
from astroray.models.pretrained import PretrainedMixin

__all__ = ["MorphologyCNN"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class MorphologyCNN(PretrainedMixin, nn.Module):
    """Galaxy morphology classifier: images (B, H, W) or (B, 1, H, W) -> logits (B, K).

    Args:
        config: the architecture and the label map.
    """

    config_class = MorphologyConfig
    model_type = "morphology-cnn"

    def __init__(self, config: MorphologyConfig):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.features = nn.Sequential(_block(1, c1), nn.MaxPool2d(2), _block(c1, c2),
                                      nn.MaxPool2d(2), _block(c2, c3),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(c3, len(config.labels)))

    @classmethod
    def dummy_inputs(cls, config: MorphologyConfig, batch_size: int = 2,
                     seed: int = 0) -> dict[str, torch.Tensor]:
        """Tiny random inputs of :meth:`forward` (tests): images (B, 1, S, S) in noise units."""
        g = torch.Generator().manual_seed(seed)
        shape = (batch_size, 1, config.image_size, config.image_size)
        return {"images": torch.randn(shape, generator=g)}

    @property
    def id2label(self) -> dict[int, str]:
        """Logit index -> class name."""
        return dict(enumerate(self.config.labels))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images in sky-noise units (B, H, W) or (B, 1, H, W) -> (B, 1, H, W) asinh-stretched.

        Raises:
            ValueError: for another shape.
        """
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be (batch, H, W) or (batch, 1, H, W), got "
                             f"{tuple(images.shape)}")
        return torch.asinh(images.float() / self.config.stretch)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, H, W) or (B, 1, H, W) -> logits (B, K)."""
        return self.head(self.features(self.preprocess(images)))

    @torch.inference_mode()
    def predict_proba(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Class probabilities (B, K), in eval mode, averaged over the 8 flips/rotations.

        The morphology does not depend on orientation, and the model is trained with random
        flips and quarter turns; averaging over them removes what orientation noise is left.
        """
        was_training = self.training
        self.eval()
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = self.preprocess(images[start:start + batch_size])
            probs = 0.0
            for flip in (False, True):
                xf = torch.flip(x, dims=(-1,)) if flip else x
                for k in range(4):
                    probs = probs + torch.softmax(self.head(self.features(
                        torch.rot90(xf, k, dims=(-2, -1)))), dim=1)
            out.append(probs / 8.0)
        self.train(was_training)
        return torch.cat(out)
