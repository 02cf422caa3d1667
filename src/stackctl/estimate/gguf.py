"""Read a GGUF header: metadata and the tensor table, never the weights.

The layout follows ggml's docs/gguf.md (version 2 and 3): magic "GGUF", version, tensor count,
kv count, kvs, tensor infos, then aligned data. Only the header is read, so a 100 GB file costs
a few MB of I/O. Anything malformed raises `EstimateError` naming the file.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from stackctl.errors import EstimateError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# A header bigger than this is not a model we can read (tokenizer arrays are a few MB).
MAX_STRING = 1 << 24
MAX_ARRAY = 1 << 26
# The largest published GGUFs hold a few thousand tensors (MoE experts are stacked 3-D tensors);
# 65536 leaves a wide margin and keeps a hostile count from costing seconds of parsing.
MAX_TENSORS = 1 << 16
MAX_ARRAY_NESTING = 2  # GGUF writers emit flat arrays; deeper nesting is a hostile file

# GGUF metadata value types (docs/gguf.md): id -> struct format, or None for string/array.
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING = 8
_ARRAY = 9


@dataclass(frozen=True)
class GgufTensor:
    name: str
    type_id: int
    shape: tuple[int, ...]
    offset: int

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


@dataclass
class GgufFile:
    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[GgufTensor] = field(default_factory=list)
    data_offset: int = 0
    file_size: int = 0

    @property
    def arch(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_key(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.arch}.{key}", default)


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self.handle = handle
        self.path = path
        self.size = size

    def fail(self, what: str) -> EstimateError:
        return EstimateError(f"{self.path}: not a readable GGUF file: {what}")

    def take(self, size: int) -> bytes:
        if size > self.size - self.handle.tell():  # never allocate for bytes the file lacks
            raise self.fail("truncated header")
        data = self.handle.read(size)
        if len(data) != size:
            raise self.fail("truncated header")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        size = self.unpack("<Q")
        if size > MAX_STRING:
            raise self.fail(f"string of {size} bytes")
        return self.take(size).decode("utf-8", errors="replace")

    def value(self, type_id: int, nesting: int = 0) -> Any:
        if type_id in _SCALARS:
            return self.unpack(_SCALARS[type_id])
        if type_id == _STRING:
            return self.string()
        if type_id == _ARRAY:
            item_type = self.unpack("<I")
            count = self.unpack("<Q")
            if count > MAX_ARRAY:
                raise self.fail(f"array of {count} items")
            if item_type == _ARRAY and nesting >= MAX_ARRAY_NESTING:
                raise self.fail(f"arrays nested more than {MAX_ARRAY_NESTING} deep")
            if item_type in _SCALARS:
                fmt = _SCALARS[item_type]
                width = struct.calcsize(fmt)
                raw = self.take(width * count)
                return list(struct.unpack(f"<{count}{fmt[1:]}", raw))
            return [self.value(item_type, nesting + 1) for _ in range(count)]
        raise self.fail(f"unknown metadata value type {type_id}")


def read_gguf(path: Path) -> GgufFile:
    """The metadata and tensor table of the GGUF at `path`."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            gguf = _read_header(_Reader(handle, path, size))
    except FileNotFoundError:
        raise EstimateError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise EstimateError(f"{path}: is a directory, not a GGUF file") from None
    except OSError as exc:
        raise EstimateError(f"{path}: cannot read: {exc}") from None
    gguf.file_size = size
    _check_extent(gguf)
    return gguf


def _read_header(reader: _Reader) -> GgufFile:
    magic = reader.handle.read(4)
    if magic != GGUF_MAGIC:
        raise reader.fail(f"magic is {magic!r}, expected b'GGUF'")
    version = reader.unpack("<I")
    if version not in (2, 3):
        raise reader.fail(f"unsupported GGUF version {version}")
    n_tensors = reader.unpack("<Q")
    n_kv = reader.unpack("<Q")
    if n_tensors > MAX_TENSORS or n_kv > MAX_TENSORS:
        raise reader.fail(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")
    gguf = GgufFile(path=reader.path, version=version)
    for _ in range(n_kv):
        key = reader.string()
        gguf.metadata[key] = reader.value(reader.unpack("<I"))
    seen: set[str] = set()
    for _ in range(n_tensors):
        name = reader.string()
        if name in seen:  # llama.cpp's gguf reader refuses these too: fail at the first repeat
            raise reader.fail(f"tensor name {name!r} appears twice")
        seen.add(name)
        n_dims = reader.unpack("<I")
        if n_dims > 8:
            raise reader.fail(f"tensor {name} has {n_dims} dimensions")
        shape = tuple(reader.unpack("<Q") for _ in range(n_dims))
        type_id = reader.unpack("<I")
        offset = reader.unpack("<Q")
        gguf.tensors.append(GgufTensor(name=name, type_id=type_id, shape=shape, offset=offset))
    alignment = gguf.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment < 1:
        raise reader.fail(f"general.alignment is {alignment!r}, not a positive integer")
    position = reader.handle.tell()
    gguf.data_offset = (position + alignment - 1) // alignment * alignment
    return gguf


def _check_extent(gguf: GgufFile) -> None:
    """A file cut short after the header still fails here, not deep inside an engine."""
    if not gguf.tensors:
        return
    last = max(gguf.tensors, key=lambda t: t.offset)
    if gguf.data_offset + last.offset > gguf.file_size:
        raise EstimateError(
            f"{gguf.path}: truncated GGUF: tensor data ends before tensor '{last.name}' "
            f"(file is {gguf.file_size} bytes)"
        )
