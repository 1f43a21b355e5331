"""The real/bogus stamp classifier and the pieces of MME domain adaptation."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from astroray.config import ConfigError
from astroray.data import synthetic as syn
from astroray.data.schema import STAMP_SCHEMA
from astroray.models import create_model, get_config, list_models, load_model, tiny_overrides
from astroray.models.stamps import (
    CosineClassifier,
    StampClassifier,
    StampConfig,
    grad_reverse,
    rotate90,
)


def _raw(table: pa.Table) -> np.ndarray:
    """Cutouts (N, 3, H, W) of a canonical stamp table."""
    h = table.column("height")[0].as_py()
    planes = [np.stack([np.asarray(v, np.float32).reshape(h, h)
                        for v in table.column(c).to_pylist()])
              for c in ("science", "reference", "difference")]
    return np.stack(planes, axis=1)


def test_registry_and_config_validation(tmp_path):
    assert {"stamp-cnn", "stamp-cnn-tiny"} <= set(list_models())
    cfg = get_config("stamp-cnn")
    assert (cfg.crop_size, cfg.temperature, cfg.labels) == (21, 0.05, ("bogus", "real"))
    with pytest.raises(ConfigError, match="temperature"):
        StampConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="real_label"):
        StampConfig(real_label="transient")
    # Forward / backward of the tiny model on 63x63 ZTF-sized cutouts (cropped to 21x21).
    model = create_model("stamp-cnn", **tiny_overrides("stamp-cnn"))
    x = torch.from_numpy(_raw(syn.stamps(4, seed=0, survey="B")))
    logits = model(x)
    assert logits.shape == (4, 2)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="smaller than the 21x21 crop"):
        model(torch.zeros(1, 3, 15, 15))
    with pytest.raises(ValueError, match="3, height, width"):
        model(torch.zeros(1, 2, 21, 21))


def test_gradient_reversal_flips_and_scales_the_gradient():
    torch.manual_seed(0)
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(3, 2)

    def loss_of(h: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(h @ w) ** 2).sum()

    out = grad_reverse(x, 0.3)
    assert torch.equal(out, x)  # identity forward
    loss_of(out).backward()
    reversed_grad = x.grad.clone()
    x.grad = None
    loss_of(x).backward()
    # By hand: d/dx sum tanh(xw)^2 = (2 tanh(xw) (1 - tanh(xw)^2)) w^T.
    t = torch.tanh(x.detach() @ w)
    by_hand = (2 * t * (1 - t ** 2)) @ w.t()
    torch.testing.assert_close(x.grad, by_hand)
    torch.testing.assert_close(reversed_grad, -0.3 * by_hand)


def test_cosine_classifier_matches_numpy():
    torch.manual_seed(1)
    clf = CosineClassifier(6, 3, temperature=0.07)
    f = torch.randn(4, 6) * 5.0
    got = clf(f).detach().numpy()
    fn = f.numpy().astype(np.float64)
    wn = clf.weight.detach().numpy().astype(np.float64)
    cos = (fn / np.linalg.norm(fn, axis=1, keepdims=True)) @ (
        wn / np.linalg.norm(wn, axis=1, keepdims=True)).T
    np.testing.assert_allclose(got, cos / 0.07, rtol=1e-5, atol=1e-5)
    assert np.abs(got).max() <= 1 / 0.07 + 1e-4  # cosines in [-1, 1], over T


def test_rotation_augmentation_rotates_pixels_and_keeps_labels():
    from astroray.train.domain import _draw

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    out = rotate90(x, torch.tensor([1, 2]))
    # A quarter turn counter-clockwise: new[i, j] = old[j, W - 1 - i].
    for c in range(3):
        for i in range(4):
            for j in range(4):
                assert out[0, c, i, j] == x[0, c, j, 3 - i]
                assert out[1, c, i, j] == x[1, c, 3 - i, 3 - j]
    assert torch.equal(rotate90(x, 4), x) and torch.equal(rotate90(x, torch.tensor([0, 4])), x)
    # Training batches: each drawn image is a rotation of the image its label belongs to.
    images = torch.randn(6, 3, 5, 5)
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    gen = torch.Generator().manual_seed(3)
    batch, y = _draw(gen, images, 32, labels)
    turns_seen = set()
    for img, lab in zip(batch, y, strict=True):
        matches = [(n, t) for n in range(6) for t in range(4)
                   if torch.equal(torch.rot90(images[n], t, dims=(-2, -1)), img)]
        assert matches and all(labels[n] == lab for n, _ in matches)
        turns_seen.update(t for _, t in matches)
    assert turns_seen == {0, 1, 2, 3}


def test_preprocess_fills_nan_pixels_and_normalises():
    model = StampClassifier(get_config("stamp-cnn-tiny"))
    raw = torch.from_numpy(_raw(syn.stamps(3, seed=2, survey="B")))
    holed = raw.clone()
    holed[:, :, 28:33, 20:25] = float("nan")  # inside the central 21x21 crop
    holed[:, :, :, -3:] = float("inf")  # outside the crop: no effect
    clean, filled = model.preprocess(raw), model.preprocess(holed)
    assert filled.shape == (3, 3, 21, 21) and torch.isfinite(filled).all()
    # Filled pixels read as the median: exactly 0 after normalisation.
    assert torch.equal(filled[:, :, 7:12, 0:4], torch.zeros_like(filled[:, :, 7:12, 0:4]))
    away = torch.ones(21, 21, dtype=torch.bool)
    away[5:14, :6] = False
    assert (filled[..., away] - clean[..., away]).abs().max() < 0.1  # medians barely move
    # Each channel lands on a common scale whatever the survey's units.
    med = clean.flatten(2).median(dim=2).values
    assert med.abs().max() < 0.05


def test_save_load_round_trip_gives_identical_scores(tmp_path):
    from astroray.infer.predictors import get_predictor

    torch.manual_seed(0)
    model = create_model("stamp-cnn-tiny").eval()
    table = syn.stamps(6, seed=4, survey="B")
    x = torch.from_numpy(_raw(table))
    with torch.no_grad():
        before = model.predict(x)["real_score"]
    path = model.save_pretrained(tmp_path / "m")
    assert json.loads((path / "config.json").read_text())["model_type"] == "stamp-cnn"
    for loaded in (StampClassifier.from_pretrained(path), load_model(path)):
        with torch.no_grad():
            after = loaded.eval().predict(x)["real_score"]
        torch.testing.assert_close(after, before, rtol=0, atol=0)
    # The registered predictor over a canonical table: one row per stamp, same scores.
    pred = get_predictor(path, device="cpu")
    assert pred.kind == "stamp"
    batch = {k: np.asarray(v, dtype=object) for k, v in table.to_pydict().items()}
    out = pred(batch)
    assert out.failures == {}
    assert out.table.column("object_id").to_pylist() == table.column("object_id").to_pylist()
    np.testing.assert_allclose(out.table.column("real_score").to_numpy(), before.numpy(),
                               rtol=1e-6)
    probs = np.stack([out.table.column("prob_bogus").to_numpy(),
                      out.table.column("prob_real").to_numpy()], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_predictor_reports_bad_stamps_by_object(tmp_path):
    from astroray.infer.predictors import get_predictor

    path = create_model("stamp-cnn-tiny").save_pretrained(tmp_path / "m")
    rows = syn.stamps(4, seed=5, survey="B").to_pylist()
    rows[1]["science"] = rows[1]["science"][:100]  # wrong size
    rows[2]["difference"] = [float("nan")] * (63 * 63)  # nothing to score
    rows[3]["height"] = rows[3]["width"] = 9
    rows[3]["science"] = rows[3]["reference"] = rows[3]["difference"] = [0.0] * 81
    batch = {k: np.asarray([r[k] for r in rows], dtype=object) for k in rows[0]}
    out = get_predictor(path, device="cpu")(batch)
    ids = [r["object_id"] for r in rows]
    assert out.table.column("object_id").to_pylist() == [ids[0]]
    assert set(out.failures) == set(ids[1:])
    assert "science cutout has 100 pixels, expected 63x63" in out.failures[ids[1]]
    assert "difference cutout has no finite pixel" in out.failures[ids[2]]
    assert "smaller than the model's 21x21 crop" in out.failures[ids[3]]


def test_real_ztf_alerts_read_through_avro_and_scored(real, tmp_path):
    from astroray.data.registry import read_files
    from astroray.infer.predictors import get_predictor

    table, errors = read_files(str(real / "ztf_alerts"), format="ztf_avro", kind="stamp")
    assert errors.num_rows == 0 and table.num_rows == 2
    science = np.asarray(table.column("science")[0].as_py(), np.float32)
    torch.manual_seed(0)
    path = create_model("stamp-cnn-tiny").save_pretrained(tmp_path / "m")
    batch = {k: np.asarray(v, dtype=object) for k, v in table.to_pydict().items()}
    # Real cutouts may hold NaN pixels: add some to the central crop of one, to be sure.
    holed = np.asarray(batch["science"][0], np.float32).copy().reshape(63, 63)
    holed[30:33, 25:28] = np.nan
    batch["science"][0] = holed.ravel()
    out = get_predictor(path, device="cpu")(batch)
    assert out.failures == {} and out.table.num_rows == table.num_rows
    assert out.table.column("stamp_id").to_pylist() == table.column("stamp_id").to_pylist()
    scores = out.table.column("real_score").to_numpy()
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    assert science.shape == (63 * 63,)


def test_mme_entropy_term_is_adversarial_between_classifier_and_features():
    """Through gradient reversal, one loss lam * (-H) gives the classifier lam * d(-H)/dW
    (descending it raises the entropy) and the feature extractor -lam * d(-H)/dtheta
    (descending it lowers the entropy): checked against plain autograd of -H."""
    torch.manual_seed(0)
    model = StampClassifier(get_config("stamp-cnn-tiny", dropout=0.0))
    x = torch.randn(16, 3, 21, 21, generator=torch.Generator().manual_seed(0))
    lam = 0.37

    def neg_entropy(logits: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits, dim=1)
        return (p * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()

    params = {"classifier": model.classifier.weight, "conv": model.conv[0].weight,
              "dense": model.dense[-1].weight}
    plain = torch.autograd.grad(neg_entropy(model.logits(x)), list(params.values()))
    mme = torch.autograd.grad(
        lam * neg_entropy(model.classifier(grad_reverse(model.embed(x), 1.0))),
        list(params.values()))
    by_name = dict(zip(params, zip(plain, mme, strict=True), strict=True))
    g_plain, g_mme = by_name["classifier"]
    torch.testing.assert_close(g_mme, lam * g_plain)
    for name in ("conv", "dense"):
        g_plain, g_mme = by_name[name]
        assert g_plain.abs().max() > 0
        torch.testing.assert_close(g_mme, -lam * g_plain)
    # And fit_stamps runs the term: a step moves both the prototypes and the features.
    from astroray.train.domain import FitSettings, fit_stamps

    proto = model.classifier.weight.detach().clone()
    conv = model.conv[0].weight.detach().clone()
    one = (x[:1].numpy(), np.zeros(1, np.int64))
    fit_stamps(model, [one], FitSettings(steps=2, lr=1e-2, lam=1.0, batch_sizes=(1,),
                                         unlabelled_batch=16), unlabelled=x.numpy())
    assert not torch.equal(model.classifier.weight, proto)
    assert not torch.equal(model.conv[0].weight, conv)


def test_bulk_inference_scores_stamp_files(real, tmp_path, ray_session):
    """The catalogue path: real ZTF alerts and a synthetic stamp table, one row per stamp,
    real_score beside the rb the alerts carry; a stamp smaller than the crop is an error row
    naming its object."""
    import pyarrow.parquet as pq

    from astroray.infer.catalogue import InferConfig, read_catalogue, run_inference

    torch.manual_seed(0)
    model_dir = create_model("stamp-cnn-tiny").save_pretrained(tmp_path / "m")
    rows = syn.stamps(5, seed=8, survey="A").to_pylist()
    rows[4].update(height=9, width=9, science=[0.0] * 81, reference=[0.0] * 81,
                   difference=[0.0] * 81)
    (tmp_path / "syn").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=STAMP_SCHEMA),
                   tmp_path / "syn" / "stamps.parquet")
    run_inference(InferConfig(model=str(model_dir),
                              paths=(str(real / "ztf_alerts"), str(tmp_path / "syn")),
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run",
                  progress=False)
    cat, err = read_catalogue(tmp_path / "run")
    assert cat.num_rows == 2 + 4 and err.num_rows == 1
    assert err.column("object_id").to_pylist() == [rows[4]["object_id"]]
    assert "smaller than the model's 21x21 crop" in err.column("error")[0].as_py()
    scores = cat.column("real_score").to_numpy()
    assert np.all((scores >= 0) & (scores <= 1))
    assert {"stamp_id", "prob_real", "prob_bogus", "predicted_class"} <= set(cat.column_names)
