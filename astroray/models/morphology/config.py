"""Configuration of the galaxy-morphology CNN (smooth vs featured, one-band images)."""

from __future__ import annotations

import dataclasses

from astroray.config import Config, check

__all__ = ["MORPHOLOGY_CNN", "MORPHOLOGY_CNN_TINY", "MorphologyConfig"]


@dataclasses.dataclass
class MorphologyConfig(Config):
    """A small CNN on one-band galaxy images in sky-noise units.

    The pixels ``x`` (in units of the sky noise, so that surface brightness is kept) go through
    ``asinh(x / stretch)``, three blocks of two 3x3 convolutions (BatchNorm, ReLU) with 2x2
    max-pooling between them, a global average pool and a linear classifier.

    Attributes:
        labels: class names in logit order.
        image_size: side of the square input images (pixels).
        channels: channels of the three convolution blocks.
        dropout: dropout before the classifier.
        stretch: asinh softening (sky-noise units).
    """

    labels: tuple[str, ...] = ("smooth", "featured")
    image_size: int = 32
    channels: tuple[int, ...] = (8, 16, 32)
    dropout: float = 0.1
    stretch: float = 3.0

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        check(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels)
              and all(isinstance(v, str) and v for v in self.labels), self, "labels",
              self.labels, "at least two distinct class names")
        check(isinstance(self.image_size, int) and not isinstance(self.image_size, bool)
              and self.image_size >= 8, self, "image_size", self.image_size, "an integer >= 8")
        value = self.channels
        check(isinstance(value, list | tuple) and len(value) == 3
              and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value),
              self, "channels", value, "three positive integers")
        self.channels = tuple(int(v) for v in value)
        check(isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0, self,
              "dropout", self.dropout, "a number in [0, 1)")
        check(isinstance(self.stretch, int | float) and not isinstance(self.stretch, bool)
              and self.stretch > 0, self, "stretch", self.stretch, "a positive number")


#: The default morphology CNN: 32x32 images, 8/16/32 channels.
MORPHOLOGY_CNN = MorphologyConfig()
#: A tiny variant for tests.
MORPHOLOGY_CNN_TINY = MorphologyConfig(channels=(4, 8, 8))
