"""Folded light-curve pictures: fidelity to a matplotlib reference, and the folding contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _mpl_reference import folded_light_curve_image
from _samples import (
    REAL,
    band_ink_colours,
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
from astroray.render.periods import fold_periods

MIN_IOU = 0.9
COLOUR_TOLERANCE = 12.0


def _catalogue_period(path) -> float:
    import pandas as pd

    table = pd.read_csv(REAL / "rrlyrae_stripe82" / "periods.csv")
    return float(table.loc[table["Num"] == int(path.stem), "Per"].iloc[0])


def _check(lc, bands, period, layout, what, magnitude=True, cycles=2):
    """Our folded picture against matplotlib's, by ink IoU and per-band ink colour."""
    cfg = LightCurveRenderConfig(bands=tuple(bands), layout=layout, fold="period",
                                 cycles=cycles)
    ref = folded_light_curve_image([lc.get(b) for b in bands], period, cycles=cycles,
                                   magnitude=magnitude, layout=layout, alpha=cfg.alpha)
    t, v, e, bd = flatten(lc, bands)
    ours = render_light_curves([t], [v], [e], [bd], magnitude=magnitude, config=cfg,
                               period=[period])[0].permute(1, 2, 0).numpy()
    iou = ink_iou(ref, ours)
    assert iou >= MIN_IOU, f"{what} ({layout}, folded): ink IoU {iou:.3f} < {MIN_IOU}"
    if layout == "overlay":
        pairs = band_ink_colours(ref, ours, cfg.band_colors(bands), alpha=cfg.alpha)
        assert pairs, f"{what}: no band ink"
        for a, b in pairs:
            assert float(np.abs(a - b).max()) <= COLOUR_TOLERANCE, (what, a, b)
    return iou


@pytest.mark.parametrize("layout", ["overlay", "grid"])
def test_rrlyrae_folded_matches_matplotlib(real_dir, layout):
    paths = rrlyrae_paths(3)
    assert paths
    for path in paths:
        _check(rrlyrae(path), tuple("ugriz"), _catalogue_period(path), layout, path.name)


@pytest.mark.parametrize("layout", ["overlay", "grid"])
def test_macho_folded_matches_matplotlib(real_dir, layout):
    lc = macho()
    t, v, e, b = flatten(lc, ("B", "R"))
    cfg = LightCurveRenderConfig(bands=("B", "R"), fold="lomb_scargle")
    period, power = fold_periods([t], [v], [e], [b], config=cfg)
    assert np.isfinite(period[0]) and 0 < power[0] <= 1
    _check(lc, ("B", "R"), float(period[0]), layout, "MACHO 1.3444.614")


@pytest.mark.parametrize("seed", range(3))
def test_synthetic_folded_matches_matplotlib(seed):
    rng = np.random.default_rng(seed)
    bands = tuple("gri")[: 1 + seed]
    lc = synthetic_light_curve(rng, bands, n=[40, 120, 250][seed], flux=seed == 1)
    period = float(rng.uniform(0.3, 30))
    for layout in ("overlay", "grid"):
        _check(lc, bands, period, layout, f"synthetic {seed}", magnitude=seed != 1,
               cycles=1 + seed % 2)


def test_fold_none_is_the_default_and_changes_nothing():
    lc = synthetic_light_curve(np.random.default_rng(3), ("g", "r"), n=60)
    t, v, e, b = flatten(lc, ("g", "r"))
    base = LightCurveRenderConfig(bands=("g", "r"))
    assert base.fold == "none" and not base.folded
    a = render_light_curves([t], [v], [e], [b], config=base)
    # a period is ignored when folding is off
    assert torch.equal(a, render_light_curves([t], [v], [e], [b], config=base, period=[0.7]))
    old = {k: v for k, v in base.to_dict().items()
           if k not in ("fold", "cycles", "period_fallback", "min_period", "max_period")}
    assert LightCurveRenderConfig.from_dict(old) == base  # render.json files of before


def test_objects_without_a_period_are_drawn_against_time():
    rng = np.random.default_rng(4)
    curves = [flatten(synthetic_light_curve(rng, ("g", "r"), n=50), ("g", "r")) for _ in range(3)]
    t, v, e, b = (list(x) for x in zip(*curves, strict=True))
    unfolded = render_light_curves(t, v, e, b, config=LightCurveRenderConfig(bands=("g", "r")))
    cfg = LightCurveRenderConfig(bands=("g", "r"), fold="period")
    folded = render_light_curves(t, v, e, b, config=cfg, period=[1.3, np.nan, -1.0])
    assert not torch.equal(folded[0], unfolded[0])
    assert torch.equal(folded[1], unfolded[1]) and torch.equal(folded[2], unfolded[2])


def test_folding_ignores_time_shifts_point_order_and_batching():
    rng = np.random.default_rng(5)
    lc = synthetic_light_curve(rng, ("g", "r", "i"), n=90)
    t, v, e, b = flatten(lc, ("g", "r", "i"))
    cfg = LightCurveRenderConfig(bands=("g", "r", "i"), fold="period", chunk_size=2)
    one = render_light_curves([t], [v], [e], [b], config=cfg, period=[2.37])
    # phase 0 is maximum light, whatever the time origin
    shifted = render_light_curves([t + 123.456], [v], [e], [b], config=cfg, period=[2.37])
    assert (shifted.int() - one.int()).abs().max() <= 2
    perm = rng.permutation(len(t))
    assert torch.equal(one, render_light_curves([t[perm]], [v[perm]], [e[perm]], [b[perm]],
                                                config=cfg, period=[2.37]))
    others = [flatten(synthetic_light_curve(rng, ("g", "r"), n=30), ("g", "r"))
              for _ in range(4)]
    tt, vv, ee, bb = (list(x) for x in zip(*others, strict=True))
    batch = render_light_curves([t] + tt, [v] + vv, [e] + ee, [b] + bb, config=cfg,
                                period=[2.37, 1.0, np.nan, 3.0, 0.5])
    assert torch.equal(batch[0], one[0])


def test_maximum_light_is_at_phase_zero():
    # A skewed pulsation in magnitudes, brightest 0.03 of a cycle after phase 0.3 of t / P.
    t = np.sort(np.random.default_rng(6).uniform(0, 300, 400))
    period = 0.61
    phase = np.mod(t / period - 0.3, 1.0)
    mag = 15 - 0.5 * np.cos(2 * np.pi * phase) - 0.1 * np.sin(2 * np.pi * phase)
    err = np.full(t.size, 0.02)
    cfg = LightCurveRenderConfig(bands=("g",), fold="period", cycles=1, show_lines=False,
                                 show_errors=False)
    img = render_light_curves([t], [mag], [err], [np.full(t.size, "g")], config=cfg,
                              period=[period])[0].permute(1, 2, 0).numpy()
    ink = ink_mask(img)
    cols = np.nonzero(ink.any(0))[0]
    top = np.array([np.nonzero(ink[:, c])[0].min() for c in cols])
    # the highest ink (magnitudes point down) sits at phase 0 (either edge), the lowest at 0.5
    x = (cols + 0.5) / img.shape[1]
    peak = x[np.argmin(top)]
    assert min(peak, 1 - peak) < 0.06, peak
    assert abs(x[np.argmax(top)] - 0.5) < 0.1


def test_fold_periods_catalogue_fallback_and_search(real_dir):
    path = rrlyrae_paths(1)[0]
    lc = rrlyrae(path)
    t, v, e, b = flatten(lc, tuple("ugriz"))
    known = _catalogue_period(path)
    cfg = LightCurveRenderConfig(fold="period")
    period, power = fold_periods([t, t], [v, v], [e, e], [b, b], config=cfg,
                                 catalogue=[known, None])
    assert period[0] == known and np.isnan(power[0])  # the catalogue's, no periodogram
    assert period[1] == pytest.approx(known, rel=0.01) and 0 < power[1] <= 1  # searched
    none = fold_periods([t], [v], [e], [b], config=cfg.replace(period_fallback="none"),
                        catalogue=[None])[0]
    assert np.isnan(none[0])
    ls = fold_periods([t, t[:2]], [v, v[:2]], [e, e[:2]], [b, b[:2]],
                      config=LightCurveRenderConfig(fold="lomb_scargle"))[0]
    assert ls[0] == pytest.approx(known, rel=0.01) and np.isnan(ls[1])  # 2 points: no search
    off = fold_periods([t], [v], [e], [b], config=LightCurveRenderConfig())
    assert np.isnan(off[0]).all() and np.isnan(off[1]).all()


def test_stage_folds_and_reports_the_period(real_dir):
    path = rrlyrae_paths(1)[0]
    t, v, e, b = flatten(rrlyrae(path), tuple("ugriz"))
    obj = lambda xs: np.array(list(xs) + [None], dtype=object)[:-1]  # noqa: E731
    known = _catalogue_period(path)
    batch = {"object_id": np.array(["a", "b"]), "time": obj([t, t]), "band": obj([b, b]),
             "mag": obj([v, v]), "err": obj([e, e]), "period": np.array([known, np.nan])}
    cfg = LightCurveRenderConfig(bands=tuple("ugriz"), fold="period", height=96, width=96)
    out = RenderLightCurves(cfg)(batch)
    assert out["period"][0] == known and out["period"][1] == pytest.approx(known, rel=0.01)
    assert np.isnan(out["period_power"][0]) and out["period_power"][1] > 0
    expected = render_light_curves([t, t], [v, v], [e, e], [b, b], config=cfg,
                                   period=out["period"])
    assert np.array_equal(out["image"], expected.numpy())


def test_presets_and_validation():
    macho_cfg = LightCurveRenderConfig.preset("macho")
    assert macho_cfg.bands == ("B", "R") and macho_cfg.panel_shape(2) == (2, 1)
    assert LightCurveRenderConfig.macho() == macho_cfg
    el = LightCurveRenderConfig.preset("elasticc", fold="lomb_scargle")
    assert el.panel_shape(6) == (2, 3) and el.folded and el.layout == "grid"
    assert LightCurveRenderConfig.preset("elasticc", layout="overlay").grid_shape is None
    assert LightCurveRenderConfig.preset("elasticc_overlay").layout == "overlay"
    with pytest.raises(ConfigError, match=r"preset = 'atlas'"):
        LightCurveRenderConfig.preset("atlas")
    with pytest.raises(ConfigError, match=r"fold = 'phase'"):
        LightCurveRenderConfig(fold="phase")
    with pytest.raises(ConfigError, match=r"cycles = 0"):
        LightCurveRenderConfig(cycles=0)
    with pytest.raises(ConfigError, match=r"max_period"):
        LightCurveRenderConfig(min_period=1.0, max_period=0.5)
    with pytest.raises(ConfigError, match=r"period_fallback"):
        LightCurveRenderConfig(period_fallback="error")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_folds_like_cpu():
    rng = np.random.default_rng(7)
    curves = [flatten(synthetic_light_curve(rng, ("g", "r"), n=80), ("g", "r")) for _ in range(6)]
    t, v, e, b = (list(x) for x in zip(*curves, strict=True))
    cfg = LightCurveRenderConfig(bands=("g", "r"), fold="period")
    period = rng.uniform(0.3, 10, 6)
    cpu = render_light_curves(t, v, e, b, config=cfg, period=period)
    gpu = render_light_curves(t, v, e, b, config=cfg, period=period, device="cuda")
    diff = (gpu.cpu().int() - cpu.int()).abs()
    assert diff.max() <= 8 and (diff > 2).float().mean() < 1e-3
