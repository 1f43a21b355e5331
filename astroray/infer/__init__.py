"""Batch inference at survey scale on Ray Data: model actors over canonical datasets."""

from astroray.infer.astromer import (
    AstromerEmbedder,
    EmbedConfig,
    embed,
    embed_table,
    load_encoder,
    read_embeddings,
)

__all__ = ["AstromerEmbedder", "EmbedConfig", "embed", "embed_table", "load_encoder",
           "read_embeddings"]
