"""Render configurations: what the pictures look like, validated on construction.

The defaults reproduce the papers' matplotlib figures:

* :class:`SpectrumRenderConfig` — the spectra-as-images ViT paper (Strano Moraes et al. 2025):
  ``plt.plot(wavelength, flux, 'k', linewidth=0.5)`` on a 2.24 x 2.24 inch figure at 100 dpi
  (224 x 224 pixels), axes off and filling the figure, x range fixed to 3536.7-10413.6 A,
  y range autoscaled by matplotlib (data min/max plus its default 5 % margins).
* :class:`LightCurveRenderConfig` — the SwinV2 light-curve paper (Moreno-Cartagena et al. 2025):
  per band ``errorbar(t, y, yerr, fmt='-o', alpha=0.5)`` on a 2.56 x 2.56 inch figure at 100 dpi
  (256 x 256 pixels), time and magnitude/flux min-max scaled to [0, 1] per object, both axes
  limited to [-0.05, 1.05], axes off, magnitudes increasing downwards; bands overlaid in one
  panel or in a grid of panels. Marker size, line width and error-bar width are matplotlib's
  defaults (6 pt, 1.5 pt, 1.5 pt, no caps) since the paper does not change them. ``fold``
  (off by default) draws the light curve against phase instead of time: the picture of
  image-based variable-star classifiers (CNNs on folded light curves), which the paper does
  not offer.

Named presets (:data:`LIGHT_CURVE_PRESETS`, :meth:`LightCurveRenderConfig.preset`) give the
paper's MACHO (B, R in a 2-row grid) and ELAsTiCC (ugrizY in a 2 x 3 grid) pictures.

Lengths given in points (line widths, marker size) are converted to pixels with ``dpi`` exactly
as matplotlib does (``points * dpi / 72``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from astroray.config import Config
from astroray.config import check as _check_field

__all__ = [
    "FOLD_MODES",
    "LIGHT_CURVE_PRESETS",
    "MPL_COLOR_CYCLE",
    "LightCurveRenderConfig",
    "SpectrumRenderConfig",
    "parse_color",
]

#: matplotlib's default property cycle (``tab10``), used for band ``i`` in that order.
MPL_COLOR_CYCLE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)

#: A few named colours (matplotlib's base colours); anything else: hex, ``Cn`` or an RGB tuple.
_NAMED = {
    "black": "#000000", "k": "#000000", "white": "#ffffff", "w": "#ffffff",
    "red": "#ff0000", "r": "#ff0000", "green": "#008000", "g": "#008000",
    "blue": "#0000ff", "b": "#0000ff", "cyan": "#00ffff", "c": "#00bfbf",
    "magenta": "#ff00ff", "m": "#bf00bf", "yellow": "#ffff00", "y": "#bfbf00",
    "gray": "#808080", "grey": "#808080", "orange": "#ffa500", "purple": "#800080",
}

#: Accepted values of :attr:`LightCurveRenderConfig.fold`.
FOLD_MODES: tuple[str, ...] = ("none", "period", "lomb_scargle")
#: Accepted values of :attr:`LightCurveRenderConfig.period_fallback`.
PERIOD_FALLBACKS: tuple[str, ...] = ("lomb_scargle", "none")

#: Named light-curve pictures: preset name -> :class:`LightCurveRenderConfig` fields. The
#: SwinV2 paper (Moreno-Cartagena et al. 2025) draws MACHO's two bands and ELAsTiCC's six in a
#: grid of panels that fill the figure, one band per panel, row by row (2 rows x 1 column for
#: B/R, 2 x 3 for ugrizY), or overlaid in one panel; band ``i`` has colour ``Ci`` either way.
LIGHT_CURVE_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "macho": {"bands": ("B", "R"), "layout": "grid", "grid_shape": (2, 1)},
    "macho_overlay": {"bands": ("B", "R"), "layout": "overlay"},
    "elasticc": {"bands": ("u", "g", "r", "i", "z", "Y"), "layout": "grid",
                 "grid_shape": (2, 3)},
    "elasticc_overlay": {"bands": ("u", "g", "r", "i", "z", "Y"), "layout": "overlay"},
}

#: Default order of well-known band names when ``bands`` is not given.
CANONICAL_BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z", "Y", "B", "V", "R", "I", "J", "H",
                                   "K", "c", "o")


def parse_color(value: Any) -> tuple[float, float, float]:
    """An RGB triple in [0, 1] from ``'#rrggbb'``, ``'Cn'``, a base colour name or a tuple.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 2 and text[0] == "C" and text[1].isdigit():
            text = MPL_COLOR_CYCLE[int(text[1])]
        text = _NAMED.get(text.lower(), text) if not text.startswith("#") else text
        if text.startswith("#") and len(text) in (7, 9):
            try:
                return tuple(int(text[i : i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore[return-value]
            except ValueError:
                pass
        raise ValueError(f"unknown colour {value!r}: use '#rrggbb', 'C0'..'C9' or an RGB tuple")
    if isinstance(value, Sequence) and len(value) in (3, 4):
        rgb = tuple(float(v) for v in value[:3])
        if all(0.0 <= v <= 1.0 for v in rgb):
            return rgb  # type: ignore[return-value]
    raise ValueError(
        f"unknown colour {value!r}: use '#rrggbb', 'C0'..'C9' or an RGB tuple in [0, 1]")


def check(condition: bool, cfg: Any, name: str, value: Any, expected: str) -> None:
    """Raise :class:`~astroray.config.ConfigError` naming ``cfg``'s class, the field and value."""
    _check_field(condition, type(cfg), name, value, expected)


def _positive_int(cfg: Any, name: str, limit: int = 8192) -> None:
    value = getattr(cfg, name)
    check(isinstance(value, int) and not isinstance(value, bool) and 0 < value <= limit, cfg,
          name, value, f"an integer in [1, {limit}]")


def _positive_number(cfg: Any, name: str, allow_zero: bool = False) -> None:
    value = getattr(cfg, name)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    check(ok, cfg, name, value, "a non-negative number" if allow_zero else "a positive number")


def _range(cfg: Any, name: str, optional: bool = False, inverted: bool = False) -> None:
    value = getattr(cfg, name)
    if optional and value is None:
        return
    ok = (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
          and all(isinstance(v, int | float) and math.isfinite(v) for v in value)
          and (value[0] != value[1] if inverted else value[0] < value[1]))
    expected = ("two different finite numbers (bottom, top)" if inverted
                else "two finite numbers (low, high) with low < high")
    check(ok, cfg, name, value, expected + (", or null" if optional else ""))
    setattr(cfg, name, (float(value[0]), float(value[1])))


@dataclasses.dataclass
class SpectrumRenderConfig(Config):
    """How to draw spectra (defaults: the spectra-as-images ViT paper's plot).

    Attributes:
        height: image height in pixels.
        width: image width in pixels.
        channels: 1 (grey) or 3 (RGB, the grey image repeated; required by ``overlap_split``).
        dpi: dots per inch of the equivalent matplotlib figure (converts ``line_width``).
        line_width: line width in points (0.5 pt = 0.69 px at 100 dpi).
        x_range: wavelength range of the x axis, Angstrom (vacuum).
        y_limits: fixed (bottom, top) flux limits after normalisation (bottom > top flips the
            axis); None autoscales each spectrum.
        y_margin: autoscale margin, a fraction of the data range added above and below
            (matplotlib's ``axes.ymargin``, 0.05 by default).
        normalize: ``none``; ``median`` (divide by the absolute median flux of the good pixels);
            ``minmax`` (scale the good pixels to [0, 1]). With autoscaled y limits the picture
            does not change (the plot is affine invariant); these matter with ``y_limits``.
        layout: ``single`` (one line plot) or ``overlap_split`` (``x_range`` cut into three equal
            segments, each widened by ``overlap`` of a segment on its inner sides, drawn over
            the full width in the R, G and B channels, each with its own y autoscale).
        overlap: see ``layout``.
        subcolumns: horizontal anti-aliasing samples per pixel.
        chunk_size: objects rendered at once (bounds memory); None picks 128 on CPU, 16384 on
            GPU.
    """

    height: int = 224
    width: int = 224
    channels: int = 3
    dpi: float = 100.0
    line_width: float = 0.5
    x_range: tuple[float, float] = (3536.7, 10413.6)
    y_limits: tuple[float, float] | None = None
    y_margin: float = 0.05
    normalize: str = "none"
    layout: str = "single"
    overlap: float = 0.1
    subcolumns: int = 4
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        _positive_int(self, "height")
        _positive_int(self, "width")
        check(self.channels in (1, 3) and not isinstance(self.channels, bool), self, "channels",
              self.channels, "1 or 3")
        _positive_number(self, "dpi")
        _positive_number(self, "line_width")
        _range(self, "x_range")
        _range(self, "y_limits", optional=True, inverted=True)
        _positive_number(self, "y_margin", allow_zero=True)
        check(self.normalize in ("none", "median", "minmax"), self, "normalize", self.normalize,
              "one of 'none', 'median', 'minmax'")
        check(self.layout in ("single", "overlap_split"), self, "layout", self.layout,
              "'single' or 'overlap_split'")
        check(isinstance(self.overlap, int | float) and 0 <= self.overlap <= 1, self, "overlap",
              self.overlap, "a fraction in [0, 1]")
        check(self.layout != "overlap_split" or self.channels == 3, self, "channels",
              self.channels, "3 with layout='overlap_split' (one segment per channel)")
        _positive_int(self, "subcolumns", limit=16)
        if self.chunk_size is not None:
            _positive_int(self, "chunk_size", limit=1 << 20)

    @property
    def line_width_px(self) -> float:
        """Line width in pixels."""
        return self.line_width * self.dpi / 72.0

    def segments(self) -> list[tuple[float, float]]:
        """Wavelength ranges drawn: one per output channel group (3 for ``overlap_split``)."""
        lo, hi = self.x_range
        if self.layout == "single":
            return [(lo, hi)]
        step = (hi - lo) / 3
        pad = self.overlap * step
        return [(max(lo, lo + k * step - pad), min(hi, lo + (k + 1) * step + pad))
                for k in range(3)]


@dataclasses.dataclass
class LightCurveRenderConfig(Config):
    """How to draw multi-band light curves (defaults: the SwinV2 light-curve paper's plot).

    Attributes:
        height: image height in pixels.
        width: image width in pixels.
        dpi: dots per inch of the equivalent matplotlib figure (converts point sizes).
        layout: ``overlay`` (all bands in one panel) or ``grid`` (one panel per band).
        grid_shape: (rows, columns) of the grid; None: (1, 1) for one band, else
            (2, ceil(bands / 2)): 2 x 1 for MACHO B/R, 2 x 3 for ELAsTiCC ugrizY. Bands fill
            the panels row by row.
        bands: band names in drawing order; band ``i`` gets panel ``i`` and colour ``Ci``.
            None takes the bands present in each batch in :data:`CANONICAL_BANDS` order (then
            alphabetical): set it to keep colours stable across batches.
        colors: band name -> colour (``'#rrggbb'``, ``'Cn'``, base name or RGB tuple); bands not
            listed use matplotlib's default cycle by band index.
        alpha: opacity of every element (the paper: 0.5).
        line_width: connecting line width, points (matplotlib default 1.5).
        marker_size: marker diameter, points (matplotlib default 6).
        marker_edge_width: marker edge width, points (matplotlib default 1.0).
        error_width: error-bar line width, points; None uses ``line_width`` (as matplotlib).
        show_lines: draw the connecting lines (``fmt='-o'``).
        show_markers: draw the markers.
        show_errors: draw the error bars.
        axis_limits: axis limits of the scaled data on both axes.
        invert_magnitude: magnitudes increase downwards (brighter up); fluxes are never flipped.
        subcolumns: horizontal anti-aliasing samples per pixel for the lines.
        chunk_size: objects rendered at once (bounds memory); None picks 64 on CPU, 1024 on GPU.
        fold: ``none`` (against time: the paper's picture); ``period`` (against phase at each
            object's own period: the ``period`` column of canonical tables, days);
            ``lomb_scargle`` (at the best multi-band Lomb-Scargle period, found once per
            object where the light curves are read and prepared, not in the renderer).
            Folded, the x axis spans ``cycles`` cycles with phase 0 at maximum light (see
            :mod:`astroray.render.lightcurves`); objects without a period are drawn against
            time.
        cycles: cycles drawn when folded (each point drawn once per cycle).
        period_fallback: ``fold='period'`` for objects without a period: ``lomb_scargle``
            (search one) or ``none`` (draw against time).
        min_period: shortest period searched by ``lomb_scargle`` (days).
        max_period: longest period searched (days); None: the baseline / 3.
    """

    height: int = 256
    width: int = 256
    dpi: float = 100.0
    layout: str = "overlay"
    grid_shape: tuple[int, int] | None = None
    bands: tuple[str, ...] | None = None
    colors: dict[str, Any] | None = None
    alpha: float = 0.5
    line_width: float = 1.5
    marker_size: float = 6.0
    marker_edge_width: float = 1.0
    error_width: float | None = None
    show_lines: bool = True
    show_markers: bool = True
    show_errors: bool = True
    axis_limits: tuple[float, float] = (-0.05, 1.05)
    invert_magnitude: bool = True
    subcolumns: int = 4
    chunk_size: int | None = None
    fold: str = "none"
    cycles: int = 2
    period_fallback: str = "lomb_scargle"
    min_period: float = 0.05
    max_period: float | None = None

    def __post_init__(self) -> None:
        _positive_int(self, "height")
        _positive_int(self, "width")
        _positive_number(self, "dpi")
        check(self.fold in FOLD_MODES, self, "fold", self.fold, f"one of {FOLD_MODES}")
        _positive_int(self, "cycles", limit=8)
        check(self.period_fallback in PERIOD_FALLBACKS, self, "period_fallback",
              self.period_fallback, f"one of {PERIOD_FALLBACKS}")
        _positive_number(self, "min_period")
        if self.max_period is not None:
            _positive_number(self, "max_period")
            check(self.max_period > self.min_period, self, "max_period", self.max_period,
                  f"a period longer than min_period ({self.min_period})")
        check(self.layout in ("overlay", "grid"), self, "layout", self.layout,
              "'overlay' or 'grid'")
        if self.grid_shape is not None:
            ok = (isinstance(self.grid_shape, Sequence) and len(self.grid_shape) == 2
                  and all(isinstance(v, int) and 0 < v <= 16 for v in self.grid_shape))
            check(ok, self, "grid_shape", self.grid_shape, "(rows, columns), positive integers")
            self.grid_shape = (int(self.grid_shape[0]), int(self.grid_shape[1]))
        if self.bands is not None:
            if isinstance(self.bands, str):
                self.bands = (self.bands,)
            bands = tuple(self.bands)
            ok = (len(bands) > 0 and all(isinstance(b, str) and b for b in bands)
                  and len(set(bands)) == len(bands))
            check(ok, self, "bands", self.bands, "distinct non-empty band names")
            self.bands = bands
            if self.grid_shape is not None:
                rows, cols = self.grid_shape
                check(rows * cols >= len(bands), self, "grid_shape", self.grid_shape,
                      f"at least {len(bands)} panels (one per band)")
        if self.colors is not None:
            check(isinstance(self.colors, Mapping), self, "colors", self.colors,
                  "a mapping band -> colour")
            for band, colour in self.colors.items():
                try:
                    parse_color(colour)
                except ValueError as exc:
                    check(False, self, "colors", {band: colour}, str(exc))
            self.colors = dict(self.colors)
        check(isinstance(self.alpha, int | float) and 0 < self.alpha <= 1, self, "alpha",
              self.alpha, "a number in (0, 1]")
        _positive_number(self, "line_width", allow_zero=True)
        _positive_number(self, "marker_size", allow_zero=True)
        _positive_number(self, "marker_edge_width", allow_zero=True)
        if self.error_width is not None:
            _positive_number(self, "error_width", allow_zero=True)
        for name in ("show_lines", "show_markers", "show_errors", "invert_magnitude"):
            check(isinstance(getattr(self, name), bool), self, name, getattr(self, name),
                  "true or false")
        _range(self, "axis_limits")
        _positive_int(self, "subcolumns", limit=16)
        if self.chunk_size is not None:
            _positive_int(self, "chunk_size", limit=1 << 20)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> LightCurveRenderConfig:
        """A named picture (:data:`LIGHT_CURVE_PRESETS`) with some fields changed.

        Raises:
            ConfigError: for an unknown name.
        """
        _check_field(name in LIGHT_CURVE_PRESETS, cls, "preset", name,
                     f"one of {sorted(LIGHT_CURVE_PRESETS)}")
        fields = dict(LIGHT_CURVE_PRESETS[name])
        if overrides.get("layout") == "overlay":  # a grid preset drawn overlaid: no grid
            fields.pop("grid_shape", None)
        return cls(**{**fields, **overrides})

    @classmethod
    def macho(cls, **overrides: Any) -> LightCurveRenderConfig:
        """MACHO B and R: a 2 x 1 grid (``layout='overlay'`` for the overlaid variant)."""
        return cls.preset("macho", **overrides)

    @classmethod
    def elasticc(cls, **overrides: Any) -> LightCurveRenderConfig:
        """ELAsTiCC ugrizY: a 2 x 3 grid (``layout='overlay'`` for the overlaid variant)."""
        return cls.preset("elasticc", **overrides)

    @property
    def folded(self) -> bool:
        """Whether light curves are drawn against phase."""
        return self.fold != "none"

    def px(self, points: float) -> float:
        """Convert points to pixels at this config's dpi."""
        return points * self.dpi / 72.0

    def panel_shape(self, n_bands: int) -> tuple[int, int]:
        """(rows, columns) of panels for ``n_bands`` bands."""
        if self.layout == "overlay":
            return (1, 1)
        if self.grid_shape is not None:
            return self.grid_shape
        return (1, 1) if n_bands <= 1 else (2, math.ceil(n_bands / 2))

    def band_colors(self, bands: Sequence[str]) -> list[tuple[float, float, float]]:
        """RGB colour of each band: ``colors[band]`` if given, else the cycle by band index."""
        given = self.colors or {}
        return [parse_color(given[b]) if b in given
                else parse_color(MPL_COLOR_CYCLE[i % len(MPL_COLOR_CYCLE)])
                for i, b in enumerate(bands)]
