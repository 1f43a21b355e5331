"""Astromer throughput: Ray Train pretraining and Ray Data embedding vs plain PyTorch loops.

On a GPU machine the model runs in bf16 autocast (one Ray Train worker per GPU, NCCL); on a
CPU machine in fp32 (``--workers`` gloo workers, default 2). In the same process it measures:

1. pretraining windows/s of a plain single-process PyTorch loop over pre-cut windows held in
   memory (the same masking, loss and optimizer), then of :func:`astroray.train.pretrain`
   (Ray Train DDP fed by Ray Data windows; the per-epoch training rate, excluding start-up
   and validation);
2. embedding windows/s of a plain loop (``model.embed`` over batches of windows under
   ``torch.inference_mode()``), then of :func:`astroray.infer.embed` (a Ray Data actor per
   GPU, windowing included).

Prints one line per figure and their ratios; the last line is one JSON object.

    python benchmarks/astromer.py                      # astromer-v2, 2000 synthetic objects
    python benchmarks/astromer.py --model astromer-v1 --n 500 --steps 20   # quick on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _windows(n: int, window: int, mode: str, seed: int) -> dict[str, np.ndarray]:
    import pyarrow as pa

    from astroray.data.synthetic import periodic_variables
    from astroray.data.windows import LightCurveWindows

    table = periodic_variables(n, seed=seed)
    batch = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        batch[name] = (np.array([None if v is None else np.asarray(v) for v in col.to_pylist()],
                                dtype=object) if pa.types.is_list(col.type)
                       else np.array(col.to_pylist(), dtype=object))
    return LightCurveWindows(window, mode=mode, min_points=10, seed=seed)(batch)


def _plain_pretrain(model_name: str, w: dict[str, np.ndarray], device: torch.device,
                    batch_size: int, steps: int) -> float:
    """Windows/s of a single-process training loop over in-memory windows."""
    from astroray.models import create_model
    from astroray.models.astromer import error_weights, mask_inputs, masked_rmse
    from astroray.train.trainer import autocast

    torch.manual_seed(0)
    model = create_model(model_name).to(device).train()
    cfg = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = {k: torch.from_numpy(w[k]).to(device) for k in ("times", "values", "errors", "mask")}
    n = data["times"].shape[0]
    warmup, done, started = 3, 0, 0.0
    for step in range(steps + warmup):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started, done = time.perf_counter(), 0
        idx = torch.randint(0, n, (batch_size,), device=device)
        values, mask = data["values"][idx], data["mask"][idx]
        m = mask_inputs(values, mask, probe_fraction=cfg.probe_fraction,
                        keep_fraction=cfg.keep_fraction, random_fraction=cfg.random_fraction)
        with autocast(device):
            out = model(data["times"][idx], m.values, mask, hidden=m.hidden)
        loss = masked_rmse(out.prediction, values, m.probed,
                           error_weights(data["errors"][idx], mask)
                           if cfg.error_weighted_loss else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += batch_size
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - started)


def _plain_embed(model_dir: str, w: dict[str, np.ndarray], device: torch.device,
                 batch_size: int) -> float:
    """Windows/s of ``model.embed`` over in-memory windows under inference mode."""
    from astroray.models import load_model
    from astroray.train.trainer import autocast

    model = load_model(model_dir).to(device).eval()
    data = {k: torch.from_numpy(w[k]).to(device) for k in ("times", "values", "mask")}
    n = data["times"].shape[0]
    with torch.inference_mode():
        for _rep in range(2):  # first pass warms up kernels and allocator
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            for lo in range(0, n, batch_size):
                sl = slice(lo, lo + batch_size)
                with autocast(device):
                    model.embed(data["times"][sl], data["values"][sl], data["mask"][sl])
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
    return n / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="astromer-v2")
    parser.add_argument("--n", type=int, default=2000, help="synthetic light curves")
    parser.add_argument("--epochs", type=int, default=2, help="Ray Train epochs")
    parser.add_argument("--steps", type=int, default=50, help="plain-loop training steps")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="windows per step (default 256 on GPU, 64 on CPU)")
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray Train workers (default: GPUs, else 2)")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()

    from astroray.data.synthetic import SyntheticSurveyConfig
    from astroray.infer.astromer import EmbedConfig, embed
    from astroray.models import get_config
    from astroray.runtime import init_ray
    from astroray.train.astromer import PretrainConfig, pretrain

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    batch = args.batch_size or (256 if gpu else 64)
    workers = args.workers or (torch.cuda.device_count() if gpu else 2)
    window = get_config(args.model).window_size
    figures: dict = {"model": args.model, "device": torch.cuda.get_device_name() if gpu
                     else "cpu", "precision": "bf16 autocast" if gpu else "fp32",
                     "batch_size": batch, "workers": workers, "n": args.n,
                     "torch_threads": torch.get_num_threads()}
    work = Path(tempfile.mkdtemp(prefix="astroray-bench-astromer-"))
    try:
        train_w = _windows(args.n, window, "random", seed=0)
        rate = _plain_pretrain(args.model, train_w, device, batch, args.steps)
        figures["pretrain_plain_windows_per_s"] = round(rate, 1)
        print(f"pretrain: plain PyTorch loop {rate:.1f} windows/s ({figures['precision']})")

        init_ray(num_cpus=args.num_cpus)
        cfg = PretrainConfig(model=args.model, synthetic=SyntheticSurveyConfig(
            kind="periodic", n=args.n, format="parquet", seed=0), epochs=args.epochs,
            batch_size=batch, num_workers=workers, use_gpu=gpu,
            cpus_per_worker=max(1.0, (args.num_cpus - 2) / workers) if gpu else 0.5,
            name="bench", warmup_steps=50)
        t0 = time.perf_counter()
        summary = pretrain(cfg, work / "pretrain")
        total = time.perf_counter() - t0
        steady = summary["history"][-1]["windows_per_second"]
        figures["pretrain_ray_windows_per_s"] = round(steady, 1)
        figures["pretrain_ray_total_seconds"] = round(total, 1)
        figures["pretrain_ratio_ray_vs_plain"] = round(steady / rate, 2)
        print(f"pretrain: Ray Train ({workers} workers) {steady:.1f} windows/s in the last "
              f"epoch (x{steady / rate:.2f} vs plain; {total:.0f} s end to end)")

        model_dir = summary["model"]["dir"]
        embed_w = _windows(args.n, window, "sequential", seed=1)
        rate = _plain_embed(model_dir, embed_w, device, batch * 2)
        figures["embed_plain_windows_per_s"] = round(rate, 1)
        print(f"embed: plain PyTorch loop {rate:.1f} windows/s")
        ecfg = EmbedConfig(model=model_dir, synthetic=SyntheticSurveyConfig(
            kind="periodic", n=args.n, format="parquet", seed=1),
            num_actors=max(1, torch.cuda.device_count()) if gpu else 1,
            actor_cpus=1.0, use_gpu=gpu, window_batch=batch * 2)
        for run in ("cold", "warm"):
            shutil.rmtree(work / "embed" / "embeddings", ignore_errors=True)
            res = embed(ecfg, work / "embed")
            wps = res["metrics"]["windows_per_second"]
            figures[f"embed_ray_{run}_windows_per_s"] = round(wps, 1)
            figures[f"embed_ratio_ray_{run}_vs_plain"] = round(wps / rate, 2)
            print(f"embed: Ray Data actor ({run}) {wps:.1f} windows/s incl. reading and "
                  f"windowing (x{wps / rate:.2f} vs plain)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
