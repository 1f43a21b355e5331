"""A real 2-worker TorchTrainer on the session Ray: one worker fails, the run resumes."""

from __future__ import annotations

import json

from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.models.astromer import Astromer
from astroray.train.astromer import PretrainConfig, pretrain


def test_pretraining_resumes_from_its_checkpoint_after_a_worker_failure(ray_session, tmp_path):
    config = PretrainConfig(
        model="astromer-tiny", synthetic=SyntheticSurveyConfig(n=160, format="parquet", seed=5),
        epochs=3, batch_size=32, warmup_steps=5, val_fraction=0.15, fail_at_epoch=1,
        num_workers=2, cpus_per_worker=0.5, task_cpus=0.5, max_failures=1, name="resume")
    summary = pretrain(config, tmp_path / "run")
    resume = summary["resume"]
    # The last worker raised at the start of epoch 1 (once: a marker file in the storage
    # path stops the retry from failing again), Ray Train restarted the worker group, and the
    # new attempt resumed from the epoch-0 checkpoint instead of starting over.
    assert resume["failure_injected"] is True
    assert resume["attempts"] == 2
    assert resume["start_epoch"] == 1
    assert resume["epochs_run"] == [1, 2]
    assert resume["epochs_in_history"] == [0, 1, 2]  # no epoch repeated, none lost
    assert resume["attempt_of_epoch"] == [1, 2, 2]
    m = summary["metrics"]
    assert m["epochs"] == 3 and 0 < m["val_rmse"] < 10 and m["val_rmse_initial"] > 0
    for record in summary["history"]:
        assert record["train_windows"] > 0 and record["val_points"] > 0
    model = Astromer.from_pretrained(summary["model"]["dir"])
    assert model.config.num_layers == 2
    cfg = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert cfg["model_type"] == "astromer"
