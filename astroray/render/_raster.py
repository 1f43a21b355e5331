"""Batched anti-aliased rasterisation primitives in torch (private).

Everything here works on whole batches with tensor operations, on whatever device the inputs
are on, and is deterministic there too: ink is accumulated as *integers* (fixed point) with
``scatter_add_`` into "row-difference" planes and resolved by one in-place ``cumsum`` along the
rows, so the order in which a GPU's atomics land cannot change a single bit.

Coordinates are Agg's: pixel ``(row r, column c)`` covers ``[c, c+1) x [r, r+1)``, rows grow
downwards. Planes are laid out column-major, ``(plane, column, row)``, so that the resolving
cumsum runs over the contiguous last axis (several times faster on CPU than over a strided
one); the renderers transpose once, when they write ``uint8`` images.

The primitives mirror what matplotlib's Agg backend draws for ``plot`` and ``errorbar``:

* polylines (``Line2D``): the exact vertical extent of the centre line in every sub-column
  (``n_sub`` per pixel; extremes of a polyline lie at vertices or on sub-column borders), then
  either *added* with the stroke's area (:func:`add_stroke`, opaque thin lines: Agg sums the
  coverage of overlapping parts of one outline before clipping it, so dense zig-zags saturate)
  or widened by a disk brush and *united* (:func:`dilate_hulls`, translucent thick lines).
* error bars (``LineCollection`` of vertical segments): snapped to the pixel grid as Agg snaps
  rectilinear paths, butt caps, each bar composited on its own (overlaps accumulate).
* markers (``'o'``): a precomputed stamp (fill disk, then edge ring, each composited with the
  line's alpha) placed at ``floor(x + 0.5), floor(y + 0.5)`` as Agg's ``draw_markers`` does.

Ink is accumulated either as *coverage* (opaque lines: pixel = 255 * (1 - coverage)) or as
*optical depth* in bits, ``tau = -log2(T)`` of the transmittance ``T`` of alpha-composited
elements, which adds up over overlapping elements of one colour.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable

import torch

#: Fixed-point unit of coverage: one fully covered pixel (255 * 256, so that the grey level is
#: ``(COVERAGE_ONE + 128 - coverage) >> 8``).
COVERAGE_ONE = 255 << 8
#: Fixed-point unit of optical depth, in bits (tau = 1: transmittance 1/2).
TAU_ONE = 1 << 12
#: Smallest transmittance of a single element (keeps tau finite for alpha = 1).
_T_MIN = 2.0**-16


def monotone_x(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make abscissae usable by ``searchsorted``: NaNs filled by the running maximum.

    Args:
        x: (R, N) abscissae, sorted along each row apart from NaNs and +inf padding.

    Returns:
        ``(x_sorted, finite)``: non-decreasing abscissae and the mask of finite inputs.
    """
    finite = torch.isfinite(x)
    filled = torch.where(torch.isnan(x), torch.full_like(x, -math.inf), x)
    return torch.cummax(filled, dim=1).values, finite


def reach(half_width: float, n_sub: int) -> int:
    """Whole pixels a stroke of ``half_width`` can reach beyond its centre's pixel."""
    return int(math.ceil(half_width + 0.5 / n_sub))


def stroke_pad(half_width: float, n_sub: int) -> int:
    """Padding columns a canvas needs for :func:`add_stroke` with a margin of :func:`reach`."""
    return 2 * reach(half_width, n_sub) + 1


# --------------------------------------------------------------------------------------------
# Row-difference planes
# --------------------------------------------------------------------------------------------


_WORKSPACE = threading.local()


def workspace(name: str, shape: tuple[int, ...], dtype: torch.dtype,
              device: torch.device | str) -> torch.Tensor:
    """An uninitialised tensor reused across calls on this thread (per name, device, dtype).

    Big fresh allocations on CPU are page-faulted in on every call (glibc serves them with
    mmap), which costs more than the rendering itself; reusing one buffer avoids that. The
    tensor is only valid until the next call with the same name on this thread.
    """
    cache = getattr(_WORKSPACE, "buffers", None)
    if cache is None:
        cache = _WORKSPACE.buffers = {}
    numel = math.prod(shape)
    key = (name, str(torch.device(device)), dtype)
    buf = cache.get(key)
    if buf is None or buf.numel() < numel:
        buf = torch.empty(max(numel, 1), dtype=dtype, device=device)
        cache[key] = buf
    return buf[:numel].view(shape)


class DiffCanvas:
    """A stack of row-difference planes ``(plane, row, column)``, flat, with padding.

    Row and column indices given to :meth:`base` and used by the primitives are canvas
    coordinates; the padding around the canvas takes ink that spills over its edges (it is
    computed, then cropped), so that stamps need no per-entry clipping.

    Args:
        planes: number of planes (e.g. objects x layers).
        width: canvas width (pixels).
        height: canvas height (pixels).
        device: torch device.
        pad: extra columns on both sides.
        pad_rows: extra rows above and below (besides the two the cumsum needs).
    """

    def __init__(self, planes: int, width: int, height: int, device: torch.device | str,
                 pad: int = 0, pad_rows: int = 0):
        self.planes, self.width, self.height = planes, width, height
        self.pad, self.pad_rows = pad, pad_rows
        self.cols = width + 2 * pad
        self.rows = height + 2 + 2 * pad_rows
        self.size = planes * self.cols * self.rows
        # a spare plane after the last one takes stamps that must not show (``park``)
        self.buffer = workspace("canvas", (self.size + self.rows * self.cols,), torch.int32,
                                device).zero_()

    @property
    def park(self) -> int:
        """Index of the spare plane, where :meth:`base` places ink that must not show."""
        return self.planes

    def base(self, plane: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Flat index of canvas row 0 of ``(plane, col)``, ``col`` in ``[-pad, width + pad)``."""
        return plane * (self.rows * self.cols) + (self.pad_rows * self.cols + self.pad) + col

    def add(self, index: torch.Tensor, values: torch.Tensor) -> None:
        """Scatter-add int32 ``values`` at flat ``index`` (same number of elements)."""
        self.buffer.scatter_add_(0, index.reshape(-1), values.reshape(-1))

    def resolve(self, full: bool = False) -> torch.Tensor:
        """Cumulative sum along the rows, in place: (planes, height, width) int32 view.

        Args:
            full: return the whole padded planes (contiguous); :meth:`crop` cuts them.

        The view shares memory with a per-thread workspace: use it before the next canvas.
        """
        buf = self.buffer[: self.size].view(self.planes, self.rows, self.cols)  # (P, rows, cols)
        buf.cumsum_(1)
        return buf if full else self.crop(buf)

    def crop(self, planes: torch.Tensor) -> torch.Tensor:
        """The canvas pixels of full planes (..., rows, cols) from ``resolve(full=True)``."""
        r0, c0 = self.pad_rows, self.pad
        return planes[..., r0 : r0 + self.height, c0 : c0 + self.width]


class _Spans:
    """Rows and covered fractions of vertical intervals ``[lo, hi]`` clipped to the canvas.

    Rows are kept as flat offsets (``row * stride``). After a cumsum along the rows, four
    entries per interval reproduce any profile that is ``v(c)`` in the rows it covers by a
    fraction ``c``: partial first and last rows, full rows between them (:meth:`values`).
    Entries are laid out ``(..., 2, 2)``: the first row and the one after it, the last row and
    the one after it.
    """

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor, height: int, stride: int):
        lo = lo.clamp(0, height)  # also maps the +-inf of empty intervals into the canvas
        hi = hi.clamp(0, height)
        self.drawn = hi > lo
        fl_lo, fl_hi = lo.floor(), hi.floor()
        self.single = fl_hi == fl_lo
        self.c0 = torch.where(self.single, hi, fl_lo + 1).sub_(lo)
        self.c1 = hi.sub_(fl_hi)
        rows = torch.stack([fl_lo, fl_hi], -1).long().mul_(stride)  # (..., 2)
        self.rows = rows.unsqueeze(-1) + torch.tensor([0, stride], device=lo.device)

    def values(self, value_of: Callable[[torch.Tensor], torch.Tensor],
               full: torch.Tensor, expand: bool = False) -> torch.Tensor:
        """int32 entries ``(..., [T,] 2, 2)`` for ``value_of(fraction)`` and its full value.

        With ``expand``, a trailing target axis ``T`` (from ``value_of``/``full``
        broadcasting) is inserted before the entry axes.
        """
        c0, c1, single, drawn = self.c0, self.c1, self.single, self.drawn
        if expand:
            c0, c1 = c0.unsqueeze(-1), c1.unsqueeze(-1)
            single, drawn = single.unsqueeze(-1), drawn.unsqueeze(-1)
        p0 = value_of(c0).mul_(drawn)
        p1 = torch.where(single, p0, value_of(c1).mul_(drawn))
        mid = torch.where(single, p0, full * drawn)
        # (..., [T,] 2, 2): first row, the row after it; last row, the row after it
        return torch.stack([p0, mid - p0, p1 - mid, -p1], -1).unflatten(-1, (2, 2))


def to_uint8_(values: torch.Tensor, out: torch.Tensor, offset_added: bool = False) -> None:
    """Round float ``values`` in [0, 255] into uint8 ``out``; ``values`` is overwritten.

    Adding 2**23 leaves the rounded integer in the low mantissa bits (exact for |v| < 2**22),
    which is several times faster on CPU than torch's float -> uint8 cast.

    Args:
        values: float32 tensor, contiguous.
        out: uint8 tensor of the same shape.
        offset_added: ``values`` already include the 2**23 offset.
    """
    if not offset_added:
        values.add_(8388608.0)
    ints = values.view(torch.int32)
    ints.sub_(0x4B000000)
    out.copy_(ints)


def fixed(values: torch.Tensor, scale: float) -> torch.Tensor:
    """Round ``values * scale`` to int32 (fixed point)."""
    return torch.round(values * scale).to(torch.int32)


def tau_bits(alpha: torch.Tensor | float, coverage: torch.Tensor | float) -> torch.Tensor:
    """Optical depth in bits of an element of ``alpha`` covering a fraction of a pixel."""
    t = 1 - torch.as_tensor(alpha) * coverage
    return -torch.log2(torch.as_tensor(t).clamp_min(_T_MIN))


# --------------------------------------------------------------------------------------------
# Polylines
# --------------------------------------------------------------------------------------------


def centerline_hulls(
    x: torch.Tensor,
    y: torch.Tensor,
    valid: torch.Tensor,
    *,
    n_cols: int,
    n_sub: int,
    margin: int,
    travel: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Vertical extent of a polyline's centre line in every sub-column.

    Consecutive valid points are joined; an invalid point breaks the line (a gap), and a valid
    point with no valid neighbour draws nothing (as in matplotlib). The extent is exact for a
    polyline: within a sub-column its extremes lie at vertices or on the sub-column's borders.

    Args:
        x: (R, N) abscissae in pixels, non-decreasing along each row (see :func:`monotone_x`).
        y: (R, N) ordinates in pixels (rows, downwards).
        valid: (R, N) points that may be drawn.
        n_cols: canvas width in pixels.
        n_sub: sub-columns per pixel.
        margin: extra pixels on both sides (strokes there can still reach the canvas).
        travel: also return the vertical distance travelled inside each sub-column by the
            segments that start and end in it (how often a dense zig-zag crosses its hull).

    Returns:
        ``(lo, hi)`` or ``(lo, hi, travel)``, each (R, (n_cols + 2 * margin) * n_sub): top and
        bottom of the centre line in each sub-column, sub-column ``margin * n_sub`` being the
        canvas' first (``+inf``/``-inf`` where the line does not pass).
    """
    R, N = x.shape
    dev, dt = x.device, y.dtype
    S = (n_cols + 2 * margin) * n_sub
    xs = torch.add(x, margin).mul_(n_sub)  # (R, N) in sub-column units, margin included

    seg = valid[:, :-1] & valid[:, 1:]  # (R, N-1) drawable segments
    seg_pad = torch.nn.functional.pad(seg, (1, 1))
    draw = valid & (seg_pad[:, :-1] | seg_pad[:, 1:])  # (R, N) points on a drawn segment

    # Vertices: min/max of y per sub-column (scatter min/max is deterministic). Each row has
    # S + 2 slots: sub-columns -1 and S collect what lies off the canvas; one more slot at the
    # very end collects what is not drawn.
    stride = S + 2
    dump = R * stride
    xb = xs.floor().clamp_(-1, S)  # NaN/inf only where not drawn
    base = (torch.arange(R, device=dev) * stride + 1).unsqueeze(1)
    slot = torch.where(draw, xb.long() + base, dump)  # (R, N)
    flat = slot.reshape(-1)  # (R*N,)
    yv = y.reshape(-1)
    lo = torch.full((dump + 1,), math.inf, device=dev, dtype=dt)
    hi = torch.full((dump + 1,), -math.inf, device=dev, dtype=dt)
    lo.scatter_reduce_(0, flat, yv, "amin")
    hi.scatter_reduce_(0, flat, yv, "amax")
    lo = lo[:-1].view(R, stride)[:, 1:-1]  # (R, S)
    hi = hi[:-1].view(R, stride)[:, 1:-1]  # (R, S)

    # Sub-column borders: the segment crossing each one gives the centre line's height there.
    if N >= 2:
        bx = torch.arange(S + 1, device=dev, dtype=xs.dtype).expand(R, S + 1).contiguous()
        k = torch.searchsorted(xs.contiguous(), bx, right=True).sub_(1)  # (R, S+1) segment
        kc = k.clamp(0, N - 2)
        ok = (k == kc) & seg.gather(1, kc)
        x0, x1 = xs.gather(1, kc), xs.gather(1, kc + 1)
        y0, y1 = y.gather(1, kc), y.gather(1, kc + 1)
        yb = torch.lerp(y0, y1, ((bx - x0) / (x1 - x0)).clamp_(0, 1))  # (R, S+1)
        yb_lo = torch.where(ok, yb, math.inf)
        yb_hi = torch.where(ok, yb, -math.inf)
        lo = torch.minimum(lo, torch.minimum(yb_lo[:, :-1], yb_lo[:, 1:]))
        hi = torch.maximum(hi, torch.maximum(yb_hi[:, :-1], yb_hi[:, 1:]))
    if not travel:
        return lo, hi
    # Vertical distance the centre line travels inside each sub-column, from the segments
    # that lie in one sub-column or cross into the next (those of a dense, zig-zagging line);
    # a crossing segment is split at the border.
    dist = torch.zeros(dump + 1, device=dev, dtype=dt)
    if N >= 2:
        b0, b1 = xb[:, :-1], xb[:, 1:]
        step = b1 - b0
        short = seg & (step <= 1)
        d = (y[:, 1:] - y[:, :-1]).abs_()
        left = torch.where(step > 0, (b1 - xs[:, :-1]) / (xs[:, 1:] - xs[:, :-1]), 1.0)
        left = left.clamp_(0, 1).mul_(d)
        dist.scatter_add_(0, torch.where(short, slot[:, :-1], dump).reshape(-1),
                          left.reshape(-1))
        dist.scatter_add_(0, torch.where(short & (step > 0), slot[:, 1:], dump).reshape(-1),
                          (d - left).reshape(-1))
    return lo, hi, dist[:-1].view(R, stride)[:, 1:-1]  # (R, S) each


@functools.lru_cache(maxsize=64)
def _spread_table(half_width: float, n_sub: int) -> tuple[tuple[int, int, float], ...]:
    """Spread of a stroke centred in each sub-column over pixel columns.

    Returns:
        ``(p, dc, weight)``: overlap of ``[x - hw, x + hw]``, ``x`` the middle of sub-column
        ``p``, with the pixel ``dc`` columns away.
    """
    out = []
    for p in range(n_sub):
        xc = (p + 0.5) / n_sub
        lo, hi = xc - half_width, xc + half_width
        for dc in range(int(math.floor(lo)), int(math.ceil(hi))):
            w = min(hi, dc + 1) - max(lo, dc)
            if w > 1e-9:
                out.append((p, dc, w))
    return tuple(out)


def add_stroke(canvas: DiffCanvas, plane: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, *,
               n_sub: int, margin: int, half_width: float,
               travel: torch.Tensor | None = None, max_density: float = 8.0) -> None:
    """Draw an opaque stroked line from its sub-column hulls, additively, as Agg does.

    Agg sums the coverage of overlapping parts of one stroke outline before clipping it to a
    full pixel, so a dense zig-zag saturates to solid ink while a single line keeps its exact
    area. Each sub-column hull is weighted by how many times the line crosses it (``travel``
    over its height) and thickened by half a sub-column above and below (the area of a
    flat stroke; less for a sloped one, so that a straight line keeps the area of its
    stroke), by up to half the line width where it sticks out above (below) both
    neighbours (the round join of a turn), and added to the pixel columns the stroke reaches
    with the weights of its horizontal overlap. Clip the resolved coverage at
    :data:`COVERAGE_ONE`.

    Args:
        canvas: target, with at least ``margin`` padding columns.
        plane: (R,) plane of each polyline.
        lo: (R, S) hull tops from :func:`centerline_hulls`.
        hi: (R, S) hull bottoms.
        n_sub: sub-columns per pixel.
        margin: pixels of margin on each side of ``lo``/``hi``.
        half_width: stroke half width, pixels.
        travel: (R, S) vertical distance the line travels in each sub-column (from
            :func:`centerline_hulls`); None counts every hull once.
        max_density: cap on the number of crossings a hull counts for.
    """
    R, S = lo.shape
    dev, dt = lo.device, lo.dtype
    step = 1.0 / n_sub
    cap = max(half_width - 0.5 * step, 0.0)
    pad = torch.nn.functional.pad
    lo_n = pad(lo, (1, 1), value=math.inf)
    hi_n = pad(hi, (1, 1), value=-math.inf)
    # how far the hull sticks out above / below both neighbours
    up = torch.minimum(lo_n[:, :-2], lo_n[:, 2:]).sub_(lo).clamp_(0, cap)
    down = torch.sub(hi, torch.maximum(hi_n[:, :-2], hi_n[:, 2:])).clamp_(0, cap)
    # A straight piece of height h across a sub-column of width d has length sqrt(h^2 + d^2):
    # thicken the hull so that its area (times the stroke width) matches.
    height = (hi - lo).clamp_min_(0)
    ext = torch.hypot(height, torch.tensor(step, device=dev, dtype=dt)).sub_(height).mul_(0.5)
    top = (lo - ext).sub_(up)
    bottom = (hi + ext).add_(down)
    density = None
    if travel is not None:
        # a hull crossed k times carries k strokes' worth of (summed) coverage
        density = (travel / height.clamp_min_(1e-3)).clamp_(1.0, max_density)

    table = _spread_table(half_width, n_sub)
    p_idx = torch.tensor([p for p, _, _ in table], device=dev)
    dcs = torch.tensor([dc for _, dc, _ in table], device=dev)
    weight = torch.tensor([w for _, _, w in table], device=dev, dtype=dt) * COVERAGE_ONE
    n_pix = S // n_sub
    # (R, n_pix, Q): every (sub-column, target pixel) pair of the table, for each pixel
    top_q = top.view(R, n_pix, n_sub)[:, :, p_idx]
    bot_q = bottom.view(R, n_pix, n_sub)[:, :, p_idx]
    spans = _Spans(top_q, bot_q, canvas.height, canvas.cols)
    if density is not None:
        weight = weight * density.view(R, n_pix, n_sub)[:, :, p_idx]
    values = spans.values(lambda c: fixed(c * weight, 1.0), fixed(weight, 1.0))
    col = torch.arange(n_pix, device=dev).view(n_pix, 1) - margin + dcs  # (n_pix, Q)
    base = canvas.base(plane.view(R, 1, 1), col)  # (R, n_pix, Q)
    canvas.add(base[..., None, None] + spans.rows, values)


@functools.lru_cache(maxsize=64)
def _brush(half_width: float, n_sub: int) -> tuple[tuple[int, float], ...]:
    """Sub-column offsets and vertical half extents of a disk of ``half_width`` pixels."""
    m_max = int(math.floor(half_width * n_sub + 1e-9))
    return tuple((m, math.sqrt(max(half_width**2 - (m / n_sub) ** 2, 0.0)))
                 for m in range(-m_max, m_max + 1))


def dilate_hulls(lo: torch.Tensor, hi: torch.Tensor, *, n_sub: int, margin: int,
                 half_width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ink extent of a stroke in each canvas sub-column: centre-line hulls widened by a disk.

    Args:
        lo: (R, S) hull tops from :func:`centerline_hulls` (``margin`` pixels each side).
        hi: (R, S) hull bottoms.
        n_sub: sub-columns per pixel.
        margin: pixels of margin in ``lo``/``hi`` (at least the brush's reach).
        half_width: stroke half width, pixels.

    Returns:
        ``(top, bottom)``, each (R, S - 2 * margin * n_sub), the canvas sub-columns only.
    """
    S = lo.shape[1]
    m0 = margin * n_sub
    top = bottom = None
    for m, h in _brush(half_width, n_sub):
        a = lo[:, m0 + m : S - m0 + m] - h
        b = hi[:, m0 + m : S - m0 + m] + h
        top = a if top is None else torch.minimum(top, a)
        bottom = b if bottom is None else torch.maximum(bottom, b)
    return top, bottom


def add_translucent_spans(canvas: DiffCanvas, plane: torch.Tensor, top: torch.Tensor,
                          bottom: torch.Tensor, *, n_sub: int, alpha: float) -> None:
    """Add the optical depth of per-sub-column ink intervals (R, W * n_sub) of one path.

    Each sub-column contributes ``-log2(1 - alpha * c) / n_sub`` for its covered fraction
    ``c``: exact where whole pixels are covered, a close approximation of Agg's
    ``1 - alpha * coverage`` on the anti-aliased edges.
    """
    R, S = top.shape
    dev = top.device
    spans = _Spans(top, bottom, canvas.height, canvas.cols)
    scale = TAU_ONE / n_sub

    def value_of(c: torch.Tensor) -> torch.Tensor:
        return fixed(tau_bits(alpha, c), scale)

    full = fixed(tau_bits(alpha, torch.ones((), device=dev)), scale)
    values = spans.values(value_of, full)
    col = torch.div(torch.arange(S, device=dev), n_sub, rounding_mode="floor")
    base = canvas.base(plane.view(R, 1), col.view(1, S))  # (R, S)
    canvas.add(base[..., None, None] + spans.rows, values)


# --------------------------------------------------------------------------------------------
# Markers and error bars
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _marker_stamp(radius: float, edge_width: float, alpha: float, samples: int = 16):
    """Sparse row-differenced optical-depth stamp of a filled, edged circle marker.

    Agg draws a marker at whole-pixel positions: centred on the middle of pixel
    ``floor(x + 0.5)``. The fill disk and the edge ring are composited one after the other,
    each with ``alpha``, as ``draw_markers`` does, so the ring's inner half (over the fill)
    is darker.

    Returns:
        ``(dcol, drow, value)`` int tuples: offsets from the centre pixel and fixed-point tau
        differences along the rows (zero entries dropped).
    """
    k = marker_reach(radius, edge_width)
    n = 2 * k + 1  # pixels -k .. k around the centre pixel
    s = samples
    pos = (torch.arange(n * s, dtype=torch.float64) + 0.5) / s - (k + 0.5)  # sample offsets
    yy, xx = torch.meshgrid(pos, pos, indexing="ij")
    d = torch.sqrt(xx * xx + yy * yy)
    fill = (d <= radius).double().view(n, s, n, s).mean((1, 3))  # (rows, cols) coverage
    if edge_width > 0:
        ring = ((d - radius).abs() <= edge_width / 2).double().view(n, s, n, s).mean((1, 3))
    else:
        ring = torch.zeros_like(fill)
    tau = fixed(tau_bits(alpha, fill) + tau_bits(alpha, ring), TAU_ONE).long()  # (rows, cols)
    diff = torch.cat([tau, torch.zeros(1, n, dtype=torch.int64)], 0)
    diff[1:] -= tau  # row differences, n + 1 rows
    dr, dc = torch.nonzero(diff, as_tuple=True)
    vals = diff[dr, dc]
    return tuple((dc - k).tolist()), tuple((dr - k).tolist()), tuple(vals.tolist())


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


def add_markers(canvas: DiffCanvas, plane: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                valid: torch.Tensor, *, radius: float, edge_width: float, alpha: float) -> None:
    """Stamp circle markers at (x, y) (R, N) pixels into ``plane`` (R,) of ``canvas``.

    The canvas needs :func:`marker_pad` padding rows and columns: stamps there are computed
    and cropped; markers that are not drawn go to the canvas' spare plane.
    """
    dc, dr, vals = _marker_stamp(radius, edge_width, alpha)
    if not dc:
        return
    dev = x.device
    k = marker_reach(radius, edge_width)
    R, N = x.shape
    cx = torch.where(valid, x, 0.0).add_(0.5).floor_()
    cy = torch.where(valid, y, 0.0).add_(0.5).floor_()
    keep = (valid & (cx >= k - canvas.pad) & (cx < canvas.width + canvas.pad - k)
            & (cy >= k - canvas.pad_rows) & (cy < canvas.height + canvas.pad_rows - k))
    cx = torch.where(keep, cx, canvas.width // 2).long()
    cy = torch.where(keep, cy, canvas.height // 2).long()
    plane = torch.where(keep, plane.view(-1, 1), canvas.park)
    centre = canvas.base(plane, cx).add_(cy * canvas.cols)  # (R, N)
    offsets = torch.tensor(dc, device=dev).add_(torch.tensor(dr, device=dev) * canvas.cols)
    K = offsets.numel()
    idx = workspace("marker_index", (R, N, K), torch.int64, dev)
    torch.add(centre.unsqueeze(-1), offsets, out=idx)  # (R, N, K)
    canvas.add(idx, _repeated(vals, R * N, dev))


def _repeated(values: tuple[int, ...], times: int, device: torch.device) -> torch.Tensor:
    """``values`` repeated ``times`` times (int32), cached per thread."""
    cache = getattr(_WORKSPACE, "repeated", None)
    if cache is None:
        cache = _WORKSPACE.repeated = {}
    key = (values, str(device))
    have = cache.get(key)
    n = times * len(values)
    if have is None or have.numel() < n:
        reps = max(times, 1024)
        have = torch.tensor(values, dtype=torch.int32, device=device).repeat(reps)
        cache[key] = have
    return have[:n]


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


def add_error_bars(canvas: DiffCanvas, plane: torch.Tensor, x: torch.Tensor,
                   y_top: torch.Tensor, y_bottom: torch.Tensor, valid: torch.Tensor, *,
                   width: float, alpha: float) -> None:
    """Vertical error bars from ``y_top`` to ``y_bottom`` at ``x`` (R, N), each composited alone.

    Positions and ends are snapped as Agg snaps rectilinear paths; caps are butt.
    """
    snap, cols, cover = _bar_columns(width)
    if not cols:
        return
    dev, dt = x.device, y_top.dtype
    cx = torch.where(valid, x, 0.0).add_(0.5).floor_()
    keep = valid & (cx >= -min(cols) - canvas.pad) & (cx < canvas.width + canvas.pad - max(cols))
    col = torch.where(keep, cx, 0.0).long().unsqueeze(-1)
    col = col + torch.tensor(cols, device=dev)  # (R, N, K)
    base = canvas.base(plane.view(-1, 1, 1), col)  # (R, N, K)
    top = torch.where(keep, y_top.add(0.5).floor_(), math.inf)
    bot = torch.where(keep, y_bottom.add(0.5).floor_(), -math.inf)
    cover_t = torch.tensor(cover, device=dev, dtype=dt)  # (K,)
    if snap == 0.0:
        # Even widths snap to pixel corners: whole rows only, one entry at each end per column.
        top, bot = top.clamp_(0, canvas.height), bot.clamp_(0, canvas.height)
        drawn = (bot > top).unsqueeze(-1)  # (R, N, 1)
        value = fixed(tau_bits(alpha * cover_t, 1.0), TAU_ONE) * drawn  # (R, N, K)
        rows = torch.stack([top, bot], -1).long().mul_(canvas.cols)  # (R, N, 2)
        idx = base.unsqueeze(-1) + rows.unsqueeze(-2)  # (R, N, K, 2)
        canvas.add(idx, torch.stack([value, -value], -1))
        return
    spans = _Spans(top + snap, bot + snap, canvas.height, canvas.cols)  # (R, N)

    def value_of(c: torch.Tensor) -> torch.Tensor:
        return fixed(tau_bits(alpha * cover_t, c), TAU_ONE)

    values = spans.values(value_of, value_of(torch.ones((), device=dev, dtype=dt)),
                          expand=True)  # (R, N, K, 2, 2)
    idx = base[..., None, None] + spans.rows.unsqueeze(-3)  # (R, N, K, 2, 2)
    canvas.add(idx, values.expand(idx.shape).contiguous())
