"""Connecting to Ray: an existing cluster (``--address`` / ``RAY_ADDRESS``) or a local one."""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ray

from astroray._version import __version__

__all__ = ["check_actor_pool", "configure_console", "gpu_available", "init_ray", "progress",
           "write_results"]

#: What the terminal shows: astroray's own lines only (quiet, the default), or Ray's logs too
#: (verbose). Set once per process by the CLI and the jobs (``--verbose``).
_CONSOLE: dict[str, Any] = {"verbose": False, "log_file": None}

#: Ray Train's controller checks its workers every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``
#: (Ray's default 2 s), and a fit returns a few checks after its workers finish: about 4 s
#: idle at the end of every fit, as long as a smoke run's whole training. A local Ray (one
#: machine, a few workers: a check is a cheap local call) checks every 0.25 s, unless the
#: variable is set; a cluster that is joined keeps its own setting.
LOCAL_TRAIN_CHECK_INTERVAL_S = "0.25"
_RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray.serve")


def configure_console(*, verbose: bool = False, log_file: str | Path | None = None,
                      on_sigterm: Any = None) -> None:
    """Choose where Ray's own logs go: the terminal (``verbose``) or ``log_file``.

    Quiet (the default): Ray's loggers write to ``log_file`` (when given; Ray's session
    folder keeps its own copies either way), workers' output is not forwarded to the driver,
    and Ray Data shows one progress bar per dataset on a terminal (none otherwise). Applied
    by :func:`init_ray`, and at once when Ray is already running.

    ``on_sigterm``: a SIGTERM handler to keep after ``ray.init``, which installs Ray's own
    (it aborts the process with a stack dump instead of letting the command stop cleanly).
    """
    _CONSOLE.update(verbose=bool(verbose),
                    log_file=None if log_file is None else str(log_file),
                    on_sigterm=on_sigterm)
    if ray.is_initialized():
        _route_ray_logs()


def _route_ray_logs() -> None:
    """Move the console handlers of Ray's loggers to the run's log file (quiet mode)."""
    if _CONSOLE["verbose"]:
        return
    import ray.data  # lazy: ray (configures its handlers: replace them after)

    # Ray re-adds its console handler inside ray.init, before it says that token auth is on
    # (as it is by default): an announcement, not a problem, so not for the terminal.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR)

    target: logging.Handler | None = None
    if _CONSOLE["log_file"]:
        path = Path(_CONSOLE["log_file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        target = logging.FileHandler(path)
        target.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in _RAY_LOGGERS:
        log = logging.getLogger(name)
        consoles = [h for h in log.handlers if type(h) is logging.StreamHandler
                    or type(h).__name__ == "PlainRayHandler"]
        for handler in consoles:
            log.removeHandler(handler)
        if target is not None and (consoles or not log.propagate):
            log.addHandler(target)
        if name in ("ray.train", "ray.tune"):  # they propagate to the root (our console)
            log.propagate = False
            if target is not None and target not in log.handlers:
                log.addHandler(target)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_operator_progress_bars = False  # one bar per dataset, not one per stage
    ctx.enable_progress_bars = sys.stderr.isatty()
    ctx.print_on_execution_start = False


def progress(total: int | None, desc: str, unit: str = " objects") -> Any:
    """One tqdm progress bar on stderr (updates at most once a second).

    Shown on a terminal only: in a log file a bar is a line of carriage returns.
    """
    from tqdm import tqdm  # lazy: tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                mininterval=1.0, leave=True, disable=not sys.stderr.isatty())


def gpu_available(num_workers: int = 1) -> bool:
    """Whether the Ray cluster has a GPU for each of ``num_workers`` workers."""
    return ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= num_workers


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
        quiet: keep Ray's logs out of the terminal (see :func:`configure_console`; the CLI's
            ``--verbose`` turns it off).
        **kwargs: passed to ``ray.init``.

    Returns:
        True when this call started or joined Ray, False when it was already initialised.
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    local = address is None
    # "local": a Ray of our own even when a `ray start` cluster runs on this machine (which
    # ray.init() with no address would join, through /tmp/ray/ray_current_cluster).
    init_kwargs: dict[str, Any] = {"address": "local" if local else address,
                                   "include_dashboard": False, **kwargs}
    if local:
        init_kwargs.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
        # Before ray.init: the local Ray's processes (Train's controller among them) inherit
        # this process's environment, and so do the jobs that join it later.
        os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", LOCAL_TRAIN_CHECK_INTERVAL_S)
    if quiet and not _CONSOLE["verbose"]:
        init_kwargs.setdefault("logging_level", logging.WARNING)
        # Workers' output (Train's placement-group chatter, actors' warnings) stays in Ray's
        # session logs; what the user needs comes back as results or exceptions.
        init_kwargs.setdefault("log_to_driver", False)
        _route_ray_logs()  # before init: its own start-up warnings go to the file too
    ray.init(**{k: v for k, v in init_kwargs.items() if v is not None})
    if quiet:
        _route_ray_logs()
    handler = _CONSOLE.get("on_sigterm")
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)  # over Ray's abort-with-stack-dump handler
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
