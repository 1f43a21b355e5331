"""Astromer 1 and 2: a transformer encoder of single-band light curves (PyTorch)."""

from astroray.models.astromer.config import (
    ASTROMER_TINY,
    ASTROMER_V1,
    ASTROMER_V2,
    AstromerConfig,
)
from astroray.models.astromer.model import (
    Astromer,
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
from astroray.models.registry import register_model

_TINY = {"num_layers": 2, "num_heads": 2, "head_dim": 8, "ffn_dim": 16}
register_model("astromer-v1", Astromer, ASTROMER_V1, tiny=_TINY)
register_model("astromer-v2", Astromer, ASTROMER_V2, tiny=_TINY)
register_model("astromer-tiny", Astromer, ASTROMER_TINY, tiny=_TINY)

__all__ = [
    "ASTROMER_TINY",
    "ASTROMER_V1",
    "ASTROMER_V2",
    "Astromer",
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
