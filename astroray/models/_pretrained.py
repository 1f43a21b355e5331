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

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "PretrainedMixin", "read_config_json"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedMixin")


def read_config_json(path: str | Path) -> dict[str, Any]:
    """The raw mapping in ``path/config.json`` (``model_type`` included)."""
    return json.loads((Path(path) / CONFIG_NAME).read_text())


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
