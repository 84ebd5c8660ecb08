"""Pure-Python reader for Qt binary resource bundles (``.rcc`` files).

Layout (all integers big-endian), as written by Qt's ``rcc --binary``::

    header   b"qres", u32 version, u32 tree_offset, u32 data_offset, u32 names_offset
             [version >= 3: u32 overall_flags]
    tree     one node per entry; node 0 is the root directory.
             u32 name_offset, u16 flags, then
               directory (flags & 2): u32 child_count, u32 first_child_index
               file:                  u16 territory, u16 language, u32 data_offset
             [version >= 2: u64 last_modified (ms since epoch)]
             -> 14 bytes per node in version 1, 22 bytes from version 2 on.
    names    u16 length (UTF-16 code units), u32 qt_hash(name), UTF-16BE name
    data     u32 size, payload
             flags & 1 (zlib):  payload = u32 uncompressed size + zlib stream (qCompress)
             flags & 4 (zstd):  payload = one zstd frame
             otherwise the payload is stored as is.

Children of a directory are consecutive nodes sorted by ``qt_hash`` of their names.
Photos inside GCompris bundles are stored uncompressed (rcc keeps an entry
uncompressed when compression would not save enough), texts and SVGs are
zlib/zstd-compressed.  zstd entries are decoded with the optional ``zstandard``
module, Python's ``compression.zstd`` (3.14+) or the ``zstd`` command-line tool,
whichever exists; only if none is available does reading such an entry fail.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator

MAGIC = b"qres"
FLAG_ZLIB = 0x01
FLAG_DIRECTORY = 0x02
FLAG_ZSTD = 0x04


class RccError(ValueError):
    """The file is not a readable Qt resource bundle."""


def qt_hash(name: str) -> int:
    """The 28-bit name hash rcc stores with every name (Qt's ``qt_hash``)."""
    h = 0
    units = name.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = ((h << 4) + ((units[i] << 8) | units[i + 1])) & 0xFFFFFFFF
        h ^= (h & 0xF0000000) >> 23
        h &= 0x0FFFFFFF
    return h


def _zstd_decompress(payload: bytes) -> bytes:
    try:
        import zstandard  # type: ignore

        return zstandard.ZstdDecompressor().decompressobj().decompress(payload)
    except ImportError:
        pass
    try:
        from compression import zstd  # type: ignore  # Python >= 3.14

        return zstd.decompress(payload)
    except ImportError:
        pass
    exe = shutil.which("zstd")
    if exe:
        res = subprocess.run([exe, "-d", "-c", "-q"], input=payload, capture_output=True, check=False)
        if res.returncode == 0:
            return res.stdout
        raise RccError("zstd could not decode an entry: " + res.stderr.decode(errors="replace"))
    raise RccError("entry is zstd-compressed; install the 'zstandard' module or the zstd tool")


@dataclass(frozen=True)
class RccEntry:
    path: str  # "/dir/sub/name.ext", without a leading ':'
    flags: int
    offset: int  # absolute offset of the entry's u32 size field
    size: int  # stored (possibly compressed) size

    @property
    def compression(self) -> str:
        if self.flags & FLAG_ZLIB:
            return "zlib"
        if self.flags & FLAG_ZSTD:
            return "zstd"
        return "none"


class RccReader:
    """Random access to the files in an ``.rcc`` bundle held in memory."""

    def __init__(self, data: bytes):
        if len(data) < 20 or data[:4] != MAGIC:
            raise RccError("not a Qt resource bundle (missing 'qres' magic)")
        self.data = data
        self.version, self.tree, self.payload, self.names = struct.unpack_from(">IIII", data, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"unsupported rcc format version {self.version}")
        self.node_size = 14 if self.version == 1 else 22
        for off in (self.tree, self.payload, self.names):
            if off >= len(data):
                raise RccError("section offset beyond end of file")
        self._entries: list[RccEntry] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RccReader":
        with open(path, "rb") as f:
            return cls(f.read())

    # -- low level -------------------------------------------------------
    def _name(self, offset: int) -> str:
        pos = self.names + offset
        if pos + 6 > len(self.data):
            raise RccError("name offset beyond end of file")
        (n,) = struct.unpack_from(">H", self.data, pos)
        raw = self.data[pos + 6 : pos + 6 + 2 * n]
        if len(raw) != 2 * n:
            raise RccError("name runs past end of file")
        return raw.decode("utf-16-be")

    def _node(self, index: int) -> tuple[int, int, int, int]:
        pos = self.tree + index * self.node_size
        if pos + 14 > len(self.data):
            raise RccError(f"tree node {index} beyond end of file")
        name_off, flags = struct.unpack_from(">IH", self.data, pos)
        a, b = struct.unpack_from(">II", self.data, pos + 6)  # (count, first) or ((terr<<16)|lang, data)
        return name_off, flags, a, b

    def _walk(self, index: int, prefix: str, depth: int, out: list[RccEntry]) -> None:
        if depth > 64:
            raise RccError("directory tree too deep (corrupt file?)")
        name_off, flags, a, b = self._node(index)
        name = self._name(name_off) if index else ""
        path = f"{prefix}/{name}" if index else ""
        if flags & FLAG_DIRECTORY:
            for child in range(b, b + a):
                if child <= index:
                    raise RccError("directory child index loops back")
                self._walk(child, path, depth + 1, out)
        else:
            pos = self.payload + b
            if pos + 4 > len(self.data):
                raise RccError(f"data of {path} beyond end of file")
            (size,) = struct.unpack_from(">I", self.data, pos)
            if pos + 4 + size > len(self.data):
                raise RccError(f"data of {path} truncated")
            out.append(RccEntry(path, flags, pos, size))

    # -- public API ------------------------------------------------------
    def entries(self) -> list[RccEntry]:
        """All files (not directories), in tree order."""
        if self._entries is None:
            out: list[RccEntry] = []
            self._walk(0, "", 0, out)
            self._entries = out
        return list(self._entries)

    def paths(self) -> list[str]:
        return [e.path for e in self.entries()]

    def read(self, entry: RccEntry | str) -> bytes:
        """The uncompressed bytes of one file (entry or its path)."""
        if isinstance(entry, str):
            key = "/" + entry.lstrip(":/")
            found = [e for e in self.entries() if e.path == key]
            if not found:
                raise KeyError(entry)
            entry = found[0]
        raw = self.data[entry.offset + 4 : entry.offset + 4 + entry.size]
        if entry.flags & FLAG_ZLIB:
            if len(raw) < 4:
                raise RccError(f"zlib entry {entry.path} too short")
            (expect,) = struct.unpack_from(">I", raw, 0)
            out = zlib.decompress(raw[4:])
            if len(out) != expect:
                raise RccError(f"zlib entry {entry.path}: size {len(out)} != {expect}")
            return out
        if entry.flags & FLAG_ZSTD:
            return _zstd_decompress(raw)
        return raw

    def iter_files(self, accept: Callable[[str], bool] | None = None) -> Iterator[tuple[str, bytes]]:
        """Yield (path, bytes) for each file whose path passes ``accept``."""
        for e in self.entries():
            if accept is None or accept(e.path):
                yield e.path, self.read(e)

    def extract(self, outdir: str | os.PathLike, accept: Callable[[str], bool] | None = None) -> list[str]:
        """Write accepted files below ``outdir`` (keeping their paths); return the written paths."""
        written = []
        root = os.path.abspath(outdir)
        for path, blob in self.iter_files(accept):
            dst = os.path.abspath(os.path.join(root, path.lstrip("/")))
            if not dst.startswith(root + os.sep):
                raise RccError(f"unsafe path in bundle: {path}")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(blob)
            written.append(dst)
        return written


def main(argv: list[str] | None = None) -> int:
    """``python -m inpaint_gui.training.rcc FILE.rcc [OUTDIR]``: list or extract a bundle."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m inpaint_gui.training.rcc FILE.rcc [OUTDIR]")
        return 2
    r = RccReader.open(args[0])
    if len(args) > 1:
        print(f"extracted {len(r.extract(args[1]))} files")
    else:
        for e in r.entries():
            print(f"{e.size:10d} {e.compression:4s} {e.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
