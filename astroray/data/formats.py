"""Survey formats by name: the reader and writer registries and format sniffing.

Each survey reader lives in ``astroray/data/readers/<survey>.py`` and registers itself with
:func:`register_reader`, giving a sniffer (does this file look like mine?), the record kinds it
produces and, where one object spans several files (MACHO B and R), a key that groups them.
:func:`sniff_file` asks every registered sniffer which format a file is in (or whether it is a
label table).

A reader module may also register a writer of its format (:func:`register_writer`): the
record kinds it writes, and the bands the format holds where it fixes them. Which formats can
write a kind (:func:`list_writers`) is read from here, never kept by hand.

Read planning and reads (:func:`~astroray.data.registry.plan_read`,
:func:`~astroray.data.registry.read_unit`) are in :mod:`astroray.data.registry`, which
re-exports every name here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from astroray.data import fileio, readers
from astroray.data.labels import first_line, is_label_table
from astroray.data.schema import KINDS

__all__ = [
    "LABELS",
    "FileHead",
    "ReadFailure",
    "ReadOptions",
    "ReadUnit",
    "ReaderSpec",
    "WriterSpec",
    "get_reader",
    "get_writer",
    "list_formats",
    "list_writers",
    "register_reader",
    "register_writer",
    "sniff_file",
]

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
    head, compressed = fileio.read_head(path)
    fh = FileHead(path=path, name=fileio.basename(path), head=head, compressed=compressed)
    # Data formats first: a light-curve CSV has a time column, a label table never does.
    for spec in _READERS.values():
        if spec.sniff(fh):
            return spec.name
    if is_label_table(path, head):
        return LABELS
    return None
