"""Astromer 1 and 2: a transformer encoder of single-band light curves (PyTorch)."""

from astroray.models.astromer.config import (
    ASTROMER_TINY,
    ASTROMER_V1,
    ASTROMER_V1_OFFICIAL,
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
    error_weights,
    layer_means,
    mask_inputs,
    masked_mean,
    masked_rmse,
    sinusoidal_frequencies,
)
from astroray.models.astromer.processing import (
    Float32Windows,
    impute_embeddings,
    load_encoder,
    read_embeddings,
)
from astroray.models.astromer.published import PUBLISHED, published_folder, resolve_published
from astroray.models.registry import register_family, register_model, register_published

_TINY = {"num_layers": 2, "num_heads": 2, "head_dim": 8, "ffn_dim": 16}
register_model("astromer-v1", Astromer, ASTROMER_V1, tiny=_TINY)
register_model("astromer-v2", Astromer, ASTROMER_V2, tiny=_TINY)
register_model("astromer-v1-official", Astromer, ASTROMER_V1_OFFICIAL, tiny=_TINY)
register_model("astromer-tiny", Astromer, ASTROMER_TINY, tiny=_TINY)
register_family(AstromerClassifier, tiny=AstromerClassifierConfig(
    encoder=ASTROMER_TINY.replace(**_TINY), labels=("a", "b", "c"), hidden=(16, 8), dropout=0.1))
for _name in PUBLISHED:
    register_published(_name, lambda name=_name: resolve_published(name))

__all__ = [
    "ASTROMER_TINY",
    "ASTROMER_V1",
    "ASTROMER_V1_OFFICIAL",
    "ASTROMER_V2",
    "Astromer",
    "AstromerClassifier",
    "AstromerClassifierConfig",
    "AstromerClassifierHead",
    "AstromerConfig",
    "AstromerOutput",
    "Float32Windows",
    "MaskedInputs",
    "TimeEncoding",
    "WeightedEmbedding",
    "error_weights",
    "impute_embeddings",
    "layer_means",
    "load_encoder",
    "mask_inputs",
    "masked_mean",
    "masked_rmse",
    "published_folder",
    "read_embeddings",
    "sinusoidal_frequencies",
]
