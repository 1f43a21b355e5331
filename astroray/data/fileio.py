"""File access shared by the readers: local paths and URIs (s3://, gs://, ...) via pyarrow.fs."""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

GZIP_MAGIC = b"\x1f\x8b"
#: Bytes of (decompressed) file head the sniffers see: enough for a CSV header line, a FITS
#: primary header's first cards, the Avro schema and the Parquet magic.
HEAD_BYTES = 16384


def is_uri(path: str) -> bool:
    """Whether ``path`` names a remote or explicit-scheme location."""
    return "://" in path


@lru_cache(maxsize=64)
def _filesystem_for(scheme_and_host: str) -> pafs.FileSystem:
    fs, _ = pafs.FileSystem.from_uri(scheme_and_host)
    return fs


def resolve(path: str) -> tuple[pafs.FileSystem, str]:
    """Return the pyarrow filesystem and the path inside it for a local path or a URI."""
    if is_uri(path):
        if path.startswith("file://"):
            return pafs.LocalFileSystem(), path[len("file://"):]
        fs, inner = pafs.FileSystem.from_uri(path)
        return fs, inner
    return pafs.LocalFileSystem(), os.path.abspath(path)


def _join(inner: str, original: str) -> str:
    if is_uri(original) and not original.startswith("file://"):
        scheme = original.split("://", 1)[0]
        return f"{scheme}://{inner}"
    return inner


#: Folder levels walked below each input folder before the walk stops with an error.
MAX_DEPTH = 32
#: Files a walk may find before it stops with an error (a walk of ``/`` by mistake, say).
MAX_FILES = 10_000_000


class PathLimitError(ValueError):
    """A walk of the input paths went deeper or found more files than its limits allow."""


@dataclass(frozen=True)
class Skipped:
    """A path the walk passed over on purpose, with the reason (counted, never silent).

    Attributes:
        path: the path as walked (under the input path that led to it).
        reason: one of :data:`SKIP_REASONS`.
        detail: what the reason refers to (the link target, the first path of a file).
    """

    path: str
    reason: str
    detail: str = ""


#: Why a walk passes over a path.
SKIP_REASONS = {
    "hidden": "name starts with '.'",
    "underscore": "name starts with '_'",
    "broken link": "symbolic link to nothing",
    "folder already walked": "a link to a folder walked already (a loop or a second route)",
    "same file": "a second route (link) to a file found already",
    "not a regular file": "a socket, pipe or device",
}


@dataclass
class Walk:
    """The result of :func:`walk_paths`.

    Attributes:
        files: the files found, sorted, each once.
        missing: the input paths that do not exist (a broken link given as input included).
        skipped: what was passed over on purpose, with the reason.
        unreadable: ``(path, reason)`` of folders that could not be listed.
    """

    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def skipped_counts(self) -> dict[str, int]:
        """``{reason: paths}`` of the skipped paths, in a fixed order."""
        counts = {reason: 0 for reason in SKIP_REASONS}
        for item in self.skipped:
            counts[item.reason] += 1
        return {reason: n for reason, n in counts.items() if n}


def expand_paths(paths: list[str] | tuple[str, ...] | str) -> tuple[list[str], list[str]]:
    """Expand files and folders (recursively) into a sorted list of files.

    A shorthand for :func:`walk_paths` with the default limits.

    Returns:
        (files, missing): the files found and the input paths that do not exist.
    """
    walk = walk_paths(paths)
    return walk.files, walk.missing


def walk_paths(
    paths: list[str] | tuple[str, ...] | str,
    *,
    max_depth: int = MAX_DEPTH,
    max_files: int = MAX_FILES,
) -> Walk:
    """Expand files and folders (recursively) into a sorted list of files, each once.

    Hidden entries (name starting with ``.``) and ``_``-prefixed ones are skipped, as Ray Data
    and Spark do, below each input path (an input path itself is taken as given). Local
    folders are walked here rather than by ``pyarrow.fs``, which follows links without
    remembering them: a link back to a parent would be walked for ever. Each folder and each
    file is taken once by its real identity (device and inode): a link to a folder already
    walked, a second route to a file, a broken link and anything that is not a regular file
    (a pipe would block the reader) are passed over and recorded with the reason. Remote
    URIs (``s3://``, ``gs://``, ...) are listed by ``pyarrow.fs``; object stores have no
    links.

    Args:
        paths: files and/or folders, local paths or URIs.
        max_depth: folder levels below an input folder the walk may enter.
        max_files: files the walk may find in all.

    Raises:
        PathLimitError: when a folder lies deeper than ``max_depth`` levels or more than
            ``max_files`` files are found; the message names the folder and the limit.
    """
    if isinstance(paths, str):
        paths = [paths]
    walk = Walk()
    state = _WalkState(walk, max_depth, max_files)
    for path in paths:
        path = str(path)
        if is_uri(path) and not path.startswith("file://"):
            _walk_remote(path, state)
        else:
            _walk_local(path[len("file://"):] if path.startswith("file://") else path, path,
                        state)
    # Stable order keeps plans (and error file names) deterministic.
    walk.files.sort()
    return walk


@dataclass
class _WalkState:
    walk: Walk
    max_depth: int
    max_files: int
    dirs: dict[tuple[int, int], str] = field(default_factory=dict)
    files: dict[tuple[int, int], str] = field(default_factory=dict)
    remote: set[str] = field(default_factory=set)

    def add_file(self, path: str, key: tuple[int, int] | None, root: str) -> None:
        if key is not None:
            first = self.files.get(key)
            if first is not None:
                if _is_link_route(path, first):
                    self.walk.skipped.append(Skipped(path, "same file", first))
                return  # the same path named twice (an input and its folder): no news
            self.files[key] = path
        elif path in self.remote:
            return
        else:
            self.remote.add(path)
        self.walk.files.append(path)
        if len(self.walk.files) > self.max_files:
            raise PathLimitError(
                f"{root}: more than {self.max_files:,} files (max_files); point at a smaller "
                "folder, or raise the limit (IngestConfig.max_files) if this is meant")

    def enter(self, folder: str, depth: int, root: str) -> None:
        if depth > self.max_depth:
            raise PathLimitError(
                f"{folder}: more than {self.max_depth} folder levels below {root} (max_depth); "
                "raise the limit (IngestConfig.max_depth) if the tree is really this deep")


def _is_link_route(path: str, first: str) -> bool:
    """Whether ``path`` differs from ``first`` as a route, not merely as a spelling."""
    return os.path.normpath(path) != os.path.normpath(first)


def _walk_local(path: str, original: str, state: _WalkState) -> None:
    walk = state.walk
    full = os.path.abspath(path)
    try:
        st = os.stat(full)  # follows links: an input that is a link is taken as given
    except OSError:
        walk.missing.append(original)
        return
    if not stat.S_ISDIR(st.st_mode):
        if stat.S_ISREG(st.st_mode):
            state.add_file(full, (st.st_dev, st.st_ino), original)
        else:
            walk.skipped.append(Skipped(full, "not a regular file"))
        return
    key = (st.st_dev, st.st_ino)
    if key in state.dirs:
        if _is_link_route(full, state.dirs[key]):
            walk.skipped.append(Skipped(full, "folder already walked", state.dirs[key]))
        return
    state.dirs[key] = full
    # Depth-first with an explicit stack (no recursion limit), children in name order.
    stack: list[tuple[str, int]] = [(full, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            walk.unreadable.append((folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith((".", "_")):
                walk.skipped.append(Skipped(entry.path, "hidden" if entry.name[0] == "."
                                            else "underscore"))
                continue
            try:
                st = entry.stat()  # follows links
            except OSError:
                target = os.readlink(entry.path) if entry.is_symlink() else ""
                walk.skipped.append(Skipped(entry.path, "broken link", target))
                continue
            key = (st.st_dev, st.st_ino)
            if stat.S_ISDIR(st.st_mode):
                if key in state.dirs:
                    walk.skipped.append(Skipped(entry.path, "folder already walked",
                                                state.dirs[key]))
                    continue
                state.enter(entry.path, depth + 1, full)
                state.dirs[key] = entry.path
                subfolders.append((entry.path, depth + 1))
            elif stat.S_ISREG(st.st_mode):
                state.add_file(entry.path, key, full)
            else:
                walk.skipped.append(Skipped(entry.path, "not a regular file"))
        stack.extend(reversed(subfolders))


def _walk_remote(path: str, state: _WalkState) -> None:
    walk = state.walk
    fs, inner = resolve(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        walk.missing.append(path)
        return
    if info.type != pafs.FileType.Directory:
        state.add_file(_join(inner, path), None, path)
        return
    for item in fs.get_file_info(pafs.FileSelector(inner, recursive=True)):
        if item.type != pafs.FileType.File:
            continue
        parts = os.path.relpath(item.path, inner).split("/")
        hidden = next((p for p in parts if p.startswith((".", "_"))), None)
        if hidden is not None:
            walk.skipped.append(Skipped(_join(item.path, path),
                                        "hidden" if hidden[0] == "." else "underscore"))
            continue
        state.enter(_join(item.path.rsplit("/", 1)[0], path), len(parts) - 1, path)
        state.add_file(_join(item.path, path), None, path)


def read_bytes(path: str, *, decompress: bool = True) -> bytes:
    """Read a whole file, gunzipping it when it is gzip-compressed."""
    fs, inner = resolve(path)
    with fs.open_input_stream(inner) as stream:
        data = stream.read()
    if decompress and data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    return data


def read_head(path: str, size: int = HEAD_BYTES) -> tuple[bytes, bool]:
    """Read the first ``size`` decompressed bytes of a file.

    Returns:
        (head, compressed): the bytes and whether the file was gzip-compressed.
    """
    fs, inner = resolve(path)
    with fs.open_input_file(inner) as stream:
        raw = stream.read(size)
        if raw[:2] != GZIP_MAGIC:
            return raw, False
        # Decompress only what is needed for the head; a truncated stream still yields bytes.
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = bytearray()
        buf = raw
        while len(out) < size and buf:
            try:
                out += decomp.decompress(buf, size - len(out))
            except zlib.error:
                break  # a corrupt stream: the sniffers see what could be decoded
            if decomp.eof:
                break
            buf = decomp.unconsumed_tail or stream.read(size)
    return bytes(out[:size]), True


def file_size(path: str) -> int:
    """Size of a file in bytes (0 when unknown)."""
    fs, inner = resolve(path)
    return int(fs.get_file_info(inner).size or 0)


def basename(path: str) -> str:
    """The file name of a path or URI."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def dirname(path: str) -> str:
    """The parent of a path or URI."""
    return path.rstrip("/").rsplit("/", 1)[0] if "/" in path else "."


def numpy_batch(table: pa.Table) -> dict[str, np.ndarray]:
    """A table as Ray Data's ``batch_format="numpy"`` hands it to a batch function.

    List columns become object arrays of 1-D arrays (None for nulls), others object arrays.
    """
    out = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            out[name] = np.array([None if v is None else np.asarray(v)
                                  for v in col.to_numpy(zero_copy_only=False)], dtype=object)
        else:
            out[name] = np.asarray(col.to_pylist(), dtype=object)
    return out
