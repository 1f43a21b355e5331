"""The fine-tuning loop of vision transformers on pictures drawn on the fly (Ray Train).

:func:`fit_vision` runs :func:`train_loop` on a ``TorchTrainer``: the raw arrays (padded to a
fixed length by :func:`~astroray.models.vision.processing.prepare_arrays`) travel as Ray Data
shards and every training step renders its batch with
:func:`~astroray.models.vision.processing.render_batch` *on the worker's device*, so that no
image is ever written or shipped. AdamW with a linear warm-up and cosine decay, class-balanced
resampling of each batch (weights 1 / class frequency), bf16 autocast on GPUs, a checkpoint
every epoch (the model folder, the optimizer state, and the best model so far under ``best/``)
and early stopping on the validation macro F1 (classification) or R^2 (regression). The
per-worker loop is the shared skeleton :func:`astroray.train.loop.run_loop`; this module gives
it the fine-tuning task.

The fine-tuning protocol around it (data sets, splits, baselines, tables) is the study
:mod:`astroray.studies.finetune_vision`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astroray.config import TrainResources
from astroray.eval import classification_metrics, redshift_metrics
from astroray.models import create_model
from astroray.models.vision.processing import (
    RENDER_SPEC,
    light_curve_periods,
    prepare_arrays,
    render_batch,
    render_config,
    split_layout,
    write_render_spec,
)
from astroray.train.loop import EpochStats, LoopSettings, TrainTask, Worker, run_loop
from astroray.train.trainer import autocast, fit_with_progress, make_torch_trainer

# RENDER_SPEC, light_curve_periods, prepare_arrays, render_batch, split_layout and
# write_render_spec are re-exported (issue 20: moved to astroray.models.vision.processing).
__all__ = ["RENDER_SPEC", "VisionTrainConfig", "fit_vision", "light_curve_periods",
           "prepare_arrays", "render_batch", "split_layout", "train_loop", "write_render_spec"]


@dataclasses.dataclass(frozen=True)
class VisionTrainConfig:
    """What every worker of one fine-tuning run needs (built by the caller, not from YAML).

    Attributes:
        model: registry name of the model.
        model_fields: model config fields changed from the registered ones (the caller's
            overrides plus ``task``, ``target_scale`` and ``labels``).
        load_pretrained: copy the backbone weights of the model's ``pretrained`` checkpoints
            when available locally.
        kind: ``spectra`` or ``lightcurves``.
        render: the render config fields (with the band order for light curves).
        labels: class names (classification), for the validation figures.
        total_steps: optimizer steps of the whole run (the learning-rate schedule).
        epochs: most passes over the training objects.
        batch_size: images per step and worker.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_fraction: fraction of the steps of the linear warm-up (then cosine decay).
        grad_clip: gradient-norm clip (0: none).
        weighted_sampling: resample each training batch with weights 1 / class frequency
            (the ``weight`` column).
        patience: epochs without validation improvement before stopping.
        cpus_per_worker: CPUs reserved per worker (torch threads).
        eval_batch_size: images per validation batch.
        seed: seed of the initialisation and the sampling.
        fail_at_epoch: test hook: the last worker raises once at the start of this epoch.
        fail_marker: file that records the injected failure (so that it happens once).
        progress_file: where rank 0 marks each finished epoch (None: :func:`fit_vision`
            picks ``STORAGE/.NAME.progress.json``).
    """

    model: str
    model_fields: dict[str, Any]
    kind: str
    render: dict[str, Any]
    labels: tuple[str, ...]
    total_steps: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_fraction: float
    grad_clip: float
    weighted_sampling: bool
    patience: int
    cpus_per_worker: float
    eval_batch_size: int
    seed: int
    load_pretrained: bool = True
    fail_at_epoch: int | None = None
    fail_marker: str | None = None
    progress_file: str | None = None


def fit_vision(config: VisionTrainConfig, train: Any, val: Any, *, storage: Path, name: str,
               resources: TrainResources, use_gpu: bool) -> Any:
    """Fine-tune on Ray Train; the same ``storage`` / ``name`` resumes the run.

    Args:
        config: the loop settings.
        train: Ray Dataset of the training objects (prepared arrays, ``target``, ``weight``).
        val: Ray Dataset of the validation objects.
        storage: the Ray Train storage folder.
        name: the run name.
        resources: the workers (DDP), CPUs per worker (also the loop's torch threads) and
            the worker-group restarts allowed.
        use_gpu: the decision for ``resources.use_gpu: null``: one GPU per worker.

    Returns:
        The ``ray.train.Result`` (its ``checkpoint`` holds ``best/`` and the training state;
        its ``return_value`` the loop's summary).

    Raises:
        RuntimeError: when the run reports no checkpoint (or the run's own error).
    """
    progress = config.progress_file or str(Path(storage) / f".{name}.progress.json")
    config = dataclasses.replace(config, progress_file=progress,
                                 cpus_per_worker=resources.cpus_per_worker)
    trainer = make_torch_trainer(
        train_loop, {"config": config}, datasets={"train": train, "val": val},
        resources=resources, use_gpu=use_gpu, storage_path=str(storage), name=name)
    result = fit_with_progress(trainer, progress, config.epochs, f"fine-tune {name}")
    if result.error is not None:
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError(f"fine-tuning {name} reported no checkpoint")
    return result


def _score(task: str, y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Validation figures: redshift metrics, or accuracy and macro F1."""
    if task == "regression":
        return redshift_metrics(y_true, y_pred)
    m = classification_metrics(y_true, y_pred, labels=list(range(len(labels))))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}


def _gather(values: list[np.ndarray]) -> list[np.ndarray]:
    """Concatenate per-worker arrays across the process group (every worker gets all)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, values)
        return [np.concatenate([g[i] for g in gathered]) for i in range(len(values))]
    return values


class _FinetuneTask(TrainTask):
    """Fine-tuning on pictures rendered per batch in :func:`astroray.train.loop.run_loop`.

    The training state adds ``pretrained`` (what :meth:`VisionTransformer.load_backbone`
    copied on a fresh start); early stopping and the best model follow the validation macro
    F1 (classification) or R^2 (regression).
    """

    progress_figure = "val_metric"

    def __init__(self, cfg: VisionTrainConfig) -> None:
        self.cfg = cfg
        self.render_cfg = render_config(cfg.kind, cfg.render)
        self.labels = list(cfg.labels)
        self.task = ""
        self.target_scale = 1.0
        self.render_seconds = 0.0

    def build(self) -> torch.nn.Module:
        model = create_model(self.cfg.model, **self.cfg.model_fields)
        self.task = model.config.task
        self.target_scale = model.config.target_scale
        return model

    def init_state(self) -> dict[str, Any]:
        return {"pretrained": None}

    def start(self, model: torch.nn.Module, worker: Worker, val_shard: Any,
              state: dict[str, Any], *, resumed: bool) -> None:
        if not resumed and self.cfg.load_pretrained and worker.rank == 0:
            # DDP broadcasts rank 0's weights to the others: one load, one warning line at most.
            state["pretrained"] = model.load_backbone()
            model.to(worker.device)

    def begin_epoch(self) -> None:
        self.render_seconds = 0.0

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], worker: Worker
             ) -> tuple[torch.Tensor, int]:
        if self.cfg.weighted_sampling and self.task == "classification":
            # Class-balanced resampling of the batch (weights 1 / class frequency).
            pick = torch.multinomial(batch["weight"].float().cpu(), batch["weight"].shape[0],
                                     replacement=True, generator=worker.generator
                                     ).to(worker.device)
            batch = {k: v[pick] for k, v in batch.items()}
        t0 = time.perf_counter()
        images = render_batch(batch, self.cfg.kind, self.render_cfg)  # (B, 3, H, W) uint8
        self.render_seconds += time.perf_counter() - t0
        with autocast(worker.device):
            out = model(images)  # (B, classes) logits, or (B,) scaled targets
        if self.task == "classification":
            loss = torch.nn.functional.cross_entropy(out.float(), batch["target"].long())
        else:
            target = batch["target"].float() / self.target_scale
            loss = torch.nn.functional.mse_loss(out.float(), target)
        return loss, int(images.shape[0])

    def evaluate(self, model: torch.nn.Module, shard: Any, worker: Worker) -> dict[str, Any]:
        """Validation figures over every worker's shard (the same on every worker)."""
        target_scale = float(model.config.target_scale)
        task, device = self.task, worker.device
        model.eval()
        ys, ps = [], []
        with torch.inference_mode():
            for batch in shard.iter_torch_batches(batch_size=self.cfg.eval_batch_size,
                                                  device=device):
                images = render_batch(batch, self.cfg.kind, self.render_cfg)
                with autocast(device):
                    out = model(images).float()
                pred = out.argmax(-1) if task == "classification" else out * target_scale
                ys.append(batch["target"].float().cpu().numpy())
                ps.append(pred.float().cpu().numpy())
        model.train()
        y = np.concatenate(ys) if ys else np.empty(0)
        p = np.concatenate(ps) if ps else np.empty(0)
        y, p = _gather([y, p])
        if task == "classification":
            y, p = y.astype(np.int64), p.astype(np.int64)
        return _score(task, y, p, self.labels)

    def metric(self, val: dict[str, Any]) -> float:
        return val["macro_f1"] if self.task == "classification" else val["r2"]

    def record(self, stats: EpochStats, val: dict[str, Any], state: dict[str, Any]
               ) -> dict[str, Any]:
        return {"epoch": stats.epoch, "train_loss": stats.loss, "train_images": stats.items,
                "steps": stats.steps, "train_seconds": round(stats.seconds, 3),
                "render_seconds": round(self.render_seconds, 3),
                "train_images_per_second": stats.items_per_second,
                "lr": stats.lr, "attempt": stats.attempt,
                **{f"val_{k}": v for k, v in val.items()}, "val_metric": stats.metric,
                "improved": stats.improved}

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"pretrained": state["pretrained"]}


def train_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Per-worker loop: :func:`~astroray.train.loop.run_loop` with the fine-tuning task.

    Args:
        loop_config: ``{"config": VisionTrainConfig}``.

    Returns:
        The run's summary: ``history``, ``best_epoch``, ``best``, ``start_epoch``,
        ``epochs_run``, ``attempts``, ``world_size``, ``device``, ``pretrained``,
        ``stopped_early``.
    """
    cfg: VisionTrainConfig = loop_config["config"]
    total = int(cfg.total_steps)
    settings = LoopSettings(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
        weight_decay=cfg.weight_decay, schedule="cosine",
        warmup_steps=int(cfg.warmup_fraction * total), total_steps=total,
        grad_clip=cfg.grad_clip, shuffle_buffer=4 * cfg.batch_size,
        threads=int(round(cfg.cpus_per_worker)), seed=cfg.seed, patience=cfg.patience,
        fail_at_epoch=cfg.fail_at_epoch, fail_marker=cfg.fail_marker,
        progress_file=cfg.progress_file)
    return run_loop(_FinetuneTask(cfg), settings)
