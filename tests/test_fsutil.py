"""Atomic writes (engine/fsutil.py): the one home of temp file + fsync + rename."""
import os

import pytest

from inpaint_gui.engine import fsutil


def _names(folder):
    return sorted(os.listdir(folder))


def test_write_replace_and_no_temp_left(tmp_path):
    p = tmp_path / "a.json"
    fsutil.atomic_write_text(p, "one")
    fsutil.atomic_write_text(p, "twø")
    assert p.read_text(encoding="utf-8") == "twø"
    assert _names(tmp_path) == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"new data, half of it")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        fsutil.atomic_write(p, half_then_fail)
    assert p.read_bytes() == b"old"
    assert _names(tmp_path) == ["a.bin"]


def test_verify_runs_on_the_written_file_and_can_abort(tmp_path):
    p = tmp_path / "w.pt"
    p.write_bytes(b"old")
    seen = []

    def refuse(tmp):
        seen.append(tmp.read_bytes())
        raise ValueError("checksum differs")
    with pytest.raises(ValueError):
        fsutil.atomic_write(p, lambda f: f.write(b"new"), verify=refuse)
    assert seen == [b"new"] and p.read_bytes() == b"old" and _names(tmp_path) == ["w.pt"]


def test_no_clobber(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        fsutil.atomic_write_bytes(p, b"other", overwrite=False)
    assert p.read_bytes() == b"keep"
    # a file that appears while writing is not replaced either
    q = tmp_path / "y.png"

    def racing(f):
        f.write(b"mine")
        q.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        fsutil.atomic_write(q, racing, overwrite=False)
    assert q.read_bytes() == b"theirs"
    assert _names(tmp_path) == ["x.png", "y.png"]
    fsutil.atomic_write_bytes(tmp_path / "z.png", b"new", overwrite=False)
    assert (tmp_path / "z.png").read_bytes() == b"new"


def test_parents_and_torch_save(tmp_path):
    import torch
    p = tmp_path / "deep" / "er" / "g.pt"
    sd = {"w": torch.arange(6.0).view(2, 3)}
    fsutil.atomic_torch_save(sd, p)
    assert torch.equal(torch.load(p, weights_only=True)["w"], sd["w"])
    assert _names(p.parent) == ["g.pt"]
    with pytest.raises(FileNotFoundError):
        fsutil.atomic_write_text(tmp_path / "missing" / "a.txt", "x")
    fsutil.atomic_write_text(tmp_path / "missing" / "a.txt", "x", parents=True)
    assert (tmp_path / "missing" / "a.txt").read_text() == "x"
