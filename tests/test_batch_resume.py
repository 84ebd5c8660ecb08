"""Resuming an interrupted ``inpaint batch`` and checking the output folder first (issue 22,
item 8)."""
import os
from pathlib import Path

import numpy as np
import pytest

from inpaint_gui import cli
from inpaint_gui.engine import imageio
from inpaint_gui.engine.service import RunService


def _image(h=48, w=64, shift=0):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx * 3 + shift, yy * 4, (xx + yy) * 2]).astype(np.uint8)


def _mask(h=48, w=64):
    m = np.zeros((h, w), np.uint8)
    m[16:30, 20:40] = 255
    return m


def _dirs(tmp_path, n=3):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(n):
        imageio.save_image(images / f"p{i}.png", _image(shift=i))
        imageio.save_mask(masks / f"p{i}.png", _mask())
    return images, masks


def _run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_skip_existing_resumes_an_interrupted_batch(tmp_path, capsys):
    images, masks = _dirs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p1.png").write_bytes(b"finished before the interruption")  # kept as it is
    argv = ["batch", "--images", images, "--masks", masks, "--out", out, "--model", "telea"]

    rc, _, err = _run(argv, capsys)  # without the option: the finished image is an error
    assert rc == 1 and "--skip-existing" in err
    (out / "p0.png").unlink()
    (out / "p2.png").unlink()

    rc, _, err = _run(argv + ["--skip-existing"], capsys)
    assert rc == 0, err
    assert "2 of 3 images done, 1 skipped" in err
    assert (out / "p1.png").read_bytes() == b"finished before the interruption"
    keep = _mask() == 0
    for i in (0, 2):
        assert np.array_equal(imageio.load_image(out / f"p{i}.png").rgb[keep],
                              _image(shift=i)[keep])

    rc, _, err = _run(argv + ["--skip-existing"], capsys)  # everything there already
    assert rc == 0 and "0 of 3 images done, 3 skipped" in err


def test_skip_existing_and_overwrite_contradict(tmp_path, capsys):
    images, masks = _dirs(tmp_path, 1)
    rc, _, err = _run(["batch", "--images", images, "--masks", masks, "--out", tmp_path / "o",
                       "--skip-existing", "--overwrite"], capsys)
    assert rc == 1 and "contradict" in err


def _can_create(folder: Path) -> bool:
    probe = folder / ".inpaint-probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def _unwritable_folder(tmp_path) -> Path:
    """A folder where files cannot be created: read-only mode bits, or (root ignores those)
    a sysfs folder."""
    d = tmp_path / "readonly"
    d.mkdir()
    d.chmod(0o555)
    if not _can_create(d):
        return d
    d.chmod(0o755)
    sysfs = Path("/sys/kernel")
    if sysfs.is_dir() and not _can_create(sysfs):
        return sysfs
    pytest.fail("no folder on this machine refuses new files")


def test_unwritable_output_folder_fails_before_any_model_runs(tmp_path, capsys, monkeypatch):
    images, masks = _dirs(tmp_path)
    calls = []
    real = RunService.execute
    monkeypatch.setattr(RunService, "execute", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = _unwritable_folder(tmp_path)
    rc, _, err = _run(["batch", "--images", images, "--masks", masks, "--out", out,
                       "--model", "telea"], capsys)
    assert rc == 1 and calls == []
    line = [ln for ln in err.splitlines() if ln.startswith("inpaint: error:")]
    assert line == [f"inpaint: error: cannot write into the output folder {out}: "
                    "Permission denied"]
    rc, _, err = _run(["run", images / "p0.png", masks / "p0.png", "-o", out / "x.png",
                       "--model", "telea"], capsys)
    assert rc == 1 and calls == [] and "cannot write into the output folder" in err
