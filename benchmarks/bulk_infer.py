"""Bulk inference throughput and memory: the Ray pipeline vs a plain loop, in one run.

1. Throughput: the same N synthetic light curves (survey files on disk) catalogued by a plain
   single-process loop (read -> window -> encode -> head, batch by batch, the same predictor
   code) and by :func:`astroray.infer.catalogue.run_inference` (streaming Ray Data: read
   tasks, one model actor, writer tasks, atomic shard publication). Prints objects/s of each
   and their ratio.
2. Memory: the pipeline on each size of ``--memory-sizes`` in a fresh run folder, sampling the
   private memory of the driver and of every Ray worker process (smaps: private pages outside
   the shared object store, whose pages a worker touched are reported apart); prints the
   peaks, which stay flat when the pipeline streams (no whole-dataset materialisation).
3. GPU (when one is available): spectra/s of the pipeline with a ViT-B/16 at 224 in bf16 (read
   tasks, rendering and the model in the GPU actor, writing) vs the ViT's bare forward
   throughput on resident batches of the same size; otherwise it says it was skipped.

Light curves go through an Astromer 1-sized classifier (tiny for the memory runs), spectra
through a ViT; random weights: throughput does not depend on them. The last line is one JSON
object with every figure.

    python benchmarks/bulk_infer.py                       # 20,000 objects; memory 10k, 100k
    python benchmarks/bulk_infer.py --n 2000 --memory-sizes 1000,4000   # quick
    python benchmarks/bulk_infer.py --n 0 --memory-sizes '' --vision-on-cpu \
        --vision-model vit-tiny-spectra --vision-n 2000   # the GPU comparison's code path
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
    classes = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=get_config(size, dropout=0.0), labels=classes, min_points=5))
    return model.eval().save_pretrained(folder)


def _plain_loop(model_dir: Path, data: Path, batch_size: int) -> tuple[int, float]:
    """Read every file, predict batch by batch, in this process; objects and seconds."""
    from astroray.data.files import numpy_batch

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


def _is_store(path: str) -> bool:
    """A mapping of Ray's shared-memory object store (plasma)."""
    return "plasma" in path or path.startswith("/dev/shm")


def _private_memory(proc) -> tuple[int, int]:
    """(private bytes outside the object store, private bytes of object-store mappings).

    A worker's unique set (USS) also counts the pages of the shared object store that only it
    has touched: they are the store's memory, bounded by ``object_store_memory`` for the whole
    node, not the worker's. They are reported apart.
    """
    own = store = 0
    for m in proc.memory_maps(grouped=True):
        private = m.private_clean + m.private_dirty
        if _is_store(m.path):
            store += private
        else:
            own += private
    return own, store


class _MemorySampler:
    """Peak private memory of this process and of each Ray worker process (psutil, smaps).

    Per process: private pages outside the object store (the process's own memory: Python
    objects, Arrow buffers, the model) and, apart, pages of the object store mapping that only
    it touched. Peaks are kept per Ray process title (``ray::MapBatches(ReadShard)``, ...).
    """

    def __init__(self, interval: float = 0.5):
        import psutil

        self.psutil, self.interval = psutil, interval
        self.driver_peak = 0
        self.worker_peak = 0
        self.store_peak = 0
        self.by_name: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            self.driver_peak = max(self.driver_peak, _private_memory(me)[0])
            for proc in self.psutil.process_iter(["cmdline"]):
                try:
                    cmd = " ".join(proc.info["cmdline"] or [])
                    if cmd.startswith("ray::") and ("Map" in cmd or "IDLE" in cmd
                                                    or "ReadShard" in cmd):
                        own, store = _private_memory(proc)
                        self.worker_peak = max(self.worker_peak, own)
                        self.store_peak = max(self.store_peak, store)
                        name = cmd.split()[0].split(".")[0]  # drop actor method suffixes
                        self.by_name[name] = max(self.by_name.get(name, 0), own)
                except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                    continue
            time.sleep(self.interval)

    def __enter__(self) -> _MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _spectra_model(folder: Path, name: str) -> Path:
    """A ViT spectra classifier (random weights) with the render spec of a fine-tuned one."""
    from astroray.models import create_model, tiny_overrides
    from astroray.models.vision.processing import write_render_spec
    from astroray.render import SpectrumRenderConfig

    torch.manual_seed(0)
    overrides = tiny_overrides(name) if "tiny" in name else {}
    model = create_model(name, **overrides, labels=("STAR", "GALAXY", "QSO")).eval()
    size = model.config.image_size
    folder = model.save_pretrained(folder)
    write_render_spec(folder, "spectra", SpectrumRenderConfig(height=size, width=size).to_dict(),
                      4700, None)
    return folder


def _bare_forward(model_dir: Path, device: str, batch_size: int, seconds: float = 10.0
                  ) -> float:
    """Images/s of the model's forward alone (bf16 autocast on CUDA) on resident batches."""
    from astroray.models.vision import VisionTransformer
    from astroray.train.trainer import autocast

    dev = torch.device(device)
    model = VisionTransformer.from_pretrained(model_dir).to(dev).eval()
    size = model.config.image_size
    images = torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8, device=dev)
    with torch.inference_mode(), autocast(dev):
        for _ in range(3):  # warm-up (kernels, autotuning)
            model.predict(images)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model.predict(images)
            n += batch_size
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def _vision_ratio(work: Path, n: int, model_name: str, batch_size: int, use_gpu: bool,
                  read_cpus: float) -> dict[str, object]:
    """Spectra/s of the whole pipeline (read, render, ViT) vs the ViT's bare forward."""
    from astroray.data.synthetic import SyntheticSurveyConfig, make_survey
    from astroray.infer.catalogue import InferConfig, run_inference

    model_dir = _spectra_model(work / "vit", model_name)
    data = work / "spectra"
    make_survey(SyntheticSurveyConfig(kind="spectra", n=n, format="parquet", seed=3,
                                      chunk_size=1000), data)
    config = InferConfig(model=str(model_dir), paths=(str(data),), batch_size=batch_size,
                         files_per_shard=1, actor_cpus=1.0, read_cpus=read_cpus,
                         use_gpu=use_gpu)
    run_inference(config.replace(paths=(str(data / "part-00000.parquet"),)),
                  work / "vit-warm", progress=False)  # start-up and kernels, not timed
    summary = run_inference(config, work / "vit-run", progress=False)
    ours = summary.objects / summary.seconds
    bare = _bare_forward(model_dir, "cuda" if use_gpu else "cpu", batch_size)
    print(f"{model_name} spectra: pipeline {ours:.0f}/s (read, render, forward, write), "
          f"bare forward {bare:.0f}/s: x{ours / bare:.2f}")
    return {"model": model_name, "n": n, "pipeline_per_s": round(ours, 1),
            "bare_forward_per_s": round(bare, 1), "ratio": round(ours / bare, 3),
            "device": "cuda" if use_gpu else "cpu"}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints figures and, last, one JSON object."""
    import ray

    from astroray.infer.catalogue import InferConfig, run_inference
    from astroray.runtime import init_ray

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000,
                        help="objects of the throughput run (0: skip it)")
    parser.add_argument("--memory-sizes", default="10000,100000",
                        help="comma-separated sizes of the memory runs ('' for none)")
    parser.add_argument("--model", default="astromer-v1", help="encoder size (registry name)")
    parser.add_argument("--memory-model", default="astromer-tiny",
                        help="encoder of the memory runs (memory does not depend on it)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--files-per-shard", type=int, default=4)
    parser.add_argument("--vision-n", type=int, default=20000,
                        help="spectra of the GPU run (ViT-B/16 at 224, bf16)")
    parser.add_argument("--vision-model", default="vit-b16-spectra")
    parser.add_argument("--vision-on-cpu", action="store_true",
                        help="run the vision comparison without a GPU (checks the code path; "
                             "use a tiny --vision-model)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # per core, like each Ray worker
    work = Path(tempfile.mkdtemp(prefix="astroray-bench-infer-"))
    figures: dict[str, object] = {"n": args.n, "model": args.model,
                                  "cpus": os.cpu_count(), "torch": torch.__version__}
    try:
        config = InferConfig(model="unset", paths=("unset",), batch_size=args.batch_size,
                             files_per_shard=args.files_per_shard, actor_cpus=1.0,
                             read_cpus=0.5)
        if args.n > 0:
            model_dir = _model(work / "model", args.model)
            data = _survey(args.n, work / "data", seed=1)
            n, seconds = _plain_loop(model_dir, data, args.batch_size)
            plain = n / seconds
            print(f"plain loop: {n} objects in {seconds:.1f} s ({plain:.1f}/s)")
        init_ray(None)
        gpu = ray.cluster_resources().get("GPU", 0) >= 1
        if args.n > 0:
            config = config.replace(model=str(model_dir), paths=(str(data),), use_gpu=gpu)
            summary = run_inference(config, work / "run", progress=False)
            ours = summary.objects / summary.seconds
            ratio = ours / plain
            print(f"Ray pipeline: {summary.objects} objects in {summary.seconds:.1f} s "
                  f"({ours:.1f}/s, incl. planning, start-up and writing), x{ratio:.2f} vs loop")
            figures.update(plain_per_s=round(plain, 1), ray_per_s=round(ours, 1),
                           ratio_ray_vs_loop=round(ratio, 3))
        sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
        if sizes:
            mem_model = _model(work / "memory-model", args.memory_model)
            figures["memory_model"] = args.memory_model
        for size in sizes:
            folder = _survey(size, work / f"data-{size}", seed=2)
            with _MemorySampler() as mem:
                s = run_inference(config.replace(model=str(mem_model), paths=(str(folder),),
                                                 use_gpu=gpu),
                                  work / f"run-{size}", progress=False)
            print(f"memory, {size} objects: driver peak {mem.driver_peak / 2**20:.0f} MiB, "
                  f"worker peak {mem.worker_peak / 2**20:.0f} MiB (private, outside the object "
                  f"store; store pages touched by one worker: {mem.store_peak / 2**20:.0f} MiB;"
                  f" {s.objects / s.seconds:.0f} objects/s)")
            print("  worker peaks by process: " + ", ".join(
                f"{k} {v / 2**20:.0f} MiB" for k, v in sorted(mem.by_name.items())))
            figures[f"memory_{size}"] = {"driver_peak_mib": round(mem.driver_peak / 2**20),
                                         "worker_peak_mib": round(mem.worker_peak / 2**20),
                                         "store_touched_mib": round(mem.store_peak / 2**20),
                                         "workers_mib": {k: round(v / 2**20)
                                                         for k, v in mem.by_name.items()},
                                         "objects_per_s": round(s.objects / s.seconds, 1)}
            shutil.rmtree(folder, ignore_errors=True)
        if gpu or args.vision_on_cpu:
            figures["gpu"] = _vision_ratio(work, args.vision_n, args.vision_model,
                                           args.batch_size, gpu, read_cpus=0.5)
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
