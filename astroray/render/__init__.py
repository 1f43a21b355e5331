"""Rendering spectra and light curves as images, the way the papers' matplotlib code draws them.

Batched torch implementations (CPU or GPU, deterministic) of

* the spectra-as-images ViT paper's plot (:func:`render_spectra`, :class:`SpectrumRenderConfig`),
* the SwinV2 light-curve paper's plot (:func:`render_light_curves`,
  :class:`LightCurveRenderConfig`),

their Ray Data stages (:class:`RenderSpectra`, :class:`RenderLightCurves`), and PNG output
(:func:`write_gallery`, :func:`render_files_to_png`).
"""

from astroray.render.config import (
    MPL_COLOR_CYCLE,
    LightCurveRenderConfig,
    SpectrumRenderConfig,
    parse_color,
)
from astroray.render.gallery import (
    encode_png,
    render_files_to_png,
    render_table,
    write_gallery,
    write_png,
)
from astroray.render.human import plot_object, render_human
from astroray.render.lightcurves import RenderLightCurves, render_light_curves
from astroray.render.spectra import RenderSpectra, render_spectra, spectra_valid_mask

__all__ = [
    "MPL_COLOR_CYCLE",
    "LightCurveRenderConfig",
    "RenderLightCurves",
    "RenderSpectra",
    "SpectrumRenderConfig",
    "encode_png",
    "parse_color",
    "plot_object",
    "render_files_to_png",
    "render_human",
    "render_light_curves",
    "render_spectra",
    "render_table",
    "spectra_valid_mask",
    "write_gallery",
    "write_png",
]
