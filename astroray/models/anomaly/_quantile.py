"""A quantile transform whose state is two arrays (saved with the detector's weights).

The same mapping as scikit-learn's ``QuantileTransformer``: each column's empirical quantiles
map to uniform references in [0, 1], values between quantiles are interpolated (forwards and
backwards, averaged, so that runs of equal quantiles map to the middle of their references),
and values beyond the fitted range go to the ends. :func:`quantile_uniform` stops there (the
estimator's default ``output_distribution="uniform"``) and writes missing values as -1, as
the MCDSVDD authors' ``QuantileFeaturePreprocessor`` does (``np.nan_to_num(x, nan=-1.0)``):
outside [0, 1], a missing feature stays visible to the encoder. :func:`quantile_normal` (the
``normal`` variant) sends the uniform value through the normal quantile function, clipped at
1e-7 from 0 and 1, and imputes missing values by 0, the median. Keeping the state as arrays
lets the detector store it in ``model.safetensors`` (covered by the model hash, loaded
without pickle) instead of a pickled estimator.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["MISSING_UNIFORM", "OUTPUTS", "fit_quantiles", "quantile_normal", "quantile_transform",
           "quantile_uniform"]

_BOUND = 1e-7
#: Where :func:`quantile_uniform` puts a missing value (the authors' ``nan=-1.0``).
MISSING_UNIFORM = -1.0
#: ``uniform`` (the authors': [0, 1], missing -1) or ``normal`` (standard normal, missing 0).
OUTPUTS = ("uniform", "normal")


def fit_quantiles(x: np.ndarray, n_quantiles: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column quantiles of ``x`` (N, F), NaN ignored.

    Args:
        x: training inputs, (N, F); NaN marks a missing value.
        n_quantiles: quantiles to keep (capped at N).

    Returns:
        ``(quantiles, references)``: (Q, F) non-decreasing per column (a column without any
        finite value gets zeros), and (Q,) the uniform levels in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    q = int(max(2, min(n_quantiles, x.shape[0])))
    references = np.linspace(0.0, 1.0, q)
    quantiles = np.zeros((q, x.shape[1]))
    for j in range(x.shape[1]):
        col = x[:, j][np.isfinite(x[:, j])]
        if col.size:
            quantiles[:, j] = np.percentile(col, references * 100.0)
    # Percentile interpolation can break monotonicity by rounding: restore it.
    quantiles = np.maximum.accumulate(quantiles, axis=0)
    return quantiles, references


def _uniform(x: np.ndarray, quantiles: np.ndarray, references: np.ndarray) -> np.ndarray:
    """(N, F) float64 in [0, 1] through the fitted quantiles; NaN where ``x`` is missing."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != quantiles.shape[1]:
        raise ValueError(f"expected inputs (N, {quantiles.shape[1]}), got {x.shape}")
    out = np.full(x.shape, np.nan)
    for j in range(x.shape[1]):
        qj = quantiles[:, j]
        col = x[:, j]
        ok = np.isfinite(col)
        v = col[ok]
        up = np.interp(v, qj, references)
        down = -np.interp(-v, -qj[::-1], -references[::-1])
        u = 0.5 * (up + down)
        u[v + _BOUND > qj[-1]] = 1.0
        u[v - _BOUND < qj[0]] = 0.0  # last: a constant column maps to the low end
        out[ok, j] = u
    return out


def quantile_uniform(x: np.ndarray, quantiles: np.ndarray, references: np.ndarray, *,
                     missing: float | None = MISSING_UNIFORM) -> np.ndarray:
    """Map ``x`` (N, F) through the fitted quantiles to [0, 1] (scikit-learn's default).

    Args:
        x: inputs, (N, F); non-finite values are missing.
        quantiles: (Q, F) from :func:`fit_quantiles`.
        references: (Q,) from :func:`fit_quantiles`.
        missing: the value of a missing input (-1: outside the range of observed ones, as
            the authors set it); None keeps NaN.

    Returns:
        (N, F) float32.
    """
    out = _uniform(x, quantiles, references)
    if missing is not None:
        out = np.where(np.isfinite(out), out, missing)
    return out.astype(np.float32)


def quantile_normal(x: np.ndarray, quantiles: np.ndarray, references: np.ndarray, *,
                    impute: bool = True) -> np.ndarray:
    """Map ``x`` (N, F) through the fitted quantiles to a standard normal.

    Args:
        x: inputs, (N, F); non-finite values are missing.
        quantiles: (Q, F) from :func:`fit_quantiles`.
        references: (Q,) from :func:`fit_quantiles`.
        impute: replace missing values by 0 (the median of the output); else keep NaN.

    Returns:
        (N, F) float32.
    """
    out = _uniform(x, quantiles, references)
    lo, hi = ndtri(_BOUND - np.spacing(1)), ndtri(1.0 - (_BOUND - np.spacing(1)))
    out = np.clip(ndtri(out), lo, hi)
    if impute:
        out = np.where(np.isfinite(out), out, 0.0)
    return out.astype(np.float32)


def quantile_transform(x: np.ndarray, quantiles: np.ndarray, references: np.ndarray,
                       output: str = "uniform") -> np.ndarray:
    """:func:`quantile_uniform` or :func:`quantile_normal` (missing values filled), by name."""
    if output == "uniform":
        return quantile_uniform(x, quantiles, references)
    if output == "normal":
        return quantile_normal(x, quantiles, references)
    raise ValueError(f"quantile output must be one of {OUTPUTS}, got {output!r}")
