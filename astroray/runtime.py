"""Connecting to Ray: an existing cluster (``--address`` / ``RAY_ADDRESS``) or a local one."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import ray

__all__ = ["check_actor_pool", "init_ray", "write_results"]


def init_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    quiet: bool = True,
    **kwargs: Any,
) -> bool:
    """Start or join Ray once per process.

    Args:
        address: cluster address (``auto``, ``ray://host:10001``, ...); defaults to the
            ``RAY_ADDRESS`` environment variable, else a new local Ray.
        num_cpus: CPUs of a new local Ray (ignored when joining a cluster).
        object_store_memory: object store bytes of a new local Ray.
        quiet: keep Ray core's INFO logging out of the terminal. Ray Data's progress (bars on
            a terminal, periodic log lines otherwise) is kept.
        **kwargs: passed to ``ray.init``.

    Returns:
        True when this call started or joined Ray, False when it was already initialised.
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    local = address is None
    init_kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, **kwargs}
    if local:
        init_kwargs.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
    if quiet:
        init_kwargs.setdefault("logging_level", logging.WARNING)
        init_kwargs.setdefault("log_to_driver", True)
    ray.init(**{k: v for k, v in init_kwargs.items() if v is not None})
    return True


def check_actor_pool(owner: str, num_actors: int, actor_cpus: float,
                     other_cpus: float) -> None:
    """Refuse a Ray Data actor pool that would leave its pipeline's tasks no CPU.

    Actors hold their CPUs for the whole run; when they take what the read (or write) tasks
    need, those tasks never start and the pipeline hangs instead of failing.

    Args:
        owner: the configuration the numbers come from (named in the error).
        num_actors: actors in the pool.
        actor_cpus: CPUs each actor asks for.
        other_cpus: CPUs the pipeline's tasks need at least (one read task's request).

    Raises:
        ValueError: when ``num_actors * actor_cpus + other_cpus`` exceeds the cluster's CPUs.
    """
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    held = num_actors * actor_cpus
    if held + other_cpus > cpus + 1e-9:
        raise ValueError(
            f"{owner}: num_actors x actor_cpus = {held:g} CPUs and the read tasks need "
            f"{other_cpus:g} more, but the cluster has {cpus:g}: the actors would starve the "
            "reads and the pipeline would hang; lower num_actors or actor_cpus")


def write_results(
    out: str | Path,
    job: str,
    *,
    metrics: dict[str, Any],
    data: Any,
    model: Any,
    config: dict[str, Any],
    smoke: bool,
    started: float,
) -> Path:
    """Write ``out/results.json``: the job's metrics, the data and model it ran on, context.

    Args:
        out: output folder.
        job: job name.
        metrics: the figures the job measured.
        data: what it read (paths, counts, a synthetic survey's settings).
        model: the model it trained or used (name, checkpoint, hash), or None.
        config: its full configuration.
        smoke: whether it ran shrunk.
        started: ``time.perf_counter()`` at its start.
    """
    from astroray import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "job": job, "smoke": smoke, "metrics": metrics, "data": data, "model": model,
        "config": config, "seconds": round(time.perf_counter() - started, 3),
        "astroray": __version__, "python": platform.python_version(),
        "ray": ray.__version__, "machine": platform.machine(),
    }
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path
