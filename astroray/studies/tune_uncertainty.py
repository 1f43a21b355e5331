"""Ray Tune sweep of an uncertainty method's hyperparameters, with ASHA early stopping.

Each trial fine-tunes the classifier of :mod:`astroray.studies.uncertainty` with one draw of
the search space (dropout rate, passes T, HSA temperatures tau1 / tau2 and centroids K,
ensemble size, learning rate; only those the method uses) on the training objects of fold 0
of one data set, reporting the validation cross-entropy at every check so that ASHA stops
poor trials early. A trial that finishes scores its sampled predictive distribution on the
validation objects: negative log-likelihood (the selection metric: a proper score, it rewards
accuracy and calibration together), macro F1, ECE and the misclassification ROC-AUC of SMP, PV
and BALD. The fixed test set is never seen by the sweep.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from astroray.config import Config, check
from astroray.runtime import init_ray
from astroray.studies.uncertainty import (
    METHODS,
    UncertaintyConfig,
    _encoder,
    _restore,
    _split,
    _train_model,
)
from astroray.train.labelled import window_labelled
from astroray.train.sweep import asha_sweep, check_sweep_settings, load_base
from astroray.uncertainty import uncertainty_metrics
from astroray.uncertainty.sampling import sample_object_probs

__all__ = ["TuneUncertaintyConfig", "tune_uncertainty"]

logger = logging.getLogger(__name__)

#: The hyperparameters each method samples.
_SPACE_BY_METHOD = {
    "mc_dropout": ("dropout", "passes", "lr"),
    "hsa": ("passes", "hsa_tau1", "hsa_tau2", "hsa_centroids", "lr"),
    "ha_mc_dropout": ("dropout", "passes", "hsa_tau1", "hsa_centroids", "lr"),
    "ensemble": ("dropout", "ensemble_size", "lr"),
}


@dataclasses.dataclass
class TuneUncertaintyConfig(Config):
    """The sweep.

    Attributes:
        base: the comparison's configuration (mapping or YAML path): encoder / pretraining,
            data sets and the fixed training settings.
        method: the method swept (one of ``mc_dropout``, ``hsa``, ``ha_mc_dropout``,
            ``ensemble``).
        dataset: name of the data set of ``base`` to tune on (default: its first).
        num_samples: trials (draws of the search space).
        time_budget_s: wall-clock budget of the whole sweep (trials left are not started).
        grace_period: validation checks every trial gets before ASHA may stop it.
        reduction_factor: ASHA's halving rate.
        max_concurrent: trials at once (None: as many as the CPUs allow).
        trial_cpus: CPUs of each trial.
        dropout: range of the dropout rate (uniform).
        passes: choices of T.
        hsa_tau1: range of tau1 (log-uniform).
        hsa_tau2: range of tau2 (log-uniform).
        hsa_centroids: choices of K.
        ensemble_size: choices of M.
        lr: range of the learning rate (log-uniform).
        seed: seed of the search.
    """

    base: UncertaintyConfig | str | None = None
    method: str = "ha_mc_dropout"
    dataset: str | None = None
    num_samples: int = 16
    time_budget_s: float = 3600.0
    grace_period: int = 4
    reduction_factor: int = 3
    max_concurrent: int | None = None
    trial_cpus: float = 1.0
    dropout: tuple[float, float] = (0.05, 0.5)
    passes: tuple[int, ...] = (10, 20, 50)
    hsa_tau1: tuple[float, float] = (0.1, 2.0)
    hsa_tau2: tuple[float, float] = (0.1, 2.0)
    hsa_centroids: tuple[int, ...] = (4, 8, 16, 32)
    ensemble_size: tuple[int, ...] = (3, 5, 8)
    lr: tuple[float, float] = (1e-4, 1e-3)
    seed: int = 0

    def __post_init__(self) -> None:
        self.base = load_base(self, self.base, UncertaintyConfig, "an uncertainty")
        check(self.method in METHODS, self, "method", self.method, f"one of {METHODS}")
        names = [d.name for d in self.base.datasets]
        check(self.dataset is None or self.dataset in names, self, "dataset", self.dataset,
              f"null or one of {names}")
        check_sweep_settings(self)
        for name, low, high in (("dropout", 0.0, 1.0), ("hsa_tau1", 0.0, None),
                                ("hsa_tau2", 0.0, None), ("lr", 0.0, None)):
            value = tuple(getattr(self, name))
            setattr(self, name, value)
            check(len(value) == 2 and low < value[0] <= value[1]
                  and (high is None or value[1] < high), self, name, value,
                  f"a range [low, high] within ({low}, {high or 'inf'})")
        for name in ("passes", "hsa_centroids", "ensemble_size"):
            value = tuple(getattr(self, name))
            setattr(self, name, value)
            check(len(value) > 0 and all(isinstance(v, int) and v > 0 for v in value), self,
                  name, value, "positive integer choices")

    def search_space(self) -> dict[str, Any]:
        """The Ray Tune search space of the method."""
        from ray import tune  # lazy: ray

        dists = {"dropout": tune.uniform(*self.dropout), "passes": tune.choice(self.passes),
                 "hsa_tau1": tune.loguniform(*self.hsa_tau1),
                 "hsa_tau2": tune.loguniform(*self.hsa_tau2),
                 "hsa_centroids": tune.choice(self.hsa_centroids),
                 "ensemble_size": tune.choice(self.ensemble_size),
                 "lr": tune.loguniform(*self.lr)}
        return {k: dists[k] for k in _SPACE_BY_METHOD[self.method]}


def _trial(params: dict[str, Any], *, base: dict[str, Any], method: str, encoder: str,
           classes: list[str], min_points: int, windows: dict[str, np.ndarray],
           win_obj: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray) -> None:
    """One Tune trial: train with ``params``, report checks, then the validation scores."""
    from ray import tune  # lazy: ray

    cfg = UncertaintyConfig.from_dict({**base, **params})
    last = {"step": 0}

    def report(step: int, loss: float) -> None:
        last["step"] = step
        tune.report({"val_loss": loss, "step": step})

    members = cfg.ensemble_size if method == "ensemble" else 1
    results = [_train_model(encoder, classes, method, cfg, cfg.seed * 1000 + m, min_points,
                            windows, win_obj, y, train, val,
                            on_eval=report if m == 0 else None) for m in range(members)]
    models = [_restore(r) for r in results]
    rows = np.flatnonzero(np.isin(win_obj, val))
    remap = np.full(len(y), -1)
    remap[val] = np.arange(len(val))
    win = {k: torch.from_numpy(np.array(v[rows])) for k, v in windows.items()}
    obj = torch.from_numpy(remap[win_obj[rows]])
    torch.manual_seed(cfg.seed)
    if method == "ensemble":
        probs = torch.cat([sample_object_probs(m, win, obj, len(val), 1, dropout=False,
                                               hsa=False) for m in models])
    else:
        probs = sample_object_probs(models[0], win, obj, len(val), cfg.passes,
                                    dropout=method != "hsa", hsa=method != "mc_dropout")
    scores = uncertainty_metrics(np.asarray(y)[val], probs.numpy(), cfg.n_bins)
    final = {f"val_{k}": v for k, v in scores.items()}
    tune.report({"val_loss": final["val_nll"], "step": last["step"], **final, "scored": 1})


def tune_uncertainty(config: TuneUncertaintyConfig, out: str | Path) -> dict[str, Any]:
    """Run the sweep; writes ``out/trials.parquet`` and ``out/best.json``.

    Returns:
        ``{"trials": [...], "best": {"config", "metrics"}, "completed", "stopped_early",
        "dataset", "encoder", "pretrain"}``.
    """
    from ray import tune  # lazy: ray

    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = config.base
    encoder, pretrained = _encoder(base.encoder, base.pretrain, out)
    ds_cfg = next(d for d in base.datasets if config.dataset in (None, d.name))
    data = window_labelled(ds_cfg, encoder, out / "data" / ds_cfg.name)
    if isinstance(data, dict):
        raise ValueError(f"data set {ds_cfg.name!r} cannot be tuned on: {data['skipped']}")
    train, val = _split(data, base, 0)
    base_dict = base.replace(encoder=encoder, pretrain=None).to_dict()
    trainable = tune.with_resources(tune.with_parameters(
        _trial, base=base_dict, method=config.method, encoder=encoder, classes=data.classes,
        min_points=ds_cfg.min_points, windows=data.windows, win_obj=data.win_obj, y=data.y,
        train=train, val=val), {"cpu": config.trial_cpus})
    # ASHA counts validation checks; a trial reports at most max_steps / eval_every + 1.
    rows = asha_sweep(trainable, config.search_space(), config, metric="val_loss", mode="min",
                      max_t=base.max_steps // base.eval_every + 2, storage=out / "ray",
                      name="tune-uncertainty", completed_key="scored",
                      metrics=("val_loss", "val_nll", "val_macro_f1", "val_ece",
                               "val_auroc_smp", "val_auroc_pv", "val_auroc_bald"))
    done = [r for r in rows if r["completed"] and r["val_nll"] is not None]
    if not done:
        raise RuntimeError(f"no trial of the sweep completed ({len(rows)} trials; errors: "
                           f"{[r['error'] for r in rows if r['error']][:3]})")
    best = min(done, key=lambda r: r["val_nll"])
    best_config = base.replace(**{k: best[k] for k in config.search_space()},
                               methods=(config.method,))
    pq.write_table(pa.Table.from_pylist(rows), out / "trials.parquet")
    summary = {"config": best_config.to_dict(),
               "metrics": {k: v for k, v in best.items() if k.startswith("val_")}}
    (out / "best.json").write_text(json.dumps(summary, indent=2, default=str))
    return {"trials": rows, "best": summary, "completed": len(done),
            "stopped_early": sum(1 for r in rows if not r["completed"] and not r["error"]),
            "dataset": ds_cfg.name, "method": config.method, "encoder": encoder,
            "pretrain": pretrained and {k: pretrained[k] for k in ("metrics", "resume")}}
