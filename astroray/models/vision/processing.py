"""Preprocessing of the vision family: canonical tables -> fixed-size arrays -> images.

Beside the model as transformers keeps an image processor beside its model: what training,
bulk inference and Serve share to turn a canonical table into the model's inputs.
:func:`prepare_arrays` pads (and evenly thins) each spectrum or light curve to a fixed length
and, for folded light-curve pictures, finds each object's period once
(:func:`light_curve_periods`); :func:`render_batch` draws a batch of those arrays on its own
device with :func:`astroray.render.render_spectra` or
:func:`astroray.render.render_light_curves`. A fine-tuned model folder holds the render spec
(:data:`RENDER_SPEC`, written by :func:`write_render_spec`, read by :func:`read_render_spec`):
the input kind, the render config, the band order and the length cap it was trained with, so
that every later stage draws exactly the pictures the model learned from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from astroray.render import (
    LightCurveRenderConfig,
    SpectrumRenderConfig,
    render_light_curves,
    render_spectra,
)
from astroray.render.config import CANONICAL_BANDS
from astroray.render.periods import fold_periods

__all__ = ["LC_COLUMNS", "RENDER_SPEC", "SPECTRUM_COLUMNS", "light_curve_periods",
           "prepare_arrays", "read_render_spec", "render_batch", "render_config",
           "split_layout", "subclass_label", "write_render_spec"]

#: Written beside a fine-tuned vision model: the input kind, render config, bands, length cap.
RENDER_SPEC = "render.json"

#: Canonical columns a vision model reads, per input kind.
SPECTRUM_COLUMNS = ["object_id", "wavelength", "flux", "ivar", "mask", "z", "label",
                    "subclass"]
LC_COLUMNS = ["object_id", "time", "band", "mag", "flux", "err", "label", "label_raw",
              "period"]


def split_layout(name: str) -> tuple[str, str]:
    """``'overlay:lomb_scargle'`` -> ``('overlay', 'lomb_scargle')``; no suffix: ``'none'``."""
    layout, _, fold = str(name).partition(":")
    return layout, fold or "none"


def render_config(kind: str, fields: dict[str, Any]) -> Any:
    """The render config of an input kind (``spectra`` or ``lightcurves``) from its fields."""
    cls = SpectrumRenderConfig if kind == "spectra" else LightCurveRenderConfig
    return cls.from_dict(fields)


def write_render_spec(model_dir: str | Path, kind: str, render: dict[str, Any],
                      max_length: int, bands: list[str] | tuple[str, ...] | None) -> Path:
    """Save how inputs are drawn for a vision model (``model_dir/render.json``)."""
    path = Path(model_dir) / RENDER_SPEC
    path.write_text(json.dumps({"kind": kind, "render": render, "max_length": int(max_length),
                                "bands": None if bands is None else list(bands)}, indent=2))
    return path


def read_render_spec(model_dir: str | Path) -> dict[str, Any]:
    """How inputs are drawn for a saved vision model (``model_dir/render.json``).

    Raises:
        FileNotFoundError: when the folder has no render spec.
    """
    path = Path(model_dir) / RENDER_SPEC
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a vision model needs the render spec its "
                                "fine-tuning job writes beside it")
    return json.loads(path.read_text())


def subclass_label(label: str | None, subclass: str | None) -> str | None:
    """``CLASS_SUBCLASS``; stellar spectral types (``G2``, ``M3V``) by their letter only."""
    if label is None:
        return None
    sub = (subclass or "").strip()
    if not sub:
        return label
    if label == "STAR" and sub[0].upper() in "OBAFGKMLT":
        sub = sub[0].upper()
    return f"{label}_{sub}"


def _thin(length: int, max_length: int) -> np.ndarray:
    """Indices of at most ``max_length`` points spread evenly over ``length``."""
    if length <= max_length:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, max_length).round().astype(np.int64))


def _pad(rows: list[np.ndarray], width: int, dtype: Any, fill: Any) -> np.ndarray:
    out = np.full((len(rows), width), fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def light_curve_periods(table: pa.Table, render: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per object of a canonical table: the period a folded picture uses, and its power.

    :func:`astroray.render.periods.fold_periods` over every point of each object (before
    any thinning), with the table's ``period`` column as the catalogue period. All NaN when
    ``render`` does not fold.
    """
    names = table.column_names
    n = table.num_rows
    if not render.folded:
        return np.full(n, np.nan), np.full(n, np.nan)
    mags = table.column("mag").to_pylist() if "mag" in names else [None] * n
    fluxes = table.column("flux").to_pylist() if "flux" in names else [None] * n
    values = [m if m is not None else f for m, f in zip(mags, fluxes, strict=True)]
    catalogue = table.column("period").to_pylist() if "period" in names else None
    return fold_periods(table.column("time").to_pylist(), values,
                        table.column("err").to_pylist(), table.column("band").to_pylist(),
                        config=render, catalogue=catalogue)


def prepare_arrays(table: pa.Table, kind: str, *, max_length: int,
                   bands: tuple[str, ...] | None = None,
                   render: Any = None) -> tuple[dict[str, np.ndarray], dict]:
    """Fixed-size arrays of a canonical table, as the renderers take them.

    Spectra: ``wavelength`` (B, L) float32 and ``flux`` (B, L) float32 with NaN at bad pixels
    (``ivar <= 0`` or ``mask != 0``: gaps in the line), ``length`` (B,). Light curves:
    ``time`` (B, L) float64, ``value`` (B, L) float32 (magnitudes where present, else fluxes),
    ``err`` (B, L) float32, ``band`` (B, L) int8 index into the band list (-1 padding),
    ``is_mag`` (B,) bool, ``length`` (B,); with a folding ``render`` config also ``period``
    and ``period_power`` (B,) float64 (:func:`light_curve_periods`: the periodogram runs
    here, once per object, not in the renderer).

    Returns:
        ``(arrays, info)``; ``info`` holds the band list (light curves) and thinning counts.
    """
    info: dict[str, Any] = {"thinned": 0}
    if kind == "spectra":
        waves, fluxes = [], []
        for w, f, iv, m in zip(*(table.column(c).to_pylist() for c in
                                 ("wavelength", "flux", "ivar", "mask")), strict=True):
            w = np.asarray(w if w is not None else [], dtype=np.float32)
            f = np.asarray(f if f is not None else [], dtype=np.float32).copy()
            bad = ~np.isfinite(f)
            if iv is not None:
                bad |= ~(np.asarray(iv, dtype=np.float32) > 0)
            if m is not None:
                bad |= np.asarray(m) != 0
            f[bad] = np.nan
            keep = _thin(w.size, max_length)
            info["thinned"] += int(keep.size < w.size)
            waves.append(w[keep])
            fluxes.append(f[keep])
        width = max([1] + [w.size for w in waves])
        arrays = {"wavelength": _pad(waves, width, np.float32, np.inf),
                  "flux": _pad(fluxes, width, np.float32, np.nan),
                  "length": np.array([w.size for w in waves], dtype=np.int64)}
        return arrays, info
    names = table.column_names
    n = table.num_rows
    mags = table.column("mag").to_pylist() if "mag" in names else [None] * n
    fluxes = table.column("flux").to_pylist() if "flux" in names else [None] * n
    times, band_lists, errs = (table.column(c).to_pylist() for c in ("time", "band", "err"))
    if bands is None:
        present = {b for bl in band_lists if bl for b in bl}
        rank = {b: i for i, b in enumerate(CANONICAL_BANDS)}
        bands = tuple(sorted(present, key=lambda b: (rank.get(b, len(rank)), b)))
    index = {b: i for i, b in enumerate(bands)}
    t_rows, v_rows, e_rows, b_rows, is_mag = [], [], [], [], []
    for t, b, e, m, f in zip(times, band_lists, errs, mags, fluxes, strict=True):
        t = np.asarray(t if t is not None else [], dtype=np.float64)
        values = m if m is not None else f
        v = np.asarray(values if values is not None else np.full(t.size, np.nan),
                       dtype=np.float32)
        e = np.asarray(e if e is not None else np.full(t.size, np.nan), dtype=np.float32)
        bi = np.array([index.get(x, -1) for x in (b or [])], dtype=np.int8)
        order = np.argsort(t, kind="stable")
        keep = order[_thin(order.size, max_length)]
        info["thinned"] += int(keep.size < t.size)
        t_rows.append(t[keep])
        v_rows.append(v[keep])
        e_rows.append(e[keep])
        b_rows.append(bi[keep])
        is_mag.append(m is not None)
    width = max([1] + [t.size for t in t_rows])
    arrays = {"time": _pad(t_rows, width, np.float64, np.nan),
              "value": _pad(v_rows, width, np.float32, np.nan),
              "err": _pad(e_rows, width, np.float32, np.nan),
              "band": _pad(b_rows, width, np.int8, -1),
              "is_mag": np.array(is_mag, dtype=bool),
              "length": np.array([t.size for t in t_rows], dtype=np.int64)}
    info["bands"] = list(bands)
    if render is not None and getattr(render, "folded", False):
        arrays["period"], arrays["period_power"] = light_curve_periods(table, render)
    return arrays, info


def render_batch(batch: dict[str, torch.Tensor], kind: str, render_cfg: Any) -> torch.Tensor:
    """Render a batch of prepared arrays (on their device) as (B, 3, H, W) uint8 images.

    Always renders under ``torch.inference_mode()``, as the Ray Data render stages do: the
    renderer caches work buffers per device, and a buffer made in inference mode cannot be
    reused outside it (nor the reverse). Outside inference mode the images are cloned into a
    normal tensor that training can use.
    """
    inside = torch.is_inference_mode_enabled()
    with torch.inference_mode():
        if kind == "spectra":
            images = render_spectra(batch["wavelength"], batch["flux"], lengths=batch["length"],
                                    config=render_cfg)
        else:
            images = render_light_curves(batch["time"], batch["value"], batch["err"],
                                         batch["band"].long(), lengths=batch["length"],
                                         magnitude=batch["is_mag"], config=render_cfg,
                                         period=_batch_period(batch, render_cfg))
    return images if inside else images.clone()


def _batch_period(batch: dict[str, torch.Tensor], render_cfg: Any) -> torch.Tensor | None:
    """The batch's ``period`` column for a folded picture (None when it does not fold)."""
    if not getattr(render_cfg, "folded", False):
        return None
    if "period" not in batch:
        # Searching here would run a periodogram per object in every training step.
        raise ValueError("a folded picture needs the periods found when the arrays were "
                         "prepared: prepare_arrays(..., render=<the folding config>)")
    return batch["period"]

