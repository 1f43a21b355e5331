"""Multi-band light curves to images, in batches, as torch tensor operations (CPU or GPU).

The default picture is the SwinV2 light-curve paper's matplotlib plot, for every band ``i``::

    ax.errorbar(t_scaled, y_scaled, yerr=err_scaled, fmt="-o", color=f"C{i}", alpha=0.5)

on a 2.56 x 2.56 inch figure at 100 dpi (256 x 256 pixels) with both axes limited to
[-0.05, 1.05] and turned off; time and magnitude (or flux) are min-max scaled to [0, 1] over all
bands of the object, errors by the same factor; magnitudes increase downwards. Bands are
overlaid in one panel or drawn in a grid of panels (2 x 1 for MACHO B/R, 2 x 3 for ELAsTiCC
ugrizY) that fill the figure without gaps, each band in its own panel, clipped to it.

What Agg draws, and so what :func:`render_light_curves` draws: per band a ``LineCollection`` of
error bars (snapped to the pixel grid, butt caps, 1.5 pt, each bar composited alone), then the
data line (1.5 pt, round joins, one path: no self-overlap darkening), then the markers (6 pt
circles with a 1 pt edge of the same colour: fill and edge each composited with alpha 0.5 at
positions rounded to whole pixels). matplotlib draws the error bars of *all* bands (z-order 2)
before the lines and markers of any band (z-order 2.1); the renderer keeps that order.

**Folded pictures** (``config.fold`` other than ``none``): each object's points are drawn
against phase instead of time, ``cycles`` times (at ``phase``, ``phase + 1``, ...), with the x
axis spanning the cycles exactly (``x = (phase + k) / cycles`` on [0, 1], not min-max scaled)
and joined in phase order; magnitudes are scaled as before. The period comes with the inputs
(``period``: the ``period`` column, or the best Lomb-Scargle period that :func:`fold_periods`
finds once per object where the light curves are prepared); an object without one is drawn
against time. Phase 0 is maximum light: the brightest point of a 3-harmonic Fourier series
fitted to all bands at once (one shape, an offset per band) by least squares, evaluated at
256 phases. The brightest single point, which the plots for people use
(:func:`astroray.render.periods.fold_phase`), moves with the noise of one observation, and so
would the whole picture; the fit does not. Folding and the fit are tensor operations in
float64, the same code on CPU and GPU.

Here are the chunk renderer and the tensor folding; the rasterising primitives
(:mod:`astroray.render._raster`, :mod:`astroray.render._marks`), the compositing of the layers
into colours (:mod:`astroray.render._composite`: int16 fixed point on CPU, float on
accelerators, checked against each other) and the period search
(:mod:`astroray.render.periods`) are apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from astroray.render import _composite, _marks, _raster
from astroray.render._inputs import band_indices, is_ragged, pad_arrays, to_padded_tensor
from astroray.render.config import LightCurveRenderConfig
from astroray.render.periods import fold_periods

__all__ = ["RenderLightCurves", "render_light_curves"]

#: Harmonics of the Fourier series whose maximum sets phase 0 of a folded picture.
FOLD_HARMONICS = 3
#: Phases at which that series is evaluated to find its maximum.
FOLD_GRID = 256


def _minmax_scale(values: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (offset, scale) so that ``(values - offset) * scale`` spans [0, 1].

    A constant (or empty) row maps to 0.5: offset ``value - 0.5``, scale 1.
    """
    inf = torch.tensor(math.inf, dtype=values.dtype, device=values.device)
    vmin = torch.where(valid, values, inf).amin(1)
    vmax = torch.where(valid, values, -inf).amax(1)
    span = vmax - vmin
    ok = torch.isfinite(span) & (span > 0)
    scale = torch.where(ok, 1 / torch.where(ok, span, torch.ones_like(span)),
                        torch.ones_like(span))
    offset = torch.where(ok, vmin, torch.where(torch.isfinite(vmin), vmin - 0.5,
                                               torch.zeros_like(vmin)))
    return offset, scale


def _panels(cfg: LightCurveRenderConfig, n_bands: int) -> tuple[list[tuple[float, ...]],
                                                                 list[tuple[int, ...]]]:
    """Per band: exact panel rectangle (x0, y0, w, h) and Agg's integer clip box."""
    H, W = cfg.height, cfg.width
    rows, cols = cfg.panel_shape(n_bands)
    rects, clips = [], []
    for b in range(n_bands):
        if cfg.layout == "overlay":
            x0, y0, w, h = 0.0, 0.0, float(W), float(H)
        else:
            r, c = divmod(b, cols)
            x0, w = c * W / cols, W / cols
            y0, h = r * H / rows, H / rows
        # Agg's clip box: each edge rounded to the nearest whole pixel
        cx0, cx1 = int(math.floor(x0 + 0.5)), int(math.floor(x0 + w + 0.5))
        cy0, cy1 = int(math.floor(y0 + 0.5)), int(math.floor(y0 + h + 0.5))
        rects.append((x0, y0, w, h))
        clips.append((cx0, cy0, min(cx1, W) - cx0, min(cy1, H) - cy0))
    return rects, clips


def _by_band(arrays: list[torch.Tensor], time: torch.Tensor, band: torch.Tensor,
             valid: torch.Tensor, n_bands: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gather each band's points, in time order, into (B, n_bands, M) arrays.

    Returns:
        The gathered arrays and the (B, n_bands, M) mask of real points.
    """
    B, N = band.shape
    dev = band.device
    key_band = torch.where(valid, band, torch.full_like(band, n_bands))  # (B, N)
    by_time = torch.argsort(time, dim=1, stable=True)
    by_band = torch.argsort(key_band.gather(1, by_time), dim=1, stable=True)
    order = by_time.gather(1, by_band)  # (B, N): band-major, time-sorted within a band
    counts = torch.zeros((B, n_bands + 1), dtype=torch.long, device=dev)
    counts.scatter_add_(1, key_band, torch.ones_like(key_band))
    counts = counts[:, :n_bands]  # (B, n_bands)
    M = max(int(counts.max()), 1) if B else 1
    starts = torch.cumsum(counts, 1) - counts
    pos = torch.arange(M, device=dev)
    present = pos.view(1, 1, M) < counts.unsqueeze(-1)  # (B, n_bands, M)
    take = (starts.unsqueeze(-1) + pos).clamp_(max=N - 1).view(B, n_bands * M)  # (B, nb*M)
    idx = order.gather(1, take)  # (B, n_bands*M) original positions
    out = [a.gather(1, idx).view(B, n_bands, M) for a in arrays]  # (B, nb, M) each
    return out, present


def _render_chunk(t: torch.Tensor, v: torch.Tensor, e: torch.Tensor, band: torch.Tensor,
                  valid: torch.Tensor, is_mag: torch.Tensor, colors: torch.Tensor,
                  cfg: LightCurveRenderConfig, out: torch.Tensor,
                  fixed_x: torch.Tensor | None = None) -> None:
    """Render one chunk into ``out`` (B, 3, H, W) uint8.

    ``fixed_x`` (B,) marks objects whose ``t`` is already the scaled x (folded phases).
    """
    B, N = t.shape
    nb = colors.shape[0]
    dev = t.device
    l0, l1 = cfg.axis_limits

    # Min-max scaling per object over all its bands (time in its own precision first).
    t_off, t_scale = _minmax_scale(t, valid)
    if fixed_x is not None:  # folded: x = (phase + k) / cycles already spans [0, 1]
        t_off = torch.where(fixed_x, torch.zeros_like(t_off), t_off)
        t_scale = torch.where(fixed_x, torch.ones_like(t_scale), t_scale)
    v_off, v_scale = _minmax_scale(v, valid)
    tn = ((t - t_off.unsqueeze(1)) * t_scale.unsqueeze(1)).to(torch.float32)
    vn = ((v - v_off.unsqueeze(1)) * v_scale.unsqueeze(1)).to(torch.float32)
    en = (e * v_scale.unsqueeze(1)).to(torch.float32)
    has_err = valid & torch.isfinite(en) & (en >= 0)
    en = torch.where(has_err, en, torch.zeros_like(en))

    (tb, vb, eb, hb), present = _by_band([tn, vn, en, has_err.to(torch.uint8)], tn, band, valid,
                                         nb)
    M = tb.shape[-1]
    R = B * nb

    rects, clips = _panels(cfg, nb)
    rect = torch.tensor(rects, dtype=torch.float32, device=dev)  # (nb, 4)
    clip = torch.tensor(clips, dtype=torch.float32, device=dev)  # (nb, 4)
    Wc = max(c[2] for c in clips)
    Hc = max(c[3] for c in clips)
    span = l1 - l0
    # Canvas coordinates (pixels) of each band's points: (B, nb, M)
    x = (rect[:, 0] - clip[:, 0]).view(1, nb, 1) + (tb - l0) * (rect[:, 2] / span).view(1, nb, 1)
    y_top = (rect[:, 1] - clip[:, 1]).view(1, nb, 1)
    y_mag = y_top + (vb - l0) * (rect[:, 3] / span).view(1, nb, 1)
    y_flux = y_top + (l1 - vb) * (rect[:, 3] / span).view(1, nb, 1)
    flip = (is_mag & cfg.invert_magnitude).view(B, 1, 1)
    y = torch.where(flip, y_mag, y_flux)
    down = torch.where(flip, 1.0, -1.0) * (rect[:, 3] / span).view(1, nb, 1)  # rows per unit
    y_e1, y_e2 = y - eb * down, y + eb * down
    # one polyline per (object, band): (R = B*nb, M)
    x, y, y_e1, y_e2 = (a.reshape(R, M) for a in (x, y, y_e1, y_e2))
    present = present.reshape(R, M)
    with_err = present & hb.reshape(R, M).bool()

    overlay = cfg.layout == "overlay"
    L = 2 * nb if overlay else nb  # layers per object
    P = min(_canvas_objects(dev), B)  # objects whose canvases are resolved at once
    obj = torch.arange(B, device=dev).remainder_(P).repeat_interleave(nb)
    bnd = torch.arange(nb, device=dev).repeat(B)
    plane_bars = obj * L + bnd  # (R,) plane within a canvas of P objects
    plane_marks = plane_bars + nb if overlay else plane_bars

    alpha = float(cfg.alpha)
    radius = cfg.px(cfg.marker_size) / 2
    edge = cfg.px(cfg.marker_edge_width)
    half = cfg.px(cfg.line_width) / 2
    n_sub = cfg.subcolumns
    width = cfg.px(cfg.error_width if cfg.error_width is not None else cfg.line_width)
    bars = cfg.show_errors and width > 0
    lines = cfg.show_lines and half > 0
    marks = cfg.show_markers and radius > 0
    # with the axis limits around [0, 1], every (scaled) point lies inside its panel
    inside = l0 <= 0.0 and l1 >= 1.0
    pad = max(_marks.marker_pad(radius, edge, centred_inside=inside),
              _raster.reach(half, n_sub) + 2, 4)
    lane_bits = _lane_bits(x, present, Wc, pad, radius, edge, alpha, marks)
    canvas = _raster.PackedCanvas(P * L, Wc, Hc, dev, lane_bits=lane_bits, pad=pad,
                                  pad_rows=pad)
    entries = []  # (index, value) per primitive, each (B, entries per object)
    if bars:
        entries.append(_marks.bar_entries(
            canvas, plane_bars, x, torch.minimum(y_e1, y_e2), torch.maximum(y_e1, y_e2),
            with_err, width=width, alpha=alpha))
    if lines:
        margin = _raster.reach(half, n_sub)
        S = (Wc + 2 * margin) * n_sub
        xs = torch.where(present, x, math.inf).add_(margin).mul_(n_sub)
        lo, hi = _raster.stroke_hulls(xs, y, present, S, travel=False)[:2]
        top, bottom = _raster.dilate_hulls(lo, hi, n_sub=n_sub, margin=margin, half_width=half)
        entries.append(_raster.translucent_entries(canvas, plane_marks, top, bottom,
                                                   n_sub=n_sub, alpha=alpha))
    if marks:
        entries.append(_marks.marker_entries(canvas, plane_marks, x, y, present,
                                              radius=radius, edge_width=edge, alpha=alpha))
    entries = [(i.view(B, -1), v.view(B, -1)) for i, v in entries]
    for start in range(0, B, P):
        n = min(P, B - start)
        canvas.clear()
        for index, value in entries:
            canvas.add(index[start : start + n], value[start : start + n])
        tau = canvas.crop(canvas.resolve()).view(P, L, Hc, Wc)[:n]  # optical depth
        if overlay:
            _composite.composite_overlay(tau, colors, out[start : start + n])
        else:
            _composite.composite_grid(tau, colors, clips, out[start : start + n])


def _canvas_objects(device: torch.device) -> int:
    """Objects whose canvases are resolved at once (few on CPU, to stay in cache)."""
    return 256 if device.type == "cuda" else 4


def _lane_bits(x: torch.Tensor, present: torch.Tensor, width: int, pad: int, radius: float,
               edge: float, alpha: float, marks: bool) -> int:
    """16-bit lanes when no layer's optical depth can reach 2**15 units, else 32-bit.

    A layer's depth at a pixel is at most the number of points whose marker (the widest
    element) can reach the pixel, times the largest depth of one element, plus the line's: the
    number is bounded by the points in two adjacent bins of the marker's width.
    """
    k = _marks.marker_reach(radius, edge)
    w = 2 * k + 1
    R, M = x.shape
    n_bins = (width + 2 * pad) // w + 2
    b = torch.where(present, x.add(pad).div_(w).floor_().clamp_(0, n_bins - 1), n_bins)
    count = torch.zeros((R, n_bins + 1), dtype=torch.int64, device=x.device)
    count.scatter_add_(1, b.long(), torch.ones_like(b, dtype=torch.int64))
    pairs = count[:, :n_bins - 1] + count[:, 1:n_bins] if n_bins > 1 else count[:, :1]
    crowd = int(pairs.max()) if pairs.numel() else 0
    one = math.ceil(float(_raster._tau(alpha, 1.0)) * _raster.TAU_UNIT)
    elem = max(_marks.marker_tau_max(radius, edge, alpha) if marks else 0, one)
    return 16 if crowd * elem + one + 1 < 1 << 15 else 32


def _max_light_phase(phase: torch.Tensor, v: torch.Tensor, band: torch.Tensor,
                     valid: torch.Tensor, is_mag: torch.Tensor, n_bands: int) -> torch.Tensor:
    """Phase (B,) of maximum light of a Fourier series fitted to every band at once.

    The model is ``c_band + sum_k a_k cos(2 pi k phase) + b_k sin(2 pi k phase)`` for
    k = 1..:data:`FOLD_HARMONICS` (one shape, an offset per band), fitted by least squares
    (normal equations with a tiny ridge, so that absent bands and sparse objects stay
    solvable) to the values min-max scaled per object; maximum light is the smallest magnitude
    or largest flux of the fitted shape on :data:`FOLD_GRID` phases.

    Args:
        phase: (B, N) float64 phases in [0, 1).
        v: (B, N) magnitudes or fluxes.
        band: (B, N) band indices.
        valid: (B, N) points that count.
        is_mag: (B,) magnitudes (brighter is smaller).
        n_bands: number of bands.
    """
    dt = torch.float64
    dev = phase.device
    off, scale = _minmax_scale(v.to(dt), valid)
    w = valid.to(dt)
    y = ((v.to(dt) - off.unsqueeze(1)) * scale.unsqueeze(1)) * w  # (B, N)
    k = torch.arange(1, FOLD_HARMONICS + 1, device=dev, dtype=dt)
    ang = (2 * math.pi) * phase.unsqueeze(-1) * k  # (B, N, K)
    onehot = torch.nn.functional.one_hot(band.clamp(0, n_bands - 1), n_bands).to(dt)
    X = torch.cat([onehot, torch.cos(ang), torch.sin(ang)], -1) * w.unsqueeze(-1)  # (B, N, p)
    A = X.transpose(1, 2) @ X  # (B, p, p)
    ridge = 1e-6 * w.sum(1).clamp(min=1.0)
    A = A + ridge.view(-1, 1, 1) * torch.eye(A.shape[-1], device=dev, dtype=dt)
    coef = torch.linalg.solve(A, (X.transpose(1, 2) @ y.unsqueeze(-1)))[..., 0]  # (B, p)
    grid = torch.arange(FOLD_GRID, device=dev, dtype=dt) / FOLD_GRID
    g_ang = (2 * math.pi) * grid.unsqueeze(-1) * k  # (G, K)
    basis = torch.cat([torch.cos(g_ang), torch.sin(g_ang)], -1)  # (G, 2K)
    shape = coef[:, n_bands:] @ basis.T  # (B, G)
    brightest = torch.where(is_mag.view(-1, 1), -shape, shape).argmax(1)
    return grid[brightest]


def _fold(t: torch.Tensor, v: torch.Tensor, e: torch.Tensor, band: torch.Tensor,
          valid: torch.Tensor, is_mag: torch.Tensor, period: torch.Tensor, n_bands: int,
          cycles: int) -> tuple[torch.Tensor, ...]:
    """Points against phase, repeated ``cycles`` times: x = (phase + k) / cycles.

    Objects without a finite positive period keep their times (their copies are invalid), so
    they are drawn as unfolded pictures.

    Returns:
        ``(x, v, e, band, valid, folded)``: (B, cycles * N) arrays and the (B,) folded mask.
    """
    B, N = t.shape
    dt = torch.float64
    period = period.to(device=t.device, dtype=dt).reshape(B)
    folded = torch.isfinite(period) & (period > 0) & valid.any(1)
    p = torch.where(folded, period, torch.ones_like(period))
    inf = torch.tensor(math.inf, dtype=dt, device=t.device)
    t0 = torch.where(valid, t.to(dt), inf).amin(1)
    t0 = torch.where(torch.isfinite(t0), t0, torch.zeros_like(t0))
    cyc = (t.to(dt) - t0.unsqueeze(1)) / p.unsqueeze(1)  # (B, N) cycles since the first point
    phase = cyc - torch.floor(cyc)
    origin = _max_light_phase(phase, v, band, valid & folded.unsqueeze(1), is_mag, n_bands)
    phase = phase - origin.unsqueeze(1)
    phase = phase - torch.floor(phase)
    phase = torch.where(phase >= 1.0, torch.zeros_like(phase), phase)  # rounding: [0, 1)
    k = torch.arange(cycles, device=t.device, dtype=dt).view(1, cycles, 1)
    x = (phase.unsqueeze(1) + k) / cycles  # (B, C, N)
    x = torch.where(folded.view(B, 1, 1), x, t.to(dt).unsqueeze(1).expand(B, cycles, N))
    first = (k == 0).view(1, cycles, 1)
    keep = valid.unsqueeze(1) & (folded.view(B, 1, 1) | first)  # (B, C, N)

    def rep(a: torch.Tensor) -> torch.Tensor:
        return a.unsqueeze(1).expand(B, cycles, N).reshape(B, cycles * N)

    return (x.reshape(B, cycles * N), rep(v), rep(e), rep(band),
            keep.reshape(B, cycles * N), folded)


def render_light_curves(
    time: Any,
    value: Any,
    err: Any,
    band: Any,
    *,
    lengths: Any = None,
    magnitude: bool | Sequence[bool] | torch.Tensor = True,
    config: LightCurveRenderConfig | None = None,
    device: torch.device | str | None = None,
    period: Any = None,
) -> torch.Tensor:
    """Render a batch of multi-band light curves as images.

    Inputs are (B, N) tensors/arrays (padded; give ``lengths`` or pad with NaN) or sequences
    of B one-dimensional arrays. Points need not be grouped by band; within a band they are
    joined in time order.

    Args:
        time: observation times (MJD; float64 keeps their precision for the scaling).
        value: magnitudes or fluxes.
        err: 1-sigma uncertainties (non-finite: no error bar).
        band: band indices into ``config.bands`` (int tensor/array, -1 = skip) or, per object,
            arrays of band names.
        lengths: (B,) number of valid entries per row of padded inputs.
        magnitude: values are magnitudes (bool, or one per object); magnitudes are drawn
            increasing downwards, fluxes upwards.
        config: the picture; None uses the paper's defaults (overlay).
        device: device for non-tensor inputs (tensor inputs render where they are).
        period: (B,) periods in days of a folded picture (``config.fold`` not ``none``);
            NaN draws that object against time. None runs :func:`fold_periods` here, on the
            CPU, a periodogram per object: pass the periods found once when the light curves
            were prepared instead. Ignored when ``config.fold`` is ``none``.

    Returns:
        (B, 3, H, W) uint8 RGB tensor on the inputs' device.
    """
    cfg = config or LightCurveRenderConfig()
    if device is None:
        device = value.device if isinstance(value, torch.Tensor) else "cpu"
    v, lens = to_padded_tensor(value, dtype=torch.float64, fill=math.nan, device=device,
                               lengths=lengths)
    device = v.device
    t, _ = to_padded_tensor(time, dtype=torch.float64, fill=math.nan, device=device)
    e, _ = to_padded_tensor(err, dtype=torch.float64, fill=math.nan, device=device)
    if isinstance(band, torch.Tensor) or (isinstance(band, np.ndarray) and band.dtype.kind in "iu"):
        bidx = torch.as_tensor(band, device=device).long()
        names = list(cfg.bands) if cfg.bands is not None else [
            str(i) for i in range(int(bidx.max()) + 1 if bidx.numel() else 1)]
    else:
        idx_np, names = band_indices(band, cfg.bands)
        bidx = torch.from_numpy(idx_np).to(device)
    if not (t.shape == v.shape == e.shape == bidx.shape):
        raise ValueError(f"time {tuple(t.shape)}, value {tuple(v.shape)}, err {tuple(e.shape)} "
                         f"and band {tuple(bidx.shape)} must have the same shape")
    B, N = v.shape
    nb = max(len(names), 1)
    valid = torch.isfinite(t) & torch.isfinite(v) & (bidx >= 0) & (bidx < len(names))
    if lens is not None:
        valid &= torch.arange(N, device=device).unsqueeze(0) < lens.to(device).unsqueeze(1)
    mag = torch.as_tensor(magnitude, dtype=torch.bool, device=device)
    mag = mag.expand(B) if mag.dim() == 0 else mag.reshape(B)
    colors = torch.tensor(cfg.band_colors(names or ["_"]), dtype=torch.float32, device=device)
    H, W = cfg.height, cfg.width
    out = torch.empty((B, 3, H, W), dtype=torch.uint8, device=device)
    if B == 0:
        return out
    # Keep the padded values finite: invalid points are never drawn.
    t = torch.where(valid, t, torch.zeros_like(t))
    v = torch.where(valid, v, torch.zeros_like(v))
    bidx = torch.where(valid, bidx, torch.zeros_like(bidx))
    fixed_x = None
    if cfg.folded:
        if period is None:
            period = _periods_of_padded(t, v, e, bidx, valid, cfg)
        period_t = torch.as_tensor(np.asarray(period, dtype=np.float64)
                                   if not isinstance(period, torch.Tensor) else period,
                                   device=device)
        t, v, e, bidx, valid, fixed_x = _fold(t, v, e, bidx, valid, mag, period_t, nb,
                                              cfg.cycles)
    chunk = cfg.chunk_size or (1024 if v.is_cuda else 64)
    for start in range(0, B, chunk):
        sl = slice(start, start + chunk)
        _render_chunk(t[sl], v[sl], e[sl], bidx[sl], valid[sl], mag[sl], colors[:nb], cfg,
                      out[sl], None if fixed_x is None else fixed_x[sl])
    return out


def _periods_of_padded(t: torch.Tensor, v: torch.Tensor, e: torch.Tensor, band: torch.Tensor,
                       valid: torch.Tensor, cfg: LightCurveRenderConfig) -> np.ndarray:
    """:func:`fold_periods` of padded (B, N) tensors (no catalogue periods)."""
    rows = [valid[i].cpu().numpy() for i in range(valid.shape[0])]
    pick = lambda a: [a[i].cpu().numpy()[r] for i, r in enumerate(rows)]  # noqa: E731
    return fold_periods(pick(t), pick(v), pick(e), pick(band), config=cfg)[0]


def _values_and_kind(batch: Mapping[str, Any]) -> tuple[list[Any], np.ndarray]:
    """Per object: the magnitudes if present, else the fluxes; and whether they are magnitudes."""
    mags = batch.get("mag")
    fluxes = batch.get("flux")
    n = len(batch["time"])
    mags = [None] * n if mags is None else list(mags)
    fluxes = [None] * n if fluxes is None else list(fluxes)
    values, is_mag = [], np.zeros(n, dtype=bool)
    for i, (m, f) in enumerate(zip(mags, fluxes, strict=True)):
        values.append(m if m is not None else f)
        is_mag[i] = m is not None
    return values, is_mag


class RenderLightCurves:
    """Ray Data stage: add an ``image`` column of rendered light curves to each batch.

    Reads the canonical columns ``time``, ``band``, ``mag`` or ``flux`` (whichever is present
    for each object) and ``err``. Use it as a CPU stage::

        ds.map_batches(RenderLightCurves, fn_constructor_kwargs={"config": cfg},
                       batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=4))

    or call :func:`render_light_curves` on tensors inside a model actor, on its device. A
    folded picture finds each object's period here (:func:`fold_periods`, with the batch's
    ``period`` column as the catalogue period) and adds ``period`` and ``period_power``.

    Args:
        config: the picture (a :class:`LightCurveRenderConfig` or a dict of its fields). Set
            ``bands`` so that colours and panels are the same in every batch.
        device: torch device to render on (default CPU).
        image_column: name of the added column.
    """

    def __init__(self, config: LightCurveRenderConfig | Mapping[str, Any] | None = None, *,
                 device: str | None = None, image_column: str = "image"):
        if isinstance(config, Mapping):
            config = LightCurveRenderConfig.from_dict(dict(config))
        self.config = config or LightCurveRenderConfig()
        self.device = torch.device(device or "cpu")
        self.image_column = image_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Render the batch's light curves into ``image`` (B, 3, H, W) uint8."""
        for name in ("time", "band", "err"):
            if name not in batch:
                raise KeyError(f"RenderLightCurves needs a {name!r} column; got {sorted(batch)}")
        values, is_mag = _values_and_kind(batch)
        time = batch["time"]
        if not is_ragged(time):
            time = list(np.asarray(time))
        err = batch["err"]
        if not is_ragged(err):
            err = list(np.asarray(err))
        band = batch["band"]
        if isinstance(band, np.ndarray) and band.dtype != object and band.ndim == 2:
            band = list(band)
        values_padded, _ = pad_arrays(values, np.float64, np.nan)
        period = power = None
        if self.config.folded:  # once per object, on this CPU stage
            period, power = fold_periods(list(time), values, list(err), list(band),
                                         config=self.config, catalogue=batch.get("period"))
        with torch.inference_mode():
            images = render_light_curves(time, values_padded, err, band, magnitude=is_mag,
                                         config=self.config, device=self.device,
                                         period=period)
        out = dict(batch)
        out[self.image_column] = images.cpu().numpy()
        if period is not None:
            out["period"], out["period_power"] = period, power
        return out
