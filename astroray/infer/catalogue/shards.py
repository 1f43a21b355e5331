"""Shards and their exactly-once book-keeping: planning, records, publication, reading back.

A shard is named by the fingerprints of its own read units; its record
(``_state/done/<id>.json``) is the commit point of its publication (see
:mod:`astroray.infer.catalogue`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astroray.data import fileio
from astroray.data.registry import ReadUnit
from astroray.data.schema import error_table

__all__ = ["read_catalogue"]


#: Version of the shard records (``_state/done/<id>.json``); records of other versions
#: (older run folders) do not say which files they cover and are retired.
_RECORD_VERSION = 2


def _stat(paths: list[str]) -> dict[str, list[int]]:
    """``[size, mtime_ns]`` of each path; ``[-1, -1]`` for one that cannot be read."""
    def one(path: str) -> list[int]:
        try:
            if fileio.is_uri(path) and not path.startswith("file://"):
                fs, inner = fileio.resolve(path)
                info = fs.get_file_info(inner)
                return [int(info.size if info.size is not None else -1),
                        int(info.mtime_ns if info.mtime_ns is not None else -1)]
            st = os.stat(path[len("file://"):] if path.startswith("file://") else path)
            return [int(st.st_size), int(st.st_mtime_ns)]
        except (OSError, ValueError):  # vanished since planning: its read is an error row
            return [-1, -1]

    unique = sorted(set(paths))
    if any("://" in p for p in unique):
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
        import fcntl  # lazy: fcntl is POSIX-only

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
        import fcntl  # lazy: fcntl is POSIX-only

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


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

