"""Regression metrics for redshifts: R^2, NMAD of dz / (1 + z), outlier fraction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["OUTLIER_THRESHOLD", "r2_score", "redshift_metrics"]

#: |z_pred - z| / (1 + z) above which a prediction is a catastrophic outlier.
OUTLIER_THRESHOLD = 0.15


def r2_score(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (NaN when ``y_true`` is constant)."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    ss_tot = float(((t - t.mean()) ** 2).sum()) if t.size else 0.0
    if ss_tot <= 0:
        return float("nan")
    return 1.0 - float(((t - p) ** 2).sum()) / ss_tot


def redshift_metrics(z_true: Sequence[float], z_pred: Sequence[float], *,
                     outlier_threshold: float = OUTLIER_THRESHOLD) -> dict[str, float]:
    """Photometric/spectroscopic redshift figures of merit.

    With ``dz = (z_pred - z_true) / (1 + z_true)``:

    * ``nmad`` = 1.4826 * median(|dz - median(dz)|) (robust scatter),
    * ``outlier_fraction`` = fraction with ``|dz| > outlier_threshold``,
    * ``bias`` = median(dz), plus ``r2``, ``rmse`` and ``mae`` of ``z`` itself.

    Non-finite pairs are dropped and counted in ``n_dropped``.
    """
    t = np.asarray(z_true, dtype=np.float64)
    p = np.asarray(z_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"z_true {t.shape} and z_pred {p.shape} differ in shape")
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    if t.size == 0:
        nan = float("nan")
        return {"n": 0, "n_dropped": int((~ok).sum()), "r2": nan, "rmse": nan, "mae": nan,
                "nmad": nan, "bias": nan, "outlier_fraction": nan}
    dz = (p - t) / (1.0 + t)
    med = float(np.median(dz))
    return {
        "n": int(t.size),
        "n_dropped": int((~ok).sum()),
        "r2": r2_score(t, p),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "mae": float(np.mean(np.abs(p - t))),
        "nmad": float(1.4826 * np.median(np.abs(dz - med))),
        "bias": med,
        "outlier_fraction": float(np.mean(np.abs(dz) > outlier_threshold)),
    }
