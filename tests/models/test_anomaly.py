"""MCDSVDD: transform, centres, scores, the held-out-class protocol, save/load, inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from astroray.config import ConfigError
from astroray.data.synthetic import SyntheticSurveyConfig, make_survey, periodic_variables
from astroray.models import create_model, load_model, tiny_overrides
from astroray.models.anomaly import (
    MCDSVDD,
    DetectorTrainConfig,
    MCDSVDDConfig,
    baseline_scores,
    feature_inputs,
    fit_detector,
    pretrain_autoencoder,
    train_svdd,
)
from astroray.models.anomaly._quantile import fit_quantiles, quantile_normal, quantile_uniform

BANDS = ("B", "R")
FAST = DetectorTrainConfig(pretrain_epochs=20, epochs=20, batch_size=32, seed=0)


@pytest.fixture(scope="module")
def survey() -> dict:
    """Features of 180 short MACHO-like light curves (6 classes), and their labels."""
    table = periodic_variables(180, seed=5, n_points=(40, 100))
    x, ok, reasons = feature_inputs(table, BANDS)
    assert ok.all() and not reasons
    return {"x": x, "labels": np.array(table.column("label").to_pylist()), "table": table}


def _config(x: np.ndarray, labels, **kw) -> MCDSVDDConfig:
    return MCDSVDDConfig(input_dim=x.shape[1], bands=BANDS, labels=tuple(labels),
                         hidden=(32, 16), latent_dim=6, n_quantiles=50, **kw)


def test_quantile_transform_matches_scikit_learn():
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=400), rng.exponential(size=400), np.round(rng.normal(size=400)),
              np.ones(400)]
    x[::9, 1] = np.nan
    ref = QuantileTransformer(n_quantiles=80, output_distribution="normal",
                              subsample=None).fit(x)
    quantiles, references = fit_quantiles(x, 80)
    np.testing.assert_allclose(quantiles, ref.quantiles_)
    probe = np.r_[x, rng.normal(size=(40, 4)) * 4]  # values beyond the fitted range too
    want = ref.transform(probe)
    got = quantile_normal(probe, quantiles, references, impute=False)
    np.testing.assert_allclose(got, want, atol=1e-5, equal_nan=True)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    imputed = quantile_normal(probe, quantiles, references)
    assert np.isfinite(imputed).all() and (imputed[np.isnan(want)] == 0).all()
    # The authors' transform: scikit-learn's default uniform output, missing values -1.
    ref = QuantileTransformer(n_quantiles=80, subsample=None).fit(x)
    want = ref.transform(probe)
    got = quantile_uniform(probe, quantiles, references, missing=None)
    np.testing.assert_allclose(got, want, atol=1e-6, equal_nan=True)
    filled = quantile_uniform(probe, quantiles, references)
    np.testing.assert_allclose(filled, np.nan_to_num(want, nan=-1.0), atol=1e-6)
    assert (filled[np.isnan(want)] == -1).all() and (filled[~np.isnan(want)] >= 0).all()


def test_centres_are_class_mean_latents_and_score_is_min_distance(survey):
    x, labels = survey["x"], survey["labels"]
    inliers = ("DCEP_F", "EB", "LPV")
    keep = np.isin(labels, inliers)
    cfg = _config(x, inliers)
    ae, ae_losses = pretrain_autoencoder(x[keep], cfg, FAST)
    assert ae_losses[-1] < ae_losses[0]
    model, losses = train_svdd(ae, x[keep], labels[keep], FAST)
    assert losses[-1] < losses[0]
    # Centres: the mean latent of each inlier class under the pretrained encoder (eval mode),
    # coordinates nearer 0 than eps (the authors' 0.01) moved to +-eps.
    assert FAST.centre_eps == 0.01
    xt = quantile_uniform(x[keep], ae.quantiles.numpy(), ae.references.numpy())
    with torch.no_grad():
        z0 = ae.encoder(torch.from_numpy(xt)).numpy()
    want = np.stack([z0[labels[keep] == c].mean(axis=0) for c in inliers])
    want = np.where(np.abs(want) < 0.01, np.where(want < 0, -0.01, 0.01), want)
    np.testing.assert_allclose(model.centres.numpy(), want, rtol=1e-5, atol=1e-6)
    # Score: the minimum Euclidean distance to any centre, over the stored scale.
    scores, nearest, latents = model.score(x)
    xt_all = quantile_uniform(x, model.quantiles.numpy(), model.references.numpy())
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(xt_all)).numpy()
    np.testing.assert_allclose(latents, z, rtol=1e-5, atol=1e-6)
    d = np.sqrt(((z[:, None, :] - model.centres.numpy()[None]) ** 2).sum(-1))  # (N, K)
    np.testing.assert_allclose(scores, d.min(axis=1) / model.config.score_scale, rtol=1e-5)
    assert (nearest == d.argmin(axis=1)).all()
    assert np.median(model.score(x[keep])[0]) == pytest.approx(1.0, rel=1e-5)
    # The training pulled inliers towards their own centre.
    own = np.array([inliers.index(c) for c in labels[keep]])
    before = np.linalg.norm(z0 - model.centres.numpy()[own], axis=1).mean()
    after = np.linalg.norm(z[keep] - model.centres.numpy()[own], axis=1).mean()
    assert after < 0.5 * before
    # Single-centre Deep SVDD from the same pretrained weights: one centre, the mean latent.
    single, _ = train_svdd(ae, x[keep], labels[keep], FAST, centres="single")
    mean = z0.mean(axis=0)
    mean = np.where(np.abs(mean) < 0.01, np.where(mean < 0, -0.01, 0.01), mean)
    np.testing.assert_allclose(single.centres.numpy(), mean[None], rtol=1e-5, atol=1e-6)


def test_encoder_layers_follow_the_authors_and_the_bias_free_variant():
    """Hidden layers: Linear biases and affine BatchNorm; the latent layer: no bias."""
    model = MCDSVDD(MCDSVDDConfig(input_dim=7, bands=BANDS, hidden=(16, 8), latent_dim=3))
    linears = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    norms = [m for m in model.encoder if isinstance(m, torch.nn.BatchNorm1d)]
    assert [lin.bias is not None for lin in linears] == [True, True, False]
    assert len(norms) == 2 and all(bn.affine for bn in norms)
    # The decoder ends in tanh: its targets are the uniform inputs and the missing value -1.
    assert isinstance(model.decoder[-1], torch.nn.Tanh)
    assert model.decoder[-2].bias is not None
    # Our earlier variant (Ruff et al. 2018): no bias anywhere, BatchNorm without affine.
    free = MCDSVDD(MCDSVDDConfig(input_dim=7, bands=BANDS, hidden=(16, 8), latent_dim=3,
                                 bias=False, input_transform="normal"))
    assert all(not n.endswith("bias") for n, _ in free.encoder.named_parameters())
    assert all(not m.affine for m in free.encoder if isinstance(m, torch.nn.BatchNorm1d))
    assert isinstance(free.decoder[-1], torch.nn.Linear)


def test_centre_eps_pushes_small_coordinates_out_and_keeps_zero():
    model = MCDSVDD(MCDSVDDConfig(input_dim=3, bands=BANDS, labels=("a",), hidden=(4,),
                                  latent_dim=5))
    z = torch.tensor([[0.005, -0.005, 0.0, 0.05, -0.02]])
    model.set_centres(z, ["a"])  # the authors' eps, 0.01
    np.testing.assert_allclose(model.centres.numpy(), [[0.01, -0.01, 0.0, 0.05, -0.02]])
    model.set_centres(z, ["a"], eps=0.1)  # our earlier eps
    np.testing.assert_allclose(model.centres.numpy(), [[0.1, -0.1, 0.0, 0.1, -0.1]])


def test_a_missing_feature_is_visible_to_the_detector(survey):
    """Missing -> -1, outside the observed range: not the same as a typical value."""
    x, labels = survey["x"], survey["labels"]
    model, _ = fit_detector(x, labels, _config(x, sorted(set(labels))), FAST)
    j = 3
    probe = np.repeat(x[:20], 2, axis=0)
    median = np.median(x[:, j])
    probe[0::2, j] = np.nan  # planted missing feature
    probe[1::2, j] = median  # the same objects with a typical value instead
    xt = model.transform(probe)
    assert (xt[0::2, j] == -1).all() and (xt[1::2, j] == pytest.approx(0.5, abs=0.02))
    missing, typical = model.score(probe)[0][0::2], model.score(probe)[0][1::2]
    assert np.abs(missing - typical).min() > 1e-3 * np.median(typical)
    assert not np.allclose(missing, model.score(x[:20])[0])
    # Our earlier variant imputed the median: a missing feature scored as a typical one.
    normal, _ = fit_detector(x, labels, _config(x, sorted(set(labels)),
                                                input_transform="normal"), FAST)
    xt = normal.transform(probe)
    assert (xt[0::2, j] == 0).all() and (np.abs(xt[1::2, j]) < 0.05).all()


def test_held_out_class_is_detected(survey):
    x, labels = survey["x"], survey["labels"]
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    test = rng.random(len(labels)) < 0.35
    # Long-period variables (periods of hundreds of days, magnitudes of amplitude) are the
    # easy anomaly among the short-period classes.
    train = ~test & (labels != "LPV")
    inliers = tuple(sorted(set(labels[train])))
    # 60 epochs: with the authors' uniform inputs 20 epochs leave this tiny survey underfit.
    train_cfg = FAST.replace(pretrain_epochs=60, epochs=60)
    model, history = fit_detector(x[train], labels[train], _config(x, inliers), train_cfg)
    truth = labels[test] == "LPV"
    auc = roc_auc_score(truth, model.score(x[test])[0])
    assert auc > 0.8, auc
    base = baseline_scores(x[train], x[test], trees=50)
    assert roc_auc_score(truth, base["isolation_forest"]) > 0.7
    assert roc_auc_score(truth, base["ocsvm"]) > 0.7
    assert history["pretrain_seconds"] > 0 and len(history["svdd_loss"]) == train_cfg.epochs


def test_save_load_round_trip_and_registry(survey, tmp_path):
    x, labels = survey["x"], survey["labels"]
    model, _ = fit_detector(x, labels, _config(x, sorted(set(labels))), FAST)
    before = model.score(x)
    path = model.save_pretrained(tmp_path / "det")
    raw = json.loads((path / "config.json").read_text())
    assert raw["model_type"] == "mcdsvdd" and raw["bands"] == list(BANDS)
    # The fitted quantile transform travels in the weights file.
    from safetensors.torch import load_file

    state = load_file(str(path / "model.safetensors"))
    np.testing.assert_array_equal(state["quantiles"].numpy(), model.quantiles.numpy())
    for loaded in (MCDSVDD.from_pretrained(path), load_model(path)):
        after = loaded.score(x)
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
    # The registered names build tiny models of the family.
    for name in ("mcdsvdd", "deep-svdd"):
        m = create_model(name, **tiny_overrides(name))
        out = m(torch.randn(4, m.config.input_dim))
        assert out.shape == (4,)
    assert create_model("deep-svdd").config.num_centres == 1


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="centres"):
        MCDSVDDConfig(input_dim=3, bands=BANDS, centres="many")
    with pytest.raises(ConfigError, match="bands"):
        MCDSVDDConfig(input_dim=3, bands=None)
    with pytest.raises(ConfigError, match="encoder"):
        MCDSVDDConfig(input="embeddings", input_dim=32)
    with pytest.raises(ConfigError, match="input_transform"):
        MCDSVDDConfig(input_dim=3, bands=BANDS, input_transform="gaussian")
    with pytest.raises(ValueError, match="no training object"):
        fit_detector(np.random.default_rng(0).normal(size=(10, 3)), ["a"] * 10,
                     MCDSVDDConfig(input_dim=3, bands=BANDS, labels=("a", "b"),
                                   hidden=(4,), latent_dim=2), FAST)


def test_bulk_inference_adds_anomaly_score_and_bad_objects_go_to_errors(
        ray_session, survey, tmp_path):
    from astroray.infer.catalogue import InferConfig, read_catalogue, run_inference
    from astroray.infer.predictors import get_predictor

    x, labels = survey["x"], survey["labels"]
    model, _ = fit_detector(x, labels, _config(x, sorted(set(labels))), FAST)
    det = model.save_pretrained(tmp_path / "detector")
    folder = tmp_path / "survey"
    make_survey(SyntheticSurveyConfig(kind="periodic", n=12, format="csv", seed=9), folder)
    (folder / "allnan.csv").write_text("time,mag,magerr,band\n" + "".join(
        f"{i}.0,nan,0.1,B\n" for i in range(1, 9)))
    (folder / "short.csv").write_text("time,mag,magerr,band\n1.0,15.0,0.1,B\n2.0,15.1,0.1,R\n")
    run_inference(InferConfig(model=str(det), paths=(str(folder),), batch_size=8,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run",
                  progress=False)
    cat, err = read_catalogue(tmp_path / "run")
    assert cat.num_rows == 12
    assert {"anomaly_score", "anomaly_nearest_class", "model_hash"} <= set(cat.column_names)
    scores = cat.column("anomaly_score").to_numpy()
    assert np.isfinite(scores).all() and (scores > 0).all()
    assert set(cat.column("anomaly_nearest_class").to_pylist()) <= set(labels)
    errors = {r["object_id"]: r["error"] for r in err.to_pylist()}
    assert set(errors) == {"allnan", "short"}, errors
    assert "2 valid points in bands ['B', 'R']" in errors["short"]
    assert "no valid points" in errors["allnan"]  # the reader rejects it, naming why
    # The catalogue's scores are the detector's own, object by object.
    from astroray.data.registry import read_files

    data, _ = read_files(folder)
    data = data.filter(np.isin(data.column("object_id").to_numpy(zero_copy_only=False),
                               cat.column("object_id").to_numpy(zero_copy_only=False)))
    raw, ok, _ = feature_inputs(data, BANDS)
    want = dict(zip(data.column("object_id").to_pylist(), model.score(raw[ok])[0],
                    strict=True))
    got = dict(zip(cat.column("object_id").to_pylist(), scores, strict=True))
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-5)
    # Embeddings are the latent vectors when asked for.
    pred = get_predictor(det, embedding=True, device="cpu")
    from astroray.data.fileio import numpy_batch

    batch = numpy_batch(data.slice(0, 3))
    out = pred(batch)
    assert out.table.column("embedding").type.list_size == model.config.latent_dim
    # Light curves that reach the model NaN-only or empty are failures with the reason.
    batch["mag"][0] = np.full(batch["mag"][0].shape, np.nan)
    for key in ("time", "mag", "err", "band"):
        batch[key][1] = batch[key][1][:0]
    out = pred(batch)
    ids = [str(v) for v in batch["object_id"]]
    assert out.table.column("object_id").to_pylist() == ids[2:]
    assert set(out.failures) == set(ids[:2])
    assert all("0 valid points in bands ['B', 'R']" in out.failures[i] for i in ids[:2])


def test_embedding_inputs_detector_round_trip(tmp_path):
    from astroray.data.fileio import numpy_batch
    from astroray.infer.astromer import AstromerEmbedder
    from astroray.infer.predictors import get_predictor
    from astroray.models.anomaly import embedding_inputs
    from astroray.models.astromer import load_encoder

    encoder = load_encoder("astromer-tiny", random_init=True)
    table = periodic_variables(40, seed=2, n_points=(30, 60))
    embedder = AstromerEmbedder(encoder, min_points=5, device="cpu")
    x, ok, _ = embedding_inputs(table, embedder, bands=BANDS)
    assert ok.all() and x.shape == (40, encoder.config.d_model)
    labels = np.array(table.column("label").to_pylist())
    cfg = MCDSVDDConfig(input="embeddings", input_dim=encoder.config.d_model, bands=BANDS,
                        labels=tuple(sorted(set(labels))), hidden=(16,), latent_dim=4,
                        n_quantiles=20, encoder=encoder.config)
    model, _ = fit_detector(x, labels, cfg, DetectorTrainConfig(pretrain_epochs=3, epochs=3,
                                                                batch_size=16))
    model.astromer.load_state_dict(encoder.state_dict())
    det = model.save_pretrained(tmp_path / "emb-detector")
    batch = numpy_batch(table)
    batch["time"][0] = batch["time"][0][:2]  # too short: an error, with the reason
    batch["mag"][0] = batch["mag"][0][:2]
    batch["err"][0] = batch["err"][0][:2]
    batch["band"][0] = batch["band"][0][:2]
    pred = get_predictor(det, device="cpu")(batch)
    ids = table.column("object_id").to_pylist()
    assert list(pred.failures) == [ids[0]] and "valid points" in pred.failures[ids[0]]
    np.testing.assert_allclose(pred.table.column("anomaly_score").to_numpy(),
                               model.score(x[1:])[0], rtol=1e-4)
