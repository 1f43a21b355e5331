"""File access shared by the readers: local paths and URIs (s3://, gs://, ...) via pyarrow.fs."""

from __future__ import annotations

import gzip
import os
import zlib
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


def expand_paths(paths: list[str] | tuple[str, ...] | str) -> tuple[list[str], list[str]]:
    """Expand files and directories (recursively) into a sorted list of files.

    Hidden files and folders (name starting with ``.`` or ``_``) are skipped, as Ray Data and
    Spark do.

    Returns:
        (files, missing): the files found and the input paths that do not exist.
    """
    if isinstance(paths, str):
        paths = [paths]
    files: list[str] = []
    missing: list[str] = []
    for path in paths:
        fs, inner = resolve(str(path))
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.NotFound:
            missing.append(str(path))
        elif info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(inner, recursive=True)
            for item in fs.get_file_info(selector):
                if item.type != pafs.FileType.File:
                    continue
                rel = os.path.relpath(item.path, inner)
                if any(part.startswith((".", "_")) for part in rel.split(os.sep)):
                    continue
                files.append(_join(item.path, str(path)))
        else:
            files.append(_join(inner, str(path)))
    # Stable, de-duplicated order keeps plans (and error file names) deterministic.
    return sorted(dict.fromkeys(files)), missing


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
