"""The labelling-bias metric L (Cabrera-Vives et al. 2018, AJ 156, 284), for labels and models.

Labels (or a model's predictions) are *biased* when, at fixed intrinsic properties, the class
fraction changes with an observable such as redshift or resolution. The metric:

1. bin the objects by their intrinsic properties (quantile bins of each property, crossed:
   ``bins ** n_properties`` cells);
2. within each intrinsic bin, bin again by one observable (quantile edges over the whole
   sample, so that the bins mean the same thing in every intrinsic bin), ordered from the best
   observed (first bin: lowest redshift, sharpest PSF) to the worst;
3. per intrinsic bin ``i`` the class fraction ``f_ij`` in observable bin ``j``, and the RMS over
   the observable bins ``j >= 1`` of the change against the first bin,
   ``RMS_i = sqrt(mean_j (f_ij - f_i0)^2)``;
4. ``L_o`` of that observable: the mean of ``RMS_i`` over intrinsic bins weighted by their
   number of objects; ``L``: the mean of ``L_o`` over the observables.

Cells with fewer than ``min_count`` objects are left out (an intrinsic bin whose first
observable bin is too small is left out entirely), so that shot noise does not dominate. The
class fraction of hard labels is the fraction labelled with the class; given probabilities, the
mean probability. Unbiased labels give L near the shot-noise floor (about
``sqrt(2 f (1 - f) / N_cell)``), not exactly 0: compare L against the same metric on the true
classes of the same objects.

What we could confirm of the published metric: only its abstract (a metric of labelling bias
that bins objects by intrinsic and by observed properties, validated on catalogue simulations);
we did not read the paper's equations or its code, so its exact weights, binning (the paper also
discusses how to choose the bins) and bootstrap are not reproduced. The definition above is the
one of our issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["bias_metric", "class_fraction_curve", "quantile_bins"]


def quantile_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin index (n,) in [0, bins) of each value, by the quantiles of ``values``.

    Ties at an edge go to the upper bin; equal edges (a value repeated over a quantile) merge
    bins rather than create empty ones in the middle.
    """
    values = np.asarray(values, dtype=np.float64)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def _intrinsic_index(intrinsic: Mapping[str, np.ndarray], bins: int) -> np.ndarray:
    index = None
    for values in intrinsic.values():
        b = quantile_bins(values, bins)
        index = b if index is None else index * bins + b
    if index is None:
        raise ValueError("at least one intrinsic property is needed")
    return index


def bias_metric(y: np.ndarray, intrinsic: Mapping[str, np.ndarray],
                observables: Mapping[str, np.ndarray], *, intrinsic_bins: int = 3,
                observable_bins: int = 4, min_count: int = 20) -> dict[str, Any]:
    """The bias metric L of labels or predictions ``y`` of one class.

    Args:
        y: (n,) 0/1 membership of the class, or its probability.
        intrinsic: name -> (n,) intrinsic property (binned in ``intrinsic_bins`` quantiles each).
        observables: name -> (n,) observable, oriented so that *low is better observed*.
        intrinsic_bins: quantile bins per intrinsic property.
        observable_bins: quantile bins of each observable.
        min_count: cells with fewer objects are left out.

    Returns:
        ``L`` (the mean over observables), ``per_observable`` (name -> L_o), and ``bins``
        (name -> list of per-intrinsic-bin records: ``n``, ``rms``, ``fractions``).

    Raises:
        ValueError: on mismatched lengths or no usable intrinsic bin for an observable.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    for name, values in {**intrinsic, **observables}.items():
        if np.shape(values) != (n,):
            raise ValueError(f"{name} has shape {np.shape(values)}, expected ({n},)")
    cells = _intrinsic_index(intrinsic, intrinsic_bins)
    per_obs: dict[str, float] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for name, values in observables.items():
        obs = quantile_bins(values, observable_bins)
        n_cells = intrinsic_bins ** len(intrinsic)
        flat = cells * observable_bins + obs  # (n,) joint cell index
        counts = np.bincount(flat, minlength=n_cells * observable_bins).reshape(
            n_cells, observable_bins)
        sums = np.bincount(flat, weights=y, minlength=n_cells * observable_bins).reshape(
            n_cells, observable_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = sums / counts  # (n_cells, observable_bins)
        usable = counts >= min_count
        rms, weight, rows = [], [], []
        for i in range(n_cells):
            if not usable[i, 0] or usable[i, 1:].sum() == 0:
                continue
            diffs = frac[i, 1:][usable[i, 1:]] - frac[i, 0]
            rms_i = float(np.sqrt(np.mean(diffs ** 2)))
            n_i = int(counts[i][usable[i]].sum())
            rms.append(rms_i)
            weight.append(n_i)
            rows.append({"bin": i, "n": n_i, "rms": rms_i,
                         "fractions": [float(f) if u else None
                                       for f, u in zip(frac[i], usable[i], strict=True)]})
        if not rms:
            raise ValueError(f"no intrinsic bin has {min_count}+ objects in the first and in "
                             f"another {name} bin: use fewer bins or more objects")
        per_obs[name] = float(np.average(rms, weights=weight))
        records[name] = rows
    return {"L": float(np.mean(list(per_obs.values()))), "per_observable": per_obs,
            "bins": records}


def class_fraction_curve(y: np.ndarray, values: np.ndarray,
                         bins: int = 6) -> dict[str, list[float]]:
    """Class fraction against an observable: quantile bins, their median and the fraction.

    Returns:
        ``x`` (median of the observable per bin), ``fraction`` and ``error`` (binomial standard
        error of the fraction), each a list of ``bins`` floats.
    """
    y = np.asarray(y, dtype=np.float64)
    index = quantile_bins(values, bins)
    x, frac, err = [], [], []
    for b in range(bins):
        sel = index == b
        if not sel.any():
            continue
        f = float(y[sel].mean())
        x.append(float(np.median(np.asarray(values)[sel])))
        frac.append(f)
        err.append(float(np.sqrt(max(f * (1 - f), 1e-12) / sel.sum())))
    return {"x": x, "fraction": frac, "error": err}
