"""Import the authors' published Astromer 1 weights (TensorFlow) as an astroray model folder.

The official Keras model (pip package ``astromer`` 0.1.8, ``get_ASTROMER``) saves an object
checkpoint whose variables are named by the Keras object graph:
``layer_with_weights-0`` is the encoder (``inp_transform``; ``enc_layers/i/mha/{wq,wk,wv,
dense}``; ``enc_layers/i/ffn/layer_with_weights-{0,1}``; ``enc_layers/i/layernorm{1,2}``) and
``layer_with_weights-1`` the regression head (``bn_0`` LayerNorm, ``reg_layer`` Dense(1)).
Keras kernels are ``(in, out)``; PyTorch weights are ``(out, in)``. The three Q/K/V
projections go into the fused ``qkv`` layer in that order; the head split of the official
``split_heads`` (reshape to ``(heads, depth)``) is the same as ours, so no permutation is
needed.

The run's ``conf.json`` gives the architecture: ``layers``, ``heads``, ``head_dim`` (the
model width d, not a head's width), ``dff``, ``dropout``, ``max_obs``, ``use_leak``. ``base``
is ignored, as the official code ignores it (the encoding always uses 10000).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astroray.models._tf_checkpoint import CheckpointError, TFCheckpoint
from astroray.models.astromer.config import ASTROMER_V1_OFFICIAL, AstromerConfig
from astroray.models.astromer.model import Astromer

__all__ = ["ConversionError", "astromer1_config_from_conf", "convert_astromer1"]

logger = logging.getLogger(__name__)

_ENC = "layer_with_weights-0"
_HEAD = "layer_with_weights-1"
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
#: The conf.json keys the architecture is read from.
_CONF_KEYS = ("layers", "heads", "head_dim", "dff")


class ConversionError(ValueError):
    """A checkpoint or configuration that is not a convertible Astromer 1; names the file."""


def astromer1_config_from_conf(conf_path: str | Path) -> AstromerConfig:
    """The official-preset config matching an official run's ``conf.json``.

    Raises:
        ConversionError: when the file is missing, not JSON, or describes another
            architecture (residual ``use_leak`` blocks, a width the heads do not divide).
    """
    conf_path = Path(conf_path)
    if not conf_path.is_file():
        raise ConversionError(f"{conf_path}: conf.json not found (the official run's "
                              "configuration must sit beside the checkpoint)")
    try:
        conf = json.loads(conf_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{conf_path}: not a JSON file ({exc})") from None
    if not isinstance(conf, dict):
        raise ConversionError(f"{conf_path}: expected a JSON object, got {type(conf).__name__}")
    missing = [k for k in _CONF_KEYS if k not in conf]
    if missing:
        raise ConversionError(f"{conf_path}: not an Astromer 1 configuration: missing "
                              f"{', '.join(missing)}")
    if conf.get("use_leak"):
        raise ConversionError(f"{conf_path}: use_leak is true (residual 'leak' projections); "
                              "only the published architecture without them is supported")
    try:
        layers, heads, width, dff = (int(conf[k]) for k in _CONF_KEYS)
    except (TypeError, ValueError):
        raise ConversionError(f"{conf_path}: {', '.join(_CONF_KEYS)} must be integers") from None
    if heads <= 0 or width % heads:
        raise ConversionError(f"{conf_path}: head_dim (the model width) {width} is not a "
                              f"multiple of heads {heads}")
    return ASTROMER_V1_OFFICIAL.replace(
        num_layers=layers, num_heads=heads, head_dim=width // heads, ffn_dim=dff,
        dropout=float(conf.get("dropout", ASTROMER_V1_OFFICIAL.dropout)),
        window_size=int(conf.get("max_obs", ASTROMER_V1_OFFICIAL.window_size)))


def _dense(ckpt: TFCheckpoint, name: str, shape_in: int, shape_out: int
           ) -> tuple[np.ndarray, np.ndarray]:
    kernel = _read(ckpt, f"{name}/kernel", (shape_in, shape_out))
    bias = _read(ckpt, f"{name}/bias", (shape_out,))
    return kernel.T, bias


def _read(ckpt: TFCheckpoint, name: str, shape: tuple[int, ...]) -> np.ndarray:
    key = name + _SUFFIX
    try:
        got = ckpt.shape(key)
    except KeyError:
        raise ConversionError(f"{ckpt.index_path}: no variable {key!r}: not a checkpoint of "
                              "the official Astromer 1 model") from None
    if tuple(got) != tuple(shape):
        raise ConversionError(f"{ckpt.index_path}: {key!r} has shape {tuple(got)}, the "
                              f"conf.json architecture needs {tuple(shape)}")
    return ckpt.read(key).astype(np.float32)


def _state_dict(ckpt: TFCheckpoint, cfg: AstromerConfig) -> dict[str, torch.Tensor]:
    d, f = cfg.d_model, cfg.ffn_dim
    out: dict[str, np.ndarray] = {}
    w, b = _dense(ckpt, f"{_ENC}/inp_transform", 1, d)
    out["input_proj.weight"], out["input_proj.bias"] = w, b
    for i in range(cfg.num_layers):
        base = f"{_ENC}/enc_layers/{i}"
        qkv = [_dense(ckpt, f"{base}/mha/{n}", d, d) for n in ("wq", "wk", "wv")]
        out[f"blocks.{i}.qkv.weight"] = np.concatenate([q[0] for q in qkv], axis=0)
        out[f"blocks.{i}.qkv.bias"] = np.concatenate([q[1] for q in qkv], axis=0)
        out[f"blocks.{i}.out.weight"], out[f"blocks.{i}.out.bias"] = _dense(
            ckpt, f"{base}/mha/dense", d, d)
        out[f"blocks.{i}.ffn.0.weight"], out[f"blocks.{i}.ffn.0.bias"] = _dense(
            ckpt, f"{base}/ffn/layer_with_weights-0", d, f)
        out[f"blocks.{i}.ffn.2.weight"], out[f"blocks.{i}.ffn.2.bias"] = _dense(
            ckpt, f"{base}/ffn/layer_with_weights-1", f, d)
        for k in (1, 2):
            out[f"blocks.{i}.norm{k}.weight"] = _read(ckpt, f"{base}/layernorm{k}/gamma", (d,))
            out[f"blocks.{i}.norm{k}.bias"] = _read(ckpt, f"{base}/layernorm{k}/beta", (d,))
    out["head_norm.weight"] = _read(ckpt, f"{_HEAD}/bn_0/gamma", (d,))
    out["head_norm.bias"] = _read(ckpt, f"{_HEAD}/bn_0/beta", (d,))
    out["head.weight"], out["head.bias"] = _dense(ckpt, f"{_HEAD}/reg_layer", d, 1)
    extra = [k for k in ckpt.keys()
             if k.startswith(f"{_ENC}/enc_layers/") and int(k.split("/")[2]) >= cfg.num_layers]
    if extra:
        raise ConversionError(f"{ckpt.index_path}: the checkpoint has more blocks than the "
                              f"{cfg.num_layers} of conf.json ({extra[0]!r})")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def convert_astromer1(src: str | Path, out: str | Path) -> Path:
    """Convert an official Astromer 1 run folder into ``out/{config.json,model.safetensors}``.

    Args:
        src: the folder of the official weights: ``conf.json`` and a TensorFlow checkpoint
            (``weights.index`` + ``weights.data-*``, or what its ``checkpoint`` file names).
        out: the model folder to write (created; ``astroray.models.load_model(out)`` opens
            it as an :class:`~astroray.models.astromer.Astromer`).

    Returns:
        ``out``.

    Raises:
        ConversionError: for a missing or malformed checkpoint or conf.json, or a checkpoint
            of another architecture; the message names the file.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ConversionError(f"{src}: no such folder (expected the official weights folder "
                              "with conf.json and weights.index)")
    cfg = astromer1_config_from_conf(src / "conf.json")
    try:
        ckpt = TFCheckpoint(src)
        # Every variable is mapped (an unmapped block raises), and each read checks its
        # CRC32C: a corrupt tensor fails here, not at run time.
        state = _state_dict(ckpt, cfg)
    except CheckpointError as exc:
        raise ConversionError(str(exc)) from None
    model = Astromer(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("time_encoding.")]:
        raise ConversionError(f"{src}: weights do not match the model (missing {missing}, "
                              f"unexpected {unexpected})")
    model.save_pretrained(out)
    provenance: dict[str, Any] = {
        "source": str(src.resolve()), "format": "tensorflow-checkpoint (astromer 0.1.8)",
        "checkpoint": str(ckpt.prefix.name), "conf": json.loads((src / "conf.json").read_text()),
        "tensors": len([k for k in ckpt.keys() if k.endswith(_SUFFIX)]),
    }
    (out / "conversion.json").write_text(json.dumps(provenance, indent=2))
    logger.info("converted %s -> %s (%d tensors)", src, out, provenance["tensors"])
    return out
