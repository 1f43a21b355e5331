"""The Astromer classifier and its few-shot study: per-band embeddings, masked R^2, folds."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from astroray.config import ConfigError
from astroray.data.fileio import numpy_batch
from astroray.data.synthetic import periodic_variables
from astroray.data.windows import LightCurveWindows
from astroray.infer.astromer import AstromerEmbedder, embed_table
from astroray.models import create_model
from astroray.models.astromer import impute_embeddings, published_folder

# The library module and the few-shot study built on it.
C = importlib.import_module("astroray.train.classify")
S = importlib.import_module("astroray.studies.few_shot")
DS = {"name": "d", "paths": ["x"]}
WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "weights"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = create_model("astromer-tiny")
    torch.nn.init.normal_(model.head.weight, std=0.2)  # a head that predicts something
    return str(model.save_pretrained(tmp_path_factory.mktemp("tiny") / "m"))


def test_per_band_embeddings_against_the_window_means(tiny_dir):
    table = periodic_variables(6, seed=3)
    embedder = AstromerEmbedder(tiny_dir, min_points=5)
    w = embedder.windows(numpy_batch(table))
    means = embedder.encode_windows(w)  # (W, S, D), independent of the aggregation below
    one = embed_table(table, tiny_dir, random_init=False, seed=0, min_points=5,
                      actor_cpus=1.0, embedding="band:R")
    both = embed_table(table, tiny_dir, random_init=False, seed=0, min_points=5,
                       actor_cpus=1.0, embedding="band_concat")
    d = means.shape[2]
    for row in range(table.num_rows):
        for k, band in enumerate(["B", "R"]):
            sel = (w["row"] == row) & (np.asarray(w["band"]).astype(str) == band)
            expected = means[sel].mean(axis=0)
            np.testing.assert_allclose(both[row, :, k * d:(k + 1) * d], expected, atol=1e-5)
            if band == "R":
                np.testing.assert_allclose(one[row], expected, atol=1e-5)
    # An object without the band: NaN there, imputed with the fitting objects' mean.
    table = table.slice(0, 2)
    x = both[:2].copy()
    x[1, :, :d] = np.nan
    filled = impute_embeddings(x, np.array([0]))
    np.testing.assert_allclose(filled[1, :, :d], x[0, :, :d])


def test_masked_r2_of_untrained_and_published_encoders(tiny_dir):
    table = periodic_variables(40, seed=5)
    untrained = S.masked_r2(tiny_dir, table, min_points=5, random_init=True)
    # A fresh head predicts the window mean: R^2 0 exactly, RMSE that of the mean.
    assert untrained["r2"] == pytest.approx(0.0, abs=1e-6)
    assert untrained["rmse"] == pytest.approx(untrained["rmse_zero"], rel=1e-6)
    if not (WEIGHTS / "astromer1-macho").is_dir():
        pytest.skip("published weights absent")
    from astroray.models.astromer.convert import convert_astromer1

    folder = convert_astromer1(WEIGHTS / "astromer1-macho",
                               Path(tiny_dir).parent / "published")
    published = S.masked_r2(str(folder), table, min_points=5)
    # The authors' MACHO weights predict hidden magnitudes of MACHO-like curves (0.14 here
    # with 180 objects); inputs prepared with the wrong time origin would not.
    assert published["r2"] > 0.05, published
    assert published["n"] == untrained["n"] > 1000


def test_folds_and_the_all_setting():
    y = np.repeat([0, 1], [30, 12])
    pool = np.arange(42)
    rng = np.random.default_rng(0)
    train, val = S._draw_fold(y, pool, ["a", "b"], 5, 0.25, rng)
    assert np.bincount(y[train]).tolist() == [5, 5] and np.bincount(y[val]).tolist() == [2, 2]
    train, val = S._draw_fold(y, pool, ["a", "b"], "all", 0.25, rng)
    assert not set(train) & set(val) and set(train) | set(val) == set(pool)
    assert np.bincount(y[val]).tolist() == [6, 2]
    with pytest.raises(ConfigError, match="samples_per_class"):
        C.ClassifyConfig(encoder="x", datasets=[DS], samples_per_class=(20, "most"))
    with pytest.raises(ConfigError, match="embedding"):
        C.ClassifyConfig(encoder="x", datasets=[DS], embedding="bands")


def test_published_lookup_names_why_it_is_unavailable(monkeypatch, tmp_path):
    from astroray.models.astromer import published

    monkeypatch.setenv("ASTRORAY_CACHE", str(tmp_path))
    monkeypatch.setattr(published, "find_source", lambda name, source=None: None)
    folder, why = published_folder("astromer1-macho")
    assert folder is None and "ASTRORAY_ASTROMER1_MACHO" in why
    assert published_folder(None)[0] is None
    assert "neither" in published_folder("nope")[1]


def test_pretraining_recipe_beats_the_window_mean():
    """The tiny preset, the masks and the loss of pretraining: R^2 > 0 on held-out windows.

    The same pieces as the Ray Train loop (its warm-up schedule included), in one process: 150
    steps on a synthetic MACHO-like survey; validated on objects drawn apart.
    """
    from astroray.models.astromer import mask_inputs, masked_rmse
    from astroray.train.loop import lr_factor
    from astroray.train.metrics import MaskedRegressionMeter

    torch.manual_seed(0)
    model = create_model("astromer-tiny")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor("inverse_sqrt", 50))
    train = numpy_batch(periodic_variables(600, seed=0))
    crops = LightCurveWindows(200, mode="random", min_points=10, seed=0)
    val = LightCurveWindows(200, min_points=10)(numpy_batch(periodic_variables(80, seed=9)))

    def evaluate() -> dict:
        meter, gen = MaskedRegressionMeter(), torch.Generator().manual_seed(1)
        model.eval()
        with torch.no_grad():
            b = {k: torch.from_numpy(val[k]) for k in ("times", "values", "mask")}
            m = mask_inputs(b["values"], b["mask"], generator=gen)
            out = model(b["times"], m.values, b["mask"], hidden=m.hidden)
            meter.update(out.prediction, b["values"], m.probed)
        model.train()
        return meter.compute()

    assert evaluate()["r2"] == pytest.approx(0.0, abs=1e-3)
    step = 0
    while step < 150:
        w = crops(train)
        for lo in range(0, len(w["times"]), 64):
            b = {k: torch.from_numpy(w[k][lo:lo + 64]) for k in ("times", "values", "mask")}
            m = mask_inputs(b["values"], b["mask"])
            out = model(b["times"], m.values, b["mask"], hidden=m.hidden)
            loss = masked_rmse(out.prediction, b["values"], m.probed)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step >= 150:
                break
    assert evaluate()["r2"] > 0.03
