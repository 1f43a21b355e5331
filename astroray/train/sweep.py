"""The Ray Tune sweep shared by the tuning jobs: random search under a budget, ASHA stopping.

A job gives its function trainable (wrapped with its resources), the search space, the metric
and how many validation checks a trial reports at most; :func:`asha_sweep` runs the trials and
returns one row per trial (its sampled values, how far it got, its last metrics, its error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ray.tune import Callback

from astroray.config import Config, check, check_positive_ints
from astroray.runtime import progress

__all__ = ["SweepSettings", "asha_sweep", "check_sweep_settings", "load_base"]

C = TypeVar("C", bound=Config)


class SweepSettings(Protocol):
    """The budget fields of a tuning config."""

    num_samples: int
    time_budget_s: float
    grace_period: int
    reduction_factor: int
    max_concurrent: int | None
    seed: int


def load_base(owner: Config, value: Any, cls: type[C], what: str) -> C:
    """A tuning config's ``base``: a ``cls`` instance from itself, a mapping or a YAML path."""
    if isinstance(value, str):
        check(Path(value).is_file(), owner, "base", value,
              f"{what} mapping or an existing YAML file")
        value = cls.from_file(value)
    elif isinstance(value, dict):
        value = cls.from_dict(value)
    check(isinstance(value, cls), owner, "base", value,
          f"{what} configuration (mapping or YAML path)")
    return value


def check_sweep_settings(cfg: Config) -> None:
    """Check the budget fields of a tuning config (see :class:`SweepSettings`, ``trial_cpus``)."""
    check_positive_ints(cfg, "num_samples", "grace_period", "reduction_factor")
    check(cfg.reduction_factor >= 2, cfg, "reduction_factor", cfg.reduction_factor,
          "an integer >= 2")
    check(cfg.max_concurrent is None or (isinstance(cfg.max_concurrent, int)
                                         and cfg.max_concurrent > 0),
          cfg, "max_concurrent", cfg.max_concurrent, "a positive integer or null")
    for name in ("time_budget_s", "trial_cpus"):
        value = getattr(cfg, name)
        check(isinstance(value, int | float) and value > 0, cfg, name, value,
              "a positive number")


def asha_sweep(trainable: Any, param_space: Mapping[str, Any], settings: SweepSettings, *,
               metric: str, mode: str, max_t: int, storage: str | Path, name: str,
               metrics: Sequence[str], completed_key: str) -> list[dict[str, Any]]:
    """Run the trials and return a row per trial.

    Args:
        trainable: the function trainable (``tune.with_resources`` applied).
        param_space: the search space (Tune sampling domains).
        settings: trials, time budget, ASHA grace period and halving rate, concurrency, seed.
        metric: the metric ASHA compares trials on.
        mode: ``min`` or ``max``.
        max_t: most validation checks (``training_iteration``) a trial reports.
        storage: folder of Tune's results (``<storage>/<name>``).
        name: the experiment name.
        metrics: the reported metrics copied into each row (None when never reported).
        completed_key: the reported flag saying a trial ran to its end (Tune sets ``done``
            itself on a stopped trial's last result, so a trial needs its own).

    Returns:
        Rows with the sampled values, ``trial``, ``checks``, ``completed``, the metrics and
        ``error``.
    """
    from ray import tune  # lazy: Ray Tune
    from ray.tune.schedulers import ASHAScheduler  # lazy: Ray Tune
    from ray.tune.search.basic_variant import BasicVariantGenerator  # lazy: Ray Tune

    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t,
                              grace_period=min(settings.grace_period, max_t),
                              reduction_factor=settings.reduction_factor)
    tuner = tune.Tuner(
        trainable, param_space=dict(param_space),
        tune_config=tune.TuneConfig(
            metric=metric, mode=mode, scheduler=scheduler, num_samples=settings.num_samples,
            time_budget_s=settings.time_budget_s, max_concurrent_trials=settings.max_concurrent,
            search_alg=BasicVariantGenerator(random_state=settings.seed)),
        run_config=tune.RunConfig(storage_path=str(storage), name=name, verbose=0,
                                  callbacks=[_TrialBar(settings.num_samples, f"sweep {name}")]))
    rows = []
    for result in tuner.fit():
        m = result.metrics or {}
        rows.append({**{k: result.config.get(k) for k in param_space},
                     "trial": Path(result.path).name if result.path else None,
                     "checks": int(m.get("training_iteration", 0)),
                     "completed": bool(m.get(completed_key)),
                     **{k: m.get(k) for k in metrics},
                     "error": None if result.error is None else str(result.error)[:500]})
    return rows


class _TrialBar(Callback):
    """One progress bar of finished trials (Tune calls its callbacks in the driver)."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.bar = total, desc, None

    def setup(self, **info: Any) -> None:  # noqa: D102 - Tune's hook

        self.bar = progress(self.total, self.desc, unit=" trials")

    def _step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n >= self.total:
                self.bar.close()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any
                          ) -> None:  # noqa: D102 - Tune's hook
        self._step()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any
                       ) -> None:  # noqa: D102 - Tune's hook
        self._step()

    def on_experiment_end(self, trials: list, **info: Any) -> None:  # noqa: D102
        if self.bar is not None and not self.bar.disable:
            self.bar.close()
