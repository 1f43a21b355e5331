"""Checkpoints, metrics, lockstep iteration, the GRU baseline, config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astroray.config import ConfigError
from astroray.models import create_model
from astroray.train import (
    ClassifyConfig,
    GRUClassifier,
    MaskedRegressionMeter,
    PretrainConfig,
    in_lockstep,
    load_checkpoint,
    macro_f1,
    mean_spread,
    save_checkpoint,
)
from astroray.train.labelled import SMOKE_PER_CLASS


def test_checkpoint_round_trip_restores_weights_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = create_model("astromer-tiny")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    t, v, m = torch.rand(2, 9).cumsum(1), torch.randn(2, 9), torch.ones(2, 9, dtype=torch.bool)
    model(t, v, m).prediction.sum().backward()
    opt.step()
    sched.step()
    save_checkpoint(tmp_path / "c", model, opt, sched, epoch=4, history=[{"epoch": 4}])
    other = create_model("astromer-tiny")
    opt2 = torch.optim.AdamW(other.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0 / (s + 1))
    state = load_checkpoint(tmp_path / "c", other, opt2, sched2)
    assert state == {"epoch": 4, "history": [{"epoch": 4}]}
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    saved, loaded = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert saved.keys() == loaded.keys() and saved
    for k in saved:
        torch.testing.assert_close(loaded[k]["exp_avg"], saved[k]["exp_avg"])
    assert sched2.last_epoch == sched.last_epoch


def test_regression_meter_matches_numpy():
    rng = np.random.default_rng(0)
    meter = MaskedRegressionMeter()
    preds, ys = [], []
    for _ in range(3):
        p, y = rng.normal(size=(4, 10)), rng.normal(size=(4, 10))
        probed = rng.random((4, 10)) < 0.5
        meter.update(torch.tensor(p), torch.tensor(y), torch.tensor(probed))
        preds.append(p[probed])
        ys.append(y[probed])
    p, y = np.concatenate(preds), np.concatenate(ys)
    got = meter.compute()
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)))
    assert got["r2"] == pytest.approx(1 - np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2))
    assert got["rmse_zero"] == pytest.approx(np.sqrt(np.mean(y ** 2)))
    assert got["n"] == y.size


def test_metric_helpers_and_lockstep():
    assert macro_f1([0, 0, 1, 1], [0, 0, 1, 0]) == pytest.approx((0.8 + 2 / 3) / 2)
    s = mean_spread([0.5, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1)
    assert list(in_lockstep(iter([1, 2, 3]))) == [1, 2, 3]


def test_gru_baseline_ignores_padding():
    torch.manual_seed(0)
    gru = GRUClassifier(3, hidden=8, layers=2).eval()
    t = torch.rand(2, 12).cumsum(1)
    v = torch.randn(2, 12)
    mask = torch.arange(12)[None, :] < torch.tensor([12, 5])[:, None]
    with torch.no_grad():
        a = gru(t, v, mask)
        v2 = v.clone()
        v2[1, 5:] = 99.0
        b = gru(t, v2, mask)
    assert a.shape == (2, 3)
    torch.testing.assert_close(a, b)


def test_job_configs_validate_and_shrink():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pre = PretrainConfig.from_file(root / "jobs" / "pretrain_astromer.yaml")
    assert pre.model == "astromer-v1" and pre.synthetic is not None
    small = pre.smoke()
    assert small.model == "astromer-tiny" and small.synthetic.n <= 300 and small.epochs <= 2
    # The smoke run keeps the real run's non-size settings and drops its sizes.
    wide = pre.replace(model_overrides={"head_dim": 32, "value_scale": 4.0}).smoke()
    assert wide.model_overrides == {"value_scale": 4.0}
    assert wide.model_config().value_scale == 4.0 and wide.model_config().head_dim == 16
    with pytest.raises(ConfigError, match=r"PretrainConfig\.fail_at_epoch = 9"):
        pre.replace(fail_at_epoch=9)
    # The Ray Train fields shared with the vision fine-tuning config (config.check_training).
    for field, bad in (("num_workers", 0), ("use_gpu", "yes"), ("cpus_per_worker", 0),
                       ("max_failures", -1), ("name", "a/b")):
        with pytest.raises(ConfigError, match=rf"PretrainConfig\.{field} = "):
            pre.replace(**{field: bad})
    with pytest.raises(ConfigError, match=r"PretrainConfig\.synthetic = 'spectra'"):
        pre.replace(synthetic={"kind": "spectra", "n": 10, "format": "parquet"})
    with pytest.raises(ConfigError, match="model_overrides|num_heads"):
        pre.replace(model_overrides={"num_heads": 0})
    with pytest.raises(ConfigError, match="unknown field"):
        PretrainConfig.from_dict({"epocs": 3, "synthetic": {"n": 10}})
    with pytest.raises(ConfigError, match=r"ClassifyConfig\.encoder"):
        ClassifyConfig(datasets=({"name": "x", "paths": ["a"]},))
    # The few-shot smoke caps every labelled set, the real one included, per class.
    few = ClassifyConfig.from_file(root / "jobs" / "classify_astromer.yaml")
    assert all(d.max_per_class is None for d in few.datasets)
    assert [d.max_per_class for d in few.smoke().datasets] == [SMOKE_PER_CLASS] * len(
        few.datasets)


def test_local_ray_checks_train_workers_often(ray_session):
    """A local Ray's processes, Train's controller among them, see the short check interval.

    Ray's default (2 s) leaves every fit idle for ~4 s after its last report; the variable is
    set before the local Ray starts, so its workers (and jobs that join it) inherit it.
    """
    import os

    from astroray.runtime import LOCAL_TRAIN_CHECK_INTERVAL_S

    @ray_session.remote(num_cpus=0)
    def interval() -> str | None:
        return os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S")

    want = os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", LOCAL_TRAIN_CHECK_INTERVAL_S)
    assert ray_session.get(interval.remote()) == want
    assert float(LOCAL_TRAIN_CHECK_INTERVAL_S) < 2.0
