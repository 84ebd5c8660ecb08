"""PatchMatch in the GUI: models panel (options, unavailable state), worker run, cancel while
the native call runs, comparison."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer  # noqa: E402

from inpaint_gui.engine import HDStrategy, inpaint  # noqa: E402
from inpaint_gui.engine.settings import RunSettings  # noqa: E402
from inpaint_gui.ui.compare import CompareGrid  # noqa: E402
from inpaint_gui.ui.models_dock import COMPARE_COL, ModelsDock, bind_runner  # noqa: E402
from inpaint_gui.ui.worker import UNAVAILABLE, FillRunner  # noqa: E402

# pypatchmatch has wheels for Python 3.11+ only (pyproject's marker); on 3.10 the model is listed
# as unavailable, which the simulated-failure tests cover with the package present.
pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="pypatchmatch needs Python 3.11+")


def _textured(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 60 * np.sin(xx / 23.0), 120 + 40 * np.cos(yy / 17.0),
                     100 + 30 * np.sin((xx + yy) / 31.0)], axis=-1)
    return np.clip(base + rng.normal(0, 18, (h, w, 1)), 0, 255).astype(np.uint8)


def _mask(h, w, y0, x0, y1, x1):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


@pytest.fixture
def runner(qtbot):
    r = FillRunner()
    yield r
    assert r.shutdown(120000)


# ------------------------------------------------------------------------------- models panel

def test_dock_lists_patchmatch_with_its_options(qtbot, tmp_path):
    dock = ModelsDock()
    qtbot.addWidget(dock)
    assert "patchmatch" in dock.model_names()
    assert dock.weight_status_text("patchmatch") == "built-in"
    assert dock.item_for("patchmatch").text(0) == "PatchMatch (texture)"
    dock.select_model("telea")
    assert dock.option_spins == {} and dock.options_box.isHidden()
    dock.select_model("patchmatch")
    assert set(dock.option_spins) == {"patch_size", "seed"} and not dock.options_box.isHidden()
    assert dock.option_spins["patch_size"].value() == 3 and dock.option_spins["seed"].value() == 0
    assert dock.run_button.isEnabled() and not dock.unavailable_label.isVisibleTo(dock)
    dock.option_spins["seed"].setValue(42)
    dock.option_spins["patch_size"].setValue(5)
    with qtbot.waitSignal(dock.run_requested, timeout=1000) as blocker:
        dock.run_button.click()
    s = blocker.args[0]
    assert s.model == "patchmatch" and dict(s.model_options) == {"patch_size": 5, "seed": 42}
    assert s.request(np.zeros((4, 4, 3), np.uint8)).model_options == {"patch_size": 5, "seed": 42}
    # the options of a model stay with it, and compare runs use them
    dock.select_model("telea")
    assert dock.settings().model_options == ()
    dock.set_compare_models(["telea", "patchmatch"])
    runs = {r.model: r for r in dock.compare_settings()}
    assert dict(runs["patchmatch"].model_options) == {"patch_size": 5, "seed": 42}
    # persisted
    qs = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    dock.select_model("patchmatch")
    dock.save_state(qs)
    qs.sync()
    other = ModelsDock()
    qtbot.addWidget(other)
    other.restore_state(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert other.selected_model() == "patchmatch"
    assert other.option_spins["seed"].value() == 42 and other.option_spins["patch_size"].value() == 5


def test_dock_offers_photo_grain_for_learned_models(qtbot):
    dock = ModelsDock()
    qtbot.addWidget(dock)
    dock.select_model("aot")
    spin = dock.option_spins["patch_detail"]
    assert spin.value() == -1 and spin.text() == "weights' own" and not dock.options_box.isHidden()
    with qtbot.waitSignal(dock.run_requested, timeout=1000) as blocker:
        dock.run_button.click()
    assert dict(blocker.args[0].model_options) == {"patch_detail": -1}
    spin.setValue(0)
    assert spin.text() == "0"
    with qtbot.waitSignal(dock.run_requested, timeout=1000) as blocker:
        dock.run_button.click()
    assert dict(blocker.args[0].model_options) == {"patch_detail": 0}
    dock.select_model("telea")
    assert "patch_detail" not in dock.option_spins


def test_dock_shows_unavailable_patchmatch_with_the_reason(qtbot, no_patchmatch):
    dock = ModelsDock()
    qtbot.addWidget(dock)
    assert dock.weight_status_text("patchmatch") == "unavailable"
    item = dock.item_for("patchmatch")
    assert "not installed" in item.toolTip(1) and "not installed" in item.toolTip(0)
    dock.select_model("patchmatch")
    assert dock.unavailable_label.isVisibleTo(dock)
    text = dock.unavailable_label.text()
    assert text.startswith("PatchMatch (texture) cannot run here:") and "pip install pypatchmatch" in text
    assert not dock.run_button.isEnabled() and dock.options_box.isHidden()
    with qtbot.assertNotEmitted(dock.run_requested):
        dock.request_run()  # Ctrl+Enter: refused, with the reason
    assert "cannot run here" in dock.status_label.text()
    dock.set_compare_models(["patchmatch", "telea"])
    assert dock.compare_models() == ["telea"]
    assert not (item.flags() & Qt.ItemFlag.ItemIsUserCheckable)
    dock.select_model("telea")
    assert dock.run_button.isEnabled() and not dock.unavailable_label.isVisibleTo(dock)


def test_worker_reports_unavailable(qtbot, runner, no_patchmatch):
    image = _textured(48, 48)
    with qtbot.waitSignal(runner.failed, timeout=20000) as blocker:
        runner.run(image, _mask(48, 48, 10, 10, 30, 30), RunSettings(model="patchmatch"))
    message, kind = blocker.args
    assert kind == UNAVAILABLE and "not installed" in message


# ------------------------------------------------------------------------------- worker

def test_worker_runs_patchmatch_with_progress(qtbot, runner):
    image = _textured(120, 160, seed=1)
    mask = _mask(120, 160, 30, 40, 90, 120)
    stages = []
    runner.progress.connect(lambda stage, frac, el: stages.append(stage))
    settings = RunSettings(model="patchmatch", model_options={"seed": 9})
    with qtbot.waitSignal(runner.finished, timeout=60000) as blocker:
        runner.run(image, mask, settings)
    res = blocker.args[0]
    assert res.model == "patchmatch" and res.ok
    assert np.array_equal(res.array[mask == 0], image[mask == 0])
    assert np.array_equal(res.array, inpaint(image, mask, model="patchmatch", model_options={"seed": 9}))
    assert any("PatchMatch" in s for s in stages)


def test_cancel_during_the_native_call_discards_the_result_and_keeps_the_ui_live(qtbot, runner):
    """The native call cannot stop: the runner says so at once, the event loop keeps ticking
    while the call runs, and the result is dropped (``cancelled``, never ``finished``)."""
    dock = ModelsDock()
    qtbot.addWidget(dock)
    bind_runner(dock, runner)
    image = _textured(640, 640, seed=2)
    mask = _mask(640, 640, 120, 120, 480, 480)  # ~30 %: a native call of seconds
    events, notes = [], []
    for name in ("finished", "cancelled", "failed"):
        getattr(runner, name).connect(lambda *a, _n=name: events.append(_n))
    runner.cancelling.connect(notes.append)
    in_call = []
    runner.progress.connect(lambda stage, frac, el: in_call.append(stage) if "PatchMatch" in stage else None)
    gaps, clock, timer = [], QElapsedTimer(), QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()) if clock.isValid() else clock.start())
    runner.run(image, mask, RunSettings(model="patchmatch", strategy=HDStrategy("original"),
                                        model_strategy=False))
    qtbot.waitUntil(lambda: bool(in_call), timeout=30000)
    t_cancel = time.perf_counter()
    timer.start()
    dock.cancel_button.click()
    assert notes and "cannot be interrupted" in notes[0] and "discarded" in notes[0]
    assert "cannot be interrupted" in dock.status_label.text()
    assert not dock.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: bool(events), timeout=120000)
    waited = time.perf_counter() - t_cancel
    timer.stop()
    assert events == ["cancelled"]
    assert dock.status_label.text() == "cancelled"
    assert waited > 0.3  # the cancel waited for the native call
    assert len(gaps) > 10 and max(gaps) < 250, (max(gaps), len(gaps))


def test_compare_includes_patchmatch(qtbot, runner):
    image = _textured(96, 128, seed=3)
    mask = _mask(96, 128, 20, 30, 70, 90)
    runs = [RunSettings(model="telea"), RunSettings(model="patchmatch")]
    with qtbot.waitSignal(runner.compare_finished, timeout=60000) as blocker:
        runner.compare(image, mask, runs)
    results = blocker.args[0]
    assert [r.model for r in results] == ["telea", "patchmatch"] and all(r.ok for r in results)
    for r in results:
        assert np.array_equal(r.array[mask == 0], image[mask == 0])
    assert not np.array_equal(results[0].array, results[1].array)
    grid = CompareGrid()
    qtbot.addWidget(grid)
    grid.set_results(results, original=image)
    assert grid.result(1).model == "patchmatch"
    assert grid._labels[1].text().startswith("patchmatch")
