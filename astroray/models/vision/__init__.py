"""Vision transformers (ViT, SwinV2) fine-tuned on rendered spectra and light curves."""

from astroray.models.registry import register_model
from astroray.models.vision.config import (
    SWINV2_MINI_LIGHTCURVES,
    SWINV2_T_LIGHTCURVES,
    SWINV2_TINY_LIGHTCURVES,
    VIT_B16_SPECTRA,
    VIT_TINY_SPECTRA,
    VisionConfig,
)
from astroray.models.vision.model import VisionTransformer

_VIT_TINY = {"image_size": 64, "patch_size": 8, "hidden_size": 64, "num_layers": 2,
             "num_heads": 4, "intermediate_size": 128, "pretrained": ()}
_SWIN_TINY = {"image_size": 64, "patch_size": 4, "embed_dim": 24, "depths": (1, 1),
              "swin_heads": (2, 4), "window_size": 4, "pretrained": ()}
register_model("vit-b16-spectra", VisionTransformer, VIT_B16_SPECTRA, tiny=_VIT_TINY)
register_model("vit-tiny-spectra", VisionTransformer, VIT_TINY_SPECTRA, tiny=_VIT_TINY)
register_model("swinv2-t-lightcurves", VisionTransformer, SWINV2_T_LIGHTCURVES, tiny=_SWIN_TINY)
register_model("swinv2-tiny-lightcurves", VisionTransformer, SWINV2_TINY_LIGHTCURVES,
               tiny=_SWIN_TINY)
register_model("swinv2-mini-lightcurves", VisionTransformer, SWINV2_MINI_LIGHTCURVES,
               tiny=_SWIN_TINY)

__all__ = [
    "SWINV2_MINI_LIGHTCURVES",
    "SWINV2_TINY_LIGHTCURVES",
    "SWINV2_T_LIGHTCURVES",
    "VIT_B16_SPECTRA",
    "VIT_TINY_SPECTRA",
    "VisionConfig",
    "VisionTransformer",
]
