"""Writing rendered images as PNG files: a gallery of objects, named by their ids.

PNGs are encoded by Pillow.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from astroray.render._inputs import arrow_lists, band_indices
from astroray.render.config import LightCurveRenderConfig, SpectrumRenderConfig
from astroray.render.lightcurves import render_light_curves
from astroray.render.spectra import render_spectra

__all__ = ["encode_png", "render_files_to_png", "render_table", "safe_name", "write_gallery",
           "write_png"]

_KINDS = {
    "spectrum": "spectrum", "spectra": "spectrum",
    "lightcurve": "lightcurve", "lightcurves": "lightcurve", "light_curve": "lightcurve",
    "light_curves": "lightcurve",
}


def encode_png(image: Any, compress_level: int = 6) -> bytes:
    """Encode an 8-bit grey (H, W) or RGB/RGBA (H, W, 3 or 4) image as PNG bytes (Pillow).

    Args:
        image: uint8 array or tensor; (H, W, 1) is written as grey.
        compress_level: zlib level (0-9).

    Returns:
        The PNG file's bytes.
    """
    from PIL import Image  # lazy: Pillow

    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"PNG images must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"expected (H, W) or (H, W, 3|4), got shape {arr.shape}")
    buf = io.BytesIO()
    # fromarray picks the mode from the shape: L (grey), RGB or RGBA.
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG",
                                                    compress_level=compress_level)
    return buf.getvalue()


def write_png(path: str | Path, image: Any) -> str:
    """Write an (H, W), (H, W, C) or (C, H, W) uint8 image to ``path`` as PNG.

    Returns:
        The path written, as a string.
    """
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(arr))
    return str(path)


def safe_name(object_id: Any) -> str:
    """An object id as a file name: unsafe characters replaced, at most 200 characters."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(object_id)).strip("._") or "object"
    return name[:200]


def write_gallery(images: Any, ids: Sequence[Any], out_dir: str | Path) -> list[str]:
    """Write one PNG per image, named by its object id (made file-name safe, unique).

    Args:
        images: (B, C, H, W) uint8 tensor or array, as the renderers return.
        ids: B object ids.
        out_dir: folder (created).

    Returns:
        The paths written, in order.
    """
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {arr.shape}")
    if len(ids) != arr.shape[0]:
        raise ValueError(f"{arr.shape[0]} images but {len(ids)} ids")
    return _write_all(arr, ids, Path(out_dir), {})


def _write_all(arr: np.ndarray, ids: Sequence[Any], out: Path, seen: dict[str, int]) -> list[str]:
    """Write (B, C, H, W) images named by ids; ``seen`` counts names already used."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, object_id in zip(arr, ids, strict=True):
        base = safe_name(object_id)
        name = base
        while name in seen:
            seen[base] += 1
            name = f"{base}_{seen[base]}"
        seen.setdefault(name, 0)
        paths.append(write_png(out / f"{name}.png", np.transpose(image, (1, 2, 0))))
    return paths


def render_table(table: pa.Table, kind: str, config: Any = None,
                 device: str | torch.device | None = None) -> torch.Tensor:
    """Render every row of a canonical light-curve or spectrum table.

    Args:
        table: rows of :data:`astroray.data.schema.LIGHT_CURVE_SCHEMA` or ``SPECTRUM_SCHEMA``
            (extra columns are ignored, missing optional ones are treated as absent).
        kind: ``lightcurve`` or ``spectrum``.
        config: a :class:`~astroray.render.LightCurveRenderConfig` or
            :class:`~astroray.render.SpectrumRenderConfig` (defaults: the papers').
        device: where to render (default CPU).

    Returns:
        (rows, C, H, W) uint8 tensor.
    """
    kind_name = _KINDS.get(kind)
    if kind_name is None:
        raise ValueError(f"unknown kind {kind!r}; expected 'lightcurve' or 'spectrum'")

    def column(name: str) -> list[Any] | None:
        return arrow_lists(table.column(name)) if name in table.column_names else None

    if kind_name == "spectrum":
        return render_spectra(column("wavelength"), column("flux"), column("ivar"),
                              column("mask"), config=config, device=device)
    n = table.num_rows
    mags = column("mag") or [None] * n
    fluxes = column("flux") or [None] * n
    is_mag = np.array([m is not None for m in mags], dtype=bool)
    values = [m if m is not None else f for m, f in zip(mags, fluxes, strict=True)]
    return render_light_curves(column("time"), values, column("err"), column("band"),
                               magnitude=is_mag, config=config, device=device)


def render_files_to_png(table: pa.Table, kind: str, out_dir: str | Path,
                        limit: int | None = None, config: Any = None) -> list[str]:
    """Render the objects of a canonical table and write one PNG per object.

    Files are named by ``object_id`` (made file-name safe; repeated ids get a suffix).

    Args:
        table: a canonical light-curve or spectrum table.
        kind: ``lightcurve`` or ``spectrum``.
        out_dir: folder for the PNGs (created).
        limit: render only the first ``limit`` objects.
        config: render config (defaults: the papers' pictures).

    Returns:
        The paths written, in table order.
    """
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        table = table.slice(0, limit)
    if config is None:
        if _KINDS.get(kind) == "lightcurve":
            # One band order for the whole table, so that colours agree between files.
            bands = (band_indices(arrow_lists(table.column("band")), None)[1]
                     if "band" in table.column_names and table.num_rows else None)
            config = LightCurveRenderConfig(bands=tuple(bands) if bands else None)
        else:
            config = SpectrumRenderConfig()
    ids = (table.column("object_id").to_pylist() if "object_id" in table.column_names
           else [str(i) for i in range(table.num_rows)])
    paths: list[str] = []
    seen: dict[str, int] = {}
    step = 256
    for start in range(0, table.num_rows, step):
        part = table.slice(start, step)
        images = render_table(part, kind, config=config).cpu().numpy()
        paths.extend(_write_all(images, ids[start : start + part.num_rows], Path(out_dir), seen))
    return paths
