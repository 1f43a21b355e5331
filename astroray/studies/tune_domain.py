"""Ray Tune sweep of MME's hyperparameters (lambda, T, learning rate), with ASHA.

Every trial adapts the same source-only model (trained once, before the sweep) to the target
survey by MME with one draw of the search space: the weight lambda of the adversarial entropy
term, the temperature T of the cosine classifier, and the learning rate, using the k labelled
target stamps per class of one pick seed. It reports the balanced accuracy on a labelled
target *validation* set (and on a source validation set) at every check, so that ASHA stops
poor trials early; the test sets are never seen by the sweep.
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
from astroray.models.stamps import StampClassifier
from astroray.runtime import init_ray
from astroray.studies.domain import (
    DomainAdaptConfig,
    DomainData,
    _run_mode,
    load_domain_data,
    pick_shots,
)
from astroray.train.domain import FitSettings, balanced_accuracy, fit_stamps
from astroray.train.sweep import asha_sweep, check_sweep_settings, load_base

__all__ = ["TuneDomainConfig", "tune_domain"]

logger = logging.getLogger(__name__)

_SPACE = ("mme_lambda", "temperature", "mme_lr")
_METRICS = ("val_target_ba", "val_source_ba")


@dataclasses.dataclass
class TuneDomainConfig(Config):
    """The sweep.

    Attributes:
        base: the domain-adaptation configuration (mapping or YAML path): data, model and the
            fixed training settings.
        shots: k, labelled target stamps per class of every trial.
        pick_seed: seed of the draw of those stamps.
        num_samples: trials (draws of the search space).
        time_budget_s: wall-clock budget of the whole sweep (trials left are not started).
        grace_period: validation checks every trial gets before ASHA may stop it.
        reduction_factor: ASHA's halving rate.
        max_concurrent: trials at once (None: as many as the CPUs allow).
        trial_cpus: CPUs of each trial.
        mme_lambda: range of lambda (log-uniform).
        temperature: range of T (log-uniform).
        mme_lr: range of the learning rate (log-uniform).
        seed: seed of the search.
    """

    base: DomainAdaptConfig | str | None = None
    shots: int = 5
    pick_seed: int = 0
    num_samples: int = 16
    time_budget_s: float = 1800.0
    grace_period: int = 3
    reduction_factor: int = 3
    max_concurrent: int | None = None
    trial_cpus: float = 1.0
    mme_lambda: tuple[float, float] = (0.01, 1.0)
    temperature: tuple[float, float] = (0.02, 0.2)
    mme_lr: tuple[float, float] = (1e-4, 3e-3)
    seed: int = 0

    def __post_init__(self) -> None:
        self.base = load_base(self, self.base, DomainAdaptConfig, "a domain-adaptation")
        check(isinstance(self.shots, int) and not isinstance(self.shots, bool)
              and self.shots > 0, self, "shots", self.shots, "a positive integer")
        check_sweep_settings(self)
        check(self.shots * 2 <= self.base.n_target_pool, self, "shots", self.shots,
              f"at most n_target_pool / 2 ({self.base.n_target_pool // 2})")
        check(isinstance(self.pick_seed, int) and self.pick_seed >= 0, self, "pick_seed",
              self.pick_seed, "a non-negative integer")
        for name in _SPACE:
            value = tuple(getattr(self, name))
            setattr(self, name, value)
            check(len(value) == 2 and 0 < value[0] <= value[1], self, name, value,
                  "a range [low, high] of positive numbers")

    def search_space(self) -> dict[str, Any]:
        """The Ray Tune search space: log-uniform lambda, T and learning rate."""
        from ray import tune  # lazy: ray

        return {name: tune.loguniform(*getattr(self, name)) for name in _SPACE}


def _trial(params: dict[str, Any], *, base: dict[str, Any], state: dict[str, np.ndarray],
           data: DomainData, shots: int, pick_seed: int) -> None:
    """One Tune trial: MME from the source-only model with ``params``, reporting each check."""
    from ray import tune  # lazy: ray

    cfg = DomainAdaptConfig.from_dict({**base, "mme_lambda": params["mme_lambda"],
                                       "mme_lr": params["mme_lr"]})
    torch.set_num_threads(max(1, int(cfg.task_cpus)))
    model_cfg = cfg.model_config().replace(temperature=params["temperature"])
    model = StampClassifier(model_cfg)
    model.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in state.items()})
    picks = pick_shots(data.labels["target_pool"], shots, pick_seed, len(model_cfg.labels))
    target = (data.images["target_pool"][picks], data.labels["target_pool"][picks])
    source = (data.images["source_train"], data.labels["source_train"])

    def report(step: int) -> None:
        tune.report({"step": step,
                     "val_target_ba": balanced_accuracy(model, data.images["target_val"],
                                                        data.labels["target_val"]),
                     "val_source_ba": balanced_accuracy(model, data.images["source_val"],
                                                        data.labels["source_val"]),
                     # Not "done": Tune sets that key itself on a trial's last result.
                     "finished": int(step == cfg.mme_steps)})

    settings = FitSettings(cfg.mme_steps, cfg.mme_lr, cfg.weight_decay, lam=cfg.mme_lambda,
                           batch_sizes=(cfg.batch_size, cfg.target_batch_size),
                           unlabelled_batch=cfg.target_batch_size, eval_every=cfg.eval_every,
                           seed=pick_seed)
    fit_stamps(model, [source, target], settings, unlabelled=data.images["target_pool"],
               on_eval=report)


def tune_domain(config: TuneDomainConfig, out: str | Path) -> dict[str, Any]:
    """Run the sweep; writes ``out/trials.parquet`` and ``out/best.json``.

    Returns:
        ``{"trials": [...], "best": {"config", "metrics"}, "completed", "stopped_early",
        "source_only": its validation balanced accuracies}``.
    """
    import ray  # lazy: ray
    from ray import tune  # lazy: ray

    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = config.base
    model_cfg = base.model_config()
    data = load_domain_data(base, StampClassifier(model_cfg))
    task = ray.remote(num_cpus=base.task_cpus)(_run_mode)
    source_only = ray.get(task.remote("source_only", base, model_cfg, None, data, None, None))
    state = source_only["state"]
    probe = StampClassifier(model_cfg)
    probe.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    baseline = {"val_target_ba": balanced_accuracy(probe, data.images["target_val"],
                                                   data.labels["target_val"]),
                "val_source_ba": balanced_accuracy(probe, data.images["source_val"],
                                                   data.labels["source_val"])}
    trainable = tune.with_resources(tune.with_parameters(
        _trial, base=base.to_dict(), state=state, data=data, shots=config.shots,
        pick_seed=config.pick_seed), {"cpu": config.trial_cpus})
    # ASHA counts validation checks; a trial reports ceil(mme_steps / eval_every) of them.
    rows = asha_sweep(trainable, config.search_space(), config,
                      metric="val_target_ba", mode="max",
                      max_t=-(-base.mme_steps // base.eval_every), storage=out / "ray",
                      name="tune-domain", metrics=_METRICS, completed_key="finished")
    done = [r for r in rows if r["completed"] and r["val_target_ba"] is not None]
    if not done:
        raise RuntimeError(f"no trial of the sweep completed ({len(rows)} trials; errors: "
                           f"{[r['error'] for r in rows if r['error']][:3]})")
    # Ties on the target (small validation sets) go to the better source accuracy.
    best = max(done, key=lambda r: (r["val_target_ba"], r["val_source_ba"]))
    overrides = {**base.model_overrides, "temperature": best["temperature"]}
    best_config = base.replace(mme_lambda=best["mme_lambda"], mme_lr=best["mme_lr"],
                               model_overrides=overrides)
    pq.write_table(pa.Table.from_pylist(rows), out / "trials.parquet")
    summary = {"config": best_config.to_dict(),
               "metrics": {k: best[k] for k in _METRICS},
               "params": {k: best[k] for k in _SPACE}}
    (out / "best.json").write_text(json.dumps(summary, indent=2, default=str))
    return {"trials": rows, "best": summary, "completed": len(done),
            "stopped_early": sum(1 for r in rows if not r["completed"] and not r["error"]),
            "source_only": baseline, "shots": config.shots}
