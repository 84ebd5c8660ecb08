"""Process memory settings that make CPU forwards cheaper (Linux/glibc; no-ops elsewhere).

A CPU forward allocates and frees many large activations (an AOT-GAN forward on an 812² window:
about 3.6 GB in tensors of 40-340 MB). glibc serves every allocation above its mmap threshold
(32 MiB at most) with fresh ``mmap`` pages and unmaps them on free, so each such tensor pays a
page fault per 4 KiB page when it is first written: ~930 000 faults and ~2 s of kernel CPU time
per forward on a 2-core Xeon VM.

* :func:`reuse_freed_memory`: for the duration of a forward, large blocks come from the heap and
  stay there when freed, so later tensors of the forward reuse already mapped pages; on exit
  the free memory is returned to the system (``malloc_trim``), so the process does not keep the
  forward's peak between fills.
* :func:`request_torch_huge_pages`: asks PyTorch (``THP_MEM_ALLOC_ENABLE``) to back tensors of
  2 MiB and more with transparent huge pages: one fault per 2 MiB instead of per 4 KiB. It only
  takes effect before torch is imported (the app and the CLI call it first thing).

Outputs are unaffected: only where the bytes live changes. ``INPAINT_HEAP_REUSE=0`` and
``INPAINT_HUGE_PAGES=0`` turn either off.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

__all__ = ["reuse_freed_memory", "request_torch_huge_pages", "heap_reuse_available"]

# glibc mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_DEFAULT_MMAP_MAX = 65536
# Any mallopt() call freezes glibc's dynamic thresholds, which a process that frees large
# blocks raises towards 32 MiB (mmap) and 64 MiB (trim) within its first forwards; on leaving,
# the thresholds are set to those values (not the start-up 128 KiB, which would unmap and
# re-fault every block above 128 KiB).
_STEADY_MMAP_THRESHOLD = 32 << 20
_STEADY_TRIM_THRESHOLD = 64 << 20
_NO_TRIM = -1  # mallopt(M_TRIM_THRESHOLD, -1): never trim (malloc(3))

_lock = threading.Lock()
_depth = 0
_libc: "Optional[ctypes.CDLL]" = None
_libc_checked = False


def _glibc() -> "Optional[ctypes.CDLL]":
    """The C library when it is glibc (has ``mallopt`` and ``malloc_trim``), else None."""
    global _libc, _libc_checked
    if not _libc_checked:
        _libc_checked = True
        if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
            try:
                lib = ctypes.CDLL(None)
                lib.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                lib.mallopt.restype = ctypes.c_int
                lib.malloc_trim.argtypes = (ctypes.c_size_t,)
                lib.malloc_trim.restype = ctypes.c_int
                _libc = lib
            except (OSError, AttributeError):
                _libc = None
    return _libc


def _enabled(var: str) -> bool:
    return os.environ.get(var, "1").strip().lower() not in ("0", "false", "no", "off")


def heap_reuse_available() -> bool:
    """True when :func:`reuse_freed_memory` changes anything here (glibc, not disabled)."""
    return _enabled("INPAINT_HEAP_REUSE") and _glibc() is not None


@contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Serve large allocations from the heap while the block runs (nestable, thread-safe);
    when the last block ends, set glibc's steady-state thresholds and return free memory to the
    system. Yields whether it is active."""
    global _depth
    lib = _glibc() if _enabled("INPAINT_HEAP_REUSE") else None
    if lib is None:
        yield False
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            lib.mallopt(_M_MMAP_MAX, 0)                 # no fresh mmap per large block
            lib.mallopt(_M_TRIM_THRESHOLD, _NO_TRIM)    # keep freed blocks mapped meanwhile
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                lib.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                lib.mallopt(_M_MMAP_THRESHOLD, _STEADY_MMAP_THRESHOLD)
                lib.mallopt(_M_TRIM_THRESHOLD, _STEADY_TRIM_THRESHOLD)
                lib.malloc_trim(0)


def request_torch_huge_pages() -> bool:
    """Ask PyTorch to put tensors of >= 2 MiB on transparent huge pages (Linux), unless the
    user set ``THP_MEM_ALLOC_ENABLE`` or ``INPAINT_HUGE_PAGES=0``. Returns True when the
    request is in place; False when it cannot work (not Linux, or torch already imported:
    PyTorch reads the variable once)."""
    if not sys.platform.startswith("linux") or not _enabled("INPAINT_HUGE_PAGES"):
        return False
    if "THP_MEM_ALLOC_ENABLE" in os.environ:
        return os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    if "torch" in sys.modules:
        return False
    os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
    return True
