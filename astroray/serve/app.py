"""The Ray Serve application: one model deployment per served folder, behind a FastAPI ingress.

Each model deployment loads a saved folder with the catalogue's predictors
(:func:`astroray.infer.predictors.get_predictor`), so Serve and bulk inference give the same
numbers. Requests are combined by ``@serve.batch`` into one forward pass; replicas autoscale
between ``min_replicas`` and ``max_replicas`` on fractional CPUs. The ingress validates bodies
(pydantic), checks the bearer token, and routes each request to its model.
"""

import asyncio
import hmac
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ray import serve
from ray.serve.handle import DeploymentHandle

from astroray.data.fileio import numpy_batch
from astroray.data.schema import table_from_records
from astroray.serve.config import ROUTES, ServeConfig, check_models, read_token
from astroray.serve.docs import render_docs
from astroray.serve.schemas import (
    LightCurveRequest,
    ModelInfo,
    ModelsResponse,
    PredictResponse,
    SpectrumRequest,
)

__all__ = ["Ingress", "ModelServer", "build_app", "model_results", "run"]

logger = logging.getLogger(__name__)


def model_results(table: Any, failures: dict[str, str], labels: tuple[str, ...] | None,
                  ids: list[str]) -> tuple[list[dict], list[dict]]:
    """A predictor's output as per-object results and errors, in request order.

    Class probabilities (``prob_<class>`` columns) become ``probabilities``; other numeric
    scalar columns than the predicted probability, redshift and anomaly score (uncertainty
    scores, ...) go to ``scores``; list columns (embeddings) are left out. An anomaly
    detector's ``anomaly_score`` and ``anomaly_nearest_class`` become ``anomaly_score`` and
    ``nearest_class``.

    Args:
        table: the prediction table (pyarrow), one row per object scored.
        failures: object id -> reason, for objects the model could not score.
        labels: the classifier's labels (None for a regressor).
        ids: the object ids asked for, in request order.

    Returns:
        ``(results, errors)``: lists of dicts shaped as ``ObjectResult`` / ``ObjectError``.
    """
    from astroray.infer.predictors import prob_column  # lazy: torch

    probs = {prob_column(c): c for c in labels or ()}
    rows = {r["object_id"]: r for r in table.to_pylist()}
    numeric = [f.name for f in table.schema
               if (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))
               and f.name not in probs
               and f.name not in ("predicted_prob", "redshift", "anomaly_score")]
    results, errors = [], []
    for oid in ids:
        row = rows.get(oid)
        if row is None:
            errors.append({"object_id": oid,
                           "error": failures.get(oid, "the model returned no row for it")})
            continue
        out: dict[str, Any] = {"object_id": oid,
                               "scores": {k: float(row[k]) for k in numeric
                                          if row[k] is not None}}
        if probs:
            out["probabilities"] = {c: float(row[k]) for k, c in probs.items()}
            out["predicted_class"] = row.get("predicted_class")
            out["predicted_prob"] = float(row["predicted_prob"])
        if row.get("redshift") is not None:
            out["redshift"] = float(row["redshift"])
        if row.get("anomaly_score") is not None:
            out["anomaly_score"] = float(row["anomaly_score"])
            out["nearest_class"] = row.get("anomaly_nearest_class")
        if row.get("in_domain") is not None:  # models with a card: the catalogue's flag
            out["in_domain"] = bool(row["in_domain"])
            out["ood_reason"] = row.get("ood_reason")
        results.append(out)
    return results, errors


@serve.deployment
class ModelServer:
    """One saved model folder behind dynamic batching.

    ``predict`` takes the canonical records of one request; ``@serve.batch`` gathers up to
    ``max_batch_size`` requests (waiting at most ``batch_wait_timeout_s``) into one predictor
    call, split into chunks of ``max_batch_objects`` objects.
    """

    def __init__(self, model_dir: str, route: str, *, max_batch_size: int,
                 batch_wait_timeout_s: float, max_batch_objects: int,
                 device: str | None = "cpu", torch_threads: int | None = None):
        import torch  # lazy: torch

        from astroray.infer.predictors import (  # lazy: torch
            get_predictor,
            model_hash,
            predictor_task,
        )
        from astroray.models.pretrained import read_config_json  # lazy: torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.predictor = get_predictor(model_dir, device=device)
        raw = read_config_json(model_dir)
        self.labels = getattr(self.predictor, "labels", None)
        if self.labels is None and hasattr(self.predictor, "model"):  # vision classifiers
            cfg = self.predictor.model.config
            self.labels = (tuple(cfg.labels) if getattr(cfg, "task", None) == "classification"
                           else None)  # regressors and anomaly detectors: no probabilities
        # An anomaly detector lists its inlier classes.
        listed = self.labels or getattr(self.predictor, "inlier_classes", None)
        bands = getattr(getattr(self.predictor, "config", None), "bands", None)
        bands = getattr(self.predictor, "bands", bands)
        self.info_ = {"name": Path(model_dir).name, "route": ROUTES[route][0],
                      "kind": self.predictor.kind, "model_type": str(raw.get("model_type")),
                      "task": predictor_task(model_dir),
                      "model_hash": model_hash(model_dir),
                      "labels": None if listed is None else list(listed),
                      "bands": None if bands is None else list(bands)}
        self.max_batch_objects = max_batch_objects
        self.counts = {"requests": 0, "batches": 0, "largest_batch": 0}
        self.predict.set_max_batch_size(max_batch_size)
        self.predict.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def info(self) -> dict[str, Any]:
        """Name, route, kind, task, hash, labels and bands of the model."""
        return self.info_

    def stats(self) -> dict[str, int]:
        """This replica's process id, requests answered, forward batches run, largest batch."""
        return {"replica": os.getpid(), **self.counts}

    def _run(self, records: list[dict]) -> tuple[Any, dict[str, str]]:
        """Predict canonical records; a failing chunk is retried object by object."""
        tables, failures = [], {}
        for start in range(0, len(records), self.max_batch_objects):
            chunk = records[start:start + self.max_batch_objects]
            try:
                pred = self.predictor(numpy_batch(table_from_records(chunk,
                                                                     self.predictor.kind)))
                tables.append(pred.table)
                failures.update(pred.failures)
            except Exception as exc:  # noqa: BLE001 - one bad object must not fail the rest
                if len(chunk) == 1:
                    failures[str(chunk[0]["object_id"])] = (
                        f"model error: {type(exc).__name__}: {exc}")
                    continue
                for rec in chunk:
                    table, fails = self._run([rec])
                    tables.append(table)
                    failures.update(fails)
        tables = [t for t in tables if t is not None and t.num_rows]
        table = pa.concat_tables(tables, promote_options="default") if tables else None
        return table, failures

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def predict(self, requests: list[list[dict]]) -> list[dict[str, Any]]:
        """Answer a batch of requests (each a list of canonical records) in one forward."""
        self.counts["requests"] += len(requests)
        self.counts["batches"] += 1
        self.counts["largest_batch"] = max(self.counts["largest_batch"], len(requests))
        # Ids are unique within a request, not across the batch's requests: the forward sees
        # each object under its position in the batch, and answers get their ids back.
        flat = [{**rec, "object_id": str(i)}
                for i, rec in enumerate(rec for req in requests for rec in req)]
        # The forward runs in a thread so that the replica keeps answering health checks.
        table, failures = await asyncio.to_thread(self._run, flat)
        if table is None:
            table = pa.table({"object_id": pa.array([], pa.string())})
        answers, offset = [], 0
        for req in requests:
            keys = [str(offset + j) for j in range(len(req))]
            offset += len(req)
            results, errors = model_results(table, failures, self.labels, keys)
            original = {k: str(r["object_id"]) for k, r in zip(keys, req, strict=True)}
            for item in results + errors:
                item["object_id"] = original[item["object_id"]]
            answers.append({"model": self.info_["name"], "model_hash": self.info_["model_hash"],
                            "results": results, "errors": errors})
        return answers


def _location(loc: tuple) -> str:
    """``("body", "objects", 3, "times")`` -> ``objects[3].times``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


#: Validation errors listed in a 422 answer; the rest are counted. A 3 MB body of bad numbers
#: must not get a 27 MB answer.
MAX_ERRORS_SHOWN = 20


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming the first fields and their problem (no echo of the input), and the count."""
    errors = exc.errors()
    detail = [{"loc": list(e.get("loc", ()))[:8],
               "field": _location(tuple(e.get("loc", ())))[:200],
               "msg": str(e.get("msg", ""))[:300], "type": e.get("type", "")}
              for e in errors[:MAX_ERRORS_SHOWN]]
    message = "; ".join(f"{d['field']}: {d['msg']}" for d in detail[:10])
    if len(errors) > len(detail):
        message += f"; and {len(errors) - len(detail)} more error(s)"
    return JSONResponse(status_code=422, content={"detail": detail, "message": message,
                                                  "errors": len(errors)})


api = FastAPI(title="astroray", version="1", docs_url=None, redoc_url=None,
              description="Classes, redshifts and scores of light curves and spectra.")
api.add_exception_handler(RequestValidationError, _validation_error)


@api.middleware("http")
async def _token_first(request: Request, call_next: Any) -> Any:
    """Check the bearer token of /v1/* before the body is read or parsed.

    A caller without the token learns nothing (not even that its body is malformed), and an
    unauthenticated client cannot make the server parse a large body.
    """
    token = os.environ.get(_ACTIVE_TOKEN, "")
    if token and request.url.path.startswith("/v1/"):
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 token.encode()):
            return JSONResponse(status_code=401, content={"detail": "missing or wrong bearer "
                                                          "token"},
                                headers={"WWW-Authenticate": "Bearer"})
    return await call_next(request)


@api.get("/docs", include_in_schema=False)
async def _docs() -> Any:
    """The API reference as one self-contained page (no CDN: it works offline)."""
    return HTMLResponse(render_docs(api.openapi()))
_bearer = HTTPBearer(auto_error=False)
#: Where an ingress replica keeps its bearer token ("": no authentication). A process-wide
#: variable: Serve ships the ingress class and its endpoint functions by value, so they do not
#: share module globals.
_ACTIVE_TOKEN = "_ASTRORAY_SERVE_ACTIVE_TOKEN"


def _authorize(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                      Depends(_bearer)]) -> None:
    """Raise 401 unless the bearer token matches (when one is set).

    A dependency, so it runs before the body is validated: a caller without the token learns
    nothing about the request schema.
    """
    token = os.environ.get(_ACTIVE_TOKEN, "")
    if not token:
        return
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(),
                                                      token.encode()):
        raise HTTPException(401, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


#: Endpoints taking this parameter answer 401 without the right bearer token.
Authorized = Annotated[None, Depends(_authorize)]


@serve.deployment
@serve.ingress(api)
class Ingress:
    """The HTTP front: validation, bearer-token auth, routing to the model deployments."""

    def __init__(self, models: dict[str, list[DeploymentHandle]], names: dict[str, list[str]],
                 token_file: str | None = None):
        self.models = models
        self.names = names
        # Read here, on the replica: the token never travels in the application's arguments.
        os.environ[_ACTIVE_TOKEN] = read_token(token_file) or ""
        self._info: list[dict] | None = None

    async def infos(self) -> list[dict]:
        """Every model's info, asked of the deployments once."""
        if self._info is None:
            calls = [h.info.remote() for hs in self.models.values() for h in hs]
            self._info = list(await asyncio.gather(*calls))
        return self._info

    async def _predict(self, route: str, body: LightCurveRequest | SpectrumRequest) -> dict:
        if route not in self.models:
            raise HTTPException(404, f"no model serves {ROUTES[route][0]} "
                                     f"(ServeConfig.{route} is empty)")
        names = self.names[route]
        name = body.model or names[0]
        if name not in names:
            raise HTTPException(400, f"model: {name!r} is not served at {ROUTES[route][0]}; "
                                     f"choose one of {names}")
        info = next(i for i in await self.infos()
                    if i["name"] == name and i["route"] == ROUTES[route][0])
        if route in ("lightcurves_classify", "lightcurves_anomaly"):
            from astroray.render.config import CANONICAL_BANDS  # lazy: torch

            known = set(info["bands"] or CANONICAL_BANDS)
            for i, obj in enumerate(body.objects):
                unknown = sorted(set(obj.bands) - known)
                if unknown:
                    raise HTTPException(422, f"objects[{i}].bands: unknown band(s) {unknown}; "
                                             f"model {name!r} knows {sorted(known)}")
        handle = self.models[route][names.index(name)]
        return await handle.predict.remote([obj.record() for obj in body.objects])

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        """Liveness: the ingress answers."""
        return {"status": "ok"}

    @api.get("/v1/models", response_model=ModelsResponse)
    async def list_models(self, _: Authorized) -> dict:
        """Name, kind, hash, labels and bands of every served model."""
        return {"models": [ModelInfo(**i) for i in await self.infos()]}

    @api.post("/v1/lightcurves/classify", response_model=PredictResponse)
    async def classify_light_curves(self, body: LightCurveRequest, _: Authorized) -> dict:
        """Class probabilities of a batch of light curves."""
        return await self._predict("lightcurves_classify", body)

    @api.post("/v1/lightcurves/anomaly", response_model=PredictResponse)
    async def light_curve_anomaly(self, body: LightCurveRequest, _: Authorized) -> dict:
        """Anomaly scores of a batch of light curves (distance to the nearest inlier centre)."""
        return await self._predict("lightcurves_anomaly", body)

    @api.post("/v1/spectra/classify", response_model=PredictResponse)
    async def classify_spectra(self, body: SpectrumRequest, _: Authorized) -> dict:
        """Class probabilities of a batch of spectra."""
        return await self._predict("spectra_classify", body)

    @api.post("/v1/spectra/redshift", response_model=PredictResponse)
    async def spectra_redshift(self, body: SpectrumRequest, _: Authorized) -> dict:
        """Redshifts of a batch of spectra."""
        return await self._predict("spectra_redshift", body)


def _deployment_name(route: str, model_dir: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(model_dir).name)
    return f"{route.replace('_', '-')}-{safe}"


def build_app(args: dict[str, Any] | ServeConfig) -> serve.Application:
    """The Serve application of a :class:`ServeConfig` (``import_path`` of ``serve deploy``).

    Args:
        args: the config, or its mapping (the ``args:`` of the generated serve config).

    Raises:
        ConfigError: for an invalid config or a model folder that does not fit its route.
    """
    cfg = args if isinstance(args, ServeConfig) else ServeConfig.from_dict(dict(args))
    check_models(cfg)
    autoscaling = {"min_replicas": cfg.min_replicas, "max_replicas": cfg.max_replicas,
                   "target_ongoing_requests": cfg.target_ongoing_requests}
    handles: dict[str, list[Any]] = {}
    names: dict[str, list[str]] = {}
    for route, dirs in cfg.routes().items():
        handles[route] = [ModelServer.options(
            name=_deployment_name(route, d), autoscaling_config=autoscaling,
            max_ongoing_requests=cfg.max_ongoing_requests,
            ray_actor_options={"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
        ).bind(d, route, max_batch_size=cfg.max_batch_size,
               batch_wait_timeout_s=cfg.batch_wait_timeout_s,
               max_batch_objects=cfg.max_batch_objects, device=cfg.device,
               torch_threads=cfg.torch_threads) for d in dirs]
        names[route] = [Path(d).name for d in dirs]
    return Ingress.options(
        num_replicas=cfg.ingress_replicas,
        # Every request of the model replicas passes here first: let as many in.
        max_ongoing_requests=cfg.max_ongoing_requests * sum(len(d) for d in handles.values()),
        ray_actor_options={"num_cpus": cfg.ingress_num_cpus},
    ).bind(handles, names, token_file=cfg.token_file)


def run(cfg: ServeConfig, *, blocking: bool = True) -> None:
    """Start Serve on ``cfg.host:cfg.port`` and run the application (on the connected Ray).

    With ``blocking`` it serves until interrupted (Ctrl-C), then shuts Serve down.
    """
    check_models(cfg)  # fail before starting anything
    serve.start(http_options={"host": cfg.host, "port": cfg.port})
    # Through the mapping, as ``serve deploy`` hands it to ``build_app``.
    serve.run(build_app(cfg.to_dict()), name=cfg.app_name, route_prefix="/")
    if not blocking:
        return
    print(f"astroray serve: http://{cfg.host}:{cfg.port} (docs at /docs); Ctrl-C stops",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
