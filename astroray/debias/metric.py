"""The labelling-bias metric L (Cabrera-Vives et al. 2018, AJ 156, 284), for labels and models.

Labels (or a model's predictions) are *biased* when, at fixed intrinsic properties, the class
fraction changes with an observable such as redshift or resolution. :func:`bias_metric`
computes L as the authors' code does (guille-c/labeling_bias, ``BiasAnalyser.L`` and
``calculateSigma2``):

1. intrinsic bins are the leaves of a KD-tree of depth ``log2(intrinsic_bins)`` over the
   intrinsic properties: each node splits its objects at the median of one property (``< m``
   left, ``>= m`` right), the properties taken in turn down the tree;
2. for each observable ``o`` and each leaf ``q``, the leaf's objects sorted by ``o`` are split
   into ``observable_bins`` bins of equal counts (bin edges ``round(linspace(0, n_q, J + 1))``),
   ordered from the best observed (first bin: lowest redshift, sharpest PSF) to the worst;
3. with ``f_qjk`` the fraction of class ``k`` in bin ``j`` of leaf ``q``,
   ``sigma2_oqk = sum_j (f_qjk - f_q0k)^2 / J`` (the first bin's zero term included, so the sum
   is divided by J, not J - 1);
4. ``L = sqrt(sum_oqk sigma2_oqk / (n_observables * n_classes * n_leaves))``: one RMS over
   observables, classes and intrinsic bins. A leaf without objects adds 0 to the sum and still
   counts in the denominator, as in the reference.

``L_o`` (``per_observable``) is the same RMS over one observable's terms, so that
``L^2 = mean_o L_o^2``. For a two-class problem both classes give the same terms (one class's
fraction is 1 minus the other's), so L of one class's membership, ``y`` of shape ``(n,)``,
equals the reference's L over both labels. With probabilities instead of 0/1 membership the
class fraction is the mean probability (our extension; the reference takes hard labels).

Unbiased labels give L at the shot-noise floor, about ``sqrt((J - 1) / J * 2 f (1 - f) /
n_cell)`` with ``n_cell`` objects per (leaf, observable bin), not 0: compare L against the
same metric on the true classes of the same objects, with the same bins.

Differences from the reference, all at its edges: where it returns L = 0 for a sample smaller
than ``intrinsic_bins * observable_bins * min_count`` (``minElementsBin``), and NaN for a leaf
with fewer objects than observable bins, we raise an error (an L of 0 would read as unbiased);
ties in an observable are ordered by a stable sort (the reference's ``argsort`` leaves their
order to the sort); observables are oriented by the caller so that low is better observed
(the reference's ``increasing_bias=False`` compares against the last bin instead). Its
bootstrap over resampled objects (``getRandomL(..., bootstrap=True)``), the way the authors quote
L (mean +- std), is :func:`bootstrap_bias_metric`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["bias_metric", "bootstrap_bias_metric", "class_fraction_curve", "equal_count_bins",
           "kd_tree_bins", "quantile_bins"]


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


def kd_tree_bins(x: np.ndarray, depth: int) -> np.ndarray:
    """Leaf index (n,) in [0, 2**depth) of each row of ``x`` (n, p): the reference's KD-tree.

    Each node splits its rows at the median of one column (``< median``: left, index bit 0;
    ``>= median``: right, bit 1, the most significant bit at the root), the columns taken in
    turn from column 0 down the tree. A split with every row on one side leaves the other
    leaf empty.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"expected intrinsic properties (n, p >= 1), got {x.shape}")
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    leaf = np.zeros(x.shape[0], np.int64)
    # Breadth-first: every node of one level at a time, each with its own median.
    nodes = [np.arange(x.shape[0])]
    for level in range(depth):
        column = level % x.shape[1]
        children = []
        for rows in nodes:
            if rows.size == 0:
                children += [rows, rows]
                continue
            values = x[rows, column]
            right = values >= np.median(values)
            leaf[rows[right]] += 1 << (depth - 1 - level)
            children += [rows[~right], rows[right]]
        nodes = children
    return leaf


def equal_count_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin index (n,) in [0, bins): sorted by value, cut at ``round(linspace(0, n, bins+1))``.

    The reference's ``getFractions`` split (NumPy's round, half to even); ties are ordered by a
    stable sort.
    """
    values = np.asarray(values, dtype=np.float64)
    cuts = np.round(np.linspace(0, values.size, bins + 1)).astype(np.int64)
    out = np.empty(values.size, np.int64)
    order = np.argsort(values, kind="stable")
    for j in range(bins):
        out[order[cuts[j]:cuts[j + 1]]] = j
    return out


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1 \
        and (int(n) & (int(n) - 1)) == 0


def bias_metric(y: np.ndarray, intrinsic: Mapping[str, np.ndarray],
                observables: Mapping[str, np.ndarray], *, intrinsic_bins: int = 8,
                observable_bins: int = 4, min_count: int = 10) -> dict[str, Any]:
    """The bias metric L of labels or predictions ``y``, as the reference computes it.

    Args:
        y: (n,) 0/1 membership of one class (or its probability), or (n, K) per class.
        intrinsic: name -> (n,) intrinsic property, in the KD-tree's order of splits.
        observables: name -> (n,) observable, oriented so that *low is better observed*.
        intrinsic_bins: leaves of the KD-tree, a power of two (the reference's
            ``2**log2_bins_int``).
        observable_bins: equal-count bins of each observable within each leaf (``bins_obs``).
        min_count: the sample must hold ``intrinsic_bins * observable_bins * min_count``
            objects or more (the reference's ``minElementsBin``).

    Returns:
        ``L``, ``per_observable`` (name -> L_o), and ``bins`` (name -> one record per leaf:
        ``bin``, ``n``, ``rms`` (``sqrt`` of its sigma2 averaged over classes) and
        ``fractions`` (per observable bin, of the first class)).

    Raises:
        ValueError: on mismatched lengths, bins that are not powers of two or fewer than 2
            observable bins, too small a sample, or a leaf with fewer objects than
            observable bins.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be (n,) or (n, K), got shape {y.shape}")
    n = y.shape[0]
    fractions_of = y[:, None] if y.ndim == 1 else y  # (n, K)
    for name, values in {**intrinsic, **observables}.items():
        if np.shape(values) != (n,):
            raise ValueError(f"{name} has shape {np.shape(values)}, expected ({n},)")
    if not intrinsic:
        raise ValueError("at least one intrinsic property is needed")
    if not observables:
        raise ValueError("at least one observable is needed")
    if not _is_power_of_two(intrinsic_bins):
        raise ValueError(f"intrinsic_bins must be a power of two (KD-tree leaves), got "
                         f"{intrinsic_bins}")
    if not isinstance(observable_bins, int | np.integer) or observable_bins < 2:
        raise ValueError(f"observable_bins must be an integer >= 2, got {observable_bins}")
    needed = intrinsic_bins * observable_bins * min_count
    if n < needed:
        raise ValueError(f"{n} objects: L with {intrinsic_bins} intrinsic x {observable_bins} "
                         f"observable bins needs {needed} ({min_count} per bin on average); "
                         "use fewer bins or more objects")
    depth = int(intrinsic_bins).bit_length() - 1
    leaf = kd_tree_bins(np.column_stack([np.asarray(v, np.float64)
                                         for v in intrinsic.values()]), depth)
    counts = np.bincount(leaf, minlength=intrinsic_bins)
    thin = np.flatnonzero((counts > 0) & (counts < observable_bins))
    if thin.size:
        raise ValueError(f"intrinsic bins {thin.tolist()} hold fewer objects "
                         f"({counts[thin].tolist()}) than observable bins ({observable_bins})")
    n_classes = fractions_of.shape[1]
    sums: dict[str, float] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for name, values in observables.items():
        values = np.asarray(values, dtype=np.float64)
        total, rows = 0.0, []
        for q in np.flatnonzero(counts):
            members = np.flatnonzero(leaf == q)
            obs = equal_count_bins(values[members], observable_bins)
            size = np.bincount(obs, minlength=observable_bins)  # (J,)
            frac = np.stack([np.bincount(obs, weights=fractions_of[members, k],
                                         minlength=observable_bins)
                             for k in range(n_classes)], axis=1) / size[:, None]  # (J, K)
            sigma2 = ((frac - frac[0]) ** 2).sum(axis=0) / observable_bins  # (K,)
            total += float(sigma2.sum())
            rows.append({"bin": int(q), "n": int(members.size),
                         "rms": float(np.sqrt(sigma2.mean())),
                         "fractions": frac[:, 0].tolist()})
        sums[name] = total
        records[name] = rows
    per_obs = {name: float(np.sqrt(s / (n_classes * intrinsic_bins))) for name, s in sums.items()}
    big_l = float(np.sqrt(sum(sums.values()) / (len(observables) * n_classes * intrinsic_bins)))
    return {"L": big_l, "per_observable": per_obs, "bins": records}


def bootstrap_bias_metric(y: np.ndarray, intrinsic: Mapping[str, np.ndarray],
                          observables: Mapping[str, np.ndarray], *, resamples: int = 100,
                          seed: int = 0, **bins: int) -> dict[str, float]:
    """L over bootstrap resamples of the objects, as the authors quote it (mean +- std).

    Each resample draws ``n`` objects with replacement (the reference's ``getRandomL`` with
    ``bootstrap=True``); the draws come from ``numpy.random.default_rng(seed)`` in order, so
    two calls with the same ``seed`` and ``n`` resample the same objects (rows of one table
    are compared on the same resamples). Duplicated objects add their own noise, so the mean
    lies above :func:`bias_metric` of the full sample.

    Args:
        y: (n,) or (n, K) labels or predictions, as for :func:`bias_metric`.
        intrinsic: name -> (n,) intrinsic property, as for :func:`bias_metric`.
        observables: name -> (n,) observable, as for :func:`bias_metric`.
        resamples: bootstrap resamples (>= 2).
        seed: seed of the draws.
        **bins: ``intrinsic_bins``, ``observable_bins``, ``min_count`` of :func:`bias_metric`.

    Returns:
        ``mean`` and ``std`` (ddof 0, as ``numpy.std``) of L over the resamples.
    """
    if not isinstance(resamples, int | np.integer) or resamples < 2:
        raise ValueError(f"resamples must be an integer >= 2, got {resamples}")
    y = np.asarray(y)
    n = y.shape[0]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(resamples)):
        i = rng.integers(0, n, n)
        values.append(bias_metric(y[i], {k: np.asarray(v)[i] for k, v in intrinsic.items()},
                                  {k: np.asarray(v)[i] for k, v in observables.items()},
                                  **bins)["L"])
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


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
