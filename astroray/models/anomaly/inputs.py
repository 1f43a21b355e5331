"""The detector's raw inputs from canonical light curves, the same in training and inference.

``features``: :func:`astroray.features.light_curve_features` in the model's band order
(Lomb-Scargle period and power, amplitudes, percentiles, skewness, colours, time spans, ...).
``embeddings``: the per-object Astromer embedding (the mean over windows and bands of the
equally weighted layer means). Objects with fewer than ``min_points`` valid points in the
model's bands are not scored; their reason is returned instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.fileio import numpy_batch
from astroray.features import feature_names, table_features
from astroray.models.astromer.processing import read_embeddings

__all__ = ["embedding_inputs", "feature_inputs", "valid_points"]


def _columns(data: pa.Table | Mapping[str, Any]) -> dict[str, list[Any]]:
    names = ("object_id", "time", "band", "err", "mag", "flux")
    if isinstance(data, pa.Table):
        return {n: data.column(n).to_pylist() for n in names if n in data.column_names}
    return {n: list(data[n]) for n in names if n in data}


def valid_points(data: pa.Table | Mapping[str, Any], bands: Sequence[str] | None
                 ) -> np.ndarray:
    """Points (N,) with a finite time and value in ``bands`` (None: any band) per object."""
    cols = _columns(data)
    n = len(cols["time"])
    mags = cols.get("mag", [None] * n)
    fluxes = cols.get("flux", [None] * n)
    keep = None if bands is None else set(bands)
    out = np.zeros(n, np.int64)
    for i in range(n):
        t = cols["time"][i]
        v = mags[i] if mags[i] is not None else fluxes[i]
        if t is None or v is None:
            continue
        t = np.asarray(t, np.float64).reshape(-1)
        v = np.asarray(v, np.float64).reshape(-1)
        if t.size != v.size:
            continue
        ok = np.isfinite(t) & np.isfinite(v)
        if keep is not None:
            b = np.asarray(cols["band"][i] if cols["band"][i] is not None else [], str)
            if b.size != t.size:
                continue
            ok &= np.isin(b, list(keep))
        out[i] = int(ok.sum())
    return out


def _reasons(counts: np.ndarray, min_points: int, bands: Sequence[str] | None
             ) -> dict[int, str]:
    where = f"in bands {list(bands)}" if bands is not None else "in any band"
    return {int(i): f"{int(counts[i])} valid points {where}; the detector needs {min_points} "
                    "or more (finite time and value)"
            for i in np.flatnonzero(counts < min_points)}


def feature_inputs(data: pa.Table | Mapping[str, Any], bands: Sequence[str], *,
                   min_points: int = 5) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Raw feature vectors of light curves, for the objects that can be scored.

    Args:
        data: canonical light curves (a table or a numpy batch).
        bands: the band order of the feature columns.
        min_points: fewest valid points in ``bands`` an object needs.

    Returns:
        ``(x, ok, reasons)``: (N, F) float64 features (NaN rows where not ok), (N,) which
        objects can be scored, and row -> reason for the others.
    """
    counts = valid_points(data, bands)
    ok = counts >= min_points
    x = np.full((len(counts), len(feature_names(list(bands)))), np.nan)
    if ok.any():
        rows = np.flatnonzero(ok)
        if isinstance(data, pa.Table):
            sub: Any = data.take(pa.array(rows))
        else:
            sub = {k: np.asarray(v, dtype=object)[rows] for k, v in _columns(data).items()}
        x[rows], _ = table_features(sub, bands=list(bands), min_points=min_points)
    return x, ok, _reasons(counts, min_points, bands)


def embedding_inputs(data: pa.Table | Mapping[str, Any], embedder: Any, *,
                     min_points: int = 5, bands: Sequence[str] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Per-object Astromer embeddings of light curves, for the objects that can be scored.

    Args:
        data: canonical light curves (a table or a numpy batch with ``object_id``).
        embedder: an :class:`~astroray.infer.astromer.AstromerEmbedder` (equal layer weights).
        min_points: fewest valid points in ``bands`` an object needs.
        bands: bands windowed (None: all).

    Returns:
        ``(x, ok, reasons)``: (N, D) float64 embeddings (NaN rows where not ok), (N,) which
        objects can be scored, and row -> reason for the others.
    """
    batch = numpy_batch(data) if isinstance(data, pa.Table) else dict(data)
    counts = valid_points(batch, bands)
    if counts.size == 0:
        return np.zeros((0, embedder.d_model)), np.zeros(0, bool), {}
    table = embedder(batch)
    windows = np.asarray(table.column("n_windows").to_numpy())
    ok = (counts >= min_points) & (windows > 0)
    x = read_embeddings(table, "weighted_embedding").astype(np.float64)  # (N, D)
    x[~ok] = np.nan
    reasons = _reasons(np.where(windows > 0, counts, 0), min_points, bands)
    return x, ok, reasons
