"""Bulk inference: survey files -> one streaming Ray Data pipeline -> a Parquet catalogue.

::

    files --plan--> shards --[read + normalise: CPU tasks]--> canonical rows
          --[model actors: render/window + model + heads]--> catalogue rows | failures
          --[write parts: CPU tasks]--> OUT/_staging/<shard>/ --driver--> OUT/catalogue/shard=<id>/

The unit of work, of resumption and of atomic publication is the *shard*: a group of input
files (``files_per_shard``) named by its position and a digest of its paths. A read task
records how many objects its shard holds (``_staging/<shard>/read.json``) and writes the
records it could not read to the shard's errors. Writer tasks write catalogue and error parts
under deterministic names (a digest of the rows' ids), so a retried task overwrites rather
than duplicates. When every object of a shard is accounted for, the driver moves the shard's
parts into ``catalogue/shard=<id>/`` and ``errors/shard=<id>/`` (directory renames: atomic on
local and POSIX filesystems) and then writes ``_state/done/<id>.json``. A restarted run skips
done shards and wipes the partial output of the others first, so nothing is reprocessed twice
and no row is duplicated; files starting with ``_`` or ``.`` are invisible to Parquet readers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astroray.config import Config, check, check_inputs, check_positive_ints
from astroray.data.registry import ReadUnit, iter_blocks, plan_read
from astroray.data.schema import ERROR_SCHEMA, error_table
from astroray.data.synthetic import SyntheticSurveyConfig

__all__ = ["InferConfig", "InferSummary", "ensure_model", "read_catalogue", "run_inference",
           "run_job"]

logger = logging.getLogger(__name__)

_META = ("_shard", "_error", "_stage")
#: Input columns carried into the catalogue when the inputs have them: the known label (and
#: its original spelling), the position (deg, ICRS) and the catalogue period (days).
CARRIED = (("label", pa.string()), ("label_raw", pa.string()), ("ra", pa.float64()),
           ("dec", pa.float64()), ("period", pa.float64()))


@dataclasses.dataclass
class InferConfig(Config):
    """Settings of ``astroray infer`` / ``jobs/bulk_infer.py``.

    Attributes:
        model: a saved model folder (any family with a registered predictor); empty: train
            one first with ``train`` (saved as ``OUT/model``).
        paths: survey files/folders (any supported format) or canonical Parquet.
        optional_paths: the same, used when present (the real samples).
        synthetic: a synthetic survey generated into ``OUT/input`` and added to the inputs.
        train: how to train the model when ``model`` is empty: a classification config (its
            first data set trains the head), or the path of its YAML.
        format: reader for every file; None sniffs each file.
        labels: label tables joined to the objects (kept as ``label`` in the catalogue).
        files_per_shard: input files per shard (the unit of resumption).
        batch_size: objects per model call.
        num_actors: model actors (one per GPU on a GPU cluster).
        actor_cpus: CPUs per model actor (its torch threads on a CPU machine).
        read_cpus: CPUs per read task (fractional: leaves room for the actors).
        use_gpu: one GPU per actor; None: when the cluster has one.
        embedding: add the model's embedding column.
        fail_objects: test hook: the model raises on any batch holding one of these ids.
        crash_after_batches: test hook: the first model actor exits abruptly after this many
            batches (once per run folder), as a dying worker would.
    """

    model: str = ""
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: SyntheticSurveyConfig | None = None
    train: Any = None
    format: str | None = None
    labels: tuple[str, ...] = ()
    files_per_shard: int = 256
    batch_size: int = 256
    num_actors: int = 1
    actor_cpus: float = 1.0
    read_cpus: float = 0.5
    use_gpu: bool | None = None
    embedding: bool = False
    fail_objects: tuple[str, ...] = ()
    crash_after_batches: int | None = None

    def __post_init__(self) -> None:
        from astroray.train.classify import ClassifyConfig

        self.labels = tuple(self.labels)
        self.fail_objects = tuple(str(v) for v in self.fail_objects)
        if isinstance(self.train, str):
            check(Path(self.train).is_file(), self, "train", self.train,
                  "a classification mapping or an existing YAML file")
            self.train = ClassifyConfig.from_file(self.train)
        elif isinstance(self.train, dict):
            self.train = ClassifyConfig.from_dict(self.train)
        check(self.train is None or isinstance(self.train, ClassifyConfig), self, "train",
              self.train, "a ClassifyConfig mapping, a YAML path or null")
        check(isinstance(self.model, str) and (self.model != "" or self.train is not None),
              self, "model", self.model, "a saved model folder (or a train configuration)")
        check_inputs(self)
        check_positive_ints(self, "files_per_shard", "batch_size", "num_actors")
        for name in ("actor_cpus", "read_cpus"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value > 0, self, name, value,
                  "a positive number")
        check(self.crash_after_batches is None or (isinstance(self.crash_after_batches, int)
                                                   and self.crash_after_batches > 0),
              self, "crash_after_batches", self.crash_after_batches, "null or a positive integer")

    def smoke(self) -> InferConfig:
        """This configuration shrunk to run in a couple of minutes on 2 CPUs."""
        synthetic = self.synthetic and self.synthetic.replace(n=min(self.synthetic.n, 300))
        train = self.train and self.train.smoke()
        return self.replace(synthetic=synthetic, train=train,
                            files_per_shard=min(self.files_per_shard, 64))

    def input_paths(self, workdir: str | Path) -> tuple[str, ...]:
        """The inputs: ``paths``, the optional ones present, and the synthetic survey.

        The synthetic survey is generated once into ``workdir/synthetic`` (seeded, so that a
        re-run reads the same files).
        """
        paths = list(self.paths) + [p for p in self.optional_paths if Path(p).exists()]
        if self.synthetic is not None:
            from astroray.data.synthetic import make_survey

            folder = Path(workdir) / "synthetic"
            marker = folder / "_GENERATED.json"
            spec = self.synthetic.to_dict()
            if not marker.is_file() or json.loads(marker.read_text()) != spec:
                shutil.rmtree(folder, ignore_errors=True)
                make_survey(self.synthetic, folder)
                _write_json_atomic(spec, marker)
            paths.append(str(folder))
        return tuple(paths)


@dataclasses.dataclass
class InferSummary:
    """What a run did: objects catalogued and failed, shards done and skipped, time."""

    catalogued: int
    failed: int
    shards: int
    shards_skipped: int
    seconds: float
    out: str
    model: str
    model_hash: str

    @property
    def objects(self) -> int:
        """Objects accounted for in this run (catalogued + failed)."""
        return self.catalogued + self.failed

    def line(self) -> str:
        """The one-line summary printed at the end."""
        rate = self.objects / self.seconds if self.seconds > 0 else 0.0
        skipped = f", {self.shards_skipped} already done" if self.shards_skipped else ""
        return (f"infer: {self.model} ({self.model_hash}): catalogued {self.catalogued}, "
                f"failed {self.failed} ({self.shards} shard(s){skipped}; {self.seconds:.1f} s, "
                f"{rate:.0f} objects/s) -> {self.out}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {**dataclasses.asdict(self), "objects": self.objects}


# ------------------------------------------------------------------------------------------
# Shards and files
# ------------------------------------------------------------------------------------------


def _shards(units: list[ReadUnit], files_per_shard: int) -> list[dict[str, Any]]:
    """Group read units into shards of about ``files_per_shard`` files, named stably."""
    shards, current, n_files = [], [], 0
    for unit in units:
        current.append(unit)
        n_files += len(unit.paths)
        if n_files >= files_per_shard:
            shards.append(current)
            current, n_files = [], 0
    if current:
        shards.append(current)
    out = []
    for i, group in enumerate(shards):
        h = hashlib.sha1("\0".join(p for u in group for p in u.paths).encode()).hexdigest()
        out.append({"shard": f"{i:05d}-{h[:10]}",
                    "units": json.dumps([dataclasses.asdict(u) for u in group])})
    return out


def _write_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file under a hidden temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _write_json_atomic(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _digest_ids(ids: list[str]) -> str:
    return hashlib.sha1("\0".join(sorted(ids)).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------
# Pipeline stages (callable classes for map_batches)
# ------------------------------------------------------------------------------------------


class ReadShard:
    """Read task: a shard descriptor -> its canonical objects (plus ``_shard``).

    Records that cannot be read go to the shard's staged errors; the object count goes to
    ``_staging/<shard>/read.json`` so that the driver knows when the shard is complete.
    """

    def __init__(self, kind: str, out: str):
        self.kind, self.staging = kind, Path(out) / "_staging"

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        tables = []
        for shard, units_json in zip(batch["shard"], batch["units"], strict=True):
            units = [ReadUnit(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in u.items()}) for u in json.loads(units_json)]
            errors: list[dict[str, Any]] = []
            n = 0
            for table, errs in iter_blocks(units, self.kind):
                errors.extend(errs)
                if table.num_rows:
                    n += table.num_rows
                    tables.append(table.append_column("_shard", pa.array(
                        [str(shard)] * table.num_rows, type=pa.string())))
            folder = self.staging / str(shard)
            if errors:
                _write_atomic(error_table(errors), folder / "err-read.parquet")
            _write_json_atomic({"objects": n, "read_errors": len(errors)}, folder / "read.json")
        if not tables:
            return pa.table({"object_id": pa.array([], pa.string()),
                             "_shard": pa.array([], pa.string())})
        return pa.concat_tables(tables, promote_options="default")


class PredictBatch:
    """Model actor: canonical objects -> catalogue rows, or failure rows naming the reason.

    A batch the model fails on as a whole is retried object by object, so that one bad object
    costs only itself.
    """

    def __init__(self, model: str, *, embedding: bool, model_hash: str, out: str | None,
                 fail_objects: tuple[str, ...] = (), crash_after_batches: int | None = None,
                 device: str | None = None, predictor: Any = None):
        from astroray.infer.predictors import get_predictor

        # ``predictor``: one already loaded (astroray.predict in process); else the folder's.
        self.predictor = predictor or get_predictor(model, embedding=embedding, device=device)
        self.model_name, self.model_hash = Path(model).name, model_hash
        self.fail_objects = set(fail_objects)
        self.crash_after = crash_after_batches
        self.crash_marker = Path(out or ".") / "_state" / "crashed-once"
        self.batches = 0

    def _predict(self, batch: dict[str, np.ndarray], ids: np.ndarray
                 ) -> tuple[pa.Table, dict[str, str]]:
        bad = self.fail_objects.intersection(ids.tolist())
        if bad:
            raise RuntimeError(f"injected model failure on {sorted(bad)}")
        pred = self.predictor(batch)
        return pred.table, pred.failures

    def _maybe_crash(self) -> None:
        self.batches += 1
        if self.crash_after is not None and self.batches >= self.crash_after:
            try:  # exactly once per run folder, across actor restarts
                fd = os.open(self.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
            logger.warning("test hook: model actor exits abruptly after %d batches",
                           self.batches)
            os._exit(1)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        import torch

        ids = np.asarray(batch["object_id"]).astype(str)
        n = len(ids)
        if n == 0:
            return _output([], {}, batch, self)
        self._maybe_crash()
        # The predictor sees row positions as ids: object ids are unique within a survey
        # only, and one batch may hold the same object from two files.
        work = {**batch, "object_id": np.array([str(i) for i in range(n)], dtype=object)}
        with torch.inference_mode():
            try:
                table, failures = self._predict(work, ids)
                parts = [table]
            except Exception as exc:  # isolate the culprit: one object at a time
                logger.warning("model failed on a batch of %d (%s); retrying one by one", n,
                               exc)
                parts, failures = [], {}
                for i in range(n):
                    one = {k: v[i:i + 1] for k, v in work.items()}
                    try:
                        t, f = self._predict(one, ids[i:i + 1])
                        parts.append(t)
                        failures.update(f)
                    except Exception as err:
                        failures[str(i)] = f"{type(err).__name__}: {err}"
        return _output(parts, failures, batch, self)


def _output(parts: list[pa.Table], failures: dict[str, str], batch: dict[str, np.ndarray],
            stage: PredictBatch) -> pa.Table:
    """Catalogue rows (with object metadata) and failure rows, in one table.

    ``parts`` and ``failures`` are keyed by row position in ``batch`` (as text).
    """
    ids = np.asarray(batch["object_id"]).astype(str)
    rows = pa.concat_tables(parts, promote_options="default") if parts else None
    done = [] if rows is None else [int(k) for k in rows.column("object_id").to_pylist()]
    failed = {int(k): v for k, v in failures.items()}
    for i in sorted(set(range(len(ids))) - set(done) - set(failed)):
        failed[i] = "the model returned no row for this object"  # never lose one
    tables = []
    if done:
        take = pa.array(done, pa.int64())
        n = len(done)
        cols = {"object_id": pa.array(ids[done], pa.string()),
                "survey": pa.array(batch["survey"].astype(str)).take(take),
                "source": pa.array(list(batch["source"]), type=pa.string()).take(take)}
        for name, type_ in CARRIED:  # what the inputs say of the object, kept beside
            if name in batch:
                cols[name] = pa.array(list(batch[name]), type=type_, from_pandas=True).take(take)
        cols.update({"model": pa.array([stage.model_name] * n, pa.string()),
                     "model_hash": pa.array([stage.model_hash] * n, pa.string()),
                     **{c: rows.column(c) for c in rows.column_names if c != "object_id"},
                     "_shard": pa.array(batch["_shard"].astype(str)).take(take),
                     "_error": pa.nulls(n, pa.string()), "_stage": pa.nulls(n, pa.string())})
        tables.append(pa.table(cols))
    if failed:
        rows_f = sorted(failed)
        n = len(rows_f)
        tables.append(pa.table({
            "object_id": pa.array(ids[rows_f], pa.string()),
            "source": pa.array([batch["source"][i] for i in rows_f], pa.string()),
            "_shard": pa.array([str(batch["_shard"][i]) for i in rows_f], pa.string()),
            "_error": pa.array([f"{ids[i]}: {failed[i]}" for i in rows_f], pa.string()),
            "_stage": pa.array(["model"] * n, pa.string())}))
    if not tables:
        return pa.table({"object_id": pa.array([], pa.string()),
                         "_shard": pa.array([], pa.string()),
                         "_error": pa.array([], pa.string())})
    return pa.concat_tables(tables, promote_options="default")


class WriteParts:
    """Writer task: model output -> staged catalogue / error parts; returns counts per shard."""

    def __init__(self, out: str, kind: str):
        self.staging, self.kind = Path(out) / "_staging", kind

    def __call__(self, batch: pa.Table) -> pa.Table:
        shards = batch.column("_shard").to_pylist() if batch.num_rows else []
        errs = (batch.column("_error").is_valid().to_numpy(zero_copy_only=False)
                if batch.num_rows else np.zeros(0, bool))
        summary = defaultdict(lambda: [0, 0])
        for shard in sorted(set(shards)):
            in_shard = np.array([s == shard for s in shards])
            good = batch.filter(pa.array(in_shard & ~errs))
            bad = batch.filter(pa.array(in_shard & errs))
            folder = self.staging / shard
            if good.num_rows:
                ids = [f"{s}\0{i}" for s, i in zip(good.column("source").to_pylist(),
                                                   good.column("object_id").to_pylist(),
                                                   strict=True)]
                keep = [c for c in good.column_names if c not in _META]
                # Drop all-null columns of failure rows' schema promotion (never in good rows).
                _write_atomic(good.select(keep), folder / f"cat-{_digest_ids(ids)}.parquet")
            if bad.num_rows:
                ids = [f"{s}\0{i}" for s, i in zip(bad.column("source").to_pylist(),
                                                   bad.column("object_id").to_pylist(),
                                                   strict=True)]
                table = pa.table({"source": bad.column("source"), "object_id": bad.column(
                    "object_id"), "stage": bad.column("_stage"), "error": bad.column("_error"),
                    "kind": pa.array([self.kind] * bad.num_rows, pa.string())},
                    schema=ERROR_SCHEMA)
                _write_atomic(table, folder / f"err-{_digest_ids(ids)}.parquet")
            summary[shard] = [good.num_rows, bad.num_rows]
        return pa.table({"shard": pa.array(list(summary), pa.string()),
                         "catalogued": pa.array([v[0] for v in summary.values()], pa.int64()),
                         "failed": pa.array([v[1] for v in summary.values()], pa.int64())})


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


class _Shards:
    """The driver's book-keeping: counts per shard, and publication when complete."""

    def __init__(self, out: Path):
        self.out = out
        self.staging, self.done_dir = out / "_staging", out / "_state" / "done"
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.published: dict[str, dict[str, int]] = {}

    def is_done(self, shard: str) -> bool:
        return (self.done_dir / f"{shard}.json").is_file()

    def reset(self, shard: str) -> None:
        """Forget the partial output of a shard that is not done (a restarted run)."""
        for folder in (self.staging / shard, self.out / "catalogue" / f"shard={shard}",
                       self.out / "errors" / f"shard={shard}"):
            shutil.rmtree(folder, ignore_errors=True)

    def add(self, shard: str, catalogued: int, failed: int) -> None:
        self.counts[shard][0] += catalogued
        self.counts[shard][1] += failed
        self.try_publish(shard)

    def try_publish(self, shard: str) -> bool:
        if shard in self.published:
            return True
        read = self.staging / shard / "read.json"
        if not read.is_file():
            return False
        info = json.loads(read.read_text())
        cat, failed = self.counts[shard]
        if cat + failed < info["objects"]:
            return False
        if cat + failed > info["objects"]:  # would be a duplicate: never publish it
            raise RuntimeError(f"shard {shard}: {cat + failed} rows for {info['objects']} "
                               "objects read")
        staged = self.staging / shard
        for prefix, dest in (("cat-", "catalogue"), ("err-", "errors")):
            files = sorted(staged.glob(f"{prefix}*.parquet"))
            if not files:
                continue
            tmp = self.out / dest / f".shard={shard}.{uuid.uuid4().hex}"
            tmp.mkdir(parents=True)
            for f in files:
                os.replace(f, tmp / f.name)
            final = self.out / dest / f"shard={shard}"
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        record = {"catalogued": cat, "failed": failed + info["read_errors"]}
        _write_json_atomic(record, self.done_dir / f"{shard}.json")
        shutil.rmtree(staged, ignore_errors=True)
        self.published[shard] = record
        return True


def run_inference(config: InferConfig, out: str | Path, *, progress: bool = True
                  ) -> InferSummary:
    """Run bulk inference; writes ``out/catalogue/`` and ``out/errors/`` (Parquet).

    Re-running with the same arguments and ``out`` resumes: finished shards are skipped.

    Returns:
        The run's summary (objects catalogued and failed in this run, shards, time).
    """
    import ray
    import ray.data

    from astroray.infer.predictors import model_hash, predictor_kind
    from astroray.runtime import check_actor_pool

    started = time.perf_counter()
    out = Path(out).resolve()
    if not config.model:
        raise ValueError("InferConfig.model is empty: train a model first (see train_model)")
    model_dir = str(Path(config.model).resolve())
    if not Path(model_dir, "config.json").is_file():
        raise FileNotFoundError(f"{config.model}: not a saved model folder (no config.json)")
    kind = predictor_kind(model_dir)
    digest = model_hash(model_dir)
    paths = config.input_paths(out / "input")
    plan = plan_read(list(paths), format=config.format, kind=None,
                     labels=list(config.labels) or None).for_kind(kind)
    manifest = {"model": model_dir, "model_hash": digest, "kind": kind,
                "paths": [str(p) for p in paths], "format": config.format}
    manifest_path = out / "_state" / "manifest.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old != manifest:
            raise ValueError(f"{out} holds a run with other arguments ({old}); use another "
                             "--out or remove it")
    _write_json_atomic(manifest, manifest_path)
    if plan.errors:  # files that could not even be planned (missing, unknown format)
        _write_atomic(error_table(plan.errors), out / "errors" / "plan.parquet")
    book = _Shards(out)
    shards = _shards(plan.units, config.files_per_shard)
    pending = [s for s in shards if not book.is_done(s["shard"])]
    for s in pending:
        book.reset(s["shard"])
    catalogued = failed = 0
    if pending:
        check_actor_pool("InferConfig", config.num_actors, config.actor_cpus,
                         config.read_cpus)
        gpus = config.use_gpu
        if gpus is None:
            gpus = ray.cluster_resources().get("GPU", 0) >= 1
        ds = ray.data.from_items(pending, override_num_blocks=len(pending))
        # Read and write stages are tasks: they get instances (cheap to ship), not classes.
        ds = ds.map_batches(ReadShard(kind, str(out)), batch_size=1,
                            batch_format="numpy", num_cpus=config.read_cpus,
                            compute=ray.data.TaskPoolStrategy())
        ds = ds.map_batches(
            PredictBatch, fn_constructor_args=(model_dir,),
            fn_constructor_kwargs={"embedding": config.embedding, "model_hash": digest,
                                   "out": str(out), "fail_objects": config.fail_objects,
                                   "crash_after_batches": config.crash_after_batches},
            batch_size=config.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=config.num_actors),
            num_cpus=config.actor_cpus, num_gpus=1 if gpus else 0)
        ds = ds.map_batches(WriteParts(str(out), kind), batch_size=None,
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
    read_failed = sum(book.published[s["shard"]]["failed"] for s in pending) - failed
    summary = InferSummary(catalogued=catalogued, failed=failed + read_failed + len(plan.errors),
                           shards=len(shards), shards_skipped=len(shards) - len(pending),
                           seconds=round(time.perf_counter() - started, 2), out=str(out),
                           model=Path(model_dir).name, model_hash=digest)
    _write_json_atomic({**manifest, "summary": summary.to_dict()}, out / "_state" / "last.json")
    return summary


def _progress(enabled: bool):
    """A progress bar with objects/s (tqdm on stderr), or a no-op."""
    if not enabled:
        return lambda n, close=False: None
    from astroray.runtime import progress

    bar = progress(None, "infer")

    def update(n: int, close: bool = False) -> None:
        bar.update(n)
        if close:
            bar.close()
    return update


def read_catalogue(out: str | Path) -> tuple[pa.Table, pa.Table]:
    """The published catalogue and errors tables of a run folder (empty when absent)."""
    out = Path(out)
    tables = []
    for name in ("catalogue", "errors"):
        folder = out / name
        files = sorted(p for p in folder.rglob("*.parquet")
                       if not any(part.startswith((".", "_")) for part in
                                  p.relative_to(folder).parts)) if folder.is_dir() else []
        parts = [pq.read_table(f) for f in files]
        if parts:
            tables.append(pa.concat_tables(parts, promote_options="default"))
        else:
            tables.append(error_table([]) if name == "errors" else pa.table({}))
    return tables[0], tables[1]


def ensure_model(config: InferConfig, out: str | Path) -> tuple[InferConfig, dict[str, Any]]:
    """``config`` with a model: the given one, or one trained now (or by an earlier run).

    A model trained here is saved as ``out/train/model`` and reused when the run is resumed,
    so that a re-run infers with the same checkpoint.
    """
    if config.model:  # a published name (astromer1-macho) becomes its converted folder
        from astroray.models import resolve_model_path

        return config.replace(model=resolve_model_path(config.model)), {}
    from astroray.train.classify import fit_classifier

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
    from astroray.infer.scoring import score_catalogue
    from astroray.runtime import write_results

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
                        "errors": str(Path(out) / "errors")},
                  model={"dir": config.model, "hash": summary.model_hash},
                  config=config.to_dict(), smoke=smoke, started=started)
    return summary
