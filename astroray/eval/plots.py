"""Figures of evaluations: confusion matrix and predicted-vs-true redshift PNGs.

matplotlib is an optional (test) dependency: it is imported lazily, and a figure is skipped
(None returned, one warning line) when it is not installed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_confusion_matrix", "plot_redshift", "plot_reliability"]

logger = logging.getLogger(__name__)


def _pyplot() -> Any:
    try:
        import matplotlib  # lazy: matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: matplotlib
    except ImportError:
        logger.warning("matplotlib is not installed: no figure written")
        return None
    return plt


def _draw_confusion(ax: Any, confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> None:
    """One confusion matrix on ``ax``: counts as text, colour = fraction of the true row."""
    cm = np.asarray(confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(labels)
    ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), list(labels), rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), list(labels), fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)


Matrix = Sequence[Sequence[int]]


def plot_confusion_matrix(confusion: Matrix | Mapping[str, Matrix], labels: Sequence[str],
                          path: str | Path, title: str = "") -> Path | None:
    """Write a confusion matrix (rows true, columns predicted; colour = row fraction) as PNG.

    Args:
        confusion: one (K, K) matrix of counts, or several by name (one panel each, side by
            side, titled with the name).
        labels: the K class names.
        path: PNG to write.
        title: figure title.

    Returns:
        The path written, or None without matplotlib (or with no matrix).
    """
    plt = _pyplot()
    panels = dict(confusion) if isinstance(confusion, Mapping) else {"": confusion}
    if plt is None or not panels:
        return None
    k = len(labels)
    side = 1.0 + 0.55 * k
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels) + 1.5, side + 1.0),
                             squeeze=False)
    for ax, (name, cm) in zip(axes[0], panels.items(), strict=True):
        _draw_confusion(ax, cm, labels)
        if name:
            ax.set_title(name, fontsize=8)
    axes[0][0].set_ylabel("true", fontsize=8)
    if title:
        (fig.suptitle if len(panels) > 1 else axes[0][0].set_title)(title, fontsize=8)
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    """Lay out, write (creating the folder) and close a figure."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_redshift(z_true: Sequence[float], z_pred: Sequence[float], path: str | Path,
                  title: str = "", outlier_threshold: float = 0.15) -> Path | None:
    """Write predicted vs true redshift (with the 1:1 line and the outlier bounds) as PNG.

    Returns:
        The path written, or None without matplotlib.
    """
    plt = _pyplot()
    if plt is None:
        return None
    t = np.asarray(z_true, dtype=np.float64)
    p = np.asarray(z_pred, dtype=np.float64)
    hi = float(np.nanmax(np.concatenate([t, p, [0.1]])) * 1.05)
    lo = min(0.0, float(np.nanmin(np.concatenate([t, p, [0.0]]))))
    fig, ax = plt.subplots(figsize=(4.0, 4.0))
    ax.scatter(t, p, s=4, alpha=0.6, color="#1f77b4", linewidths=0)
    grid = np.linspace(lo, hi, 50)
    ax.plot(grid, grid, "k-", lw=0.8)
    for sign in (-1, 1):  # |dz| / (1 + z) = threshold
        ax.plot(grid, grid + sign * outlier_threshold * (1 + grid), "k--", lw=0.6)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("true z")
    ax.set_ylabel("predicted z")
    if title:
        ax.set_title(title, fontsize=8)
    return _save(plt, fig, path)


def plot_reliability(curves: Mapping[str, Mapping[str, Any]], path: str | Path,
                     title: str = "") -> Path | None:
    """Write a reliability diagram: accuracy vs confidence per bin, one line per method.

    Args:
        curves: ``{name: reliability_curve(...)}`` (see
            :func:`astroray.uncertainty.reliability_curve`).
        path: PNG to write.
        title: figure title.

    Returns:
        The path written, or None without matplotlib (or with no curve).
    """
    plt = _pyplot()
    if plt is None or not curves:
        return None
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(4.6, 5.4), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="calibrated")
    for name, curve in curves.items():
        used = np.asarray(curve["count"]) > 0
        conf = np.asarray(curve["confidence"])[used]
        ax.plot(conf, np.asarray(curve["accuracy"])[used], marker="o", ms=3, lw=1,
                label=name)
        edges = np.asarray(curve["edges"])
        hist.step(edges[:-1], curve["count"], where="post", lw=1)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    hist.set_xlabel("confidence (max mean probability)", fontsize=8)
    hist.set_ylabel("objects", fontsize=8)
    if title:
        ax.set_title(title, fontsize=8)
    return _save(plt, fig, path)
