"""The fine-tuning loop of vision transformers on pictures drawn on the fly (Ray Train).

:func:`fit_vision` runs :func:`train_loop` on a ``TorchTrainer``: the raw arrays (padded to a
fixed length by :func:`~astroray.models.vision.processing.prepare_arrays`) travel as Ray Data
shards and every training step renders its batch with
:func:`~astroray.models.vision.processing.render_batch` *on the worker's device*, so that no
image is ever written or shipped. AdamW with a linear warm-up and cosine decay, class-balanced
resampling of each batch (weights 1 / class frequency), bf16 autocast on GPUs, a checkpoint
every epoch (the model folder, the optimizer state, and the best model so far under ``best/``)
and early stopping on the validation macro F1 (classification) or R^2 (regression).

The fine-tuning protocol around it (data sets, splits, baselines, tables) is the study
:mod:`astroray.studies.finetune_vision`.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
from ray.train import Checkpoint

from astroray.eval import classification_metrics, redshift_metrics
from astroray.models import create_model
from astroray.models.vision import VisionTransformer
from astroray.models.vision.processing import (
    RENDER_SPEC,
    light_curve_periods,
    prepare_arrays,
    render_batch,
    render_config,
    split_layout,
    write_render_spec,
)
from astroray.train.checkpoint import load_checkpoint, save_checkpoint, unwrap
from astroray.train.trainer import (
    autocast,
    fit_with_progress,
    in_lockstep,
    make_torch_trainer,
    mark_progress,
)

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
               num_workers: int, use_gpu: bool, max_failures: int) -> Any:
    """Fine-tune on Ray Train; the same ``storage`` / ``name`` resumes the run.

    Args:
        config: the loop settings.
        train: Ray Dataset of the training objects (prepared arrays, ``target``, ``weight``).
        val: Ray Dataset of the validation objects.
        storage: the Ray Train storage folder.
        name: the run name.
        num_workers: DDP workers.
        use_gpu: one GPU per worker.
        max_failures: worker-group restarts allowed.

    Returns:
        The ``ray.train.Result`` (its ``checkpoint`` holds ``best/`` and the training state;
        its ``return_value`` the loop's summary).

    Raises:
        RuntimeError: when the run reports no checkpoint (or the run's own error).
    """
    progress = config.progress_file or str(Path(storage) / f".{name}.progress.json")
    config = dataclasses.replace(config, progress_file=progress)
    trainer = make_torch_trainer(
        train_loop, {"config": config}, datasets={"train": train, "val": val},
        num_workers=num_workers, use_gpu=use_gpu, cpus_per_worker=config.cpus_per_worker,
        storage_path=str(storage), name=name, max_failures=max_failures)
    result = fit_with_progress(trainer, progress, config.epochs, f"fine-tune {name}")
    if result.error is not None:
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError(f"fine-tuning {name} reported no checkpoint")
    return result


def _lr_lambda(warmup: int, total: int):
    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


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


def _evaluate(model: torch.nn.Module, shard: Any, kind: str, render_cfg: Any, task: str,
              device: torch.device, batch_size: int, labels: list[str]) -> dict[str, Any]:
    """Validation figures over every worker's shard (the same on every worker)."""
    target_scale = float(model.config.target_scale)
    model.eval()
    ys, ps = [], []
    with torch.inference_mode():
        for batch in shard.iter_torch_batches(batch_size=batch_size, device=device):
            images = render_batch(batch, kind, render_cfg)
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
    return _score(task, y, p, labels)


def train_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Per-worker loop: resume, fine-tune epochs, validate, checkpoint, stop early.

    Args:
        loop_config: ``{"config": VisionTrainConfig}``.

    Returns:
        The run's summary: ``history``, ``best_epoch``, ``best``, ``start_epoch``,
        ``epochs_run``, ``attempts``, ``world_size``, ``device``, ``pretrained``,
        ``stopped_early``.
    """
    cfg: VisionTrainConfig = loop_config["config"]
    kind = cfg.kind
    render_cfg = render_config(kind, cfg.render)
    labels = list(cfg.labels)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(round(cfg.cpus_per_worker))))
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_fields)
    mcfg = model.config
    task = mcfg.task
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = int(cfg.total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(int(cfg.warmup_fraction * total), total))
    state: dict[str, Any] = {"epoch": -1, "history": [], "best": -math.inf, "best_epoch": -1,
                             "bad_epochs": 0, "attempts": 0, "pretrained": None}
    best_state: dict[str, torch.Tensor] | None = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state.update(load_checkpoint(folder, model, optimizer, scheduler,
                                         map_location=device))
            if (Path(folder) / "best").is_dir():
                best_state = VisionTransformer.from_pretrained(Path(folder) / "best").state_dict()
    elif cfg.load_pretrained and rank == 0:
        # DDP broadcasts rank 0's weights to the others: one load, one warning line at most.
        state["pretrained"] = model.load_backbone()
        model.to(device)
    state["attempts"] += 1
    start_epoch = state["epoch"] + 1
    ddp_model = ray.train.torch.prepare_model(model) if world > 1 else model
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    marker = Path(cfg.fail_marker) if cfg.fail_marker else None
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed * 1000 + rank)
    epochs_run = []
    for epoch in range(start_epoch, cfg.epochs):
        if state["bad_epochs"] >= cfg.patience:
            break
        if (cfg.fail_at_epoch == epoch and rank == world - 1 and marker is not None
                and not marker.exists()):
            marker.write_text(f"injected failure at epoch {epoch} on rank {rank}\n")
            raise RuntimeError(f"injected failure at epoch {epoch} on rank {rank}")
        started = time.perf_counter()
        render_seconds, total_loss, steps, images_seen = 0.0, 0.0, 0, 0
        ddp_model.train()
        batches = train_shard.iter_torch_batches(batch_size=cfg.batch_size, device=device,
                                                 local_shuffle_buffer_size=4 * cfg.batch_size)
        for batch in in_lockstep(batches, device):
            if cfg.weighted_sampling and task == "classification":
                # Class-balanced resampling of the batch (weights 1 / class frequency).
                pick = torch.multinomial(batch["weight"].float().cpu(), batch["weight"].shape[0],
                                         replacement=True, generator=generator).to(device)
                batch = {k: v[pick] for k, v in batch.items()}
            t0 = time.perf_counter()
            images = render_batch(batch, kind, render_cfg)  # (B, 3, H, W) uint8, on device
            render_seconds += time.perf_counter() - t0
            with autocast(device):
                out = ddp_model(images)
            if task == "classification":
                loss = torch.nn.functional.cross_entropy(out.float(), batch["target"].long())
            else:
                target = batch["target"].float() / mcfg.target_scale
                loss = torch.nn.functional.mse_loss(out.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            total_loss += float(loss.detach())
            steps += 1
            images_seen += int(images.shape[0])
        train_seconds = time.perf_counter() - started
        counts = torch.tensor([images_seen, steps, total_loss], dtype=torch.float64,
                              device=device)
        if world > 1:
            torch.distributed.all_reduce(counts)
        val = _evaluate(unwrap(ddp_model), val_shard, kind, render_cfg, task, device,
                        cfg.eval_batch_size, labels)
        metric = val["macro_f1"] if task == "classification" else val["r2"]
        metric = metric if math.isfinite(metric) else -math.inf
        improved = metric > state["best"] + 1e-4
        if improved:
            state.update(best=metric, best_epoch=epoch, bad_epochs=0)
            if rank == 0:
                best_state = {k: v.detach().cpu().clone()
                              for k, v in unwrap(ddp_model).state_dict().items()}
        else:
            state["bad_epochs"] += 1
        record = {"epoch": epoch, "train_loss": float(counts[2]) / max(float(counts[1]), 1),
                  "train_images": int(counts[0]), "steps": int(counts[1]) // world,
                  "train_seconds": round(train_seconds, 3),
                  "render_seconds": round(render_seconds, 3),
                  "train_images_per_second": float(counts[0]) / max(train_seconds, 1e-9),
                  "lr": scheduler.get_last_lr()[0], "attempt": state["attempts"],
                  **{f"val_{k}": v for k, v in val.items()}, "val_metric": metric,
                  "improved": improved}
        state["history"].append(record)
        state["epoch"] = epoch
        epochs_run.append(epoch)
        if rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, ddp_model, optimizer, scheduler,
                                **{k: v for k, v in state.items()})
                if best_state is not None:
                    best = VisionTransformer(mcfg)
                    best.load_state_dict(best_state)
                    best.save_pretrained(Path(tmp) / "best")
                ray.train.report(record, checkpoint=Checkpoint.from_directory(tmp))
            if cfg.progress_file:
                mark_progress(cfg.progress_file, epoch + 1, cfg.epochs,
                              val_metric=round(float(metric), 4))
        else:
            ray.train.report(record, checkpoint=None)
    return {"history": state["history"], "best_epoch": state["best_epoch"],
            "best": state["best"], "start_epoch": start_epoch, "epochs_run": epochs_run,
            "attempts": state["attempts"], "world_size": world, "device": str(device),
            "pretrained": state["pretrained"],
            "stopped_early": state["bad_epochs"] >= cfg.patience and (
                state["epoch"] < cfg.epochs - 1)}

