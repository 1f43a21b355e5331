"""Bulk inference on the session Ray: every object exactly once, faults, resume, numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from astroray.data.fileio import numpy_batch
from astroray.data.registry import read_files
from astroray.data.synthetic import SyntheticSurveyConfig, make_survey
from astroray.infer.catalogue import InferConfig, read_catalogue, run_inference
from astroray.infer.predictors import get_predictor, prob_column
from astroray.models.astromer import ASTROMER_TINY, AstromerClassifier, AstromerClassifierConfig

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=ASTROMER_TINY, labels=CLASSES, hidden=(32, 16), min_points=5))
    # Non-trivial standardisation statistics, so that a lost buffer would show.
    model.head.set_standardization(torch.randn(3, 32) * 0.1, torch.rand(3, 32) + 0.5)
    return model.eval().save_pretrained(tmp_path_factory.mktemp("models") / "clf")


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> tuple[Path, set[str]]:
    """120 synthetic light curves as CSV files, plus a corrupt and a too-short one."""
    folder = tmp_path_factory.mktemp("survey")
    make_survey(SyntheticSurveyConfig(kind="periodic", n=120, format="csv", seed=4), folder)
    data, errors = read_files(folder)
    assert errors.num_rows == 0
    ids = set(data.column("object_id").to_pylist())
    (folder / "broken.csv").write_text("time,mag,magerr,band\n1.0,oops,0.1,g\n")
    (folder / "short.csv").write_text("time,mag,magerr,band\n1.0,15.0,0.1,g\n2.0,15.1,0.1,g\n")
    return folder, ids | {"short", "broken"}  # one object per CSV file, named by its stem


def _accounting(out: Path) -> tuple[list[str], list[str], object, object]:
    cat, err = read_catalogue(out)
    return (cat.column("object_id").to_pylist(), err.column("object_id").to_pylist(), cat, err)


def test_every_object_once_with_a_failing_batch_and_a_dying_actor(
        ray_session, classifier_dir, survey, tmp_path):
    folder, ids = survey
    bad = sorted(ids - {"short", "broken"})[7]
    config = InferConfig(model=str(classifier_dir), paths=(str(folder),), files_per_shard=25,
                         batch_size=16, actor_cpus=0.5, task_cpus=0.25, embedding=True,
                         fail_objects=(bad,), crash_after_batches=3)
    summary = run_inference(config, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "_state" / "crashed-once").exists()  # the actor did die
    cat_ids, err_ids, cat, err = _accounting(tmp_path / "run")
    # Exactly once: catalogue and errors are disjoint, without duplicates, and cover the input.
    assert len(cat_ids) == len(set(cat_ids)) and len(err_ids) == len(set(err_ids))
    assert not set(cat_ids) & set(err_ids)
    assert set(cat_ids) | set(err_ids) == ids
    errors = {r["object_id"]: r for r in err.to_pylist()}
    assert errors["broken"]["stage"] == "read" and "broken.csv" in errors["broken"]["error"]
    assert errors["short"]["stage"] == "model" and "valid points" in errors["short"]["error"]
    assert errors[bad]["stage"] == "model" and "injected" in errors[bad]["error"]
    assert summary.catalogued == len(cat_ids) == len(ids) - 3 and summary.failed == 3
    # Catalogue columns: probabilities per class summing to one, argmax, model hash.
    probs = np.stack([cat.column(prob_column(c)).to_numpy() for c in CLASSES], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    pred = [CLASSES[i] for i in probs.argmax(axis=1)]
    assert pred == cat.column("predicted_class").to_pylist()
    assert set(cat.column("model_hash").to_pylist()) == {summary.model_hash}
    assert cat.column("embedding").type.list_size == 32
    data, _ = read_files(folder)
    surveys = dict(zip(data.column("object_id").to_pylist(), data.column("survey").to_pylist(),
                       strict=True))
    assert cat.column("survey").to_pylist() == [surveys[i] for i in cat_ids]


def test_catalogue_numbers_match_an_independent_forward_pass(ray_session, classifier_dir,
                                                             survey, tmp_path):
    folder, _ = survey
    run_inference(InferConfig(model=str(classifier_dir), paths=(str(folder),), batch_size=32,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    cat, _ = read_catalogue(tmp_path / "run")
    # Independent path: the model's own modules, one object at a time, no Ray.
    from astroray.data.windows import LightCurveWindows

    model = AstromerClassifier.from_pretrained(classifier_dir).eval()
    data, _ = read_files(folder)
    data = data.filter(np.isin(data.column("object_id").to_numpy(zero_copy_only=False),
                               cat.column("object_id").to_numpy(zero_copy_only=False)[:10]))
    windows = LightCurveWindows(200, mode="sequential", min_points=5)(numpy_batch(data))
    got = {r["object_id"]: r for r in cat.to_pylist()}
    with torch.no_grad():
        for row, oid in enumerate(data.column("object_id").to_pylist()):
            sel = windows["row"] == row
            t, v, m = (torch.from_numpy(windows[k][sel]) for k in ("times", "values", "mask"))
            means = model.encoder.embed(t, v, m).mean(dim=0, keepdim=True)  # (1, S, D)
            expected = torch.softmax(model(means), dim=1)[0].numpy()
            observed = np.array([got[oid][prob_column(c)] for c in CLASSES])
            np.testing.assert_allclose(observed, expected, rtol=1e-4, atol=1e-5)


def test_predictor_rejects_folders_that_are_not_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        get_predictor(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "nope"}))
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "model.safetensors"))  # sound weights
    with pytest.raises(ValueError, match="no predictor for model_type 'nope'"):
        get_predictor(tmp_path)


def test_interrupted_run_resumes_without_duplicates(ray_session, classifier_dir, survey,
                                                    tmp_path):
    """Kill the job (driver and all) once a shard is published; re-run; count every id once."""
    folder, ids = survey
    out = tmp_path / "run"
    args = [sys.executable, str(ROOT / "jobs" / "bulk_infer.py"), str(folder), "--model",
            str(classifier_dir), "--out", str(out), "--files-per-shard", "10",
            "--batch-size", "8"]
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    done = out / "_state" / "done"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if done.is_dir() and len(list(done.glob("*.json"))) >= 2:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    n_done = len(list(done.glob("*.json")))
    assert n_done >= 2, proc.stdout.read()[-3000:]
    # Whatever the kill left behind (staged parts, hidden temporaries) is never published.
    cat_ids, err_ids, _, _ = _accounting(out)
    assert len(cat_ids) == len(set(cat_ids))
    rerun = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    n_shards = results["metrics"]["shards"]
    if n_done < n_shards:  # the kill came before the end: the re-run skipped the done shards
        assert results["metrics"]["shards_skipped"] == n_done
    cat_ids, err_ids, _, _ = _accounting(out)
    assert len(cat_ids) == len(set(cat_ids)) and not set(cat_ids) & set(err_ids)
    assert set(cat_ids) | set(err_ids) == ids
    assert not list((out / "catalogue").glob(".*"))  # no temporaries left visible
    shutil.rmtree(out)


def test_other_inputs_extend_an_existing_run_folder(ray_session, classifier_dir, survey,
                                                    tmp_path):
    """Changed inputs under the same model are an incremental re-run, not a refusal."""
    folder, ids = survey
    config = InferConfig(model=str(classifier_dir), paths=(str(folder / "broken.csv"),),
                         actor_cpus=0.5, task_cpus=0.25)
    summary = run_inference(config, tmp_path / "run", progress=False)
    assert summary.catalogued == 0 and summary.failed == 1
    summary = run_inference(config.replace(paths=(str(folder),)), tmp_path / "run",
                            progress=False)
    # broken.csv is redone: the folder's labels.csv now joins it (its rows could change).
    assert (summary.catalogued, summary.failed, summary.shards_retired) == (120, 2, 1)
    cat_ids, err_ids, _, _ = _accounting(tmp_path / "run")
    assert sorted(cat_ids + err_ids) == sorted(ids)
    assert pq.read_table(tmp_path / "run" / "errors").num_rows == 2


def test_report_is_a_self_contained_page(ray_session, classifier_dir, survey, tmp_path):
    from astroray.infer.report import write_report

    folder, _ = survey
    model_dir = Path(shutil.copytree(classifier_dir, tmp_path / "clf"))
    _card_for(model_dir, read_files(folder)[0], set(), set())  # a card: nothing trained on
    run_inference(InferConfig(model=str(model_dir), paths=(str(folder),), batch_size=64,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    page = write_report(tmp_path / "run", tmp_path / "report.html", gallery=3).read_text()
    for section in ("Predicted classes", "Confidence", "Reliability", "most confident",
                    "least confident", "Errors", "Held-out scores", "Domain"):
        assert section in page, section
    assert "Uncertainty" not in page and "least certain" not in page  # no uncertainty head
    # Figures and gallery images are embedded (3 most + 3 least confident, plus 4 figures:
    # classes, confidence, the confusion matrix and the reliability diagram of the labelled,
    # held-out synthetic objects).
    assert page.count("data:image/png;base64,") == 4 + 6
    assert "src=\"http" not in page and "href=" not in page
    assert "broken.csv" in page  # the read error is listed
    with pytest.raises(FileNotFoundError, match="not a catalogue run folder"):
        write_report(tmp_path, tmp_path / "x.html")


def test_the_same_id_in_two_files_is_kept_twice_and_reported(ray_session, classifier_dir,
                                                             survey, tmp_path):
    """Two inputs of one (survey, object_id) are two rows, counted and listed as duplicates."""
    folder, _ = survey
    files = sorted(folder.rglob("syn-*.csv"))[:3]
    assert len(files) == 3
    for sub in ("a", "b"):  # the CSV reader takes the survey from the folder: the same one
        (tmp_path / "in" / sub / "field").mkdir(parents=True)
        for f in files:
            shutil.copy(f, tmp_path / "in" / sub / "field" / f.name)
    shutil.copy(sorted(folder.rglob("syn-*.csv"))[3], tmp_path / "in" / "a" / "field")
    summary = run_inference(InferConfig(model=str(classifier_dir),
                                        paths=(str(tmp_path / "in"),), actor_cpus=0.5,
                                        task_cpus=0.25), tmp_path / "run", progress=False)
    cat, err = read_catalogue(tmp_path / "run")
    pairs = list(zip(cat.column("source").to_pylist(), cat.column("object_id").to_pylist(),
                     strict=True))
    assert err.num_rows == 0 and len(pairs) == len(set(pairs)) == 7
    assert (summary.duplicate_ids, summary.duplicate_rows) == (3, 3)
    assert "3 object id(s) in 2+ inputs" in summary.line()
    dup = pq.read_table(tmp_path / "run" / "duplicates.parquet").to_pylist()
    assert [d["object_id"] for d in dup] == [f.stem for f in files]
    assert all(d["survey"] == "field" and d["n_rows"] == 2 and len(d["sources"]) == 2
               for d in dup)
    # Same light curve, same model: the same probabilities from either file.
    rows = sorted((r for r in cat.to_pylist() if r["object_id"] in {f.stem for f in files}),
                  key=lambda r: (r["object_id"], r["source"]))
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        assert a["object_id"] == b["object_id"] and a["source"] != b["source"]
        assert a["predicted_prob"] == pytest.approx(b["predicted_prob"], rel=1e-5)
    # A file repeating a record: both rows kept, listed with the same source twice.
    data, _ = read_files(tmp_path / "in" / "a")
    pq.write_table(pa.concat_tables([data, data.slice(1, 1)]), tmp_path / "repeat.parquet")
    summary = run_inference(InferConfig(model=str(classifier_dir),
                                        paths=(str(tmp_path / "repeat.parquet"),),
                                        actor_cpus=0.5, task_cpus=0.25), tmp_path / "run2",
                            progress=False)
    assert (summary.catalogued, summary.duplicate_ids, summary.duplicate_rows) == (5, 1, 1)
    (dup,) = pq.read_table(tmp_path / "run2" / "duplicates.parquet").to_pylist()
    assert dup["object_id"] == data.column("object_id")[1].as_py()
    assert dup["sources"] == [data.column("source")[1].as_py()] * 2


def test_times_beyond_float32_are_error_rows(ray_session, classifier_dir, survey, tmp_path):
    """Defect 9: times of 1e39 gave a row with NaN probabilities and an argmax class."""
    folder, _ = survey
    (tmp_path / "in").mkdir()
    shutil.copy(sorted(folder.rglob("syn-*.csv"))[0], tmp_path / "in")
    rows = "".join(f"{k}e39,{15 + 0.1 * k},0.1,g\n" for k in range(1, 11))
    (tmp_path / "in" / "huge.csv").write_text("time,mag,magerr,band\n" + rows)
    run_inference(InferConfig(model=str(classifier_dir), paths=(str(tmp_path / "in"),),
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    cat, err = read_catalogue(tmp_path / "run")
    assert cat.column("object_id").to_pylist() == [sorted(folder.rglob("syn-*.csv"))[0].stem]
    assert err.column("object_id").to_pylist() == ["huge"]
    # Rejected by the Astromer predictor before the forward pass, naming the band.
    assert "times of band g not finite in float32" in err.column("error")[0].as_py()


class _NaNPredictor:
    """A predictor whose second object gets NaN probabilities (as overflowing inputs do)."""

    kind, name = "lightcurve", "nan"

    def __call__(self, batch):
        from astroray.infer.predictors import _classifier_columns

        n = len(batch["object_id"])
        probs = np.full((n, 2), 0.5, np.float32)
        probs[1] = np.nan
        table = _classifier_columns(np.asarray(batch["object_id"]), probs, ("A", "B"), None)
        return type("P", (), {"table": table, "failures": {}})()


def test_non_finite_model_output_is_a_failure_row():
    from astroray.infer.catalogue import PredictBatch

    stage = PredictBatch("nan", embedding=False, model_hash="0", out=None,
                         predictor=_NaNPredictor())
    batch = {"object_id": np.array(["x", "y", "z"], dtype=object),
             "survey": np.array(["s"] * 3, dtype=object),
             "source": np.array(["f.csv"] * 3, dtype=object),
             "_shard": np.array(["0"] * 3, dtype=object)}
    out = stage(batch)
    good = out.filter(out.column("_error").is_null())
    bad = out.filter(out.column("_error").is_valid())
    assert good.column("object_id").to_pylist() == ["x", "z"]
    assert bad.column("object_id").to_pylist() == ["y"]
    assert "non-finite model output (prob_A" in bad.column("_error")[0].as_py()
    assert "float32" in bad.column("_error")[0].as_py()


def test_uncertainty_head_adds_scores(ray_session, classifier_dir, survey, tmp_path):
    """A classifier saved with an uncertainty head: T sampled passes, SMP / PV / BALD columns."""
    folder, _ = survey
    data, _ = read_files(folder)
    batch = numpy_batch(data.slice(0, 24))
    plain = get_predictor(classifier_dir, device="cpu")(batch).table
    base = AstromerClassifier.from_pretrained(classifier_dir)
    # Without dropout, MC Dropout's passes are all the deterministic one: no spread at all.
    det = AstromerClassifier(base.config.replace(
        encoder=base.config.encoder.replace(dropout=0.0), dropout=0.0, uncertainty="mc_dropout",
        passes=5))
    det.load_state_dict(base.state_dict())
    det_dir = det.save_pretrained(tmp_path / "mc0")
    got = get_predictor(det_dir, device="cpu")(batch).table
    assert got.column("object_id").to_pylist() == plain.column("object_id").to_pylist()
    for c in CLASSES:
        np.testing.assert_allclose(got.column(prob_column(c)).to_numpy(),
                                   plain.column(prob_column(c)).to_numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.column("uncertainty_pv").to_numpy(), 0.0, atol=1e-10)
    np.testing.assert_allclose(got.column("uncertainty_bald").to_numpy(), 0.0, atol=1e-5)
    # With dropout the passes differ; SMP is 1 - the reported (mean) top probability.
    cfg = base.config.replace(dropout=0.3, encoder=base.config.encoder.replace(dropout=0.3),
                              uncertainty="mc_dropout", passes=8)
    mc = AstromerClassifier(cfg)
    mc.load_state_dict(base.state_dict())
    mc_dir = mc.save_pretrained(tmp_path / "mc")
    _card_for(mc_dir, data, set(), set())
    run_inference(InferConfig(model=str(mc_dir), paths=(str(folder),), batch_size=32,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    cat, _ = read_catalogue(tmp_path / "run")
    assert cat.num_rows == 120
    pv = cat.column("uncertainty_pv").to_numpy()
    assert np.all(pv >= 0) and pv.mean() > 1e-6
    np.testing.assert_allclose(cat.column("uncertainty_smp").to_numpy(),
                               1.0 - cat.column("predicted_prob").to_numpy(), atol=1e-6)
    probs = np.stack([cat.column(prob_column(c)).to_numpy() for c in CLASSES], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # The report shows the scores, the reliability of the labelled inputs and the least
    # certain objects.
    from astroray.infer.report import write_report

    page = write_report(tmp_path / "run", tmp_path / "report.html", gallery=3).read_text()
    assert "<h2>Uncertainty</h2>" in page and "<h2>Reliability</h2>" in page
    assert "least certain (BALD" in page


def test_actor_pools_that_would_starve_the_reads_are_refused(ray_session, classifier_dir,
                                                             survey, tmp_path):
    """On 2 CPUs, two 1-CPU model actors leave the read tasks nothing: an error, not a hang."""
    from astroray.infer.astromer import EmbedConfig, embed

    folder, _ = survey
    config = InferConfig(model=str(classifier_dir), paths=(str(folder),), num_actors=2,
                         actor_cpus=1.0, task_cpus=0.5)
    with pytest.raises(ValueError, match=r"InferConfig: num_actors x actor_cpus = 2 CPUs"):
        run_inference(config, tmp_path / "run", progress=False)
    # The same pool with room for one read task runs.
    summary = run_inference(config.replace(num_actors=1), tmp_path / "run", progress=False)
    assert summary.catalogued == 120
    with pytest.raises(ValueError, match=r"EmbedConfig: num_actors x actor_cpus = 2 CPUs"):
        embed(EmbedConfig(model="astromer-tiny", paths=(str(folder),), num_actors=1,
                          actor_cpus=2.0), tmp_path / "emb")


def _card_for(model_dir: Path, data, trained: set[str], validation: set[str]) -> None:
    """A model card whose train / validation splits are the given object ids."""
    from astroray.models.card import light_curve_domain, write_model_card

    surveys = dict(zip(data.column("object_id").to_pylist(), data.column("survey").to_pylist(),
                       strict=True))
    domain = light_curve_domain(data)
    domain["confidence"] = {"threshold": 0.99}
    write_model_card(model_dir, {"classes": list(CLASSES), "domain": domain,
                                 "held_out": {"objects": 3, "macro_f1": 0.5, "accuracy": 0.5}},
                     {"train": [(surveys[i], i) for i in sorted(trained)],
                      "validation": [(surveys[i], i) for i in sorted(validation)]})


def test_report_scores_held_out_objects_only(ray_session, classifier_dir, survey, tmp_path):
    """Objects of the model card's train / validation splits are never scored.

    The 'trained' objects are exactly those the model gets right, so scoring any of them
    would raise the accuracy above the independent held-out figure.
    """
    from astroray.infer.report import write_report

    folder, _ = survey
    model_dir = Path(shutil.copytree(classifier_dir, tmp_path / "clf"))
    data, _ = read_files(folder)
    pred = get_predictor(model_dir, device="cpu")(numpy_batch(data)).table
    labels = dict(zip(data.column("object_id").to_pylist(), data.column("label").to_pylist(),
                      strict=True))
    rows = {r["object_id"]: r["predicted_class"] for r in pred.to_pylist()}
    right = {k for k, c in rows.items() if c == labels[k]}
    wrong = sorted(set(rows) - right)
    validation = set(wrong[:5])
    _card_for(model_dir, data, right, validation)
    run_inference(InferConfig(model=str(model_dir), paths=(str(folder),), batch_size=64,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    cat, _ = read_catalogue(tmp_path / "run")
    assert "in_domain" in cat.column_names and "ood_reason" in cat.column_names
    page = write_report(tmp_path / "run", tmp_path / "report.html", gallery=0).read_text()
    figures = json.loads((tmp_path / "report.json").read_text())
    held = [r for r in cat.to_pylist() if r["object_id"] not in right | validation]
    assert held and right  # both sides are non-empty, or the test proves nothing
    accuracy = np.mean([r["predicted_class"] == r["label"] for r in held])
    overall = figures["metrics"]["all"]
    assert overall["objects"] == len(held)
    assert overall["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert accuracy < 0.05  # every held-out object is one the model gets wrong
    assert figures["left_out"] == {"trained on (train split)": len(right),
                                   "used for early stopping (validation split)": 5}
    assert (tmp_path / "report_confusion.png").is_file()
    for section in ("Held-out scores", "Confusion matrix", "Domain", "Reliability"):
        assert section in page, section
    # A catalogue row whose survey the model never saw is out of its domain, with the reason.
    from astroray.infer.predictors import DomainChecked

    predictor = get_predictor(model_dir, device="cpu")
    assert isinstance(predictor, DomainChecked)
    batch = numpy_batch(data.slice(0, 4))
    batch["survey"] = np.array(["ztf", "ztf", batch["survey"][2], "api"], dtype=object)
    table = predictor(batch).table
    flags = dict(zip(table.column("object_id").to_pylist(),
                     zip(table.column("in_domain").to_pylist(),
                         table.column("ood_reason").to_pylist(), strict=True), strict=True))
    first, last = batch["object_id"][0], batch["object_id"][3]
    assert flags[first][0] is False and "survey ztf not in training" in flags[first][1]
    assert flags[last][1] is None or "survey" not in flags[last][1]  # Serve's "api": unknown


def test_report_without_a_model_card_scores_nothing(ray_session, classifier_dir, survey,
                                                    tmp_path):
    from astroray.infer.report import write_report

    folder, _ = survey
    run_inference(InferConfig(model=str(classifier_dir), paths=(str(folder),), batch_size=64,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    page = write_report(tmp_path / "run", tmp_path / "report.html", gallery=0).read_text()
    figures = json.loads((tmp_path / "report.json").read_text())
    assert figures["scored"] is False and "no model card" in figures["why_not"]
    assert "Reliability" not in page and "Catalogue objects are not scored" in page


def test_predict_in_process_agrees_with_bulk_inference(ray_session, classifier_dir, real,
                                                       tmp_path):
    import astroray

    rr = real / "rrlyrae_stripe82"
    model = astroray.load_model(classifier_dir)
    rows, errors = astroray.predict(model, rr, return_errors=True, batch_size=100)
    run_inference(InferConfig(model=str(classifier_dir), paths=(str(rr),), batch_size=64,
                              actor_cpus=0.5, task_cpus=0.25), tmp_path / "run", progress=False)
    cat, err = read_catalogue(tmp_path / "run")
    assert len(rows) == cat.num_rows == 309 and len(errors) == err.num_rows == 0
    cat = cat.to_pandas().sort_values("object_id").reset_index(drop=True)
    rows = rows.sort_values("object_id").reset_index(drop=True)
    assert list(rows.columns) == list(cat.columns)
    assert (rows["object_id"] == cat["object_id"]).all()
    assert (rows["predicted_class"] == cat["predicted_class"]).all()
    for c in CLASSES:
        np.testing.assert_allclose(rows[prob_column(c)], cat[prob_column(c)], rtol=1e-4,
                                   atol=1e-6)
    # A DataFrame of canonical rows works too, and bad input is a clear error.
    data, _ = read_files(rr / "light-curves" / "1013184.csv")
    one = astroray.predict(model, data.to_pandas())
    assert one["object_id"].tolist() == ["1013184"]
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        astroray.predict(model, tmp_path / "nope")
    with pytest.raises(TypeError, match="canonical Arrow table"):
        astroray.predict(model, 42)
