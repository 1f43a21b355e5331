"""Soak: bulk inference over a growing survey, with model actors killed, counted per object.

N synthetic light curves (canonical Parquet, many files) arrive in three parts, and one run
folder catalogues them as a survey pipeline would, re-running after each delivery:

1. part 1 (half of N) is catalogued while a model actor dies abruptly mid-run (the
   ``crash_after_batches`` hook: ``os._exit`` in the actor, as a killed worker would);
2. part 2 (a quarter) is added and the same command re-run, killing a model actor again;
3. part 3 (the last quarter) is added and the command re-run.

After every run the catalogue and errors are read back and every input object counted:
``lost`` (in the inputs, in neither table), ``duplicated`` (rows beyond one per object) and
``duplicate_ids`` (the run's own count of ids read from 2+ inputs) must all be 0; a run that
re-did shards it had finished shows as ``redone`` (objects processed beyond the new ones).
Object ids are made unique across parts (the generator numbers each part from 0). Prints
throughput per run and overall, and its ratio to a plain in-process loop over a sample (the
same predictor, no Ray, no fault handling) measured in the same run; the last line is one JSON
object with every figure.

    python benchmarks/soak_infer.py                  # 100,000 objects
    python benchmarks/soak_infer.py --n 10000        # about 2 minutes on 2 CPUs
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

CLASSES = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")


def _model(folder: Path) -> Path:
    """A tiny Astromer classifier (random weights: counts and throughput do not need more)."""
    from astroray.models.astromer import (
        ASTROMER_TINY,
        AstromerClassifier,
        AstromerClassifierConfig,
    )

    torch.manual_seed(0)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=ASTROMER_TINY.replace(dropout=0.0), labels=CLASSES, hidden=(32, 16),
        min_points=5))
    return model.eval().save_pretrained(folder)


def _part(n: int, folder: Path, index: int, per_file: int) -> list[str]:
    """``n`` light curves as Parquet files of ``per_file`` objects, ids prefixed by part."""
    from astroray.data.synthetic import SyntheticSurveyConfig, make_survey

    raw = folder.with_name(folder.name + "-raw")
    make_survey(SyntheticSurveyConfig(kind="periodic", n=n, format="parquet", seed=index,
                                      chunk_size=per_file), raw)
    folder.mkdir(parents=True, exist_ok=True)
    ids: list[str] = []
    for path in sorted(raw.glob("*.parquet")):
        table = pq.read_table(path)
        unique = pc.binary_join_element_wise(f"p{index}", table.column("object_id"), "-")
        table = table.set_column(table.schema.get_field_index("object_id"), "object_id", unique)
        pq.write_table(table, folder / path.name, compression="zstd")
        ids.extend(unique.to_pylist())
    shutil.rmtree(raw)
    return ids


def _plain_loop(model_dir: Path, files: list[Path], limit: int, batch_size: int
                ) -> tuple[int, float]:
    """Objects and seconds of reading and predicting up to ``limit`` objects in process."""
    from astroray.data.files import numpy_batch

    from astroray.data.registry import iter_blocks, plan_read
    from astroray.infer.predictors import get_predictor

    t0 = time.perf_counter()
    predictor = get_predictor(model_dir, device="cpu")
    n = 0
    plan = plan_read([str(f) for f in files]).for_kind("lightcurve")
    for table, _ in iter_blocks(plan.units, "lightcurve"):
        for lo in range(0, table.num_rows, batch_size):
            pred = predictor(numpy_batch(table.slice(lo, batch_size)))
            n += pred.table.num_rows + len(pred.failures)
            if n >= limit:
                return n, time.perf_counter() - t0
    return n, time.perf_counter() - t0


def _count(out: Path, expected: set[str]) -> dict[str, int]:
    """Rows per input object in catalogue and errors: lost, duplicated, unknown."""
    from astroray.infer.catalogue import read_catalogue

    cat, err = read_catalogue(out)
    rows = [*(cat.column("object_id").to_pylist() if cat.num_rows else []),
            *(err.column("object_id").to_pylist() if err.num_rows else [])]
    seen = set(rows)
    return {"rows": len(rows), "catalogue_rows": cat.num_rows, "error_rows": err.num_rows,
            "lost": len(expected - seen), "duplicated": len(rows) - len(seen),
            "unknown": len(seen - expected)}


def main(argv: list[str] | None = None) -> int:
    """Run the soak; returns 1 when an object was lost or duplicated."""
    from astroray.infer.catalogue import InferConfig, run_inference
    from astroray.runtime import init_ray

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="objects in all (3 parts)")
    parser.add_argument("--per-file", type=int, default=500, help="objects per input file")
    parser.add_argument("--files-per-shard", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--address", default=None, help="Ray cluster (default: a local Ray)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray")
    args = parser.parse_args(argv)
    if args.n < 4 or args.per_file < 1:
        parser.error("--n must be at least 4 and --per-file at least 1")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="soak-infer-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs, out, pool = work / "inputs", work / "run", work / "pool"
    started = time.perf_counter()
    model = _model(work / "model")
    sizes = [args.n // 2, args.n // 4, args.n - args.n // 2 - args.n // 4]
    ids = [_part(n, pool / f"part{k + 1}", k + 1, args.per_file) for k, n in enumerate(sizes)]
    generated = time.perf_counter() - started
    n_files = len(list(pool.rglob("*.parquet")))
    print(f"soak: {args.n} objects in {n_files} files generated in {generated:.1f} s -> {work}")

    init_ray(args.address, num_cpus=args.num_cpus, object_store_memory=1 << 30)
    batches = max(2, sizes[0] // args.batch_size // 3)
    runs, expected = [], set()
    for k in range(3):
        shutil.move(str(pool / f"part{k + 1}"), str(inputs / f"part{k + 1}"))
        expected |= set(ids[k])
        crash = batches if k < 2 else None
        # The hook fires once per run folder (a marker file): removing it kills again.
        (out / "_state" / "crashed-once").unlink(missing_ok=True)
        config = InferConfig(model=str(model), paths=(str(inputs),),
                             files_per_shard=args.files_per_shard, batch_size=args.batch_size,
                             actor_cpus=1.0, read_cpus=0.5, crash_after_batches=crash)
        summary = run_inference(config, out, progress=False)
        killed = crash is not None and (out / "_state" / "crashed-once").exists()
        counts = _count(out, expected)
        processed = summary.catalogued + summary.failed
        run = {"run": k + 1, "inputs": len(expected), "new": len(ids[k]),
               "processed": processed, "redone": processed - len(ids[k]),
               "actor_killed": killed, "seconds": summary.seconds,
               "objects_per_s": round(processed / summary.seconds, 1) if summary.seconds else 0,
               "shards": summary.shards, "shards_skipped": summary.shards_skipped,
               "shards_retired": summary.shards_retired,
               "duplicate_ids": summary.duplicate_ids, **counts}
        runs.append(run)
        print(f"run {k + 1}: +{len(ids[k])} objects ({len(expected)} in all), processed "
              f"{processed} in {summary.seconds:.1f} s ({run['objects_per_s']:.0f}/s), actor "
              f"killed: {killed}; lost {counts['lost']}, duplicated {counts['duplicated']}, "
              f"duplicate ids {summary.duplicate_ids}, shards {summary.shards} "
              f"({summary.shards_skipped} skipped)")
    seconds = sum(r["seconds"] for r in runs)
    processed = sum(r["processed"] for r in runs)
    sample = sorted((inputs / "part1").glob("*.parquet"))
    n_plain, plain_s = _plain_loop(model, sample, min(2000, len(ids[0])), args.batch_size)
    plain = n_plain / plain_s if plain_s > 0 else 0.0
    ours = processed / seconds if seconds else 0.0
    print(f"plain loop (in process, no Ray): {n_plain} objects in {plain_s:.1f} s "
          f"({plain:.0f}/s); the soak's pipeline: {ours:.0f}/s, ratio "
          f"{ours / plain if plain else 0.0:.2f}")
    final = runs[-1]
    figures = {
        "benchmark": "soak_infer", "n": args.n, "per_file": args.per_file,
        "files_per_shard": args.files_per_shard, "batch_size": args.batch_size,
        "lost": final["lost"], "duplicated": final["duplicated"],
        "duplicate_ids": final["duplicate_ids"], "unknown": final["unknown"],
        "max_lost": max(r["lost"] for r in runs),
        "max_duplicated": max(r["duplicated"] for r in runs),
        "redone": sum(r["redone"] for r in runs),
        "actor_kills": sum(r["actor_killed"] for r in runs),
        "objects_per_s": round(ours, 1), "plain_loop_objects_per_s": round(plain, 1),
        "ratio_to_plain_loop": round(ours / plain, 3) if plain else None,
        "inference_seconds": round(seconds, 1), "generate_seconds": round(generated, 1),
        "wall_seconds": round(time.perf_counter() - started, 1), "runs": runs,
    }
    print(f"soak: lost {figures['max_lost']}, duplicated {figures['max_duplicated']} (worst "
          f"run), {figures['actor_kills']} actor kills, {figures['objects_per_s']:.0f} objects/s "
          f"over {seconds:.0f} s of inference")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))
    ok = (figures["max_lost"] == figures["max_duplicated"] == figures["unknown"] == 0
          and figures["duplicate_ids"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
