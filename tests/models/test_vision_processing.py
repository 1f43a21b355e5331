"""Vision preprocessing: prepared arrays draw the same pictures as the canonical columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astroray.data.synthetic import periodic_variables, spectra
from astroray.models.vision.processing import prepare_arrays, render_batch
from astroray.render import (
    LightCurveRenderConfig,
    RenderLightCurves,
    RenderSpectra,
    SpectrumRenderConfig,
)


def test_prepared_arrays_render_like_the_canonical_columns():
    # NaN-ing bad pixels and padding gives the same picture as the raw ivar / mask columns.
    table = spectra(4, seed=2)
    arrays, _ = prepare_arrays(table, "spectra", max_length=5000)
    cfg = SpectrumRenderConfig(height=64, width=64)
    ours = render_batch({k: torch.from_numpy(v) for k, v in arrays.items()}, "spectra", cfg)
    batch = {c: np.array(table.column(c).to_pylist(), dtype=object)
             for c in ("wavelength", "flux", "ivar", "mask")}
    ref = RenderSpectra(cfg)(batch)["image"]
    np.testing.assert_array_equal(ours.numpy(), ref)
    lcs = periodic_variables(3, seed=1)
    arrays, info = prepare_arrays(lcs, "lightcurves", max_length=10_000, bands=("B", "R"))
    assert info["bands"] == ["B", "R"] and arrays["band"].dtype == np.int8
    lc_cfg = LightCurveRenderConfig(height=64, width=64, bands=("B", "R"))
    ours = render_batch({k: torch.from_numpy(v) for k, v in arrays.items()}, "lightcurves",
                        lc_cfg)
    cols = {c: np.array(lcs.column(c).to_pylist(), dtype=object)
            for c in ("time", "band", "mag", "err")}
    ref = RenderLightCurves(lc_cfg)(cols)["image"]
    np.testing.assert_array_equal(ours.numpy(), ref)


def test_thinning():
    lcs = periodic_variables(2, seed=0, n_points=(400, 400))
    arrays, info = prepare_arrays(lcs, "lightcurves", max_length=100)
    assert arrays["time"].shape[1] == 100 and info["thinned"] == 2
    assert (np.diff(arrays["time"], axis=1) >= 0).all()  # thinned evenly, in time order


def test_folded_arrays_render_like_the_folding_stage():
    lcs = periodic_variables(4, seed=3)
    cfg = LightCurveRenderConfig(height=64, width=64, bands=("B", "R"), fold="lomb_scargle")
    arrays, _ = prepare_arrays(lcs, "lightcurves", max_length=10_000, bands=("B", "R"),
                               render=cfg)
    assert arrays["period"].dtype == np.float64 and np.isfinite(arrays["period"]).all()
    assert ((arrays["period_power"] > 0) & (arrays["period_power"] <= 1)).all()
    ours = render_batch({k: torch.from_numpy(v) for k, v in arrays.items()}, "lightcurves", cfg)
    cols = {c: np.array(lcs.column(c).to_pylist(), dtype=object)
            for c in ("time", "band", "mag", "err")}
    ref = RenderLightCurves(cfg)(cols)
    np.testing.assert_array_equal(ours.numpy(), ref["image"])
    np.testing.assert_array_equal(ref["period"], arrays["period"])
    # the catalogue period when asked for (the synthetic stars carry theirs)
    by_period, _ = prepare_arrays(lcs, "lightcurves", max_length=10_000, bands=("B", "R"),
                                  render=cfg.replace(fold="period"))
    np.testing.assert_allclose(by_period["period"], lcs.column("period").to_numpy())
    assert np.isnan(by_period["period_power"]).all()
    # a folded picture never searches periods inside a training step
    plain, _ = prepare_arrays(lcs, "lightcurves", max_length=10_000, bands=("B", "R"))
    assert "period" not in plain
    with pytest.raises(ValueError, match="periods"):
        render_batch({k: torch.from_numpy(v) for k, v in plain.items()}, "lightcurves", cfg)
