"""``ServeConfig``: the models per route and the Serve settings, and the ``serve deploy`` file.

One dataclass describes a deployment of the astroray endpoints. ``astroray serve --config F``
runs it locally; :func:`serve_deploy_config` turns the same object into Ray's ``applications:``
file (for ``serve deploy`` and a KubeRay ``RayService``'s ``serveConfigV2``), so the two cannot
drift apart.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from astroray.config import Config, ConfigError, check

__all__ = ["IMPORT_PATH", "ROUTES", "TOKEN_ENV", "ServeConfig", "check_models",
           "read_token", "serve_config_yaml", "serve_deploy_config"]

#: What ``serve deploy`` imports: a builder taking the config mapping as ``args``.
IMPORT_PATH = "astroray.serve.app:build_app"
#: Environment variable holding the bearer token (it wins over ``token_file``).
TOKEN_ENV = "ASTRORAY_SERVE_TOKEN"
#: Config field -> (URL path, input kind, model output) of each model route.
ROUTES: dict[str, tuple[str, str, str]] = {
    "lightcurves_classify": ("/v1/lightcurves/classify", "lightcurve", "classification"),
    "spectra_classify": ("/v1/spectra/classify", "spectrum", "classification"),
    "spectra_redshift": ("/v1/spectra/redshift", "spectrum", "regression"),
    "lightcurves_anomaly": ("/v1/lightcurves/anomaly", "lightcurve", "anomaly"),
}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclasses.dataclass
class ServeConfig(Config):
    """Settings of ``astroray serve`` and of the generated ``serve deploy`` file.

    Attributes:
        lightcurves_classify: model folders answering ``POST /v1/lightcurves/classify``
            (Astromer classifiers, SwinV2 light-curve models); the first is the default.
        spectra_classify: ViT spectrum classifiers for ``POST /v1/spectra/classify``.
        spectra_redshift: ViT redshift regressors for ``POST /v1/spectra/redshift``.
        lightcurves_anomaly: anomaly detectors (MCDSVDD folders of ``jobs/anomaly.py``) for
            ``POST /v1/lightcurves/anomaly``.
        min_replicas: autoscaling lower bound per model deployment.
        max_replicas: autoscaling upper bound per model deployment.
        target_ongoing_requests: autoscaling target of queued + running requests per replica.
        max_ongoing_requests: requests a model replica accepts at once (>= max_batch_size,
            else batches never fill).
        max_batch_size: requests one forward pass may combine (``@serve.batch``).
        batch_wait_timeout_s: how long a partial batch waits for more requests.
        max_batch_objects: objects per forward pass; larger combined batches are split.
        num_cpus: CPUs per model replica (fractional values let replicas share a core).
        ingress_num_cpus: CPUs of each FastAPI ingress replica.
        ingress_replicas: ingress replicas.
        torch_threads: intra-op threads of each model replica (None: torch's default).
        device: ``cpu`` / ``cuda`` for the models; None picks CUDA when available.
        num_gpus: GPUs per model replica (fractional values let replicas share one).
        host: address the HTTP proxy binds (``127.0.0.1``: this machine only).
        port: HTTP port.
        token_file: a file holding the bearer token; the ``ASTRORAY_SERVE_TOKEN`` environment
            variable wins. Neither: no authentication.
        app_name: the Serve application's name.
        model_root: folder that relative model folders are relative to (None: the current
            directory of the process building the app; set it for ``serve deploy``).
        runtime_env: the application's Ray runtime environment in the generated serve-deploy
            file (e.g. ``working_dir: local:///data/astroray`` and ``pip``); a local
            ``astroray serve`` runs in its own environment and ignores it.
    """

    lightcurves_classify: tuple[str, ...] = ()
    spectra_classify: tuple[str, ...] = ()
    spectra_redshift: tuple[str, ...] = ()
    lightcurves_anomaly: tuple[str, ...] = ()
    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing_requests: float = 8.0
    max_ongoing_requests: int = 64
    max_batch_size: int = 32
    batch_wait_timeout_s: float = 0.01
    max_batch_objects: int = 256
    num_cpus: float = 0.5
    ingress_num_cpus: float = 0.25
    ingress_replicas: int = 1
    torch_threads: int | None = None
    device: str | None = "cpu"
    num_gpus: float = 0.0
    host: str = "127.0.0.1"
    port: int = 8000
    token_file: str | None = None
    app_name: str = "astroray"
    model_root: str | None = None
    runtime_env: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for field in ROUTES:
            value = getattr(self, field)
            value = (value,) if isinstance(value, str) else value
            check(isinstance(value, list | tuple) and all(isinstance(v, str) and v
                                                           for v in value),
                  self, field, value, "a list of model folders")
            names = [Path(v).name for v in value]
            check(len(set(names)) == len(names), self, field, value,
                  "model folders with distinct names (the name selects the model)")
            setattr(self, field, tuple(value))
        check(any(getattr(self, f) for f in ROUTES), self, "lightcurves_classify",
              self.lightcurves_classify, f"at least one model folder in one of {list(ROUTES)}")
        for field in ("min_replicas", "max_ongoing_requests", "max_batch_size",
                      "max_batch_objects", "ingress_replicas", "port"):
            check(_positive_int(getattr(self, field)), self, field, getattr(self, field),
                  "a positive integer")
        check(_positive_int(self.max_replicas) and self.max_replicas >= self.min_replicas,
              self, "max_replicas", self.max_replicas, f">= min_replicas ({self.min_replicas})")
        check(self.max_ongoing_requests >= self.max_batch_size, self, "max_ongoing_requests",
              self.max_ongoing_requests, f">= max_batch_size ({self.max_batch_size})")
        check(self.port <= 65535, self, "port", self.port, "a TCP port (1-65535)")
        for field in ("target_ongoing_requests", "num_cpus", "ingress_num_cpus"):
            check(_positive_number(getattr(self, field)), self, field, getattr(self, field),
                  "a positive number")
        check(isinstance(self.batch_wait_timeout_s, int | float)
              and 0 <= self.batch_wait_timeout_s <= 10, self, "batch_wait_timeout_s",
              self.batch_wait_timeout_s, "seconds in [0, 10]")
        check(isinstance(self.num_gpus, int | float) and self.num_gpus >= 0, self, "num_gpus",
              self.num_gpus, "a number >= 0")
        check(self.torch_threads is None or _positive_int(self.torch_threads), self,
              "torch_threads", self.torch_threads, "a positive integer or null")
        check(self.device in (None, "cpu", "cuda"), self, "device", self.device,
              "'cpu', 'cuda' or null")
        check(isinstance(self.host, str) and bool(self.host), self, "host", self.host,
              "an address such as 127.0.0.1 or 0.0.0.0")
        check(self.token_file is None or (isinstance(self.token_file, str) and self.token_file),
              self, "token_file", self.token_file, "a file path or null")
        check(isinstance(self.app_name, str) and self.app_name.replace("-", "").isalnum(), self,
              "app_name", self.app_name, "letters, digits and '-'")

        check(self.model_root is None or (isinstance(self.model_root, str) and self.model_root),
              self, "model_root", self.model_root, "a folder or null")
        check(self.runtime_env is None or isinstance(self.runtime_env, dict), self,
              "runtime_env", self.runtime_env, "a mapping (Ray runtime environment) or null")

    def routes(self) -> dict[str, tuple[str, ...]]:
        """Config field -> model folders (``model_root`` applied), for routes with models."""
        root = Path(self.model_root) if self.model_root else Path.cwd()
        return {f: tuple(str((root / d).resolve()) for d in getattr(self, f))
                for f in ROUTES if getattr(self, f)}



def read_token(token_file: str | None) -> str | None:
    """The bearer token: ``ASTRORAY_SERVE_TOKEN``, else ``token_file``'s content, else None.

    Raises:
        ConfigError: when ``token_file`` is needed but unreadable or empty.
    """
    value = os.environ.get(TOKEN_ENV, "").strip()
    if value or token_file is None:
        return value or None
    try:
        value = Path(token_file).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"ServeConfig.token_file = {token_file!r} is invalid: "
                          f"cannot read it ({exc.strerror})") from None
    check(bool(value), "ServeConfig", "token_file", token_file, "a file holding a token")
    return value


def check_models(cfg: ServeConfig) -> dict[str, list[dict[str, Any]]]:
    """Check that each route's folders are saved models of the right kind and output.

    Reads ``config.json`` (and ``render.json``) and the weights' header, not the weights.

    Returns:
        route field -> one ``{"dir", "name", "kind"}`` per model folder.

    Raises:
        ConfigError: naming the field and the folder that is not a fitting model.
    """
    from astroray.infer.predictors import predictor_kind, predictor_task  # lazy: torch
    from astroray.models import check_model_folder  # lazy: torch
    from astroray.models.pretrained import (  # lazy: torch
        CONFIG_NAME,
        WEIGHTS_NAME,
        read_config_json,
    )

    out: dict[str, list[dict[str, Any]]] = {}
    for field, dirs in cfg.routes().items():
        _, kind, output = ROUTES[field]
        out[field] = []
        for d in dirs:
            missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (Path(d) / n).is_file()]
            check(not missing, cfg, field, d, f"a saved model folder (missing {missing})")
            try:
                check_model_folder(d)  # complete weights of the config's shapes
                got = predictor_kind(d)
            except (ValueError, FileNotFoundError, KeyError) as exc:
                raise ConfigError(f"ServeConfig.{field} = {d!r} is invalid: {exc}") from None
            raw = read_config_json(d)
            task = predictor_task(d)
            check(got == kind and task == output, cfg, field, d,
                  f"a {kind} {output} model (this is a {got} {task} model, "
                  f"model_type {raw.get('model_type')!r})")
            out[field].append({"dir": str(d), "name": Path(d).name, "kind": got})
    return out


def serve_config_yaml(cfg: ServeConfig) -> str:
    """:func:`serve_deploy_config` as the YAML text that ``--print-serve-config`` writes."""
    return (_GENERATED + yaml.safe_dump(serve_deploy_config(cfg), sort_keys=False,
                                        default_flow_style=False))


_GENERATED = ("# Generated by `astroray serve --config FILE --print-serve-config` from a "
              "ServeConfig;\n# edit that config and regenerate instead of editing this file.\n")


def serve_deploy_config(cfg: ServeConfig) -> dict[str, Any]:
    """Ray's ``serve deploy`` file for ``cfg`` (``applications:`` format).

    The application's ``args`` are ``cfg.to_dict()``: ``build_app`` rebuilds the same
    :class:`ServeConfig` from them, so the file and ``astroray serve`` run the same thing.
    """
    app: dict[str, Any] = {"name": cfg.app_name, "route_prefix": "/",
                           "import_path": IMPORT_PATH}
    if cfg.runtime_env is not None:
        app["runtime_env"] = cfg.runtime_env
    app["args"] = cfg.to_dict()
    return {"proxy_location": "EveryNode",
            "http_options": {"host": cfg.host, "port": cfg.port},
            "applications": [app]}
