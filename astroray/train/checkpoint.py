"""Training checkpoints: a model folder (``config.json`` + ``model.safetensors``) plus state.

A checkpoint folder is a complete saved model, loadable with ``from_pretrained`` or
:func:`astroray.models.load_model`; :data:`TRAINING_STATE` beside it holds what resuming
needs (optimizer and scheduler state, epoch, metric history).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from astroray.models.pretrained import WEIGHTS_NAME

__all__ = ["TRAINING_STATE", "load_checkpoint", "save_checkpoint", "unwrap"]

TRAINING_STATE = "training_state.pt"


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel (or similar ``.module``) wrapper."""
    return getattr(model, "module", model)


def save_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, **state: Any) -> Path:
    """Write the model folder and the training state into ``path``.

    Args:
        path: folder (created when missing).
        model: a model with ``save_pretrained`` (DDP wrappers are unwrapped).
        optimizer: its optimizer, whose state is saved for resuming.
        scheduler: a learning-rate scheduler, likewise.
        **state: JSON-like values (epoch, history, ...).

    Returns:
        The folder.
    """
    path = Path(path)
    unwrap(model).save_pretrained(path)  # type: ignore[operator]
    payload = dict(state)
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    torch.save(payload, path / TRAINING_STATE)
    return path


def load_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load weights (and optimizer/scheduler state when given) from a checkpoint folder.

    Returns:
        The saved training state (epoch, history, ...), without the optimizer/scheduler
        entries.
    """
    path = Path(path)
    unwrap(model).load_state_dict(load_file(str(path / WEIGHTS_NAME), device=str(map_location)))
    state_file = path / TRAINING_STATE
    if not state_file.is_file():
        return {}
    state = torch.load(state_file, map_location=map_location, weights_only=False)
    opt_state = state.pop("optimizer", None)
    sched_state = state.pop("scheduler", None)
    if optimizer is not None and opt_state is not None:
        optimizer.load_state_dict(opt_state)
    if scheduler is not None and sched_state is not None:
        scheduler.load_state_dict(sched_state)
    return state
