"""inpaint_gui.engine.memory: heap reuse around forwards, huge pages for torch tensors."""
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading

import numpy as np
import pytest

from inpaint_gui.engine import memory

BIG = 64 << 20  # bytes: above glibc's largest mmap threshold (32 MiB)
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

glibc_only = pytest.mark.skipif(not memory.heap_reuse_available(),
                                reason="heap reuse needs glibc (Linux)")


def _faults_of(fn) -> int:
    """Minor page faults of this thread while ``fn`` runs."""
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    before = resource.getrusage(who).ru_minflt
    fn()
    return resource.getrusage(who).ru_minflt - before


_libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
if _libc is not None:
    _libc.malloc.restype = ctypes.c_void_p
    _libc.malloc.argtypes = (ctypes.c_size_t,)
    _libc.free.argtypes = (ctypes.c_void_p,)


def _touch_big():
    """malloc, write, free a block like a large tensor (plain malloc: numpy asks the kernel
    for huge pages itself, torch does when told to)."""
    p = _libc.malloc(BIG)
    assert p
    ctypes.memset(p, 1, BIG)
    _libc.free(p)


def _reuse_check() -> str:
    """The heap-reuse measurement; "" when it holds, "huge pages" when faults are not counted
    per page here, else what failed."""
    pages = BIG // PAGE
    outside = _faults_of(_touch_big)
    if outside < pages // 2:
        return "huge pages"
    with memory.reuse_freed_memory() as active:
        if not active:
            return "not active"
        first = _faults_of(_touch_big)    # grows the heap: pays the faults once
        second = _faults_of(_touch_big)   # reuses the freed, still mapped block
        third = _faults_of(_touch_big)
    # on leaving, the free memory went back to the system: touching it again faults again
    after = _faults_of(_touch_big)
    ok = first >= pages // 2 and second < pages // 20 and third < pages // 20 and after >= pages // 2
    return "" if ok else f"faults first {first}, second {second}, third {third}, after {after} ({pages} pages)"


@glibc_only
def test_freed_blocks_are_reused_inside_and_returned_after():
    # in a fresh interpreter: what earlier tests left in this process's heap (free blocks kept
    # resident below the steady trim threshold, huge-page advice on heap ranges) changes the
    # faults the first block pays, not what the mode does
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_memory as t; "
            "print(repr(t._reuse_check()))")
    res = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = eval(res.stdout.strip().splitlines()[-1])
    if out == "huge pages":
        pytest.skip("the system backs malloc with huge pages: faults are not counted per page")
    assert out == "", out


@glibc_only
def test_nesting_and_threads_keep_it_on_until_the_last_exit():
    pages = BIG // PAGE
    if _faults_of(_touch_big) < pages // 2:
        pytest.skip("the system backs malloc with huge pages")
    entered, release = threading.Event(), threading.Event()

    def other():
        with memory.reuse_freed_memory():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert entered.wait(10)
    try:
        with memory.reuse_freed_memory():
            with memory.reuse_freed_memory():
                _touch_big()
            # the inner exit must not switch it off while the outer block (and the thread) run
            assert _faults_of(_touch_big) < pages // 20
        # still on: the other thread has not left
        _touch_big()
        assert _faults_of(_touch_big) < pages // 20
    finally:
        release.set()
        t.join(10)
    assert memory._depth == 0
    assert _faults_of(_touch_big) >= pages // 2


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("INPAINT_HEAP_REUSE", "0")
    assert not memory.heap_reuse_available()
    with memory.reuse_freed_memory() as active:
        assert active is False
    assert memory._depth == 0


def test_model_output_is_identical_with_and_without_heap_reuse(monkeypatch, one_thread):
    from inpaint_gui.engine import nets
    from inpaint_gui.engine.models.aot import SPEC, AOTModel
    import torch
    torch.manual_seed(0)
    model = AOTModel(SPEC, nets.create("aot", channels=8, block_num=2), device="cpu")
    rng = np.random.default_rng(1)
    img = rng.random((64, 64, 3), dtype=np.float32)
    msk = np.zeros((64, 64), np.float32)
    msk[20:40, 16:48] = 1
    monkeypatch.setenv("INPAINT_HEAP_REUSE", "0")
    off = model.predict(img, msk)
    monkeypatch.setenv("INPAINT_HEAP_REUSE", "1")
    on = model.predict(img, msk)
    assert np.array_equal(off, on)
    assert memory._depth == 0


_THP_CHILD = r"""
import json, os, resource, sys
from inpaint_gui.engine.memory import request_torch_huge_pages
requested = request_torch_huge_pages()
import torch
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(64 << 20, dtype=torch.uint8)
    t.fill_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"requested": requested, "env": os.environ.get("THP_MEM_ALLOC_ENABLE"),
                  "faults": min(faults() for _ in range(3)),
                  "again": request_torch_huge_pages()}))
"""


def _thp_mode() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return "never"


def _child(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("THP_MEM_ALLOC_ENABLE", "INPAINT_HUGE_PAGES")}
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-c", _THP_CHILD], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="transparent huge pages are Linux's")
def test_torch_huge_pages_request_before_torch_import():
    on = _child({})
    assert on["requested"] is True and on["env"] == "1"
    assert on["again"] is True  # asking twice keeps the answer
    off = _child({"INPAINT_HUGE_PAGES": "0"})
    assert off["requested"] is False and off["env"] is None
    user = _child({"THP_MEM_ALLOC_ENABLE": "0"})  # the user's own setting wins
    assert user["requested"] is False and user["env"] == "0"
    pages = (64 << 20) // PAGE
    if _thp_mode() == "madvise":
        # 2 MiB pages: a 64 MiB tensor takes ~32 faults instead of ~16 000
        assert on["faults"] < pages // 20 <= off["faults"], (on, off)


def test_huge_pages_not_requested_once_torch_is_loaded(monkeypatch):
    import torch  # noqa: F401  (loaded: PyTorch has read its setting already)
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    monkeypatch.delenv("INPAINT_HUGE_PAGES", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    assert memory.request_torch_huge_pages() is False
    assert "THP_MEM_ALLOC_ENABLE" not in os.environ
