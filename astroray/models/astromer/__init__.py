"""Astromer 1 and 2: a transformer encoder of single-band light curves (PyTorch)."""

from astroray.models.astromer.config import (
    ASTROMER_TINY,
    ASTROMER_V1,
    ASTROMER_V2,
    AstromerClassifierConfig,
    AstromerConfig,
)
from astroray.models.astromer.model import (
    Astromer,
    AstromerClassifier,
    AstromerClassifierHead,
    AstromerOutput,
    MaskedInputs,
    TimeEncoding,
    WeightedEmbedding,
    layer_means,
    mask_inputs,
    masked_mean,
    masked_rmse,
    sinusoidal_frequencies,
)
from astroray.models.registry import register_family, register_model

_TINY = {"num_layers": 2, "num_heads": 2, "head_dim": 8, "ffn_dim": 16}
register_model("astromer-v1", Astromer, ASTROMER_V1, tiny=_TINY)
register_model("astromer-v2", Astromer, ASTROMER_V2, tiny=_TINY)
register_model("astromer-tiny", Astromer, ASTROMER_TINY, tiny=_TINY)
register_family(AstromerClassifier)

__all__ = [
    "ASTROMER_TINY",
    "ASTROMER_V1",
    "ASTROMER_V2",
    "Astromer",
    "AstromerClassifier",
    "AstromerClassifierConfig",
    "AstromerClassifierHead",
    "AstromerConfig",
    "AstromerOutput",
    "MaskedInputs",
    "TimeEncoding",
    "WeightedEmbedding",
    "layer_means",
    "mask_inputs",
    "masked_mean",
    "masked_rmse",
    "sinusoidal_frequencies",
]
