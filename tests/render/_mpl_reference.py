"""The papers' plots, drawn with matplotlib one figure at a time: the reference images.

These functions are what the papers' code does (a figure per object, Agg canvas, axes off and
filling the figure); the renderer in :mod:`astroray.render` must reproduce their pixels closely.
They draw on a bare ``Figure`` + ``FigureCanvasAgg`` (no pyplot state), which gives the same
pixels as ``plt.savefig`` at the figure's dpi and is a little faster, so the speed baseline in
``benchmarks/render.py`` is not handicapped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SPECTRUM_X_RANGE = (3536.7, 10413.6)


def _canvas_rgb(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _figure(width: int, height: int, dpi: float) -> Figure:
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def spectrum_image(
    wavelength: np.ndarray,
    flux: np.ndarray,
    good: np.ndarray | None = None,
    *,
    width: int = 224,
    height: int = 224,
    dpi: float = 100.0,
    linewidth: float = 0.5,
    x_range: tuple[float, float] = SPECTRUM_X_RANGE,
    y_margin: float = 0.05,
    y_limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """The ViT paper's spectrum plot: black 0.5 pt line, fixed x range, y autoscaled.

    Bad pixels (``good`` False) are NaN, so matplotlib leaves gaps. The y axis is matplotlib's
    autoscale of the plotted data with ``y_margin`` (its default, 0.05).

    Returns:
        (H, W) uint8 grey image (the R channel; the plot is black on white).
    """
    f = np.asarray(flux, dtype=np.float64).copy()
    if good is not None:
        f[~np.asarray(good, dtype=bool)] = np.nan
    fig = _figure(width, height, dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    ax.margins(x=0.05, y=y_margin)
    ax.plot(np.asarray(wavelength, dtype=np.float64), f, color="black", linewidth=linewidth)
    ax.set_xlim(*x_range)
    if y_limits is not None:
        ax.set_ylim(*y_limits)
    return _canvas_rgb(fig)[..., 0]


def split_spectrum_image(
    wavelength: np.ndarray,
    flux: np.ndarray,
    good: np.ndarray | None,
    segments: Sequence[tuple[float, float]],
    *,
    width: int = 224,
    height: int = 224,
    dpi: float = 100.0,
    linewidth: float = 0.5,
    y_margin: float = 0.05,
) -> np.ndarray:
    """Overlap split: segment ``k`` drawn over the full width in channel ``k``.

    Each segment's y limits are the min/max of the good pixels inside it plus ``y_margin``.

    Returns:
        (H, W, 3) uint8.
    """
    w = np.asarray(wavelength, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    g = np.ones(w.shape, bool) if good is None else np.asarray(good, bool)
    channels = []
    for lo, hi in segments:
        inside = g & (w >= lo) & (w <= hi)
        limits = None
        if inside.any():
            vmin, vmax = f[inside].min(), f[inside].max()
            pad = (vmax - vmin) * y_margin if vmax > vmin else 1.0
            limits = (vmin - pad, vmax + pad)
        channels.append(spectrum_image(w, f, g, width=width, height=height, dpi=dpi,
                                       linewidth=linewidth, x_range=(lo, hi),
                                       y_margin=y_margin, y_limits=limits))
    return np.stack(channels, -1)


def _minmax(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    return lo, (hi - lo if hi > lo else math.nan)


def light_curve_image(
    bands: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray] | None],
    *,
    magnitude: bool = True,
    layout: str = "overlay",
    grid_shape: tuple[int, int] | None = None,
    colors: Sequence[str] | None = None,
    width: int = 256,
    height: int = 256,
    dpi: float = 100.0,
    alpha: float = 0.5,
    limits: tuple[float, float] = (-0.05, 1.05),
    **style: float,
) -> np.ndarray:
    """The SwinV2 paper's light-curve plot.

    Time and value are min-max scaled to [0, 1] over all bands of the object (a constant range
    maps to 0.5, errors then keep their unit); each band is drawn with
    ``errorbar(t, y, yerr, fmt='-o', alpha=0.5, color=Ci)`` and matplotlib's default sizes; both
    axes span ``limits``; magnitudes increase downwards.

    Args:
        bands: per band index ``(time, value, err)`` arrays, or None when the band is absent.
        magnitude: values are magnitudes (y axis inverted) rather than fluxes.
        layout: ``overlay`` or ``grid``.
        grid_shape: (rows, columns) of the grid.
        colors: colour of each band; default ``C0``, ``C1``, ... by band index.
        width: pixels.
        height: pixels.
        dpi: figure dpi.
        alpha: opacity.
        limits: axis limits of the scaled data.
        **style: more ``errorbar`` keywords (``markersize``, ``linewidth``, ``elinewidth``,
            ``markeredgewidth``), for non-default styles.

    Returns:
        (H, W, 3) uint8.
    """
    present = [b for b in bands if b is not None and len(b[0])]
    t_all = np.concatenate([np.asarray(b[0], np.float64) for b in present]) if present else []
    v_all = np.concatenate([np.asarray(b[1], np.float64) for b in present]) if present else []
    t0, t_span = _minmax(t_all) if len(t_all) else (0.0, math.nan)
    v0, v_span = _minmax(v_all) if len(v_all) else (0.0, math.nan)

    fig = _figure(width, height, dpi)
    if layout == "overlay":
        ax = fig.add_axes((0, 0, 1, 1))
        axes = [ax] * len(bands)
        panels = [ax]
    else:
        rows, cols = grid_shape or ((1, 1) if len(bands) <= 1 else (2, math.ceil(len(bands) / 2)))
        gs = fig.add_gridspec(rows, cols, left=0, right=1, bottom=0, top=1, wspace=0, hspace=0)
        panels = [fig.add_subplot(gs[i // cols, i % cols]) for i in range(rows * cols)]
        axes = panels[: len(bands)]
    for ax in panels:
        ax.axis("off")
        ax.set_xlim(*limits)
        ax.set_ylim(*(limits[::-1] if magnitude else limits))
    for i, band in enumerate(bands):
        if band is None or not len(band[0]):
            continue
        t, v, e = (np.asarray(a, np.float64) for a in band)
        tn = (t - t0) / t_span if np.isfinite(t_span) else np.full_like(t, 0.5)
        if np.isfinite(v_span):
            vn, en = (v - v0) / v_span, e / v_span
        else:
            vn, en = np.full_like(v, 0.5), e
        color = colors[i] if colors is not None else f"C{i % 10}"
        axes[i].errorbar(tn, vn, yerr=en, fmt="-o", color=color, alpha=alpha, **style)
    for ax in panels:  # errorbar() must not have changed the limits
        ax.set_xlim(*limits)
        ax.set_ylim(*(limits[::-1] if magnitude else limits))
    return _canvas_rgb(fig)


def max_light_phase(phase: np.ndarray, values: np.ndarray, band: np.ndarray, *,
                    magnitude: bool, harmonics: int = 3, grid: int = 256) -> float:
    """Phase of maximum light of a folded light curve, as the renderer defines it.

    A Fourier series of ``harmonics`` terms with one offset per band, fitted by least squares
    (numpy's ``lstsq``, independently of the renderer's normal equations) to the values
    min-max scaled over all bands; maximum light is its smallest magnitude (largest flux) on
    ``grid`` phases ``k / grid``.
    """
    v = np.asarray(values, np.float64)
    span = v.max() - v.min()
    y = (v - v.min()) / span if span > 0 else np.full_like(v, 0.5)
    names = sorted(set(np.asarray(band).tolist()))
    cols = [(np.asarray(band) == b).astype(np.float64) for b in names]
    k = np.arange(1, harmonics + 1)
    ang = 2 * np.pi * np.asarray(phase, np.float64)[:, None] * k
    X = np.column_stack(cols + [np.cos(ang), np.sin(ang)])
    coef = np.linalg.lstsq(X, y, rcond=None)[0][len(names):]
    g = np.arange(grid) / grid
    g_ang = 2 * np.pi * g[:, None] * k
    shape = np.column_stack([np.cos(g_ang), np.sin(g_ang)]) @ coef
    return float(g[np.argmin(shape) if magnitude else np.argmax(shape)])


def folded_light_curve_image(
    bands: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray] | None],
    period: float,
    *,
    cycles: int = 2,
    magnitude: bool = True,
    layout: str = "overlay",
    grid_shape: tuple[int, int] | None = None,
    width: int = 256,
    height: int = 256,
    dpi: float = 100.0,
    alpha: float = 0.5,
    limits: tuple[float, float] = (-0.05, 1.05),
    **style: float,
) -> np.ndarray:
    """The same plot against phase: what a folded picture is meant to look like.

    Phase is ``(t - t_first) / period`` modulo 1, shifted so that maximum light
    (:func:`max_light_phase`) is phase 0; each band is drawn with ``errorbar(x, y, yerr,
    fmt='-o')`` over its points sorted by ``x = (phase + k) / cycles``, k = 0..cycles-1 (the x
    axis spans the cycles, not min-max scaled); values are min-max scaled over all bands as
    in :func:`light_curve_image`.

    Returns:
        (H, W, 3) uint8.
    """
    present = [(i, b) for i, b in enumerate(bands) if b is not None and len(b[0])]
    t_all = np.concatenate([np.asarray(b[0], np.float64) for _, b in present])
    v_all = np.concatenate([np.asarray(b[1], np.float64) for _, b in present])
    b_all = np.concatenate([np.full(len(b[0]), i) for i, b in present])
    cyc = (t_all - t_all.min()) / period
    phase = cyc - np.floor(cyc)
    origin = max_light_phase(phase, v_all, b_all, magnitude=magnitude)
    phase = np.mod(phase - origin, 1.0)
    folded: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(bands)
    start = 0
    for i, b in present:
        n = len(b[0])
        ph = phase[start:start + n]
        start += n
        x = np.concatenate([(ph + k) / cycles for k in range(cycles)])
        v = np.tile(np.asarray(b[1], np.float64), cycles)
        e = np.tile(np.asarray(b[2], np.float64), cycles)
        order = np.argsort(x, kind="stable")
        folded[i] = (x[order], v[order], e[order])
    v0, v_span = _minmax(v_all)
    fig = _figure(width, height, dpi)
    if layout == "overlay":
        ax = fig.add_axes((0, 0, 1, 1))
        axes, panels = [ax] * len(bands), [ax]
    else:
        rows, cols = grid_shape or ((1, 1) if len(bands) <= 1 else (2, math.ceil(len(bands) / 2)))
        gs = fig.add_gridspec(rows, cols, left=0, right=1, bottom=0, top=1, wspace=0, hspace=0)
        panels = [fig.add_subplot(gs[i // cols, i % cols]) for i in range(rows * cols)]
        axes = panels[: len(bands)]
    for i, band in enumerate(folded):
        if band is None:
            continue
        x, v, e = band
        if np.isfinite(v_span):
            vn, en = (v - v0) / v_span, e / v_span
        else:
            vn, en = np.full_like(v, 0.5), e
        axes[i].errorbar(x, vn, yerr=en, fmt="-o", color=f"C{i % 10}", alpha=alpha, **style)
    for ax in panels:
        ax.axis("off")
        ax.set_xlim(*limits)
        ax.set_ylim(*(limits[::-1] if magnitude else limits))
    return _canvas_rgb(fig)
