"""Ray Data ingest: survey files -> ``ray.data.Dataset`` in the canonical schemas.

The driver plans the read (expands paths, sniffs formats, finds label tables; cheap: a few KB
per file); the reading itself happens in Ray read tasks, sharded by file (files that hold parts
of one object, such as MACHO B and R, stay together). Each read task writes the records it could
not read to its own Parquet file in ``errors_dir`` (source, object_id, stage, error), named by
a digest of its files so that a retried task overwrites rather than duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from astroray.data import fileio
from astroray.data.registry import ReadOptions, ReadPlan, ReadUnit, iter_blocks, plan_read
from astroray.data.schema import ERROR_SCHEMA, KINDS, error_table

__all__ = [
    "SurveyDatasource",
    "write_errors",
    "read_errors",
    "read_light_curves",
    "read_spectra",
    "read_stamps",
    "read_survey",
]

logger = logging.getLogger(__name__)

#: Records per output block: ~1,000 light curves or spectra is a few MB, the size Ray Data
#: handles best (large enough to amortise per-block overhead, small enough to stream).
BLOCK_RECORDS = 1000


def write_errors(errors: pa.Table, errors_dir: str, name: str) -> str:
    """Write an errors table atomically as ``errors_dir/name``; returns its path."""
    fs, inner = fileio.resolve(errors_dir)
    fs.create_dir(inner, recursive=True)
    final = f"{inner.rstrip('/')}/{name}"
    tmp = f"{inner.rstrip('/')}/.{name}.{uuid.uuid4().hex}.tmp"
    pq.write_table(errors, tmp, filesystem=fs)
    fs.move(tmp, final)  # atomic on local and POSIX filesystems: never a half-written file
    return final


def _digest(units: Sequence[ReadUnit]) -> str:
    h = hashlib.sha1()
    for unit in units:
        for path in unit.paths:
            h.update(path.encode())
            h.update(b"\0")
    return h.hexdigest()[:16]


def _read_task(
    units: list[ReadUnit], kind: str, options: ReadOptions, errors_dir: str
) -> Iterator[pa.Table]:
    errors: list[dict[str, Any]] = []
    n_blocks = 0
    for table, errs in iter_blocks(units, kind, options, BLOCK_RECORDS):
        errors.extend(errs)
        if table.num_rows:
            n_blocks += 1
            yield table
    if errors:
        where = write_errors(error_table(errors), errors_dir,
                              f"errors-{kind}-{_digest(units)}.parquet")
        logger.warning("%d record(s) failed to read (first: %s); errors table: %s",
                       len(errors), errors[0]["error"], where)
    if not n_blocks:
        yield KINDS[kind].empty_table()


class SurveyDatasource(Datasource):
    """A Ray Data datasource over planned read units of any registered survey format.

    Args:
        units: the read units (from :func:`astroray.data.registry.plan_read`).
        kind: record kind to produce.
        errors_dir: where read tasks write their errors tables.
        options: reader options.
    """

    def __init__(
        self,
        units: Sequence[ReadUnit],
        kind: str,
        errors_dir: str,
        options: ReadOptions | None = None,
    ):
        super().__init__()
        self._units = list(units)
        self._kind = kind
        self._errors_dir = errors_dir
        self._options = options or ReadOptions()
        self._sizes = [sum(fileio.file_size(p) for p in u.paths) for u in self._units]

    def get_name(self) -> str:
        """Name shown in Ray Data's progress bars."""
        return f"Survey[{self._kind}]"

    def estimate_inmemory_data_size(self) -> int | None:
        """Roughly the files' size: the text formats shrink, compressed FITS grows."""
        return int(sum(self._sizes) * 1.2) or None

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: Any = None,
    ) -> list[ReadTask]:
        """Split the units into ``parallelism`` groups of similar byte size."""
        n_tasks = max(1, min(parallelism, len(self._units)))
        groups: list[list[int]] = [[] for _ in range(n_tasks)]
        loads = [0] * n_tasks
        # Largest first onto the least loaded group (LPT): balanced tasks, deterministic.
        for i in sorted(range(len(self._units)), key=lambda i: (-self._sizes[i], i)):
            j = loads.index(min(loads))
            groups[j].append(i)
            loads[j] += self._sizes[i]
        tasks = []
        schema = KINDS[self._kind]
        for group, load in zip(groups, loads, strict=True):
            if not group:
                continue
            units = [self._units[i] for i in sorted(group)]
            paths = tuple(p for u in units for p in u.paths)
            kind, options, errors_dir = self._kind, self._options, self._errors_dir

            def read_fn(units=units, kind=kind, options=options, errors_dir=errors_dir):
                return _read_task(units, kind, options, errors_dir)

            meta = BlockMetadata(num_rows=None, size_bytes=int(load * 1.2) or None,
                                 exec_stats=None, input_files=paths)
            tasks.append(ReadTask(read_fn, meta, schema=schema,
                                  per_task_row_limit=per_task_row_limit))
        return tasks


def read_survey(
    paths: str | Sequence[str],
    kind: str,
    *,
    format: str | None = None,
    labels: str | Sequence[str] | None = None,
    survey: str | None = None,
    errors_dir: str | None = None,
    plan: ReadPlan | None = None,
    override_num_blocks: int | None = None,
    num_cpus: float | None = None,
) -> ray.data.Dataset:
    """Read survey files of any supported format into a Dataset of canonical ``kind`` records.

    Args:
        paths: files and/or folders (recursive); local paths or URIs.
        kind: ``lightcurve``, ``spectrum`` or ``stamp``.
        format: reader name for every data file; None sniffs each file.
        labels: label tables joined to every object instead of those found beside the data.
        survey: override the survey name the readers infer.
        errors_dir: where the errors tables go (one Parquet file per read task plus one for
            planning). None: a new temporary folder, named in a log line.
        plan: a plan made earlier with :func:`plan_read` (skips planning).
        override_num_blocks: number of read tasks (default: Ray's choice).
        num_cpus: CPUs per read task (fractions let reads share cores with actor pools).

    Returns:
        The dataset. Failed records are not in it; they are in ``errors_dir``.
    """
    if errors_dir is None:
        errors_dir = tempfile.mkdtemp(prefix="astroray-errors-")
        logger.info("read errors go to %s", errors_dir)
    if plan is None:
        plan = plan_read(paths, format=format, kind=kind, labels=labels)
    else:
        plan = plan.for_kind(kind)
    if plan.errors:
        write_errors(error_table(plan.errors), errors_dir, f"errors-plan-{kind}.parquet")
        logger.warning("%d input file(s) could not be planned (first: %s); errors table in %s",
                       len(plan.errors), plan.errors[0]["error"], errors_dir)
    if not plan.units:
        return ray.data.from_arrow(KINDS[kind].empty_table())
    source = SurveyDatasource(plan.units, kind, errors_dir, ReadOptions(survey=survey))
    return ray.data.read_datasource(source, override_num_blocks=override_num_blocks,
                                    num_cpus=num_cpus)


def read_light_curves(paths: str | Sequence[str], format: str | None = None,
                      **kwargs: Any) -> ray.data.Dataset:
    """Read light curves (canonical light-curve schema); see :func:`read_survey`."""
    return read_survey(paths, "lightcurve", format=format, **kwargs)


def read_spectra(paths: str | Sequence[str], format: str | None = None,
                 **kwargs: Any) -> ray.data.Dataset:
    """Read spectra (canonical spectrum schema); see :func:`read_survey`."""
    return read_survey(paths, "spectrum", format=format, **kwargs)


def read_stamps(paths: str | Sequence[str], format: str | None = None,
                **kwargs: Any) -> ray.data.Dataset:
    """Read image stamp triplets (canonical stamp schema); see :func:`read_survey`."""
    return read_survey(paths, "stamp", format=format, **kwargs)


def read_errors(errors_dir: str) -> pa.Table:
    """Concatenate the errors tables written to ``errors_dir`` (empty table when none)."""
    files, missing = fileio.expand_paths([errors_dir])
    tables = []
    for path in files:
        if path.endswith(".parquet"):
            fs, inner = fileio.resolve(path)
            tables.append(pq.read_table(inner, filesystem=fs).cast(ERROR_SCHEMA))
    return pa.concat_tables(tables) if tables else ERROR_SCHEMA.empty_table()
