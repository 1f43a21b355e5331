"""Reader registry: survey formats by name, format sniffing, read planning and local reads.

Each survey reader lives in ``astroray/data/readers/<survey>.py`` and registers itself with
:func:`register_reader`, giving a sniffer (does this file look like mine?), the record kinds it
produces and, where one object spans several files (MACHO B and R), a key that groups them.

A read is planned once (:func:`plan_read`): paths are expanded, every file is sniffed, label
tables are told apart from data, files are grouped into read units and each unit gets the label
tables that sit beside it. A unit is then read anywhere (a Ray task or this process) with
:func:`read_unit`, which returns the good records as one canonical table and the failures as an
errors table: a record that cannot be read is never dropped silently.

A reader module may also register a writer of its format (:func:`register_writer`): the
record kinds it writes, and the bands the format holds where it fixes them. Which formats can
write a kind (:func:`list_writers`) is read from here, never kept by hand.

(Over 600 lines: the reader and writer registries with the read planning and the labelling
boundary they serve, imported from here by every reader and by the layers above.)

Every record passes through :func:`read_records`, which joins the label tables (label,
redshift, period, position), maps the label to its canonical name
(:mod:`astroray.data.taxonomy`; the source's spelling goes to ``label_raw``) and validates the
record, whatever reader produced it: this is the single ingest boundary for labels.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from astroray.data import _io, readers
from astroray.data.labels import beside, first_line, is_label_table, load_label_table
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

#: Pseudo-format returned by the sniffer for label and metadata tables.
LABELS = "labels"


@dataclass(frozen=True)
class FileHead:
    """What a sniffer sees of a file: its path, name and first (decompressed) bytes."""

    path: str
    name: str
    head: bytes
    compressed: bool

    @property
    def first_line(self) -> str:
        """The first non-blank line of the head decoded as UTF-8 ('' when binary)."""
        return first_line(self.head)

    @property
    def stem(self) -> str:
        """The name without ``.gz``."""
        return self.name[:-3] if self.name.endswith(".gz") else self.name


@dataclass(frozen=True)
class ReadOptions:
    """Options every reader honours.

    Attributes:
        survey: override the survey name the reader would infer.
    """

    survey: str | None = None


@dataclass(frozen=True)
class ReadFailure:
    """A record or file that could not be read, yielded by readers instead of raising."""

    source: str
    object_id: str | None
    error: str
    stage: str = "read"


Record = dict[str, Any]
ReadFn = Callable[["ReadUnit", str, ReadOptions], Iterable["Record | ReadFailure"]]


@dataclass(frozen=True)
class ReaderSpec:
    """A registered survey reader.

    Attributes:
        name: the format name (``csv``, ``sdss``, ...).
        kinds: record kinds it produces, the default first.
        sniff: returns True when a file is in this format.
        read: yields records (dicts in the canonical layout) and :class:`ReadFailure`s.
        unit_key: maps a file path to the key of the object it belongs to when objects span
            several files; files with the same key are read together.
        file_kind: for formats that hold one of several kinds per file (our Parquet), tells
            which kind a file holds; None when every file holds all of ``kinds``.
        description: one line for ``astroray formats``.
    """

    name: str
    kinds: tuple[str, ...]
    sniff: Callable[[FileHead], bool]
    read: ReadFn
    unit_key: Callable[[str], str] | None = None
    file_kind: Callable[[str], str] | None = None
    description: str = ""


WriteFn = Callable[..., list[str]]


@dataclass(frozen=True)
class WriterSpec:
    """A registered survey writer: canonical tables in, files laid out like the survey's out.

    Attributes:
        name: the format name, the same as its reader's.
        kinds: record kinds it writes.
        write: ``write(table_or_tables, out_dir, **options) -> paths written``.
        bands: the bands the format holds (None: any band).
    """

    name: str
    kinds: tuple[str, ...]
    write: WriteFn
    bands: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReadUnit:
    """Files read together by one reader, with the label tables joined to their objects.

    Attributes:
        format: reader name.
        paths: the files.
        kind: the record kind the files hold (the reader's first kind unless it tells per file).
        labels: label tables joined to the records.
        explicit_labels: the label tables were given by the user and override file values.
    """

    format: str
    paths: tuple[str, ...]
    kind: str
    labels: tuple[str, ...] = ()
    explicit_labels: bool = False

    def provides(self, kind: str) -> bool:
        """Whether reading this unit can produce records of ``kind``."""
        spec = get_reader(self.format)
        return kind == self.kind or (spec.file_kind is None and kind in spec.kinds)


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
    skipped: list[_io.Skipped] = field(default_factory=list)

    def skipped_counts(self) -> dict[str, int]:
        """``{reason: paths}`` of the paths the walk passed over."""
        return _io.Walk(skipped=self.skipped).skipped_counts()

    def for_kind(self, kind: str) -> ReadPlan:
        """Keep the units that produce ``kind``; the others become errors (never skipped)."""
        units, errors = [], list(self.errors)
        for unit in self.units:
            if unit.provides(kind):
                units.append(unit)
                continue
            errors.extend(
                {"source": p, "object_id": None, "stage": "plan", "kind": kind,
                 "error": f"{_io.basename(p)}: {unit.format} file holds {unit.kind} records, "
                          f"not {kind}"}
                for p in unit.paths
            )
        return replace(self, units=units, errors=errors)


_READERS: dict[str, ReaderSpec] = {}
_WRITERS: dict[str, WriterSpec] = {}
_LOADED = False


def register_reader(
    name: str,
    *,
    kinds: Sequence[str],
    sniff: Callable[[FileHead], bool],
    unit_key: Callable[[str], str] | None = None,
    file_kind: Callable[[str], str] | None = None,
    description: str = "",
) -> Callable[[ReadFn], ReadFn]:
    """Decorator registering a read function under a format name."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"reader {name!r}: unknown kind {kind!r}")

    def decorate(fn: ReadFn) -> ReadFn:
        if name in _READERS and _READERS[name].read is not fn:
            raise ValueError(f"a reader named {name!r} is already registered")
        _READERS[name] = ReaderSpec(name, tuple(kinds), sniff, fn, unit_key, file_kind,
                                    description)
        return fn

    return decorate


def register_writer(name: str, *, kinds: Sequence[str],
                    bands: Sequence[str] | None = None) -> Callable[[WriteFn], WriteFn]:
    """Decorator registering a write function under a format name (beside its reader)."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"writer {name!r}: unknown kind {kind!r}")

    def decorate(fn: WriteFn) -> WriteFn:
        if name in _WRITERS and _WRITERS[name].write is not fn:
            raise ValueError(f"a writer named {name!r} is already registered")
        _WRITERS[name] = WriterSpec(name, tuple(kinds), fn,
                                    None if bands is None else tuple(bands))
        return fn

    return decorate


def _load_readers() -> None:
    global _LOADED
    if _LOADED:
        return
    for mod in pkgutil.iter_modules(readers.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{readers.__name__}.{mod.name}")
    _LOADED = True


def get_reader(name: str) -> ReaderSpec:
    """The reader registered under ``name``."""
    _load_readers()
    try:
        return _READERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known formats: {list_formats()}") from None


def list_formats() -> list[str]:
    """Names of all registered formats."""
    _load_readers()
    return sorted(_READERS)


def get_writer(name: str) -> WriterSpec:
    """The writer registered under ``name``."""
    _load_readers()
    try:
        return _WRITERS[name]
    except KeyError:
        raise ValueError(f"no writer for format {name!r}; formats with a writer: "
                         f"{list_writers()}") from None


def list_writers(kind: str | None = None) -> list[str]:
    """Names of the formats with a writer (of ``kind`` records, when given)."""
    _load_readers()
    return sorted(n for n, w in _WRITERS.items() if kind is None or kind in w.kinds)


def sniff_file(path: str) -> str | None:
    """Identify a file's format: a reader name, :data:`LABELS`, or None when unknown.

    Raises:
        OSError: when the file cannot be opened.
    """
    _load_readers()
    head, compressed = _io.read_head(path)
    fh = FileHead(path=path, name=_io.basename(path), head=head, compressed=compressed)
    # Data formats first: a light-curve CSV has a time column, a label table never does.
    for spec in _READERS.values():
        if spec.sniff(fh):
            return spec.name
    if is_label_table(path, head):
        return LABELS
    return None


def _describe_unknown(path: str) -> str:
    try:
        head, _ = _io.read_head(path, 256)
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
    max_depth: int = _io.MAX_DEPTH,
    max_files: int = _io.MAX_FILES,
) -> ReadPlan:
    """Expand, sniff and group input files into read units.

    Args:
        paths: files and/or directories (searched recursively by
            :func:`astroray.data._io.walk_paths`: hidden entries, links to folders walked
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
        astroray.data._io.PathLimitError: when the walk exceeds ``max_depth`` or
            ``max_files``.
    """
    t0 = time.perf_counter()
    _load_readers()
    if format is not None:
        get_reader(format)
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    walk = _io.walk_paths([os.fspath(p) for p in paths], max_depth=max_depth,
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
    explicit_files, missing_labels = _io.expand_paths(explicit) if explicit else ([], [])
    if missing_labels:
        raise FileNotFoundError(f"label tables not found: {missing_labels}")

    def sniff(path: str) -> tuple[str, str | None, str | None]:
        try:
            return path, sniff_file(path), None
        except OSError as exc:
            return path, None, f"cannot open: {exc}"

    to_sniff = [f for f in files if f not in explicit_files]
    if any(_io.is_uri(f) for f in to_sniff):
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
                           "error": f"{_io.basename(path)}: {reason}"})

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
                           "error": f"{_io.basename(path)}: {type(exc).__name__}: {exc}"})
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
                               "error": f"{_io.basename(where)}: {exc}"})
                continue
            good.append(item)
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes an error row
        logger.debug("read failure in %s", unit.paths, exc_info=True)
        names = ", ".join(_io.basename(p) for p in unit.paths)
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
