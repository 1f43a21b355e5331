"""Real/bogus domain adaptation from a source survey to a target survey (stamps).

The comparison of the domain-adaptation job, on the synthetic two-survey stamps of
:func:`astroray.data.synthetic.stamps` (source: survey ``A``, deep, Moffat PSF, fine pixels;
target: survey ``B``, ZTF-like):

* **source-only**: the :class:`~astroray.models.stamps.StampClassifier` trained on labelled
  source stamps alone;
* **fine-tuning**: the source-only model trained further on k labelled target stamps per
  class only;
* **MME** (Minimax Entropy, Saito et al. 2019): the source-only model trained further on the
  labelled source stamps plus the k labelled target stamps per class (cross-entropy), and on
  unlabelled target stamps through a gradient-reversal layer: the cosine classifier's
  prototypes maximise the entropy of the target predictions (they move towards the target
  features) while the feature extractor minimises it (target features cluster around the
  prototypes), the adversarial term weighted by lambda.

Every model is scored by balanced accuracy on a source test set and a target test set, both
labelled and never trained on; the k labelled target stamps are drawn from the unlabelled
target pool, with several seeds per k. Training is plain PyTorch in Ray tasks, one CPU each
(the loop, :func:`~astroray.train.domain.fit_stamps`, is library code in
:mod:`astroray.train.domain`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from astroray.config import Config, check
from astroray.data.registry import read_files
from astroray.data.synthetic import STAMP_SURVEYS, stamps
from astroray.infer.predictors import get_predictor
from astroray.models.registry import get_config, list_models
from astroray.models.stamps import StampClassifier, StampConfig
from astroray.runtime import init_ray
from astroray.train.domain import FitSettings, balanced_accuracy, fit_stamps, stamp_images

__all__ = ["DomainAdaptConfig", "DomainData", "domain_adapt", "load_domain_data", "pick_shots"]

logger = logging.getLogger(__name__)

_SPLITS = ("source_train", "source_val", "source_test", "target_pool", "target_val",
           "target_test")


def _positive_int(cfg: Any, name: str) -> None:
    value = getattr(cfg, name)
    check(isinstance(value, int) and not isinstance(value, bool) and value > 0, cfg, name,
          value, "a positive integer")


def _positive(cfg: Any, name: str) -> None:
    value = getattr(cfg, name)
    check(isinstance(value, int | float) and not isinstance(value, bool) and value > 0, cfg,
          name, value, "a positive number")


@dataclasses.dataclass
class DomainAdaptConfig(Config):
    """The domain-adaptation comparison.

    Attributes:
        source_survey: synthetic stamp survey the model is trained on (``A`` or ``B``).
        target_survey: the survey adapted to.
        n_source_train: labelled source stamps for training.
        n_source_val: source stamps for validation (the sweep's source check).
        n_source_test: source test stamps.
        n_target_pool: target stamps for training: unlabelled for MME, and the pool the k
            labelled stamps per class are drawn from.
        n_target_val: labelled target stamps for validation (the sweep's metric; never the
            test set).
        n_target_test: target test stamps.
        data_seed: seed of the synthetic surveys.
        shots: k, labelled target stamps per class.
        pick_seeds: seeds of the draw of the k labelled stamps (one run per seed and k).
        model: registered stamp model name.
        model_overrides: config overrides of the model (e.g. ``temperature``).
        batch_size: labelled source stamps per step.
        target_batch_size: labelled (at most 2k distinct) and unlabelled target stamps per
            step.
        source_steps: training steps of the source-only model.
        source_lr: its learning rate (Adam).
        finetune_steps: fine-tuning steps on the labelled target stamps.
        finetune_lr: fine-tuning learning rate.
        mme_steps: MME steps (from the source-only model).
        mme_lr: MME learning rate.
        mme_lambda: weight lambda of the adversarial entropy term.
        weight_decay: Adam weight decay of every mode.
        eval_every: steps between validation checks (the sweep reports them).
        task_cpus: CPUs of each training task (torch threads).
        real_stamps: optional folder of real alerts (ZTF Avro) scored by the saved models
            (inference only: they carry rb/drb scores, not labels); skipped when absent.
    """

    source_survey: str = "A"
    target_survey: str = "B"
    n_source_train: int = 4000
    n_source_val: int = 500
    n_source_test: int = 1000
    n_target_pool: int = 4000
    n_target_val: int = 500
    n_target_test: int = 1000
    data_seed: int = 0
    shots: tuple[int, ...] = (1, 5, 10)
    pick_seeds: tuple[int, ...] = (0, 1, 2)
    model: str = "stamp-cnn"
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 64
    target_batch_size: int = 32
    source_steps: int = 1500
    source_lr: float = 1e-3
    finetune_steps: int = 150
    finetune_lr: float = 1e-4
    mme_steps: int = 600
    mme_lr: float = 3e-4
    mme_lambda: float = 0.1
    weight_decay: float = 5e-4
    eval_every: int = 50
    task_cpus: float = 1.0
    real_stamps: str | None = None

    def __post_init__(self) -> None:

        for name in ("source_survey", "target_survey"):
            check(getattr(self, name) in STAMP_SURVEYS, self, name, getattr(self, name),
                  f"one of {sorted(STAMP_SURVEYS)}")
        check(self.target_survey != self.source_survey, self, "target_survey",
              self.target_survey, "a survey other than the source")
        for name in ("n_source_train", "n_source_val", "n_source_test", "n_target_pool",
                     "n_target_val", "n_target_test", "batch_size", "target_batch_size",
                     "source_steps", "finetune_steps", "mme_steps", "eval_every"):
            _positive_int(self, name)
        check(isinstance(self.data_seed, int) and self.data_seed >= 0, self, "data_seed",
              self.data_seed, "a non-negative integer")
        for name in ("shots", "pick_seeds"):
            value = tuple(getattr(self, name))
            setattr(self, name, value)
            check(len(value) > 0 and len(set(value)) == len(value)
                  and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                          for v in value), self, name, value, "distinct non-negative integers")
        check(all(k > 0 for k in self.shots), self, "shots", self.shots, "positive integers")
        check(max(self.shots) * 2 <= self.n_target_pool, self, "shots", self.shots,
              f"at most n_target_pool / 2 ({self.n_target_pool // 2})")

        check(self.model in list_models() and self.model.startswith("stamp"), self, "model",
              self.model, "a registered stamp model")
        check(isinstance(self.model_overrides, dict), self, "model_overrides",
              self.model_overrides, "a mapping of model config fields")
        self.model_config()  # invalid overrides fail here, naming the field
        for name in ("source_lr", "finetune_lr", "mme_lr", "task_cpus"):
            _positive(self, name)
        for name in ("mme_lambda", "weight_decay"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value >= 0, self, name, value,
                  "a non-negative number")
        check(self.real_stamps is None or (isinstance(self.real_stamps, str)
                                           and self.real_stamps), self, "real_stamps",
              self.real_stamps, "a folder or null")

    def model_config(self) -> StampConfig:
        """The stamp model's validated config."""
        return get_config(self.model, **self.model_overrides)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------



@dataclasses.dataclass
class DomainData:
    """Preprocessed images and labels of every split (``source_train`` ... ``target_test``)."""

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    def counts(self) -> dict[str, int]:
        """Stamps per split."""
        return {k: int(len(v)) for k, v in self.labels.items()}


def load_domain_data(config: DomainAdaptConfig, model: StampClassifier) -> DomainData:
    """Generate the source and target surveys (disjoint random streams) and preprocess them.

    Each split is a separate chunk (``start``) of one seeded survey, so splits never share a
    stamp and the same seed always gives the same data.
    """
    sizes = {"source_train": config.n_source_train, "source_val": config.n_source_val,
             "source_test": config.n_source_test, "target_pool": config.n_target_pool,
             "target_val": config.n_target_val, "target_test": config.n_target_test}
    images, labels, start = {}, {}, {"source": 0, "target": 0}
    for split in _SPLITS:
        domain = split.split("_")[0]
        survey = config.source_survey if domain == "source" else config.target_survey
        table = stamps(sizes[split], seed=config.data_seed, survey=survey,
                       start=start[domain])
        start[domain] += sizes[split]
        images[split], labels[split] = stamp_images(table, model)
    return DomainData(images, labels)


def pick_shots(labels: np.ndarray, k: int, seed: int, num_classes: int) -> np.ndarray:
    """Indices of ``k`` stamps per class drawn without replacement (sorted), seeded.

    Raises:
        ValueError: when a class has fewer than ``k`` stamps.
    """
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(num_classes):
        pool = np.flatnonzero(labels == c)
        if len(pool) < k:
            raise ValueError(f"class {c} has {len(pool)} stamps, fewer than k = {k}")
        picks.append(rng.choice(pool, size=k, replace=False))
    return np.sort(np.concatenate(picks))


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------



def _state(model: StampClassifier) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _build(config: StampConfig, state: Mapping[str, np.ndarray] | None) -> StampClassifier:
    model = StampClassifier(config)
    if state is not None:
        model.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in state.items()})
    return model


def _scores(model: StampClassifier, data: DomainData, splits: tuple[str, ...]
            ) -> dict[str, float]:
    return {split: balanced_accuracy(model, data.images[split], data.labels[split])
            for split in splits}


def _run_mode(mode: str, cfg: DomainAdaptConfig, model_cfg: StampConfig,
              state: Mapping[str, np.ndarray] | None, data: DomainData, k: int | None,
              pick_seed: int | None) -> dict[str, Any]:
    """Train one model (``source_only``, ``finetune`` or ``mme``) and score it."""
    torch.set_num_threads(max(1, int(cfg.task_cpus)))
    started = time.perf_counter()
    model = _build(model_cfg, state)
    n_classes = len(model_cfg.labels)
    source = (data.images["source_train"], data.labels["source_train"])
    picks = None
    if k is not None:
        picks = pick_shots(data.labels["target_pool"], k, pick_seed, n_classes)
        target = (data.images["target_pool"][picks], data.labels["target_pool"][picks])
    seed = 1000 * (k or 0) + (pick_seed or 0)
    tb = cfg.target_batch_size
    if mode == "source_only":
        settings = FitSettings(cfg.source_steps, cfg.source_lr, cfg.weight_decay,
                               batch_sizes=(cfg.batch_size,), eval_every=cfg.eval_every,
                               seed=seed)
        fit_stamps(model, [source], settings)
    elif mode == "finetune":
        settings = FitSettings(cfg.finetune_steps, cfg.finetune_lr, cfg.weight_decay,
                               batch_sizes=(tb,), eval_every=cfg.eval_every, seed=seed)
        fit_stamps(model, [target], settings)
    elif mode == "mme":
        settings = FitSettings(cfg.mme_steps, cfg.mme_lr, cfg.weight_decay, lam=cfg.mme_lambda,
                               batch_sizes=(cfg.batch_size, tb), unlabelled_batch=tb,
                               eval_every=cfg.eval_every, seed=seed)
        fit_stamps(model, [source, target], settings, unlabelled=data.images["target_pool"])
    else:
        raise ValueError(f"unknown mode {mode!r}")
    scores = _scores(model, data, ("source_test", "target_test"))
    return {"mode": mode, "k": k, "pick_seed": pick_seed, "state": _state(model),
            "source_ba": scores["source_test"], "target_ba": scores["target_test"],
            "picks": None if picks is None else picks.tolist(),
            "seconds": round(time.perf_counter() - started, 2)}


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarise(runs: list[dict[str, Any]], shots: tuple[int, ...]) -> list[dict[str, Any]]:
    """The table: per k, source and target balanced accuracy of every mode.

    Means and standard deviations are over the pick seeds; the gains are over source-only on
    the target, the changes over source-only on the source.
    """
    base = next(r for r in runs if r["mode"] == "source_only")
    rows = []
    for k in shots:
        row: dict[str, Any] = {"k": k, "source_only_source_ba": base["source_ba"],
                               "source_only_target_ba": base["target_ba"]}
        for mode in ("finetune", "mme"):
            these = [r for r in runs if r["mode"] == mode and r["k"] == k]
            for domain in ("source", "target"):
                mean, std = _mean_std([r[f"{domain}_ba"] for r in these])
                row[f"{mode}_{domain}_ba"], row[f"{mode}_{domain}_ba_std"] = mean, std
            row[f"{mode}_target_gain"] = row[f"{mode}_target_ba"] - base["target_ba"]
            row[f"{mode}_source_change"] = row[f"{mode}_source_ba"] - base["source_ba"]
            row[f"{mode}_runs"] = len(these)
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]], source: str, target: str) -> str:
    """The comparison as a Markdown table (balanced accuracy, mean +- std over pick seeds)."""
    def cell(row: dict[str, Any], key: str) -> str:
        # A spread only where there are several draws to spread over.
        mode = key.split("_")[0]
        if row.get(f"{mode}_runs", 1) < 2:
            return f"{row[key]:.3f}"
        return f"{row[key]:.3f} ± {row[f'{key}_std']:.3f}"

    lines = [f"Balanced accuracy, source survey {source} -> target survey {target} "
             "(mean ± std over the draws of the k labelled target stamps per class).", "",
             "| k | source-only: source | source-only: target | fine-tuned: source | "
             "fine-tuned: target | MME: source | MME: target | MME target gain | "
             "MME source change |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {r['k']} | {r['source_only_source_ba']:.3f} | {r['source_only_target_ba']:.3f} "
            f"| {cell(r, 'finetune_source_ba')} | {cell(r, 'finetune_target_ba')} "
            f"| {cell(r, 'mme_source_ba')} | {cell(r, 'mme_target_ba')} "
            f"| {r['mme_target_gain']:+.3f} | {r['mme_source_change']:+.3f} |")
    return "\n".join(lines) + "\n"


def _score_real(folder: str, model_dirs: dict[str, Path], out: Path) -> dict[str, Any]:
    """Score real alerts (no labels: rb/drb beside) with each saved model; write a table."""
    table, errors = read_files(folder, kind="stamp")
    batch = {k: np.asarray(v, dtype=object) for k, v in table.to_pydict().items()}
    cols: dict[str, Any] = {"object_id": table.column("object_id"),
                            "stamp_id": table.column("stamp_id"), "rb": table.column("rb"),
                            "drb": table.column("drb")}
    failed: dict[str, str] = {}
    for name, path in model_dirs.items():
        pred = get_predictor(path, device="cpu")(batch)
        scores = dict(zip(pred.table.column("stamp_id").to_pylist(),
                          pred.table.column("real_score").to_pylist(), strict=True))
        cols[f"real_score_{name}"] = pa.array(
            [scores.get(s) for s in table.column("stamp_id").to_pylist()], pa.float32())
        failed.update(pred.failures)
    scored = pa.table(cols)
    pq.write_table(scored, out / "real_scores.parquet")
    return {"alerts": table.num_rows, "read_errors": errors.num_rows, "failed": failed,
            "rows": scored.to_pylist()}


def domain_adapt(config: DomainAdaptConfig, out: str | Path) -> dict[str, Any]:
    """Run the comparison on Ray; saves the models and writes ``out/domain_adapt.md``.

    Returns:
        ``{"table": rows per k, "runs": one row per trained model, "markdown", "data":
        split sizes, "models": saved folders, "real": real alerts scored (or None)}``.
    """
    import ray  # lazy: ray

    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = config.model_config()
    data = load_domain_data(config, StampClassifier(model_cfg))
    data_ref = ray.put(data)
    task = ray.remote(num_cpus=config.task_cpus)(_run_mode)
    base = ray.get(task.remote("source_only", config, model_cfg, None, data_ref, None, None))
    logger.info("source-only: source BA %.3f, target BA %.3f (%.0f s)", base["source_ba"],
                base["target_ba"], base["seconds"])
    pending = [task.remote(mode, config, model_cfg, base["state"], data_ref, k, s)
               for k in config.shots for s in config.pick_seeds for mode in ("finetune", "mme")]
    runs = [base, *ray.get(pending)]
    models = {}
    for r in runs:
        name = r["mode"] if r["k"] is None else f"{r['mode']}_k{r['k']}_seed{r['pick_seed']}"
        models[name] = _build(model_cfg, r.pop("state")).save_pretrained(out / "models" / name)
        r["model"] = name
    rows = summarise(runs, config.shots)
    md = markdown_table(rows, config.source_survey, config.target_survey)
    (out / "domain_adapt.md").write_text(md)
    real = None
    if config.real_stamps is not None and Path(config.real_stamps).is_dir():
        k_max = max(config.shots)
        seed0 = config.pick_seeds[0]
        chosen = {"source_only": models["source_only"],
                  f"finetune_k{k_max}": models[f"finetune_k{k_max}_seed{seed0}"],
                  f"mme_k{k_max}": models[f"mme_k{k_max}_seed{seed0}"]}
        real = _score_real(config.real_stamps, chosen, out)
    return {"table": rows, "runs": runs, "markdown": md, "data": data.counts(),
            "models": {k: str(v) for k, v in models.items()}, "real": real}

