"""Windows of light curves for sequence models (Astromer): one band at a time, fixed length.

Canonical light curves are variable length and multi-band; sequence models take fixed-shape
windows of up to ``window_size`` (200) observations of one band, padded, with a mask of the
valid points. :class:`LightCurveWindows` is a Ray Data batch transform (a callable object used
with ``map_batches(..., batch_format="numpy")``) that does this for a whole batch of light
curves at once, with numpy operations over the flattened points of the batch:

* ``mode="random"``: one random crop of ``window_size`` consecutive observations per object and
  band (the whole band when it is shorter); pretraining draws a new crop every epoch.
* ``mode="sequential"``: every object and band cut into ``ceil(n / window_size)`` consecutive
  windows of nearly equal length (450 points give 150 + 150 + 150, not 200 + 200 + 50), so
  that every valid point appears in exactly one window; used at inference.

Per window, values are zero-mean (the mean is returned as ``offset``) and times are days from
the window's origin (returned as ``t0``): its first observation (``time_origin="first"``) or
its mean time (``"mean"``, as the official Astromer loader centres them). A model records the
convention it was trained with in its config (``time_origin``); callers pass it on.
Magnitudes are used as they are. Fluxes (which can be zero or
negative, so that ``-2.5 log10 f`` is undefined) are first turned into asinh magnitudes
(Lupton, Gunn & Szalay 1999), ``m = -2.5 / ln(10) * asinh(f / (2 b))``, with the softening
``b`` set to the window's mean flux error: for bright points this is the ordinary magnitude
(up to a constant that the zero-mean step removes), and near the noise level it stays finite
and linear in flux. Errors are propagated: ``sigma_m = 2.5 / ln(10) * sigma_f /
sqrt(f^2 + 4 b^2)``. A model pretrained on magnitudes thus sees flux light curves on the same
scale.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from astroray.config import check

__all__ = ["LC_COLUMNS", "WINDOW_COLUMNS", "LightCurveWindows", "window_dataset"]

#: Columns of the canonical light-curve schema that windowing (and a model's reader) reads.
LC_COLUMNS = ["object_id", "time", "band", "mag", "flux", "err", "label"]

#: Numeric columns of a windows batch that models consume, each of shape (W, window_size).
WINDOW_COLUMNS = ("times", "values", "errors", "mask")

_POGSON = 2.5 / np.log(10.0)


class LightCurveWindows:
    """Cut a batch of canonical light curves into fixed-length single-band windows.

    Use as ``ds.map_batches(LightCurveWindows(...), batch_format="numpy")``: an instance (not
    the class) runs as plain Ray tasks, so no actor pool holds CPUs.

    Args:
        window_size: observations per window (Astromer: 200).
        mode: ``"random"`` (one random crop per object and band) or ``"sequential"`` (all
            points, in consecutive windows).
        min_points: object-bands with fewer valid points are skipped.
        bands: keep only these bands (None: all).
        seed: seed of the random crops. None draws fresh entropy on every call (new crops
            every epoch); an integer gives the same crops for the same batch every time.
        passthrough: per-object columns copied onto each window when the batch has them.
        time_origin: ``"first"`` (days since the window's first observation) or ``"mean"``
            (days from the window's mean time).

    Returns (from ``__call__``):
        A dict of numpy arrays, one row per window: ``times``, ``values``, ``errors`` (float32,
        (W, window_size), zero where padded), ``mask`` (bool, (W, window_size), True on valid
        points), ``object_id``, ``row`` (the window's light curve: its index in the batch),
        ``band``, ``n_obs`` (valid points), ``offset`` (the mean
        subtracted from the values), ``t0`` (MJD of the time origin), ``is_flux``, and the
        passthrough columns.
    """

    def __init__(self, window_size: int = 200, *, mode: str = "sequential", min_points: int = 1,
                 bands: Sequence[str] | None = None, seed: int | None = None,
                 passthrough: Sequence[str] = ("label",), time_origin: str = "first"):
        name = type(self).__name__
        check(time_origin in ("first", "mean"), name, "time_origin", time_origin,
              "'first' or 'mean'")
        check(isinstance(window_size, int) and window_size > 0, name, "window_size",
              window_size, "a positive integer")
        check(mode in ("random", "sequential"), name, "mode", mode, "'random' or 'sequential'")
        check(isinstance(min_points, int) and min_points >= 1, name, "min_points", min_points,
              "an integer >= 1")
        check(seed is None or (isinstance(seed, int) and seed >= 0), name, "seed", seed,
              "a non-negative integer or None")
        self.window_size = window_size
        self.mode = mode
        self.min_points = min_points
        self.bands = None if bands is None else tuple(bands)
        self.seed = seed
        self.passthrough = tuple(passthrough)
        self.time_origin = time_origin

    def _rng(self, object_ids: np.ndarray) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        # The same batch gets the same crops whichever task or epoch cuts it.
        digest = zlib.crc32("\x00".join(map(str, object_ids[:64])).encode())
        return np.random.default_rng((self.seed, digest, len(object_ids)))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Window one batch (``batch_format="numpy"``: list columns are object arrays)."""
        L = self.window_size
        ids = np.asarray(batch["object_id"])
        n_rows = len(ids)
        mags = batch.get("mag")
        fluxes = batch.get("flux")
        values, is_flux = [], np.zeros(n_rows, dtype=bool)
        for i in range(n_rows):
            m = None if mags is None else mags[i]
            if m is None:
                m = None if fluxes is None else fluxes[i]
                is_flux[i] = m is not None
            values.append(np.empty(0, np.float32) if m is None else np.asarray(m))
        counts = np.array([len(v) for v in values], dtype=np.int64)
        row = np.repeat(np.arange(n_rows), counts)
        if counts.sum() == 0:
            return self._empty(batch)
        time = np.concatenate([np.asarray(t, dtype=np.float64)[: len(v)]
                               for t, v in zip(batch["time"], values, strict=True)])
        value = np.concatenate(values).astype(np.float64)
        err = np.concatenate([np.asarray(e, dtype=np.float64)[: len(v)]
                              for e, v in zip(batch["err"], values, strict=True)])
        band = np.concatenate([np.asarray(b, dtype=object)[: len(v)]
                               for b, v in zip(batch["band"], values, strict=True)])
        keep = np.isfinite(time) & np.isfinite(value) & np.isfinite(err)
        if self.bands is not None:
            keep &= np.isin(band.astype(str), np.array(self.bands, dtype=str))
        time, value, err, band, row = time[keep], value[keep], err[keep], band[keep], row[keep]
        if time.size == 0:
            return self._empty(batch)
        band_names, band_code = np.unique(band.astype(str), return_inverse=True)
        # Group = (object, band). A stable sort keeps each group's points in time order
        # (canonical light curves are time-sorted).
        key = row * len(band_names) + band_code
        order = np.argsort(key, kind="stable")
        key, time, value, err = key[order], time[order], value[order], err[order]
        group_key, group, group_count = np.unique(key, return_inverse=True, return_counts=True)
        group_start = np.concatenate([[0], np.cumsum(group_count)[:-1]])
        pos = np.arange(key.size) - group_start[group]  # index of the point within its group
        ok = group_count[group] >= self.min_points
        group_row = group_key // len(band_names)
        group_band = band_names[group_key % len(band_names)]

        c = group_count[group]
        if self.mode == "sequential":
            n_win = -(-group_count // L)  # ceil
            win_first = np.concatenate([[0], np.cumsum(np.where(group_count >= self.min_points,
                                                                n_win, 0))[:-1]])
            nw = n_win[group]
            # Balanced split: window k holds the positions [ceil(k c / n), ceil((k + 1) c / n)).
            k = (pos * nw) // c
            slot = pos - (k * c + nw - 1) // nw
            window = win_first[group] + k
            win_group = np.repeat(np.arange(group_count.size),
                                  np.where(group_count >= self.min_points, n_win, 0))
        else:
            rng = self._rng(ids)
            start = np.floor(rng.random(group_count.size)
                             * np.maximum(group_count - L + 1, 1)).astype(np.int64)
            ok &= (pos >= start[group]) & (pos < start[group] + L)
            slot = pos - start[group]
            kept_groups = group_count >= self.min_points
            window = (np.cumsum(kept_groups) - 1)[group]
            win_group = np.flatnonzero(kept_groups)
        window, slot, time, value, err = window[ok], slot[ok], time[ok], value[ok], err[ok]
        n_windows = win_group.size
        n_obs = np.bincount(window, minlength=n_windows)

        flux_point = is_flux[group_row[win_group]][window]
        if flux_point.any():
            soft = np.bincount(window, weights=err, minlength=n_windows) / np.maximum(n_obs, 1)
            soft = np.maximum(soft, 1e-12)[window]
            asinh_mag = -_POGSON * np.arcsinh(value / (2.0 * soft))
            asinh_err = _POGSON * err / np.sqrt(value ** 2 + 4.0 * soft ** 2)
            value = np.where(flux_point, asinh_mag, value)
            err = np.where(flux_point, asinh_err, err)
        offset = np.bincount(window, weights=value, minlength=n_windows) / np.maximum(n_obs, 1)
        if self.time_origin == "mean":
            t0 = np.bincount(window, weights=time, minlength=n_windows) / np.maximum(n_obs, 1)
        else:
            t0 = np.zeros(n_windows)
            t0[window[slot == 0]] = time[slot == 0]

        shape = (n_windows, L)
        out_t = np.zeros(shape, np.float32)
        out_v = np.zeros(shape, np.float32)
        out_e = np.zeros(shape, np.float32)
        out_m = np.zeros(shape, bool)
        out_t[window, slot] = time - t0[window]
        out_v[window, slot] = value - offset[window]
        out_e[window, slot] = err
        out_m[window, slot] = True
        src_row = group_row[win_group]
        out = {
            "times": out_t, "values": out_v, "errors": out_e, "mask": out_m,
            "object_id": ids[src_row].astype(object),
            "row": src_row.astype(np.int64),
            "band": group_band[win_group].astype(object),
            "n_obs": n_obs.astype(np.int32),
            "offset": offset.astype(np.float32),
            "t0": t0,
            "is_flux": is_flux[src_row],
        }
        for name in self.passthrough:
            if name in batch:
                out[name] = np.asarray(batch[name])[src_row]
        return out

    def _empty(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        L = self.window_size
        out = {
            "times": np.zeros((0, L), np.float32), "values": np.zeros((0, L), np.float32),
            "errors": np.zeros((0, L), np.float32), "mask": np.zeros((0, L), bool),
            "object_id": np.zeros(0, object), "row": np.zeros(0, np.int64),
            "band": np.zeros(0, object), "n_obs": np.zeros(0, np.int32),
            "offset": np.zeros(0, np.float32),
            "t0": np.zeros(0), "is_flux": np.zeros(0, bool),
        }
        for name in self.passthrough:
            if name in batch:
                out[name] = np.asarray(batch[name])[:0]
        return out


def window_dataset(ds: Any, windows: LightCurveWindows, *, numeric_only: bool = False,
                   batch_size: int = 256, num_cpus: float | None = None) -> Any:
    """Apply :class:`LightCurveWindows` to a Ray Dataset of canonical light curves.

    Args:
        ds: a ``ray.data.Dataset`` in the canonical light-curve schema.
        windows: the windowing transform.
        numeric_only: keep only :data:`WINDOW_COLUMNS` (what a training loop turns into
            tensors).
        batch_size: light curves per windowing call.
        num_cpus: CPUs per windowing task (fractions let it share cores with training).

    Returns:
        A dataset with one row per window.
    """
    kwargs: dict[str, Any] = {"batch_format": "numpy", "batch_size": batch_size}
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    out = ds.map_batches(windows, **kwargs)
    return out.select_columns(list(WINDOW_COLUMNS)) if numeric_only else out
