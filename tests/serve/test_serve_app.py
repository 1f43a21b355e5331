"""The Serve application over real HTTP: numbers, validation, auth, models, health, docs."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from astroray.data.fileio import numpy_batch
from astroray.data.schema import table_from_records
from astroray.data.synthetic import periodic_variables, spectra
from astroray.infer.predictors import get_predictor, model_hash, prob_column
from astroray.models import create_model, tiny_overrides
from astroray.models.astromer import ASTROMER_TINY, AstromerClassifier, AstromerClassifierConfig
from astroray.models.vision.processing import write_render_spec
from astroray.render import LightCurveRenderConfig, SpectrumRenderConfig
from astroray.serve import ServeConfig
from astroray.serve.schemas import LightCurve, Spectrum

CLASSES = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")
TOKEN = "s3cret-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vision(folder: Path, name: str, kind: str, render, labels, task: str, bands=None,
            suffix: str = "", **overrides) -> Path:
    torch.manual_seed(0)
    model = create_model(name, **tiny_overrides(name), labels=labels, task=task,
                         target_scale=3.0, **overrides).eval()
    path = model.save_pretrained(folder / f"{name}-{task}{suffix}")
    write_render_spec(path, kind, render.to_dict(), 4700, bands)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("serve-models")
    torch.manual_seed(0)
    clf = AstromerClassifier(AstromerClassifierConfig(
        encoder=ASTROMER_TINY, labels=CLASSES, hidden=(32, 16), min_points=5))
    clf.head.set_standardization(torch.randn(3, 32) * 0.1, torch.rand(3, 32) + 0.5)
    small = SpectrumRenderConfig(height=64, width=64)
    return {
        "astromer": clf.eval().save_pretrained(folder / "astromer-clf"),
        "swin": _vision(folder, "swinv2-tiny-lightcurves", "lightcurves",
                        LightCurveRenderConfig(height=64, width=64, bands=("B", "R")),
                        CLASSES, "classification", bands=["B", "R"], head_dropout=0.5,
                        uncertainty="mc_dropout", passes=8),  # an MC Dropout head
        # trained on folded pictures: Serve finds each object's Lomb-Scargle period
        "swin_folded": _vision(folder, "swinv2-tiny-lightcurves", "lightcurves",
                               LightCurveRenderConfig(height=64, width=64, bands=("B", "R"),
                                                      fold="lomb_scargle"),
                               CLASSES, "classification", bands=["B", "R"], suffix="-folded"),
        "vit": _vision(folder, "vit-tiny-spectra", "spectra", small,
                       ("STAR", "GALAXY", "QSO"), "classification"),
        "vit_z": _vision(folder, "vit-tiny-spectra", "spectra", small, ("STAR", "GALAXY", "QSO"),
                         "regression"),
    }


@pytest.fixture(scope="module")
def server(ray_session, models, tmp_path_factory):
    """One application for the module, on a free port of 127.0.0.1, with a bearer token."""
    from ray import serve

    from astroray.serve import run

    token_file = tmp_path_factory.mktemp("secret") / "token"
    token_file.write_text(TOKEN + "\n")
    cfg = ServeConfig(lightcurves_classify=(str(models["astromer"]), str(models["swin"]),
                                            str(models["swin_folded"])),
                      spectra_classify=(str(models["vit"]),),
                      spectra_redshift=(str(models["vit_z"]),), min_replicas=1,
                      max_replicas=1, num_cpus=0.25, ingress_num_cpus=0.1, max_batch_size=8,
                      max_ongoing_requests=16, port=_free_port(), token_file=str(token_file),
                      torch_threads=1)
    run(cfg, blocking=False)
    yield f"http://127.0.0.1:{cfg.port}"
    serve.shutdown()


def _call(url: str, body: object = None, *, token: str | None = TOKEN,
          raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _light_curves(n: int, seed: int = 1) -> list[dict]:
    table = periodic_variables(n, seed=seed, n_points=(40, 120))
    out = []
    for row in table.to_pylist():
        out.append({"object_id": row["object_id"], "times": row["time"], "mags": row["mag"],
                    "errs": row["err"], "bands": row["band"]})
    return out


def _spectra(n: int, seed: int = 2) -> list[dict]:
    table = spectra(n, seed=seed)
    return [{"object_id": r["object_id"], "wavelength": r["wavelength"], "flux": r["flux"],
             "ivar": r["ivar"], "mask": r["mask"]} for r in table.to_pylist()]


def _direct(model_dir: Path, records: list[dict], kind: str):
    pred = get_predictor(model_dir, device="cpu")(numpy_batch(table_from_records(records, kind)))
    return {r["object_id"]: r for r in pred.table.to_pylist()}, pred.failures


def test_light_curves_match_the_predictor_and_short_ones_are_errors(server, models):
    objs = _light_curves(6)
    short = {"object_id": "short", "times": [1.0, 2.0], "mags": [15.0, 15.1],
             "errs": [0.1, 0.1], "bands": ["B", "B"]}
    status, body = _call(server + "/v1/lightcurves/classify", {"objects": objs + [short]})
    assert status == 200, body
    assert body["model"] == "astromer-clf"
    assert body["model_hash"] == model_hash(models["astromer"])
    records = [LightCurve(**o).record() for o in objs + [short]]
    expected, failures = _direct(models["astromer"], records, "lightcurve")
    assert [e["object_id"] for e in body["errors"]] == ["short"] and "short" in failures
    assert "valid points" in body["errors"][0]["error"]
    assert [r["object_id"] for r in body["results"]] == [o["object_id"] for o in objs]
    for r in body["results"]:
        got = [r["probabilities"][c] for c in CLASSES]
        want = [expected[r["object_id"]][prob_column(c)] for c in CLASSES]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        assert r["predicted_class"] == CLASSES[int(np.argmax(want))]
    # The SwinV2 light-curve model on the same route, chosen by name.
    status, body = _call(server + "/v1/lightcurves/classify",
                         {"objects": objs[:2], "model": models["swin"].name})
    assert status == 200 and body["model"] == models["swin"].name, body
    for r in body["results"]:  # the mean of 8 passes, with the uncertainty scores
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-5
        scores = r["scores"]
        assert abs(scores["uncertainty_smp"] - (1 - max(r["probabilities"].values()))) < 1e-5
        assert scores["uncertainty_pv"] > 0 and scores["uncertainty_bald"] >= -1e-6


def test_folded_swin_folds_as_the_catalogue_predictor_does(server, models):
    objs = _light_curves(4, seed=5)
    status, body = _call(server + "/v1/lightcurves/classify",
                         {"objects": objs, "model": models["swin_folded"].name})
    assert status == 200 and body["model"] == models["swin_folded"].name, body
    expected, failures = _direct(models["swin_folded"], [LightCurve(**o).record() for o in objs],
                                 "lightcurve")
    assert not failures and not body["errors"]
    for r in body["results"]:
        want = expected[r["object_id"]]
        np.testing.assert_allclose([r["probabilities"][c] for c in CLASSES],
                                   [want[prob_column(c)] for c in CLASSES], rtol=1e-5, atol=1e-7)
        # the period each picture was folded at comes back with the scores
        assert r["scores"]["period"] == pytest.approx(want["period"])
        assert 0 < r["scores"]["period_power"] == pytest.approx(want["period_power"])


def test_concurrent_single_object_requests_are_batched_correctly(server, models):
    from concurrent.futures import ThreadPoolExecutor

    # Different light curves under one id (ids are unique per request, not across requests).
    objs = [dict(o, object_id="alert") for o in _light_curves(8, seed=3)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda o: _call(server + "/v1/lightcurves/classify",
                                                {"objects": [o]}), objs))
    records = [dict(LightCurve(**o).record(), object_id=str(i)) for i, o in enumerate(objs)]
    expected, _ = _direct(models["astromer"], records, "lightcurve")
    for i, (status, body) in enumerate(answers):
        assert status == 200 and body["results"][0]["object_id"] == "alert", body
        got = [body["results"][0]["probabilities"][c] for c in CLASSES]
        want = [expected[str(i)][prob_column(c)] for c in CLASSES]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    from ray import serve

    handle = serve.get_deployment_handle("lightcurves-classify-astromer-clf", "astroray")
    stats = handle.stats.remote().result()
    assert stats["largest_batch"] > 1 and stats["batches"] < stats["requests"], stats


def test_spectra_classify_and_redshift(server, models):
    objs = _spectra(4)
    records = [Spectrum(**o).record() for o in objs]
    status, body = _call(server + "/v1/spectra/classify", {"objects": objs})
    assert status == 200, body
    expected, _ = _direct(models["vit"], records, "spectrum")
    for r in body["results"]:
        got = [r["probabilities"][c] for c in ("STAR", "GALAXY", "QSO")]
        want = [expected[r["object_id"]][prob_column(c)] for c in ("STAR", "GALAXY", "QSO")]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    status, body = _call(server + "/v1/spectra/redshift", {"objects": objs})
    assert status == 200 and body["model_hash"] == model_hash(models["vit_z"]), body
    expected, _ = _direct(models["vit_z"], records, "spectrum")
    got = {r["object_id"]: r["redshift"] for r in body["results"]}
    np.testing.assert_allclose([got[o["object_id"]] for o in objs],
                               [expected[o["object_id"]]["redshift"] for o in objs], rtol=1e-5)
    assert all(r["probabilities"] is None for r in body["results"])


def _bad_requests() -> list[tuple[str, object, str]]:
    good = _light_curves(1)[0]
    spec = _spectra(1)[0]
    nan = dict(good, mags=[float("nan")] + good["mags"][1:])
    back = dict(spec, wavelength=list(reversed(spec["wavelength"])))
    return [
        ("lc", {"objects": [dict(good, errs=good["errs"][:-1])]}, "equal lengths"),
        ("lc", {"objects": [nan]}, "objects[0].mags[0]"),
        ("lc", {"objects": [good] * 257}, "objects"),
        ("lc", {"objects": [dict(good, bands=["B"] * (len(good["bands"]) - 1) + ["x"])]},
         "objects[0].bands"),
        ("lc", {"objects": [dict(good, bands=["g"] * len(good["bands"]))],
                "model": "swinv2-tiny-lightcurves-classification"}, "unknown band(s) ['g']"),
        ("lc", {"objects": []}, "objects"),
        ("lc", {"objects": [dict(good, times="abc")]}, "objects[0].times"),
        ("lc", {"objects": [dict(good, object_id=7)]}, "objects[0].object_id"),
        ("lc", {"objects": [good, good]}, "repeated"),
        ("lc", {"objects": [good], "model": "nope"}, "model"),
        ("sp", {"objects": [back]}, "wavelength must increase"),
        ("sp", {"objects": [dict(spec, ivar=spec["ivar"][:10])]}, "equal lengths"),
    ]


def test_bad_requests_answer_4xx_naming_the_field_and_the_replica_stays_up(server):
    routes = {"lc": "/v1/lightcurves/classify", "sp": "/v1/spectra/classify"}
    for route, body, needle in _bad_requests():
        status, answer = _call(server + routes[route], body)
        assert 400 <= status < 500, (needle, status, answer)
        text = json.dumps(answer)
        assert needle in text, (needle, answer)
    status, answer = _call(server + routes["lc"], raw=b"")
    assert status == 422 and "body" in json.dumps(answer)
    status, answer = _call(server + routes["lc"], raw=b"{not json")
    assert status == 422
    status, body = _call(server + routes["lc"], {"objects": _light_curves(1)})
    assert status == 200 and len(body["results"]) == 1


def test_auth_models_health_and_docs(server, models):
    url = server + "/v1/lightcurves/classify"
    body = {"objects": _light_curves(1)}
    assert _call(url, body, token=None)[0] == 401
    assert _call(url, body, token="wrong")[0] == 401
    assert _call(url, {"objects": []}, token="wrong")[0] == 401  # before the body is read
    assert _call(server + "/v1/models", token=None)[0] == 401
    assert _call(url, body)[0] == 200
    assert _call(server + "/healthz", token=None) == (200, {"status": "ok"})
    status, listed = _call(server + "/v1/models")
    assert status == 200
    by_name = {m["name"]: m for m in listed["models"]}
    assert by_name["astromer-clf"]["labels"] == list(CLASSES)
    assert by_name["astromer-clf"]["bands"] is None  # every band: known ones are checked
    assert by_name[models["swin"].name]["bands"] == ["B", "R"]
    assert by_name["astromer-clf"]["model_hash"] == model_hash(models["astromer"])
    assert by_name[models["vit_z"].name]["task"] == "regression"
    assert by_name[models["vit_z"].name]["route"] == "/v1/spectra/redshift"
    assert {m["kind"] for m in listed["models"]} == {"lightcurve", "spectrum"}
    status, spec = _call(server + "/openapi.json", token=None)
    assert status == 200
    assert {"/v1/lightcurves/classify", "/v1/spectra/classify", "/v1/spectra/redshift",
            "/v1/models", "/healthz"} <= set(spec["paths"])
    with urllib.request.urlopen(server + "/docs", timeout=30) as resp:
        assert resp.status == 200 and b"/v1/lightcurves/classify" in resp.read()
    # One deployment per model folder, plus the ingress, all running.
    from ray import serve

    app = serve.status().applications["astroray"]
    assert app.status == "RUNNING"
    assert set(app.deployments) == {
        "Ingress", "lightcurves-classify-astromer-clf",
        "lightcurves-classify-swinv2-tiny-lightcurves-classification",
        "lightcurves-classify-swinv2-tiny-lightcurves-classification-folded",
        "spectra-classify-vit-tiny-spectra-classification",
        "spectra-redshift-vit-tiny-spectra-regression"}
