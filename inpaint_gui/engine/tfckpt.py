"""Pure-Python reader for TensorFlow V2 checkpoints (no TensorFlow needed).

A V2 checkpoint ``<prefix>`` is
  * ``<prefix>.index``: an SSTable (LevelDB table format) mapping tensor names to serialized
    ``BundleEntryProto`` messages; the entry with the empty key is a ``BundleHeaderProto``;
  * ``<prefix>.data-<shard:05d>-of-<num:05d>``: raw tensor bytes at the offsets the entries give.

Only what TensorFlow's ``tf.train.Saver`` / ``tf.train.Checkpoint`` writes is needed: table blocks
without compression (snappy blocks are decoded too, just in case), the fixed 48-byte footer, and
the protobuf messages above, which are decoded here by hand (varints, length-delimited fields).

    reader = CheckpointReader("checkpoints/celebahq-srn-subpixel/snap-80000")
    reader.keys(); reader.get_variable_to_shape_map(); reader.get_tensor(name) -> np.ndarray
    read_checkpoint(prefix, names=None) -> {name: ndarray}

Errors are :class:`TFCheckpointError` with a message meant for the user.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c


class TFCheckpointError(Exception):
    """A TensorFlow checkpoint that cannot be read; the message says why."""


# --------------------------------------------------------------------------- crc32c (Castagnoli)

def _make_crc_table() -> List[int]:
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()


def _crc32c_py(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    tbl = _CRC_TABLE
    for b in data:
        crc = tbl[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fast_crc32c() -> Optional[Callable[[bytes], int]]:
    """A C implementation if one happens to be installed (never required)."""
    try:  # pragma: no cover - optional dependency
        import google_crc32c  # type: ignore
        if google_crc32c.implementation == "c":
            return lambda data: int(google_crc32c.value(bytes(data)))
    except Exception:
        pass
    try:  # pragma: no cover - optional dependency
        import crc32c as _c  # type: ignore
        return lambda data: _c.crc32c(bytes(data))
    except Exception:
        return None


_FAST_CRC = _fast_crc32c()


def crc32c(data: bytes) -> int:
    if _FAST_CRC is not None:
        return _FAST_CRC(data) & 0xFFFFFFFF
    return _crc32c_py(data)


def unmask_crc(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# --------------------------------------------------------------------------- varints / protobuf

def read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns (value, new position)."""
    result = 0
    shift = 0
    n = len(buf)
    while True:
        if pos >= n:
            raise TFCheckpointError("truncated varint in checkpoint index")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise TFCheckpointError("malformed varint in checkpoint index")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def parse_proto(buf: bytes) -> Dict[int, list]:
    """Minimal protobuf wire decoder: {field number: [raw values]}.

    varint -> int, fixed64 -> 8 bytes, fixed32 -> 4 bytes, length-delimited -> bytes."""
    fields: Dict[int, list] = {}
    pos = 0
    n = len(buf)
    while pos < n:
        tag, pos = read_varint(buf, pos)
        fno, wt = tag >> 3, tag & 7
        if wt == 0:
            val, pos = read_varint(buf, pos)
        elif wt == 1:
            val = buf[pos:pos + 8]
            pos += 8
        elif wt == 2:
            ln, pos = read_varint(buf, pos)
            val = buf[pos:pos + ln]
            pos += ln
        elif wt == 5:
            val = buf[pos:pos + 4]
            pos += 4
        else:
            raise TFCheckpointError(f"unsupported protobuf wire type {wt} in checkpoint index")
        if pos > n:
            raise TFCheckpointError("truncated protobuf message in checkpoint index")
        fields.setdefault(fno, []).append(val)
    return fields


def _first(fields: Dict[int, list], fno: int, default=None):
    vals = fields.get(fno)
    return vals[-1] if vals else default  # protobuf: last value wins for scalars


# --------------------------------------------------------------------------- dtypes

# tensorflow/core/framework/types.proto DataType -> numpy dtype (little-endian)
_DTYPES: Dict[int, Tuple[str, Optional[str]]] = {
    1: ("float32", "<f4"),
    2: ("float64", "<f8"),
    3: ("int32", "<i4"),
    4: ("uint8", "u1"),
    5: ("int16", "<i2"),
    6: ("int8", "i1"),
    7: ("string", None),
    8: ("complex64", "<c8"),
    9: ("int64", "<i8"),
    10: ("bool", "?"),
    11: ("qint8", "i1"),
    12: ("quint8", "u1"),
    13: ("qint32", "<i4"),
    14: ("bfloat16", "<u2"),
    15: ("qint16", "<i2"),
    16: ("quint16", "<u2"),
    17: ("uint16", "<u2"),
    18: ("complex128", "<c16"),
    19: ("float16", "<f2"),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", "<u4"),
    23: ("uint64", "<u8"),
}


def dtype_name(code: int) -> str:
    code = code - 100 if code > 100 else code  # *_REF types
    return _DTYPES.get(code, (f"dtype#{code}", None))[0]


# --------------------------------------------------------------------------- snappy (fallback)

def snappy_decompress(data: bytes) -> bytes:
    """Raw snappy block decoder (TF writes uncompressed index tables; this is a safety net)."""
    length, pos = read_varint(data, 0)
    out = bytearray()
    n = len(data)
    while pos < n:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(data[pos:pos + nb], "little")
                pos += nb
            ln += 1
            out += data[pos:pos + ln]
            pos += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        if off <= 0 or off > len(out):
            raise TFCheckpointError("corrupt snappy block in checkpoint index")
        start = len(out) - off
        for i in range(ln):  # may overlap
            out.append(out[start + i])
    if len(out) != length:
        raise TFCheckpointError("corrupt snappy block in checkpoint index (length mismatch)")
    return bytes(out)


# --------------------------------------------------------------------------- SSTable

def _read_handle(buf: bytes, pos: int) -> Tuple[Tuple[int, int], int]:
    off, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return (off, size), pos


def _read_block(table: bytes, handle: Tuple[int, int], verify: bool = True) -> bytes:
    off, size = handle
    end = off + size
    if end + BLOCK_TRAILER_SIZE > len(table):
        raise TFCheckpointError("checkpoint index is truncated (block past the end of the file)")
    data = table[off:end]
    ctype = table[end]
    if verify:
        (masked,) = struct.unpack("<I", table[end + 1:end + 5])
        if crc32c(table[off:end + 1]) != unmask_crc(masked):
            raise TFCheckpointError("checkpoint index is corrupt (block checksum mismatch)")
    if ctype == 0:
        return data
    if ctype == 1:
        return snappy_decompress(data)
    raise TFCheckpointError(f"checkpoint index uses unsupported block compression {ctype}")


def _iter_block(block: bytes) -> Iterator[Tuple[bytes, bytes]]:
    if len(block) < 4:
        raise TFCheckpointError("checkpoint index block too short")
    (num_restarts,) = struct.unpack("<I", block[-4:])
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise TFCheckpointError("checkpoint index block has a bad restart array")
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        vlen, pos = read_varint(block, pos)
        if shared > len(key) or pos + non_shared + vlen > limit:
            raise TFCheckpointError("checkpoint index block entry is corrupt")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        value = block[pos:pos + vlen]
        pos += vlen
        yield key, value


def iter_table(table: bytes, verify: bool = True) -> Iterator[Tuple[bytes, bytes]]:
    """All (key, value) pairs of an SSTable held in memory, in key order."""
    if len(table) < FOOTER_SIZE:
        raise TFCheckpointError("checkpoint index is too short to be an SSTable")
    footer = table[-FOOTER_SIZE:]
    (magic,) = struct.unpack("<Q", footer[-8:])
    if magic != TABLE_MAGIC:
        raise TFCheckpointError("not a TensorFlow V2 checkpoint index (bad table magic number)")
    _meta, pos = _read_handle(footer, 0)
    index_handle, _ = _read_handle(footer, pos)
    index_block = _read_block(table, index_handle, verify)
    for _last_key, handle_bytes in _iter_block(index_block):
        handle, _ = _read_handle(handle_bytes, 0)
        yield from _iter_block(_read_block(table, handle, verify))


# --------------------------------------------------------------------------- bundle entries

@dataclass
class BundleEntry:
    name: str
    dtype_code: int
    shape: Tuple[int, ...]
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: Optional[int] = None  # masked, as stored
    has_slices: bool = False

    @property
    def dtype(self) -> str:
        return dtype_name(self.dtype_code)


def _parse_shape(buf: bytes) -> Tuple[int, ...]:
    f = parse_proto(buf)
    if _first(f, 3, 0):
        raise TFCheckpointError("tensor with unknown rank in checkpoint")
    dims = []
    for d in f.get(2, []):
        df = parse_proto(d)
        dims.append(_signed64(_first(df, 1, 0)))
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> BundleEntry:
    f = parse_proto(buf)
    shape_buf = _first(f, 2, b"")
    crc = _first(f, 6)
    return BundleEntry(
        name=name,
        dtype_code=_first(f, 1, 0),
        shape=_parse_shape(shape_buf) if shape_buf else (),
        shard_id=_first(f, 3, 0),
        offset=_signed64(_first(f, 4, 0)),
        size=_signed64(_first(f, 5, 0)),
        crc32c=struct.unpack("<I", crc)[0] if crc is not None else None,
        has_slices=bool(f.get(7)),
    )


def resolve_prefix(path: "str | os.PathLike") -> str:
    """Accept a checkpoint prefix, its ``.index`` / ``.data-*`` file, or a directory holding a
    ``checkpoint`` state file (or exactly one ``*.index``). Returns the prefix."""
    p = Path(path)
    if p.is_dir():
        state = p / "checkpoint"
        if state.is_file():
            for line in state.read_text(errors="replace").splitlines():
                line = line.strip()
                if line.startswith("model_checkpoint_path:"):
                    val = line.split(":", 1)[1].strip().strip('"')
                    cand = Path(val) if os.path.isabs(val) else p / val
                    if Path(str(cand) + ".index").is_file():
                        return str(cand)
                    cand = p / Path(val).name  # saved elsewhere, moved here
                    if Path(str(cand) + ".index").is_file():
                        return str(cand)
        indexes = sorted(p.glob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0])[:-len(".index")]
        if not indexes:
            raise TFCheckpointError(f"{p} holds no TensorFlow checkpoint (*.index)")

        def step(q: Path) -> int:
            tail = q.name[:-len(".index")].rsplit("-", 1)[-1]
            return int(tail) if tail.isdigit() else -1
        return str(max(indexes, key=step))[:-len(".index")]
    s = str(p)
    if s.endswith(".index"):
        return s[:-len(".index")]
    if ".data-" in p.name:
        return str(p.parent / p.name.split(".data-")[0])
    if s.endswith(".meta") and Path(s[:-5] + ".index").is_file():
        return s[:-5]
    return s


class CheckpointReader:
    """Reads tensors from a TF V2 checkpoint (API modelled on ``tf.train.load_checkpoint``)."""

    def __init__(self, prefix: "str | os.PathLike", verify: "bool | str" = "auto") -> None:
        self.prefix = resolve_prefix(prefix)
        index_path = self.prefix + ".index"
        if not os.path.isfile(index_path):
            raise TFCheckpointError(f"checkpoint index not found: {index_path}")
        self.verify = verify
        with open(index_path, "rb") as f:
            table = f.read()
        self.num_shards = 1
        self.big_endian = False
        self.version: Optional[int] = None
        self.entries: Dict[str, BundleEntry] = {}
        for key, value in iter_table(table, verify=bool(verify)):
            if key == b"":
                hdr = parse_proto(value)
                self.num_shards = _first(hdr, 1, 1) or 1
                self.big_endian = _first(hdr, 2, 0) == 1
                ver = _first(hdr, 3)
                if ver is not None:
                    self.version = _first(parse_proto(ver), 1)
                continue
            name = key.decode("utf-8", errors="replace")
            self.entries[name] = _parse_entry(name, value)

    # -- inspection
    def keys(self) -> List[str]:
        return list(self.entries)

    def has_tensor(self, name: str) -> bool:
        return name in self.entries

    def get_variable_to_shape_map(self) -> Dict[str, List[int]]:
        return {k: list(e.shape) for k, e in self.entries.items()}

    def get_variable_to_dtype_map(self) -> Dict[str, str]:
        return {k: e.dtype for k, e in self.entries.items()}

    def shard_path(self, shard_id: int) -> str:
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    # -- reading
    def _read_bytes(self, e: BundleEntry) -> bytes:
        path = self.shard_path(e.shard_id)
        if not os.path.isfile(path):
            raise TFCheckpointError(f"checkpoint data file missing: {path}")
        with open(path, "rb") as f:
            f.seek(e.offset)
            raw = f.read(e.size)
        if len(raw) != e.size:
            raise TFCheckpointError(f"checkpoint data file {os.path.basename(path)} is truncated "
                                    f"(tensor {e.name!r})")
        check = self.verify is True or (self.verify == "auto" and (_FAST_CRC is not None or e.size <= 256 * 1024))
        if check and e.crc32c is not None and crc32c(raw) != unmask_crc(e.crc32c):
            raise TFCheckpointError(f"checksum mismatch for tensor {e.name!r} (corrupt data file)")
        return raw

    def get_tensor(self, name: str) -> np.ndarray:
        if name not in self.entries:
            raise KeyError(f"tensor {name!r} not in checkpoint {self.prefix}")
        e = self.entries[name]
        if e.has_slices:
            raise TFCheckpointError(f"tensor {name!r} is partitioned (sliced variables are not supported)")
        code = e.dtype_code - 100 if e.dtype_code > 100 else e.dtype_code
        kind, np_code = _DTYPES.get(code, (None, None))
        raw = self._read_bytes(e)
        count = int(np.prod(e.shape)) if e.shape else 1
        if kind == "string":
            return self._decode_strings(raw, count, e)
        if np_code is None:
            raise TFCheckpointError(f"tensor {name!r} has unsupported dtype {dtype_name(code)}")
        dt = np.dtype(np_code)
        if self.big_endian:
            dt = dt.newbyteorder(">")
        if len(raw) != count * dt.itemsize:
            raise TFCheckpointError(f"tensor {name!r}: {len(raw)} bytes for shape {e.shape} {kind}")
        arr = np.frombuffer(raw, dtype=dt, count=count).reshape(e.shape)
        if kind == "bfloat16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.astype(dt.newbyteorder("="), copy=True) if kind != "bfloat16" else arr.copy()

    @staticmethod
    def _decode_strings(raw: bytes, count: int, e: BundleEntry) -> np.ndarray:
        pos = 0
        lens = []
        for _ in range(count):
            ln, pos = read_varint(raw, pos)
            lens.append(ln)
        pos += 4  # masked crc32c of the length block
        out = []
        for ln in lens:
            out.append(bytes(raw[pos:pos + ln]))
            pos += ln
        arr = np.empty(count, dtype=object)
        arr[:] = out
        return arr.reshape(e.shape)

    def read_all(self, names: Optional[Iterable[str]] = None,
                 filter: Optional[Callable[[str], bool]] = None) -> Dict[str, np.ndarray]:
        keys = list(names) if names is not None else self.keys()
        return {k: self.get_tensor(k) for k in keys if filter is None or filter(k)}


def load_checkpoint(prefix: "str | os.PathLike", verify: "bool | str" = "auto") -> CheckpointReader:
    return CheckpointReader(prefix, verify=verify)


def read_checkpoint(prefix: "str | os.PathLike", names: Optional[Iterable[str]] = None,
                    filter: Optional[Callable[[str], bool]] = None) -> Dict[str, np.ndarray]:
    """{name: ndarray} for every (or the named / filtered) tensor of a TF V2 checkpoint."""
    return CheckpointReader(prefix).read_all(names, filter)


# --------------------------------------------------------------------------- writer (tests, export)

_NAME_TO_CODE = {v[0]: k for k, v in _DTYPES.items()
                 if v[1] is not None and not v[0].startswith("q") and v[0] != "bfloat16"}


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_varint(fno: int, v: int) -> bytes:
    return _varint(fno << 3) + _varint(v)


def _field_bytes(fno: int, data: bytes) -> bytes:
    return _varint((fno << 3) | 2) + _varint(len(data)) + data


def _block(entries: "list[tuple[bytes, bytes]]") -> bytes:
    out = bytearray()
    restarts = []
    for k, v in entries:  # restart interval 1: no key sharing
        restarts.append(len(out))
        out += _varint(0) + _varint(len(k)) + _varint(len(v)) + k + v
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts))
    return bytes(out)


def write_checkpoint(prefix: "str | os.PathLike", tensors: "Dict[str, np.ndarray]") -> str:
    """Write ``{name: ndarray}`` as a single-shard TF V2 checkpoint (``prefix.index`` +
    ``prefix.data-00000-of-00001``), byte-compatible with what TensorFlow reads. Numeric dtypes
    only. Used by tests and for exporting to TF tools; returns the prefix."""
    prefix = str(prefix)
    data = bytearray()
    entries = []
    for name in sorted(tensors, key=lambda s: s.encode("utf-8")):
        arr = np.asarray(tensors[name])
        code = _NAME_TO_CODE.get(arr.dtype.name)
        if code is None:
            raise TFCheckpointError(f"cannot write dtype {arr.dtype} ({name})")
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        shape = b"".join(_field_bytes(2, _field_varint(1, int(d))) for d in arr.shape)
        msg = _field_varint(1, code) + _field_bytes(2, shape)
        if len(data):
            msg += _field_varint(4, len(data))
        msg += _field_varint(5, len(raw))
        msg += _varint((6 << 3) | 5) + struct.pack("<I", mask_crc(crc32c(raw)))
        entries.append((name.encode("utf-8"), msg))
        data += raw
    header = _field_varint(1, 1) + _field_bytes(3, _field_varint(1, 1))
    table = bytearray()

    def add_block(content: bytes) -> bytes:
        off = len(table)
        table.extend(content)
        table.append(0)
        table.extend(struct.pack("<I", mask_crc(crc32c(content + b"\x00"))))
        return _varint(off) + _varint(len(content))

    all_entries = [(b"", header)] + entries
    data_handle = add_block(_block(all_entries))
    meta_handle = add_block(_block([]))
    index_handle = add_block(_block([(all_entries[-1][0], data_handle)]))
    footer = meta_handle + index_handle
    footer += b"\x00" * (40 - len(footer)) + struct.pack("<Q", TABLE_MAGIC)
    table.extend(footer)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    with open(prefix + ".data-00000-of-00001", "wb") as f:
        f.write(bytes(data))
    with open(prefix + ".index", "wb") as f:
        f.write(bytes(table))
    return prefix
