"""Batched anti-aliased rasterisation on packed integer canvases, in torch (private).

Everything here works on whole batches with tensor operations, on whatever device the inputs
are on, and is deterministic there too: ink is accumulated as *integers* (fixed point) with
``scatter_add_`` into row-difference planes and resolved by one ``cumsum`` along the rows, so
the order in which a GPU's atomics land cannot change a single bit. Several adjacent canvas
columns share one int64 (16- or 32-bit lanes, :class:`PackedCanvas`), so that the resolving
cumsum runs over a fraction of the elements.

Coordinates are Agg's: pixel ``(row r, column c)`` covers ``[c, c+1) x [r, r+1)``, rows grow
downwards. The primitives mirror what matplotlib's Agg backend draws for ``plot`` and
``errorbar``:

* polylines (``Line2D``): the exact vertical extent of the centre line in every sub-column
  (``n_sub`` per pixel; extremes of a polyline lie at vertices or on sub-column borders), then
  either *added* with the stroke's area (:func:`stroke_entries`, opaque thin lines: Agg sums
  the coverage of overlapping parts of one outline before clipping it, so dense zig-zags
  saturate) or widened by a disk brush and *united* (:func:`dilate_hulls` and
  :func:`translucent_entries`, translucent thick lines).
* error bars and markers: in :mod:`astroray.render._marks`, on the same canvases.

Ink is accumulated either as *coverage* (opaque lines: pixel = 255 * (1 - coverage)) or as
*optical depth* in 1/:data:`TAU_UNIT` bits, ``tau = -log2(T)`` of the transmittance ``T`` of
alpha-composited elements, which adds up over overlapping elements of one colour.

Hot loops avoid ``where``/``masked_fill``/``gather`` on large tensors (arithmetic masks and
``index_select`` are several times cheaper on CPU) and big fresh allocations (``workspace``).
"""

from __future__ import annotations

import functools
import math
import threading

import torch

#: Smallest transmittance of a single element (keeps tau finite for alpha = 1).
_T_MIN = 2.0**-16
#: Fixed-point unit of optical depth on packed canvases: 1/256 bit.
TAU_UNIT = 256


def monotone_x(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make abscissae sorted: NaNs filled by the running maximum.

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


def _ones(n: int, device: torch.device) -> torch.Tensor:
    """``n`` int64 ones (a cached tensor, per device)."""
    cache = getattr(_WORKSPACE, "ones", None)
    if cache is None:
        cache = _WORKSPACE.ones = {}
    key = str(device)
    have = cache.get(key)
    if have is None or have.numel() < n:
        have = torch.ones(max(n, 1 << 16), dtype=torch.int64, device=device)
        cache[key] = have
    return have[:n]



# --------------------------------------------------------------------------------------------
# Packed canvases
# --------------------------------------------------------------------------------------------

class PackedCanvas:
    """Row-difference planes with several adjacent columns packed in each int64.

    The int64 buffer is laid out ``(plane, row, group)``; element ``(p, r, g)`` holds canvas
    columns ``g * lanes + l`` (``lanes = 64 // lane_bits``) of row ``r`` in its ``lane_bits``
    wide lanes, lowest first (little-endian), so that viewing the buffer as ``lane_bits``
    integers gives ordinary row-major ``(plane, row, column)`` planes. Ink is scattered as
    ``value * 2**(lane_bits * lane)`` (exact integer arithmetic), and ONE cumsum of the int64
    buffer along the rows resolves every lane at once: the int64 prefix sum is
    ``sum_l F_l 2**(lane_bits * l)`` where ``F_l`` is lane ``l``'s own prefix sum, so the
    lanes read back exactly as long as every lane's prefix sums stay in
    ``[0, 2**(lane_bits - 1))`` (the caller bounds them). On CPU this packed cumsum is 3-4x
    cheaper than one over unpacked planes; on a GPU it is one coalesced pass either way.

    Args:
        planes: number of planes.
        width: canvas width (pixels).
        height: canvas height (pixels).
        device: torch device.
        lane_bits: 16 or 32.
        pad: padding columns on both sides (rounded up to whole groups).
        pad_rows: padding rows above and below (besides two spare rows at the bottom).
    """

    def __init__(self, planes: int, width: int, height: int, device: torch.device | str, *,
                 lane_bits: int = 16, pad: int = 0, pad_rows: int = 0):
        self.lane_bits = lane_bits
        self.lanes = 64 // lane_bits
        self.lane_dtype = torch.int16 if lane_bits == 16 else torch.int32
        self.planes, self.width, self.height = planes, width, height
        self.pad = -(-pad // self.lanes) * self.lanes
        self.pad_rows = pad_rows
        self.groups = -(-(width + 2 * self.pad) // self.lanes)
        self.cols = self.groups * self.lanes
        self.rows = height + 2 + 2 * pad_rows
        self.plane_size = self.groups * self.rows
        self.size = planes * self.plane_size
        # one spare plane after the last takes ink that must not show (see ``park``)
        self.buffer = workspace("packed", (self.size + self.plane_size,), torch.int64,
                                device).zero_()

    def clear(self) -> None:
        """Zero the planes (to draw the next ones)."""
        self.buffer.zero_()

    @property
    def park(self) -> int:
        """Index of the spare plane, for ink that must not show."""
        return self.planes

    def column_base(self, col: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat offset of canvas row 0 of canvas column ``col`` (in plane 0), and its lane.

        ``col`` must lie in ``[-pad, width + pad)``; one row further is ``groups`` further.
        """
        c = col + self.pad
        group = torch.div(c, self.lanes, rounding_mode="floor")
        return group + self.pad_rows * self.groups, c - group * self.lanes

    def lane_scale(self, lane: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``2 ** (lane_bits * lane)``: the factor that moves a value into its lane."""
        return torch.pow(2.0, lane.to(torch.float64) * self.lane_bits).to(dtype)

    def add(self, index: torch.Tensor, values: torch.Tensor) -> None:
        """Scatter-add int64 ``values`` (already moved into their lanes) at flat ``index``."""
        self.buffer.scatter_add_(0, index.reshape(-1), values.reshape(-1))

    def resolve(self) -> torch.Tensor:
        """Cumulative sum along the rows, in place: the (planes, rows, cols) lane view."""
        buf = self.buffer[: self.size].view(self.planes, self.rows, self.groups)
        buf.cumsum_(1)
        return buf.view(self.lane_dtype).view(self.planes, self.rows, self.cols)

    def crop(self, planes: torch.Tensor) -> torch.Tensor:
        """The canvas pixels of (..., rows, cols) planes from :meth:`resolve`."""
        return planes[..., self.pad_rows : self.pad_rows + self.height,
                      self.pad : self.pad + self.width]



# --------------------------------------------------------------------------------------------
# Polylines
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def spread_table(half_width: float, n_sub: int) -> tuple[tuple[int, int, float], ...]:
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


@functools.lru_cache(maxsize=32)
def _spread_targets(half_width: float, n_sub: int, margin: int, S: int, pad: int, lanes: int,
                    lane_bits: int, row0: int, device: torch.device
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (sub-column, target column) pair: source sub-column, weight, column offset, lane.

    Returns:
        ``(src, weight, base, scale)``, each (T,): the sub-column (index into S), the weight of
        its stroke in the target column, the target column's flat offset (``row0`` included)
        and ``2 ** (lane_bits * lane)`` of its lane.
    """
    src, weight, col = [], [], []
    for p, dc, w in spread_table(half_width, n_sub):
        for c in range(S // n_sub):
            src.append(c * n_sub + p)
            weight.append(w)
            col.append(c - margin + dc + pad)
    cols = torch.tensor(col)
    group, lane = cols // lanes, cols % lanes
    return (torch.tensor(src, device=device),
            torch.tensor(weight, dtype=torch.float32, device=device),
            (group + row0).to(device),
            torch.pow(2.0, (lane * lane_bits).double()).float().to(device))


def stroke_hulls(xs: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, n_sub_cols: int,
                 travel: bool = True) -> tuple[torch.Tensor, ...]:
    """Extent of the centre line and the distance it travels vertically, per sub-column.

    Works in the units of ``v`` (any affine image of the rows, e.g. flux: see
    :func:`rows_from_values`), so that the autoscale limits come out of the same pass. Written
    with arithmetic masks rather than ``where``/``masked_fill`` (several times slower on CPU).

    Args:
        xs: (R, N) abscissae in sub-column units (sub-column ``s`` is ``[s, s + 1)``),
            non-decreasing along each row.
        v: (R, N) ordinates.
        valid: (R, N) points that may be drawn.
        n_sub_cols: number of sub-columns S.
        travel: also measure the travel (else it comes back as None).

    Returns:
        ``(lo, hi, travel, vmin, vmax)``: (R, S) smallest and largest ``v`` of the centre
        line in each sub-column (``+inf``/``-inf`` where it does not pass) and the distance it
        travels along ``v`` there; (R,) smallest and largest ``v`` of all valid points, drawn
        or not, wherever they are (matplotlib's data limits).
    """
    R, N = xs.shape
    dev, dt = xs.device, v.dtype
    S = n_sub_cols
    stride = S + 2  # per row: slots 0 and S + 1 take what lies left / right of the sub-columns
    lo = torch.full((R * stride,), math.inf, device=dev, dtype=dt)
    hi = torch.full((R * stride,), -math.inf, device=dev, dtype=dt)
    validf = valid.to(dt)
    segf = validf[:, 1:] * validf[:, :-1]  # (R, N-1) 1 for drawable segments
    nodraw = torch.ones_like(validf)  # (R, N) 0 for points on a drawn segment
    nodraw[:, 1:] -= segf
    nodraw[:, :-1] -= segf
    nodraw.clamp_(min=0)
    xb = xs.floor().clamp_(-1, S)  # (R, N) sub-column of each point
    if R * stride < 1 << 24:  # exact in float32
        row = torch.arange(1, R * stride, stride, device=dev, dtype=dt).unsqueeze(1)
        slot = (xb + row).int().long().view(-1)
    else:
        row = torch.arange(1, R * stride, stride, device=dev).unsqueeze(1)
        slot = xb.long().add_(row).view(-1)
    # vertices: min/max of v per sub-column; points not drawn (or invalid, maybe NaN) are
    # pushed out of reach arithmetically
    vf = v.nan_to_num(0.0, 0.0, 0.0)
    big = nodraw.mul_(torch.finfo(dt).max)
    lo.scatter_reduce_(0, slot, (vf + big).view(-1), "amin")
    hi.scatter_reduce_(0, slot, (vf - big).view(-1), "amax")
    lo = lo.view(R, stride)
    hi = hi.view(R, stride)
    vmin, vmax = lo.amin(1), hi.amax(1)
    lone = validf.mul_(big)  # valid points with no valid neighbour count for the limits only
    if lone.numel() and bool(lone.view(-1).max() > 0):
        lone = lone > 0
        vmin = torch.minimum(vmin, torch.where(lone, v, math.inf).amin(1))
        vmax = torch.maximum(vmax, torch.where(lone, v, -math.inf).amax(1))
    lo, hi = lo[:, 1 : S + 1], hi[:, 1 : S + 1]  # (slots of undrawn points only: +-max)
    if N < 2:
        return lo, hi, torch.zeros_like(lo), vmin, vmax
    # Sub-column borders: the segment crossing border b starts at the last point left of it,
    # k(b) = #{xs < b} - 1, counted per slot and summed up (cheaper than a binary search).
    count = torch.zeros(R * stride, dtype=torch.int64, device=dev)
    count.scatter_add_(0, slot, _ones(R * N, dev))
    k = count.view(R, stride).cumsum_(1)[:, : S + 1].sub_(1)  # (R, S+1)
    kc = k.clamp(0, N - 2)
    okf = (k == kc).to(dt)
    ks = kc + torch.arange(0, R * (N - 1), N - 1, device=dev).unsqueeze(1)  # flat, (R, N-1)
    kf = kc.add_(torch.arange(0, R * N, N, device=dev).unsqueeze(1)).view(-1)  # flat, (R, N)
    ks = ks.view(-1)
    okf.mul_(_take(segf, ks, (R, S + 1)))
    x0, x1 = _take(xs, kf, (R, S + 1)), _take(xs, kf + 1, (R, S + 1))
    v0, v1 = _take(vf, kf, (R, S + 1)), _take(vf, kf + 1, (R, S + 1))
    bx = torch.arange(S + 1, device=dev, dtype=xs.dtype)
    t = (bx - x0).div_(x1.sub_(x0)).nan_to_num_(0.0).clamp_(0, 1)  # (R, S+1)
    vb = torch.lerp(v0, v1, t)  # the centre line at each border
    off = okf.sub_(1).mul_(-torch.finfo(dt).max)  # 0 where a segment crosses, else max
    vb_lo, vb_hi = vb + off, vb - off
    lo = torch.minimum(lo, torch.minimum(vb_lo[:, :-1], vb_lo[:, 1:]))
    hi = torch.maximum(hi, torch.maximum(vb_hi[:, :-1], vb_hi[:, 1:]))
    if not travel:
        return lo, hi, None, vmin, vmax
    # Travel: a running sum of |dv| along the line, read at the borders. Only segments within
    # a sub-column or crossing into the next count (those of a dense zig-zag): a long segment
    # is a single crossing wherever it passes.
    short = (2 - (xb[:, 1:] - xb[:, :-1])).clamp_(0, 1).mul_(segf)
    dist = (vf[:, 1:] - vf[:, :-1]).abs_().mul_(short).double()  # (R, N-1)
    run = dist.cumsum(1)  # (R, N-1) travel up to the end of segment i
    d = _take(dist, ks, (R, S + 1))
    at = _take(run, ks, (R, S + 1)).sub_(d.mul_(t.double().sub_(1).neg_()))  # at borders
    return lo, hi, (at[:, 1:] - at[:, :-1]).to(dt), vmin, vmax


def _take(x: torch.Tensor, flat: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``x.view(-1)[flat]`` as ``shape`` (``index_select``: cheaper than ``gather`` on CPU)."""
    return x.reshape(-1).index_select(0, flat).view(shape)


def rows_from_values(lo: torch.Tensor, hi: torch.Tensor, travel: torch.Tensor,
                     top: torch.Tensor, scale: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Map hulls from value units to rows: ``row = (top - value) * scale``, ``scale > 0``.

    ``top`` and ``scale`` are (R,); empty hulls (``lo > hi``) stay empty.
    """
    top, scale = top.unsqueeze(1), scale.unsqueeze(1)
    return (top - hi).mul_(scale), (top - lo).mul_(scale), travel * scale


def stroke_entries(lo: torch.Tensor, hi: torch.Tensor, travel: torch.Tensor, canvas: PackedCanvas,
                   *, n_sub: int, margin: int, half_width: float, unit: float,
                   max_density: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-difference entries of opaque stroked lines (one per plane), from sub-column hulls.

    Agg sums the coverage of overlapping parts of one stroke outline before clipping it to a
    full pixel, so a dense zig-zag saturates to solid ink while a single line keeps its exact
    area. Each sub-column hull is weighted by how many times the line crosses it (``travel``
    over its height, at most ``max_density``) and thickened by half a sub-column above and
    below (the area of a flat stroke; less for a sloped one, so that a straight line keeps
    the area of its stroke), by up to half the line width where it sticks out above (below)
    both neighbours (the round join of a turn), and added to the pixel columns the stroke
    reaches with the weights of its horizontal overlap (:func:`spread_table`).

    Args:
        lo: (R, S) hull tops from :func:`stroke_hulls` (``margin`` pixels each side).
        hi: (R, S) hull bottoms.
        travel: (R, S) vertical distance travelled in each sub-column.
        canvas: the canvas geometry; polyline ``r`` goes to plane ``r % canvas.planes``.
        n_sub: sub-columns per pixel.
        margin: pixels of margin on each side of ``lo``/``hi``.
        half_width: stroke half width, pixels.
        unit: coverage of a fully covered pixel (fixed point).
        max_density: cap on the number of crossings a hull counts for.

    Returns:
        ``(index, value)``, each (R, E) int64: flat canvas offsets and values already moved
        into their lanes; the entries of polyline ``r`` lie in plane ``r % canvas.planes``.
    """
    R, S = lo.shape
    dev, dt = lo.device, lo.dtype
    step = 1.0 / n_sub
    cap = max(half_width - 0.5 * step, 0.0)
    H = canvas.height
    far = 4.0 * H + 4  # beyond the canvas, hulls only need to stay beyond it
    lo = lo.clamp(-far, far)  # an empty hull (lo > hi) becomes (far, -far)
    hi = hi.clamp(-far, far)
    pad = torch.nn.functional.pad
    lo_n = pad(lo, (1, 1), value=far)
    hi_n = pad(hi, (1, 1), value=-far)
    up = torch.minimum(lo_n[:, :-2], lo_n[:, 2:]).sub_(lo).clamp_(0, cap)
    down = torch.sub(hi, torch.maximum(hi_n[:, :-2], hi_n[:, 2:])).clamp_(0, cap)
    height = (hi - lo).clamp_min_(0)
    ext = torch.hypot(height, torch.tensor(step, device=dev, dtype=dt)).sub_(height).mul_(0.5)
    top = (lo - ext).sub_(up).clamp_(0, H)
    bottom = torch.maximum((hi + ext).add_(down).clamp_(0, H), top)  # empty: bottom = top
    density = (travel / height.clamp_min_(1e-3)).clamp_(1.0, max_density).mul_(unit)
    # per sub-column: covered fractions of the first row, the rows between, the last row (a
    # span within one row covers bottom - top of it, and the three are equal)
    fl_top, fl_bot = top.floor(), bottom.floor()
    frac = torch.empty((3, R, S), device=dev, dtype=dt)
    torch.minimum(fl_top + 1, bottom, out=frac[0]).sub_(top)
    torch.sub(fl_bot, fl_top, out=frac[1]).clamp_(max=1).mul_(1 - frac[0]).add_(frac[0])
    torch.sub(bottom, torch.maximum(fl_bot, top), out=frac[2])
    frac.mul_(density)
    # flat offsets of the first and the last row, but for the column: (2, R, S)
    G = canvas.groups
    plane = torch.arange(R, device=dev).remainder_(canvas.planes).mul_(canvas.plane_size)
    rows = torch.stack([fl_top, fl_bot]).long().mul_(G).add_(plane.unsqueeze(1))
    # every (sub-column, target column) pair of the spread: (T,) tables
    src, weight, base, scale = _spread_targets(half_width, n_sub, margin, S, canvas.pad,
                                               canvas.lanes, canvas.lane_bits,
                                               canvas.pad_rows * G, dev)
    T = src.numel()
    # entries p0, mid - p0, p1 - mid, -p1, rounded before being moved into their lanes: they
    # sum to zero, so nothing leaks below the span
    v = frac.index_select(2, src).mul_(weight).round_()  # (3, R, T)
    ent = torch.empty((R, 4, T), dtype=dt, device=dev)
    ent[:, 0] = v[0]
    torch.sub(v[1], v[0], out=ent[:, 1])
    torch.sub(v[2], v[1], out=ent[:, 2])
    torch.neg(v[2], out=ent[:, 3])
    ent.mul_(scale)
    r = rows.index_select(2, src).add_(base)  # (2, R, T)
    idx = torch.empty((R, 4, T), dtype=torch.int64, device=dev)
    idx[:, 0] = r[0]
    torch.add(r[0], G, out=idx[:, 1])
    idx[:, 2] = r[1]
    torch.add(r[1], G, out=idx[:, 3])
    return idx.view(R, 4 * T), ent.view(R, 4 * T).long()


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
        lo: (R, S) hull tops from :func:`stroke_hulls` (``margin`` pixels each side).
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


def _tau(alpha: float, coverage: torch.Tensor | float) -> torch.Tensor:
    """Optical depth in bits, ``-log2(1 - alpha * coverage)``, at most 16 bits."""
    t = 1 - alpha * torch.as_tensor(coverage)
    return -torch.log2(t.clamp_min(_T_MIN))


def _lane_values(values: torch.Tensor, lane: torch.Tensor, canvas: PackedCanvas) -> torch.Tensor:
    """int64 ``values * 2**(lane_bits * lane)`` (values are integers held in floats)."""
    return values.long().mul_(canvas.lane_scale(lane, torch.float64).long())


def translucent_entries(canvas: PackedCanvas, plane: torch.Tensor, top: torch.Tensor,
                        bottom: torch.Tensor, *, n_sub: int, alpha: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Entries of the optical depth of per-sub-column ink intervals (R, W * n_sub) of a path.

    Each sub-column contributes ``-log2(1 - alpha * c) / n_sub`` for its covered fraction
    ``c``: exact where whole pixels are covered, a close approximation of Agg's
    ``1 - alpha * coverage`` on the anti-aliased edges.
    """
    R, S = top.shape
    dev = top.device
    H, G = canvas.height, canvas.groups
    t = top.clamp(0, H)
    b = torch.maximum(bottom.clamp(0, H), t)  # empty: b = t
    fl_t, fl_b = t.floor(), b.floor()
    scale = TAU_UNIT / n_sub
    p0 = _tau(alpha, torch.minimum(fl_t + 1, b).sub_(t)).mul_(scale).round_()
    p1 = _tau(alpha, b.sub_(torch.maximum(fl_b, t))).mul_(scale).round_()
    full = round(_tau(alpha, 1.0).item() * scale)
    mid = (fl_b - fl_t).clamp_(0, 1).mul_(full - p0).add_(p0)  # a span in one row: all equal
    v = torch.stack([p0, mid - p0, p1 - mid, -p1], 1)  # (R, 4, S)
    col = torch.div(torch.arange(S, device=dev), n_sub, rounding_mode="floor")
    base, lane = canvas.column_base(col)  # (S,)
    v = _lane_values(v, lane, canvas)
    base = base + (plane * canvas.plane_size).view(R, 1)  # (R, S)
    r0, r1 = fl_t.long().mul_(G).add_(base), fl_b.long().mul_(G).add_(base)
    idx = torch.stack([r0, r0 + G, r1, r1 + G], 1)
    return idx.view(-1), v.view(-1)
