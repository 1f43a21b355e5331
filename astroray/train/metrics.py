"""Metrics of training runs: masked-regression sums that reduce across workers, macro F1.

:func:`macro_f1` is :func:`astroray.metrics.macro_f1`, re-exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from astroray.metrics import macro_f1

__all__ = ["MaskedRegressionMeter", "macro_f1", "mean_spread"]


class MaskedRegressionMeter:
    """Accumulate RMSE and R^2 of predictions at probed points, over batches and workers.

    Sums are kept in float64 on the CPU; :meth:`all_reduce` adds them across the workers of a
    ``torch.distributed`` group, so every worker then computes the same global figures.
    """

    _FIELDS = ("n", "sse", "sum_y", "sum_y2", "win_loss", "windows", "sse_zero", "w", "wsse",
               "w_y", "w_y2")

    def __init__(self) -> None:
        self.sums = torch.zeros(len(self._FIELDS), dtype=torch.float64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor, probed: torch.Tensor,
               weight: torch.Tensor | None = None) -> None:
        """Add one batch: all (B, T); ``weight`` is the loss weight of each point (or None).

        The loss follows :func:`astroray.models.astromer.masked_rmse`: each window's mean of
        the weighted squared residuals over its probed points, averaged over windows.
        """
        p = probed.bool()
        pred_all, y_all = prediction.detach().double(), target.detach().double()
        pred, y = pred_all[p], y_all[p]
        r2 = (pred - y) ** 2
        sq = (pred_all - y_all) ** 2 * p
        if weight is not None:
            sq = sq * weight.detach().double()
        count = p.sum(dim=1).double()  # (B,)
        has = count > 0
        per_window = (sq.sum(dim=1) / count.clamp(min=1.0))[has]
        w = weight.detach().double()[p] if weight is not None else torch.ones_like(y)
        batch = torch.stack([torch.tensor(float(y.numel()), dtype=torch.float64), r2.sum(),
                             y.sum(), (y ** 2).sum(), per_window.sum(),
                             has.sum().double(), (y ** 2).sum(), w.sum(), (w * r2).sum(),
                             (w * y).sum(), (w * y ** 2).sum()])
        self.sums += batch.cpu()

    def all_reduce(self, device: torch.device | None = None) -> None:
        """Sum across workers when ``torch.distributed`` is initialised.

        Args:
            device: where the collective runs (the worker's GPU under NCCL).
        """
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            sums = self.sums.to(device) if device is not None else self.sums
            torch.distributed.all_reduce(sums)
            self.sums = sums.cpu()

    def compute(self) -> dict[str, float]:
        """The figures: ``rmse``, ``r2``, ``r2_weighted``, ``loss``, ``rmse_zero``, ``n``.

        ``r2_weighted`` is R^2 with the loss weights (equal to ``r2`` without weights): the
        figure a weighted objective improves.

        ``loss`` is the (error-weighted, when weights were given) per-window RMSE that
        training minimises, ``rmse_zero`` the RMSE of predicting the window mean (0), ``n``
        the number of probed points.
        """
        s = dict(zip(self._FIELDS, self.sums.tolist(), strict=True))
        n = max(s["n"], 1.0)
        sst = s["sum_y2"] - s["sum_y"] ** 2 / n
        w = max(s["w"], 1e-300)
        wsst = s["w_y2"] - s["w_y"] ** 2 / w
        return {
            "r2_weighted": float(1.0 - s["wsse"] / wsst) if wsst > 0 else float("nan"),
            "rmse": float(np.sqrt(s["sse"] / n)),
            "r2": float(1.0 - s["sse"] / sst) if sst > 0 else float("nan"),
            "loss": float(np.sqrt(s["win_loss"] / max(s["windows"], 1.0))),
            "rmse_zero": float(np.sqrt(s["sse_zero"] / n)),
            "n": int(s["n"]),
        }


def mean_spread(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "values"}`` of fold results (std with ddof=0; NaN-free input)."""
    arr = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(arr.mean()) if arr.size else float("nan"),
            "std": float(arr.std()) if arr.size else float("nan"),
            "values": [float(v) for v in arr]}
