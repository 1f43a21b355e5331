"""Configuration of the real/bogus stamp classifier (science, reference, difference cutouts)."""

from __future__ import annotations

import dataclasses

from astroray.config import Config, check, check_positive_ints

__all__ = ["STAMP_CNN", "STAMP_CNN_TINY", "StampConfig"]


@dataclasses.dataclass
class StampConfig(Config):
    """A small CNN on the central crop of alert triplets, with a cosine-similarity classifier.

    The input is three channels (science, reference, difference) of a cutout of any size at
    least ``crop_size``; the model crops the centre, fills NaN pixels, and normalises each
    channel of each stamp robustly (see :meth:`StampClassifier.preprocess
    <astroray.models.stamps.StampClassifier.preprocess>`). The features are L2-normalised and
    scored against weight-normalised class prototypes, ``logits = W^T f / T`` (the classifier of
    Minimax Entropy domain adaptation, Saito et al. 2019), for every training mode alike.

    Attributes:
        labels: class names in logit order; the real/bogus score is the probability of
            ``real_label``.
        real_label: the class whose probability is the ``real_score``.
        crop_size: side of the central crop (pixels); 21 of ZTF's 63x63 cutouts.
        conv_channels: channels of the two convolution blocks (two 3x3 convolutions and a 2x2
            max-pool each, as in the ZTF/ALeRCE stamp classifiers).
        hidden_size: width of the dense layer after the convolutions.
        feature_dim: width of the L2-normalised feature the classifier reads.
        dropout: dropout before the feature layer.
        temperature: T of the cosine classifier (Saito et al.: 0.05).
        stretch: the robustly normalised pixels z go through ``asinh(z / stretch)``, so that a
            bright source or a saturated artefact does not swamp the noise pattern.
        rotation_average: at inference, average the probabilities over the four 90-degree
            rotations of the stamp (the model is trained with rotation augmentation).
    """

    labels: tuple[str, ...] = ("bogus", "real")
    real_label: str = "real"
    crop_size: int = 21
    conv_channels: tuple[int, ...] = (16, 32)
    hidden_size: int = 64
    feature_dim: int = 64
    dropout: float = 0.2
    temperature: float = 0.05
    stretch: float = 3.0
    rotation_average: bool = True

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        check(len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels)
              and all(isinstance(v, str) and v for v in self.labels), self, "labels",
              self.labels, "at least two distinct class names")
        check(self.real_label in self.labels, self, "real_label", self.real_label,
              f"one of the labels {self.labels}")
        check_positive_ints(self, "crop_size", "hidden_size", "feature_dim")
        check(self.crop_size >= 4, self, "crop_size", self.crop_size,
              "at least 4 (two 2x2 poolings)")
        value = self.conv_channels
        check(isinstance(value, list | tuple) and len(value) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value),
              self, "conv_channels", value, "two positive integers")
        self.conv_channels = tuple(int(v) for v in value)
        check(isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0, self,
              "dropout", self.dropout, "a number in [0, 1)")
        for name in ("temperature", "stretch"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
                  self, name, value, "a positive number")
        check(isinstance(self.rotation_average, bool), self, "rotation_average",
              self.rotation_average, "true or false")

    @property
    def real_index(self) -> int:
        """Logit index of ``real_label``."""
        return self.labels.index(self.real_label)


#: The default stamp classifier: 21x21 crops, 16/32 channels, 64-d features, T = 0.05.
STAMP_CNN = StampConfig()
#: A tiny variant for tests.
STAMP_CNN_TINY = StampConfig(conv_channels=(4, 8), hidden_size=16, feature_dim=8)
