"""Read planning and local reads, over the survey formats of :mod:`astroray.data.formats`.

The survey formats, their readers, writers and sniffers are registered in
:mod:`astroray.data.formats` (and re-exported here).

A read is planned once (:func:`plan_read`): paths are expanded, every file is sniffed, label
tables are told apart from data, files are grouped into read units and each unit gets the label
tables that sit beside it. A unit is then read anywhere (a Ray task or this process) with
:func:`read_unit`, which returns the good records as one canonical table and the failures as an
errors table: a record that cannot be read is never dropped silently.

Every record passes through :func:`read_records`, which joins the label tables (label,
redshift, period, position), maps the label to its canonical name
(:mod:`astroray.data.taxonomy`; the source's spelling goes to ``label_raw``) and validates the
record, whatever reader produced it: this is the single ingest boundary for labels.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from astroray.data import fileio
from astroray.data.formats import (
    LABELS,
    FileHead,
    ReaderSpec,
    ReadFailure,
    ReadOptions,
    ReadUnit,
    Record,
    WriterSpec,
    _load_readers,
    get_reader,
    get_writer,
    list_formats,
    list_writers,
    register_reader,
    register_writer,
    sniff_file,
)
from astroray.data.labels import beside, load_label_table
from astroray.data.schema import (
    KINDS,
    SchemaError,
    error_table,
    table_from_records,
    validate_record,
)
from astroray.data.taxonomy import resolve_label

__all__ = [
    "LABELS",
    "FileHead",
    "ReadFailure",
    "ReadOptions",
    "ReadPlan",
    "ReadUnit",
    "ReaderSpec",
    "WriterSpec",
    "get_reader",
    "get_writer",
    "list_formats",
    "list_writers",
    "plan_read",
    "read_files",
    "read_unit",
    "register_reader",
    "register_writer",
    "sniff_file",
]

logger = logging.getLogger(__name__)


@dataclass
class ReadPlan:
    """The result of :func:`plan_read`.

    Attributes:
        units: the read units.
        errors: error rows of files that cannot be read (missing, unknown format, ...).
        label_tables: the label tables found or given.
        formats: files per format.
        kinds: files per record kind.
        seconds: time spent planning.
        skipped: paths the walk passed over on purpose (hidden, links walked already,
            broken links, ...), each with the reason: counted, never silent.
    """

    units: list[ReadUnit]
    errors: list[dict[str, Any]]
    label_tables: list[str]
    formats: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: list[fileio.Skipped] = field(default_factory=list)

    def skipped_counts(self) -> dict[str, int]:
        """``{reason: paths}`` of the paths the walk passed over."""
        return fileio.Walk(skipped=self.skipped).skipped_counts()

    def for_kind(self, kind: str) -> ReadPlan:
        """Keep the units that produce ``kind``; the others become errors (never skipped)."""
        units, errors = [], list(self.errors)
        for unit in self.units:
            if unit.provides(kind):
                units.append(unit)
                continue
            errors.extend(
                {"source": p, "object_id": None, "stage": "plan", "kind": kind,
                 "error": f"{fileio.basename(p)}: {unit.format} file holds {unit.kind} records, "
                          f"not {kind}"}
                for p in unit.paths
            )
        return replace(self, units=units, errors=errors)


def _describe_unknown(path: str) -> str:
    try:
        head, _ = fileio.read_head(path, 256)
    except OSError as exc:
        return f"cannot open: {exc}"
    if not head:
        return "file is empty"
    preview = head[:60].decode("utf-8", "replace").split("\n", 1)[0]
    return f"unrecognised format (starts with {preview!r}); known formats: {list_formats()}"


def plan_read(
    paths: str | Sequence[str],
    *,
    format: str | None = None,
    kind: str | None = None,
    labels: str | Sequence[str] | None = None,
    max_depth: int = fileio.MAX_DEPTH,
    max_files: int = fileio.MAX_FILES,
) -> ReadPlan:
    """Expand, sniff and group input files into read units.

    Args:
        paths: files and/or directories (searched recursively by
            :func:`astroray.data.fileio.walk_paths`: hidden entries, links to folders walked
            already and broken links skipped and recorded in the plan's ``skipped``).
        format: a reader name to use for every data file; sniffed per file when None.
        kind: keep only units whose reader produces this record kind; files of other kinds are
            reported as errors (never silently skipped). None keeps every data file.
        labels: label tables to join to every object instead of the ones found beside the data.
        max_depth: folder levels the walk may enter below an input folder.
        max_files: files the walk may find.

    Returns:
        The plan: read units, errors found while planning (missing paths, folders that cannot
        be listed, unknown formats), the paths skipped, the label tables found, and counts of
        files per format and per kind.

    Raises:
        astroray.data.fileio.PathLimitError: when the walk exceeds ``max_depth`` or
            ``max_files``.
    """
    t0 = time.perf_counter()
    _load_readers()
    if format is not None:
        get_reader(format)
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    walk = fileio.walk_paths([os.fspath(p) for p in paths], max_depth=max_depth,
                          max_files=max_files)
    files = walk.files
    errors: list[dict[str, Any]] = [
        {"source": p, "object_id": None, "stage": "plan", "kind": None,
         "error": f"{p}: no such file or folder"}
        for p in walk.missing
    ]
    errors += [{"source": p, "object_id": None, "stage": "plan", "kind": None,
                "error": f"{p}: {reason}"} for p, reason in walk.unreadable]
    explicit = [] if labels is None else ([labels] if isinstance(labels, str) else list(labels))
    explicit_files, missing_labels = fileio.expand_paths(explicit) if explicit else ([], [])
    if missing_labels:
        raise FileNotFoundError(f"label tables not found: {missing_labels}")

    def sniff(path: str) -> tuple[str, str | None, str | None]:
        try:
            return path, sniff_file(path), None
        except OSError as exc:
            return path, None, f"cannot open: {exc}"

    to_sniff = [f for f in files if f not in explicit_files]
    if any(fileio.is_uri(f) for f in to_sniff):
        # Remote heads are latency bound: threads overlap the round trips.
        with ThreadPoolExecutor(max_workers=16) as pool:
            sniffed = list(pool.map(sniff, to_sniff))
    else:
        sniffed = [sniff(f) for f in to_sniff]  # local heads: ~0.1 ms each, threads only cost
    label_tables = list(explicit_files)
    data: list[tuple[str, str]] = []
    for path, fmt, problem in sniffed:
        if fmt == LABELS:
            label_tables.append(path)
        elif format is not None and problem is None:
            data.append((path, format))
        elif fmt is not None:
            data.append((path, fmt))
        else:
            reason = problem or _describe_unknown(path)
            errors.append({"source": path, "object_id": None, "stage": "sniff", "kind": None,
                           "error": f"{fileio.basename(path)}: {reason}"})

    units: list[ReadUnit] = []
    formats: dict[str, int] = {}
    kinds: dict[str, int] = {}
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for path, fmt in data:
        spec = get_reader(fmt)
        try:
            file_kind = spec.file_kind(path) if spec.file_kind else spec.kinds[0]
        except Exception as exc:  # noqa: BLE001 - an unreadable file is an error row
            errors.append({"source": path, "object_id": None, "stage": "sniff", "kind": None,
                           "error": f"{fileio.basename(path)}: {type(exc).__name__}: {exc}"})
            continue
        formats[fmt] = formats.get(fmt, 0) + 1
        kinds[file_kind] = kinds.get(file_kind, 0) + 1
        key = spec.unit_key(path) if spec.unit_key else path
        grouped.setdefault((fmt, file_kind, key), []).append(path)
    for (fmt, file_kind, _), group in grouped.items():
        joined = explicit_files if explicit_files else beside(group[0], label_tables)
        units.append(ReadUnit(fmt, tuple(group), file_kind, tuple(joined),
                              bool(explicit_files)))
    plan = ReadPlan(units, errors, label_tables, formats, kinds, time.perf_counter() - t0,
                    walk.skipped)
    return plan.for_kind(kind) if kind is not None else plan


def _join_labels(record: Record, unit: ReadUnit) -> None:
    """Fill a record from the label tables of its unit.

    Rows are looked up by the most specific key first (a stamp's own ``stamp_id`` before its
    object's id) across all tables, nearest table first; each field takes the first value
    found, so that ``ident.dat`` can give the position and ``cepF.dat`` the period of one star.
    Values the reader found in the file itself are kept unless the tables were given
    explicitly (``--labels``), which override them.
    """
    if not unit.labels:
        return
    tables = [load_label_table(path) for path in unit.labels]
    rows = [row for key in (record.get("stamp_id"), record.get("object_id")) if key is not None
            for row in (t.get(key) for t in tables) if row is not None]
    if not rows:
        return
    overwrite = unit.explicit_labels
    fields = _record_kind_fields(record)
    label = next((r.label for r in rows if r.label is not None), None)
    if label is not None and (overwrite or record.get("label") is None):
        record["label"] = label
        record["label_raw"] = None  # a new raw label: resolved again by _resolve_label
    z_field = "z" if "z" in fields else "redshift" if "redshift" in fields else None
    values = {z_field: next((r.redshift for r in rows if r.redshift is not None), None),
              "period": next((r.period for r in rows if r.period is not None), None),
              "ra": next((r.ra for r in rows if r.ra is not None and r.dec is not None), None),
              "dec": next((r.dec for r in rows if r.ra is not None and r.dec is not None), None)}
    for name, value in values.items():
        if name in fields and value is not None and (overwrite or record.get(name) is None):
            record[name] = value
    meta = dict(record.get("meta") or {})
    for row in rows:
        for key, value in row.meta.items():
            if overwrite or key not in meta:
                meta[key] = value
    if meta:
        record["meta"] = meta


def _record_kind_fields(record: Record) -> set[str]:
    if "wavelength" in record:
        return set(KINDS["spectrum"].names)
    if "science" in record:
        return set(KINDS["stamp"].names)
    return set(KINDS["lightcurve"].names)


def _resolve_label(record: Record) -> None:
    """Canonical name in ``label``, the source's spelling in ``label_raw`` (kept when set).

    A record read back from canonical Parquet already carries both, and canonical names map to
    themselves, so it passes unchanged.
    """
    label = record.get("label")
    if label is None:
        return
    if record.get("label_raw") is None:
        record["label_raw"] = str(label)
    resolved, _ = resolve_label(label, record.get("survey"))
    record["label"] = resolved


def read_records(
    unit: ReadUnit, kind: str | None = None, options: ReadOptions | None = None
) -> tuple[list[Record], list[dict[str, Any]]]:
    """Read one unit into validated records (labels joined) and error rows.

    Never raises for bad data: a file that cannot be parsed gives one error row, a record that
    fails validation gives one error row naming the object and the field.
    """
    spec = get_reader(unit.format)
    kind = kind or unit.kind
    options = options or ReadOptions()
    good: list[Record] = []
    errors: list[dict[str, Any]] = []
    source = unit.paths[0]
    try:
        for item in spec.read(unit, kind, options):
            if isinstance(item, ReadFailure):
                errors.append({"source": item.source, "object_id": item.object_id,
                               "stage": item.stage, "error": item.error, "kind": kind})
                continue
            try:
                _join_labels(item, unit)
                _resolve_label(item)
                validate_record(item, kind)
            except SchemaError as exc:
                # The file being read, even when the record names an earlier provenance (a
                # canonical Parquet row keeps the survey file it first came from).
                where = item.get("source") if item.get("source") in unit.paths else source
                errors.append({"source": where, "kind": kind,
                               "object_id": str(item.get("object_id")), "stage": "validate",
                               "error": f"{fileio.basename(where)}: {exc}"})
                continue
            good.append(item)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes an error row
        logger.debug("read failure in %s", unit.paths, exc_info=True)
        names = ", ".join(fileio.basename(p) for p in unit.paths)
        errors.append({"source": source, "object_id": None, "stage": "read", "kind": kind,
                       "error": f"{names}: {type(exc).__name__}: {exc}" + _location(exc)})
    return good, errors


def _to_table(records: list[Record], kind: str, errors: list[dict[str, Any]]) -> pa.Table:
    try:
        return table_from_records(records, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        # Defensive: conversion should not fail after validation; if it does, lose nothing.
        errors.extend({"source": r.get("source"), "object_id": str(r.get("object_id")),
                       "stage": "convert", "error": f"{type(exc).__name__}: {exc}", "kind": kind}
                      for r in records)
        return table_from_records([], kind)


def read_unit(
    unit: ReadUnit, kind: str | None = None, options: ReadOptions | None = None
) -> tuple[pa.Table, pa.Table]:
    """Read one unit: the good records as a canonical table, and the errors table."""
    kind = kind or unit.kind
    records, errors = read_records(unit, kind, options)
    table = _to_table(records, kind, errors)
    return table, error_table(errors)


def _location(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "astroray" in f.filename]
    if not ours:
        return ""
    last = ours[-1]
    return f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})"


def iter_blocks(
    units: Iterable[ReadUnit],
    kind: str,
    options: ReadOptions | None = None,
    block_records: int = 1000,
) -> Iterator[tuple[pa.Table, list[dict[str, Any]]]]:
    """Read units one after another, yielding tables of about ``block_records`` records.

    This is the body of a Ray read task: many small files (one light curve each) become a few
    blocks, so the cost of building Arrow arrays is paid per block, not per object.

    Yields:
        (table, errors): canonical records and the error rows met since the last block.
    """
    pending: list[Record] = []
    errors: list[dict[str, Any]] = []
    for unit in units:
        records, errs = read_records(unit, kind, options)
        pending.extend(records)
        errors.extend(errs)
        if len(pending) >= block_records:
            yield _to_table(pending, kind, errors), errors
            pending, errors = [], []
    if pending or errors:
        yield _to_table(pending, kind, errors), errors


def read_files(
    paths: str | Sequence[str],
    format: str | None = None,
    kind: str | None = None,
    labels: str | Sequence[str] | None = None,
    options: ReadOptions | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Read files in this process, without Ray (tests, notebooks, small inputs).

    Args:
        paths: files and/or directories.
        format: reader name, or None to sniff each file.
        kind: record kind to produce (``lightcurve``, ``spectrum``, ``stamp``); by default the
            kind of the first data file's reader.
        labels: label tables to join instead of those found beside the data.
        options: reader options.

    Returns:
        (data, errors): canonical table and errors table.
    """
    plan = plan_read(paths, format=format, labels=labels)
    if kind is None:
        kind = plan.units[0].kind if plan.units else "lightcurve"
    plan = plan.for_kind(kind)
    tables, errors = [], list(plan.errors)
    for table, errs in iter_blocks(plan.units, kind, options):
        tables.append(table)
        errors.extend(errs)
    data = pa.concat_tables(tables) if tables else KINDS[kind].empty_table()
    return data, error_table(errors)
