"""POST /v1/lightcurves/anomaly over real HTTP: the detector's scores, validation, listing."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from astroray.data.fileio import numpy_batch
from astroray.data.schema import table_from_records
from astroray.data.synthetic import periodic_variables
from astroray.infer.predictors import get_predictor, model_hash
from astroray.models.anomaly import DetectorTrainConfig, MCDSVDDConfig, feature_inputs, fit_detector
from astroray.serve import ServeConfig
from astroray.serve.schemas import LightCurve

BANDS = ("B", "R")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    table = periodic_variables(90, seed=7, n_points=(40, 80))
    x, ok, _ = feature_inputs(table, BANDS)
    labels = np.array(table.column("label").to_pylist())
    cfg = MCDSVDDConfig(input_dim=x.shape[1], bands=BANDS, labels=tuple(sorted(set(labels))),
                        hidden=(16, 8), latent_dim=4, n_quantiles=30)
    model, _ = fit_detector(x[ok], labels[ok], cfg,
                            DetectorTrainConfig(pretrain_epochs=5, epochs=5, batch_size=32))
    return model.save_pretrained(tmp_path_factory.mktemp("serve-anomaly") / "mcdsvdd-det")


@pytest.fixture(scope="module")
def server(ray_session, detector):
    """One application for the module (the detector alone), no token."""
    from ray import serve

    from astroray.serve import run

    cfg = ServeConfig(lightcurves_anomaly=(str(detector),), min_replicas=1, max_replicas=1,
                      num_cpus=0.25, ingress_num_cpus=0.1, max_batch_size=8,
                      max_ongoing_requests=16, port=_free_port(), torch_threads=1)
    run(cfg, blocking=False)
    yield f"http://127.0.0.1:{cfg.port}"
    serve.shutdown()


def _call(url: str, body: object = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _objects(n: int, seed: int) -> list[dict]:
    table = periodic_variables(n, seed=seed, n_points=(40, 90))
    return [{"object_id": r["object_id"], "times": r["time"], "mags": r["mag"],
             "errs": r["err"], "bands": r["band"]} for r in table.to_pylist()]


def test_anomaly_scores_match_the_predictor_and_bad_input_is_4xx(server, detector):
    url = server + "/v1/lightcurves/anomaly"
    objs = _objects(5, seed=8)
    short = {"object_id": "short", "times": [1.0, 2.0], "mags": [15.0, 15.1],
             "errs": [0.1, 0.1], "bands": ["B", "R"]}
    status, body = _call(url, {"objects": objs + [short]})
    assert status == 200, body
    assert body["model"] == "mcdsvdd-det" and body["model_hash"] == model_hash(detector)
    records = [LightCurve(**o).record() for o in objs + [short]]
    pred = get_predictor(detector, device="cpu")(numpy_batch(table_from_records(records,
                                                                                "lightcurve")))
    want = dict(zip(pred.table.column("object_id").to_pylist(),
                    pred.table.column("anomaly_score").to_pylist(), strict=True))
    assert [r["object_id"] for r in body["results"]] == [o["object_id"] for o in objs]
    for r in body["results"]:
        assert r["anomaly_score"] == pytest.approx(want[r["object_id"]], rel=1e-5)
        assert r["nearest_class"] in {"DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc"}
        assert r["probabilities"] is None
    assert body["errors"] == [{"object_id": "short", "error": pred.failures["short"]}]
    assert "valid points in bands ['B', 'R']" in body["errors"][0]["error"]
    # Bad bodies: 4xx naming the problem, and the server keeps answering.
    good = objs[0]
    bad = [({"objects": [dict(good, mags=[float("nan")] + good["mags"][1:])]},
            "objects[0].mags[0]"),
           ({"objects": []}, "objects"),
           ({"objects": [dict(good, errs=good["errs"][:-1])]}, "equal lengths"),
           ({"objects": [dict(good, bands=["g"] * len(good["bands"]))]},
            "unknown band(s) ['g']"),
           ({"objects": [good], "model": "nope"}, "model")]
    for payload, needle in bad:
        status, answer = _call(url, payload)
        assert 400 <= status < 500 and needle in json.dumps(answer), (needle, status, answer)
    status, body = _call(url, {"objects": objs[:1]})
    assert status == 200 and len(body["results"]) == 1
    # Listed with its task, inlier classes and bands; the classify route has no model here.
    status, listed = _call(server + "/v1/models")
    info = listed["models"][0]
    assert (info["route"], info["task"], info["bands"]) == ("/v1/lightcurves/anomaly",
                                                             "anomaly", list(BANDS))
    assert set(info["labels"]) == {"DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc"}
    assert _call(server + "/v1/lightcurves/classify", {"objects": objs[:1]})[0] == 404
