"""Ray Train helpers shared by the training jobs: trainer construction, devices, lockstep.

Training runs as a Ray Train ``TorchTrainer`` (DDP; gloo on CPU, NCCL on GPU) fed by Ray Data
shards. Checkpoints are reported every epoch and a run re-created with the same
``storage_path`` and ``name`` resumes from its latest checkpoint, as does a worker group that
Ray Train restarts after a failure (``max_failures``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from astroray.config import TrainResources
from astroray.models.device import autocast
from astroray.runtime import gpu_available, progress

# autocast and gpu_available are re-exported (moved down to models.device and runtime, so
# that inference needs nothing from train/).
__all__ = ["autocast", "fit_with_progress", "gpu_available", "in_lockstep", "make_torch_trainer",
           "mark_progress", "worker_device"]


def make_torch_trainer(
    train_fn: Callable[[dict[str, Any]], Any],
    loop_config: dict[str, Any],
    *,
    datasets: dict[str, Any],
    resources: TrainResources,
    use_gpu: bool,
    storage_path: str,
    name: str,
    num_to_keep: int | None = 2,
) -> Any:
    """A ``TorchTrainer`` with this project's conventions.

    Args:
        train_fn: the per-worker training loop, called with ``loop_config``.
        loop_config: a picklable mapping for the loop.
        datasets: Ray Datasets by name; every one is split across the workers.
        resources: workers, CPUs per worker and restarts allowed (its ``scaling_config``);
            each restart resumes from the last checkpoint.
        use_gpu: the decision for ``resources.use_gpu: null`` (see :func:`gpu_available`):
            one GPU per worker and the NCCL backend; else gloo on CPU.
        storage_path: where checkpoints and results are persisted (local folder or URI).
        name: run name; the same ``storage_path``/``name`` resumes the run.
        num_to_keep: checkpoints kept (None keeps all).

    Returns:
        The trainer; call ``fit()``.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig  # lazy: Ray Train
    from ray.train.torch import TorchConfig, TorchTrainer  # lazy: Ray Train

    scaling = resources.scaling_config(use_gpu)
    run = RunConfig(
        name=name, storage_path=storage_path,
        failure_config=FailureConfig(max_failures=resources.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=num_to_keep),
    )
    return TorchTrainer(train_fn, train_loop_config=loop_config,
                        torch_config=TorchConfig(backend="nccl" if scaling.use_gpu else "gloo"),
                        scaling_config=scaling, run_config=run, datasets=datasets)


def worker_device() -> torch.device:
    """This worker's device (its GPU under Ray Train, else the CPU)."""
    try:
        import ray.train.torch  # lazy: Ray Train

        return ray.train.torch.get_device()
    except Exception:  # noqa: BLE001 - outside a Train worker
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def in_lockstep(batches: Iterable[Any], device: torch.device | None = None) -> Iterator[Any]:
    """Yield batches while *every* distributed worker still has one.

    DDP all-reduces gradients at each step, so a worker that takes one more step than the
    others waits forever. Ray Data splits equally, but a guard costs one tiny all-reduce per
    step and turns any imbalance into a few dropped batches instead of a hang.

    Args:
        batches: this worker's batches.
        device: where the flag lives for the collective (CUDA under NCCL).
    """
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    iterator = iter(batches)
    while True:
        batch = next(iterator, None)
        if distributed:
            flag = torch.tensor([0 if batch is None else 1], dtype=torch.int32, device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            if int(flag.item()) == 0:
                return
        elif batch is None:
            return
        yield batch


def mark_progress(path: str | Path, done: int, total: int, **figures: Any) -> None:
    """Record that ``done`` of ``total`` epochs are finished (rank 0, after its report).

    The driver's :func:`fit_with_progress` reads it: Ray Train reports reach the controller,
    not the driver, and the run's storage folder is what both see.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"done": done, "total": total, **figures}, default=float))
    os.replace(tmp, path)


def fit_with_progress(trainer: Any, progress_file: str | Path, total: int, desc: str) -> Any:
    """``trainer.fit()`` with one progress bar of epochs, fed by :func:`mark_progress`."""
    path = Path(progress_file)
    bar = progress(total, desc, unit=" epochs")
    stop = threading.Event()

    def poll() -> None:
        shown = 0
        while not stop.wait(1.0):
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            done = int(state.get("done", 0))
            if done > shown:
                bar.update(done - shown)
                shown = done
                figures = {k: v for k, v in state.items() if k not in ("done", "total")}
                if figures:
                    bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v
                                     for k, v in figures.items()}, refresh=False)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        return trainer.fit()
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            state = json.loads(path.read_text())
            bar.update(max(0, int(state.get("done", 0)) - bar.n))
        except (OSError, ValueError):
            pass
        bar.close()
