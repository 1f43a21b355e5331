"""Precision on a device, shared by training and inference (both run models in it)."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast"]


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op on CPU, which runs fp32."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
