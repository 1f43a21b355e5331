"""Galaxy morphology CNN (smooth vs featured) for the label de-biasing study."""

from astroray.models.morphology.config import (
    MORPHOLOGY_CNN,
    MORPHOLOGY_CNN_TINY,
    MorphologyConfig,
)
from astroray.models.morphology.model import MorphologyCNN
from astroray.models.registry import register_model

_TINY = {"channels": (4, 8, 8)}
register_model("morphology-cnn", MorphologyCNN, MORPHOLOGY_CNN, tiny=_TINY)
register_model("morphology-cnn-tiny", MorphologyCNN, MORPHOLOGY_CNN_TINY, tiny=_TINY)

__all__ = ["MORPHOLOGY_CNN", "MORPHOLOGY_CNN_TINY", "MorphologyCNN", "MorphologyConfig"]
