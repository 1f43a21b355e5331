"""astroray submit: a real job of jobs/ through the Ray Jobs API of a real head node.

The module starts its own head (``ray start --head --block``, token authentication on, with
a token of its own) on free ports and in a temp dir of its own, and stops exactly that head's
processes afterwards: ``ray stop`` would also stop the session's Ray of the other tests, and a
head in the default temp dir would leave its address in /tmp/ray/ray_current_cluster, where
every later ``ray.init()`` without an address would try to join it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from astroray.submit import available_jobs, build_runtime_env, resolve_job, submit_job

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _dashboard_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the head and every process it started (workers too), nothing else."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=15)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A head node with token authentication: (dashboard URL, token)."""
    token = secrets.token_hex(16)
    gcs, dash, client, agent_http, agent_grpc, metrics, env_agent = _free_ports(7)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=token, RAY_DEDUP_LOGS="0")
    log = tmp_path_factory.mktemp("head") / "head.log"
    # Short: Ray's socket paths under it must stay below the 107-byte limit.
    temp_dir = Path("/tmp") / f"ar-{secrets.token_hex(4)}"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
             "--node-ip-address=127.0.0.1", f"--port={gcs}", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dash}", "--include-dashboard=true",
             f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent_http}",
             f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
             f"--runtime-env-agent-port={env_agent}", "--num-cpus=2",
             f"--object-store-memory={300 * 1024**2}", f"--temp-dir={temp_dir}"],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 150
        while _dashboard_status(url) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        # The Jobs API comes up a little after the dashboard's HTTP server.
        assert _dashboard_status(url) == 401, "token authentication is not on"
        yield url, token
    finally:
        _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_resolve_job_names_paths_and_errors():
    assert "ingest" in available_jobs() and "_common" not in available_jobs()
    assert resolve_job("ingest") == Path("jobs/ingest.py")
    assert resolve_job("ingest.py") == Path("jobs/ingest.py")
    assert resolve_job(str(ROOT / "jobs" / "pretrain_astromer.py")) == Path(
        "jobs/pretrain_astromer.py")
    with pytest.raises(ValueError, match="available: .*pretrain_astromer"):
        resolve_job("pretrain_astromr")
    with pytest.raises(ValueError, match="not a script in"):
        resolve_job(str(ROOT / "tests" / "test_submit.py"))


def test_runtime_env_excludes_pip_and_env_vars(monkeypatch):
    monkeypatch.setenv("ASTRORAY_TEST_VALUE", "42")
    env = build_runtime_env(ROOT, env_vars=["ASTRORAY_TEST_VALUE", "A=b=c"])
    assert env["working_dir"] == str(ROOT) and "pip" not in env
    assert {".venv/", ".git/", "out/", "*.parquet"} <= set(env["excludes"])
    assert env["env_vars"] == {"ASTRORAY_TEST_VALUE": "42", "A": "b=c"}
    pip = build_runtime_env(ROOT, pip=True)["pip"]
    assert any(p.startswith("torch") for p in pip) and not any(p.startswith("ray") for p in pip)
    with pytest.raises(ValueError, match="not set"):
        build_runtime_env(ROOT, env_vars=["ASTRORAY_SURELY_UNSET_VARIABLE"])
    with pytest.raises(ValueError, match="NAME or NAME=VALUE"):
        build_runtime_env(ROOT, env_vars=["=x"])


def test_cli_unknown_job_lists_the_jobs():
    proc = subprocess.run([str(BIN / "astroray"), "submit", "no_such_job", "--", "--smoke"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert "unknown job 'no_such_job'" in proc.stderr and "pretrain_astromer" in proc.stderr


def test_submit_smoke_job_streams_logs_and_succeeds(head, tmp_path):
    url, token = head
    out = tmp_path / "ingest"
    env = {**os.environ, "RAY_AUTH_TOKEN": token}
    env.pop("RAY_AUTH_MODE", None)  # Ray's client would not send the token by itself
    proc = subprocess.run(
        [str(BIN / "astroray"), "submit", "ingest", "--address", url, "--timeout", "400",
         "--env", "ASTRORAY_SUBMIT_TEST=1", "--", "--smoke", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The driver's own output came back through the log stream, and its status line.
    assert "ingest: light curves: read 500, written 500, failed 0" in proc.stdout
    assert "SUCCEEDED" in proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["job"] == "ingest" and results["smoke"] is True
    assert results["metrics"]["written"] == 500
    # The cluster kept the runtime environment it ran with: the variable and the excludes.
    from ray.job_submission import JobSubmissionClient

    job_id = re.search(r"astroray submit: (\S+):", proc.stderr)[1]
    client = JobSubmissionClient(url, headers={"Authorization": f"Bearer {token}"})
    runtime_env = client.get_job_info(job_id).runtime_env
    assert runtime_env["env_vars"] == {"ASTRORAY_SUBMIT_TEST": "1"}
    assert ".venv/" in runtime_env["excludes"] and "pip" not in runtime_env


def test_submit_failing_job_and_refused_token(head, tmp_path, capsys):
    url, token = head
    # A job that fails (an argument it does not take) returns its driver's exit status.
    code = submit_job("jobs/ingest.py", ["--smoke", "--no-such-flag", "--out",
                                         str(tmp_path / "bad")],
                      address=url, token=token, timeout=300)
    assert code == 2  # argparse's usage error, from the driver on the cluster
    captured = capsys.readouterr()
    assert "unrecognized arguments: --no-such-flag" in captured.out
    assert "FAILED" in captured.err
    assert not (tmp_path / "bad" / "results.json").exists()
    # Past its timeout a job is stopped (a job short of resources waits rather than fails).
    from ray.job_submission import JobSubmissionClient

    code = submit_job("ingest", ["--smoke", "--out", str(tmp_path / "slow")], address=url,
                      token=token, timeout=2, submission_id="astroray-timeout-test")
    assert code == 124 and "still" in capsys.readouterr().err
    client = JobSubmissionClient(url, headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + 60
    while str(client.get_job_status("astroray-timeout-test")) != "STOPPED":
        assert time.monotonic() < deadline, "the timed-out job was not stopped"
        time.sleep(1)
    # The head enforces its token: a wrong one is refused before anything is submitted.
    with pytest.raises(ConnectionError, match="token was refused"):
        submit_job("ingest", ["--smoke", "--out", str(tmp_path / "x")], address=url,
                   token="not-the-token")


def test_log_stream_that_breaks_is_finished_by_polling_without_repeats():
    import io

    from astroray.submit import _follow

    class Client:
        async def tail_job_logs(self, job_id):
            yield "line 1\n"
            raise RuntimeError("WebSocket connection closed unexpectedly")

        def get_job_status(self, job_id):
            return "FAILED"

        def get_job_logs(self, job_id):
            return "line 1\nline 2\n"

    stream = io.StringIO()
    assert _follow(Client(), "raysubmit_x", stream, deadline=None) == "FAILED"
    assert stream.getvalue() == "line 1\nline 2\n"
