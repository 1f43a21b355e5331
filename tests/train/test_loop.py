"""The shared training skeleton: its schedules, and whole runs of a tiny task in one process.

:func:`astroray.train.loop.run_loop` is driven here by a fake session (rank 0 of 1, on the
CPU, checkpoints kept in a folder the way Ray Train keeps them), so that resuming, the
injected failure, early stopping and the best model are checked in seconds; the Ray Train
runs of the two families (``test_pretrain_resume``, ``test_finetune_vision``) check the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from astroray.config import Config
from astroray.models.pretrained import PretrainedMixin
from astroray.train.checkpoint import TRAINING_STATE
from astroray.train.loop import (
    BEST,
    EpochStats,
    LoopSettings,
    TrainTask,
    Worker,
    lr_factor,
    make_optimizer,
    run_loop,
)

# ------------------------------------------------------------------------------------------
# Schedules
# ------------------------------------------------------------------------------------------


def _lrs(schedule: str, warmup: int, total: int | None, steps: int, lr: float = 2.0
         ) -> list[float]:
    """The learning rate before each of ``steps`` optimizer steps (make_optimizer's pair)."""
    model = nn.Linear(2, 1)
    opt, sched = make_optimizer(model, lr=lr, weight_decay=0.1, schedule=schedule,
                                warmup_steps=warmup, total_steps=total)
    assert opt.param_groups[0]["weight_decay"] == 0.1
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_inverse_sqrt_schedule_is_the_noam_warm_up():
    warmup, lr = 4, 2.0
    got = _lrs("inverse_sqrt", warmup, None, 30, lr)
    # Vaswani et al.'s form, scaled to peak at 1 at the end of the warm-up (n = step + 1).
    noam = [lr * warmup ** 0.5 * min(n ** -0.5, n * warmup ** -1.5) for n in range(1, 31)]
    assert got == pytest.approx(noam, rel=1e-12)
    assert got[:5] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0 * math.sqrt(4 / 5)])
    assert max(got) == pytest.approx(lr) and got.index(max(got)) == warmup - 1
    assert _lrs("inverse_sqrt", 0, None, 5) == pytest.approx([2.0] * 5)


def test_cosine_schedule_warms_up_then_reaches_zero_at_the_total():
    got = _lrs("cosine", 2, 10, 13, lr=1.0)
    assert got[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert got[4] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))  # a quarter of the decay
    assert got[6] == pytest.approx(0.5)  # half way
    assert got[10:] == pytest.approx([0.0, 0.0, 0.0])  # the end, and clamped after it
    assert all(a >= b for a, b in zip(got[1:], got[2:], strict=False))
    assert _lrs("cosine", 0, 4, 3, lr=1.0) == pytest.approx([1.0, 0.5 + 0.5 * math.cos(
        math.pi / 4), 0.5])


def test_schedule_names_are_checked():
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        lr_factor("linear", 10)
    with pytest.raises(ValueError, match="total_steps"):
        lr_factor("cosine", 10)


# ------------------------------------------------------------------------------------------
# A tiny task and a fake session
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LineConfig(Config):
    """A linear model's config."""

    features: int = 3


class Line(PretrainedMixin, nn.Module):
    """y = x . w + b, saved and loaded like the real families."""

    config_class = LineConfig
    model_type = "test-line"

    def __init__(self, config: LineConfig):
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)  # (B, F) -> (B,)


class Shard:
    """A dataset shard in memory; remembers how it was iterated."""

    def __init__(self, arrays: dict[str, torch.Tensor]):
        self.arrays, self.calls = arrays, []

    def iter_torch_batches(self, *, batch_size: int, device: torch.device,
                           local_shuffle_buffer_size: int | None = None
                           ) -> Iterator[dict[str, torch.Tensor]]:
        self.calls.append((batch_size, local_shuffle_buffer_size))
        n = len(next(iter(self.arrays.values())))
        for lo in range(0, n, batch_size):
            yield {k: v[lo:lo + batch_size].to(device) for k, v in self.arrays.items()}


class FakeSession:
    """Rank 0 of 1 on the CPU; every reported checkpoint copied into ``root`` (as Ray does)."""

    def __init__(self, root: Path, shards: dict[str, Shard]):
        self.root, self.shards = root, shards
        self.records: list[dict[str, Any]] = []
        self.checkpoints: list[Path] = []

    def place(self) -> tuple[int, int, torch.device]:
        return 0, 1, torch.device("cpu")

    @contextlib.contextmanager
    def restored(self) -> Iterator[Path | None]:
        yield self.checkpoints[-1] if self.checkpoints else None

    def shard(self, name: str) -> Shard:
        return self.shards[name]

    def prepare_model(self, model: nn.Module) -> nn.Module:
        raise AssertionError("one worker: no DDP wrap")

    def report(self, record: dict[str, Any], folder: Path | None) -> None:
        self.records.append(record)
        assert folder is not None  # rank 0 always checkpoints
        dest = self.root / f"checkpoint_{len(self.records)}"
        shutil.copytree(folder, dest)
        self.checkpoints.append(dest)


class LineTask(TrainTask):
    """Least squares; ``metrics`` scripts the validation metric of successive epochs."""

    progress_figure = "val_mse"

    def __init__(self, metrics: list[float] | None = None):
        self.metrics = list(metrics or [])
        self.resumed: bool | None = None

    def build(self) -> nn.Module:
        return Line(LineConfig())

    def init_state(self) -> dict[str, Any]:
        return {"seen": 0}

    def start(self, model: nn.Module, worker: Worker, val_shard: Any, state: dict[str, Any],
              *, resumed: bool) -> None:
        assert (worker.rank, worker.world) == (0, 1)
        self.resumed = resumed

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], worker: Worker
             ) -> tuple[torch.Tensor, int]:
        pred = model(batch["x"])  # (B,)
        return nn.functional.mse_loss(pred, batch["y"]), int(batch["y"].shape[0])

    def evaluate(self, model: nn.Module, shard: Any, worker: Worker) -> dict[str, Any]:
        assert not isinstance(model, nn.parallel.DistributedDataParallel)
        with torch.no_grad():
            errs = [(model(b["x"]) - b["y"]) ** 2 for b in shard.iter_torch_batches(
                batch_size=64, device=worker.device)]
        return {"mse": float(torch.cat(errs).mean())}

    def metric(self, val: dict[str, Any]) -> float:
        return self.metrics.pop(0)

    def record(self, stats: EpochStats, val: dict[str, Any], state: dict[str, Any]
               ) -> dict[str, Any]:
        state["seen"] += stats.items
        return {"epoch": stats.epoch, "train_loss": stats.loss, "rank_loss": stats.rank_loss,
                "items": stats.items, "steps": stats.steps, "lr": stats.lr,
                "attempt": stats.attempt, "val_mse": val["mse"], "metric": stats.metric,
                "improved": stats.improved}

    def checkpoint_state(self) -> dict[str, Any]:
        return {"note": "line"}

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"seen": state["seen"]}


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # run_loop sets the worker's threads


def _shards() -> dict[str, Shard]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3  # (48,)
    return {"train": Shard({"x": x[:32], "y": y[:32]}), "val": Shard({"x": x[32:], "y": y[32:]})}


def _state(folder: Path) -> dict[str, Any]:
    return torch.load(folder / TRAINING_STATE, weights_only=False)


# ------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------


def test_loop_resumes_from_its_checkpoint_after_the_injected_failure(tmp_path, threads):
    settings = LoopSettings(
        epochs=3, batch_size=8, lr=0.05, weight_decay=0.0, schedule="inverse_sqrt",
        warmup_steps=2, grad_clip=1.0, shuffle_buffer=16, seed=1, fail_at_epoch=1,
        fail_marker=str(tmp_path / "marker"), progress_file=str(tmp_path / "progress.json"))
    session = FakeSession(tmp_path, _shards())
    first = LineTask()
    with pytest.raises(RuntimeError, match="injected failure at epoch 1 on rank 0"):
        run_loop(first, settings, session)
    assert first.resumed is False and (tmp_path / "marker").exists()
    assert [r["epoch"] for r in session.records] == [0]
    state = _state(session.checkpoints[0])
    assert set(state) == {"epoch", "history", "attempts", "seen", "note", "optimizer",
                          "scheduler"}  # no best-model entries without patience
    assert not (session.checkpoints[0] / BEST).exists()

    second = LineTask()
    summary = run_loop(second, settings, session)  # the marker stops a second failure
    assert second.resumed is True
    assert set(summary) == {"history", "start_epoch", "epochs_run", "attempts", "world_size",
                            "device", "seen"}
    assert summary["start_epoch"] == 1 and summary["epochs_run"] == [1, 2]
    assert summary["attempts"] == 2 and summary["world_size"] == 1
    history = summary["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert [h["attempt"] for h in history] == [1, 2, 2]
    assert history == session.records  # what was reported is what was kept
    assert summary["seen"] == 3 * 32  # the task's own state survived the restart
    for h in history:
        assert h["items"] == 32 and h["steps"] == 4
        assert h["train_loss"] == pytest.approx(h["rank_loss"])  # one worker
        assert h["metric"] is None and h["improved"] is None
    assert history[-1]["val_mse"] < history[0]["val_mse"]
    assert session.shards["train"].calls == [(8, 16)] * 3
    # The scheduler resumed too: 12 steps in all, not 8.
    state = _state(session.checkpoints[-1])
    assert state["scheduler"]["last_epoch"] == 12 and state["epoch"] == 2
    assert history[-1]["lr"] == pytest.approx(0.05 * lr_factor("inverse_sqrt", 2)(12))
    assert state["history"] == history and state["note"] == "line"
    assert json.loads((tmp_path / "progress.json").read_text()) == {
        "done": 3, "total": 3, "val_mse": round(history[-1]["val_mse"], 4)}


def test_early_stopping_keeps_the_best_model_across_a_restart(tmp_path, threads):
    settings = LoopSettings(
        epochs=8, batch_size=16, lr=0.05, weight_decay=0.0, schedule="cosine", warmup_steps=1,
        total_steps=16, patience=2, fail_at_epoch=3, fail_marker=str(tmp_path / "marker"))
    session = FakeSession(tmp_path, _shards())
    # improved, improved, NaN (counts as -inf), not by more than 1e-4 -> stop after 4 epochs
    with pytest.raises(RuntimeError, match="epoch 3"):
        run_loop(LineTask([0.5, 0.7, math.nan]), settings, session)
    summary = run_loop(LineTask([0.70005]), settings, session)
    history = summary["history"]
    assert [h["improved"] for h in history] == [True, True, False, False]
    assert [h["metric"] for h in history] == [0.5, 0.7, -math.inf, 0.70005]
    assert summary["best_epoch"] == 1 and summary["best"] == 0.7
    assert summary["stopped_early"] is True and summary["epochs_run"] == [3]
    # The epoch-3 checkpoint holds, as best/, the weights of epoch 1: kept by the first
    # attempt, read back from best/ by the second.
    best = load_file(str(session.checkpoints[-1] / BEST / "model.safetensors"))
    epoch1 = load_file(str(session.checkpoints[1] / "model.safetensors"))
    last = load_file(str(session.checkpoints[-1] / "model.safetensors"))
    assert best.keys() == epoch1.keys()
    for k in best:
        torch.testing.assert_close(best[k], epoch1[k], rtol=0, atol=0)
    assert any(not torch.equal(best[k], last[k]) for k in best)
    assert Line.from_pretrained(session.checkpoints[-1] / BEST).config == LineConfig()
    state = _state(session.checkpoints[-1])
    assert (state["best"], state["best_epoch"], state["bad_epochs"]) == (0.7, 1, 2)
    # Run again with epochs to spare: patience is spent, nothing more is trained.
    again = run_loop(LineTask(), settings, session)
    assert again["start_epoch"] == 4 and again["epochs_run"] == []
    assert again["stopped_early"] is True and again["attempts"] == 3
