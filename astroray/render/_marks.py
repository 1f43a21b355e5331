"""Markers and error bars on packed integer canvases, in torch (private).

The marker and error-bar primitives of :mod:`astroray.render._raster` (same canvases, same
fixed-point optical depth, same determinism):

* error bars (``LineCollection`` of vertical segments): snapped to the pixel grid as Agg snaps
  rectilinear paths, butt caps, each bar composited on its own (overlaps accumulate).
* markers (``'o'``): a precomputed stamp (fill disk, then edge ring, each composited with the
  line's alpha) placed at ``floor(x + 0.5), floor(y + 0.5)`` as Agg's ``draw_markers`` does.
"""

from __future__ import annotations

import functools
import math

import torch

from astroray.render._raster import TAU_UNIT, PackedCanvas, _lane_values, _tau


def marker_reach(radius: float, edge_width: float) -> int:
    """Pixels a marker's stamp extends on each side of its centre pixel."""
    return int(math.ceil(radius + edge_width / 2 - 0.5)) + 1


def marker_pad(radius: float, edge_width: float, centred_inside: bool = False) -> int:
    """Canvas padding (rows and columns) that holds every marker touching the canvas.

    Args:
        radius: marker radius, pixels.
        edge_width: marker edge width, pixels.
        centred_inside: every marker's centre lies on the canvas (less padding is needed).
    """
    k = marker_reach(radius, edge_width)
    return k + 2 if centred_inside else 2 * k + 2


@functools.lru_cache(maxsize=32)
def _stamp_tau(radius: float, edge_width: float, alpha: float, samples: int = 16
               ) -> torch.Tensor:
    """Optical depth (TAU_UNIT, int64) of a marker: fill disk then edge ring, each with alpha."""
    k = marker_reach(radius, edge_width)
    n = 2 * k + 1
    s = samples
    pos = (torch.arange(n * s, dtype=torch.float64) + 0.5) / s - (k + 0.5)
    yy, xx = torch.meshgrid(pos, pos, indexing="ij")
    d = torch.sqrt(xx * xx + yy * yy)
    fill = (d <= radius).double().view(n, s, n, s).mean((1, 3))
    if edge_width > 0:
        ring = ((d - radius).abs() <= edge_width / 2).double().view(n, s, n, s).mean((1, 3))
    else:
        ring = torch.zeros_like(fill)
    return torch.round((_tau(alpha, fill) + _tau(alpha, ring)) * TAU_UNIT).long()


def marker_tau_max(radius: float, edge_width: float, alpha: float) -> int:
    """Largest optical depth (TAU_UNIT) of a marker's stamp."""
    return int(_stamp_tau(radius, edge_width, alpha).max())


@functools.lru_cache(maxsize=32)
def _packed_stamp(radius: float, edge_width: float, alpha: float, lanes: int,
                  lane_bits: int) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """The marker stamp's row differences packed into lanes, for each alignment.

    Returns:
        ``(rows, groups, values)``, each ``lanes`` tuples of K entries: for a stamp whose
        leftmost column falls in lane ``a``, the entries' row offsets (from the centre), group
        offsets (from the leftmost column's group) and packed int64 values.
    """
    k = marker_reach(radius, edge_width)
    tau = _stamp_tau(radius, edge_width, alpha)  # (rows, cols) in TAU_UNIT, integers
    diff = torch.cat([tau, torch.zeros(1, tau.shape[1], dtype=torch.int64)], 0)
    diff[1:] -= tau  # row differences, 2k + 2 rows
    rows_a, groups_a, values_a = [], [], []
    for a in range(lanes):
        acc: dict[tuple[int, int], int] = {}
        nz_r, nz_c = torch.nonzero(diff, as_tuple=True)
        for r, c in zip(nz_r.tolist(), nz_c.tolist(), strict=True):
            o = a + c  # column offset from the leftmost column's group start
            key = (r - k, o // lanes)
            acc[key] = acc.get(key, 0) + (int(diff[r, c]) << (lane_bits * (o % lanes)))
        keys = sorted(acc)
        rows_a.append(tuple(r for r, _ in keys))
        groups_a.append(tuple(g for _, g in keys))
        values_a.append(tuple(acc[key] for key in keys))
    K = max(len(v) for v in values_a)
    pad = lambda t: tuple(t) + (0,) * (K - len(t))  # noqa: E731  zero entries at the centre
    return (tuple(pad(r) for r in rows_a), tuple(pad(g) for g in groups_a),
            tuple(pad(v) for v in values_a))


def marker_entries(canvas: PackedCanvas, plane: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                   valid: torch.Tensor, *, radius: float, edge_width: float, alpha: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Entries of circle markers at (x, y) ((R, M) pixels) into ``plane`` (R,) of ``canvas``.

    Agg draws a marker at whole-pixel positions, centred on the middle of pixel
    ``floor(x + 0.5)``; the fill disk and the edge ring are composited one after the other,
    each with ``alpha``, as ``draw_markers`` does. The canvas needs :func:`marker_pad` padding;
    markers that are not drawn go to its spare plane.
    """
    rows_t, groups_t, values_t = _packed_stamp(radius, edge_width, alpha, canvas.lanes,
                                               canvas.lane_bits)
    dev = x.device
    K = len(values_t[0])
    if K == 0:
        return (torch.zeros(0, dtype=torch.int64, device=dev),) * 2
    k = marker_reach(radius, edge_width)
    G, lanes = canvas.groups, canvas.lanes
    cx = x.add(0.5).floor_().nan_to_num_(0.0)
    cy = y.add(0.5).floor_().nan_to_num_(0.0)
    keep = (valid & (cx >= k - canvas.pad) & (cx < canvas.width + canvas.pad - k)
            & (cy >= k - canvas.pad_rows) & (cy < canvas.height + canvas.pad_rows - k))
    cx = cx.clamp_(k - canvas.pad, canvas.width + canvas.pad - k - 1).long()
    cy = cy.clamp_(k - canvas.pad_rows, canvas.height + canvas.pad_rows - k - 1).long()
    first = cx + (canvas.pad - k)  # padded column of the stamp's leftmost column
    group = torch.div(first, lanes, rounding_mode="floor")
    align = first - group * lanes  # (R, M) lane of the leftmost column
    pl = torch.where(keep, plane.view(-1, 1), canvas.park)
    centre = (pl * canvas.plane_size).add_((cy + canvas.pad_rows) * G).add_(group)  # (R, M)
    offsets = (torch.tensor(rows_t, device=dev) * G + torch.tensor(groups_t, device=dev))
    table = torch.tensor(values_t, dtype=torch.int64, device=dev)  # (lanes, K)
    sel = align.view(-1)
    idx = offsets.index_select(0, sel).view(*align.shape, K).add_(centre.unsqueeze(-1))
    val = table.index_select(0, sel)
    return idx.view(-1), val.view(-1)


@functools.lru_cache(maxsize=32)
def _bar_columns(width: float) -> tuple[float, tuple[int, ...], tuple[float, ...]]:
    """Snap offset, column offsets and horizontal coverage of a snapped vertical bar."""
    # Agg snaps rectilinear paths to pixel centres for odd (rounded) widths, corners for even.
    snap = 0.5 if int(math.floor(width + 0.5)) % 2 else 0.0
    half = width / 2
    lo, hi = snap - half, snap + half  # relative to the snapped integer position
    cols, cover = [], []
    for c in range(int(math.floor(lo)), int(math.ceil(hi))):
        overlap = min(hi, c + 1) - max(lo, c)
        if overlap > 1e-6:
            cols.append(c)
            cover.append(min(overlap, 1.0))
    return snap, tuple(cols), tuple(cover)


def bar_entries(canvas: PackedCanvas, plane: torch.Tensor, x: torch.Tensor,
                y_top: torch.Tensor, y_bottom: torch.Tensor, valid: torch.Tensor, *,
                width: float, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Entries of vertical error bars from ``y_top`` to ``y_bottom`` at ``x`` ((R, M) each).

    Positions and ends are snapped as Agg snaps rectilinear paths; caps are butt; each bar is
    composited on its own (their optical depths add up).

    Args:
        canvas: the canvas.
        plane: (R,) plane of each row.
        x: (R, M) bar abscissae (canvas pixels).
        y_top: (R, M) upper ends (rows).
        y_bottom: (R, M) lower ends (rows).
        valid: (R, M) bars to draw.
        width: bar width, pixels.
        alpha: opacity.

    Returns:
        ``(index, value)`` int64, flattened.
    """
    snap, cols, cover = _bar_columns(width)
    dev = x.device
    if not cols:
        return (torch.zeros(0, dtype=torch.int64, device=dev),) * 2
    H, G = canvas.height, canvas.groups
    lo_c, hi_c = -canvas.pad - min(cols), canvas.width + canvas.pad - 1 - max(cols)
    cx = x.add(0.5).floor_().nan_to_num_(0.0)
    keep = valid & (cx >= lo_c) & (cx <= hi_c)
    col = cx.clamp_(lo_c, hi_c).long().unsqueeze(-1) + torch.tensor(cols, device=dev)  # (R,M,K)
    base, lane = canvas.column_base(col)
    base = base + (plane * canvas.plane_size).view(-1, 1, 1)
    top = y_top.add(0.5).floor_().nan_to_num_(0.0)
    bot = y_bottom.add(0.5).floor_().nan_to_num_(0.0)
    tau = [_tau(alpha * c, 1.0).item() * TAU_UNIT for c in cover]
    if snap == 0.0:  # even widths snap to pixel corners: whole rows, one entry at each end
        top, bot = top.clamp_(0, H + 1), bot.clamp_(0, H + 1)
        drawn = (bot > top).logical_and_(keep).to(x.dtype).unsqueeze(-1)  # (R, M, 1)
        v = torch.tensor([round(t) for t in tau], device=dev, dtype=x.dtype) * drawn  # (R,M,K)
        v = _lane_values(v, lane, canvas)
        idx = torch.stack([base + top.long().mul_(G).unsqueeze(-1),
                           base + bot.long().mul_(G).unsqueeze(-1)], -1)  # (R, M, K, 2)
        return idx.view(-1), torch.stack([v, -v], -1).view(-1)
    # odd widths snap to pixel centres: partial end rows
    t, b = (top + snap).clamp_(0, H), (bot + snap).clamp_(0, H)
    b = torch.maximum(b, t)
    fl_t, fl_b = t.floor(), b.floor()
    c0 = torch.minimum(fl_t + 1, b).sub_(t)
    c1 = b - torch.maximum(fl_b, t)
    flag = (fl_b - fl_t).clamp_(0, 1)
    keepf = keep.to(x.dtype).unsqueeze(-1)
    cov = torch.tensor(cover, device=dev, dtype=x.dtype)
    full = torch.tensor(tau, device=dev, dtype=x.dtype)  # (K,)
    p0 = _tau(alpha, cov * c0.unsqueeze(-1)).mul_(TAU_UNIT).mul_(keepf).round_()
    p1 = _tau(alpha, cov * c1.unsqueeze(-1)).mul_(TAU_UNIT).mul_(keepf).round_()
    mid = (full.round() * keepf - p0).mul_(flag.unsqueeze(-1)).add_(p0)
    v = torch.stack([p0, mid - p0, p1 - mid, -p1], -1)  # (R, M, K, 4)
    v = _lane_values(v, lane.unsqueeze(-1), canvas)
    rows = torch.stack([fl_t, fl_t + 1, fl_b, fl_b + 1], -1).long().mul_(G)  # (R, M, 4)
    idx = base.unsqueeze(-1) + rows.unsqueeze(-2)
    return idx.view(-1), v.view(-1)
