"""The bulk-inference driver: plan, reconcile, run the pipeline, publish, summarise."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from astroray.data.registry import plan_read
from astroray.data.schema import error_table
from astroray.infer.catalogue.config import InferConfig, InferSummary
from astroray.infer.catalogue.shards import (
    _RECORD_VERSION,
    _duplicates,
    _fingerprints,
    _group,
    _reconcile,
    _RunLock,
    _Shards,
    _wipe,
    _write_atomic,
    _write_json_atomic,
    read_catalogue,
)
from astroray.infer.catalogue.stages import PredictBatch, ReadShard, WriteParts
from astroray.infer.predictors import model_hash, predictor_kind
from astroray.infer.scoring import score_catalogue
from astroray.models import resolve_model_path
from astroray.runtime import check_actor_pool, gpu_available, progress, write_results
from astroray.train.classify import fit_classifier

__all__ = ["ensure_model", "run_inference", "run_job"]


def _check_weights(model_dir: str) -> None:
    """Refuse a model whose weights are truncated or not safetensors, before any writing.

    A failed load inside a model actor would end in a Ray traceback, and a run folder must
    not be bound to a model that never loaded.
    """
    file = Path(model_dir) / "model.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file (not a saved model folder)")
    try:
        with safe_open(str(file), "np") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{file}: not a complete safetensors file ({exc}); repair or re-save "
                         "the model (nothing was written to the output folder)") from None


def _check_same_model(out: Path, manifest: dict[str, Any],
                      records: dict[str, dict[str, Any]]) -> None:
    """Refuse to add rows of another model (or embedding setting) to a published catalogue.

    Only a folder holding published shards is bound to its model: a run that failed before
    publishing anything (a truncated checkpoint, since repaired) binds nothing. The model is
    compared by content hash with the manifest's and with every shard record's.
    """
    if not records:
        return
    path = out / "_state" / "manifest.json"
    try:
        old = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        old = {}
    hashes = {r["model_hash"] for r in records.values() if r.get("model_hash")}
    if old.get("model_hash"):
        hashes.add(old["model_hash"])
    how = ("use another --out, or start over with restart (`restart: true` in the config), "
           "which discards this folder's catalogue and errors")
    others = sorted(hashes - {manifest["model_hash"]})
    if others:
        raise ValueError(
            f"{out} holds a catalogue of {len(records)} published shard(s) made by model "
            f"{old.get('model', '?')} (hash {', '.join(others)}); this run's model "
            f"{manifest['model']} has hash {manifest['model_hash']}. One catalogue holds one "
            f"model's rows: {how}")
    if "embedding" in old and bool(old["embedding"]) != manifest["embedding"]:
        raise ValueError(
            f"{out} holds a catalogue made with embedding={bool(old['embedding'])}; this run "
            f"has embedding={manifest['embedding']}, which would mix rows with and without "
            f"the embedding column: {how}")


def run_inference(config: InferConfig, out: str | Path, *, progress: bool = True
                  ) -> InferSummary:
    """Run bulk inference; writes ``out/catalogue/`` and ``out/errors/`` (Parquet).

    Re-running into the same ``out`` is incremental: shards whose files are unchanged are
    skipped, new files are processed, and the rows of removed or modified files are retired,
    so that every input object is in the catalogue or the errors exactly once. A different
    model is refused once ``out`` holds a published shard (unless ``config.restart``).

    Returns:
        The run's summary (objects catalogued and failed in this run, shards, time).

    Raises:
        ValueError: for a model folder with broken weights, or another model than the one
            that made ``out``'s catalogue.
        RuntimeError: when another run holds ``out``.
    """
    import ray  # lazy: ray
    import ray.data  # lazy: ray

    started = time.perf_counter()
    out = Path(out).resolve()
    if not config.model:
        raise ValueError("InferConfig.model is empty: train a model first (see train_model)")
    model_dir = str(Path(config.model).resolve())
    if not Path(model_dir, "config.json").is_file():
        raise FileNotFoundError(f"{config.model}: not a saved model folder (no config.json)")
    _check_weights(model_dir)  # before anything is written: a broken model binds nothing
    kind = predictor_kind(model_dir)
    digest = model_hash(model_dir)
    with _RunLock(out):
        if config.restart:
            _wipe(out)
        paths = config.input_paths(out / "input")
        plan = plan_read(list(paths), format=config.format, kind=None,
                         labels=list(config.labels) or None).for_kind(kind)
        manifest = {"version": _RECORD_VERSION, "model": model_dir, "model_hash": digest,
                    "kind": kind, "embedding": bool(config.embedding),
                    "paths": [str(p) for p in paths], "format": config.format,
                    "labels": [str(p) for p in config.labels]}
        staging = out / "_staging" / uuid.uuid4().hex[:12]
        book = _Shards(out, staging, digest)
        records = book.records()
        _check_same_model(out, manifest, records)
        _write_json_atomic(manifest, out / "_state" / "manifest.json")
        if plan.errors:  # files that could not even be planned (missing, unknown format)
            _write_atomic(error_table(plan.errors), out / "errors" / "plan.parquet")
        else:
            (out / "errors" / "plan.parquet").unlink(missing_ok=True)
        kept, retired, pool = _reconcile(records, _fingerprints(plan.units))
        for shard in retired:
            book.retire(shard)
        book.sweep()
        pending = _group(pool, config.files_per_shard)
        for s in pending:
            book.expect(s["shard"], s["fingerprints"])
        catalogued = failed = 0
        if pending:
            check_actor_pool("InferConfig", config.num_actors, config.actor_cpus,
                             config.task_cpus)
            items = [{"shard": s["shard"], "units": s["units"]} for s in pending]
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            # Read and write stages are tasks: they get instances (cheap to ship), not classes.
            ds = ds.map_batches(ReadShard(kind, str(staging)), batch_size=1,
                                batch_format="numpy", num_cpus=config.task_cpus,
                                compute=ray.data.TaskPoolStrategy())
            ds = ds.map_batches(
                PredictBatch, fn_constructor_args=(model_dir,),
                fn_constructor_kwargs={"embedding": config.embedding, "model_hash": digest,
                                       "out": str(out), "fail_objects": config.fail_objects,
                                       "crash_after_batches": config.crash_after_batches},
                batch_size=config.batch_size, batch_format="numpy",
                **config.actor_pool(use_gpu=gpu_available(1)))
            ds = ds.map_batches(WriteParts(str(staging), kind), batch_size=None,
                                batch_format="pyarrow", num_cpus=0.1,
                                compute=ray.data.TaskPoolStrategy())
            bar = _progress(progress)
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                for shard, c, f in zip(batch.column("shard").to_pylist(),
                                       batch.column("catalogued").to_pylist(),
                                       batch.column("failed").to_pylist(), strict=True):
                    book.add(shard, c, f)
                    catalogued += c
                    failed += f
                    bar(c + f)
            bar(0, close=True)
        for s in pending:  # shards with no readable object publish only their errors
            if not book.try_publish(s["shard"]):
                raise RuntimeError(f"shard {s['shard']} is incomplete after the run: "
                                   f"{book.counts[s['shard']]} rows")
        shutil.rmtree(out / "_staging", ignore_errors=True)
        read_failed = sum(book.published[s["shard"]]["failed"] for s in pending) - failed
        n_dup, dup_rows = _duplicates(out, set(kept) | {s["shard"] for s in pending})
        summary = InferSummary(
            catalogued=catalogued, failed=failed + read_failed + len(plan.errors),
            shards=len(kept) + len(pending), shards_skipped=len(kept),
            seconds=round(time.perf_counter() - started, 2), out=str(out),
            model=Path(model_dir).name, model_hash=digest, shards_retired=len(retired),
            duplicate_ids=n_dup, duplicate_rows=dup_rows)
        _write_json_atomic({**manifest, "summary": summary.to_dict()},
                           out / "_state" / "last.json")
    return summary


def _progress(enabled: bool):
    """A progress bar with objects/s (tqdm on stderr), or a no-op."""
    if not enabled:
        return lambda n, close=False: None

    bar = progress(None, "infer")

    def update(n: int, close: bool = False) -> None:
        bar.update(n)
        if close:
            bar.close()
    return update

def ensure_model(config: InferConfig, out: str | Path) -> tuple[InferConfig, dict[str, Any]]:
    """``config`` with a model: the given one, or one trained now (or by an earlier run).

    A model trained here is saved as ``out/train/model`` and reused when the run is resumed,
    so that a re-run infers with the same checkpoint.
    """
    if config.model:  # a published name (astromer1-macho) becomes its converted folder

        return config.replace(model=resolve_model_path(config.model)), {}

    folder = Path(out).resolve() / "train"
    record = folder / "trained.json"
    if record.is_file() and Path(json.loads(record.read_text())["dir"], "config.json").is_file():
        trained = json.loads(record.read_text())
    else:
        trained = fit_classifier(config.train, folder)
        _write_json_atomic(trained, record)
    return config.replace(model=trained["dir"]), trained


def run_job(config: InferConfig, out: str | Path, *, smoke: bool, started: float,
            progress: bool = True) -> InferSummary:
    """``astroray infer`` / ``jobs/bulk_infer.py``: model, inference, summary, results.json."""
    config, trained = ensure_model(config, out)
    summary = run_inference(config, out, progress=progress)
    print(summary.line())
    cat, err = read_catalogue(out)
    scored = score_catalogue(cat, config.model)
    if scored.classes and scored.line():
        print(f"infer: {scored.line()}")
    classes = {}
    if "predicted_class" in cat.column_names:
        values, counts = np.unique(cat.column("predicted_class").to_numpy(zero_copy_only=False),
                                   return_counts=True)
        classes = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    write_results(out, "bulk_infer",
                  metrics={**summary.to_dict(), "catalogue_rows": cat.num_rows,
                           "error_rows": err.num_rows, "predicted_classes": classes,
                           "held_out": scored.to_dict(),
                           "trained": {k: v for k, v in trained.items() if k != "data"}},
                  data={"paths": json.loads((Path(out) / "_state" / "manifest.json")
                                            .read_text())["paths"],
                        "catalogue": str(Path(out) / "catalogue"),
                        "errors": str(Path(out) / "errors"),
                        "duplicates": (str(Path(out) / "duplicates.parquet")
                                       if summary.duplicate_ids else None)},
                  model={"dir": config.model, "hash": summary.model_hash},
                  config=config.to_dict(), smoke=smoke, started=started)
    return summary
