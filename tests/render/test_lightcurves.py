"""Light-curve rendering: fidelity to the paper's matplotlib plot, and the renderer's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _mpl_reference import light_curve_image
from _samples import (
    band_ink_colours,
    elasticc,
    flatten,
    ink_iou,
    ink_mask,
    macho,
    rrlyrae,
    rrlyrae_paths,
    synthetic_light_curve,
)

from astroray.config import ConfigError
from astroray.render import LightCurveRenderConfig, RenderLightCurves, render_light_curves

MIN_IOU = 0.9
#: Largest difference (0-255, any channel) between the mean ink colours of a band.
COLOUR_TOLERANCE = 12.0


def _render(lc, bands, magnitude, cfg):
    t, v, e, bd = flatten(lc, bands)
    img = render_light_curves([t], [v], [e], [bd], magnitude=magnitude, config=cfg)
    return img[0].permute(1, 2, 0).numpy()


def _panel_boxes(cfg: LightCurveRenderConfig, n_bands: int) -> list[tuple[int, int, int, int]]:
    rows, cols = cfg.panel_shape(n_bands)
    r = lambda v: int(math.floor(v + 0.5))  # noqa: E731  Agg rounds clip boxes
    boxes = []
    for b in range(n_bands):
        i, j = divmod(b, cols)
        boxes.append((r(j * cfg.width / cols), r(i * cfg.height / rows),
                      r((j + 1) * cfg.width / cols), r((i + 1) * cfg.height / rows)))
    return boxes


def _check(lc, bands, magnitude, layout, what, style=None, **overrides):
    cfg = LightCurveRenderConfig(bands=tuple(bands), layout=layout, **overrides)
    ref = light_curve_image([lc.get(b) for b in bands], magnitude=magnitude, layout=layout,
                            alpha=cfg.alpha, **(style or {}))
    ours = _render(lc, bands, magnitude, cfg)
    iou = ink_iou(ref, ours)
    assert iou >= MIN_IOU, f"{what} ({layout}): ink IoU {iou:.3f} < {MIN_IOU}"
    colours = cfg.band_colors(bands)
    if layout == "overlay":
        pairs = band_ink_colours(ref, ours, colours, alpha=cfg.alpha)
    else:
        pairs = []  # one band per panel: the mean of the ink both images share there
        for x0, y0, x1, y1 in _panel_boxes(cfg, len(bands)):
            a, b = ref[y0:y1, x0:x1], ours[y0:y1, x0:x1]
            both = ink_mask(a) & ink_mask(b)
            if both.sum() >= 5:
                pairs.append((a[both].mean(0), b[both].mean(0)))
    assert pairs, f"{what}: no band ink"
    for ref_colour, our_colour in pairs:
        delta = float(np.abs(ref_colour - our_colour).max())
        assert delta <= COLOUR_TOLERANCE, (
            f"{what} ({layout}): band ink {ref_colour.round(1)} vs {our_colour.round(1)}")


# ---------------------------------------------------------------------------------------------
# Fidelity
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["overlay", "grid"])
def test_macho_matches_matplotlib(real_dir, layout):
    _check(macho(), ("B", "R"), True, layout, "MACHO")


@pytest.mark.parametrize("layout", ["overlay", "grid"])
def test_rrlyrae_matches_matplotlib(real_dir, layout):
    paths = rrlyrae_paths(2)
    assert paths
    for path in paths:
        _check(rrlyrae(path), tuple("ugriz"), True, layout, path.name)


@pytest.mark.parametrize("layout", ["grid", "overlay"])
def test_elasticc_matches_matplotlib(real_dir, layout):
    for snid, lc in elasticc(3).items():
        _check(lc, tuple("ugrizY"), False, layout, f"ELAsTiCC {snid}")


@pytest.mark.parametrize("seed", range(6))
def test_synthetic_matches_matplotlib(seed):
    rng = np.random.default_rng(seed)
    bands = tuple("ugrizY")[: 1 + seed]
    n = [25, 60, 200, 8, 100, 40][seed]
    lc = synthetic_light_curve(rng, bands, n=n, flux=seed % 2 == 1)
    for layout in ("overlay", "grid"):
        _check(lc, bands, seed % 2 == 0, layout, f"synthetic {seed}")


def test_other_styles_match_matplotlib():
    rng = np.random.default_rng(11)
    lc = synthetic_light_curve(rng, ("g", "r", "i"), n=50)
    style = {"markersize": 4.0, "linewidth": 1.0, "elinewidth": 1.0, "markeredgewidth": 0.5}
    for layout in ("overlay", "grid"):
        _check(lc, ("g", "r", "i"), True, layout, "thin style", style=style, alpha=0.8,
               marker_size=4.0, line_width=1.0, error_width=1.0, marker_edge_width=0.5)


# ---------------------------------------------------------------------------------------------
# Contract
# ---------------------------------------------------------------------------------------------

BANDS = ("g", "r")


def _batch(n=4, seed=0, bands=BANDS):
    rng = np.random.default_rng(seed)
    return [flatten(synthetic_light_curve(rng, bands, n=int(rng.integers(5, 80))), bands)
            for _ in range(n)]


def _lists(curves):
    return tuple(list(x) for x in zip(*curves, strict=True))


def test_shapes_and_blank_images():
    t, v, e, b = _lists(_batch(2))
    cfg = LightCurveRenderConfig(bands=BANDS)
    img = render_light_curves(t + [np.empty(0)], v + [np.empty(0)], e + [np.empty(0)],
                              b + [np.empty(0, dtype=str)], config=cfg)
    assert img.shape == (3, 3, 256, 256) and img.dtype == torch.uint8
    assert (img[2] == 255).all(), "an empty light curve renders blank"
    assert (img[:2] < 255).any()
    small = render_light_curves(t, v, e, b, config=LightCurveRenderConfig(bands=BANDS,
                                                                          width=128, height=64))
    assert small.shape == (2, 3, 64, 128)


def test_deterministic_and_batch_invariant():
    t, v, e, b = _lists(_batch(5, seed=1))
    cfg = LightCurveRenderConfig(bands=BANDS, chunk_size=2)
    a = render_light_curves(t, v, e, b, config=cfg)
    assert torch.equal(a, render_light_curves(t, v, e, b, config=cfg))
    for i in (0, 4):
        one = render_light_curves(t[i : i + 1], v[i : i + 1], e[i : i + 1], b[i : i + 1],
                                  config=cfg)
        assert torch.equal(one[0], a[i])


def test_float32_and_float64_inputs_agree():
    t, v, e, b = _lists(_batch(3, seed=2))
    # values exactly representable in float32, so both precisions see the same numbers
    t = [(x - 50000).astype(np.float32) for x in t]
    v = [x.astype(np.float32) for x in v]
    e = [x.astype(np.float32) for x in e]
    cfg = LightCurveRenderConfig(bands=BANDS)
    a = render_light_curves(t, v, e, b, config=cfg)
    d = render_light_curves([x.astype(np.float64) for x in t], [x.astype(np.float64) for x in v],
                            [x.astype(np.float64) for x in e], b, config=cfg)
    assert torch.equal(a, d)


def test_padded_tensors_equal_lists():
    t, v, e, b = _lists(_batch(4, seed=3))
    cfg = LightCurveRenderConfig(bands=BANDS)
    ref = render_light_curves(t, v, e, b, config=cfg)
    lengths = torch.tensor([len(x) for x in t])
    n = int(lengths.max())
    T = torch.zeros(4, n, dtype=torch.float64)
    V, E = torch.zeros_like(T), torch.zeros_like(T)
    Bd = torch.full((4, n), 1, dtype=torch.long)
    for i in range(4):
        k = len(t[i])
        T[i, :k], V[i, :k], E[i, :k] = (torch.from_numpy(x) for x in (t[i], v[i], e[i]))
        T[i, k:], V[i, k:] = 1e9, -99.0  # garbage past the length must not matter
        Bd[i, :k] = torch.from_numpy(np.array([BANDS.index(x) for x in b[i]]))
    assert torch.equal(render_light_curves(T, V, E, Bd, lengths=lengths, config=cfg), ref)


def test_invalid_points_are_ignored():
    t, v, e, b = (x[0] for x in _lists(_batch(1, seed=4)))
    cfg = LightCurveRenderConfig(bands=BANDS)
    ref = render_light_curves([t], [v], [e], [b], config=cfg)
    # extra points: NaN value, NaN time, unknown band; a NaN error only drops the bar
    t2 = np.concatenate([t, [t[0] + 0.1, np.nan, t[1] + 0.2]])
    v2 = np.concatenate([v, [np.nan, v[0], v[1]]])
    e2 = np.concatenate([e, [0.1, 0.1, 0.1]])
    b2 = np.concatenate([b, ["g", "r", "x"]])
    order = np.argsort(t2)  # NaN times go last
    out = render_light_curves([t2[order]], [v2[order]], [e2[order]], [b2[order]], config=cfg)
    assert torch.equal(out, ref)
    e3 = e.copy()
    e3[0] = np.nan
    assert (render_light_curves([t], [v], [e3], [b], config=cfg) <= 255).all()


def test_point_order_does_not_matter():
    t, v, e, b = (x[0] for x in _lists(_batch(1, seed=8)))
    cfg = LightCurveRenderConfig(bands=BANDS)
    perm = np.random.default_rng(0).permutation(len(t))
    assert torch.equal(render_light_curves([t], [v], [e], [b], config=cfg),
                       render_light_curves([t[perm]], [v[perm]], [e[perm]], [b[perm]],
                                           config=cfg))


def test_magnitudes_point_down_and_fluxes_up():
    t = np.linspace(0, 10, 20)
    rising = np.linspace(1, 2, 20)  # increasing value
    e = np.full(20, 0.01)
    cfg = LightCurveRenderConfig(bands=("g",), show_errors=False, show_lines=False)
    img = render_light_curves([t, t], [rising, rising], [e, e], [["g"] * 20] * 2,
                              magnitude=[True, False], config=cfg)

    def row_of_ink(image, col_range):
        ink = ink_mask(image.permute(1, 2, 0).numpy())[:, col_range]
        return np.nonzero(ink.any(1))[0].mean()

    late, early = slice(225, 250), slice(5, 30)
    assert row_of_ink(img[0], late) > row_of_ink(img[0], early), "fainter must be lower"
    assert row_of_ink(img[1], late) < row_of_ink(img[1], early), "brighter flux must be higher"


def test_colours_and_panels():
    lc = synthetic_light_curve(np.random.default_rng(5), ("u", "g", "r", "i", "z", "Y"), n=30)
    bands = tuple("ugrizY")
    t, v, e, b = flatten(lc, bands)
    black = LightCurveRenderConfig(bands=bands, colors={"g": "#000000", "r": (0.0, 0.0, 0.0)})
    assert black.band_colors(bands)[1] == (0.0, 0.0, 0.0)
    assert black.band_colors(bands)[0] == pytest.approx((31 / 255, 119 / 255, 180 / 255))
    cfg = LightCurveRenderConfig(bands=bands, layout="grid")
    img = render_light_curves([t], [v], [e], [b], config=cfg)[0].permute(1, 2, 0).numpy()
    for k, (x0, y0, x1, y1) in enumerate(_panel_boxes(cfg, 6)):
        panel = img[y0:y1, x0:x1]
        ink = panel[ink_mask(panel)].astype(float)
        expected = np.array(cfg.band_colors(bands)) * 127.5 + 127.5  # at alpha 0.5 on white
        nearest = np.argmin(((ink[:, None] - expected[None]) ** 2).sum(-1), 1)
        assert np.bincount(nearest, minlength=6).argmax() == k, f"panel {k}: wrong band"
        assert (np.bincount(nearest, minlength=6)[k] / len(ink)) > 0.6
    assert cfg.panel_shape(6) == (2, 3) and LightCurveRenderConfig.macho().panel_shape(2) == (2, 1)


def test_config_validation_names_field_and_value():
    with pytest.raises(ConfigError, match=r"layout = 'mosaic'"):
        LightCurveRenderConfig(layout="mosaic")
    with pytest.raises(ConfigError, match=r"alpha = 1.5"):
        LightCurveRenderConfig(alpha=1.5)
    with pytest.raises(ConfigError, match=r"colors"):
        LightCurveRenderConfig(colors={"g": "not-a-colour"})
    with pytest.raises(ConfigError, match=r"grid_shape"):
        LightCurveRenderConfig(bands=tuple("ugrizY"), grid_shape=(2, 2))
    with pytest.raises(ConfigError, match=r"bands"):
        LightCurveRenderConfig(bands=("g", "g"))
    cfg = LightCurveRenderConfig.elasticc(alpha=0.4)
    assert LightCurveRenderConfig.from_dict(cfg.to_dict()) == cfg


def test_stage_on_numpy_batch_with_mags_and_fluxes():
    curves = _batch(3, seed=6)
    t, v, e, b = _lists(curves)
    obj = lambda xs: np.array(list(xs) + [None], dtype=object)[:-1]  # noqa: E731
    batch = {"object_id": np.array(["a", "b", "c"]), "time": obj(t), "band": obj(b),
             "mag": obj([v[0], None, v[2]]), "flux": obj([None, v[1], None]), "err": obj(e)}
    cfg = LightCurveRenderConfig(bands=BANDS)
    out = RenderLightCurves(cfg)(batch)
    assert out["image"].shape == (3, 3, 256, 256) and out["image"].dtype == np.uint8
    expected = render_light_curves(t, v, e, b, magnitude=[True, False, True], config=cfg)
    assert np.array_equal(out["image"], expected.numpy())
    assert list(out["object_id"]) == ["a", "b", "c"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    t, v, e, b = _lists(_batch(6, seed=7))
    cfg = LightCurveRenderConfig(bands=BANDS)
    cpu = render_light_curves(t, v, e, b, config=cfg)
    gpu = render_light_curves(t, v, e, b, config=cfg, device="cuda")
    assert gpu.is_cuda
    # Measured on an H200: max 4 on one pixel in 1.5 million (float rounding of positions),
    # background and ink otherwise identical.
    diff = (gpu.cpu().int() - cpu.int()).abs()
    assert diff.max() <= 8 and (diff > 2).float().mean() < 1e-4
    assert abs(gpu.float().mean() - cpu.float().mean()) < 0.5


def test_float_channel_path_equals_the_int16_one(monkeypatch):
    """Accelerators composite in float32; it must give the CPU int16 path's pixels exactly."""
    import astroray.render._composite as composite

    t, v, e, b = _lists(_batch(6, seed=7))
    for layout in ("overlay", "grid"):
        cfg = LightCurveRenderConfig(bands=BANDS, layout=layout)
        fixed = render_light_curves(t, v, e, b, config=cfg)
        monkeypatch.setattr(composite, "_INT16_CHANNELS", False)
        floating = render_light_curves(t, v, e, b, config=cfg)
        monkeypatch.setattr(composite, "_INT16_CHANNELS", True)
        assert torch.equal(fixed, floating), layout
        assert fixed.float().mean() > 150  # mostly white background, as matplotlib's
