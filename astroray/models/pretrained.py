"""Save and load models in the Hugging Face layout: ``config.json`` beside ``model.safetensors``.

A model class using :class:`PretrainedMixin` sets ``config_class`` (a :class:`Config`
subclass) and ``model_type`` (its registry family), and is built from its config alone, so
that the folder is all that is needed to rebuild it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file

from astroray.config import Config

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "PretrainedMixin", "read_config_json",
           "read_safetensors_header"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedMixin")


def read_config_json(path: str | Path) -> dict[str, Any]:
    """The raw mapping in ``path/config.json`` (``model_type`` included).

    Raises:
        FileNotFoundError: when the folder has no ``config.json``.
        ValueError: when it is not a JSON object (naming the file, line and column).
    """
    file = Path(path) / CONFIG_NAME
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{file}: not a text file") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object, got {type(data).__name__}")
    return data


#: Bytes per element of the safetensors dtypes.
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def read_safetensors_header(file: str | Path) -> dict[str, dict[str, Any]]:
    """The tensor table of a ``.safetensors`` file, checked against the file's size.

    The format is an 8-byte little-endian header length, a JSON header mapping tensor names
    to ``dtype``, ``shape`` and ``data_offsets``, then the data. Reading the header and the
    file size is enough to catch a truncated, padded or garbage file without loading it.

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: naming the file and what is wrong with it.
    """
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file (not a saved model folder)")
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError(f"{file}: truncated ({size} bytes; not a safetensors file)")
        n = int.from_bytes(head, "little")
        if n <= 1 or 8 + n > size:
            raise ValueError(f"{file}: not a safetensors file or truncated (header of {n} "
                             f"bytes, file of {size})")
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{file}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{file}: not a safetensors file (header is not a mapping)")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = 0
    for name, info in tensors.items():
        try:
            start, stop = (int(x) for x in info["data_offsets"])
            count = 1
            for dim in info["shape"]:
                count *= int(dim)
            width = _DTYPE_BYTES.get(info["dtype"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{file}: tensor {name!r} has a malformed header entry") from None
        if width is not None and stop - start != count * width:
            raise ValueError(f"{file}: tensor {name!r} has {stop - start} bytes for shape "
                             f"{info['shape']} {info['dtype']}")
        end = max(end, stop)
    if 8 + n + end != size:
        raise ValueError(f"{file}: truncated or padded ({size} bytes; the header describes "
                         f"{8 + n + end})")
    return tensors


class PretrainedMixin:
    """``save_pretrained(dir)`` / ``from_pretrained(dir)`` for ``torch.nn.Module`` models."""

    config_class: ClassVar[type[Config]]
    model_type: ClassVar[str]
    config: Config

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``path`` (created if needed)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        data = {"model_type": self.model_type, **self.config.to_dict()}
        (path / CONFIG_NAME).write_text(json.dumps(data, indent=2))
        state = {k: v.detach().contiguous().cpu()
                 for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        save_file(state, str(path / WEIGHTS_NAME), metadata={"model_type": self.model_type})
        return path

    @classmethod
    def from_pretrained(cls: type[M], path: str | Path, *, map_location: str | torch.device = "cpu",
                        **overrides: Any) -> M:
        """Rebuild the model from ``path/config.json`` and load ``path/model.safetensors``.

        Args:
            path: the folder :meth:`save_pretrained` wrote.
            map_location: device the weights are loaded onto.
            **overrides: config fields to change (e.g. ``dropout=0.0``); architecture fields
                must match the weights.

        Raises:
            FileNotFoundError: when the folder lacks the config or the weights.
            ValueError: when the folder holds another model family.
        """
        path = Path(path)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path / name} not found: not a saved model folder")
        data = read_config_json(path)
        model_type = data.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(f"{path} holds a {model_type!r} model, not {cls.model_type!r}")
        config = cls.config_class.from_dict({**data, **overrides})
        model = cls(config)  # type: ignore[call-arg]
        state = load_file(str(path / WEIGHTS_NAME), device=str(map_location))
        model.load_state_dict(state)  # type: ignore[attr-defined]
        return model
