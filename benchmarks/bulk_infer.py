"""Bulk inference throughput and memory: the Ray pipeline vs a plain loop, in one run.

1. Throughput: the same N synthetic light curves (survey files on disk) catalogued by a plain
   single-process loop (read -> window -> encode -> head, batch by batch, the same predictor
   code) and by :func:`astroray.infer.catalogue.run_inference` (streaming Ray Data: read
   tasks, one model actor, writer tasks, atomic shard publication). Prints objects/s of each
   and their ratio.
2. Memory: the pipeline on each size of ``--memory-sizes`` in a fresh run folder, sampling the
   unique memory (USS) of the driver and of every Ray worker process; prints the peaks, which
   stay flat when the pipeline streams (no whole-dataset materialisation).
3. GPU (when one is available): the same pipeline's objects/s vs the model's bare forward
   throughput on the same batches; otherwise it says it was skipped.

The model is an Astromer 1-sized classifier (random weights: throughput does not depend on
them). The last line is one JSON object with every figure.

    python benchmarks/bulk_infer.py                       # 20,000 objects; memory 10k, 100k
    python benchmarks/bulk_infer.py --n 2000 --memory-sizes 1000,4000   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch


def _survey(n: int, folder: Path, seed: int) -> Path:
    from astroray.data.synthetic import SyntheticSurveyConfig, make_survey

    make_survey(SyntheticSurveyConfig(kind="periodic", n=n, format="parquet", seed=seed,
                                      chunk_size=1000), folder)
    return folder


def _model(folder: Path, size: str) -> Path:
    from astroray.models import get_config
    from astroray.models.astromer import AstromerClassifier, AstromerClassifierConfig

    torch.manual_seed(0)
    classes = ("Cep_0", "Cep_1", "EB", "LPV", "RRab", "RRc")
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=get_config(size, dropout=0.0), labels=classes, min_points=5))
    return model.eval().save_pretrained(folder)


def _plain_loop(model_dir: Path, data: Path, batch_size: int) -> tuple[int, float]:
    """Read every file, predict batch by batch, in this process; objects and seconds."""
    from astroray.data._io import numpy_batch
    from astroray.data.registry import iter_blocks, plan_read
    from astroray.infer.predictors import get_predictor

    t0 = time.perf_counter()
    predictor = get_predictor(model_dir, device="cpu")
    n = 0
    plan = plan_read([str(data)]).for_kind("lightcurve")
    for table, _ in iter_blocks(plan.units, "lightcurve"):
        for lo in range(0, table.num_rows, batch_size):
            pred = predictor(numpy_batch(table.slice(lo, batch_size)))
            n += pred.table.num_rows + len(pred.failures)
    return n, time.perf_counter() - t0


class _MemorySampler:
    """Peak unique memory (USS) of this process and of each Ray worker process (psutil).

    USS, not RSS: a worker's RSS counts the pages of the shared object store it has touched,
    which grows with the data streamed through it without being that worker's memory.
    """

    def __init__(self, interval: float = 0.25):
        import psutil

        self.psutil, self.interval = psutil, interval
        self.driver_peak = 0
        self.worker_peak = 0
        self.by_name: dict[str, int] = {}  # peak per Ray process title (ray::ReadShard, ...)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            self.driver_peak = max(self.driver_peak, me.memory_full_info().uss)
            for proc in self.psutil.process_iter(["name", "cmdline"]):
                try:
                    cmd = " ".join(proc.info["cmdline"] or [])
                    if cmd.startswith("ray::") and ("Map" in cmd or "IDLE" in cmd
                                                    or "ReadShard" in cmd):
                        uss = proc.memory_full_info().uss
                        self.worker_peak = max(self.worker_peak, uss)
                        name = cmd.split()[0]
                        self.by_name[name] = max(self.by_name.get(name, 0), uss)
                except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                    continue
            time.sleep(self.interval)

    def __enter__(self) -> _MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints figures and, last, one JSON object."""
    import ray

    from astroray.infer.catalogue import InferConfig, run_inference
    from astroray.runtime import init_ray

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="objects of the throughput run")
    parser.add_argument("--memory-sizes", default="10000,100000",
                        help="comma-separated sizes of the memory runs ('' for none)")
    parser.add_argument("--model", default="astromer-v1", help="encoder size (registry name)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--files-per-shard", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # per core, like each Ray worker
    work = Path(tempfile.mkdtemp(prefix="astroray-bench-infer-"))
    figures: dict[str, object] = {"n": args.n, "model": args.model,
                                  "cpus": os.cpu_count(), "torch": torch.__version__}
    try:
        model_dir = _model(work / "model", args.model)
        data = _survey(args.n, work / "data", seed=1)
        n, seconds = _plain_loop(model_dir, data, args.batch_size)
        plain = n / seconds
        print(f"plain loop: {n} objects in {seconds:.1f} s ({plain:.1f}/s)")
        init_ray(None)
        gpu = ray.cluster_resources().get("GPU", 0) >= 1
        config = InferConfig(model=str(model_dir), paths=(str(data),),
                             batch_size=args.batch_size, files_per_shard=args.files_per_shard,
                             actor_cpus=1.0, read_cpus=0.5, use_gpu=gpu)
        summary = run_inference(config, work / "run", progress=False)
        ours = summary.objects / summary.seconds
        ratio = ours / plain
        print(f"Ray pipeline: {summary.objects} objects in {summary.seconds:.1f} s "
              f"({ours:.1f}/s, incl. planning, start-up and writing), x{ratio:.2f} vs loop")
        figures.update(plain_per_s=round(plain, 1), ray_per_s=round(ours, 1),
                       ratio_ray_vs_loop=round(ratio, 3))
        sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        for size in sizes:
            folder = _survey(size, work / f"data-{size}", seed=2)
            with _MemorySampler() as mem:
                s = run_inference(config.replace(paths=(str(folder),)), work / f"run-{size}",
                                  progress=False)
            print(f"memory, {size} objects: driver peak {mem.driver_peak / 2**20:.0f} MiB, "
                  f"worker peak {mem.worker_peak / 2**20:.0f} MiB ({s.objects / s.seconds:.0f}"
                  " objects/s)")
            print("  worker peaks by process: " + ", ".join(
                f"{k} {v / 2**20:.0f} MiB" for k, v in sorted(mem.by_name.items())))
            figures[f"memory_{size}"] = {"driver_peak_mib": round(mem.driver_peak / 2**20),
                                         "worker_peak_mib": round(mem.worker_peak / 2**20),
                                         "workers_mib": {k: round(v / 2**20)
                                                         for k, v in mem.by_name.items()},
                                         "objects_per_s": round(s.objects / s.seconds, 1)}
            shutil.rmtree(folder, ignore_errors=True)
        if gpu:
            figures["gpu"] = "see ray_per_s (model actor on the GPU)"
        else:
            print("GPU ratio: skipped (no GPU in this cluster)")
            figures["gpu"] = "skipped: no GPU"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
