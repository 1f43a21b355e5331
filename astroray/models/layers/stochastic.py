"""Monte Carlo inference: stochastic passes of a classifier (MC Dropout, HSA, HA-MC Dropout).

:func:`stochastic` switches a model's sources of randomness on while the rest stays in eval
mode (LayerNorm, no gradient); :func:`sample_probabilities` runs T passes as one forward over
T x B rows (in chunks of whole passes when memory asks for it) and returns ``(T, B, C)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn

from astroray.models.layers.hsa import HierarchicalStochasticAttention

__all__ = ["has_stochastic_layers", "sample_probabilities", "stochastic"]


def _dropouts(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


def _hsa(model: nn.Module) -> list[HierarchicalStochasticAttention]:
    return [m for m in model.modules() if isinstance(m, HierarchicalStochasticAttention)]


def has_stochastic_layers(model: nn.Module, *, dropout: bool = True, hsa: bool = True) -> bool:
    """Whether the model has dropout (p > 0) or HSA layers to sample."""
    return bool((dropout and _dropouts(model)) or (hsa and _hsa(model)))


@contextlib.contextmanager
def stochastic(model: nn.Module, *, dropout: bool = True, hsa: bool = True
               ) -> Iterator[nn.Module]:
    """Sample the model's dropout masks and / or HSA choices at inference.

    Dropout layers go to train mode and HSA modules to Monte Carlo mode; every other layer
    keeps its mode. Restored on exit.

    Args:
        model: the classifier (usually in eval mode).
        dropout: MC Dropout.
        hsa: hierarchical stochastic attention sampling.
    """
    saved: list[tuple[nn.Module, str, bool]] = []
    try:
        if dropout:
            for m in _dropouts(model):
                saved.append((m, "training", m.training))
                m.training = True
        if hsa:
            for m in _hsa(model):
                saved.append((m, "mc", m.mc))
                m.mc = True
        yield model
    finally:
        for m, attr, value in reversed(saved):
            setattr(m, attr, value)


def sample_probabilities(forward: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
                         inputs: Mapping[str, torch.Tensor], passes: int, *,
                         max_rows: int = 8192) -> torch.Tensor:
    """Class probabilities of ``passes`` stochastic forwards: ``(T, B, C)``.

    The inputs (B rows each) are repeated T times along the batch so that the passes run as
    one forward over T x B rows; ``max_rows`` bounds the rows of one call (whole passes per
    call, at least one).

    Args:
        forward: logits ``(t * B', C)`` of the inputs repeated t times (``t * B`` rows): B'
            is usually B; a forward that pools rows (windows into objects) returns its
            pooled rows, pass by pass. Run it under :func:`stochastic` (or with a model whose
            randomness is always on).
        inputs: tensors with the same first dimension B.
        passes: T >= 1.
        max_rows: most rows per call.
    """
    if not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes must be a positive integer; got {passes!r}")
    sizes = {v.shape[0] for v in inputs.values()}
    if len(sizes) != 1:
        raise ValueError(f"inputs must share their first dimension; got {sorted(sizes)}")
    b = sizes.pop()
    per_call = max(1, min(passes, max_rows // max(b, 1)))
    out = []
    with torch.no_grad():
        done = 0
        while done < passes:
            t = min(per_call, passes - done)
            chunk = {k: v.repeat(t, *([1] * (v.dim() - 1))) for k, v in inputs.items()}
            logits = forward(chunk).float()  # (t * B, C)
            out.append(torch.softmax(logits, dim=-1).view(t, -1, logits.shape[-1]))
            done += t
    return torch.cat(out)  # (T, B, C)
