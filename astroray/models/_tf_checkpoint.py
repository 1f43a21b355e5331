"""Read TensorFlow 2 checkpoints (tensor bundles) without TensorFlow.

A TF checkpoint with prefix ``P`` is ``P.index`` plus ``P.data-0000i-of-0000n``. The index is
a LevelDB-format table (an SSTable: prefix-compressed key/value blocks, an index block and a
48-byte footer ending in a magic number) whose keys are the variables' checkpoint names and
whose values are serialised ``BundleEntryProto`` messages (dtype, shape, shard, offset, size,
masked CRC32C of the bytes); the empty key holds the ``BundleHeaderProto``. The data shards
hold the raw little-endian tensor bytes. Both formats are documented in TensorFlow's
``tensorflow/core/util/tensor_bundle`` and LevelDB's ``table_format.md``; the few protobuf
fields needed are decoded here by hand, so that reading the published Astromer weights needs
neither TensorFlow nor protobuf.

Every problem (a missing file, a truncated shard, a checksum mismatch, a compressed table)
raises :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CheckpointError", "TFCheckpoint", "crc32c"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER = 5  # compression type (1 byte) + masked crc32c (4 bytes)
# TensorFlow DataType enum -> numpy dtype (little-endian), for the numeric types a model holds.
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?",
           14: "<u2", 17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8"}
_BFLOAT16, _STRING = 14, 7


class CheckpointError(ValueError):
    """A TensorFlow checkpoint that cannot be read; the message names the file."""


def _crc_table() -> np.ndarray:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table[i] = c
    return table


_CRC_TABLE: list[int] = _crc_table().tolist()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as LevelDB and TensorFlow compute it."""
    table = _CRC_TABLE
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    # LevelDB / TensorFlow store crc32c masked: rotate right 15 after adding a constant.
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError(f"{where}: truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError(f"{where}: malformed varint")


def _proto_fields(buf: bytes, where: str) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialised protobuf message."""
    fields, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos, where)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos, where)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"{where}: unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise CheckpointError(f"{where}: truncated protobuf field {number}")
        fields.append((number, wire, value))
    return fields


class _Entry:
    """A decoded ``BundleEntryProto``."""

    __slots__ = ("crc", "dtype", "offset", "shape", "shard", "size", "slices")

    def __init__(self, raw: bytes, where: str):
        self.dtype, self.shape, self.shard, self.offset, self.size = 0, (), 0, 0, 0
        self.crc: int | None = None
        self.slices = False
        for number, _, value in _proto_fields(raw, where):
            if number == 1:
                self.dtype = int(value)
            elif number == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}
                dims = []
                for n, _, dim in _proto_fields(bytes(value), where):
                    if n == 2:
                        size = next((int(v) for k, _, v in _proto_fields(bytes(dim), where)
                                     if k == 1), 0)
                        dims.append(size)
                self.shape = tuple(dims)
            elif number == 3:
                self.shard = int(value)
            elif number == 4:
                self.offset = int(value)
            elif number == 5:
                self.size = int(value)
            elif number == 6:
                self.crc = int(value)
            elif number == 7:
                self.slices = True


def _read_block(data: bytes, offset: int, size: int, where: str) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one table block (with its trailer checked)."""
    end = offset + size
    if end + _BLOCK_TRAILER > len(data):
        raise CheckpointError(f"{where}: block at {offset} runs past the end of the file "
                              "(truncated index)")
    block = data[offset:end]
    compression = data[end]
    if compression != 0:
        raise CheckpointError(f"{where}: compressed table blocks (type {compression}) are not "
                              "supported; TensorFlow writes checkpoint indexes uncompressed")
    stored = int.from_bytes(data[end + 1:end + 5], "little")
    if _unmask(stored) != crc32c(block + bytes([compression])):
        raise CheckpointError(f"{where}: checksum mismatch in the block at {offset} (corrupt "
                              "index)")
    if len(block) < 4:
        raise CheckpointError(f"{where}: block at {offset} is too short")
    num_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 * (num_restarts + 1)
    if limit < 0:
        raise CheckpointError(f"{where}: malformed block at {offset}")
    pairs, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos, where)
        unshared, pos = _varint(block, pos, where)
        value_len, pos = _varint(block, pos, where)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise CheckpointError(f"{where}: malformed entry in the block at {offset}")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        pairs.append((key, block[pos:pos + value_len]))
        pos += value_len
    return pairs


class TFCheckpoint:
    """The variables of a TensorFlow checkpoint, read as numpy arrays.

    Args:
        prefix: the checkpoint prefix (``dir/weights`` for ``dir/weights.index``), or a
            folder holding a ``checkpoint`` state file (whose ``model_checkpoint_path`` is used)
            or exactly one ``*.index`` file.

    Raises:
        CheckpointError: when the index or a data shard is missing or malformed.
    """

    def __init__(self, prefix: str | Path):
        self.prefix = _resolve_prefix(Path(prefix))
        index = self.prefix.with_name(self.prefix.name + ".index")
        self.index_path = index
        raw = index.read_bytes()
        where = str(index)
        if len(raw) < _FOOTER_SIZE:
            raise CheckpointError(f"{where}: too short to be a checkpoint index ({len(raw)} bytes)")
        footer = raw[-_FOOTER_SIZE:]
        if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
            raise CheckpointError(f"{where}: not a TensorFlow checkpoint index (bad magic number)")
        pos = 0
        _meta_off, pos = _varint(footer, pos, where)
        _meta_size, pos = _varint(footer, pos, where)
        index_off, pos = _varint(footer, pos, where)
        index_size, pos = _varint(footer, pos, where)
        self._entries: dict[str, _Entry] = {}
        self.num_shards = 1
        for _, handle in _read_block(raw, index_off, index_size, where):
            off, p = _varint(handle, 0, where)
            size, _ = _varint(handle, p, where)
            for key, value in _read_block(raw, off, size, where):
                if key == b"":  # BundleHeaderProto: int32 num_shards = 1; endianness = 2
                    for number, _, v in _proto_fields(value, where):
                        if number == 1:
                            self.num_shards = int(v)
                        elif number == 2 and int(v) != 0:
                            raise CheckpointError(f"{where}: big-endian checkpoints are not "
                                                  "supported")
                    continue
                self._entries[key.decode("utf-8")] = _Entry(value, where)
        self._shards: dict[int, bytes] = {}

    def keys(self) -> list[str]:
        """The checkpoint's tensor names, sorted."""
        return sorted(self._entries)

    def shape(self, key: str) -> tuple[int, ...]:
        """The shape of tensor ``key``."""
        return self._entry(key).shape

    def _entry(self, key: str) -> _Entry:
        try:
            return self._entries[key]
        except KeyError:
            raise KeyError(f"{self.index_path}: no tensor {key!r}") from None

    def _shard(self, shard: int) -> tuple[bytes, Path]:
        path = self.prefix.with_name(
            f"{self.prefix.name}.data-{shard:05d}-of-{self.num_shards:05d}")
        if shard not in self._shards:
            if not path.is_file():
                raise CheckpointError(f"{path}: data shard not found (checkpoint {self.prefix} "
                                      "is incomplete)")
            self._shards[shard] = path.read_bytes()
        return self._shards[shard], path

    def read(self, key: str, *, verify: bool = True) -> np.ndarray:
        """Tensor ``key`` as a numpy array (float32 stays float32; bfloat16 becomes float32).

        Raises:
            KeyError: for an unknown name.
            CheckpointError: for a truncated shard, a checksum mismatch or an unsupported
                tensor (strings, sliced partitions).
        """
        entry = self._entry(key)
        data, path = self._shard(entry.shard)
        if entry.slices:
            raise CheckpointError(f"{self.index_path}: {key!r} is stored as partitioned slices, "
                                  "which are not supported")
        if entry.dtype == _STRING or entry.dtype not in _DTYPES:
            raise CheckpointError(f"{self.index_path}: {key!r} has TensorFlow dtype "
                                  f"{entry.dtype}, not a numeric tensor")
        end = entry.offset + entry.size
        if end > len(data):
            raise CheckpointError(f"{path}: truncated: {key!r} needs bytes {entry.offset}-{end} "
                                  f"but the file has {len(data)}")
        raw = data[entry.offset:end]
        if verify and entry.crc is not None and _unmask(entry.crc) != crc32c(raw):
            raise CheckpointError(f"{path}: checksum mismatch for {key!r} (corrupt data file)")
        dtype = np.dtype(_DTYPES[entry.dtype])
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if count * dtype.itemsize != len(raw):
            raise CheckpointError(f"{self.index_path}: {key!r} has {len(raw)} bytes for shape "
                                  f"{entry.shape} of {dtype}")
        array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
        if entry.dtype == _BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array.astype(array.dtype.newbyteorder("="), copy=True)


def _resolve_prefix(path: Path) -> Path:
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            for line in state.read_text().splitlines():
                if line.startswith("model_checkpoint_path:"):
                    name = line.split(":", 1)[1].strip().strip('"')
                    return _resolve_prefix(path / name)
        indexes = sorted(path.glob("*.index"))
        if len(indexes) != 1:
            raise CheckpointError(f"{path}: expected one TensorFlow checkpoint (*.index) in the "
                                  f"folder, found {len(indexes)}")
        return indexes[0].with_suffix("")
    if path.suffix == ".index":
        path = path.with_suffix("")
    index = path.with_name(path.name + ".index")
    if not index.is_file():
        raise CheckpointError(f"{index}: checkpoint index not found")
    return path

