"""The pipeline stages of bulk inference: callable classes for ``map_batches``.

Read tasks (a shard -> canonical objects), model actors (objects -> catalogue rows or failure
rows) and writer tasks (rows -> staged Parquet parts under deterministic names).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.registry import ReadUnit, iter_blocks
from astroray.data.schema import ERROR_SCHEMA, error_table
from astroray.infer.catalogue.shards import _digest_ids, _write_atomic, _write_json_atomic
from astroray.infer.predictors import get_predictor

__all__ = ["CARRIED", "PredictBatch", "ReadShard", "WriteParts"]

logger = logging.getLogger(__name__)

_META = ("_shard", "_error", "_stage")
#: Input columns carried into the catalogue when the inputs have them: the known label (and
#: its original spelling), the position (deg, ICRS) and the catalogue period (days).
CARRIED = (("label", pa.string()), ("label_raw", pa.string()), ("ra", pa.float64()),
           ("dec", pa.float64()), ("period", pa.float64()))


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
        """Read each shard of ``batch`` (columns ``shard``, ``units``); its objects."""
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
        """Catalogue rows and failure rows (``_error`` set) for the objects of ``batch``."""
        import torch  # lazy: torch

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
        """Stage ``batch``'s rows as Parquet parts; (shard, catalogued, failed) per shard."""
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

