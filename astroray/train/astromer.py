"""Distributed Astromer pretraining on Ray Train, fed by Ray Data windows of light curves.

:func:`pretrain` prepares a canonical Parquet dataset (a generated synthetic survey, survey
files ingested with :func:`astroray.data.ingest`, and the optional real samples when they are
present), splits it by object into train and validation, windows it on the fly with
:class:`astroray.data.windows.LightCurveWindows` (a fresh random crop of each object and band
per epoch for training, sequential windows for validation) and trains the masked-magnitude
objective with a ``TorchTrainer`` over ``num_workers`` DDP workers. Every epoch reports the
validation RMSE and R^2 and a checkpoint (model folder + optimizer state); a worker failure
restarts the group from the last checkpoint. The per-worker loop is the shared skeleton
:func:`astroray.train.loop.run_loop` with the masked-magnitude task defined here.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import torch

from astroray.config import (
    Config,
    Optimization,
    TrainResources,
    check,
    check_cpus,
    check_positive_ints,
    check_training,
)
from astroray.data.inputs import check_inputs, resolve_inputs
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.data.windows import LC_COLUMNS, LightCurveWindows, window_dataset
from astroray.models import create_model, get_config, list_models, load_model, resolve_model_path
from astroray.models.astromer import error_weights, mask_inputs, masked_rmse
from astroray.models.pretrained import read_config_json
from astroray.runtime import init_ray, write_results
from astroray.train.loop import EpochStats, LoopSettings, TrainTask, Worker, run_loop
from astroray.train.metrics import MaskedRegressionMeter
from astroray.train.trainer import (
    autocast,
    fit_with_progress,
    gpu_available,
    make_torch_trainer,
)

__all__ = ["PretrainConfig", "pretrain", "prepare_light_curves", "split_by_object"]

logger = logging.getLogger(__name__)



#: Architecture sizes a smoke run takes from the tiny model rather than the real one.
_SIZE_FIELDS = ("num_layers", "num_heads", "head_dim", "ffn_dim")


@dataclasses.dataclass
class PretrainConfig(TrainResources, Optimization):
    """Settings of ``astroray pretrain`` / ``jobs/pretrain_astromer.py``.

    The resources (``num_workers``, ``use_gpu``, ``cpus_per_worker``, ``max_failures``) are the
    :class:`~astroray.config.TrainResources` group, the optimiser (``epochs``, ``batch_size``,
    ``lr``: the peak, reached after ``warmup_steps`` then decaying as ``1 / sqrt(step)``,
    ``weight_decay``, ``grad_clip``) the :class:`~astroray.config.Optimization` group.

    Attributes:
        model: registry name of the model (``astromer-v1``, ``astromer-v2``, ...).
        model_overrides: config fields changed from the registered ones.
        init_from: a saved model folder to start from instead of a random initialisation.
        paths: survey files/folders or canonical Parquet to pretrain on (ingested first).
        optional_paths: the same, used only when they exist (the real samples).
        synthetic: a synthetic survey generated and added to the data (None: none).
        min_points: object-bands with fewer points are not used.
        val_fraction: fraction of objects held out for validation (chosen by id hash).
        warmup_steps: linear warm-up steps.
        task_cpus: CPUs per Ray Data read/window task.
        shuffle_buffer: windows in each worker's local shuffle buffer.
        name: run name under ``OUT/ray``; re-running with the same output folder resumes.
        fail_at_epoch: test hook: the last worker raises once at the start of this epoch.
        seed: seed of the model initialisation and of the validation masks.
    """

    model: str = "astromer-v1"
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    init_from: str | None = None
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: SyntheticSurveyConfig | None = None
    min_points: int = 10
    val_fraction: float = 0.05
    warmup_steps: int = 200
    task_cpus: float = 0.5
    shuffle_buffer: int = 1000
    name: str = "astromer-pretrain"
    fail_at_epoch: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.model in list_models(), self, "model", self.model,
              f"one of {list_models()}")
        check(isinstance(self.model_overrides, dict), self, "model_overrides",
              self.model_overrides, "a mapping of config fields")
        check_inputs(self)
        if self.synthetic is not None:
            check(self.synthetic.kind in ("periodic", "transients"), self, "synthetic",
                  self.synthetic.kind, "a light-curve kind (periodic or transients)")
        check_positive_ints(self, "min_points", "shuffle_buffer")
        self.check_optimization()
        check(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0, self,
              "warmup_steps", self.warmup_steps, "a non-negative integer")
        check(0.0 < self.val_fraction < 1.0, self, "val_fraction", self.val_fraction,
              "a number in (0, 1)")
        check_cpus(self, "task_cpus")
        check_training(self)
        self.model_config()  # invalid overrides fail here, naming the field

    def model_config(self) -> Config:
        """The model's config: the registered one with ``model_overrides`` applied."""
        return get_config(self.model, **self.model_overrides)

    def smoke(self) -> PretrainConfig:
        """This configuration shrunk to run in a minute or two on 2 CPUs."""
        synthetic = self.synthetic
        if synthetic is not None:
            synthetic = synthetic.replace(n=min(synthetic.n, 300),
                                          chunk_size=min(synthetic.chunk_size, 300))
        # The tiny model keeps the real run's non-size settings (time encoding, value scale).
        overrides = {k: v for k, v in self.model_overrides.items() if k not in _SIZE_FIELDS}
        return self.replace(model="astromer-tiny", model_overrides=overrides, init_from=None,
                            synthetic=synthetic, epochs=min(self.epochs, 2),
                            batch_size=min(self.batch_size, 32), warmup_steps=10,
                            val_fraction=max(self.val_fraction, 0.1), shuffle_buffer=256)


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def prepare_light_curves(paths: tuple[str, ...], optional_paths: tuple[str, ...],
                         synthetic: SyntheticSurveyConfig | None, workdir: str | Path,
                         ) -> dict[str, Any]:
    """Make canonical Parquet of every input, once (a finished step is not redone).

    The synthetic survey is generated directly as canonical Parquet; survey files (and the
    optional paths that exist) are ingested with :func:`astroray.data.ingest` on Ray.

    Args:
        paths: survey files/folders or canonical Parquet.
        optional_paths: the same, skipped (with a log line) when missing.
        synthetic: a light-curve survey to generate, or None.
        workdir: where the Parquet goes.

    Returns:
        ``{"parquet": [folders], "inputs": [...], "skipped": [...], "objects": n}``.
    """
    resolved = resolve_inputs(paths, optional_paths, synthetic, workdir)
    return {"inputs": resolved.inputs, "skipped": resolved.skipped, "objects": resolved.objects,
            "parquet": resolved.paths}


def _val_mask(ids: pa.Array, fraction: float) -> np.ndarray:
    # A stable hash of the id (not Python's salted hash) so that every task, run and
    # restart puts an object on the same side.
    values = ids.to_pylist()
    h = np.fromiter((zlib.crc32(str(v).encode()) for v in values), dtype=np.int64,
                    count=len(values))
    return (h % 100_000) < int(round(fraction * 100_000))


class _ObjectSplit:
    """Keep the validation (or training) objects of a pyarrow batch."""

    def __init__(self, fraction: float, val: bool):
        self.fraction, self.val = fraction, val

    def __call__(self, batch: pa.Table) -> pa.Table:
        is_val = _val_mask(batch.column("object_id").combine_chunks(), self.fraction)
        return batch.filter(pa.array(is_val if self.val else ~is_val))


def split_by_object(ds: Any, val_fraction: float, *, num_cpus: float | None = None
                    ) -> tuple[Any, Any]:
    """Split a light-curve dataset into (train, val) by a hash of ``object_id``."""
    kwargs: dict[str, Any] = {"batch_format": "pyarrow"}
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    return (ds.map_batches(_ObjectSplit(val_fraction, val=False), **kwargs),
            ds.map_batches(_ObjectSplit(val_fraction, val=True), **kwargs))


def _read_parquet(folders: list[str], num_cpus: float) -> Any:
    return ray.data.read_parquet(folders, columns=LC_COLUMNS, num_cpus=num_cpus)


def _quiet(ds: Any) -> Any:
    # Training re-reads the data every epoch on every worker: progress bars would flood the
    # log with one block per pass; the per-epoch report says what matters.
    ds.context.enable_progress_bars = False
    return ds


# ------------------------------------------------------------------------------------------
# The training loop (runs on every Ray Train worker)
# ------------------------------------------------------------------------------------------


class _PretrainTask(TrainTask):
    """Masked-magnitude pretraining in :func:`astroray.train.loop.run_loop`.

    The training state adds ``initial`` (the untrained model's validation figures) and
    ``step`` (optimizer steps so far); each checkpoint also holds ``pretrain_config``.
    """

    progress_figure = "val_r2"

    def __init__(self, cfg: PretrainConfig) -> None:
        self.cfg = cfg
        self.model_cfg: Any = None

    def build(self) -> torch.nn.Module:
        cfg = self.cfg
        model = (load_model(cfg.init_from) if cfg.init_from
                 else create_model(cfg.model, **cfg.model_overrides))
        self.model_cfg = model.config
        return model

    def init_state(self) -> dict[str, Any]:
        return {"initial": None, "step": 0}

    def start(self, model: torch.nn.Module, worker: Worker, val_shard: Any,
              state: dict[str, Any], *, resumed: bool) -> None:
        if state["initial"] is None:
            # The untrained model on the same validation masks: the figure pretraining beats.
            state["initial"] = self.evaluate(model, val_shard, worker)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], worker: Worker
             ) -> tuple[torch.Tensor, int]:
        mcfg = self.model_cfg
        values, mask = batch["values"], batch["mask"]  # (B, L) each
        masked = mask_inputs(values, mask, probe_fraction=mcfg.probe_fraction,
                             keep_fraction=mcfg.keep_fraction,
                             random_fraction=mcfg.random_fraction)
        with autocast(worker.device):
            out = model(batch["times"], masked.values, mask, hidden=masked.hidden)
        loss = masked_rmse(out.prediction, values, masked.probed,
                           error_weights(batch["errors"], mask)
                           if mcfg.error_weighted_loss else None)
        return loss, int(values.shape[0])

    def evaluate(self, model: torch.nn.Module, shard: Any, worker: Worker) -> dict[str, Any]:
        """Masked-magnitude RMSE / R^2 over this worker's validation shard, reduced over all."""
        mcfg, device = self.model_cfg, worker.device
        meter = MaskedRegressionMeter()
        generator = torch.Generator(device=device)
        generator.manual_seed(self.cfg.seed * 1000 + worker.rank)  # the same masks every epoch
        model.eval()
        with torch.inference_mode():
            for batch in shard.iter_torch_batches(batch_size=self.cfg.batch_size, device=device):
                values, mask = batch["values"], batch["mask"]  # (B, L) each
                masked = mask_inputs(values, mask, probe_fraction=mcfg.probe_fraction,
                                     keep_fraction=mcfg.keep_fraction,
                                     random_fraction=mcfg.random_fraction,
                                     generator=generator)
                with autocast(device):
                    out = model(batch["times"], masked.values, mask, hidden=masked.hidden)
                weight = (error_weights(batch["errors"], mask)
                          if mcfg.error_weighted_loss else None)
                meter.update(out.prediction.float(), values, masked.probed, weight)
        model.train()
        meter.all_reduce(device)
        return meter.compute()

    def record(self, stats: EpochStats, val: dict[str, Any], state: dict[str, Any]
               ) -> dict[str, Any]:
        state["step"] += stats.steps
        # train_loss is rank 0's own mean (the figure this loop has always reported).
        return {"epoch": stats.epoch, "train_loss": stats.rank_loss,
                "train_windows": stats.items, "steps": stats.steps,
                "train_seconds": round(stats.seconds, 3),
                "windows_per_second": stats.items_per_second,
                "val_rmse": val["rmse"], "val_r2": val["r2"], "val_loss": val["loss"],
                "val_r2_weighted": val["r2_weighted"],
                "val_rmse_zero": val["rmse_zero"], "val_points": val["n"],
                "lr": stats.lr, "attempt": stats.attempt}

    def checkpoint_state(self) -> dict[str, Any]:
        return {"pretrain_config": self.cfg.to_dict()}

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"initial": state["initial"], "model_config": self.model_cfg.to_dict()}


def _train_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Per-worker loop: :func:`~astroray.train.loop.run_loop` with the pretraining task.

    Args:
        loop_config: ``{"config": PretrainConfig.to_dict(), "fail_marker": path,
            "progress_file": path}``.

    Returns:
        The run's summary: ``history``, ``initial``, ``start_epoch``, ``epochs_run``,
        ``attempts``, ``world_size``, ``device``, ``model_config``.
    """
    cfg = PretrainConfig.from_dict(loop_config["config"])
    settings = LoopSettings(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
        weight_decay=cfg.weight_decay, schedule="inverse_sqrt", warmup_steps=cfg.warmup_steps,
        grad_clip=cfg.grad_clip, shuffle_buffer=cfg.shuffle_buffer,
        threads=int(cfg.cpus_per_worker), seed=cfg.seed, fail_at_epoch=cfg.fail_at_epoch,
        fail_marker=loop_config["fail_marker"], progress_file=loop_config.get("progress_file"))
    return run_loop(_PretrainTask(cfg), settings)


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def pretrain(config: PretrainConfig, out: str | Path) -> dict[str, Any]:
    """Pretrain an Astromer encoder on Ray Train; the entry point of ``astroray pretrain``.

    Output layout of ``out``::

        out/data/     canonical Parquet of the inputs (generated / ingested once)
        out/ray/NAME/ Ray Train run: checkpoints (config.json, model.safetensors,
                      training_state.pt) and results; the same ``out`` resumes
        out/model/    the final model (config.json + model.safetensors)

    Ray is started (or joined via ``RAY_ADDRESS``) when it is not running yet.

    Args:
        config: what to train on and how.
        out: output folder.

    Returns:
        ``{"metrics", "history", "data", "model", "resume"}``: the validation RMSE / R^2
        before and after pretraining, per-epoch history, the data used, the saved model
        folder, and how the run started (epoch it resumed from, attempts).
    """
    init_ray()
    if config.init_from:  # a published name becomes its (converted) folder, once, here
        config = config.replace(init_from=resolve_model_path(config.init_from))
    out = Path(out).resolve()
    started = time.perf_counter()
    data = prepare_light_curves(config.paths, config.optional_paths, config.synthetic,
                                out / "data")
    use_gpu = gpu_available(config.num_workers) if config.use_gpu is None else config.use_gpu
    lcs = _read_parquet(data["parquet"], config.task_cpus)
    train_lcs, val_lcs = split_by_object(lcs, config.val_fraction, num_cpus=config.task_cpus)
    model_cfg = config.model_config()
    if config.init_from:  # the folder's input convention, not the registered one's
        model_cfg = model_cfg.replace(**{k: v for k, v in read_config_json(config.init_from)
                                         .items() if k in ("window_size", "time_origin")})
    window, origin = model_cfg.window_size, model_cfg.time_origin
    train_ds = window_dataset(
        train_lcs, LightCurveWindows(window, mode="random", min_points=config.min_points,
                                     time_origin=origin),
        numeric_only=True, num_cpus=config.task_cpus)
    train_ds = _quiet(train_ds)
    val_ds = window_dataset(
        val_lcs, LightCurveWindows(window, mode="sequential", min_points=config.min_points,
                                   time_origin=origin),
        numeric_only=True, num_cpus=config.task_cpus)
    val_ds = _quiet(val_ds)
    storage = out / "ray"
    storage.mkdir(parents=True, exist_ok=True)
    marker = storage / f".{config.name}.failure-injected"
    progress_file = storage / f".{config.name}.progress.json"
    trainer = make_torch_trainer(
        _train_loop, {"config": config.to_dict(), "fail_marker": str(marker),
                      "progress_file": str(progress_file)},
        datasets={"train": train_ds, "val": val_ds}, resources=config, use_gpu=use_gpu,
        storage_path=str(storage), name=config.name)
    result = fit_with_progress(trainer, progress_file, config.epochs,
                               f"pretrain {config.model}")
    if result.error is not None:
        raise result.error
    value = result.return_value or {}
    if result.checkpoint is None:
        raise RuntimeError(f"pretraining {config.name} reported no checkpoint")
    model_dir = out / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    with result.checkpoint.as_directory() as folder:
        model_dir.mkdir(parents=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copy2(Path(folder) / name, model_dir / name)
        checkpoint_state = torch.load(Path(folder) / "training_state.pt", map_location="cpu",
                                      weights_only=False)
    history = checkpoint_state.get("history") or value.get("history", [])
    initial = checkpoint_state.get("initial") or value.get("initial") or {}
    last = history[-1] if history else {}
    metrics = {
        "val_rmse_initial": initial.get("rmse"), "val_r2_initial": initial.get("r2"),
        "val_rmse": last.get("val_rmse"), "val_r2": last.get("val_r2"),
        "val_r2_weighted": last.get("val_r2_weighted"),
        # Masked R^2 > 0 on held-out windows: the encoder predicts hidden magnitudes better
        # than the window mean (the untrained model's answer: its head starts at zero).
        "learned": bool(last.get("val_r2") is not None and last["val_r2"] > 0),
        "val_rmse_zero": last.get("val_rmse_zero", initial.get("rmse_zero")),
        "epochs": len(history),
        "windows_per_second": (float(np.mean([h["windows_per_second"] for h in history]))
                               if history else None),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return {
        "metrics": metrics, "history": history, "data": data,
        "model": {"name": config.model, "dir": str(model_dir),
                  "checkpoint": result.checkpoint.path,
                  "config": value.get("model_config"), "use_gpu": use_gpu,
                  "num_workers": config.num_workers, "device": value.get("device")},
        "resume": {"start_epoch": value.get("start_epoch"),
                   "epochs_run": value.get("epochs_run"),
                   "attempts": value.get("attempts"),
                   "failure_injected": marker.exists(),
                   "epochs_in_history": [h["epoch"] for h in history],
                   "attempt_of_epoch": [h.get("attempt") for h in history]},
    }


def write_pretrain_results(summary: dict[str, Any], config: PretrainConfig, out: str | Path, *,
                           smoke: bool, started: float) -> None:
    """Print the one-line summary of a pretraining run and write ``out/results.json``."""
    m = summary["metrics"]
    print(f"pretrain: {config.model}: masked validation RMSE {m['val_rmse_initial']:.4f} "
          f"(untrained; predicting the window mean: {m['val_rmse_zero']:.4f}) -> "
          f"{m['val_rmse']:.4f} after {m['epochs']} epochs (R^2 {m['val_r2']:.3f}); "
          f"model in {summary['model']['dir']}")
    write_results(out, "pretrain_astromer",
                  metrics={**m, "history": summary["history"], "resume": summary["resume"]},
                  data=summary["data"], model=summary["model"], config=config.to_dict(),
                  smoke=smoke, started=started)
