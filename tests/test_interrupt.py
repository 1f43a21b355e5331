"""Interrupted commands stop with one line saying what was kept, and leave no process behind
(issue 19, point 6). Each command runs as its own process with its own local Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from astroray.models.astromer import ASTROMER_TINY, AstromerClassifier, AstromerClassifierConfig

EXE = str(Path(sys.executable).with_name("astroray"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a Ray of its own
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _raylets() -> set[int]:
    # The process name, not its command line: `ps` cuts `args` to $COLUMNS (80 on CI), which
    # hid the raylet's path there.
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,comm="], capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": "1000"}).stdout
    return {int(pid) for pid, _, name in (line.strip().partition(" ")
                                          for line in out.splitlines() if line.strip())
            if name.strip() == "raylet"}


def _wait_gone(pids: set[int], timeout: float = 60.0) -> set[int]:
    end = time.time() + timeout
    while time.time() < end:
        alive = pids & _raylets()
        if not alive:
            return set()
        time.sleep(1.0)
    return pids & _raylets()


def test_serve_stops_on_sigterm_and_leaves_no_ray(tmp_path):
    torch.manual_seed(0)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=ASTROMER_TINY, labels=("RRab", "RRc"), hidden=(8,), min_points=3))
    path = model.eval().save_pretrained(tmp_path / "clf")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"lightcurves_classify: [{path}]\nport: {port}\nnum_cpus: 0.25\n"
                   "ingress_num_cpus: 0.1\nmin_replicas: 1\nmax_replicas: 1\n")
    before = _raylets()
    proc = subprocess.Popen([EXE, "serve", "--config", str(cfg), "--num-cpus", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        end = time.time() + 240
        while time.time() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1][-2000:]
                time.sleep(1.0)
        else:
            pytest.fail("astroray serve did not come up")
        ours = _raylets() - before
        assert ours, "the command started no raylet of its own"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 143), err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err[-2000:]
    assert lines[0] in ("astroray serve: stopped",
                        "astroray serve: interrupted; Serve and the local Ray were shut down")
    assert not _wait_gone(ours), "Ray processes left behind"


def test_ingest_interrupted_keeps_the_previous_result(tmp_path):
    from astroray.data.synthetic import SyntheticSurveyConfig, make_survey

    data = tmp_path / "in"
    make_survey(SyntheticSurveyConfig(kind="periodic", n=40, format="csv", seed=1), data)
    out = tmp_path / "out"
    first = subprocess.run([EXE, "ingest", str(data), "--out", str(out), "--num-cpus", "1"],
                           capture_output=True, text=True, env=_env(), timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    manifest = (out / "manifest.json").read_text()
    make_survey(SyntheticSurveyConfig(kind="periodic", n=400, format="csv", seed=2),
                data / "more")
    before = _raylets()
    proc = subprocess.Popen([EXE, "ingest", str(data), "--out", str(out), "--num-cpus", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    time.sleep(8.0)  # Ray started, the read under way (or about to be)
    ours = _raylets() - before
    proc.send_signal(signal.SIGINT)
    out_text, err = proc.communicate(timeout=180)
    if proc.returncode == 0:
        pytest.skip("the ingest finished before it could be interrupted")
    assert proc.returncode == 130, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("astroray ingest: interrupted; the output folder keeps"), err
    assert "Traceback" not in err, err[-3000:]
    # The previous complete result is still what OUT holds.
    assert (out / "manifest.json").read_text() == manifest
    assert not _wait_gone(ours), "Ray processes left behind"
