"""The `inpaint` command line: run, batch, models, pass-through commands, error messages."""
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from inpaint_gui import cli
from inpaint_gui.engine import imageio

REPO = Path(__file__).resolve().parents[1]


def _image(h=64, w=80):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx * 3, yy * 4, (xx + yy) * 2]).astype(np.uint8)


def _mask(h=64, w=80):
    m = np.zeros((h, w), np.uint8)
    m[20:36, 30:50] = 255
    return m


@pytest.fixture
def files(tmp_path):
    img, m = _image(), _mask()
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(m).save(tmp_path / "mask.png")
    Image.fromarray(np.zeros_like(m)).save(tmp_path / "empty.png")
    Image.fromarray(m[::2, ::2]).save(tmp_path / "small_mask.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return tmp_path


def _run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _error_line(err):
    lines = [ln for ln in err.splitlines() if ln.startswith("inpaint: error:")]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------- run

def test_run_telea_end_to_end(files, capsys):
    out = files / "out.png"
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", out,
                       "--model", "telea", "--device", "cpu"], capsys)
    assert rc == 0, err
    res = imageio.load_image(out).rgb
    img, m = _image(), _mask()
    assert np.array_equal(res[m == 0], img[m == 0])
    assert not np.array_equal(res[m > 0], img[m > 0])
    assert "wrote" in err


def test_run_with_options(files, capsys):
    out = files / "out.png"
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", out, "--model", "ns",
                       "--strategy", "crop", "--crop-trigger", "32", "--crop-margin", "8",
                       "--blend", "poisson", "--grow", "2", "-q"], capsys)
    assert rc == 0, err
    assert err == ""
    res = imageio.load_image(out).rgb
    from inpaint_gui.engine import maskops
    grown = maskops.grow(_mask(), 2)
    assert np.array_equal(res[grown == 0], _image()[grown == 0])


def test_empty_mask_returns_unchanged_bytes(files, capsys):
    out = files / "same.png"
    rc, _, err = _run(["run", files / "img.png", files / "empty.png", "-o", out,
                       "--model", "telea"], capsys)
    assert rc == 0, err
    assert out.read_bytes() == (files / "img.png").read_bytes()
    # another format: the pixels are unchanged
    out2 = files / "same.tif"
    rc, _, _ = _run(["run", files / "img.png", files / "empty.png", "-o", out2], capsys)
    assert rc == 0
    assert np.array_equal(imageio.load_image(out2).rgb, _image())


def test_metadata_alpha_and_16bit_survive_run(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rgb16 = imageio.to_uint16(_image()) + rng.integers(0, 200, (64, 80, 3)).astype(np.uint16)
    alpha = np.full((64, 80), 65535, np.uint16)
    alpha[:10] = 1000
    ex = Image.Exif()
    ex[0x010F] = "CliCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    imageio.save_image(tmp_path / "in.png", rgb16, alpha=alpha, exif=ex.tobytes(), icc=icc)
    imageio.save_mask(tmp_path / "m.png", _mask())
    for ext in (".png", ".tif"):
        out = tmp_path / f"out{ext}"
        rc, _, err = _run(["run", tmp_path / "in.png", tmp_path / "m.png", "-o", out,
                           "--model", "telea"], capsys)
        assert rc == 0, err
        doc = imageio.load_image(out)
        assert doc.rgb.dtype == np.uint16
        keep = _mask() == 0
        assert np.array_equal(doc.rgb[keep], rgb16[keep])
        assert np.array_equal(doc.alpha, alpha)
        assert doc.icc == icc
        e = Image.Exif()
        e.load(doc.exif)
        assert e[0x010F] == "CliCam"


def test_jpeg_output_of_16bit_warns(tmp_path, capsys):
    imageio.save_image(tmp_path / "in.png", imageio.to_uint16(_image()))
    imageio.save_mask(tmp_path / "m.png", _mask())
    rc, _, err = _run(["run", tmp_path / "in.png", tmp_path / "m.png", "-o",
                       tmp_path / "o.jpg", "--model", "telea"], capsys)
    assert rc == 0
    assert "inpaint: warning:" in err and "8 bits" in err


# ----------------------------------------------------------------------------- bad input

def test_existing_output_needs_overwrite(files, capsys):
    out = files / "exists.png"
    out.write_bytes(b"keep me")
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", out,
                       "--model", "telea"], capsys)
    assert rc == 1
    assert "already exists" in _error_line(err) and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", out,
                       "--model", "telea", "--overwrite"], capsys)
    assert rc == 0, err
    assert imageio.load_image(out).rgb.shape == (64, 80, 3)


def test_unreadable_image(files, capsys):
    rc, _, err = _run(["run", files / "broken.png", files / "mask.png", "-o", files / "o.png",
                       "--model", "telea"], capsys)
    assert rc == 1
    assert "broken.png" in _error_line(err)
    rc, _, err = _run(["run", files / "missing.png", files / "mask.png", "-o", files / "o.png",
                       "--model", "telea"], capsys)
    assert rc == 1 and "file not found" in _error_line(err)
    assert not (files / "o.png").exists()


def test_mask_size_mismatch_suggests_resize(files, capsys):
    rc, _, err = _run(["run", files / "img.png", files / "small_mask.png", "-o",
                       files / "o.png", "--model", "telea"], capsys)
    assert rc == 1
    line = _error_line(err)
    assert "40x32" in line and "80x64" in line and "--resize-mask" in line
    rc, _, err = _run(["run", files / "img.png", files / "small_mask.png", "-o",
                       files / "o.png", "--model", "telea", "--resize-mask"], capsys)
    assert rc == 0, err


def test_unknown_model_lists_available(files, capsys):
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", files / "o.png",
                       "--model", "no-such-model"], capsys)
    assert rc == 1
    line = _error_line(err)
    assert "no-such-model" in line and "available:" in line and "telea" in line


def test_missing_weights_says_where(files, capsys, monkeypatch):
    from inpaint_gui.engine import registry, weights
    spec = next((s for s in registry.list_models()
                 if s.needs_weights and weights.weight_status(s)[0] == "missing"), None)
    if spec is None:  # every network has weights here: pretend one has none
        spec = registry.ModelSpec(name="fakenet", title="Fake", task="inpaint", native_size=64,
                                  weight_sets=(registry.WeightSet("x", "official", "fakenet.pt"),))
        monkeypatch.setattr(registry, "get_spec", lambda name: spec)
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", files / "o.png",
                       "--model", spec.name], capsys)
    assert rc == 1
    line = _error_line(err)
    assert "no weights" in line and str(weights.user_models_dir()) in line
    assert spec.weight_sets[0].filename in line
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", files / "o.png",
                       "--model", spec.name, "--weights", files / "nope.pt"], capsys)
    assert rc == 1 and "weight file not found" in _error_line(err)


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    assert cli.main(["run", "only-one-arg"]) == 2
    assert cli.main(["run", "a", "b", "-o", "c", "--strategy", "bogus"]) == 2
    assert cli.main(["--help"]) == 0
    capsys.readouterr()


def test_unsupported_output_extension(files, capsys):
    rc, _, err = _run(["run", files / "img.png", files / "mask.png", "-o", files / "o.gif",
                       "--model", "telea"], capsys)
    assert rc == 1 and "extension" in _error_line(err)


# ----------------------------------------------------------------------------- batch

def _batch_dirs(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("a.png", "b.jpg", "c.png"):
        imageio.save_image(images / name, _image(), quality=100)
    imageio.save_mask(masks / "a.png", _mask())
    imageio.save_mask(masks / "b_mask.png", _mask())
    imageio.save_mask(masks / "c.png", _mask())
    return images, masks


def test_batch_all_ok(tmp_path, capsys):
    images, masks = _batch_dirs(tmp_path)
    out = tmp_path / "out"
    rc, _, err = _run(["batch", "--images", images, "--masks", masks, "--out", out,
                       "--model", "telea"], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(out)) == ["a.png", "b.jpg", "c.png"]
    assert "3/3" in err  # progress bar on stderr
    keep = _mask() == 0
    assert np.array_equal(imageio.load_image(out / "a.png").rgb[keep], _image()[keep])


def test_batch_bad_file_is_skipped_and_the_rest_continue(tmp_path, capsys):
    images, masks = _batch_dirs(tmp_path)
    (images / "b0_broken.png").write_bytes(b"not an image at all")
    imageio.save_mask(masks / "b0_broken.png", _mask())
    imageio.save_image(images / "d_nomask.png", _image())
    out = tmp_path / "out"
    rc, _, err = _run(["batch", "--images", images, "--masks", masks, "--out", out,
                       "--model", "telea"], capsys)
    assert rc == 1
    assert sorted(os.listdir(out)) == ["a.png", "b.jpg", "c.png"]
    assert "b0_broken.png" in err and "d_nomask.png" in err
    assert "3 of 5 images done; 2 failed" in err


def test_batch_single_mask_and_format(tmp_path, capsys):
    images, masks = _batch_dirs(tmp_path)
    out = tmp_path / "out"
    rc, _, err = _run(["batch", "--images", images, "--masks", masks / "a.png", "--out", out,
                       "--model", "telea", "--ext", "png", "--suffix", "_filled", "-q"], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(out)) == ["a_filled.png", "b_filled.png", "c_filled.png"]


def test_batch_unknown_model_fails_before_work(tmp_path, capsys):
    images, masks = _batch_dirs(tmp_path)
    rc, _, err = _run(["batch", "--images", images, "--masks", masks, "--out", tmp_path / "o",
                       "--model", "nope"], capsys)
    assert rc == 1 and "unknown model" in _error_line(err)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- models

def test_models_lists_weight_status(capsys):
    rc, out, _ = _run(["models"], capsys)
    assert rc == 0
    assert any(line.startswith("telea") and "none needed" in line for line in out.splitlines())
    rc, out, _ = _run(["models", "--json"], capsys)
    data = json.loads(out)
    names = {m["name"]: m for m in data["models"]}
    assert names["telea"]["status"] == "none needed"
    assert "user_models_dir" in data


def test_convert_srn_bad_prefix_is_one_line(tmp_path, capsys):
    rc, _, err = _run(["models", "convert-srn", tmp_path / "no" / "snap-1", "-o",
                       tmp_path / "srn.pt"], capsys)
    assert rc == 1
    _error_line(err)
    assert not (tmp_path / "srn.pt").exists()


# ----------------------------------------------------------------------------- pass-through

def test_passthrough_commands_get_their_argv(monkeypatch, capsys):
    seen = {}
    for cmd, (mod_name, func, _what) in cli.PASSTHROUGH.items():
        fake = types.ModuleType(mod_name)

        def entry(argv, _cmd=cmd):
            seen[_cmd] = list(argv)
            return 3
        setattr(fake, func, entry)
        monkeypatch.setitem(sys.modules, mod_name, fake)
    for cmd in cli.PASSTHROUGH:
        assert cli.main([cmd, "--steps", "5", "-x", "pos"]) == 3
        assert seen[cmd] == ["--steps", "5", "-x", "pos"]


def test_passthrough_missing_module(monkeypatch, capsys):
    monkeypatch.setitem(cli.PASSTHROUGH, "train",
                        ("inpaint_gui.training.does_not_exist", "main_train", "train"))
    rc, _, err = _run(["train", "--help"], capsys)
    assert rc == 1 and "not available" in _error_line(err)


# ----------------------------------------------------------------------------- subprocess

def test_python_m_inpaint_gui_cli(files):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "inpaint_gui.cli", "run", str(files / "img.png"),
                          str(files / "mask.png"), "-o", str(files / "sub.png"), "--model", "telea",
                          "--device", "cpu"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (files / "sub.png").is_file()
    res = subprocess.run([sys.executable, "-m", "inpaint_gui.cli", "run", str(files / "img.png"),
                          str(files / "small_mask.png"), "-o", str(files / "sub2.png"),
                          "--model", "telea"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith("inpaint: error: ")
    assert "--resize-mask" in res.stderr
