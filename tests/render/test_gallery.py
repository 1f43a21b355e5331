"""PNG output: the encoder, galleries named by object id, canonical tables to PNG files."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import torch
from _samples import flatten, synthetic_light_curve, synthetic_spectrum

from astroray.data.schema import LIGHT_CURVE_SCHEMA, SPECTRUM_SCHEMA
from astroray.render import (
    LightCurveRenderConfig,
    SpectrumRenderConfig,
    encode_png,
    render_files_to_png,
    render_light_curves,
    render_spectra,
    write_gallery,
)


def _decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes (Pillow), as (H, W, C) uint8."""
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = np.asarray(Image.open(io.BytesIO(data)))
    return img[:, :, None] if img.ndim == 2 else img


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (4, 6, 4)])
def test_png_round_trip(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = _decode_png(encode_png(img))
    assert np.array_equal(out.reshape(img.shape), img)


def test_png_matches_pillow_when_available(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(img))
    assert np.array_equal(np.asarray(pil.open(path)), img)


def test_write_gallery_names_by_id(tmp_path):
    images = torch.zeros(3, 3, 8, 8, dtype=torch.uint8)
    images[1] = 255
    paths = write_gallery(images, ["ZTF21/abc", "ZTF21/abc", "x y"], tmp_path / "g")
    names = [p.rsplit("/", 1)[-1] for p in paths]
    assert names == ["ZTF21_abc.png", "ZTF21_abc_1.png", "x_y.png"]
    assert np.array_equal(_decode_png(open(paths[1], "rb").read()), np.full((8, 8, 3), 255))
    with pytest.raises(ValueError, match="ids"):
        write_gallery(images, ["a"], tmp_path)


def _spectrum_table(n=3):
    rng = np.random.default_rng(2)
    specs = [synthetic_spectrum(rng, n=500 + 100 * i) for i in range(n)]
    cols = {name: [] for name in SPECTRUM_SCHEMA.names}
    for i, s in enumerate(specs):
        for name in SPECTRUM_SCHEMA.names:
            cols[name].append(s.get(name) if name in s else None)
        cols["object_id"][-1], cols["survey"][-1] = f"spec-{i}", "synthetic"
    table = pa.table({k: pa.array(v, type=SPECTRUM_SCHEMA.field(k).type)
                      for k, v in cols.items()}, schema=SPECTRUM_SCHEMA)
    return table, specs


def test_render_files_to_png_spectra(tmp_path):
    table, specs = _spectrum_table()
    cfg = SpectrumRenderConfig(channels=1)
    paths = render_files_to_png(table, "spectrum", tmp_path, limit=2, config=cfg)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["spec-0.png", "spec-1.png"]
    expected = render_spectra([s["wavelength"] for s in specs[:2]],
                              [s["flux"] for s in specs[:2]], [s["ivar"] for s in specs[:2]],
                              [s["mask"] for s in specs[:2]], config=cfg)
    for path, image in zip(paths, expected, strict=True):
        assert np.array_equal(_decode_png(open(path, "rb").read())[..., 0], image[0].numpy())


def test_render_files_to_png_light_curves(tmp_path):
    rng = np.random.default_rng(3)
    bands = ("g", "r")
    rows = []
    for i in range(3):
        t, v, e, b = flatten(synthetic_light_curve(rng, bands, n=30, flux=i == 1), bands)
        v, e = v.astype(np.float32), e.astype(np.float32)  # the schema's precision
        rows.append({"object_id": f"lc{i}", "survey": "synthetic", "time": t, "band": b,
                     "mag": None if i == 1 else v, "flux": v if i == 1 else None, "err": e})
    table = pa.Table.from_pylist(
        [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
         for r in rows], schema=LIGHT_CURVE_SCHEMA)
    paths = render_files_to_png(table, "lightcurve", tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["lc0.png", "lc1.png", "lc2.png"]
    cfg = LightCurveRenderConfig(bands=bands)
    expected = render_light_curves([r["time"] for r in rows], [r["mag"] if r["mag"] is not None
                                                               else r["flux"] for r in rows],
                                   [r["err"] for r in rows], [r["band"] for r in rows],
                                   magnitude=[True, False, True], config=cfg)
    for path, image in zip(paths, expected, strict=True):
        assert np.array_equal(_decode_png(open(path, "rb").read()), image.permute(1, 2, 0).numpy())
    with pytest.raises(ValueError, match="kind"):
        render_files_to_png(table, "stamp", tmp_path)
