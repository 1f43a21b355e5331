"""Sampled class probabilities of an Astromer classifier's objects from their windows.

An object's class logits come from the mean of its windows' layer means (all bands), as in
:class:`~astroray.models.astromer.AstromerClassifier`; :func:`sample_object_probs` draws T
stochastic passes of them (MC Dropout, HSA) as one forward. Used by bulk inference
(:mod:`astroray.infer.predictors`) and the uncertainty study
(:mod:`astroray.studies.uncertainty`).
"""

from __future__ import annotations

import torch
from torch import nn

from astroray.models.layers import sample_probabilities, stochastic

__all__ = ["object_logits", "sample_object_probs"]


def object_logits(model: nn.Module, windows: dict[str, torch.Tensor], win_obj: torch.Tensor,
                  n_objects: int, chunk: int = 256) -> torch.Tensor:
    """Class logits (N, C) of objects from their windows (W, T) (``win_obj``: (W,) object).

    An object's head input is the mean of its windows' layer means (all bands). The encoder
    runs on at most ``chunk`` windows at a time (attention memory grows with W x T^2).
    """
    parts = []
    for lo in range(0, len(win_obj), chunk):
        sl = slice(lo, lo + chunk)
        parts.append(model.encoder.embed(windows["times"][sl], windows["values"][sl],
                                         windows["mask"][sl]))  # (w, S, D)
    means = torch.cat(parts)  # (W, S, D)
    sums = torch.zeros(n_objects, *means.shape[1:], dtype=means.dtype, device=means.device)
    sums = sums.index_add(0, win_obj, means)
    counts = torch.bincount(win_obj, minlength=n_objects).clamp(min=1).to(means.dtype)
    return model(sums / counts[:, None, None])  # (N, C)


def sample_object_probs(model: nn.Module, windows: dict[str, torch.Tensor],
                        win_obj: torch.Tensor, n_objects: int, passes: int, *,
                        dropout: bool, hsa: bool, max_windows: int = 512) -> torch.Tensor:
    """``(T, N, C)`` probabilities of T passes; the stochastic layers chosen are sampled.

    The passes run as one forward over T copies of the windows (in chunks of whole passes
    of at most ``max_windows`` windows); with no stochastic layer switched on every pass is
    the deterministic one.
    """
    n_win = len(win_obj)

    def forward(chunk: dict[str, torch.Tensor]) -> torch.Tensor:
        t = chunk["times"].shape[0] // n_win
        obj = chunk["obj"] + torch.arange(t).repeat_interleave(n_win) * n_objects
        return object_logits(model, chunk, obj, t * n_objects)  # (t * N, C)

    model.eval()
    inputs = {**windows, "obj": win_obj}
    if dropout or hsa:
        with stochastic(model, dropout=dropout, hsa=hsa):
            return sample_probabilities(forward, inputs, passes, max_rows=max_windows)
    return sample_probabilities(forward, inputs, 1, max_rows=max_windows)
