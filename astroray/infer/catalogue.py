"""Bulk inference: survey files -> one streaming Ray Data pipeline -> a Parquet catalogue.

::

    files --plan--> shards --[read + normalise: CPU tasks]--> canonical rows
          --[model actors: render/window + model + heads]--> catalogue rows | failures
          --[write parts: CPU tasks]--> OUT/_staging/<run>/<shard>/
          --driver--> OUT/catalogue/shard=<id>/ + OUT/errors/shard=<id>/ + _state/done/<id>.json

Exactly once, by input object, whatever changed between runs
-------------------------------------------------------------

The unit of work, of resumption and of atomic publication is the *shard*: a group of read
units (input files read together). A shard is named by its *content*: a digest of its own
units' fingerprints (reader, kind, sorted paths with size and mtime, and the same for the
label tables joined to them), never by its position among the inputs. Its record,
``_state/done/<id>.json``, is the commit point of its publication and the run manifest of what
it covers: the fingerprints of its units, its row counts and the model hash. A run:

1. plans the inputs into read units and fingerprints them (one ``stat`` per file);
2. keeps every published shard whose units are all still planned with the same fingerprints:
   its files are finished and skipped;
3. *retires* every other published shard (a file of it was removed, modified, renamed, or
   re-grouped by its reader): record deleted first, then its folders, so that its rows are
   never counted twice nor left published without a record;
4. groups the units no kept shard covers (new files, and the surviving files of retired
   shards) into new shards of about ``files_per_shard`` files, in path order.

Grouping only what no kept shard covers (rather than re-cutting all inputs by position or by
hash buckets) keeps a published shard valid as long as its own files are untouched, whatever
is added or removed elsewhere; re-runs process only new or changed files (and the siblings of
removed ones); and shards stay about ``files_per_shard`` files however the inputs grow (hash
buckets of a fixed count would grow without bound). A modified file is noticed by its size or
mtime (as ``make`` and ``rsync`` do; contents are not hashed, which would mean reading every
input on every run). Renaming a folder changes every ``source``, so its shards are redone.
A label table edited beside the data retires the shards it labels (their ``label`` column
would be stale otherwise).

A read task records how many objects its shard holds (``read.json`` in its staging folder)
and writes the records it could not read to the shard's errors. Writer tasks write catalogue
and error parts under deterministic names (a digest of the rows' ids), so a retried task
overwrites rather than duplicates. Staging folders are per run (``_staging/<run>/``), so that
a task of a killed run still writing cannot slip parts into a later run's shard. When every
object of a shard is accounted for (and the staged parts hold exactly that many rows), the
driver moves its parts into ``catalogue/shard=<id>/`` and ``errors/shard=<id>/`` (directory
renames: atomic on local and POSIX filesystems), then writes the record. A restarted run
deletes any ``shard=`` folder without a record (the leftovers of a kill), and
:func:`read_catalogue` reads only recorded shards. Files starting with ``_`` or ``.`` are
invisible to Parquet readers. A lock (``_state/lock``) refuses two runs on one folder at once.

``_state/manifest.json`` says which model and options made the catalogue. Changed *inputs*
are a normal incremental re-run. A changed *model* (another content hash) or ``embedding``
setting is refused once the folder holds a published shard, since one catalogue holds one
model's rows; ``restart=True`` discards the folder's catalogue first. The weights are checked
before anything is written, and a folder with nothing published takes any model, so a model
repaired after a failed run is accepted.

Duplicate object ids
--------------------

Rows are keyed by input: one row per object read from an input file, so that every input id
ends up once in the catalogue or the errors. An object whose ``(survey, object_id)`` comes
from two inputs (the same star in two files, two spectra of one galaxy, an alert and its
stamp) has two rows: they are different inputs, whose data may differ, and neither is dropped
nor demoted to an error, which would depend on which file is read first and change when files
are added. They are detected over the whole published catalogue at the end of every run,
counted in the summary line and ``results.json`` (``duplicate_ids``: objects with 2+ rows;
``duplicate_rows``: rows beyond the first of each) and listed in ``OUT/duplicates.parquet``
(``survey``, ``object_id``, ``n_rows``, ``sources``), so that a user can choose one row per
object. A file that repeats a record is treated alike (its two rows are listed with the same
source twice): telling it apart from two inputs would need the input file of every row, which
canonical Parquet rows do not carry (their ``source`` is the provenance, often null), and a rule
that depended on how files fall into shards would change between runs.

Model outputs that are not finite (a probability, redshift or score of NaN or inf, which
inputs beyond float32 after centring produce) are failures naming the reason, never rows.
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astroray.config import Config, check, check_positive_ints
from astroray.data.inputs import check_inputs, resolve_inputs
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
        restart: discard the run folder's catalogue, errors and state first (what it takes to
            change the model of a folder that holds a published catalogue).
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
    restart: bool = False

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
        check(isinstance(self.restart, bool), self, "restart", self.restart, "true or false")

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
        return tuple(resolve_inputs(self.paths, self.optional_paths, self.synthetic, workdir,
                                    to_parquet=False).paths)


@dataclasses.dataclass
class InferSummary:
    """What a run did: objects catalogued and failed, shards done and skipped, time.

    ``catalogued`` and ``failed`` count this run's work (objects of kept shards are not
    counted again); ``shards_retired`` counts published shards withdrawn because their files
    changed; ``duplicate_ids`` / ``duplicate_rows`` describe the whole published catalogue
    (objects whose ``(survey, object_id)`` has 2+ rows, and the rows beyond the first).
    """

    catalogued: int
    failed: int
    shards: int
    shards_skipped: int
    seconds: float
    out: str
    model: str
    model_hash: str
    shards_retired: int = 0
    duplicate_ids: int = 0
    duplicate_rows: int = 0

    @property
    def objects(self) -> int:
        """Objects accounted for in this run (catalogued + failed)."""
        return self.catalogued + self.failed

    def line(self) -> str:
        """The one-line summary printed at the end."""
        rate = self.objects / self.seconds if self.seconds > 0 else 0.0
        skipped = f", {self.shards_skipped} already done" if self.shards_skipped else ""
        retired = (f", {self.shards_retired} retired (inputs changed)" if self.shards_retired
                   else "")
        dup = (f"; {self.duplicate_ids} object id(s) in 2+ inputs, {self.duplicate_rows} "
               "extra row(s) kept: see duplicates.parquet" if self.duplicate_ids else "")
        return (f"infer: {self.model} ({self.model_hash}): catalogued {self.catalogued}, "
                f"failed {self.failed} ({self.shards} shard(s){skipped}{retired}; "
                f"{self.seconds:.1f} s, {rate:.0f} objects/s){dup} -> {self.out}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {**dataclasses.asdict(self), "objects": self.objects}


# ------------------------------------------------------------------------------------------
# Shards and files
# ------------------------------------------------------------------------------------------


#: Version of the shard records (``_state/done/<id>.json``); records of other versions
#: (older run folders) do not say which files they cover and are retired.
_RECORD_VERSION = 2


def _stat(paths: list[str]) -> dict[str, list[int]]:
    """``[size, mtime_ns]`` of each path; ``[-1, -1]`` for one that cannot be read."""
    from astroray.data import _io

    def one(path: str) -> list[int]:
        try:
            if _io.is_uri(path) and not path.startswith("file://"):
                fs, inner = _io.resolve(path)
                info = fs.get_file_info(inner)
                return [int(info.size if info.size is not None else -1),
                        int(info.mtime_ns if info.mtime_ns is not None else -1)]
            st = os.stat(path[len("file://"):] if path.startswith("file://") else path)
            return [int(st.st_size), int(st.st_mtime_ns)]
        except (OSError, ValueError):  # vanished since planning: its read is an error row
            return [-1, -1]

    unique = sorted(set(paths))
    if any("://" in p for p in unique):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=16) as pool:  # remote stats are latency bound
            return dict(zip(unique, pool.map(one, unique), strict=True))
    return {p: one(p) for p in unique}


def _fingerprints(units: list[ReadUnit]) -> list[dict[str, Any]]:
    """What identifies each read unit's content.

    Reader, kind, files and label tables, each file with its size and mtime; JSON-ready, so
    that a record read back compares equal.
    """
    stats = _stat([p for u in units for p in (*u.paths, *u.labels)])
    # The planner's order is kept: label tables are searched nearest first.
    return [{"format": u.format, "kind": u.kind,
             "paths": [[p, *stats[p]] for p in u.paths],
             "labels": [[p, *stats[p]] for p in u.labels],
             "explicit_labels": bool(u.explicit_labels)} for u in units]


def _unit_key(fingerprint: dict[str, Any]) -> str:
    return json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))


def _unit_of(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The :class:`ReadUnit` fields of a fingerprint (what a read task rebuilds the unit from)."""
    return {"format": fingerprint["format"], "paths": [p[0] for p in fingerprint["paths"]],
            "kind": fingerprint["kind"], "labels": [p[0] for p in fingerprint["labels"]],
            "explicit_labels": fingerprint["explicit_labels"]}


def _shard_id(fingerprints: list[dict[str, Any]]) -> str:
    """A shard's name: a digest of its own units' fingerprints (content, not position)."""
    text = "\n".join(sorted(_unit_key(f) for f in fingerprints))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _group(fingerprints: list[dict[str, Any]], files_per_shard: int) -> list[dict[str, Any]]:
    """New shards of about ``files_per_shard`` files from the units no kept shard covers.

    Units are taken in path order (a unit's files stay together), so that the files of one
    folder tend to share shards.
    """
    ordered = sorted(fingerprints, key=lambda f: [p[0] for p in f["paths"]])
    groups, current, n_files = [], [], 0
    for fp in ordered:
        current.append(fp)
        n_files += len(fp["paths"])
        if n_files >= files_per_shard:
            groups.append(current)
            current, n_files = [], 0
    if current:
        groups.append(current)
    return [{"shard": _shard_id(group), "fingerprints": group,
             "units": json.dumps([_unit_of(f) for f in group])} for group in groups]


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
    ``<staging>/<shard>/read.json`` so that the driver knows when the shard is complete.

    Args:
        kind: the record kind the model reads.
        staging: this run's staging folder (``OUT/_staging/<run>``).
    """

    def __init__(self, kind: str, staging: str):
        self.kind, self.staging = kind, Path(staging)

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
    failed = {int(k): v for k, v in failures.items()}
    if rows is not None and rows.num_rows:
        rows = _drop_non_finite(rows, failed)
    done = [] if rows is None else [int(k) for k in rows.column("object_id").to_pylist()]
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


#: Predictor columns that are the model's output: a row with any of them null, NaN or inf is a
#: failure, not a catalogue row (``period`` and ``ood_score`` may be null by design).
_OUTPUT_NAMES = ("predicted_prob", "redshift", "anomaly_score", "real_score", "embedding")
_OUTPUT_PREFIXES = ("prob_", "uncertainty_")


def _drop_non_finite(rows: pa.Table, failed: dict[int, str]) -> pa.Table:
    """``rows`` without those whose model output is not finite; those go to ``failed``.

    Inputs beyond float32 after centring (times of 1e39) turn into inf, and the model's
    outputs into NaN: a row with NaN probabilities would still get an argmax class.
    """
    bad = np.zeros(rows.num_rows, bool)
    named: list[list[str]] = [[] for _ in range(rows.num_rows)]
    for name in rows.column_names:
        if not (name in _OUTPUT_NAMES or name.startswith(_OUTPUT_PREFIXES)):
            continue
        col = rows.column(name).combine_chunks()
        if pa.types.is_floating(col.type):
            values = col.to_numpy(zero_copy_only=False).astype(np.float64)
            wrong = ~np.isfinite(values)
        elif pa.types.is_fixed_size_list(col.type) and pa.types.is_floating(col.type.value_type):
            size = col.type.list_size
            matrix = np.full((len(col), size), np.nan)  # (N, D); null rows stay NaN
            valid = ~np.asarray(col.is_null())
            matrix[valid] = col.filter(pa.array(valid)).flatten().to_numpy(
                zero_copy_only=False).reshape(-1, size)
            wrong = ~np.isfinite(matrix).all(axis=1)
        else:
            continue
        for i in np.flatnonzero(wrong):
            named[i].append(name)
        bad |= wrong
    if not bad.any():
        return rows
    positions = rows.column("object_id").to_pylist()
    for i in np.flatnonzero(bad):
        failed[int(positions[i])] = (f"non-finite model output ({', '.join(named[i][:4])}): "
                                     "inputs beyond float32 after centring?")
    return rows.filter(pa.array(~bad))


class WriteParts:
    """Writer task: model output -> staged catalogue / error parts; returns counts per shard.

    Args:
        staging: this run's staging folder (``OUT/_staging/<run>``).
        kind: the record kind (for the error rows).
    """

    def __init__(self, staging: str, kind: str):
        self.staging, self.kind = Path(staging), kind

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
    """The driver's book-keeping: published shards, counts per shard, publication.

    A shard is published when ``_state/done/<id>.json`` exists; its folders are moved in
    before the record is written and removed after it is deleted, so that a kill at any
    point leaves at worst folders without a record, which :meth:`sweep` removes.
    """

    def __init__(self, out: Path, staging: Path, model_hash: str):
        self.out, self.staging, self.model_hash = out, staging, model_hash
        self.done_dir = out / "_state" / "done"
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.fingerprints: dict[str, list[dict[str, Any]]] = {}
        self.published: dict[str, dict[str, Any]] = {}

    def records(self) -> dict[str, dict[str, Any]]:
        """The published shards' records by id.

        An unreadable record counts as a published shard of unknown files, so that it is
        retired rather than trusted.
        """
        out = {}
        for path in sorted(self.done_dir.glob("*.json")) if self.done_dir.is_dir() else []:
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                out[path.stem] = {}
        return out

    def retire(self, shard: str) -> None:
        """Withdraw a published shard: its record first, then its rows."""
        (self.done_dir / f"{shard}.json").unlink(missing_ok=True)
        for dest in ("catalogue", "errors"):
            shutil.rmtree(self.out / dest / f"shard={shard}", ignore_errors=True)

    def sweep(self) -> None:
        """Remove what no record covers.

        Staged parts of earlier runs, ``shard=`` folders without a record and the hidden
        temporaries of an interrupted publication.
        """
        shutil.rmtree(self.out / "_staging", ignore_errors=True)
        done = set()
        if self.done_dir.is_dir():
            for entry in self.done_dir.iterdir():
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    done.add(entry.stem)
                elif entry.name.startswith("."):  # a record half written by a killed run
                    _remove(entry)
        for dest in ("catalogue", "errors"):
            folder = self.out / dest
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                name = entry.name
                if name.startswith(".shard=") or (name.startswith(".") and name.endswith(".tmp")):
                    _remove(entry)
                elif name.startswith("shard=") and name[len("shard="):] not in done:
                    _remove(entry)

    def expect(self, shard: str, fingerprints: list[dict[str, Any]]) -> None:
        self.fingerprints[shard] = fingerprints

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
        parts = {prefix: sorted(staged.glob(f"{prefix}*.parquet")) for prefix in ("cat-", "err-")}
        # The staged files must hold exactly the rows counted: a part left by a failed task
        # attempt with other rows would otherwise be published beside its retry's.
        on_disk = [sum(pq.ParquetFile(f).metadata.num_rows for f in parts[k])
                   for k in ("cat-", "err-")]
        if on_disk != [cat, failed + info["read_errors"]]:
            raise RuntimeError(f"shard {shard}: staged parts hold {on_disk} catalogue / error "
                               f"rows, the run counted {[cat, failed + info['read_errors']]}")
        for prefix, dest in (("cat-", "catalogue"), ("err-", "errors")):
            if not parts[prefix]:
                continue
            tmp = self.out / dest / f".shard={shard}.{uuid.uuid4().hex}"
            tmp.mkdir(parents=True)
            for f in parts[prefix]:
                os.replace(f, tmp / f.name)
            final = self.out / dest / f"shard={shard}"
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        record = {"version": _RECORD_VERSION, "shard": shard, "model_hash": self.model_hash,
                  "catalogued": cat, "failed": failed + info["read_errors"],
                  "units": self.fingerprints[shard]}
        _write_json_atomic(record, self.done_dir / f"{shard}.json")  # the commit point
        shutil.rmtree(staged, ignore_errors=True)
        self.published[shard] = record
        return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class _RunLock:
    """An exclusive lock on a run folder (``_state/lock``), released when the process ends.

    Two runs writing one folder would publish each other's half-finished shards; a killed run
    holds no lock (the kernel drops it with the process).
    """

    def __init__(self, out: Path):
        self.path = out / "_state" / "lock"
        self.fd: int | None = None

    def __enter__(self) -> _RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise RuntimeError(f"{self.path.parent.parent}: another astroray infer run is "
                               "writing this folder; wait for it or use another --out") from None
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _check_weights(model_dir: str) -> None:
    """Refuse a model whose weights are truncated or not safetensors, before any writing.

    A failed load inside a model actor would end in a Ray traceback, and a run folder must
    not be bound to a model that never loaded.
    """
    from safetensors import SafetensorError, safe_open

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


def _wipe(out: Path) -> None:
    """Discard a run folder's catalogue, errors and state (``restart``); the lock stays."""
    for name in ("catalogue", "errors", "_staging"):
        shutil.rmtree(out / name, ignore_errors=True)
    (out / "duplicates.parquet").unlink(missing_ok=True)
    state = out / "_state"
    if state.is_dir():
        for entry in state.iterdir():
            if entry.name != "lock":
                _remove(entry)


def _duplicates(out: Path, done: set[str]) -> tuple[int, int]:
    """Find objects with 2+ catalogue rows; write ``duplicates.parquet``; (ids, extra rows).

    Keys are ``(survey, object_id)`` over the whole published catalogue (a column scan of
    three columns: far cheaper than the inference that made it).
    """
    target = out / "duplicates.parquet"
    files = _published_files(out / "catalogue", done)
    parts = []
    for f in files:
        names = set(pq.ParquetFile(f).schema_arrow.names)
        if {"survey", "object_id", "source"} <= names:
            parts.append(pq.read_table(f, columns=["survey", "object_id", "source"]))
    if not parts:
        target.unlink(missing_ok=True)
        return 0, 0
    keys = pa.concat_tables(parts, promote_options="default")
    # Count rows, not sources: canonical Parquet rows may have no source (null).
    grouped = keys.group_by(["survey", "object_id"]).aggregate(
        [("source", "count", pc.CountOptions(mode="all")), ("source", "list")])
    dup = grouped.filter(pc.greater(grouped.column("source_count"), 1))
    if not dup.num_rows:
        target.unlink(missing_ok=True)
        return 0, 0
    counts = dup.column("source_count").to_numpy()
    sources = [sorted(v, key=lambda x: (x is None, x or ""))
               for v in dup.column("source_list").to_pylist()]
    table = pa.table({"survey": dup.column("survey"), "object_id": dup.column("object_id"),
                      "n_rows": pa.array(counts.astype(np.int64)),
                      "sources": pa.array(sources, pa.list_(pa.string()))})
    table = table.sort_by([("survey", "ascending"), ("object_id", "ascending")])
    _write_atomic(table, target)
    return table.num_rows, int(counts.sum() - len(counts))


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
                             config.read_cpus)
            gpus = config.use_gpu
            if gpus is None:
                gpus = ray.cluster_resources().get("GPU", 0) >= 1
            items = [{"shard": s["shard"], "units": s["units"]} for s in pending]
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            # Read and write stages are tasks: they get instances (cheap to ship), not classes.
            ds = ds.map_batches(ReadShard(kind, str(staging)), batch_size=1,
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


def _reconcile(records: dict[str, dict[str, Any]], planned: list[dict[str, Any]]
               ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Split the published shards into kept and retired; the units left to process.

    A shard is kept when every unit it covers is planned now with the same fingerprint (and
    no other kept shard covers it); any other shard is retired, and its surviving units go
    back to the pool with the new ones.
    """
    current = {_unit_key(fp): fp for fp in planned}
    claimed: set[str] = set()
    kept, retired = [], []
    for shard, record in sorted(records.items()):
        keys = [_unit_key(u) for u in record.get("units") or []]
        if (record.get("version") == _RECORD_VERSION and keys
                and all(k in current and k not in claimed for k in keys)
                and len(set(keys)) == len(keys)):
            kept.append(shard)
            claimed.update(keys)
        else:
            retired.append(shard)
    pool = [fp for key, fp in current.items() if key not in claimed]
    return kept, retired, pool


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


def _published_files(folder: Path, done: set[str] | None) -> list[Path]:
    """The visible Parquet files under ``folder``.

    Of its ``shard=`` folders, only those of published shards (``done``; None: all), so that
    the leftovers of a killed run, which the next run removes, are never read as rows.
    """
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.rglob("*.parquet")):
        parts = path.relative_to(folder).parts
        if any(part.startswith((".", "_")) for part in parts):
            continue
        if (done is not None and len(parts) > 1 and parts[0].startswith("shard=")
                and parts[0][len("shard="):] not in done):
            continue
        files.append(path)
    return files


def read_catalogue(out: str | Path) -> tuple[pa.Table, pa.Table]:
    """The published catalogue and errors tables of a run folder (empty when absent).

    Only shards with a record in ``_state/done/`` are read (a folder without any record,
    written by hand or by another tool, is read whole).
    """
    out = Path(out)
    done_dir = out / "_state" / "done"
    done = {p.stem for p in done_dir.glob("*.json")} if done_dir.is_dir() else None
    tables = []
    for name in ("catalogue", "errors"):
        parts = [pq.read_table(f) for f in _published_files(out / name, done)]
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
                        "errors": str(Path(out) / "errors"),
                        "duplicates": (str(Path(out) / "duplicates.parquet")
                                       if summary.duplicate_ids else None)},
                  model={"dir": config.model, "hash": summary.model_hash},
                  config=config.to_dict(), smoke=smoke, started=started)
    return summary
