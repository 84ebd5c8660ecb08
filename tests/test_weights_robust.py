"""Broken, half-downloaded and hostile weight files: plain-words reasons, a "broken" weight
status (CLI, Auto, Models panel) and runs that fall back to the next weight set (issue 22,
items 3 and 4)."""
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_gui import cli
from inpaint_gui import engine
from inpaint_gui.engine import auto, registry, safe_unpickle, weights
from inpaint_gui.engine.model_cache import shared_cache
from inpaint_gui.engine.safe_unpickle import (SAFE_GLOBALS, checkpoint_problem, plain_error,
                                              scan_checkpoint)

REPO = Path(__file__).resolve().parents[1]
STARTER_AOT = REPO / "models" / "aot_starter.pt"
CODE_REFUSAL = "refused: this file contains code that would run when loaded"


class _Payload:
    """Pickles as ``os.mkdir(path)``: a normal unpickler would create the folder."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.fixture(autouse=True)
def _fresh_state():
    weights.forget_checks()
    shared_cache().clear()
    yield
    weights.forget_checks()
    shared_cache().clear()


def _truncated_aot(dest: Path, n: int = 500_000) -> Path:
    dest.write_bytes(STARTER_AOT.read_bytes()[:n])
    return dest


def _photo(tmp_path, h=96, w=128):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.dstack([xx * 2, yy * 2, (xx + yy)]).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[30:60, 40:80] = 255
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return img, mask


def _cli(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- reasons (item 4)

def test_code_pickle_is_refused_in_plain_words(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"a": torch.zeros(2)}, "x": _Payload(marker)}, evil)
    with pytest.raises(weights.CheckpointFormatError) as info:
        weights.read_checkpoint(evil)
    msg = str(info.value)
    assert msg.startswith("evil.pt: " + CODE_REFUSAL), msg
    assert "mkdir" in msg and msg.endswith("it is not a plain weights file")
    assert "weights_only" not in msg and "\x1b" not in msg
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_scanner_sees_code_in_every_pickle_protocol(tmp_path, protocol):
    """GLOBAL (text), GLOBAL (binary) and STACK_GLOBAL with memoised names all name the code."""
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.pt"
    payload = pickle.dumps({"w": _Payload(marker)}, protocol=protocol)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    scan = scan_checkpoint(path)
    assert scan.problem is None and any(g.endswith(".mkdir") for g in scan.foreign), scan
    assert checkpoint_problem(path).startswith(CODE_REFUSAL)
    assert checkpoint_problem(path, tolerant=True) is None  # the inert reader may read it
    assert not marker.exists()


def test_random_empty_and_text_files(tmp_path):
    rnd = tmp_path / "random.pt"
    rnd.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "text.pt"
    text.write_text("hello world")
    pickled = tmp_path / "pickled.pt"
    pickled.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    for path, want in ((rnd, "not a PyTorch checkpoint"), (text, "not a PyTorch checkpoint"),
                       (empty, "the file is empty"),
                       (pickled, "not a PyTorch checkpoint (a plain Python pickle)")):
        with pytest.raises(weights.WeightsError) as info:
            weights.read_checkpoint(path)
        assert str(info.value) == f"{path.name}: {want}"
        with pytest.raises(weights.WeightsError) as info:
            safe_unpickle.read_checkpoint_any(path)
        assert str(info.value) == f"{path.name}: {want}"


def test_plain_error_cleans_torchs_own_message(tmp_path):
    """The real exception of ``torch.load(weights_only=True)`` on a code pickle: its advice to
    re-run with weights_only=False and colour codes never reach the user."""
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Payload(tmp_path / "m")}, evil)
    with pytest.raises(Exception) as info:
        torch.load(evil, weights_only=True)
    raw = str(info.value)
    assert "weights_only" in raw  # what it used to print
    text = plain_error(Exception("\x1b[1m" + raw + "\x1b[0m"))
    assert "weights_only" not in text and "\x1b" not in text and "Re-running" not in text
    assert plain_error(KeyError(225)) == "not a PyTorch checkpoint"
    long = plain_error(ValueError("word " * 80))
    assert long.endswith(" …)") and "wor …" not in long


def test_truncated_zip_and_legacy_files_say_incomplete(tmp_path):
    cut = _truncated_aot(tmp_path / "cut.pt")
    assert checkpoint_problem(cut).startswith("the file is incomplete")
    legacy = tmp_path / "legacy.pth"
    torch.save({"netG": OrderedDict(w=torch.arange(5000.0))}, legacy,
               _use_new_zipfile_serialization=False)
    assert checkpoint_problem(legacy) is None
    cut_legacy = tmp_path / "cut_legacy.pth"
    cut_legacy.write_bytes(legacy.read_bytes()[:-100])
    problem = checkpoint_problem(cut_legacy)
    assert problem.startswith("the file is incomplete") and "bytes" in problem


def test_safe_globals_match_the_unpicklers_allow_list():
    assert set(safe_unpickle._allowed_globals()) == SAFE_GLOBALS


def test_bundled_starters_are_clean():
    for spec in registry.list_models():
        for f in weights.weight_files(spec):
            assert f.usable, (f.path, f.problem)


# ----------------------------------------------------------------------------- status (item 3)

def test_truncated_official_file_is_broken_and_the_starter_is_used(_isolated_user_models):
    spec = registry.get_spec("aot")
    _truncated_aot(_isolated_user_models / "aot_places2.pt")
    status, ws, path = weights.weight_status(spec)
    assert (status, ws.kind, path) == ("starter", "starter", STARTER_AOT)
    broken = [f for f in weights.weight_files(spec) if not f.usable]
    assert [f.path.name for f in broken] == ["aot_places2.pt"]
    assert broken[0].problem.startswith("the file is incomplete")
    assert "aot" in auto.available_models()


def test_cli_run_falls_back_with_a_notice_and_exit_0(tmp_path, _isolated_user_models, capsys):
    _truncated_aot(_isolated_user_models / "aot_places2.pt")
    img, mask = _photo(tmp_path)
    for model in ("aot", "auto"):
        out = tmp_path / f"out_{model}.png"
        rc, _, err = _cli(["run", tmp_path / "img.png", tmp_path / "mask.png", "-o", out,
                           "--model", model, "--device", "cpu"], capsys)
        assert rc == 0, err
        assert out.is_file()
        if model == "aot":
            warn = [ln for ln in err.splitlines() if "aot_places2.pt" in ln]
            assert len(warn) == 1 and warn[0].startswith("inpaint: warning: AOT-GAN: skipped "
                                                         "aot_places2.pt — the file is incomplete")
            assert "using aot_starter.pt (starter)" in warn[0]
        shared_cache().clear()


def test_cli_models_lists_the_broken_file(_isolated_user_models, capsys):
    _truncated_aot(_isolated_user_models / "aot_places2.pt")
    rc, out, _ = _cli(["models", "--json"], capsys)
    assert rc == 0
    row = next(r for r in json.loads(out)["models"] if r["name"] == "aot")
    assert row["status"] == "starter"
    assert [b["file"] for b in row["broken"]] == ["aot_places2.pt"]
    assert row["broken"][0]["problem"].startswith("the file is incomplete")
    rc, out, _ = _cli(["models"], capsys)
    line = next(ln for ln in out.splitlines() if "aot_places2.pt" in ln)
    assert "broken:" in line and "incomplete" in line
    # the list of official sources says it too, not only "installed"
    src = next(ln for ln in out.splitlines() if ln.startswith("aot:places2 "))
    assert "installed:" in src and "broken: the file is incomplete" in src


def test_file_that_fails_at_load_is_marked_broken_and_skipped(_isolated_user_models):
    """A whole, plain checkpoint that does not fit the network: found when loading."""
    torch.save({"x": torch.zeros(3)}, _isolated_user_models / "aot_places2.pt")
    spec = registry.get_spec("aot")
    assert weights.weight_status(spec)[0] == "official"  # nothing wrong with the file itself
    notes = []
    img = np.full((64, 64, 3), 120, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    out = engine.inpaint(img, mask, model="aot", device="cpu", notice=notes.append)
    assert out.shape == img.shape and (out[mask == 0] == img[mask == 0]).all()
    assert len(notes) == 1 and "skipped aot_places2.pt" in notes[0]
    assert "not AOT-GAN weights" in notes[0] and "using aot_starter.pt" in notes[0]
    assert weights.weight_status(spec)[0] == "starter"
    assert "not AOT-GAN weights" in weights.weight_files(spec)[0].problem
    with pytest.warns(weights.WeightsWarning, match="aot_places2.pt"):  # no notice callback
        shared_cache().clear()
        engine.load_model("aot", device="cpu")


def test_all_broken_model_is_reported_and_auto_skips_it(tmp_path, _isolated_user_models, capsys):
    (_isolated_user_models / "big-lama.ckpt").write_bytes(STARTER_AOT.read_bytes()[:1000])
    spec = registry.get_spec("lama")
    assert weights.weight_status(spec)[0] == "broken"
    avail = auto.available_models()
    assert "lama" not in avail and "broken" in avail.reasons["lama"]
    _photo(tmp_path)
    rc, _, err = _cli(["run", tmp_path / "img.png", tmp_path / "mask.png", "-o",
                       tmp_path / "o.png", "--model", "lama"], capsys)
    assert rc == 1
    assert "no usable weights for lama: big-lama.ckpt: the file is incomplete" in err


def test_cli_refuses_a_code_pickle_given_with_weights(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"
    torch.save({"x": _Payload(marker)}, evil)
    _photo(tmp_path)
    rc, _, err = _cli(["run", tmp_path / "img.png", tmp_path / "mask.png", "-o",
                       tmp_path / "o.png", "--model", "aot", "--weights", evil], capsys)
    assert rc == 1 and not marker.exists()
    line = [ln for ln in err.splitlines() if ln.startswith("inpaint: error:")]
    assert line == [f"inpaint: error: evil.pt: {CODE_REFUSAL} ({os.mkdir.__module__}.mkdir); "
                    "it is not a plain weights file"]


def test_models_panel_shows_broken_files(qtbot, _isolated_user_models):
    from inpaint_gui.ui.models_dock import ModelsDock, WEIGHTS_COL
    _truncated_aot(_isolated_user_models / "aot_places2.pt")
    (_isolated_user_models / "big-lama.ckpt").write_bytes(b"")
    dock = ModelsDock()
    qtbot.addWidget(dock)
    assert dock.weight_status_text("aot") == "starter (1 broken)"
    tip = dock.item_for("aot").toolTip(WEIGHTS_COL)
    assert "broken: aot_places2.pt: the file is incomplete" in tip
    assert dock.weight_status_text("lama") == "broken"
    assert "big-lama.ckpt: the file is empty" in dock.item_for("lama").toolTip(WEIGHTS_COL)


def test_a_load_failing_because_of_options_does_not_mark_the_file(_isolated_user_models):
    """Network options that do not fit the weights are the options' fault, not the file's."""
    spec = registry.get_spec("aot")
    img = np.full((64, 64, 3), 120, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    with pytest.raises(weights.WeightsError):
        engine.inpaint(img, mask, model="aot", device="cpu", model_options={"channels": 8})
    assert weights.weight_status(spec)[:2] == ("starter", spec.weight_set("starter"))
    assert all(f.usable for f in weights.weight_files(spec))


def test_app_fill_reports_the_skipped_file(qtbot, _isolated_user_models):
    """The GUI worker hears the engine's notice and keeps it with the result."""
    from inpaint_gui.engine.settings import RunSettings
    from inpaint_gui.ui.worker import FillRunner
    _truncated_aot(_isolated_user_models / "aot_places2.pt")
    runner = FillRunner()
    notices, results = [], []
    runner.notice.connect(notices.append)
    runner.finished.connect(results.append)
    img = np.full((64, 64, 3), 100, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    with qtbot.waitSignal(runner.finished, timeout=60000):
        runner.run(img, mask, RunSettings(model="aot", device="cpu"))
    assert runner.shutdown(10000)
    hits = [n for n in notices if "skipped aot_places2.pt" in n]
    assert len(hits) == 1 and "the file is incomplete" in hits[0]
    assert results and results[0].array is not None and hits[0] in results[0].notes


def test_srn_tensorflow_index_still_passes_the_cli_check(tmp_path):
    """SRN reads official TensorFlow checkpoints given by their .index file: not a PyTorch
    file, and not refused as one before the loader sees it."""
    from inpaint_gui.engine import tfckpt
    from tests.test_srn_outpaint import _small_tf_weights
    prefix = tfckpt.write_checkpoint(tmp_path / "ckpt" / "snap-1", _small_tf_weights(cnum=8))
    assert cli.check_model("srn", prefix + ".index").name == "srn"
    with pytest.raises(cli.CliError, match="not a PyTorch checkpoint"):  # a .pt is checked
        bad = tmp_path / "srn.pt"
        bad.write_bytes(b"nonsense")
        cli.check_model("srn", str(bad))
