"""Spectra to images, in batches, as torch tensor operations (CPU or GPU).

The default picture is the spectra-as-images ViT paper's matplotlib plot::

    fig = plt.figure(figsize=(2.24, 2.24), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1)); ax.axis("off")
    ax.plot(wavelength, flux, color="black", linewidth=0.5)   # bad pixels as NaN: gaps
    ax.set_xlim(3536.7, 10413.6)                              # y: autoscale, 5 % margins

:func:`render_spectra` draws the same picture for a whole batch at once: per image the work is
``O(N + H * W)`` in a handful of vectorised operations, with no Python loop over objects or
pixels. :class:`RenderSpectra` wraps it as a Ray Data stage.

Y limits: matplotlib autoscales the y axis to the data limits of *all* plotted (finite) points,
also those outside the fixed x range, then adds ``y_margin`` (``axes.ymargin`` = 0.05) of the
range above and below; a flat spectrum is centred. The renderer does the same with the good
pixels. In ``overlap_split`` each segment is autoscaled to the good pixels inside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from astroray.render import _raster
from astroray.render._inputs import is_ragged, to_padded_tensor
from astroray.render.config import SpectrumRenderConfig

__all__ = ["RenderSpectra", "render_spectra", "spectra_valid_mask"]


def spectra_valid_mask(
    wavelength: torch.Tensor,
    flux: torch.Tensor,
    ivar: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pixels drawn: finite wavelength and flux, ``mask == 0``, ``ivar > 0``, inside the length.

    Args:
        wavelength: (B, N).
        flux: (B, N).
        ivar: (B, N) inverse variance or None.
        mask: (B, N) integer bit mask (0 good) or None.
        lengths: (B,) valid lengths of padded rows or None.

    Returns:
        (B, N) bool.
    """
    # finite: x - x is 0, NaN for NaN and +-inf (cheaper than two isfinite)
    good = (wavelength - wavelength).add_(flux - flux).eq_(0).bool()
    if ivar is not None:
        good &= torch.isfinite(ivar) & (ivar > 0)
    if mask is not None:
        good &= mask == 0
    if lengths is not None:
        pos = torch.arange(flux.shape[1], device=flux.device)
        good &= pos.unsqueeze(0) < lengths.to(flux.device).unsqueeze(1)
    return good


def _masked_min_max(values: torch.Tensor, sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    big = torch.tensor(math.inf, dtype=values.dtype, device=values.device)
    vmin = torch.where(sel, values, big).amin(1)
    vmax = torch.where(sel, values, -big).amax(1)
    return vmin, vmax


def _normalize(flux: torch.Tensor, good: torch.Tensor, how: str) -> torch.Tensor:
    if how == "none":
        return flux
    if how == "median":
        nan = torch.tensor(math.nan, dtype=flux.dtype, device=flux.device)
        med = torch.nanquantile(torch.where(good, flux, nan), 0.5, dim=1).abs()  # (B,)
        scale = torch.where(torch.isfinite(med) & (med > 0), med, torch.ones_like(med))
        return flux / scale.unsqueeze(1)
    vmin, vmax = _masked_min_max(flux, good)
    span = vmax - vmin
    ok = torch.isfinite(span) & (span > 0)
    vmin = torch.where(ok, vmin, torch.zeros_like(vmin))
    span = torch.where(ok, span, torch.ones_like(span))
    return (flux - vmin.unsqueeze(1)) / span.unsqueeze(1)


def _y_limits(flux: torch.Tensor, sel: torch.Tensor,
              cfg: SpectrumRenderConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(bottom, top) flux limits per row, as matplotlib's autoscale gives them."""
    if cfg.y_limits is not None:
        return _fixed_limits(flux.shape[0], flux, cfg)
    return _autoscale(*_masked_min_max(flux, sel), cfg)


def _fixed_limits(n: int, like: torch.Tensor,
                  cfg: SpectrumRenderConfig) -> tuple[torch.Tensor, torch.Tensor]:
    lo = torch.full((n,), cfg.y_limits[0], dtype=like.dtype, device=like.device)
    return lo, torch.full_like(lo, cfg.y_limits[1])


def _autoscale(vmin: torch.Tensor, vmax: torch.Tensor,
               cfg: SpectrumRenderConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Matplotlib's autoscaled (bottom, top) limits from the data limits."""
    span = vmax - vmin
    # matplotlib's nonsingular(): a (near) flat spectrum is centred.
    flat = span <= 1e-12 * torch.maximum(vmin.abs(), vmax.abs())
    pad = torch.where(flat, torch.ones_like(span), span * cfg.y_margin)
    empty = ~torch.isfinite(span)
    lo = torch.where(empty, torch.zeros_like(vmin), vmin - pad)
    hi = torch.where(empty, torch.ones_like(vmax), vmax + pad)
    return lo, hi


#: Fixed-point coverage of a fully covered pixel: 4 per grey level, so that the grey level is
#: ``(UNIT + 1 - min(coverage, UNIT)) >> 2``; summed coverage stays below 2**15 (int16 lanes).
UNIT = 4 * 255
#: Most crossings a sub-column's hull counts for (a dense zig-zag saturates long before).
MAX_DENSITY = 8.0


def _canvas_planes(device: torch.device) -> int:
    """Images whose canvas is resolved at once: ~1 MB on CPU (stays in L2), more on a GPU."""
    return 512 if device.type == "cuda" else 8


def _render_chunk(wave: torch.Tensor, flux: torch.Tensor, good: torch.Tensor,
                  cfg: SpectrumRenderConfig, out: torch.Tensor, nan_wave: bool) -> None:
    """Render one chunk into ``out`` (B, C, H, W) uint8 (``nan_wave``: NaN wavelengths)."""
    B, N = flux.shape
    H, W, n_sub = cfg.height, cfg.width, cfg.subcolumns
    flux = _normalize(flux, good, cfg.normalize)
    segments = cfg.segments()
    G = len(segments)
    dev = flux.device
    half = cfg.line_width_px / 2
    margin = _raster.reach(half, n_sub)
    seg = torch.tensor(segments, dtype=torch.float32, device=dev)  # (G, 2)
    a = seg[:, 0].view(1, G, 1)
    b = seg[:, 1].view(1, G, 1)
    wave = wave.unsqueeze(1)  # (B, 1, N); float32 places a pixel to ~1e-4 of its width
    # abscissae in sub-columns (sub-column 0 starts ``margin`` pixels left of the canvas)
    if G == 1:
        (lo, hi), = segments
        scale = W * n_sub / (hi - lo)
        xs = torch.add(torch.tensor(margin * n_sub - lo * scale, device=dev), wave.view(B, N),
                       alpha=scale)
    else:
        xs = (wave - (a - margin * (b - a) / W)).mul_(W * n_sub / (b - a)).view(B * G, N)
    valid = good.unsqueeze(1).expand(B, G, N).reshape(B * G, N)
    if nan_wave:  # keep the abscissae sorted
        xs, finite_x = _raster.monotone_x(xs)
        valid = valid & finite_x
    # one polyline per (spectrum, segment), in flux units: rows come after the autoscale
    fl = flux.unsqueeze(1).expand(B, G, N).reshape(B * G, N)
    flip = cfg.y_limits is not None and cfg.y_limits[0] > cfg.y_limits[1]
    if flip:  # an inverted y axis: draw -flux on the flipped axis
        fl = -fl
    S = (W + 2 * margin) * n_sub
    lo, hi, travel, vmin, vmax = _raster.stroke_hulls(xs, fl, valid, S)  # (B*G, S)
    if cfg.y_limits is not None:
        bottom, top = _fixed_limits(B * G, fl, cfg)
        if flip:
            bottom, top = -bottom, -top
    elif G == 1:  # matplotlib autoscale: all good points, wherever they are
        bottom, top = _autoscale(vmin, vmax, cfg)
    else:  # each segment autoscaled to the good points inside it
        sel = good.unsqueeze(1) & (wave >= a) & (wave <= b)  # (B, G, N)
        bottom, top = _y_limits(fl, sel.reshape(B * G, N), cfg)
    lo, hi, travel = _raster.rows_from_values(lo, hi, travel, top, H / (top - bottom))
    P = min(_canvas_planes(dev), B * G)
    # the summed coverage of a pixel stays below UNIT * MAX_DENSITY * (the stroke's summed
    # spread weights): 16-bit lanes while that fits
    bound = UNIT * MAX_DENSITY * sum(w for _, _, w in _raster.spread_table(half, n_sub))
    canvas = _raster.PackedCanvas(P, W, H, dev, lane_bits=16 if bound < 1 << 15 else 32,
                                  pad=margin + 1)
    index, value = _raster.stroke_entries(lo, hi, travel, canvas, n_sub=n_sub, margin=margin,
                                          half_width=half, unit=UNIT, max_density=MAX_DENSITY)
    grey = out.view(B * G, H, W) if G == cfg.channels else out[:, 0]
    for start in range(0, B * G, P):
        n = min(P, B * G - start)
        canvas.clear()
        canvas.add(index[start : start + n], value[start : start + n])
        cov = canvas.crop(canvas.resolve())[:n]  # (n, H, W) coverage, int16 lanes
        # grey = 255 - round(255 * min(coverage, 1)), in integers
        cov.clamp_(max=UNIT)
        torch.sub(torch.tensor(UNIT + 1, dtype=cov.dtype, device=dev), cov, out=cov)
        torch.bitwise_right_shift(cov, 2, out=grey[start : start + n])
    if G != cfg.channels:  # one line drawn, grey repeated in every channel
        out[:, 1:].copy_(out[:, :1].expand(B, cfg.channels - 1, H, W))


def render_spectra(
    wavelength: Any,
    flux: Any,
    ivar: Any = None,
    mask: Any = None,
    *,
    lengths: Any = None,
    config: SpectrumRenderConfig | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Render a batch of spectra as images.

    Inputs are either (B, N) tensors/arrays (padded; give ``lengths`` or pad with NaN flux) or
    sequences of B one-dimensional arrays of any lengths. Wavelengths must increase along each
    spectrum. Bad pixels (non-finite flux, ``mask != 0``, ``ivar <= 0``) are gaps in the line.

    Args:
        wavelength: vacuum wavelengths, Angstrom.
        flux: fluxes (any unit).
        ivar: inverse variances, or None.
        mask: integer bit masks (0 = good), or None.
        lengths: (B,) number of valid entries per row of padded inputs.
        config: the picture; None uses the paper's defaults.
        device: device for non-tensor inputs (tensor inputs render where they are).

    Returns:
        (B, C, H, W) uint8 tensor on the inputs' device: white background, black line.
    """
    cfg = config or SpectrumRenderConfig()
    if device is None:
        device = flux.device if isinstance(flux, torch.Tensor) else "cpu"
    f, lens = to_padded_tensor(flux, dtype=torch.float32, fill=math.nan, device=device,
                               lengths=lengths)
    device = f.device
    w, _ = to_padded_tensor(wavelength, dtype=torch.float32, fill=math.inf, device=device)
    w = w.to(torch.float32)
    if w.shape != f.shape:
        raise ValueError(f"wavelength {tuple(w.shape)} and flux {tuple(f.shape)} differ in shape")
    iv = mk = None
    if ivar is not None:
        iv, _ = to_padded_tensor(ivar, dtype=torch.float32, fill=0.0, device=device)
    if mask is not None:
        mk, _ = to_padded_tensor(mask, dtype=torch.int32, fill=1, device=device)
    f = f.to(torch.float32)
    good = spectra_valid_mask(w, f, iv, mk, lens)  # the ink ignores the others' flux
    # Wavelengths stay sorted: pad entries past the length with +inf.
    if lens is not None:
        pos = torch.arange(f.shape[1], device=device).unsqueeze(0)
        w = torch.where(pos < lens.to(device).unsqueeze(1), w, torch.full_like(w, math.inf))
    B = f.shape[0]
    H, W = cfg.height, cfg.width
    C = cfg.channels
    if B == 0:
        return torch.empty((0, C, H, W), dtype=torch.uint8, device=device)
    chunk = cfg.chunk_size or (16384 if f.is_cuda else 128)
    nan_wave = bool(torch.isnan(w.sum()))  # a NaN anywhere makes the sum NaN
    out = torch.empty((B, C, H, W), dtype=torch.uint8, device=device)
    for start in range(0, B, chunk):
        sl = slice(start, start + chunk)
        _render_chunk(w[sl], f[sl], good[sl], cfg, out[sl], nan_wave)
    return out


def _column(batch: Mapping[str, Any], name: str) -> Any:
    value = batch.get(name)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.dtype == object:
        if all(v is None for v in value):
            return None
    return value


class RenderSpectra:
    """Ray Data stage: add an ``image`` column of rendered spectra to each batch.

    Use it as a CPU stage::

        ds.map_batches(RenderSpectra, fn_constructor_kwargs={"config": cfg},
                       batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=4))

    or call :func:`render_spectra` on tensors inside a model actor, on its device.

    Args:
        config: the picture (a :class:`SpectrumRenderConfig` or a dict of its fields).
        device: torch device to render on (default CPU).
        image_column: name of the added column.
    """

    def __init__(self, config: SpectrumRenderConfig | Mapping[str, Any] | None = None, *,
                 device: str | None = None, image_column: str = "image"):
        if isinstance(config, Mapping):
            config = SpectrumRenderConfig.from_dict(dict(config))
        self.config = config or SpectrumRenderConfig()
        self.device = torch.device(device or "cpu")
        self.image_column = image_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Render ``wavelength``/``flux`` (+ ``ivar``, ``mask``) into ``image`` (B, C, H, W)."""
        for name in ("wavelength", "flux"):
            if name not in batch:
                raise KeyError(f"RenderSpectra needs a {name!r} column; got {sorted(batch)}")
        wave, flux = batch["wavelength"], batch["flux"]
        if not is_ragged(flux) and np.asarray(flux).ndim == 1:
            raise ValueError("'flux' must hold one array per spectrum")
        with torch.inference_mode():
            images = render_spectra(wave, flux, _column(batch, "ivar"), _column(batch, "mask"),
                                    config=self.config, device=self.device)
        out = dict(batch)
        out[self.image_column] = images.cpu().numpy()
        return out
