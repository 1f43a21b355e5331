"""Ray Serve endpoints: light-curve and spectrum classifiers and redshifts over HTTP.

``astroray serve --config serve.yaml`` runs the application locally; the same
:class:`ServeConfig` generates the ``serve deploy`` file (``--print-serve-config``) that
``cluster/serve/serve_config.yaml`` and the KubeRay ``RayService`` hold.
"""

from astroray.serve.config import ServeConfig, check_models, read_token, serve_deploy_config

__all__ = ["ServeConfig", "build_app", "check_models", "read_token", "run",
           "serve_deploy_config"]


def __getattr__(name: str):
    # The application pulls in Ray Serve and FastAPI: imported when first asked for.
    if name in ("build_app", "run"):
        from astroray.serve import app  # lazy: ray, fastapi

        return getattr(app, name)
    raise AttributeError(f"module 'astroray.serve' has no attribute {name!r}")
