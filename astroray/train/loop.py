"""One per-worker training skeleton for Ray Train, filled in by each model family.

:func:`run_loop` is the loop every ``TorchTrainer`` worker runs: seed, build the model, AdamW
with a named learning-rate schedule (:func:`make_optimizer`), resume from the last checkpoint
(:func:`astroray.train.checkpoint.load_checkpoint`), count attempts, wrap in DDP when there
is more than one worker, then per epoch: the failure-injection test hook, steps in lockstep
over the training shard (loss, backward, gradient clip, optimizer and scheduler step), the
all-reduced counts, validation, optionally the best model and early stopping, the history
record, and on rank 0 a checkpoint reported to Ray Train and a mark for the driver's progress
bar. It returns the run's summary.

What differs between families is a :class:`TrainTask`: how the model is built, the loss of
one batch (the Astromer masking, or pictures rendered on the device and a classification /
regression loss), the validation figures, the history record and any state of its own. The
surroundings (rank, device, checkpoint, shards, reports) come from a :class:`Session`,
Ray Train's by default (:class:`RayTrainSession`); a test can pass its own and run the loop
in one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from astroray.train.checkpoint import load_checkpoint, save_checkpoint, unwrap
from astroray.train.trainer import in_lockstep, mark_progress

__all__ = ["BEST", "SCHEDULES", "EpochStats", "LoopSettings", "RayTrainSession", "Session",
           "TrainTask", "Worker", "lr_factor", "make_optimizer", "run_loop"]

#: The learning-rate schedules of :func:`make_optimizer`, after a linear warm-up:
#: ``inverse_sqrt`` decays as ``1 / sqrt(step)`` (Astromer pretraining), ``cosine`` to zero
#: at ``total_steps`` (fine-tuning).
SCHEDULES = ("inverse_sqrt", "cosine")

#: Folder of the best model so far inside a checkpoint (runs with early stopping).
BEST = "best"

#: Smallest rise of the validation metric that counts as an improvement.
MIN_IMPROVEMENT = 1e-4


# ------------------------------------------------------------------------------------------
# Optimiser
# ------------------------------------------------------------------------------------------


def lr_factor(schedule: str, warmup_steps: int, total_steps: int | None = None
              ) -> Callable[[int], float]:
    """The factor of the peak learning rate at each step (a ``LambdaLR`` lambda).

    Args:
        schedule: one of :data:`SCHEDULES`.
        warmup_steps: steps of the linear warm-up (0: none).
        total_steps: the run's steps (``cosine`` reaches zero there; unused otherwise).

    Returns:
        ``factor(step)`` for ``step = 0, 1, ...`` (the scheduler's count of steps taken).

    Raises:
        ValueError: for an unknown schedule, or ``cosine`` without ``total_steps``.
    """
    warmup = int(warmup_steps)
    if schedule == "inverse_sqrt":
        def factor(step: int) -> float:
            step = step + 1
            if warmup <= 0:
                return 1.0
            return min(step / warmup, math.sqrt(warmup / step))

        return factor
    if schedule == "cosine":
        if total_steps is None:
            raise ValueError("the cosine schedule needs total_steps")
        total = int(total_steps)

        def cosine(step: int) -> float:
            if warmup > 0 and step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        return cosine
    raise ValueError(f"unknown learning-rate schedule {schedule!r}: one of {SCHEDULES}")


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float, schedule: str,
                   warmup_steps: int, total_steps: int | None = None,
                   ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over every parameter of ``model`` and its warm-up schedule, stepped per batch.

    Args:
        model: the model (on its device already, so that a loaded state follows it).
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        schedule: one of :data:`SCHEDULES` (see :func:`lr_factor`).
        warmup_steps: linear warm-up steps.
        total_steps: the run's steps (``cosine`` only).

    Returns:
        ``(optimizer, scheduler)``.
    """
    factor = lr_factor(schedule, warmup_steps, total_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ------------------------------------------------------------------------------------------
# What the loop is told, and what it tells a task
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """How :func:`run_loop` trains (the family's config, translated by its loop function).

    Attributes:
        epochs: most passes over the training shard (a resumed run counts the done ones).
        batch_size: items per step and worker.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        schedule: the learning-rate schedule, one of :data:`SCHEDULES`.
        warmup_steps: linear warm-up steps.
        total_steps: the run's optimizer steps (the ``cosine`` schedule; None otherwise).
        grad_clip: gradient-norm clip (0: none).
        shuffle_buffer: items in each worker's local shuffle buffer.
        threads: torch threads of the worker (at least one is used).
        seed: seed of the initialisation (and of :attr:`Worker.generator`).
        patience: epochs without an improvement of :meth:`TrainTask.metric` before stopping;
            None: no early stopping and no best model.
        fail_at_epoch: test hook: the last worker raises once at the start of this epoch.
        fail_marker: file that records the injected failure (so that it happens once; None:
            no failure is injected).
        progress_file: where rank 0 marks each finished epoch (None: nowhere).
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    schedule: str
    warmup_steps: int
    total_steps: int | None = None
    grad_clip: float = 0.0
    shuffle_buffer: int | None = None
    threads: int = 1
    seed: int = 0
    patience: int | None = None
    fail_at_epoch: int | None = None
    fail_marker: str | None = None
    progress_file: str | None = None


@dataclasses.dataclass(frozen=True)
class Worker:
    """Where this copy of the loop runs.

    Attributes:
        rank: this worker's rank.
        world: workers in the group.
        device: this worker's device.
        generator: a CPU generator seeded with ``seed * 1000 + rank``, for the task's own
            sampling (the global generator is the model's: dropout, masks).
    """

    rank: int
    world: int
    device: torch.device
    generator: torch.Generator


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """One epoch of training, as the loop measured it (for :meth:`TrainTask.record`).

    Attributes:
        epoch: the epoch (from 0).
        loss: mean training loss over every worker's steps.
        rank_loss: mean training loss over this worker's steps.
        items: items trained on by all workers.
        steps: optimizer steps (the same on every worker: they step in lockstep).
        seconds: this worker's training time (validation excluded).
        lr: the learning rate after the epoch's last step.
        attempt: the attempt (1 + restarts) that ran the epoch.
        metric: the validation metric (non-finite values as -inf; None without patience).
        improved: whether it beat the best so far (None without patience).
    """

    epoch: int
    loss: float
    rank_loss: float
    items: int
    steps: int
    seconds: float
    lr: float
    attempt: int
    metric: float | None = None
    improved: bool | None = None

    @property
    def items_per_second(self) -> float:
        """Items of all workers per second of this worker's training time."""
        return self.items / max(self.seconds, 1e-9)


class TrainTask:
    """What a model family puts into :func:`run_loop`; the hooks run on every worker.

    Subclasses implement :meth:`build`, :meth:`loss`, :meth:`evaluate` and :meth:`record`;
    the other hooks do nothing by default.

    Attributes:
        progress_figure: the key of the history record shown beside the driver's progress
            bar (None: none).
    """

    progress_figure: str | None = None

    def build(self) -> nn.Module:
        """The model, on the CPU (the global generator is seeded just before)."""
        raise NotImplementedError

    def init_state(self) -> dict[str, Any]:
        """The task's own entries of the training state (checkpointed, restored on resume)."""
        return {}

    def start(self, model: nn.Module, worker: Worker, val_shard: Any, state: dict[str, Any],
              *, resumed: bool) -> None:
        """Before the first epoch of this attempt, and before the DDP wrap.

        Args:
            model: the bare model, on the device, restored when ``resumed``.
            worker: where the loop runs.
            val_shard: this worker's validation shard.
            state: the training state (the task may set its own entries).
            resumed: whether a checkpoint was restored.
        """

    def begin_epoch(self) -> None:
        """At the start of each epoch (reset per-epoch tallies of the task's own)."""

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], worker: Worker
             ) -> tuple[torch.Tensor, int]:
        """The training loss of one batch.

        Args:
            model: the model being trained (DDP-wrapped on several workers).
            batch: one batch of the training shard, on the device.
            worker: where the loop runs.

        Returns:
            ``(loss, items)``: a scalar tensor to back-propagate and how many items it covers.
        """
        raise NotImplementedError

    def evaluate(self, model: nn.Module, shard: Any, worker: Worker) -> dict[str, Any]:
        """Validation figures over every worker's shard (the same on every worker).

        Args:
            model: the bare model (no DDP wrapper).
            shard: this worker's validation shard.
            worker: where the loop runs.
        """
        raise NotImplementedError

    def metric(self, val: dict[str, Any]) -> float:
        """The validation figure to maximise (early stopping and the best model)."""
        raise NotImplementedError

    def record(self, stats: EpochStats, val: dict[str, Any], state: dict[str, Any]
               ) -> dict[str, Any]:
        """The epoch's history record (what is reported); may update the task's state."""
        raise NotImplementedError

    def checkpoint_state(self) -> dict[str, Any]:
        """Extra entries of the checkpoint's training state, beside the state itself."""
        return {}

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        """Extra entries of the summary :func:`run_loop` returns."""
        return {}


# ------------------------------------------------------------------------------------------
# Surroundings
# ------------------------------------------------------------------------------------------


class Session(Protocol):
    """What :func:`run_loop` needs from its surroundings (Ray Train's worker, by default)."""

    def place(self) -> tuple[int, int, torch.device]:
        """``(rank, world size, device)`` of this worker."""
        ...

    def restored(self) -> contextlib.AbstractContextManager[Path | None]:
        """A context giving the folder of the checkpoint to resume from, or None."""
        ...

    def shard(self, name: str) -> Any:
        """This worker's shard of a dataset (with ``iter_torch_batches``)."""
        ...

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """The model wrapped for data-parallel training (called when world > 1)."""
        ...

    def report(self, record: dict[str, Any], folder: Path | None) -> None:
        """Report an epoch's record, with its checkpoint folder on rank 0 (else None)."""
        ...


class RayTrainSession:
    """:class:`Session` of a Ray Train ``TorchTrainer`` worker."""

    def place(self) -> tuple[int, int, torch.device]:
        """``(rank, world size, device)`` from the Train context."""
        import ray.train  # lazy: Ray Train
        import ray.train.torch  # lazy: Ray Train

        ctx = ray.train.get_context()
        return ctx.get_world_rank(), ctx.get_world_size(), ray.train.torch.get_device()

    @contextlib.contextmanager
    def restored(self) -> Iterator[Path | None]:
        """The latest checkpoint of the run (this attempt's or an earlier run's), or None."""
        import ray.train  # lazy: Ray Train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    def shard(self, name: str) -> Any:
        """``ray.train.get_dataset_shard(name)``."""
        import ray.train  # lazy: Ray Train

        return ray.train.get_dataset_shard(name)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """``ray.train.torch.prepare_model`` (DDP)."""
        import ray.train.torch  # lazy: Ray Train

        return ray.train.torch.prepare_model(model)

    def report(self, record: dict[str, Any], folder: Path | None) -> None:
        """``ray.train.report`` (Ray Train copies the folder into the run's storage)."""
        import ray.train  # lazy: Ray Train

        checkpoint = None if folder is None else ray.train.Checkpoint.from_directory(folder)
        ray.train.report(record, checkpoint=checkpoint)


# ------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------


def _maybe_fail(settings: LoopSettings, epoch: int, rank: int, world: int) -> None:
    """The failure-injection test hook: the last worker raises once, at ``fail_at_epoch``."""
    if settings.fail_at_epoch != epoch or rank != world - 1 or settings.fail_marker is None:
        return
    marker = Path(settings.fail_marker)
    if marker.exists():
        return
    marker.write_text(f"injected failure at epoch {epoch} on rank {rank}\n")
    raise RuntimeError(f"injected failure at epoch {epoch} on rank {rank}")


def _save_best(folder: Path, model: nn.Module, best_state: dict[str, torch.Tensor]) -> None:
    """Write the best weights as a model folder (a fresh model of the same class and config)."""
    best = type(model)(model.config)  # type: ignore[call-arg]
    best.load_state_dict(best_state)
    best.save_pretrained(folder)  # type: ignore[operator]


def run_loop(task: TrainTask, settings: LoopSettings, session: Session | None = None
             ) -> dict[str, Any]:
    """Train on this worker: resume, run the epochs, validate, checkpoint, report.

    The training state saved in each checkpoint holds ``epoch``, ``history`` (the records),
    ``attempts``, the task's :meth:`~TrainTask.init_state` entries, with ``patience``
    ``best``, ``best_epoch`` and ``bad_epochs`` (the best model under :data:`BEST`), and
    :meth:`~TrainTask.checkpoint_state`.

    Args:
        task: the family's hooks.
        settings: how to train.
        session: the surroundings (None: this Ray Train worker's).

    Returns:
        ``history``, ``start_epoch``, ``epochs_run``, ``attempts``, ``world_size``,
        ``device``; with ``patience`` also ``best_epoch``, ``best`` and ``stopped_early``;
        and the task's :meth:`~TrainTask.summary`.

    Raises:
        RuntimeError: the injected failure (``fail_at_epoch``).
    """
    session = RayTrainSession() if session is None else session
    rank, world, device = session.place()
    torch.set_num_threads(max(1, int(settings.threads)))
    torch.manual_seed(settings.seed)  # identical initial weights on every worker
    model = task.build()
    # On the device before the optimizer exists: a resumed optimizer state then follows the
    # parameters onto the GPU.
    model.to(device)
    optimizer, scheduler = make_optimizer(
        model, lr=settings.lr, weight_decay=settings.weight_decay, schedule=settings.schedule,
        warmup_steps=settings.warmup_steps, total_steps=settings.total_steps)
    patience = settings.patience
    state: dict[str, Any] = {"epoch": -1, "history": [], "attempts": 0, **task.init_state()}
    if patience is not None:
        state.update(best=-math.inf, best_epoch=-1, bad_epochs=0)
    best_state: dict[str, torch.Tensor] | None = None  # rank 0's copy of the best weights
    with session.restored() as folder:
        resumed = folder is not None
        if folder is not None:
            state.update(load_checkpoint(folder, model, optimizer, scheduler,
                                         map_location=device))
            if patience is not None and (folder / BEST).is_dir():
                best_state = type(model).from_pretrained(  # type: ignore[attr-defined]
                    folder / BEST).state_dict()
    state["attempts"] += 1
    start_epoch = state["epoch"] + 1
    worker = Worker(rank, world, device,
                    torch.Generator(device="cpu").manual_seed(settings.seed * 1000 + rank))
    train_shard, val_shard = session.shard("train"), session.shard("val")
    task.start(model, worker, val_shard, state, resumed=resumed)
    ddp_model = session.prepare_model(model) if world > 1 else model
    epochs_run = []
    for epoch in range(start_epoch, settings.epochs):
        if patience is not None and state["bad_epochs"] >= patience:
            break
        _maybe_fail(settings, epoch, rank, world)
        task.begin_epoch()
        started = time.perf_counter()
        ddp_model.train()
        loss_sum, steps, items = 0.0, 0, 0
        batches = train_shard.iter_torch_batches(
            batch_size=settings.batch_size, device=device,
            local_shuffle_buffer_size=settings.shuffle_buffer)
        for batch in in_lockstep(batches, device):
            loss, n = task.loss(ddp_model, batch, worker)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), settings.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach())
            steps += 1
            items += n
        seconds = time.perf_counter() - started
        counts = torch.tensor([items, steps, loss_sum], dtype=torch.float64, device=device)
        if world > 1:
            torch.distributed.all_reduce(counts)
        val = task.evaluate(unwrap(ddp_model), val_shard, worker)
        metric, improved = None, None
        if patience is not None:
            metric = float(task.metric(val))
            metric = metric if math.isfinite(metric) else -math.inf
            improved = metric > state["best"] + MIN_IMPROVEMENT
            if improved:
                state.update(best=metric, best_epoch=epoch, bad_epochs=0)
                if rank == 0:
                    best_state = {k: v.detach().cpu().clone()
                                  for k, v in unwrap(ddp_model).state_dict().items()}
            else:
                state["bad_epochs"] += 1
        stats = EpochStats(
            epoch=epoch, loss=float(counts[2]) / max(float(counts[1]), 1),
            rank_loss=loss_sum / max(steps, 1), items=int(counts[0]),
            steps=int(counts[1]) // world, seconds=seconds, lr=scheduler.get_last_lr()[0],
            attempt=state["attempts"], metric=metric, improved=improved)
        record = task.record(stats, val, state)
        state["history"].append(record)
        state["epoch"] = epoch
        epochs_run.append(epoch)
        if rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, ddp_model, optimizer, scheduler,
                                **{**state, **task.checkpoint_state()})
                if best_state is not None:
                    _save_best(Path(tmp) / BEST, unwrap(ddp_model), best_state)
                session.report(record, Path(tmp))
            if settings.progress_file:
                key = task.progress_figure
                figures = {} if key is None else {key: round(float(record[key]), 4)}
                mark_progress(settings.progress_file, epoch + 1, settings.epochs, **figures)
        else:
            session.report(record, None)
    summary = {"history": state["history"], "start_epoch": start_epoch,
               "epochs_run": epochs_run, "attempts": state["attempts"], "world_size": world,
               "device": str(device)}
    if patience is not None:
        summary.update(best_epoch=state["best_epoch"], best=state["best"],
                       stopped_early=state["bad_epochs"] >= patience
                       and state["epoch"] < settings.epochs - 1)
    return {**summary, **task.summary(state)}
