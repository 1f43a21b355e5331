"""Real/bogus stamp classifier (science, reference, difference) for domain adaptation."""

from astroray.models.registry import register_model
from astroray.models.stamps.config import STAMP_CNN, STAMP_CNN_TINY, StampConfig
from astroray.models.stamps.model import (
    CHANNELS,
    CosineClassifier,
    GradientReversal,
    StampClassifier,
    grad_reverse,
    rotate90,
)

_TINY = {"conv_channels": (4, 8), "hidden_size": 16, "feature_dim": 8}
register_model("stamp-cnn", StampClassifier, STAMP_CNN, tiny=_TINY)
register_model("stamp-cnn-tiny", StampClassifier, STAMP_CNN_TINY, tiny=_TINY)

__all__ = [
    "CHANNELS",
    "STAMP_CNN",
    "STAMP_CNN_TINY",
    "CosineClassifier",
    "GradientReversal",
    "StampClassifier",
    "StampConfig",
    "grad_reverse",
    "rotate90",
]
