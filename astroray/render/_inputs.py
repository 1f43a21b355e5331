"""Turning ragged inputs (lists of arrays, Ray batches, Arrow list columns) into padded tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from astroray.render.config import CANONICAL_BANDS


def pad_arrays(seqs: Sequence[Any], dtype: Any, fill: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pad 1-D arrays to a (B, N) array without a Python loop over their elements.

    Args:
        seqs: B one-dimensional array-likes (None counts as empty).
        dtype: numpy dtype of the result.
        fill: value of the padding.

    Returns:
        ``(padded, lengths)``: (B, max length) array and (B,) int64 lengths.
    """
    arrays = [np.empty(0, dtype=dtype) if s is None else np.asarray(s).reshape(-1) for s in seqs]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    width = int(lengths.max()) if len(arrays) else 0
    out = np.full((len(arrays), width), fill, dtype=dtype)
    if width:
        flat = np.concatenate(arrays).astype(dtype, copy=False)
        rows = np.repeat(np.arange(len(arrays)), lengths)
        starts = np.cumsum(lengths) - lengths
        cols = np.arange(flat.size) - np.repeat(starts, lengths)
        out[rows, cols] = flat
    return out, lengths


def is_ragged(value: Any) -> bool:
    """True for a list/tuple/object array of per-object arrays (not a 2-D numeric array)."""
    if isinstance(value, torch.Tensor):
        return False
    if isinstance(value, np.ndarray):
        return value.dtype == object or value.ndim == 1
    return isinstance(value, Sequence)


def to_padded_tensor(value: Any, *, dtype: torch.dtype, fill: float, device: Any,
                     lengths: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A (B, N) tensor from a tensor, a 2-D array or a sequence of 1-D arrays.

    Args:
        value: the input.
        dtype: torch dtype for ragged inputs (tensors keep theirs unless integer/bool).
        fill: padding value.
        device: device for non-tensor inputs (tensors stay where they are).
        lengths: optional (B,) lengths of a padded input.

    Returns:
        ``(tensor, lengths)``; lengths is None when the input was rectangular and none were
        given.
    """
    if isinstance(value, torch.Tensor):
        t = value
    elif is_ragged(value):
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        arr, lens = pad_arrays(list(value), np_dtype, fill)
        t = torch.from_numpy(arr).to(device)
        if lengths is None:
            lengths = torch.from_numpy(lens).to(device)
    else:
        t = torch.as_tensor(np.asarray(value), device=device)
    if t.dim() != 2:
        raise ValueError(f"expected a (B, N) batch or a list of 1-D arrays, got shape "
                         f"{tuple(t.shape)}")
    if lengths is not None and not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(np.asarray(lengths), device=t.device)
    return t, lengths


def band_indices(bands: Any, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """Map per-point band names to indices into ``names`` (-1 for bands not listed).

    Args:
        bands: sequence of per-object arrays of band names, or a (B, N) string array.
        names: band order; None: the bands present, well-known names first (see
            :data:`astroray.render.config.CANONICAL_BANDS`), then alphabetical.

    Returns:
        ``(indices, names)``: (B, N) int64 array padded with -1, and the band order used.
    """
    if isinstance(bands, np.ndarray) and bands.dtype != object and bands.ndim == 2:
        seqs = list(bands)
    else:
        seqs = list(bands)
    strs, _ = pad_arrays([None if s is None else np.asarray(s).astype(str) for s in seqs],
                         object, None)
    present = {str(v) for v in np.unique(strs[strs != None].astype(str))}  # noqa: E711
    if names is None:
        rank = {b: i for i, b in enumerate(CANONICAL_BANDS)}
        names = sorted(present, key=lambda b: (rank.get(b, len(rank)), b))
    idx = np.full(strs.shape, -1, dtype=np.int64)
    for i, name in enumerate(names):
        idx[strs == name] = i
    return idx, list(names)


def arrow_lists(column: pa.ChunkedArray | pa.Array) -> list[np.ndarray | None]:
    """Per-row numpy arrays of an Arrow list column (None for null rows)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return []
    offsets = column.offsets.to_numpy()
    values = column.values
    flat = (values.to_numpy(zero_copy_only=False) if not pa.types.is_string(values.type)
            else np.asarray(values.to_pylist(), dtype=object))
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return [flat[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(column))]
