"""Submit a job of ``jobs/`` to a Ray cluster through the Ray Jobs API and follow it.

``astroray submit JOB`` packs the repository as the job's working directory (without the
virtual environment, outputs, caches and large data files), submits ``python jobs/JOB.py ...``
to the cluster's dashboard (``http://HEAD:8265``), streams the driver's logs and returns an exit
status: 0 when the job succeeded, the driver's own exit status (or 1) otherwise.

Token authentication (on by default for local clusters since Ray 2.52) is honoured: the token
comes from ``RAY_AUTH_TOKEN``, else the file named by ``RAY_AUTH_TOKEN_PATH``, else
``~/.ray/auth_token``, the same places Ray's own token loader reads, and travels as an
``Authorization: Bearer`` header. Ray's client only adds that header itself when
``RAY_AUTH_MODE=token`` is set in the submitting process, which it usually is not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_EXCLUDES",
    "available_jobs",
    "build_runtime_env",
    "resolve_address",
    "resolve_job",
    "submit_job",
]

logger = logging.getLogger(__name__)

DEFAULT_ADDRESS = "http://127.0.0.1:8265"

#: Paths left out of the uploaded working directory (gitignore syntax, relative to the root):
#: environments, outputs, caches, version control and large data or model files, which jobs
#: read from shared storage instead. Ray's upload limit is a few hundred MiB.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".venv/", "venv/", ".git/", "out/", "runs/", "build/", "dist/", ".bench/",
    "__pycache__/", "*.pyc", "*.egg-info/", ".pytest_cache/", ".ruff_cache/", ".mypy_cache/",
    "*.parquet", "*.fits", "*.fits.gz", "*.fit", "*.h5", "*.hdf5", "*.npy", "*.npz",
    "*.safetensors", "*.pt", "*.ckpt", "*.bin", "*.tar", "*.tar.gz", "*.tgz", "*.zip",
)

_REPO_ROOT = Path(__file__).resolve().parents[1]
_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
_AUTH_MODE_ENV = "RAY_AUTH_MODE"


def _default_root() -> Path:
    """The checkout holding this package when it has ``jobs/``, else the current folder."""
    return _REPO_ROOT if (_REPO_ROOT / "jobs").is_dir() else Path.cwd()


def available_jobs(root: str | Path | None = None) -> list[str]:
    """Names of the jobs in ``ROOT/jobs`` (every ``*.py`` not starting with ``_``).

    Args:
        root: repository root; default: the checkout holding this package.
    """
    jobs = Path(root) if root is not None else _default_root()
    return sorted(p.stem for p in (jobs / "jobs").glob("*.py") if not p.name.startswith("_"))


def resolve_job(job: str, root: str | Path | None = None) -> Path:
    """The script of a job, relative to the repository root (``jobs/NAME.py``).

    Args:
        job: a job name (``pretrain_astromer``), a file name (``pretrain_astromer.py``) or a
            path to the script (``jobs/pretrain_astromer.py``, relative or absolute).
        root: repository root; default: the checkout holding this package.

    Raises:
        ValueError: when no such job exists in ``ROOT/jobs``; the message lists the jobs.
    """
    root = Path(root) if root is not None else _default_root()
    if not job or not job.strip():
        raise ValueError(f"job: a job name is required; available: {available_jobs(root)}")
    name = Path(job).name
    name = name[:-3] if name.endswith(".py") else name
    candidate = Path(job)
    if candidate.suffix == ".py" and (candidate.is_absolute() or len(candidate.parts) > 1):
        # A path must point at the script in this repository's jobs/ folder, which is what
        # gets uploaded; a script elsewhere would not exist on the cluster.
        full = candidate if candidate.is_absolute() else Path.cwd() / candidate
        if not full.is_file() or full.resolve().parent != (root / "jobs").resolve():
            raise ValueError(f"job: {job!r} is not a script in {root / 'jobs'}; "
                             f"available: {', '.join(available_jobs(root))}")
    if name not in available_jobs(root):
        raise ValueError(f"job: unknown job {job!r}; available: "
                         f"{', '.join(available_jobs(root)) or '(none)'} (in {root / 'jobs'})")
    return Path("jobs") / f"{name}.py"


def _package_requirements(root: Path) -> list[str]:
    """The package's dependencies (``ROOT/pyproject.toml``) without Ray itself.

    Ray is left out because the cluster image provides it, and a runtime environment must not
    install a second Ray over the running one. On Python 3.10 (no ``tomllib``) they come from
    the installed package's metadata.
    """
    try:
        import tomllib  # lazy: Python 3.11+ (fallback below)
    except ModuleNotFoundError:  # Python 3.10
        from importlib.metadata import requires  # lazy: Python 3.10 fallback

        deps = [r for r in requires("astroray") or [] if "extra ==" not in r]
    else:
        path = root / "pyproject.toml"
        if not path.is_file():
            raise FileNotFoundError(f"pip: no pyproject.toml in {root} to read requirements from")
        deps = tomllib.loads(path.read_text())["project"]["dependencies"]
    return [d for d in deps if re.match(r"[A-Za-z0-9_.\-]*", d)[0].lower() != "ray"]


def _env_vars(env: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``NAME=VALUE`` items, or ``NAME`` to pass this process's value on."""
    if env is None:
        return {}
    if isinstance(env, Mapping):
        items = [f"{k}={v}" for k, v in env.items()]
    else:
        items = list(env)
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not name or not name.replace("_", "").isalnum() or name[0].isdigit():
            raise ValueError(f"env: {item!r} is not NAME or NAME=VALUE")
        if not sep:
            if name not in os.environ:
                raise ValueError(f"env: {name} is not set in this environment")
            value = os.environ[name]
        out[name] = value
    return out


def build_runtime_env(
    root: str | Path | None = None,
    *,
    pip: bool | Sequence[str] = False,
    env_vars: Sequence[str] | Mapping[str, str] | None = None,
    excludes: Sequence[str] = (),
) -> dict[str, Any]:
    """The runtime environment of a submitted job.

    Args:
        root: repository root, uploaded as the working directory; default: the checkout
            holding this package.
        pip: False (the cluster image has astroray's dependencies), True (install the
            dependencies of ``pyproject.toml`` except Ray), or a list of requirements.
        env_vars: environment variables of the job: ``NAME=VALUE``, or ``NAME`` to pass on
            this process's value (a mapping is taken as is).
        excludes: further gitignore-style patterns to leave out of the upload.

    Raises:
        ValueError: for a malformed or unset environment variable.
        FileNotFoundError: when ``root`` is not a folder, or ``pip=True`` finds no pyproject.
    """
    root = Path(root) if root is not None else _default_root()
    if not root.is_dir():
        raise FileNotFoundError(f"working_dir: no such folder {root}")
    runtime_env: dict[str, Any] = {
        "working_dir": str(root),
        "excludes": [*DEFAULT_EXCLUDES, *excludes],
    }
    if pip is True:
        runtime_env["pip"] = _package_requirements(root)
    elif pip:
        runtime_env["pip"] = [str(p) for p in pip]
    variables = _env_vars(env_vars)
    if variables:
        runtime_env["env_vars"] = variables
    return runtime_env


def _auth_token(token: str | None = None) -> str | None:
    """The cluster token: given, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ~/.ray/auth_token.

    None when ``RAY_AUTH_MODE=disabled`` or no token exists (a cluster without token auth).
    """
    if token:
        return token.strip()
    if os.environ.get(_AUTH_MODE_ENV, "").lower() == "disabled":
        return None
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path_env = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path_env:
        path = Path(path_env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"RAY_AUTH_TOKEN_PATH: no such file {path}")
        return path.read_text().strip() or None
    path = Path.home() / ".ray" / "auth_token"
    return (path.read_text().strip() or None) if path.is_file() else None


def resolve_address(address: str | None = None) -> str:
    """The dashboard address: given, ``RAY_API_SERVER_ADDRESS``, an http(s) ``RAY_ADDRESS``.

    ``RAY_ADDRESS`` often names the GCS (``host:6379``, ``auto``) for ``ray.init``; the Jobs API
    lives on the dashboard port instead, so only an ``http(s)://`` value is taken from it.
    Falls back to :data:`DEFAULT_ADDRESS`.
    """
    if address:
        return address.rstrip("/")
    api = os.environ.get("RAY_API_SERVER_ADDRESS")
    if api:
        return api.rstrip("/")
    env = os.environ.get("RAY_ADDRESS", "")
    if env.startswith(("http://", "https://")):
        return env.rstrip("/")
    if env:
        logger.info("RAY_ADDRESS=%s is not a dashboard address; using %s", env, DEFAULT_ADDRESS)
    return DEFAULT_ADDRESS


async def _tail(client: Any, job_id: str, stream: TextIO, written: list[int]) -> None:
    """Write the job's log chunks to ``stream`` as they come, counting characters."""
    async for chunk in client.tail_job_logs(job_id):
        stream.write(chunk)
        stream.flush()
        written[0] += len(chunk)


def _follow(client: Any, job_id: str, stream: TextIO, deadline: float | None) -> str:
    """Stream the logs until the job ends (or the deadline); returns its last status."""
    counter = [0]  # characters written, kept when the stream breaks half-way
    try:
        timeout = None if deadline is None else max(deadline - time.monotonic(), 1.0)
        asyncio.run(asyncio.wait_for(_tail(client, job_id, stream, counter), timeout))
    except (TimeoutError, asyncio.TimeoutError):
        return str(client.get_job_status(job_id))
    except Exception as exc:  # noqa: BLE001 - the websocket can drop; poll instead
        logger.warning("log stream of %s broke (%s); polling the logs instead", job_id, exc)
    # Polling: also finishes the logs when the websocket closed before the job's end.
    written = counter[0]
    while True:
        status = str(client.get_job_status(job_id))
        logs = client.get_job_logs(job_id)
        if len(logs) > written:
            stream.write(logs[written:])
            stream.flush()
            written = len(logs)
        if status in _TERMINAL or (deadline is not None and time.monotonic() > deadline):
            return status
        time.sleep(1.0)


def submit_job(
    job: str,
    job_args: Sequence[str] = (),
    *,
    address: str | None = None,
    pip: bool | Sequence[str] = False,
    env_vars: Sequence[str] | Mapping[str, str] | None = None,
    excludes: Sequence[str] = (),
    python: str = "python",
    token: str | None = None,
    submission_id: str | None = None,
    follow: bool = True,
    timeout: float | None = None,
    root: str | Path | None = None,
    stream: TextIO | None = None,
) -> int:
    """Submit ``jobs/JOB.py`` to a Ray cluster, stream its logs and return its exit status.

    Args:
        job: job name or script path (see :func:`resolve_job`).
        job_args: arguments of the job script (``--smoke``, ``--out DIR``, ...).
        address: the cluster's dashboard (``http://HEAD:8265``); default: see
            :func:`resolve_address`.
        pip: install requirements in the job's environment (see :func:`build_runtime_env`).
        env_vars: environment variables of the job (``NAME=VALUE`` or ``NAME``).
        excludes: further patterns left out of the uploaded working directory.
        python: the interpreter of the entry point on the cluster.
        token: the cluster's authentication token; default: Ray's token locations.
        submission_id: a submission id of your own (unique per cluster).
        follow: stream the logs and wait for the end; False returns 0 once submitted.
        timeout: seconds to wait for the end; past it the job is stopped and 124 returned.
        root: repository root (the uploaded working directory).
        stream: where the logs go (default: standard output).

    Returns:
        0 when the job succeeded (or was submitted, with ``follow=False``); the driver's exit
        status when it failed with one, else 1; 124 after a timeout; 130 when interrupted.

    Raises:
        ValueError: unknown job or invalid argument.
        ConnectionError: the cluster's dashboard cannot be reached or refuses the token.
    """
    from ray.exceptions import AuthenticationError  # lazy: ray
    from ray.job_submission import JobSubmissionClient  # lazy: ray

    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout: must be positive seconds, got {timeout}")
    root = Path(root) if root is not None else _default_root()
    script = resolve_job(job, root)
    runtime_env = build_runtime_env(root, pip=pip, env_vars=env_vars, excludes=excludes)
    entrypoint = shlex.join([python, script.as_posix(), *map(str, job_args)])
    address = resolve_address(address)
    secret = _auth_token(token)
    headers = {"Authorization": f"Bearer {secret}"} if secret else None
    stream = stream or sys.stdout
    try:
        client = JobSubmissionClient(address, headers=headers)
        job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env,
                                   submission_id=submission_id,
                                   metadata={"astroray_job": script.stem})
    except AuthenticationError as exc:
        found = "the token was refused" if secret else "no token found"
        raise ConnectionError(f"could not submit to {address}: {found}; set RAY_AUTH_TOKEN "
                              "(or RAY_AUTH_TOKEN_PATH) to the cluster's token") from exc
    except (ConnectionError, RuntimeError) as exc:
        raise ConnectionError(f"could not submit to {address}: {exc}") from exc
    print(f"astroray submit: {job_id}: {entrypoint} -> {address}", file=sys.stderr)
    if not follow:
        return 0
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        status = _follow(client, job_id, stream, deadline)
    except KeyboardInterrupt:
        client.stop_job(job_id)
        print(f"astroray submit: {job_id}: interrupted, job stopped", file=sys.stderr)
        return 130
    if status not in _TERMINAL:
        client.stop_job(job_id)
        print(f"astroray submit: {job_id}: still {status} after {timeout:g} s; stopped",
              file=sys.stderr)
        return 124
    info = client.get_job_info(job_id)
    if status == "SUCCEEDED":
        print(f"astroray submit: {job_id}: SUCCEEDED", file=sys.stderr)
        return 0
    code = getattr(info, "driver_exit_code", None)
    print(f"astroray submit: {job_id}: {status}"
          + (f" (exit status {code})" if code is not None else "")
          + (f": {info.message}" if info.message else ""), file=sys.stderr)
    return int(code) if code else 1
