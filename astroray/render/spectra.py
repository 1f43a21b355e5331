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
    good = torch.isfinite(wavelength) & torch.isfinite(flux)
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
        lo = torch.full(flux.shape[:1], cfg.y_limits[0], dtype=flux.dtype, device=flux.device)
        return lo, torch.full_like(lo, cfg.y_limits[1])
    vmin, vmax = _masked_min_max(flux, sel)
    span = vmax - vmin
    # matplotlib's nonsingular(): a (near) flat spectrum is centred.
    flat = span <= 1e-12 * torch.maximum(vmin.abs(), vmax.abs())
    pad = torch.where(flat, torch.ones_like(span), span * cfg.y_margin)
    empty = ~torch.isfinite(span)
    lo = torch.where(empty, torch.zeros_like(vmin), vmin - pad)
    hi = torch.where(empty, torch.ones_like(vmax), vmax + pad)
    return lo, hi


def _render_chunk(wave: torch.Tensor, flux: torch.Tensor, good: torch.Tensor,
                  cfg: SpectrumRenderConfig, out: torch.Tensor, nan_wave: bool) -> None:
    """Render one chunk into ``out`` (B, C, H, W) uint8 (``nan_wave``: NaN wavelengths)."""
    B, N = flux.shape
    H, W, n_sub = cfg.height, cfg.width, cfg.subcolumns
    flux = _normalize(flux, good, cfg.normalize)
    segments = cfg.segments()
    G = len(segments)
    dev = flux.device
    seg = torch.tensor(segments, dtype=torch.float32, device=dev)  # (G, 2)
    a = seg[:, 0].view(1, G, 1)
    b = seg[:, 1].view(1, G, 1)
    wave = wave.unsqueeze(1)  # (B, 1, N); float32 places a pixel to ~1e-4 of its width
    x = (wave - a).mul_(W / (b - a))  # (B, G, N) pixels
    if G == 1:
        sel = good.unsqueeze(1)  # matplotlib autoscale: all good points, wherever they are
    else:
        sel = good.unsqueeze(1) & (wave >= a) & (wave <= b)  # (B, G, N)
    fl = flux.unsqueeze(1).expand(B, G, N)
    lo_lim, hi_lim = _y_limits(fl.reshape(B * G, N), sel.reshape(B * G, N), cfg)  # (B*G,)
    y = ((hi_lim.unsqueeze(1) - fl.reshape(B * G, N)) * (H / (hi_lim - lo_lim)).unsqueeze(1))
    x = x.reshape(B * G, N)  # one polyline per (spectrum, segment)
    valid = good.unsqueeze(1).expand(B, G, N).reshape(B * G, N)
    if nan_wave:  # keep the abscissae sorted for searchsorted
        x, finite_x = _raster.monotone_x(x)
        valid = valid & finite_x
    half = cfg.line_width_px / 2
    margin = _raster.reach(half, n_sub)
    lo, hi, travel = _raster.centerline_hulls(x, y, valid, n_cols=W, n_sub=n_sub, margin=margin,
                                              travel=True)  # (B*G, (W + 2*margin) * n_sub)
    canvas = _raster.DiffCanvas(B * G, W, H, dev, pad=_raster.stroke_pad(half, n_sub))
    _raster.add_stroke(canvas, torch.arange(B * G, device=dev), lo, hi, n_sub=n_sub,
                       margin=margin, half_width=half, travel=travel)
    cov = canvas.resolve()  # (B*G, H, W) fixed-point coverage, a view into the canvas
    # grey = 255 - round(255 * min(coverage, 1)) = max(ONE + 128 - coverage, 128) >> 8, in
    # integers, into a contiguous workspace (contiguous int -> uint8 copies are fast)
    one = _raster.COVERAGE_ONE
    grey = _raster.workspace("grey", (B * G, H, W), torch.int32, dev)
    torch.sub(torch.tensor(one + 128, dtype=torch.int32, device=dev), cov, out=grey)
    grey.clamp_min_(128).bitwise_right_shift_(8)
    img = grey.view(B, G, H, W)  # segments are channels
    if G == 1 and cfg.channels == 3:
        img = img.expand(B, 3, H, W)
    out.copy_(img)


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
    # Wavelengths stay sorted for searchsorted: pad entries past the length with +inf.
    if lens is not None:
        pos = torch.arange(f.shape[1], device=device).unsqueeze(0)
        w = torch.where(pos < lens.to(device).unsqueeze(1), w, torch.full_like(w, math.inf))
    B = f.shape[0]
    H, W = cfg.height, cfg.width
    C = cfg.channels
    if B == 0:
        return torch.empty((0, C, H, W), dtype=torch.uint8, device=device)
    chunk = cfg.chunk_size or (16384 if f.is_cuda else 64)
    nan_wave = bool(torch.isnan(w).any())
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
