"""Compositing of rendered light-curve layers over a white background, into uint8 RGB.

The rasteriser (:mod:`astroray.render._raster`, :mod:`astroray.render._marks`) leaves, per
object, planes of optical depth in fixed point: one per band (grid layout) or two per band
(overlay: the error bars, then the line and markers). These functions turn them into
colours the way Agg composites them: each layer see-through with its transmittance, in
matplotlib's z-order, the result rounded to whole 8-bit values. The CPU path works in int16
fixed point (integers read out of float bit patterns); accelerators take a float32 path that
gives the same integers (``tests/render/test_lightcurves.py`` checks the two against each
other).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from astroray.render import _raster

__all__ = ["composite_grid", "composite_overlay"]

#: Adding this to a float in [-2**22, 2**22] leaves its rounded value in the low mantissa bits.
_ROUND = 8388608.0


def _channels(terms: list[tuple[torch.Tensor, list[float], int]], out: torch.Tensor) -> None:
    """``out`` (B, 3, H, W) uint8 = 255 * (base + sum_k E_k * w_k), in int16 fixed point.

    The result is white where nothing is drawn (the composites telescope so), which fixes
    ``base``, exactly, whatever the rounding of the weights.

    Args:
        terms: ``(Q, w, e)``: (B, H, W) float planes holding ``128 * E + _ROUND`` with ``E``
            in [-1, 1], their 3 colour weights and the value of ``E`` where nothing is drawn.
        out: the result.
    """
    dev = out.device
    n = out.shape[0]
    ws = [[round(255 * c) for c in w] for _, w, _ in terms]
    # biased by -2**14 so that neither the result nor its rounding errors wrap around int16
    bias = [(255 - sum(w[c] * e for w, (_, _, e) in zip(ws, terms, strict=True))) * 128 + 64
            - (1 << 14) for c in range(3)]
    if dev.type != "cpu" or not _INT16_CHANNELS:
        _channels_float(terms, ws, bias, out)
        return
    q = _raster.workspace("lc_q7", (len(terms),) + tuple(terms[0][0].shape), torch.int16, dev)
    for k, (Q, _, _) in enumerate(terms):
        q[k].copy_(Q.view(torch.int32))  # round(128 * E), from the low mantissa bits
    acc = _raster.workspace("lc_channels", tuple(out.shape), torch.int16, dev)
    acc.copy_(torch.tensor(bias, dtype=torch.int16, device=dev).view(1, 3, 1, 1).expand(
        n, 3, *out.shape[2:]))
    for k, w in enumerate(ws):
        acc.addcmul_(torch.tensor(w, dtype=torch.int16, device=dev).view(1, 3, 1, 1),
                     q[k].unsqueeze(1))
    acc.clamp_(-(1 << 14), 255 * 128 + 127 - (1 << 14)).add_(1 << 14)
    torch.bitwise_right_shift(acc, 7, out=out)


#: The int16 fixed-point path of :func:`_channels` (CPU only: it reads integers out of float
#: bit patterns, which is the fastest on CPU); accelerators take the float path, which gives
#: the same integers.
_INT16_CHANNELS = True


def _channels_float(terms: list[tuple[torch.Tensor, list[float], int]], ws: list[list[int]],
                    bias: list[int], out: torch.Tensor) -> None:
    """:func:`_channels` in float32 arithmetic.

    Every value is an integer below 2**24, so the result is the int16 path's, exactly.
    """
    dev = out.device
    acc = torch.tensor(bias, dtype=torch.float32, device=dev).view(1, 3, 1, 1).expand(
        out.shape[0], 3, *out.shape[2:]).clone()  # (B, 3, H, W)
    for (Q, _, _), w in zip(terms, ws, strict=True):
        q = (Q.float() - _ROUND).unsqueeze(1)  # round(128 * E): exact (Q = 128 E + 2**23)
        acc.addcmul_(torch.tensor(w, dtype=torch.float32, device=dev).view(1, 3, 1, 1), q)
    acc.clamp_(-(1 << 14), 255 * 128 + 127 - (1 << 14)).add_(1 << 14)
    out.copy_(torch.div(acc, 128, rounding_mode="floor").to(torch.uint8))


def composite_overlay(tau: torch.Tensor, colors: torch.Tensor, out: torch.Tensor) -> None:
    """Composite an overlay: the bars of every band, then the line and markers of every band.

    That is matplotlib's order (error bars at z-order 2, lines at 2.1); where a band's bars
    cross an earlier band's line or markers the order changes the colour, so the layers stay
    apart (one ``exp2`` each).

    Args:
        tau: (B, 2 * nb, H, W) resolved optical depths (fixed point): bars, then lines and
            markers, of each band.
        colors: (nb, 3) band colours.
        out: (B, 3, H, W) uint8 result.
    """
    E = _raster.workspace("lc_depth", tuple(tau.shape), torch.float32, tau.device)
    E.copy_(tau)
    rgb = colors.tolist()
    _composite_layers(E, rgb + rgb, out)


def _composite_layers(E: torch.Tensor, layer_colors: list[list[float]],
                      out: torch.Tensor) -> None:
    """Composite see-through layers of optical depth ``E`` (float, overwritten) over white.

    With transmittances ``T_l`` and colours ``c_l``, the result telescopes to
    ``c_last + sum_l E_l (c_{l-1} - c_l)`` where ``E_l = prod_{m >= l} T_m`` and ``c_{-1}``
    is white; a layer of the colour of the one below it drops out, and layers with the same
    colour step (up to its sign) share one term. One ``exp2`` per layer.

    Args:
        E: (B, L, H, W) optical depths of the layers, bottom first (fixed point, as floats).
        layer_colors: L colours.
        out: (B, 3, H, W) uint8 result.
    """
    L = E.shape[1]
    U = _raster.TAU_UNIT
    prev = [[1.0, 1.0, 1.0]] + layer_colors[:-1]
    diff = [tuple(p - c for p, c in zip(prev[i], layer_colors[i], strict=True))
            for i in range(L)]
    # group the layers by colour step (up to sign): sum_l E_l d_l = sum_g (sum +-E_l) d_g
    groups: dict[tuple[float, ...], list[tuple[int, float]]] = {}
    for layer, d in enumerate(diff):
        if not any(abs(v) > 1e-12 for v in d):
            continue
        neg = tuple(-v for v in d)
        if neg in groups:
            groups[neg].append((layer, -1.0))
        else:
            groups.setdefault(d, []).append((layer, 1.0))
    if not groups:
        out.fill_(255)
        return
    # 128 * E_l = 2 ** (7 - (sum of the depths from layer l up)): suffix sums, one exp2
    E[:, L - 1].sub_(7 * U)
    for layer in range(L - 2, -1, -1):
        E[:, layer].add_(E[:, layer + 1])
    E.mul_(-1.0 / U).exp2_()
    terms = []
    for d, members in groups.items():
        (first, sign), rest = members[0], members[1:]
        # the rounding offset goes in with the last member (added last, so rounding once)
        E[:, rest[-1][0] if rest else first].add_(_ROUND * (rest[-1][1] if rest else sign))
        plane = E[:, first]
        if sign < 0:
            plane.neg_()
        for layer, s in rest:
            plane.add_(E[:, layer], alpha=s)
        terms.append((plane, list(d), round(sum(s for _, s in members))))
    _channels(terms, out)


def composite_grid(tau: torch.Tensor, colors: torch.Tensor,
                   clips: Sequence[tuple[int, ...]], out: torch.Tensor) -> None:
    """One layer per band, each in its own panel: ``c + T (1 - c)`` over white.

    Args:
        tau: (B, nb, H, W) resolved optical depths (fixed point) of each band's layer.
        colors: (nb, 3) band colours.
        clips: per band, the panel's clip box (x, y, width, height) in pixels.
        out: (B, 3, H, W) uint8 result.
    """
    out.fill_(255)
    U = _raster.TAU_UNIT
    E = _raster.workspace("lc_depth", tuple(tau.shape), torch.float32, tau.device)
    E.copy_(tau)
    E.mul_(-1.0 / U).add_(7.0).exp2_().add_(_ROUND)  # 128 * T, rounding offset added
    rgb = colors.tolist()
    for b, (cx, cy, cw, ch) in enumerate(clips):
        if cw <= 0 or ch <= 0:
            continue
        region = out[:, :, cy : cy + ch, cx : cx + cw]
        tmp = _raster.workspace("lc_panel", (region.shape[0], 3, ch, cw), torch.uint8,
                                out.device)
        _channels([(E[:, b, :ch, :cw], [1.0 - c for c in rgb[b]], 1)], tmp)
        region.copy_(tmp)
