"""The Ray Data stages, on a tiny dataset and a local Ray."""

from __future__ import annotations

import numpy as np
import pytest
from _samples import flatten, synthetic_light_curve, synthetic_spectrum

from astroray.render import (
    LightCurveRenderConfig,
    RenderLightCurves,
    RenderSpectra,
    SpectrumRenderConfig,
    render_light_curves,
    render_spectra,
)


def _rows_by_id(rows):
    return {r["object_id"]: r for r in rows}


def test_render_spectra_stage(ray_local):
    ray = ray_local
    rng = np.random.default_rng(0)
    specs = [synthetic_spectrum(rng, n=n, masked=True) for n in (300, 1200, 4000, 800)]
    items = [{"object_id": f"s{i}", "z": 0.1 * i, **s} for i, s in enumerate(specs)]
    cfg = SpectrumRenderConfig(channels=1, width=96, height=64)
    ds = ray.data.from_items(items).map_batches(
        RenderSpectra, fn_constructor_kwargs={"config": cfg}, batch_format="numpy",
        batch_size=3, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1)
    rows = _rows_by_id(ds.take_all())
    assert sorted(rows) == ["s0", "s1", "s2", "s3"]
    expected = render_spectra([s["wavelength"] for s in specs], [s["flux"] for s in specs],
                              [s["ivar"] for s in specs], [s["mask"] for s in specs], config=cfg)
    for i in range(4):
        row = rows[f"s{i}"]
        assert row["z"] == pytest.approx(0.1 * i)  # other columns are kept
        assert row["image"].shape == (1, 64, 96) and row["image"].dtype == np.uint8
        assert np.array_equal(row["image"], expected[i].numpy())


def test_render_light_curves_stage(ray_local):
    ray = ray_local
    rng = np.random.default_rng(1)
    bands = ("B", "R")
    curves = [flatten(synthetic_light_curve(rng, bands, n=n), bands) for n in (10, 40, 25)]
    items = [{"object_id": f"lc{i}", "time": t, "band": b, "mag": v, "err": e}
             for i, (t, v, e, b) in enumerate(curves)]
    cfg = LightCurveRenderConfig.macho(width=64, height=64)
    ds = ray.data.from_items(items).map_batches(
        RenderLightCurves, fn_constructor_kwargs={"config": cfg.to_dict()},
        batch_format="numpy", batch_size=2, compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=1)
    rows = _rows_by_id(ds.take_all())
    expected = render_light_curves(*(list(x) for x in zip(*[(t, v, e, b) for t, v, e, b in curves],
                                                          strict=True)), config=cfg)
    for i in range(3):
        image = rows[f"lc{i}"]["image"]
        assert image.shape == (3, 64, 64)
        assert np.array_equal(image, expected[i].numpy())
