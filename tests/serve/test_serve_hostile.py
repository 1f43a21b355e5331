"""Serve under hostile requests (issue 19, point 5 and 7): each answer exact, never a 5xx, and
the server answers good requests after all of them. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
import torch

from astroray.models.astromer import ASTROMER_TINY, AstromerClassifier, AstromerClassifierConfig
from astroray.serve import ServeConfig

TOKEN = "hostile-test-token"
ROUTE = "/v1/lightcurves/classify"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    from ray import serve

    from astroray.serve import run

    folder = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=ASTROMER_TINY, labels=("RRab", "RRc"), hidden=(8,), min_points=3))
    path = model.eval().save_pretrained(folder / "clf")
    from astroray.models.card import write_model_card

    # A model card: answers carry the same in_domain flag as catalogues.
    write_model_card(path, {"classes": ["RRab", "RRc"], "domain": {
        "surveys": ["macho"], "bands": ["B", "R"], "cadence_days": [0.5, 2.0],
        "points": [3, 100], "confidence": {"threshold": 0.999}}})
    (folder / "token").write_text(TOKEN)
    cfg = ServeConfig(lightcurves_classify=(str(path),), min_replicas=1, max_replicas=1,
                      num_cpus=0.25, ingress_num_cpus=0.1, port=_free_port(),
                      token_file=str(folder / "token"), torch_threads=1)
    run(cfg, blocking=False)
    yield f"http://127.0.0.1:{cfg.port}"
    serve.shutdown()


def _post(url: str, raw: bytes, token: str | None = TOKEN) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=raw, method="POST")
    req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _lc(**changes: object) -> dict:
    obj = {"object_id": "a", "times": [1.0, 2.0, 3.0, 4.0], "mags": [15.0, 15.2, 15.1, 15.3],
           "errs": [0.1] * 4, "bands": ["B"] * 4}
    obj.update(changes)
    return obj


def _body(*objects: dict, **extra: object) -> bytes:
    return json.dumps({"objects": list(objects), **extra}).encode()


CASES = [
    # (name, body, token, status, words in the answer)
    ("no token, broken body", b"{not json", None, 401, ["bearer token"]),
    ("wrong token, 3 MB body", b"[" + b"1," * 1_500_000 + b"1]", "nope", 401, ["bearer"]),
    ("time beyond float32", _body(_lc(times=[1e39, 2.0, 3.0, 4.0])), TOKEN, 422,
     ["objects[0].times[0]", "less than or equal to 1000000"]),
    ("sentinel magnitude", _body(_lc(mags=[99.999, 15.0, 15.0, 15.0])), TOKEN, 422,
     ["objects[0].mags[0]", "less than or equal to 90"]),
    ("flux beyond float32", _body(_lc(mags=None, fluxes=[1e39, 1.0, 1.0, 1.0])), TOKEN, 422,
     ["objects[0].fluxes[0]"]),
    ("string number", _body(_lc(mags=["15.0", 15.0, 15.0, 15.0])), TOKEN, 422,
     ["objects[0].mags[0]", "valid number"]),
    ("boolean number", _body(_lc(times=[True, 2.0, 3.0, 4.0])), TOKEN, 422,
     ["objects[0].times[0]", "valid number"]),
    ("number as band", _body(_lc(bands=[1, "B", "B", "B"])), TOKEN, 422,
     ["objects[0].bands[0]", "valid string"]),
    ("NaN", b'{"objects": [{"object_id": "a", "times": [NaN, 2, 3, 4], "mags": [1, 2, 3, 4], '
            b'"errs": [0.1, 0.1, 0.1, 0.1], "bands": ["B", "B", "B", "B"]}]}', TOKEN, 422,
     ["objects[0].times[0]"]),
    ("unequal lengths", _body(_lc(errs=[0.1])), TOKEN, 422, ["equal lengths"]),
    ("repeated ids", _body(_lc(), _lc()), TOKEN, 422, ["repeated"]),
    ("unknown field", _body(_lc(colour="red")), TOKEN, 422, ["objects[0].colour"]),
    ("no objects", _body(), TOKEN, 422, ["objects"]),
    ("not JSON", b"{oops", TOKEN, 422, ["JSON"]),
    ("a list, not an object", b"[1, 2, 3]", TOKEN, 422, ["body"]),
    ("unknown band", _body(_lc(bands=["w9"] * 4)), TOKEN, 422, ["unknown band(s) ['w9']"]),
    ("unknown model", _body(_lc(), model="nope"), TOKEN, 400, ["'nope' is not served"]),
]


@pytest.mark.parametrize(("name", "raw", "token", "status", "words"), CASES,
                         ids=[c[0] for c in CASES])
def test_hostile_request(server, name, raw, token, status, words):
    code, answer = _post(server + ROUTE, raw, token)
    assert code == status, answer[:500]
    text = answer.decode()
    for w in words:
        assert w in text, (w, text[:500])


def test_a_huge_invalid_body_gets_a_small_answer(server):
    """3 MB of bad numbers: the 422 lists 20 problems and counts them all (was 27.5 MB)."""
    bad = _lc(times=["x"] * 20_000, mags=["y"] * 20_000, errs=[0.1] * 20_000,
              bands=["B"] * 20_000)
    raw = _body(*[{**bad, "object_id": f"o{i}"} for i in range(8)])
    assert len(raw) > 1_000_000
    code, answer = _post(server + ROUTE, raw)
    assert code == 422 and len(answer) < 20_000, len(answer)
    body = json.loads(answer)
    assert len(body["detail"]) == 20 and body["errors"] >= 8 * 40_000
    assert "more error(s)" in body["message"]


def test_docs_work_offline(server):
    with urllib.request.urlopen(server + "/docs", timeout=30) as resp:
        page = resp.read().decode()
    assert resp.status == 200 and "/v1/lightcurves/classify" in page
    assert "<script" not in page and "cdn" not in page.lower()
    assert "&lt;= 1e+06" in page  # the bounds are listed (MJD times)


def test_the_server_still_answers_after_everything(server):
    code, answer = _post(server + ROUTE, _body(_lc(), _lc(object_id="b", survey="ztf")))
    assert code == 200, answer[:500]
    body = json.loads(answer)
    assert [r["object_id"] for r in body["results"]] == ["a", "b"]
    a, b = body["results"]
    # "api" (no survey named) is not judged on its survey; ZTF is not the model's survey.
    assert a["in_domain"] is True and a["ood_reason"] is None, a
    assert b["in_domain"] is False and "survey ztf not in training" in b["ood_reason"], b
